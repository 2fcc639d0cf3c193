//! Hooks for progress and retries, so the CLI can show them. The library
//! itself never prints.

use std::time::Duration;

use tender_format::Digest;

use crate::error::OciError;

/// How a blob transfer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// Bytes were moved (downloaded, or uploaded).
    Transferred,
    /// The destination already had it (layout store, or registry HEAD).
    AlreadyPresent,
    /// The registry mounted it from another repository.
    Mounted,
}

/// Receives events from a [`crate::RegistryClient`]. Every method has an
/// empty default; called from the client's worker threads, so keep them
/// quick.
pub trait Observer: Send + Sync {
    /// A retryable error happened on try number `attempt`; the next try
    /// starts after `delay`.
    fn on_retry(&self, what: &str, attempt: u32, error: &OciError, delay: Duration) {
        let _ = (what, attempt, error, delay);
    }

    /// A blob transfer begins (`size` from its descriptor).
    fn on_blob_start(&self, digest: &Digest, size: u64) {
        let _ = (digest, size);
    }

    /// `bytes` of the blob have moved so far in the current try (restarts
    /// from 0 when a transfer is retried).
    fn on_blob_progress(&self, digest: &Digest, bytes: u64) {
        let _ = (digest, bytes);
    }

    /// The blob is done.
    fn on_blob_done(&self, digest: &Digest, size: u64, outcome: BlobOutcome) {
        let _ = (digest, size, outcome);
    }
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopObserver;

impl Observer for NoopObserver {}
