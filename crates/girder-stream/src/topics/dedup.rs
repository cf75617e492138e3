//! The deduplication window of a topic: message id → where it was first stored.
//!
//! Invariants: an id is answered as a duplicate only while `now < first_seen + window`;
//! the map holds at most `max_entries` ids (the oldest go first when it is full, so a
//! producer that floods ids shortens the effective window rather than growing memory);
//! `order` lists exactly the map's ids, oldest first, so expiry is a pop from the front.

use std::collections::{HashMap, VecDeque};

/// Where a message was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Placed {
    pub partition: u32,
    pub offset: u64,
}

#[derive(Debug)]
pub(crate) struct Dedup {
    window_ms: u64,
    max_entries: usize,
    ids: HashMap<String, (Placed, u64)>,
    /// (timestamp, id), in insertion order; timestamps are non-decreasing because
    /// `insert` clamps a clock that went backwards to the last one seen.
    order: VecDeque<(u64, String)>,
}

impl Dedup {
    pub(crate) fn new(window_ms: u64, max_entries: usize) -> Self {
        Self {
            window_ms,
            max_entries,
            ids: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Where `id` was stored, if it was seen within the window before `now_ms`.
    pub(crate) fn get(&mut self, id: &str, now_ms: u64) -> Option<Placed> {
        self.expire(now_ms);
        self.ids.get(id).map(|(placed, _)| *placed)
    }

    /// Remembers `id` as stored at `placed` at `ts_ms`.
    pub(crate) fn insert(&mut self, id: String, placed: Placed, ts_ms: u64) {
        if self.window_ms == 0 || self.max_entries == 0 {
            return;
        }
        let ts = self
            .order
            .back()
            .map_or(ts_ms, |(last, _)| ts_ms.max(*last));
        if self.ids.insert(id.clone(), (placed, ts)).is_some() {
            // Re-inserted after expiry raced with a reader: drop the stale order entry.
            self.order.retain(|(_, old)| *old != id);
        }
        self.order.push_back((ts, id));
        while self.order.len() > self.max_entries {
            if let Some((_, old)) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
    }

    fn expire(&mut self, now_ms: u64) {
        while let Some((ts, _)) = self.order.front() {
            if ts.saturating_add(self.window_ms) > now_ms {
                break;
            }
            if let Some((_, id)) = self.order.pop_front() {
                self.ids.remove(&id);
            }
        }
    }

    /// Ids remembered (some may be expired but not yet dropped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Placed = Placed {
        partition: 0,
        offset: 7,
    };

    #[test]
    fn answers_within_the_window_only() {
        let mut d = Dedup::new(100, 10);
        d.insert("a".into(), P, 1_000);
        assert_eq!(d.get("a", 1_000), Some(P));
        assert_eq!(d.get("a", 1_099), Some(P));
        assert_eq!(d.get("a", 1_100), None);
        assert_eq!(d.len(), 0);
    }

    #[test]
    fn is_bounded_oldest_first() {
        let mut d = Dedup::new(u64::MAX, 3);
        for (i, id) in ["a", "b", "c", "d"].into_iter().enumerate() {
            d.insert(id.into(), P, i as u64);
        }
        assert_eq!(d.len(), 3);
        assert_eq!(d.get("a", 10), None);
        assert_eq!(d.get("d", 10), Some(P));
    }

    #[test]
    fn zero_window_remembers_nothing() {
        let mut d = Dedup::new(0, 3);
        d.insert("a".into(), P, 1);
        assert_eq!(d.get("a", 1), None);
    }
}
