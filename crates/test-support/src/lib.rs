//! Shared test infrastructure for tender's crates.
//!
//! Tests here talk to real software, not mocks: a real `docker-registry`
//! (distribution 2.8), real `skopeo`, and Helm's real engine through the
//! `scripts/helm` shim. Everything is installed by `scripts/install-deps.sh`;
//! helpers panic with that hint when something is missing, so a test never
//! passes by silently skipping.

mod compress;
mod http;
mod kzstd_parts;
mod proxy;
mod registry;
mod tools;
pub mod trust_vectors;
mod vector_parts;
pub mod vectors;

pub use compress::{
    Compressor, GoWrites, KZSTD_VERSIONS, go_gzip, gogzip, kzstd, kzstd_as, kzstd_dump,
    kzstd_version, kzstd_with, pgzip, pgzip_1_18_2, pgzip_1_18_2_with, pgzip_with,
};
pub use compress::{kzstd_best, kzstd_best_with};
pub use http::{HttpResponse, http_get};
pub use kzstd_parts::{kzstd_parts, kzstd_parts_run};
pub use proxy::{Fault, FaultyProxy, ProxiedRequest};
pub use registry::Registry;
pub use tools::{helm_shim, repo_root, sha256_digest, skopeo, skopeo_copy, skopeo_inspect_digest};
