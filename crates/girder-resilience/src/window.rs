//! Sliding windows shared by the retry budget and the circuit breaker.
//!
//! [`TimeWindow`] keeps two counters per time slice in a ring; a slice is cleared
//! when the ring wraps onto it, so an entry counts for between `span - slice` and
//! `span` after it was added. [`CountWindow`] keeps the outcomes of the last `n`
//! calls. Neither is thread-safe by itself: owners keep them behind a short Mutex.

use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Two counters (`a`, `b`) summed over a sliding time span.
#[derive(Debug)]
pub(crate) struct TimeWindow {
    slots: Vec<(i64, i64)>,
    slice: Duration,
    epoch: Instant,
    /// Index (in slices since `epoch`) of the newest slot written.
    head: u64,
}

impl TimeWindow {
    pub(crate) fn new(span: Duration, slices: u32, now: Instant) -> Self {
        let slices = slices.max(1);
        let slice = (span / slices).max(Duration::from_nanos(1));
        TimeWindow {
            slots: vec![(0, 0); slices as usize],
            slice,
            epoch: now,
            head: 0,
        }
    }

    fn index(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since / self.slice.as_nanos()).unwrap_or(u64::MAX)
    }

    /// Moves the head to `now`, clearing every slot that fell out of the span.
    fn advance(&mut self, now: Instant) {
        let idx = self.index(now);
        if idx <= self.head {
            return;
        }
        let len = self.slots.len() as u64;
        let gap = (idx - self.head).min(len);
        for i in 0..gap {
            let slot = ((idx - i) % len) as usize;
            self.slots[slot] = (0, 0);
        }
        self.head = idx;
    }

    pub(crate) fn add(&mut self, now: Instant, a: i64, b: i64) {
        self.advance(now);
        let slot = (self.head % self.slots.len() as u64) as usize;
        self.slots[slot].0 += a;
        self.slots[slot].1 += b;
    }

    pub(crate) fn sum(&mut self, now: Instant) -> (i64, i64) {
        self.advance(now);
        self.slots
            .iter()
            .fold((0, 0), |(a, b), &(x, y)| (a + x, b + y))
    }

    pub(crate) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| *s = (0, 0));
    }
}

/// Outcomes (`true` = failure) of the last `capacity` calls.
#[derive(Debug)]
pub(crate) struct CountWindow {
    outcomes: VecDeque<bool>,
    capacity: usize,
    failures: u64,
}

impl CountWindow {
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        CountWindow {
            outcomes: VecDeque::with_capacity(capacity),
            capacity,
            failures: 0,
        }
    }

    pub(crate) fn push(&mut self, failed: bool) {
        if self.outcomes.len() == self.capacity {
            if let Some(true) = self.outcomes.pop_front() {
                self.failures -= 1;
            }
        }
        self.outcomes.push_back(failed);
        self.failures += u64::from(failed);
    }

    /// `(calls, failures)` in the window.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.outcomes.len() as u64, self.failures)
    }

    pub(crate) fn clear(&mut self) {
        self.outcomes.clear();
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_window_expires_after_span() {
        let t0 = Instant::now();
        let mut w = TimeWindow::new(Duration::from_secs(10), 10, t0);
        w.add(t0, 5, 1);
        w.add(t0 + Duration::from_millis(4_500), 7, 0);
        assert_eq!(w.sum(t0 + Duration::from_millis(9_999)), (12, 1));
        // Slice 0 is reused at t = 10 s: the first entry has expired, the second not.
        assert_eq!(w.sum(t0 + Duration::from_secs(10)), (7, 0));
        // The second entry lives in slice [4 s, 5 s), reused at 14 s: it counted
        // for 9.5 s, within the documented [span - slice, span].
        assert_eq!(w.sum(t0 + Duration::from_millis(13_999)), (7, 0));
        assert_eq!(w.sum(t0 + Duration::from_secs(14)), (0, 0));
        // A jump far beyond the span clears everything without looping per slice.
        w.add(t0 + Duration::from_secs(16), 3, 3);
        assert_eq!(w.sum(t0 + Duration::from_secs(1_000_000)), (0, 0));
    }

    #[test]
    fn count_window_keeps_last_n() {
        let mut w = CountWindow::new(3);
        for failed in [true, true, false] {
            w.push(failed);
        }
        assert_eq!(w.totals(), (3, 2));
        w.push(false); // evicts the first failure
        assert_eq!(w.totals(), (3, 1));
        w.push(false);
        w.push(false);
        assert_eq!(w.totals(), (3, 0));
    }
}
