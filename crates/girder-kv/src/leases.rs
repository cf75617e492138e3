//! Leases against cache stampedes, after "Scaling Memcache at Facebook" (NSDI 2013, §3.2.1).
//!
//! A read that misses hands its caller a lease: a token that entitles it, and only it, to
//! fill the key. Other readers that miss while the lease is outstanding are told to wait
//! instead of all querying the database behind the cache. A fill is accepted only with
//! the current token, and only if the key has not been written, deleted, expired, flushed
//! or swapped since the lease was granted: a DEL between lease and fill invalidates the
//! token, so a filler holding a value read before the DEL cannot store it (no stale sets).
//!
//! Mechanism: a lease is a WATCH held by the shard. Granting it records the key's watch
//! version; every change to the key moves that version on (see `Shard::touch`), so
//! validity is one comparison, made under the same shard lock as the fill's write.
//! Leases live in the key's shard, are bounded per shard ([`MAX_LEASES_PER_SHARD`]) and
//! end when filled, released, replaced after their deadline, or swept when the shard's
//! table is full. They are memory only: a restart ends them all.

use crate::shard::{Key, Shard, Value};
use crate::{strings, DbRef, KvError};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most outstanding leases per shard (64 shards per database).
pub const MAX_LEASES_PER_SHARD: usize = 1024;

/// What a [`cache_get`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheRead {
    /// The key holds this string.
    Hit(Bytes),
    /// A miss, and the caller now holds the lease: it should load the value and
    /// [`cache_fill`] it with this token.
    Lease {
        /// The token [`cache_fill`] and [`cache_release`] take.
        token: u64,
    },
    /// A miss while another caller holds the lease: retry shortly, the value is being
    /// loaded. The lease ends at the latest after `lease_left_ms`.
    Wait {
        /// Milliseconds until the outstanding lease expires.
        lease_left_ms: u64,
    },
}

/// One outstanding lease.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lease {
    token: u64,
    /// The key's watch version when the lease was granted.
    version: u64,
    /// Wall-clock ms after which the lease is void.
    deadline: u64,
}

/// A shard's leases by key.
pub(crate) type Leases = HashMap<Key, Lease, ahash::RandomState>;

/// A fresh token: a process-wide counter run through a bijection of 63-bit words
/// (xor-shifts and odd multipliers modulo 2^63), so tokens are unique for 2^63 grants,
/// non-negative RESP integers, never 0, and not the next integer after the last one a
/// client saw.
fn next_token() -> u64 {
    const MASK: u64 = u64::MAX >> 1;
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    loop {
        let mut z = COUNTER.fetch_add(1, Ordering::Relaxed) & MASK;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9) & MASK;
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB) & MASK;
        z ^= z >> 31;
        if z != 0 {
            return z;
        }
    }
}

impl Shard {
    /// Whether `lease` on `key` can still be filled at `now`.
    fn lease_live(&self, key: &[u8], lease: &Lease, now: u64) -> bool {
        now <= lease.deadline && self.watched_version(key) == lease.version
    }

    /// Ends the lease on `key`, if any, and its watch.
    fn end_lease(&mut self, key: &[u8]) -> Option<Lease> {
        let lease = self.leases.remove(key)?;
        self.unwatch(key);
        Some(lease)
    }

    /// Ends every lease that can no longer be filled.
    fn sweep_leases(&mut self, now: u64) {
        let dead: Vec<Key> = self
            .leases
            .iter()
            .filter(|(k, l)| !self.lease_live(k.as_slice(), l, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            self.end_lease(key.as_slice());
        }
    }
}

/// CACHE.GET: the key's string value, or on a miss a lease for exactly one caller.
///
/// # Errors
/// WRONGTYPE when the key holds another type; [`KvError::TooManyLeases`] when the key's
/// shard already has [`MAX_LEASES_PER_SHARD`] live leases.
pub fn cache_get(db: &DbRef<'_>, key: &[u8], lease_ms: u64) -> Result<CacheRead, KvError> {
    db.write(key, |slot| {
        let now = slot.now;
        if let Some(entry) = slot.shard.live(key, now) {
            return match &entry.value {
                v @ (Value::Int(_) | Value::Small(_) | Value::Str(_) | Value::Raw(_)) => {
                    Ok(CacheRead::Hit(strings::to_bytes(v)))
                }
                _ => Err(KvError::WrongType),
            };
        }
        let shard = &mut *slot.shard;
        if let Some(lease) = shard.leases.get(key).copied() {
            if shard.lease_live(key, &lease, now) {
                return Ok(CacheRead::Wait {
                    lease_left_ms: lease.deadline - now,
                });
            }
            shard.end_lease(key);
        }
        if shard.leases.len() >= MAX_LEASES_PER_SHARD {
            shard.sweep_leases(now);
            if shard.leases.len() >= MAX_LEASES_PER_SHARD {
                return Err(KvError::TooManyLeases);
            }
        }
        let token = next_token();
        let version = shard.watch(key);
        shard.leases.insert(
            Key::new(key),
            Lease {
                token,
                version,
                deadline: now.saturating_add(lease_ms),
            },
        );
        Ok(CacheRead::Lease { token })
    })
}

/// CACHE.FILL: stores `value` (with `expire_at`) if `token` is the key's live lease, and
/// ends the lease. Returns whether it stored.
///
/// A token that is unknown, already used, released, past its deadline, or whose key was
/// changed in any way since the lease was granted stores nothing.
///
/// # Errors
/// [`KvError::StringTooLong`] above the size limit (the lease stays).
pub fn cache_fill(
    db: &DbRef<'_>,
    key: &[u8],
    token: u64,
    value: &[u8],
    expire_at: Option<u64>,
) -> Result<bool, KvError> {
    if value.len() > db.max_string_len() {
        return Err(KvError::StringTooLong);
    }
    db.write(key, |slot| {
        let now = slot.now;
        let shard = &mut *slot.shard;
        let Some(lease) = shard.leases.get(key).copied() else {
            return Ok(false);
        };
        if lease.token != token {
            return Ok(false);
        }
        let live = shard.lease_live(key, &lease, now);
        shard.end_lease(key);
        if !live {
            return Ok(false);
        }
        slot.put(Value::from_bytes(value), expire_at);
        Ok(true)
    })
}

/// CACHE.RELEASE: gives a lease back unfilled (the loader failed), so the next reader
/// that misses gets a lease at once instead of waiting out the deadline. Returns whether
/// `token` was the key's lease.
pub fn cache_release(db: &DbRef<'_>, key: &[u8], token: u64) -> bool {
    db.write(key, |slot| {
        let shard = &mut *slot.shard;
        if shard.leases.get(key).is_some_and(|l| l.token == token) {
            shard.end_lease(key);
            true
        } else {
            false
        }
    })
}

/// Outstanding leases in the database (live or not yet swept), for INFO and tests.
pub fn lease_count(db: &DbRef<'_>) -> usize {
    let mut n = 0;
    db.for_each_shard(|_, view| {
        n += view.shard.leases.len();
        true
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strings::SetOptions;
    use crate::Keyspace;
    use crate::{keys, ManualClock};
    use std::sync::Arc;

    const T0: u64 = 1_800_000_000_000;

    fn keyspace() -> (Arc<ManualClock>, Keyspace) {
        let clock = Arc::new(ManualClock::new(T0));
        let ks = Keyspace::new(clock.clone(), 1024);
        (clock, ks)
    }

    fn token(read: CacheRead) -> u64 {
        match read {
            CacheRead::Lease { token } => token,
            other => panic!("expected a lease, got {other:?}"),
        }
    }

    #[test]
    fn one_lease_per_miss_then_hits() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let t = token(cache_get(&db, b"k", 10_000).unwrap());
        assert_eq!(
            cache_get(&db, b"k", 10_000).unwrap(),
            CacheRead::Wait {
                lease_left_ms: 10_000
            }
        );
        assert!(
            !cache_fill(&db, b"k", t ^ 1, b"v", None).unwrap(),
            "wrong token"
        );
        assert!(cache_fill(&db, b"k", t, b"v", None).unwrap());
        assert!(!cache_fill(&db, b"k", t, b"w", None).unwrap(), "used once");
        assert_eq!(
            cache_get(&db, b"k", 10_000).unwrap(),
            CacheRead::Hit(Bytes::from_static(b"v"))
        );
        assert_eq!(lease_count(&db), 0);
        assert_eq!(
            ks.db(0).unwrap().watched_version(b"k"),
            u64::MAX,
            "watch released"
        );
    }

    #[test]
    fn any_change_between_lease_and_fill_voids_the_token() {
        let (clock, ks) = keyspace();
        let db = ks.db(0).unwrap();
        // DEL (of a key set meanwhile), SET, EXPIRE and FLUSHDB each void it.
        let t = token(cache_get(&db, b"k", 10_000).unwrap());
        strings::set(&db, b"k", b"new", SetOptions::default()).unwrap();
        keys::del(&db, &[b"k".as_slice()]);
        assert!(!cache_fill(&db, b"k", t, b"stale", None).unwrap());
        assert_eq!(strings::get(&db, b"k").unwrap(), None, "no stale set");

        let t = token(cache_get(&db, b"k", 10_000).unwrap());
        strings::set(&db, b"k", b"direct", SetOptions::default()).unwrap();
        assert!(!cache_fill(&db, b"k", t, b"stale", None).unwrap());
        assert_eq!(strings::get(&db, b"k").unwrap().unwrap(), "direct");

        keys::del(&db, &[b"k".as_slice()]);
        let t = token(cache_get(&db, b"k", 10_000).unwrap());
        db.flush();
        assert!(!cache_fill(&db, b"k", t, b"stale", None).unwrap());

        // A deadline that passes voids it, and the next miss gets a new lease at once.
        let t = token(cache_get(&db, b"k", 100).unwrap());
        clock.advance(101);
        let db = ks.db(0).unwrap();
        let t2 = token(cache_get(&db, b"k", 100).unwrap());
        assert_ne!(t, t2);
        assert!(!cache_fill(&db, b"k", t, b"late", None).unwrap());
        assert!(cache_fill(&db, b"k", t2, b"fresh", Some(T0 + 10_000)).unwrap());
        assert_eq!(strings::get(&db, b"k").unwrap().unwrap(), "fresh");
        assert_eq!(lease_count(&db), 0);
    }

    #[test]
    fn release_hands_the_lease_on_and_wrong_types_are_refused() {
        let (_, ks) = keyspace();
        let db = ks.db(0).unwrap();
        let t = token(cache_get(&db, b"k", 10_000).unwrap());
        assert!(!cache_release(&db, b"k", t ^ 1));
        assert!(cache_release(&db, b"k", t));
        let t2 = token(cache_get(&db, b"k", 10_000).unwrap());
        assert!(!cache_fill(&db, b"k", t, b"v", None).unwrap());
        assert_eq!(
            cache_fill(&db, b"k", t2, &[0u8; 2048], None),
            Err(KvError::StringTooLong)
        );
        assert!(cache_fill(&db, b"k", t2, b"v", None).unwrap(), "lease kept");
        crate::lists::push(
            &db,
            b"l",
            crate::lists::End::Left,
            &[b"x".as_slice()],
            false,
        )
        .unwrap();
        assert_eq!(cache_get(&db, b"l", 10_000), Err(KvError::WrongType));
    }

    #[test]
    fn the_table_is_bounded_and_dead_leases_are_swept() {
        let (clock, ks) = keyspace();
        let db = ks.db(0).unwrap();
        // Fill one shard's table: keys whose shard is shard 0.
        let mut granted = 0;
        let mut i = 0u64;
        let mut refused = false;
        while !refused {
            let key = format!("key:{i}");
            i += 1;
            if ks.shard_of(key.as_bytes()) != 0 {
                continue;
            }
            match cache_get(&db, key.as_bytes(), 1_000) {
                Ok(CacheRead::Lease { .. }) => granted += 1,
                Err(KvError::TooManyLeases) => refused = true,
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(granted, MAX_LEASES_PER_SHARD);
        clock.advance(1_001);
        let db = ks.db(0).unwrap();
        let key = (i..)
            .map(|i| format!("key:{i}"))
            .find(|k| ks.shard_of(k.as_bytes()) == 0)
            .unwrap();
        assert!(matches!(
            cache_get(&db, key.as_bytes(), 1_000),
            Ok(CacheRead::Lease { .. })
        ));
        assert_eq!(lease_count(&db), 1, "expired leases swept");
    }
}
