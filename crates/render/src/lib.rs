//! What a fleet spec renders to, cluster by cluster: the spec itself
//! (`fleet`, with its JSON Schema generated in `fleet_schema`), each source rendered by the real `helm template` and
//! `kustomize build` (`render`), variables substituted (`substitute`), the
//! canonical manifest set (`manifest_set`), the images it uses (`images`),
//! and the whole per-cluster plan (`plan`). Export seals what this crate
//! plans; `tender render` and `tender plan` show it.
//!
//! The crate reads no environment: which binaries to run is the caller's
//! choice, passed in as [`render::Tools`].

pub mod error;
mod field_schemas;
pub mod fleet;
pub mod fleet_schema;
pub mod images;
pub mod manifest_set;
pub mod plan;
pub mod render;
pub mod substitute;

pub use error::RenderError;
