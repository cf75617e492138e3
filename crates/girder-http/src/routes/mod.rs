//! Route handlers, one file per family. Each file owns its state type, its `router()`, and
//! the `#[utoipa::path]` annotations that put it in the OpenAPI document.

pub mod health;
pub mod ids;
pub mod jobs;
pub mod topics;
