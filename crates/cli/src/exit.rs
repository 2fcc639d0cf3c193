//! Exit codes (README "Exit codes", bundle-spec §9):
//! 0 ok, 1 error, 2 usage (clap), 3 bundle rejected.

use tender_format::Verdict;
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
        if verdict(cause).is_some_and(Verdict::is_rejection) {
            return REJECTED;
        }
    }
    ERROR
}

/// The [`Verdict`] of one error in a chain, if its type gives one. Rust
/// cannot downcast to a trait object, so the types are named here, once:
/// the top-level errors of the crates that judge input. (A `DeltaError` or
/// `OciError` reaches the CLI alone only from export, where a bad blob is
/// the hub's problem, exit 1; at a site `ImportError` judges them.)
fn verdict<'a>(cause: &'a (dyn std::error::Error + 'static)) -> Option<&'a dyn Verdict> {
    macro_rules! first_of {
        ($($ty:ty),*) => {
            $(if let Some(e) = cause.downcast_ref::<$ty>() {
                return Some(e);
            })*
        };
    }
    first_of!(
        tender_format::Error,
        tender_format::Rejection,
        ImportError,
        TrustError,
        tender_receipt::ReceiptError
    );
    None
}
