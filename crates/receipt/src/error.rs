//! Errors of the receipt crate. See `tender_format::error` for the rules.

use std::path::PathBuf;

use tender_trust::TrustError;

#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    #[error(transparent)]
    Io(#[from] tender_format::IoError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The bytes are not a receipt file: not canonical JSON, unknown
    /// fields, a malformed signature entry.
    #[error("not a tender receipt: {0}")]
    Malformed(String),
    /// Well-formed, but a field breaks a rule (`docs/receipts.md`).
    #[error("invalid receipt: {0}")]
    Invalid(String),
    #[error("receipt is signed by key {key_id}, which is not a known site key")]
    UnknownKey { key_id: String },
    #[error("receipt signature by key {key_id} does not match the receipt (tampered or forged)")]
    BadSignature { key_id: String },
    /// `add-site` with a key other than the one already registered.
    #[error(
        "site {site} is already registered with key {registered}; refusing to replace it with {offered} (remove {path} first if the site's key really changed)"
    )]
    SiteKeyConflict {
        site: String,
        registered: String,
        offered: String,
        path: PathBuf,
    },
    /// `add-site` with a key another site already uses.
    #[error("key {key_id} is already registered for site {site}; every site needs its own key")]
    KeyInUse { key_id: String, site: String },
    #[error("hub state {path}: {reason}")]
    BadHubState { path: PathBuf, reason: String },
}

/// The receipt (not the machine) is at fault: exit code 3.
impl tender_format::Verdict for ReceiptError {
    fn is_rejection(&self) -> bool {
        matches!(
            self,
            ReceiptError::Malformed(_)
                | ReceiptError::Invalid(_)
                | ReceiptError::UnknownKey { .. }
                | ReceiptError::BadSignature { .. }
        )
    }
}
