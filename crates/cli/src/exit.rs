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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use tender_format::error::{chain_message, repeated_cause};
    use tender_format::{FromIo, Rejection};

    /// Representatives of every crate's errors, built by the functions real
    /// failures go through where one is reachable without a fixture.
    fn representatives() -> Vec<(anyhow::Error, i32)> {
        let missing = Path::new("/nonexistent/tender-exit-test");
        let no_key = tender_trust::PublicKey::read(missing).unwrap_err();
        let no_bundle = tender_format::reader::AnyBundleReader::open_file(missing)
            .err()
            .unwrap();
        let no_receipt = tender_receipt::SignedReceipt::read(missing).unwrap_err();
        let bad_json = tender_format::manifest::ManifestError::Canonical(
            tender_format::canonical::CanonicalError::Syntax(
                serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err(),
            ),
        );
        let denied = || std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        vec![
            (no_key.into(), ERROR),
            (no_bundle.into(), ERROR),
            (no_receipt.into(), ERROR),
            (Rejection::from(bad_json).into(), REJECTED),
            (
                anyhow::Error::from(tender_format::Error::from(Rejection::TrailingData))
                    .context("importing stick.tar"),
                REJECTED,
            ),
            (
                ImportError::Refused("bundle is for site a, this is site b".into()).into(),
                REJECTED,
            ),
            (
                ImportError::from(tender_delta::DeltaError::io(
                    "writing the rebuilt blob",
                    denied(),
                ))
                .into(),
                ERROR,
            ),
            (
                TrustError::Untrusted("no signature by a trusted key".into()).into(),
                REJECTED,
            ),
            (
                tender_receipt::ReceiptError::Malformed("unknown field x".into()).into(),
                REJECTED,
            ),
            (
                tender_export::ExportError::Oci(tender_oci::OciError::io_at(
                    "writing",
                    "/hub/blobs/x",
                    denied(),
                ))
                .into(),
                ERROR,
            ),
            (UsageError("--site needs --key".into()).into(), USAGE),
        ]
    }

    #[test]
    fn each_cause_is_printed_once_and_the_code_comes_from_the_verdict() {
        for (err, code) in representatives() {
            let chain: &(dyn std::error::Error + 'static) = err.as_ref();
            assert_eq!(repeated_cause(chain), None, "{}", chain_message(chain));
            // No segment of the printed line appears twice either.
            let line = format!("{err:#}");
            let segments: Vec<&str> = line.split(": ").collect();
            for (i, s) in segments.iter().enumerate() {
                assert!(!segments[i + 1..].contains(s), "{line}");
            }
            assert_eq!(classify(&err), code, "{line}");
        }
    }
}
