//! Exit codes (README "Exit codes", bundle-spec §9):
//! 0 ok, 1 error, 2 usage (clap), 3 bundle rejected.

use tender_import::ImportError;
use tender_trust::TrustError;

pub const OK: i32 = 0;
pub const ERROR: i32 = 1;
pub const USAGE: i32 = 2;
pub const REJECTED: i32 = 3;

/// A usage error found after parsing (clap reports its own with 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Prints the error, if any, as one line on stderr and picks the code.
pub fn report(result: anyhow::Result<()>) -> i32 {
    let Err(err) = result else { return OK };
    // A closed stdout (`tender inspect | head`) is the reader's choice.
    // Only a bare io::Error counts: that is what writing to stdout returns;
    // library errors wrap theirs, so a broken pipe to a registry or a sink
    // still fails.
    if err
        .downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    {
        return OK;
    }
    let code = classify(&err);
    let label = match code {
        REJECTED => "REJECTED",
        USAGE => "usage error",
        _ => "error",
    };
    // `{:#}` prints the context chain on one line: "a: b: c".
    eprintln!("tender: {label}: {err:#}");
    code
}

pub(crate) fn classify(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some() {
            return USAGE;
        }
        let rejected = cause
            .downcast_ref::<tender_format::Error>()
            .is_some_and(|e| e.is_rejection())
            || cause.downcast_ref::<tender_format::Rejection>().is_some()
            || cause
                .downcast_ref::<ImportError>()
                .is_some_and(|e| e.is_rejection())
            || matches!(
                cause.downcast_ref::<TrustError>(),
                Some(TrustError::Untrusted(_))
            )
            || cause
                .downcast_ref::<tender_receipt::ReceiptError>()
                .is_some_and(|e| e.is_rejection());
        if rejected {
            return REJECTED;
        }
    }
    ERROR
}
