//! Errors of the render crate. See `tender_format::error` for the rules.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    #[error("fleet spec {path}: {reason}")]
    Fleet { path: PathBuf, reason: String },
    #[error("rendering source {source_name} for cluster {cluster}: {reason}")]
    Render {
        source_name: String,
        cluster: String,
        reason: String,
    },
    #[error("cluster {cluster}: {error}")]
    ManifestSet {
        cluster: String,
        error: crate::manifest_set::ManifestSetError,
    },
}
