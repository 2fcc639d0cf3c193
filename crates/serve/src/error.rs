//! Errors of `tender-serve`, by tender's rules (see `tender_format::error`):
//! one line, naming the thing; a variant with a `#[source]` does not repeat
//! the source in its own message.
//!
//! These are the errors of starting the server. Once it runs, a failed
//! request is answered with an OCI error body and logged
//! ([`crate::LogEvent::Warning`]), never returned.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tender_oci::OciError;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store is not an OCI image layout, or its `index.json` is damaged.
    #[error(transparent)]
    Store(#[from] OciError),
    /// The listening socket could not be bound.
    #[error("listening on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// The TLS certificate or key is unusable.
    #[error("TLS {what} {}: {reason}", path.display())]
    Tls {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// The async runtime could not be started (out of threads or memory).
    #[error("starting the server runtime")]
    Runtime(#[source] io::Error),
}
