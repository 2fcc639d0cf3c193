//! The one I/O error of every tender crate: what tender was doing, the path
//! when there is one, and the OS error as the source (never repeated in the
//! message, rule 4 of [`crate::error`]). Each crate's error enum wraps it
//! transparently as `Io(#[from] IoError)` and builds it with [`FromIo`].

use std::borrow::Cow;
use std::io;
use std::path::{Path, PathBuf};

/// An I/O error with its context: "writing blob sha256:ab", "reading
/// /site/state.json".
#[derive(Debug, thiserror::Error)]
#[error("{context}{}", path.as_deref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
pub struct IoError {
    /// What tender was doing, in a few words ("creating", "reading the bundle").
    pub context: Cow<'static, str>,
    /// The file or directory it was doing it to, printed after the context.
    pub path: Option<PathBuf>,
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub fn new(
        context: impl Into<Cow<'static, str>>,
        path: Option<&Path>,
        source: io::Error,
    ) -> Self {
        IoError {
            context: context.into(),
            path: path.map(Path::to_path_buf),
            source,
        }
    }

    /// The OS error's kind (`NotFound`, `StorageFull`, ...).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }
}

/// Builds any tender error that has an `Io(IoError)` variant from an
/// `io::Error`, so no crate writes its own `fn io`.
pub trait FromIo: From<IoError> {
    /// `context: cause`, for an error not about one path.
    fn io(context: impl Into<Cow<'static, str>>, source: io::Error) -> Self {
        IoError::new(context, None, source).into()
    }

    /// `context path: cause`.
    fn io_at(
        context: impl Into<Cow<'static, str>>,
        path: impl AsRef<Path>,
        source: io::Error,
    ) -> Self {
        IoError::new(context, Some(path.as_ref()), source).into()
    }

    /// For `map_err`: `.map_err(E::io_with("reading the source blob"))`.
    fn io_with(context: &'static str) -> impl FnOnce(io::Error) -> Self {
        move |source| Self::io(context, source)
    }
}

impl<E: From<IoError>> FromIo for E {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{chain_message, repeated_cause};

    #[test]
    fn context_then_path_then_cause_each_once() {
        let denied = || io::Error::new(io::ErrorKind::PermissionDenied, "permission denied");
        let e = IoError::io_at("reading", "/site/state.json", denied());
        assert_eq!(
            chain_message(&e),
            "reading /site/state.json: permission denied"
        );
        assert_eq!(repeated_cause(&e), None);
        let e = IoError::io("writing the bundle", denied());
        assert_eq!(chain_message(&e), "writing the bundle: permission denied");
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
