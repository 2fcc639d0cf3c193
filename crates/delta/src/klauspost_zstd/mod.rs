//! Byte-exact port of the zstd encoder of containers/image (podman,
//! buildah, skopeo `--dest-compress-format zstd` and `zstd:chunked`):
//! `github.com/klauspost/compress/zstd` at `SpeedDefault`, as 1.15.12
//! (Debian's) writes it and as the later releases that changed its bytes
//! do ([`encoder::ZstdVersion`]).
//!
//! Entropy coders: `bit_writer`, `fse_*` and `huff0` (with the `fse`
//! package huff0 codes its weights with). Matcher, blocks and frames:
//! `enc_base` (`enc_base.go`), `dfast` (`enc_dfast.go`), `fast`
//! (`enc_fast.go`), `seq`
//! (`seqenc.go`), `block` (`blockenc.go`), `frame` (`frameenc.go`),
//! `xxhash` (the content checksum) and `encoder` (`encoder.go`,
//! `encoder_options.go`).
//!
//! `SpeedBestCompression` (zstd level 10 and above; Debian's skopeo 1.9.3
//! writes zstd:chunked at 10), as 1.15.12 writes it only: `best`
//! (`enc_best.go`) with `shannon` (its literal cost).
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

// The zstd recipe (the lead's integration) is its first user outside tests.

mod best;
pub(crate) mod bit_writer;
mod block;
mod dfast;
mod enc_base;
pub mod encoder;
mod fast;
mod frame;
pub(crate) mod fse;
pub(crate) mod fse_encoder;
#[cfg(test)]
mod fse_encoder_tests;
pub(crate) mod fse_predefined;
pub(crate) mod fse_state;
pub(crate) mod fse_table;
mod go_math;
pub(crate) mod huff0;
#[cfg(test)]
mod huff0_tests;
#[cfg(test)]
mod reference;
mod seq;
mod shannon;
#[cfg(test)]
mod tests;
mod xxhash;
