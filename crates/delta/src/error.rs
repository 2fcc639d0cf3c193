//! Errors of the delta codec.
//!
//! Rules, as in the other tender crates: a variant says what went wrong in
//! the user's terms; I/O errors carry what was being done; anything wrong
//! with a patch's own bytes is `Corrupt` (the bundle is at fault, exit 3).

use tender_format::Digest;

#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    /// The patch's bytes break the patch format (§8.3 of the bundle spec).
    #[error("patch for {target} is corrupt: {reason}")]
    Corrupt { target: Digest, reason: String },
    /// The rebuilt blob is not the blob the manifest names.
    #[error("patch for {target} rebuilt a blob with digest {got} ({size} bytes)")]
    Mismatch {
        target: Digest,
        got: Digest,
        size: u64,
    },
    /// The source blob the site holds is not the one the patch was made from.
    #[error("source blob {source_digest} for patch of {target}: {reason}")]
    Source {
        target: Digest,
        source_digest: Digest,
        reason: String,
    },
    /// Rebuilding would need more memory than the configured limit.
    #[error("patch for {target} needs a {needed}-byte reference window; the limit is {limit}")]
    WindowTooLarge {
        target: Digest,
        needed: u64,
        limit: u64,
    },
}

/// The bundle (the patch) is at fault when its bytes break the format or
/// rebuild something else than the manifest names.
impl tender_format::Verdict for DeltaError {
    fn is_rejection(&self) -> bool {
        matches!(
            self,
            DeltaError::Corrupt { .. } | DeltaError::Mismatch { .. } | DeltaError::Source { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use tender_format::FromIo;

    #[test]
    fn no_variant_repeats_its_cause() {
        use tender_format::error::{chain_message, repeated_cause};
        let e = DeltaError::io_with("reading the source blob")(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "permission denied",
        ));
        assert_eq!(repeated_cause(&e), None, "{}", chain_message(&e));
        assert_eq!(
            chain_message(&e),
            "reading the source blob: permission denied"
        );
        let rebuild = crate::gzip::RebuildError::from(io::Error::other("disk gone"));
        assert_eq!(chain_message(&rebuild), "disk gone");
    }
}
