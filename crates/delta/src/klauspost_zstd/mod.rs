//! Byte-exact port of the zstd encoder of containers/image (podman,
//! buildah, skopeo `--dest-compress-format zstd` and `zstd:chunked`):
//! `github.com/klauspost/compress/zstd` 1.15.12 at `SpeedDefault`.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

mod block;
mod dfast;
mod enc_base;
pub(crate) mod encoder;
mod frame;
mod seq;
mod xxhash;

#[cfg(test)]
mod tests;
