//! pgzip's framing (`github.com/klauspost/pgzip` `gzip.go`).
//!
//! The plain text is cut into blocks of `block_size` bytes (1 MiB by
//! default). Each block is compressed by its own flate writer, reset with
//! the previous block's last 16 KiB as preset dictionary (`ResetDict`),
//! written in one call and ended with `Flush`; the last block, which may be
//! empty (when the input is a whole number of blocks), is also `Close`d.
//! pgzip compresses blocks in parallel and reuses writers from a pool, but
//! a writer's leftovers never reach its next block (`Reset` moves every
//! table entry out of reach), so the bytes do not depend on scheduling.

use std::io::{self, Read, Write};

use crate::read_full::read_full;

use super::FlateVersion;
use super::deflate::Deflater;

/// pgzip's `defaultBlockSize`.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;
/// pgzip's `tailSize`: the preset dictionary of the next block.
pub const TAIL_SIZE: usize = 16384;

/// Writes the DEFLATE stream pgzip writes for `plain` at `level` (5:
/// `DefaultCompression`, or 1: `BestSpeed`) with blocks of `block_size`
/// bytes over `version` of klauspost/compress, and returns the plain
/// text's CRC-32 and length.
pub fn deflate(
    level: u8,
    version: FlateVersion,
    block_size: usize,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<(u32, u64)> {
    if block_size <= TAIL_SIZE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("pgzip block size {block_size} is not above {TAIL_SIZE}"),
        ));
    }
    let Some(mut d) = Deflater::new(level, version) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("klauspost level {level} is not modelled (1 and 5 are)"),
        ));
    };
    let mut block = vec![0u8; block_size];
    let mut tail: Vec<u8> = Vec::with_capacity(TAIL_SIZE);
    let mut crc = crc32fast::Hasher::new();
    let mut size = 0u64;
    loop {
        let n = read_full(plain, &mut block)?;
        let data = &block[..n];
        crc.update(data);
        size += n as u64;
        d.reset_dict(&tail);
        // Write in windows so the output is drained as it is made.
        for window in data.chunks(super::tokens::MAX_STORE_BLOCK_SIZE) {
            d.write(window);
            out.write_all(&d.w.sink.out)?;
            d.w.sink.out.clear();
        }
        d.flush();
        // A full block is sent off as soon as it is full; only a short one
        // (or the empty one after a whole number of blocks) is the last.
        let last = n < block_size;
        if last {
            d.close();
        }
        out.write_all(&d.w.sink.out)?;
        d.w.sink.out.clear();
        if last {
            return Ok((crc.finalize(), size));
        }
        tail.clear();
        tail.extend_from_slice(&data[n - TAIL_SIZE..]);
    }
}

/// Writes a whole gzip member as pgzip writes it with its default header
/// (no name, modification time Go's zero time, OS 255; XFL 4 at level 1,
/// else 0).
pub fn compress(
    level: u8,
    version: FlateVersion,
    block_size: usize,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut header = DEFAULT_HEADER;
    header[8] = xfl(level);
    out.write_all(&header)?;
    let (crc, size) = deflate(level, version, block_size, plain, out)?;
    out.write_all(&crc.to_le_bytes())?;
    out.write_all(&(size as u32).to_le_bytes())
}

/// The header's XFL byte pgzip writes for `level`.
pub fn xfl(level: u8) -> u8 {
    match level {
        1 => 4,
        9 => 2,
        _ => 0,
    }
}

/// pgzip's header when nothing is set: its `ModTime` is Go's zero time,
/// which pgzip (unlike `compress/gzip`) writes as `uint32(-62135596800)`.
pub const DEFAULT_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0x00, 0x09, 0x6e, 0x88, 0, 0xff];
