//! Whether this process should receive traffic.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Shared readiness state: not ready while any service says so, or once draining began.
///
/// Cloning is cheap; all clones see the same state.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    draining: AtomicBool,
    /// Services that are not ready yet, with the reason they give. Bounded by the number
    /// of services in the process (names are `&'static str`, never client input).
    pending: Mutex<BTreeMap<&'static str, String>>,
}

/// A snapshot of [`Readiness`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadinessStatus {
    /// True when traffic may be sent here.
    pub ready: bool,
    /// True once shutdown began.
    pub draining: bool,
    /// Services not ready, with their reasons.
    pub pending: Vec<(String, String)>,
}

impl Readiness {
    /// Marks `service` as not ready, with a reason shown by `/readyz`.
    pub fn mark_not_ready(&self, service: &'static str, reason: impl Into<String>) {
        self.lock().insert(service, reason.into());
    }

    /// Marks `service` as ready.
    pub fn mark_ready(&self, service: &'static str) {
        self.lock().remove(service);
    }

    /// Starts draining: from now on the process reports not ready, for good.
    pub fn begin_drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// The current state.
    pub fn status(&self) -> ReadinessStatus {
        let draining = self.inner.draining.load(Ordering::SeqCst);
        let pending: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        ReadinessStatus {
            ready: !draining && pending.is_empty(),
            draining,
            pending,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, String>> {
        // A panic while holding this lock cannot leave the map inconsistent (single
        // insert/remove), so a poisoned lock is still usable.
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_until_a_service_objects_or_drain_begins() {
        let r = Readiness::default();
        assert!(r.status().ready);
        r.mark_not_ready("resp", "loading snapshot");
        let s = r.status();
        assert!(!s.ready);
        assert_eq!(s.pending, vec![("resp".into(), "loading snapshot".into())]);
        r.mark_ready("resp");
        assert!(r.status().ready);
        r.begin_drain();
        assert!(!r.status().ready);
        assert!(r.status().draining);
    }
}
