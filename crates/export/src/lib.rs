//! The hub engineer's side of tender: from a staged OCI image layout to a
//! signed bundle.

pub mod error;
pub mod seal;

pub use error::ExportError;
pub use seal::{SealOptions, SealedBundle, seal_layout};
