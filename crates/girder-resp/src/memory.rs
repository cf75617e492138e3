//! The memory limit at the front end: eviction before each command, the OOM refusal,
//! and the `maxmemory` settings as Redis spells them.
//!
//! The keyspace decides what goes (`girder_kv`'s `evict` module); this module decides
//! when: before every command while a limit is set, as Redis's `processCommand` does.
//! A command that may grow memory (Redis's `denyoom` flag) is refused with Redis's OOM
//! error when nothing more can be evicted; reads and deletions still run.

use crate::codec::Reply;
use crate::commands::{Ctx, Spec};
use crate::notify;

/// Evicts what the policy says before `spec` runs; the OOM error when memory stays over
/// the limit and `spec` may grow memory (for EXEC: when a queued command may).
pub(crate) fn refuse_when_full(ctx: &mut Ctx<'_>, spec: &Spec) -> Option<Reply> {
    let keyspace = ctx.keyspace;
    // Commands inside EXEC were checked as the transaction, when EXEC came.
    if keyspace.maxmemory() == 0 || ctx.client.tx.executing {
        return None;
    }
    let shared = ctx.shared;
    let flags = shared.notify.flags();
    let result = keyspace.make_room(&mut |db, key| {
        notify::publish(shared, flags, notify::EVICTED, "evicted", db, key);
    });
    let Err(e) = result else {
        return None;
    };
    if spec.name == "exec" {
        let grows = ctx.client.tx.queued.as_ref().is_some_and(|queued| {
            queued.iter().any(|args| {
                crate::commands::lookup(&args[0]).is_some_and(|s| s.flags.contains(&"denyoom"))
            })
        });
        return grows.then(|| crate::commands::transactions::abort_exec(ctx, &e.to_string()));
    }
    spec.flags
        .contains(&"denyoom")
        .then(|| Reply::error(e.to_string()))
}

/// Evicts down to the limit now (CONFIG SET lowered it, or chose a policy that can
/// evict), as Redis does when `maxmemory` is set below the memory in use. Bounded: a
/// command that follows evicts the rest.
pub(crate) fn evict_now(ctx: &Ctx<'_>) {
    let shared = ctx.shared;
    let flags = shared.notify.flags();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_millis(100) {
        match ctx.keyspace.make_room(&mut |db, key| {
            notify::publish(shared, flags, notify::EVICTED, "evicted", db, key);
        }) {
            Ok(n) if n > 0 => {}
            _ => break,
        }
    }
}

/// Parses a memory size as Redis's `memtoull`: a number of bytes with an optional unit,
/// `k`/`m`/`g` (powers of 1000) or `kb`/`mb`/`gb` (powers of 1024), in any case.
///
/// # Errors
/// A message for CONFIG SET and the configuration check.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1_000,
        "kb" => 1 << 10,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => {
            return Err(format!(
                "{text:?} is not a memory size (bytes, or with k, kb, m, mb, g, gb)"
            ))
        }
    };
    let n: u64 = digits.parse().map_err(|_| {
        format!("{text:?} is not a memory size (bytes, or with k, kb, m, mb, g, gb)")
    })?;
    n.checked_mul(multiplier)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Bytes as Redis's INFO writes them (`1.50M`).
pub(crate) fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.2}{}", UNITS[unit])
}

/// Resident memory of the process, from `/proc` (0 where unavailable).
pub(crate) fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

/// The `# Memory` section of INFO.
pub(crate) fn info(keyspace: &girder_kv::Keyspace) -> String {
    let rss = resident_bytes();
    // Without the counting allocator (a front end embedded in another program), RSS
    // is the best there is.
    let used = keyspace.used_memory().map_or(rss, |u| u as u64);
    let max = keyspace.maxmemory();
    let fragmentation = if used == 0 {
        0.0
    } else {
        rss as f64 / used as f64
    };
    format!(
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\nused_memory_rss_human:{}\r\nmaxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:{}\r\nmem_fragmentation_ratio:{fragmentation:.2}\r\nmem_allocator:libc\r\n\r\n",
        human(used),
        human(rss),
        human(max),
        keyspace.eviction_policy(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_as_redis_reads_them() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("100mb"), Ok(100 << 20));
        assert_eq!(parse_bytes("100MB"), Ok(100 << 20));
        assert_eq!(parse_bytes("100m"), Ok(100_000_000));
        assert_eq!(parse_bytes("2gb"), Ok(2 << 30));
        assert_eq!(parse_bytes("1k"), Ok(1000));
        assert_eq!(parse_bytes("1kb"), Ok(1024));
        assert!(parse_bytes("").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("1tb").is_err());
        assert!(parse_bytes("mb").is_err());
        assert!(parse_bytes("99999999999999999999gb").is_err());
    }
}
