//! `tender serve`: a read-only OCI distribution registry over tender's
//! embedded store (an OCI image layout directory), so a site without a
//! registry of its own can still pull the images a bundle brought.
//!
//! ```no_run
//! use tender_serve::{Server, ServeOptions};
//! let handle = Server::bind("/var/lib/tender/store", "127.0.0.1:5000".parse()?, ServeOptions::default())?;
//! println!("serving on {}", handle.url());
//! handle.wait_for_signal()?;
//! handle.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What it serves (distribution spec, pull side, plus OCI 1.1 referrers):
//! `GET/HEAD /v2/`, `/v2/<name>/manifests/<tag|digest>`,
//! `/v2/<name>/blobs/<digest>` (with single `Range`s), `/v2/<name>/tags/list`
//! and `/v2/_catalog` (with `n`/`last`), `/v2/<name>/referrers/<digest>`
//! (with `artifactType`). Every other method is refused with 405
//! `UNSUPPORTED`.
//!
//! * Names: the store names images by full
//!   reference (`registry.plant.example/plant/x:1`); `<name>` may be the path
//!   (`plant/x`) or the full name.
//! * Access: a repository serves only what its own tags reach.
//! * Data: manifests and blobs are read straight from the layout's blob
//!   files (no copy); blobs are streamed. Manifests are re-hashed when
//!   served (they are small); blobs are not (clients verify digests).
//! * Changes: `index.json` is re-read when it changes (an import adding
//!   images while the server runs).
//! * The library does not print: events go to a [`Logger`].

mod body;
mod catalog;
mod error;
mod handler;
mod log;
mod range;
mod routes;
mod server;
mod tls;

pub use error::ServeError;
pub use log::{LogEvent, Logger, RequestLog};
pub use server::{Handle, ServeOptions, Server, Signal};
pub use tls::TlsFiles;
