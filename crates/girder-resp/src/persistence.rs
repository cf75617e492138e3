//! The seam to whatever keeps the keyspace on disk (the binary wires the journal behind
//! it): SAVE, BGSAVE, LASTSAVE, BGREWRITEAOF, INFO persistence and the CONFIG settings
//! `appendonly`, `appendfsync` and `save`. The front end knows nothing of files.

/// What the RESP front end may ask of persistence.
pub trait Persistence: Send + Sync + std::fmt::Debug + 'static {
    /// Takes a snapshot now and returns when it is durable (SAVE). Blocking.
    ///
    /// # Errors
    /// Why it failed, for the client.
    fn save(&self) -> Result<(), String>;
    /// Starts a snapshot in the background (BGSAVE, BGREWRITEAOF: one mechanism).
    ///
    /// # Errors
    /// One is already running, or it could not start.
    fn bgsave(&self) -> Result<(), String>;
    /// When the last snapshot completed, in seconds since the epoch (LASTSAVE).
    fn last_save_secs(&self) -> u64;
    /// Whether every write is journaled (`appendonly`).
    fn appendonly(&self) -> bool;
    /// Turns the append-only journal on (taking a snapshot first) or off. Blocking.
    ///
    /// # Errors
    /// The snapshot failed.
    fn set_appendonly(&self, on: bool) -> Result<(), String>;
    /// `always`, `everysec` or `no`.
    fn appendfsync(&self) -> &'static str;
    /// Changes when journaled writes reach the disk: `always`, `everysec` or `no`.
    ///
    /// # Errors
    /// Another value.
    fn set_appendfsync(&self, policy: &str) -> Result<(), String>;
    /// The snapshot rules, Redis's `save` syntax ("3600 1 300 100").
    fn save_rules(&self) -> String;
    /// Replaces the snapshot rules.
    ///
    /// # Errors
    /// A malformed rule list.
    fn set_save_rules(&self, rules: &str) -> Result<(), String>;
    /// Lines for INFO's `# Persistence` section (`name:value`).
    fn info(&self) -> Vec<(&'static str, String)>;
}

/// Parses Redis's `save` syntax: pairs of seconds and changes, or empty (no rules).
///
/// # Errors
/// An odd count, or a number that is not a positive integer.
pub fn parse_save_rules(text: &str) -> Result<Vec<(u64, u64)>, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if !parts.len().is_multiple_of(2) {
        return Err("Invalid save parameters".to_owned());
    }
    parts
        .chunks(2)
        .map(|pair| {
            let secs = pair[0].parse::<u64>().ok().filter(|s| *s > 0);
            let changes = pair[1].parse::<u64>().ok();
            match (secs, changes) {
                (Some(s), Some(c)) => Ok((s, c)),
                _ => Err("Invalid save parameters".to_owned()),
            }
        })
        .collect()
}

/// Formats snapshot rules as Redis's `save` value.
pub fn format_save_rules(rules: &[(u64, u64)]) -> String {
    rules
        .iter()
        .map(|(s, c)| format!("{s} {c}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_rules_round_trip() {
        assert_eq!(parse_save_rules(""), Ok(vec![]));
        assert_eq!(
            parse_save_rules("3600 1 300 100"),
            Ok(vec![(3600, 1), (300, 100)])
        );
        assert_eq!(
            format_save_rules(&[(3600, 1), (300, 100)]),
            "3600 1 300 100"
        );
        assert!(parse_save_rules("3600").is_err());
        assert!(parse_save_rules("0 1").is_err());
        assert!(parse_save_rules("x 1").is_err());
        assert!(parse_save_rules("10 -1").is_err());
    }
}
