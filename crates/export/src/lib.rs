//! The hub engineer's side of tender: from a staged OCI image layout to a
//! signed bundle.

pub mod bases;
pub mod delta;
pub mod error;
pub mod export;
pub mod fleet_page;
pub mod fleet_report;
pub mod hub;
pub mod seal;
pub mod site_paths;
pub mod sources;
pub mod waves;

pub use error::ExportError;
pub use seal::{BundleOutput, SealOptions, SealedBundle, seal_delta, seal_layout};
