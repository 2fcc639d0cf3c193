//! Errors of the OCI crate.
//!
//! The rules are tender's (see `tender_format::error`): one `thiserror` enum,
//! a message names the thing (registry, repository, digest, layout
//! directory) and the rule it broke, in one line. [`OciError::is_retryable`]
//! tells a passing fault (5xx, 429, a dropped connection) from a final one,
//! and [`OciError::is_integrity_failure`] tells content that does not match
//! its digest or size (the source's fault) from everything else.

use std::path::PathBuf;
use std::time::Duration;

use tender_format::Digest;

/// Any error of `tender-oci`.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A string that is not an image reference.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    /// A registry whose images cannot be given a site repository
    /// (`site_path`).
    #[error("registry {registry} has no site repository path: {reason}")]
    NoSiteRepository { registry: String, reason: String },

    /// A platform string that is not `os/arch[/variant]`.
    #[error("invalid platform {input:?}: {reason}")]
    InvalidPlatform { input: String, reason: String },

    /// A manifest or index that cannot be used.
    #[error("{what}: {reason}")]
    InvalidManifest { what: String, reason: String },

    /// A media type this crate does not handle where it must understand it.
    #[error("{what}: media type {media_type:?} is not supported ({reason})")]
    UnsupportedMediaType {
        what: String,
        media_type: String,
        reason: String,
    },

    /// Content does not hash to the digest that names it.
    #[error("{what}: content digest is {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },

    /// Content is not the size its descriptor says.
    #[error("{what}: {actual} bytes, its descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    /// Content larger than this crate accepts for its kind.
    #[error("{what}: more than the {limit} bytes allowed")]
    TooLarge { what: String, limit: u64 },

    /// The registry has no such manifest, blob or repository (HTTP 404).
    #[error("{what}: not found (HTTP 404)")]
    NotFound { what: String },

    /// The registry refused access even after authenticating (401/403).
    #[error("{what}: access denied (HTTP {status}): {message}")]
    Denied {
        what: String,
        status: u16,
        message: String,
    },

    /// Any other error status from a registry.
    #[error("{what}: registry answered HTTP {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
        /// The `Retry-After` the registry asked for, if any.
        retry_after: Option<Duration>,
    },

    /// The registry answered, but not as the distribution spec says.
    #[error("{what}: the registry broke the distribution protocol: {reason}")]
    Protocol { what: String, reason: String },

    /// No usable answer: connection refused or reset, timeout, body cut off.
    #[error("{what}: {detail}")]
    Transport { what: String, detail: String },

    /// The registry's host name does not resolve (DNS). Never retried: a
    /// name that is not in DNS now will not be in it a second later, and
    /// five tries only make an export with many such images slow to fail.
    #[error("{what}: host name {host} does not resolve ({detail})")]
    NameResolution {
        what: String,
        host: String,
        detail: String,
    },

    /// TLS failed (bad certificate, or a plain-HTTP registry spoken to over
    /// HTTPS). Never retried: it will fail the same way again.
    #[error("{what}: TLS failed: {detail}")]
    Tls { what: String, detail: String },

    /// The token flow with the registry's auth service failed.
    #[error("{registry}: authentication failed: {reason}")]
    Auth { registry: String, reason: String },

    /// Credentials could not be read (docker config, credential helper).
    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    /// A retryable error kept happening.
    #[error("{what}: gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        what: String,
        attempts: u32,
        last: Box<OciError>,
    },

    /// A platform filter that selects nothing in an index.
    #[error("{what}: no manifest for platform {wanted} (the index has {available})")]
    NoMatchingPlatform {
        what: String,
        wanted: String,
        available: String,
    },

    /// A platform filter that selects some, but not one and not all, of an
    /// index's manifests. tender keeps an index only whole (its digest is
    /// what signatures cover), or one platform manifest alone.
    #[error(
        "{what}: the platform filter selects {selected} of the {total} manifests of the index; \
         an index is kept only whole: filter on one platform, or on all of them"
    )]
    PartialIndex {
        what: String,
        selected: usize,
        total: usize,
    },

    /// An OCI image layout that is not one, or is damaged.
    #[error("OCI layout {dir}: {reason}")]
    Layout { dir: PathBuf, reason: String },

    /// No `org.opencontainers.image.ref.name` in `index.json` has this name.
    #[error("OCI layout {dir}: no image named {name:?}")]
    TagNotFound { dir: PathBuf, name: String },

    /// A blob the layout should hold is not there.
    #[error("OCI layout {dir}: blob {digest} is missing")]
    MissingBlob { dir: PathBuf, digest: Digest },

    /// A local I/O error, with what tender was doing.
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
}

impl OciError {
    /// Whether trying again may succeed: 5xx (but 501), 429, and transport
    /// failures. 4xx (401 is handled by the auth flow first), a host name
    /// that does not resolve, TLS, digest and local errors are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            OciError::Status { status, .. } => *status == 429 || (*status >= 500 && *status != 501),
            OciError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether content did not match its digest or size: the source (a
    /// registry, a file) is bad, not this machine.
    pub fn is_integrity_failure(&self) -> bool {
        match self {
            OciError::DigestMismatch { .. } | OciError::SizeMismatch { .. } => true,
            OciError::RetriesExhausted { last, .. } => last.is_integrity_failure(),
            _ => false,
        }
    }

    /// Whether the registry said 404 (or a layout has no such tag/blob).
    pub fn is_not_found(&self) -> bool {
        match self {
            OciError::NotFound { .. }
            | OciError::TagNotFound { .. }
            | OciError::MissingBlob { .. } => true,
            OciError::RetriesExhausted { last, .. } => last.is_not_found(),
            _ => false,
        }
    }

    /// The HTTP status a registry answered with, if this is such an error.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            OciError::NotFound { .. } => Some(404),
            OciError::Denied { status, .. } | OciError::Status { status, .. } => Some(*status),
            OciError::RetriesExhausted { last, .. } => last.http_status(),
            _ => None,
        }
    }

    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            OciError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Replaces the subject of a digest or size mismatch (the layout store
    /// knows only "blob sha256:..", the registry client knows where it came
    /// from).
    pub(crate) fn with_subject(self, subject: &str) -> Self {
        match self {
            OciError::DigestMismatch {
                expected, actual, ..
            } => OciError::DigestMismatch {
                what: subject.to_string(),
                expected,
                actual,
            },
            OciError::SizeMismatch {
                expected, actual, ..
            } => OciError::SizeMismatch {
                what: subject.to_string(),
                expected,
                actual,
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use tender_format::FromIo;

    #[test]
    fn retryable_classification() {
        let status = |status| OciError::Status {
            what: "x".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(501).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(
            OciError::Transport {
                what: "x".into(),
                detail: "reset".into()
            }
            .is_retryable()
        );
        assert!(
            !OciError::Tls {
                what: "x".into(),
                detail: "bad cert".into()
            }
            .is_retryable()
        );
        assert!(!OciError::NotFound { what: "x".into() }.is_retryable());
        // A name that does not resolve now will not a second later.
        assert!(
            !OciError::NameResolution {
                what: "manifest a.invalid/x:1".into(),
                host: "a.invalid".into(),
                detail: "Name or service not known".into(),
            }
            .is_retryable()
        );
        let denied = |status| OciError::Denied {
            what: "x".into(),
            status,
            message: String::new(),
        };
        assert!(!denied(401).is_retryable() && !denied(403).is_retryable());
    }

    #[test]
    fn no_variant_repeats_its_cause() {
        use tender_format::error::{chain_message, repeated_cause};
        let io = OciError::io(
            "writing blob sha256:ab",
            io::Error::new(io::ErrorKind::StorageFull, "no space left on device"),
        );
        assert_eq!(repeated_cause(&io), None, "{}", chain_message(&io));
        assert_eq!(
            chain_message(&io),
            "writing blob sha256:ab: no space left on device"
        );
        let failed = crate::FailedBlob {
            digest: Digest::of(b"x"),
            error: Box::new(io),
        };
        assert_eq!(repeated_cause(&failed), None, "{}", chain_message(&failed));
    }

    #[test]
    fn messages_name_the_thing() {
        let d = Digest::of(b"a");
        let e = OciError::DigestMismatch {
            what: "blob x".into(),
            expected: d,
            actual: Digest::of(b"b"),
        }
        .with_subject("127.0.0.1:5000/plant/gw blob");
        let text = e.to_string();
        assert!(text.starts_with("127.0.0.1:5000/plant/gw blob: content digest is sha256:"));
        assert!(text.contains(&d.to_string()));
        assert!(e.is_integrity_failure());
    }
}
