//! GCRA (generic cell rate algorithm), the exact form of a token bucket.
//!
//! State is one number, the theoretical arrival time (TAT): the instant at which
//! the bucket would be full again. With emission interval `T = period / limit`
//! (rounded up) and capacity `burst`, a request of `cost` at `now` is admitted iff
//! `max(TAT, now) + cost·T <= now + burst·T`, and then `TAT := max(TAT, now) + cost·T`.
//!
//! **Why idle keys can be forgotten:** when `TAT <= now` the check uses
//! `max(TAT, now) = now`, exactly what a new key (TAT = 0) uses, so the stored TAT
//! no longer influences any decision; dropping it is invisible.

use super::Algorithm;
use crate::{Decision, LimitError, Quota};

/// GCRA / token bucket. Per-key state is a single `u64` TAT.
#[derive(Debug, Clone)]
pub struct Gcra {
    quota: Quota,
    /// Emission interval T in ns (rounded up, so never faster than configured).
    t: u64,
    /// `burst · T`: how far the TAT may run ahead of `now` after an admission.
    dvt: u64,
    /// Divides by `t` without a hardware divide (see [`Reciprocal`]).
    per_t: Reciprocal,
}

/// Exact division by a fixed divisor with one multiply and one correction.
///
/// `remaining = slack / T` is on every check's path, and a 64-bit `div` costs
/// more (~25-40 cycles on common x86) than the rest of a direct check. With
/// `m = floor((2^64 - 1) / d)`, `q = (x·m) >> 64` underestimates `x / d` by at
/// most one (the error `x·(2^64 - m·d) / (d·2^64)` is `< x / 2^64 < 1`), so a
/// single comparison makes it exact.
#[derive(Debug, Clone, Copy)]
struct Reciprocal {
    d: u64,
    m: u64,
}

impl Reciprocal {
    fn new(d: u64) -> Self {
        Self { d, m: u64::MAX / d }
    }

    #[inline]
    fn div(self, x: u64) -> u64 {
        let q = ((u128::from(x) * u128::from(self.m)) >> 64) as u64;
        if x - q * self.d >= self.d {
            q + 1
        } else {
            q
        }
    }
}

impl Gcra {
    /// A GCRA for `quota` (`limit` per `period`, capacity `burst`).
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidQuota`] if [`Quota::validate`] fails.
    pub fn new(quota: Quota) -> Result<Self, LimitError> {
        quota.validate()?;
        let t = quota.emission_interval_nanos();
        Ok(Self {
            quota,
            t,
            dvt: t * quota.burst,
            per_t: Reciprocal::new(t),
        })
    }

    /// The TAT after admitting `cost` at `now` for a key whose stored TAT is
    /// `tat`, or `None` if the request is denied (nothing to store).
    ///
    /// Split from the [`Decision`] so the direct limiter's compare-and-swap loop
    /// works on plain integers and builds the decision once, after the CAS; a
    /// `(Decision, Option<u64>)` returned through the loop was spilled to the
    /// stack on every check.
    #[inline]
    pub(crate) fn admit(&self, tat: u64, now: u64, cost: u64) -> Option<u64> {
        if cost > self.quota.burst {
            return None;
        }
        // cost·T <= burst·T, which validate() proved fits in u64.
        let new_tat = tat.max(now).saturating_add(cost * self.t);
        (new_tat <= now.saturating_add(self.dvt)).then_some(new_tat)
    }

    /// The decision for an admission that stored `new_tat` at `now`.
    #[inline]
    pub(crate) fn allowed(&self, new_tat: u64, now: u64) -> Decision {
        let limit_at = now.saturating_add(self.dvt);
        Decision::allow(self.per_t.div(limit_at - new_tat), new_tat - now)
    }

    /// The decision for a denial (or a read with `cost` 0) against stored `tat` at `now`.
    #[inline]
    pub(crate) fn denied(&self, tat: u64, now: u64, cost: u64) -> Decision {
        let tat = tat.max(now);
        let limit_at = now.saturating_add(self.dvt);
        // Saturating: a clock read earlier than a stored admission (see `Clock`)
        // can leave `tat` past `limit_at`.
        let remaining = self.per_t.div(limit_at.saturating_sub(tat));
        if cost > self.quota.burst {
            return Decision::deny(remaining, tat - now, u64::MAX);
        }
        let new_tat = tat.saturating_add(cost * self.t);
        if new_tat <= limit_at {
            // Only reached for cost 0, which admits without spending.
            return Decision::allow(remaining, tat - now);
        }
        Decision::deny(remaining, tat - now, new_tat - limit_at)
    }
}

impl Algorithm for Gcra {
    type State = u64;

    fn new_state(&self) -> u64 {
        0
    }

    #[inline]
    fn check(&self, state: &mut u64, now: u64, cost: u64) -> Decision {
        match self.admit(*state, now, cost) {
            Some(new_tat) if cost > 0 => {
                *state = new_tat;
                self.allowed(new_tat, now)
            }
            _ => self.denied(*state, now, cost),
        }
    }

    #[inline]
    fn fresh_at(&self, state: &u64) -> u64 {
        *state
    }

    fn quota(&self) -> &Quota {
        &self.quota
    }

    fn capacity(&self) -> u64 {
        self.quota.burst
    }
}

#[cfg(test)]
mod tests {
    use super::Reciprocal;

    #[test]
    fn reciprocal_division_is_exact() {
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            1_000,
            999_983,
            1 << 32,
            (1 << 63) + 1,
            u64::MAX,
        ];
        let mut x = 0x0123_4567_89ab_cdefu64;
        for d in divisors {
            let r = Reciprocal::new(d);
            for probe in [0, 1, d - 1, d, d.saturating_add(1), u64::MAX, u64::MAX - 1] {
                assert_eq!(r.div(probe), probe / d, "{probe} / {d}");
            }
            for _ in 0..10_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                assert_eq!(r.div(x), x / d, "{x} / {d}");
                assert_eq!(r.div(x >> 20), (x >> 20) / d);
            }
        }
    }
}
