//! Errors of the trust crate. See `tender_format::error` for the rules.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    #[error("{path}: not an ed25519 {what} key in PEM form ({reason})")]
    BadKey {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    /// A key that must be private is readable or writable by others.
    #[error("{0}; refusing to use it")]
    KeyTooOpen(TooOpen),
    #[error("{path} already exists; refusing to overwrite a key")]
    KeyExists { path: PathBuf },
    #[error("trust policy {path}: {reason}")]
    BadPolicy { path: PathBuf, reason: String },
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The signatures on a bundle do not satisfy the policy. A rejection:
    /// the CLI exits 3.
    #[error("{0}")]
    Untrusted(String),
}

/// A private key file that users other than its owner may read or write,
/// as ssh words it. `tender keygen` writes keys 0600; a looser mode means
/// the key was copied or edited carelessly, and anyone on the machine who
/// can read it can sign as it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooOpen {
    pub path: PathBuf,
    /// The file's permission bits (`0o644`).
    pub mode: u32,
}

impl fmt::Display for TooOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "permissions {:04o} for {} are too open: a private key must be readable by its \
             owner only (chmod 600 {})",
            self.mode,
            self.path.display(),
            self.path.display()
        )
    }
}

/// Signatures that do not satisfy the policy are the bundle's fault.
impl tender_format::Verdict for TrustError {
    fn is_rejection(&self) -> bool {
        matches!(self, TrustError::Untrusted(_))
    }
}
