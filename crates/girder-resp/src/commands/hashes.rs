//! Hashes commands.

use super::Spec;

/// The hashes commands.
pub(super) static SPECS: &[Spec] = &[];
