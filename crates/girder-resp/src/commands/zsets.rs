//! Zsets commands.

use super::Spec;

/// The zsets commands.
pub(super) static SPECS: &[Spec] = &[];
