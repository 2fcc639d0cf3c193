//! Byte-exact port of the gzip writer of containers/image and umoci:
//! `github.com/klauspost/pgzip` 1.2.5 over `github.com/klauspost/compress`
//! `flate` at `DefaultCompression` (level 5) and `BestSpeed` (level 1), in
//! the two behaviours that compress releases have had (see
//! [`FlateVersion`]).
//!
//! Podman, buildah, skopeo (`copy --dest-compress`) and umoci write gzip
//! layers this way. preflate cannot model these streams (every 1 MiB block
//! restarts its matcher with a 16 KiB preset dictionary and ends with a sync
//! flush), so without this port such layers would ship whole. Re-running
//! the exact encoder gives the published blob bit for bit with no
//! corrections, as `go_flate` does for Go's BestSpeed.
//!
//! One file per concept, named after the Go sources it follows:
//! `tokens` (`token.go`), `huffman` (`huffman_code.go`), `bit_writer`
//! (`huffman_bit_writer.go`), `fast_gen` (`fast_encoder.go`), `level1` and
//! `level5` (`level1.go`, `level5.go`), `deflate` (`deflate.go`) and
//! `pgzip` (pgzip's `gzip.go`).

use serde::{Deserialize, Serialize};

/// Which klauspost/compress behaviour to reproduce. Level 5's output is the
/// same from 1.15.12 through 1.18.0; 1.18.2 (1.18.1 was retracted) writes
/// tables that may be reused with exact sizes, which changes the bytes of
/// every block holding more than one 64 KiB window. Diffed in the sources
/// through 1.19.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlateVersion {
    /// 1.15.12 (verified against Debian's) through 1.18.0.
    #[serde(rename = "1.15.12")]
    V1_15_12,
    /// 1.18.2 and later (through 1.19.1).
    #[serde(rename = "1.18.2")]
    V1_18_2,
}

impl FlateVersion {
    /// Every modelled behaviour, the more common in registries first.
    pub const ALL: [FlateVersion; 2] = [FlateVersion::V1_15_12, FlateVersion::V1_18_2];
}

mod bit_writer;
mod deflate;
mod fast_gen;
mod huffman;
mod level1;
mod level5;
pub mod pgzip;
mod tokens;

#[cfg(test)]
mod tests;
