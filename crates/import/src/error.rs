//! Errors of the import crate. See `tender_format::error` for the rules.

use std::path::PathBuf;

use tender_format::Rejection;
use tender_trust::TrustError;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Format(#[from] tender_format::Error),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Oci(#[from] tender_oci::OciError),
    #[error("site file {path}: {reason}")]
    Site { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    #[error("delivering to cluster {cluster}")]
    Deliver {
        cluster: String,
        #[source]
        source: tender_deliver::DeliverError,
    },
    #[error(transparent)]
    Receipt(#[from] tender_receipt::ReceiptError),
    #[error("applying the delta")]
    Delta(#[from] tender_delta::DeltaError),
    #[error("audit log: {0}")]
    Audit(String),
    #[error("{0}")]
    Busy(String),
    /// Something asked for by name is not at the site.
    #[error("{0}")]
    NotFound(String),
    /// The bundle is genuine but not for this site now: wrong site, an old
    /// sequence (rollback or replay), no release for our clusters.
    #[error("{0}")]
    Refused(String),
}

impl From<Rejection> for ImportError {
    fn from(r: Rejection) -> Self {
        ImportError::Format(r.into())
    }
}

/// The bundle (not the machine) is at fault: exit code 3.
impl tender_format::Verdict for ImportError {
    fn is_rejection(&self) -> bool {
        match self {
            ImportError::Format(e) => e.is_rejection(),
            ImportError::Trust(TrustError::Untrusted(_))
            | ImportError::Refused(_)
            | ImportError::Audit(_) => true,
            ImportError::Oci(e) => e.is_integrity_failure(),
            ImportError::Delta(e) => e.is_rejection(),
            _ => false,
        }
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
        let io = || io::Error::new(io::ErrorKind::PermissionDenied, "permission denied");
        let errors = [
            ImportError::from(tender_delta::DeltaError::io(
                "writing the rebuilt blob",
                io(),
            )),
            ImportError::io_at("reading", "/site/state", io()),
            ImportError::from(tender_oci::OciError::io("writing blob", io())),
            ImportError::from(tender_format::Error::io("reading the bundle", io())),
            ImportError::Deliver {
                cluster: "plant-a".into(),
                source: tender_deliver::DeliverError::io_at("writing", "/srv/gitops/a.yaml", io()),
            },
        ];
        for e in &errors {
            assert_eq!(repeated_cause(e), None, "{}", chain_message(e));
            assert_eq!(chain_message(e).matches("permission denied").count(), 1);
        }
        assert_eq!(
            chain_message(&errors[0]),
            "applying the delta: writing the rebuilt blob: permission denied"
        );
    }
}
