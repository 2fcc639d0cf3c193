//! Errors of the import crate. See `tender_format::error` for the rules.

use tender_format::Rejection;
use tender_trust::TrustError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Format(#[from] tender_format::Error),
    #[error(transparent)]
    Trust(#[from] TrustError),
}

impl From<Rejection> for ImportError {
    fn from(r: Rejection) -> Self {
        ImportError::Format(r.into())
    }
}

impl ImportError {
    /// Whether the bundle (not the machine) is at fault: exit code 3.
    pub fn is_rejection(&self) -> bool {
        match self {
            ImportError::Format(e) => e.is_rejection(),
            ImportError::Trust(TrustError::Untrusted(_)) => true,
            ImportError::Trust(_) => false,
        }
    }
}
