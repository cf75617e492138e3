//! `client-output-buffer-limit`: how much output may wait for a client before it is
//! disconnected, per class (Redis's syntax: `class hard soft seconds`, repeated).
//!
//! Enforced: the hard limit of `normal` clients (the replies of a batch waiting to be
//! written: a reply that takes the buffer over it closes the connection), and both
//! limits of `pubsub` clients (the bytes of published messages queued for a
//! subscriber): over the hard limit it is closed at once, over the soft limit when it
//! stays over it for longer than `seconds` (Redis's default: 8 MB for 60 s). A normal
//! client that stops reading costs at most one batch's replies anyway: the connection
//! stops reading its input until its output is written, so the `normal` soft limit is
//! kept for CONFIG GET only; `replica` is accepted (Girder has no replicas yet).

use std::sync::atomic::{AtomicU64, Ordering};

/// The limits, changed by CONFIG SET.
#[derive(Debug)]
pub struct OutputLimits {
    normal_hard: AtomicU64,
    pubsub_hard: AtomicU64,
    pubsub_soft: AtomicU64,
    pubsub_soft_secs: AtomicU64,
    text: parking_lot::Mutex<String>,
}

/// Redis's default.
pub const DEFAULT: &str = "normal 0 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60";

impl OutputLimits {
    /// Limits from Redis's syntax.
    ///
    /// # Errors
    /// A malformed value (see [`parse`]).
    pub fn new(text: &str) -> Result<Self, String> {
        let limits = Self {
            normal_hard: AtomicU64::new(0),
            pubsub_hard: AtomicU64::new(0),
            pubsub_soft: AtomicU64::new(0),
            pubsub_soft_secs: AtomicU64::new(0),
            text: parking_lot::Mutex::new(String::new()),
        };
        limits.set(DEFAULT)?;
        limits.set(text)?;
        Ok(limits)
    }

    /// Applies the classes named in `text`; the others keep their limits.
    ///
    /// # Errors
    /// A malformed value: nothing is changed.
    pub fn set(&self, text: &str) -> Result<(), String> {
        let classes = parse(text)?;
        let mut current = parse(&self.text.lock()).unwrap_or_default();
        for (class, limit) in classes {
            match class {
                Class::Normal => self.normal_hard.store(limit.hard, Ordering::Relaxed),
                Class::Pubsub => {
                    self.pubsub_hard.store(limit.hard, Ordering::Relaxed);
                    self.pubsub_soft.store(limit.soft, Ordering::Relaxed);
                    self.pubsub_soft_secs
                        .store(limit.soft_secs, Ordering::Relaxed);
                }
                Class::Replica => {}
            }
            current.retain(|(c, _)| *c != class);
            current.push((class, limit));
        }
        current.sort_by_key(|(c, _)| *c);
        *self.text.lock() = current
            .iter()
            .map(|(c, l)| format!("{} {} {} {}", c.name(), l.hard, l.soft, l.soft_secs))
            .collect::<Vec<_>>()
            .join(" ");
        Ok(())
    }

    /// As CONFIG GET shows it.
    pub fn describe(&self) -> String {
        self.text.lock().clone()
    }

    /// The hard limit of normal clients in bytes; 0 is none.
    pub fn normal_hard(&self) -> u64 {
        self.normal_hard.load(Ordering::Relaxed)
    }

    /// The hard limit of subscribers in bytes; 0 is none.
    pub fn pubsub_hard(&self) -> u64 {
        self.pubsub_hard.load(Ordering::Relaxed)
    }

    /// The soft limit of subscribers in bytes (0 is none), and how many seconds a
    /// subscriber may stay over it.
    pub fn pubsub_soft(&self) -> (u64, u64) {
        (
            self.pubsub_soft.load(Ordering::Relaxed),
            self.pubsub_soft_secs.load(Ordering::Relaxed),
        )
    }
}

/// A client class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Ordinary clients.
    Normal,
    /// Replicas.
    Replica,
    /// Subscribers.
    Pubsub,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Replica => "replica",
            Self::Pubsub => "pubsub",
        }
    }
}

/// One class's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limit {
    /// Bytes; 0 is none.
    pub hard: u64,
    /// Bytes; 0 is none.
    pub soft: u64,
    /// How long the soft limit may be exceeded.
    pub soft_secs: u64,
}

/// Parses Redis's syntax: `class hard soft seconds`, repeated; sizes in bytes or with
/// a unit (`k`, `kb`, `m`, `mb`, `g`, `gb`; `k` is 1000, `kb` 1024, as Redis reads them).
///
/// # Errors
/// Redis's message for a malformed value.
pub fn parse(text: &str) -> Result<Vec<(Class, Limit)>, String> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.is_empty() || !parts.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".to_owned());
    }
    parts
        .chunks(4)
        .map(|c| {
            let class = match c[0].to_ascii_lowercase().as_str() {
                "normal" => Class::Normal,
                "replica" | "slave" => Class::Replica,
                "pubsub" => Class::Pubsub,
                _ => {
                    return Err(
                        "Invalid client class specified in buffer limit configuration.".to_owned(),
                    )
                }
            };
            let size = |s: &str| {
                memory(s).ok_or_else(|| {
                    "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                        .to_owned()
                })
            };
            let soft_secs = c[3].parse::<u64>().map_err(|_| {
                "Error in hard, soft or soft_seconds setting in buffer limit configuration."
                    .to_owned()
            })?;
            Ok((
                class,
                Limit {
                    hard: size(c[1])?,
                    soft: size(c[2])?,
                    soft_secs,
                },
            ))
        })
        .collect()
}

/// A size as Redis's config reads it.
fn memory(s: &str) -> Option<u64> {
    let lower = s.to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1 << 20,
        "g" => 1_000_000_000,
        "gb" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_syntax_and_keeps_unnamed_classes() {
        let limits = OutputLimits::new("pubsub 32mb 8mb 60").unwrap();
        assert_eq!(limits.pubsub_hard(), 32 << 20);
        assert_eq!(limits.normal_hard(), 0);
        limits.set("normal 1kb 0 0").unwrap();
        assert_eq!(limits.normal_hard(), 1024);
        assert_eq!(limits.pubsub_hard(), 32 << 20);
        assert_eq!(
            limits.describe(),
            "normal 1024 0 0 replica 268435456 67108864 60 pubsub 33554432 8388608 60"
        );
        assert!(limits.set("normal 1x 0 0").is_err());
        assert!(limits.set("bogus 1 0 0").is_err());
        assert!(limits.set("normal 1 0").is_err());
        assert_eq!(
            limits.normal_hard(),
            1024,
            "a refused value changes nothing"
        );
        assert_eq!(memory("2k"), Some(2000));
        assert_eq!(memory("2KB"), Some(2048));
    }
}
