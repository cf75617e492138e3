//! The one error type every pattern in this crate returns.
//!
//! `E` is the wrapped call's own error. The pattern errors carry no `E`, except
//! [`Error::BudgetExhausted`], which keeps the last failure so the caller can still
//! see why the call failed when the budget stopped retrying.

use std::time::Duration;

/// Outcome of a call made through one of this crate's patterns when it did not succeed.
///
/// `Display` needs `E: Display`; the enum is a `std::error::Error` whenever `E` is
/// `Debug + Display`, so it also works with plain `String` errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error<E> {
    /// The wrapped call itself failed (and, under a retry policy, was not retried
    /// again: it was not retryable, or attempts or elapsed time ran out).
    #[error("{0}")]
    Inner(E),
    /// The circuit breaker is open (or half-open with all probes in flight) and
    /// rejected the call without running it.
    #[error("circuit breaker is open: call rejected without being attempted")]
    CircuitOpen,
    /// The bulkhead had every slot busy and its wait queue full, or the call waited
    /// longer than the bulkhead's maximum wait; the call was not run.
    #[error("bulkhead is full: call rejected without being attempted")]
    BulkheadFull,
    /// The call did not complete within the given duration and was dropped.
    #[error("call timed out after {0:?}")]
    Timeout(Duration),
    /// The call failed, was retryable, but the retry budget had no tokens left, so
    /// it was not retried. Holds the last failure.
    #[error("retry budget exhausted; last error: {0}")]
    BudgetExhausted(E),
}

impl<E> Error<E> {
    /// The wrapped call's error, if this error carries one
    /// ([`Error::Inner`] or [`Error::BudgetExhausted`]).
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) | Error::BudgetExhausted(e) => Some(e),
            _ => None,
        }
    }

    /// `true` when the call was refused before running
    /// ([`Error::CircuitOpen`] or [`Error::BulkheadFull`]): the usual moment to
    /// serve a fallback without having loaded the dependency.
    pub fn is_rejection(&self) -> bool {
        matches!(self, Error::CircuitOpen | Error::BulkheadFull)
    }

    /// Applies `f` to the wrapped call's error, keeping pattern errors as they are.
    pub fn map_inner<F, G>(self, f: G) -> Error<F>
    where
        G: FnOnce(E) -> F,
    {
        match self {
            Error::Inner(e) => Error::Inner(f(e)),
            Error::BudgetExhausted(e) => Error::BudgetExhausted(f(e)),
            Error::CircuitOpen => Error::CircuitOpen,
            Error::BulkheadFull => Error::BulkheadFull,
            Error::Timeout(d) => Error::Timeout(d),
        }
    }
}

impl<E> Error<Error<E>> {
    /// Collapses the nesting that stacking patterns produces (for example a retry
    /// around a breaker yields `Error<Error<E>>`) into one level.
    ///
    /// `BudgetExhausted(CircuitOpen)` becomes `CircuitOpen`: the budget stopped a
    /// retry, but the failure the caller must act on is the open circuit.
    pub fn flatten(self) -> Error<E> {
        match self {
            Error::Inner(inner) => inner,
            Error::BudgetExhausted(Error::Inner(e)) => Error::BudgetExhausted(e),
            Error::BudgetExhausted(other) => other,
            Error::CircuitOpen => Error::CircuitOpen,
            Error::BulkheadFull => Error::BulkheadFull,
            Error::Timeout(d) => Error::Timeout(d),
        }
    }
}
