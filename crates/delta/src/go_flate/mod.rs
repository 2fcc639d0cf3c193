//! Byte-exact re-implementation of Go 1.19's `compress/gzip` writer at
//! levels 1 (`gzip.BestSpeed`) to 9 (`gzip.BestCompression`), the default
//! level 6 (`gzip.DefaultCompression`) included.
//!
//! Docker and BuildKit compress layers with `gzip.NewWriter` (level 6);
//! Go-built images (ko, crane, umoci) often use `gzip.BestSpeed`.
//! Re-running that exact encoder on the uncompressed tar gives back the
//! published blob bit for bit, so no preflate correction data has to travel
//! (preflate needs 1-6 % of such a blob).
//!
//! The port follows the Go sources closely (names in comments refer to
//! them):
//!
//! * `best_speed`: level 1, `deflatefast.go` and `encSpeed` in `deflate.go`.
//!   It encodes whole 65535-byte windows, so how the input is split into
//!   `Write` calls never changes its output.
//! * `lazy`: levels 2 to 9, `deflate`/`findMatch`/`fillDeflate` in
//!   `deflate.go` (hash chains over a 64 KiB window, lazy matching from
//!   level 4).
//! * `parallel`: levels 4 to 9 searched on several threads, with the same
//!   output (one thread does 25-40 MB/s at level 6 on layer tars).
//! * `bit_writer` and `huffman`: `huffman_bit_writer.go` (stored, fixed and
//!   dynamic blocks) and `huffman_code.go` (length-limited codes).
//! * `tokens`: the token layout and code tables of `token.go`.
//! * here, `gzip.go`: the 10-byte header (no name, modification time 0,
//!   `OS` 255, `XFL` 4 at level 1, 2 at level 9, else 0) and the CRC-32 /
//!   ISIZE trailer.
//!
//! At levels 2 to 9 the window slides when the matcher passes a fixed
//! point, and Go checks that point only between filling and matching: in
//! rare cases (about one `Write` boundary in 32768 lands where it matters)
//! the split of the input into `Write` calls changes the output. These
//! functions produce what one `Write` of the whole input followed by
//! `Close` produces; a blob written otherwise is caught by the comparison
//! that proves every rebuild.
//!
//! Go 1.27 replaced this encoder at every level (a port of
//! klauspost/compress); blobs its writers make are not reproduced here.

use std::io::{self, Read, Write};

use crate::read_full::read_full;

mod best_speed;
mod bit_writer;
mod huffman;
mod lazy;
mod parallel;
mod tokens;

use best_speed::BestSpeed;
use bit_writer::BitSink;
use lazy::Lazy;

/// The levels this module reproduces.
pub const LEVELS: std::ops::RangeInclusive<u8> = 1..=9;

/// The gzip header Go writes at `level` (`gzip.Writer` with no name,
/// comment, extra field or modification time).
pub fn header(level: u8) -> [u8; 10] {
    let xfl = match level {
        1 => 4,
        9 => 2,
        _ => 0,
    };
    [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 255]
}

/// The levels whose output starts with `head`, most common first: Go's
/// header tells level 1 (XFL 4) and 9 (XFL 2) apart, the rest share XFL 0,
/// where the default level 6 comes first.
pub fn candidate_levels(head: &[u8; 10]) -> &'static [u8] {
    if head[..8] != header(6)[..8] || head[9] != 255 {
        return &[];
    }
    match head[8] {
        4 => &[1],
        2 => &[9],
        0 => &[6, 2, 3, 4, 5, 7, 8],
        _ => &[],
    }
}

/// CRC-32 (IEEE), continuing from `crc` (0 to start): the gzip trailer's
/// checksum, by `crc32fast` (already used by the pgzip encoder).
fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(crc);
    hasher.update(data);
    hasher.finalize()
}

/// A `compress/flate` writer at one level.
enum Deflater {
    BestSpeed(Box<BestSpeed>),
    Lazy(Box<Lazy>),
}

impl Deflater {
    fn new(level: u8) -> io::Result<Self> {
        match level {
            1 => Ok(Deflater::BestSpeed(Box::new(BestSpeed::new()))),
            2..=9 => Ok(Deflater::Lazy(Box::new(Lazy::new(level)))),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("Go gzip level {level} is not reproduced (levels 1 to 9 are)"),
            )),
        }
    }

    /// One Go `Write` call of `b`.
    #[cfg(test)]
    fn write_call(&mut self, b: &[u8]) {
        match self {
            Deflater::BestSpeed(d) => d.write(b),
            Deflater::Lazy(d) => d.write(b),
        }
    }

    /// More bytes of the current `Write` call.
    fn write_more(&mut self, b: &[u8]) {
        match self {
            Deflater::BestSpeed(d) => d.write(b),
            Deflater::Lazy(d) => d.write_more(b),
        }
    }

    /// `close`: the rest, then an empty final stored block.
    fn close(&mut self) {
        match self {
            Deflater::BestSpeed(d) => d.finish(),
            Deflater::Lazy(d) => d.finish(),
        }
        let sink = self.sink();
        sink.write_stored_header(0, true);
        sink.flush();
    }

    fn sink(&mut self) -> &mut BitSink {
        match self {
            Deflater::BestSpeed(d) => &mut d.w.sink,
            Deflater::Lazy(d) => &mut d.w.sink,
        }
    }

    /// Hands the finished bytes to `out`.
    fn drain(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let sink = self.sink();
        out.write_all(&sink.out)?;
        sink.out.clear();
        Ok(())
    }
}

/// Writes exactly what Go 1.19's `gzip.NewWriterLevel(w, level)` writes when
/// given all of `plain` in one `Write` and closed, header and trailer
/// included. Streams: holds a few MiB whatever the input size. Levels 4 to 9
/// search on several threads when the machine has them (`parallel`).
pub fn go_gzip(level: u8, plain: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    go_gzip_in_pieces(level, plain, out, parallel::Pieces::for_this_machine())
}

fn go_gzip_in_pieces(
    level: u8,
    plain: &mut dyn Read,
    out: &mut dyn Write,
    pieces: parallel::Pieces,
) -> io::Result<()> {
    let deflater = Deflater::new(level)?;
    out.write_all(&header(level))?;
    if pieces.threads > 1 && Lazy::hashes_every_position(level) {
        match parallel::deflate(level, plain, out, pieces)? {
            Ok((writer, crc, size)) => {
                return finish(Deflater::Lazy(Box::new(writer)), crc, size, out);
            }
            Err(short) => return one_thread(deflater, &mut &short[..], out),
        }
    }
    one_thread(deflater, plain, out)
}

/// Writes the start of what [`go_gzip`] writes: the header and the blocks
/// Go has finished once it has read `limit` bytes of `plain` (or all of a
/// shorter input), on one thread. A cheap first test of whether a blob is
/// Go's at `level`: another encoder's output differs in its first block.
pub fn go_gzip_start(
    level: u8,
    plain: &mut dyn Read,
    limit: u64,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut deflater = Deflater::new(level)?;
    out.write_all(&header(level))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut left = limit;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = read_full(plain, &mut buf[..want])?;
        if n == 0 {
            break;
        }
        deflater.write_more(&buf[..n]);
        deflater.drain(out)?;
        left -= n as u64;
    }
    Ok(())
}

/// The whole input through one encoder, then `Close`.
fn one_thread(mut deflater: Deflater, plain: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut crc = 0u32;
    let mut size = 0u32;
    loop {
        let n = read_full(plain, &mut buf)?;
        if n == 0 {
            break;
        }
        crc = crc32_update(crc, &buf[..n]);
        size = size.wrapping_add(n as u32);
        deflater.write_more(&buf[..n]);
        deflater.drain(out)?;
    }
    finish(deflater, crc, size, out)
}

/// `Close` and the gzip trailer.
fn finish(mut deflater: Deflater, crc: u32, size: u32, out: &mut dyn Write) -> io::Result<()> {
    deflater.close();
    let sink = deflater.sink();
    sink.out.extend_from_slice(&crc.to_le_bytes());
    sink.out.extend_from_slice(&size.to_le_bytes());
    deflater.drain(out)
}

/// What Go writes when `plain` comes in `Write` calls of `write_size` bytes
/// (the last one shorter): for tests against Go fed the same way.
#[cfg(test)]
fn go_gzip_in_writes(level: u8, plain: &[u8], write_size: usize) -> Vec<u8> {
    let mut out = header(level).to_vec();
    let mut deflater = Deflater::new(level).unwrap();
    for call in plain.chunks(write_size) {
        deflater.write_call(call);
    }
    let size = plain.len() as u32;
    finish(deflater, crc32_update(0, plain), size, &mut out).unwrap();
    out
}

#[cfg(test)]
mod tests;
