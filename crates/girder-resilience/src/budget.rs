//! Retry budget in the style of Finagle's `RetryBudget`: retries may be at most a
//! fixed ratio of recent requests, plus a small floor per second, so a failing
//! dependency sees at most `1 + ratio` times its normal load instead of
//! `max_attempts` times.
//!
//! Accounting (the same fixed-point scheme as Finagle's `TokenRetryBudget`): each
//! request deposits [`SCALE`] units; each retry withdraws `SCALE / ratio` units; a
//! reserve of `min_per_sec * ttl_secs` withdrawals is always available. Deposits and
//! withdrawals are recorded in a sliding window of `ttl` (split into
//! [`WINDOW_SLICES`] slices) and expire with it, so a budget drained by an outage
//! recovers on its own once the window has passed.
//!
//! Time comes from tokio's clock ([`tokio::time::Instant`]), so paused-time tests
//! drive the window exactly.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

use crate::window::TimeWindow;

/// Units one request deposits; withdrawals are `SCALE / ratio`, so ratios down to
/// 0.1 % keep integer precision.
pub const SCALE: i64 = 1000;
/// Number of slices the `ttl` window is divided into: deposits expire between
/// `ttl - ttl / WINDOW_SLICES` and `ttl` after they were made.
pub const WINDOW_SLICES: u32 = 10;

/// Configuration for a [`RetryBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetConfig {
    /// How long deposits and withdrawals count.
    pub ttl: Duration,
    /// Retries allowed per second regardless of traffic, so a low-traffic client
    /// can still retry at all.
    pub min_retries_per_sec: u32,
    /// Retries allowed as a fraction of requests (0.2 = one retry per five requests).
    pub retry_ratio: f64,
}

impl Default for BudgetConfig {
    /// Finagle's defaults: 10 s window, 10 retries/s floor, 20 % of requests.
    fn default() -> Self {
        BudgetConfig {
            ttl: Duration::from_secs(10),
            min_retries_per_sec: 10,
            retry_ratio: 0.2,
        }
    }
}

/// A shared retry budget. Cloning is cheap and clones share the same account.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use girder_resilience::{BudgetConfig, RetryBudget};
///
/// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
/// let budget = RetryBudget::new(BudgetConfig {
///     ttl: Duration::from_secs(10),
///     min_retries_per_sec: 0,
///     retry_ratio: 0.5,
/// });
/// budget.deposit();
/// budget.deposit();
/// assert!(budget.try_withdraw()); // two requests pay for one retry
/// assert!(!budget.try_withdraw());
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct RetryBudget {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deposit: i64,
    withdrawal: i64,
    reserve: i64,
    // A std Mutex: held for a few arithmetic operations, never across an await.
    window: Mutex<TimeWindow>,
}

impl RetryBudget {
    /// Creates a budget. A `retry_ratio` of 0 (or not finite) allows only the
    /// per-second floor.
    pub fn new(config: BudgetConfig) -> Self {
        let ratio_usable = config.retry_ratio.is_finite() && config.retry_ratio > 0.0;
        // With no usable ratio, requests deposit nothing and only the reserve pays.
        let (deposit, withdrawal) = if ratio_usable {
            (SCALE, ((SCALE as f64 / config.retry_ratio) as i64).max(1))
        } else {
            (0, SCALE)
        };
        let ttl_secs = config.ttl.as_secs().max(1) as i64;
        let reserve = i64::from(config.min_retries_per_sec)
            .saturating_mul(ttl_secs)
            .saturating_mul(withdrawal);
        RetryBudget {
            inner: Arc::new(Inner {
                deposit,
                withdrawal,
                reserve,
                window: Mutex::new(TimeWindow::new(config.ttl, WINDOW_SLICES, Instant::now())),
            }),
        }
    }

    /// Records one request (first attempts only, not retries).
    pub fn deposit(&self) {
        if self.inner.deposit != 0 {
            self.lock().add(Instant::now(), self.inner.deposit, 0);
        }
    }

    /// Takes the tokens for one retry if the balance allows it; `false` means the
    /// retry must not happen.
    pub fn try_withdraw(&self) -> bool {
        let mut w = self.lock();
        let now = Instant::now();
        let (sum, _) = w.sum(now);
        if sum + self.inner.reserve >= self.inner.withdrawal {
            w.add(now, -self.inner.withdrawal, 0);
            true
        } else {
            false
        }
    }

    /// How many retries the budget would allow right now.
    pub fn balance(&self) -> u64 {
        let mut w = self.lock();
        let (sum, _) = w.sum(Instant::now());
        u64::try_from((sum + self.inner.reserve) / self.inner.withdrawal).unwrap_or(0)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TimeWindow> {
        // A panic while holding this lock leaves consistent integers; keep going.
        self.inner
            .window
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}
