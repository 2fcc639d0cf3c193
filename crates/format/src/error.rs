//! Errors of the bundle format.
//!
//! Rules for errors in tender (the same in every crate):
//! 1. A library returns its own `thiserror` enum; only the binary uses
//!    `anyhow`, to add context on the way out.
//! 2. Hostile or damaged input is a [`Rejection`], never an I/O error or a
//!    panic. The CLI maps every rejection to exit code 3, so a script can
//!    tell "this stick is bad" (3) from "this machine has a problem" (1).
//! 3. A message names the thing (entry path, key id, volume) and the rule it
//!    broke, in one line, without a backtrace, so a field engineer can read
//!    it out over the phone.
//! 4. I/O errors carry what tender was doing when they happened. A variant
//!    with a `#[source]` does not repeat the source in its own message: the
//!    CLI prints the chain as `context: cause: cause`.

use std::io;

use crate::FromIo;

use crate::digest::Digest;
use crate::manifest::ManifestError;
use crate::signatures::SlotError;
use crate::volume_check::VolumeCheck;

/// Why a bundle is refused. Every variant is the bundle's fault.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error("entry {index} at byte {offset}: not a ustar header ({reason})")]
    BadHeader {
        index: usize,
        offset: u64,
        reason: String,
    },
    #[error("entry {path:?}: {reason}")]
    UnsafePath { path: String, reason: &'static str },
    #[error("entry {path:?}: {reason}")]
    UnsafeMetadata { path: String, reason: String },
    #[error("entry {path:?}: {kind} entries are not allowed (only regular files)")]
    ForbiddenType { path: String, kind: &'static str },
    #[error("entry {path:?} appears twice")]
    DuplicateEntry { path: String },
    #[error("entry {path:?} is not listed in the signed manifest")]
    UnlistedEntry { path: String },
    #[error("entry {path:?} listed in the signed manifest is missing (found {found} in its place)")]
    MissingEntry { path: String, found: String },
    #[error("entry {path:?}: tar header says {header} bytes, the signed manifest says {signed}")]
    SizeMismatch {
        path: String,
        header: u64,
        signed: u64,
    },
    #[error("entry {path:?}: content digest is {actual}, the signed manifest says {expected}")]
    DigestMismatch {
        path: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("bundle is truncated: stream ends inside {what}")]
    Truncated { what: String },
    #[error("entry {path:?}: non-zero bytes in tar padding")]
    BadPadding { path: String },
    #[error("data after the end-of-archive marker")]
    TrailingData,
    #[error("not a tender bundle: entry {index} must be {expected:?}, found {found:?}")]
    NotABundle {
        index: usize,
        expected: &'static str,
        found: String,
    },
    #[error("{what} is {size} bytes, more than the {limit} allowed")]
    TooLarge { what: String, size: u64, limit: u64 },
    #[error("{0}")]
    Volume(VolumeCheck),
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Volumes(Vec<VolumeCheck>),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Slot(#[from] SlotError),
}

/// Any error of the format crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rejected(#[from] Rejection),
    #[error(transparent)]
    Io(#[from] crate::IoError),
    /// A sink (where verified bytes go) failed; its message says why.
    #[error("{context}")]
    Sink {
        context: String,
        #[source]
        source: io::Error,
    },
}

/// Whose fault an error is (rule 2): the input's (a rejection, exit code 3)
/// or this machine's. Every error type that can carry a rejection says so
/// through this one trait, and the CLI asks it once per error in a chain.
pub trait Verdict {
    /// Whether the input (bundle, patch, receipt), not the machine, is at fault.
    fn is_rejection(&self) -> bool;
}

impl Verdict for Error {
    fn is_rejection(&self) -> bool {
        matches!(self, Error::Rejected(_))
    }
}

impl Verdict for Rejection {
    fn is_rejection(&self) -> bool {
        true
    }
}

/// An error and its causes on one line, `a: b: c`, as the CLI prints
/// them: for the places that must keep an error as text (a reason field, an
/// audit line) without losing its cause. Each cause says something its
/// wrapper does not (rule 4), so nothing repeats.
pub fn chain_message(err: &(dyn std::error::Error + 'static)) -> String {
    let mut line = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        line.push_str(": ");
        line.push_str(&e.to_string());
        cause = e.source();
    }
    line
}

/// The first error in a chain whose message repeats its cause's (rule 4),
/// as `"wrapper" repeats "cause"`; `None` when the chain is clean. For the
/// tests of every crate, which build their variants and check them.
pub fn repeated_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = err;
    while let Some(cause) = current.source() {
        let (outer, inner) = (current.to_string(), cause.to_string());
        if !inner.is_empty() && outer.contains(&inner) {
            return Some(format!("{outer:?} repeats {inner:?}"));
        }
        current = cause;
    }
    None
}

/// Maps a read error: running out of bytes is the bundle's fault
/// (truncated), anything else is the machine's.
pub(crate) fn read_error(what: &str, e: io::Error) -> Error {
    // A damaged volume is named by number, whatever entry it was inside.
    if let Some(check) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<VolumeCheck>())
    {
        return Rejection::Volume(check.clone()).into();
    }
    if e.kind() == io::ErrorKind::UnexpectedEof {
        Rejection::Truncated {
            what: what.to_string(),
        }
        .into()
    } else {
        Error::io(format!("reading {what}"), e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::CanonicalError;

    fn io_error() -> io::Error {
        io::Error::new(io::ErrorKind::PermissionDenied, "permission denied")
    }

    #[test]
    fn no_variant_repeats_its_cause() {
        let syntax = serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err();
        let errors: Vec<Box<dyn std::error::Error + 'static>> = vec![
            Box::new(ManifestError::Canonical(CanonicalError::NotCanonical)),
            Box::new(ManifestError::Canonical(CanonicalError::Syntax(
                serde_json::from_slice::<serde_json::Value>(b"{").unwrap_err(),
            ))),
            Box::new(SlotError::Canonical(CanonicalError::Syntax(syntax))),
            Box::new(Error::from(Rejection::Manifest(ManifestError::Canonical(
                CanonicalError::Float,
            )))),
            Box::new(Error::io("reading the bundle", io_error())),
            Box::new(read_error("entry 3", io_error())),
        ];
        for e in &errors {
            assert_eq!(
                repeated_cause(e.as_ref()),
                None,
                "{}",
                chain_message(e.as_ref())
            );
        }
    }

    #[test]
    fn the_chain_reads_as_one_line_with_each_cause_once() {
        let e = ManifestError::Canonical(CanonicalError::NotCanonical);
        assert_eq!(
            chain_message(&e),
            "manifest is not canonical JSON: JSON is valid but not in canonical form (sorted \
             keys, no whitespace, integers only)"
        );
        let e = Error::io("reading x", io_error());
        assert_eq!(chain_message(&e), "reading x: permission denied");
        // The checker itself catches a repeat.
        #[derive(Debug, thiserror::Error)]
        #[error("wrapping: {0}")]
        struct Repeats(#[source] io::Error);
        assert!(repeated_cause(&Repeats(io_error())).is_some());
    }
}
