//! Lists commands.

use super::Spec;

/// The lists commands.
pub(super) static SPECS: &[Spec] = &[];
