//! Errors of the delivery crate. See `tender_format::error` for the rules.

use std::io;

/// Why a manifest set could not be handed to a cluster's GitOps agent.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Oci(#[from] tender_oci::OciError),
    /// The manifest set (or a file list built from it) is not what a
    /// backend can carry: not YAML, a document that is not an object, an
    /// unsafe file name.
    #[error("manifest set: {0}")]
    Manifests(String),
    /// A delivery setting is unusable (an empty repository, a path that
    /// leaves its directory, a branch git refuses).
    #[error("delivery config: {0}")]
    Config(String),
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    /// An external tool (`git`, `kubectl`) could not be started.
    #[error("cannot run {program}")]
    Spawn {
        program: String,
        #[source]
        source: io::Error,
    },
    /// An external tool ran and failed; `stderr` is its last words.
    #[error("{program} {args} failed ({status}): {stderr}")]
    Tool {
        program: String,
        args: String,
        status: String,
        stderr: String,
    },
    /// The git remote moved while we committed, every time we tried.
    #[error(
        "git push to {repo} branch {branch} was rejected {attempts} times (someone else keeps pushing): {stderr}"
    )]
    PushRejected {
        repo: String,
        branch: String,
        attempts: usize,
        stderr: String,
    },
}

impl DeliverError {}
