//! Sets commands.

use super::Spec;

/// The sets commands.
pub(super) static SPECS: &[Spec] = &[];
