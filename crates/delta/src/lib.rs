//! Delta encodings for tender bundles (bundle spec §8).
//!
//! A delta bundle ships only what a site lacks. A blob the site holds is
//! referenced by digest; a changed layer travels as a *patch*: a zstd frame
//! that rebuilds the layer's uncompressed tar with the similar base layer's
//! tar as reference, plus a recipe that turns the tar back into the exact
//! compressed bytes (preflate corrections for gzip, a replayed level for
//! zstd). The site rebuilds the blob and checks its digest, so image
//! signatures and digest-pinned manifests hold unchanged.
//!
//! Modules: `compression` (which, and decoding), `gzip`, `go_flate`,
//! `klauspost` with `pgzip_recipe`, and `zstd_recipe` (exact
//! re-compression), `zstd_frames` (what a zstd blob is made of), `patch`
//! (the container format), `encode` (make a patch), `recipe` (which
//! rebuild reproduces a blob), `diff_frames` (the diff's zstd frames), `prove` (the diff and its proof), `apply`
//! (rebuild at the site), `pick` (choose the source).

pub mod apply;
mod code_lengths;
pub mod compression;
pub mod diff_frames;
pub mod encode;
pub mod error;
pub mod go_flate;
pub mod gzip;
pub mod job;
pub mod klauspost;
pub mod klauspost_zstd;
pub mod kzstd_recipe;
pub mod patch;
pub mod pgzip_recipe;
pub mod pick;
mod prove;
mod read_full;
mod recipe;
pub mod zstd_frames;
pub mod zstd_layout;
pub mod zstd_recipe;

#[cfg(test)]
mod test_inputs;

pub use apply::{ApplyLimits, DEFAULT_WINDOW_LIMIT, apply, read_header};
pub use compression::Compression;
pub use encode::make_patch;
pub use error::DeltaError;
pub use job::{DEFAULT_PARALLEL_MEMORY, Patch, PatchOptions, PatchOutcome, memory_estimate};
pub use patch::{BlobRef, PatchHeader, Rebuild};
pub use pick::{Choice, Layer, Listings, Place, choose};
