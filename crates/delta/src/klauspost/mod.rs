//! Byte-exact port of the gzip writer of containers/image and umoci:
//! `github.com/klauspost/pgzip` 1.2.5 over `github.com/klauspost/compress`
//! 1.15.12 `flate` at `DefaultCompression` (level 5).
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
//! (`huffman_bit_writer.go`), `level5` (`fast_encoder.go`, `level5.go`),
//! `deflate` (`deflate.go`) and `pgzip` (pgzip's `gzip.go`).

mod bit_writer;
mod deflate;
mod huffman;
mod level5;
pub mod pgzip;
mod tokens;

#[cfg(test)]
mod tests;
