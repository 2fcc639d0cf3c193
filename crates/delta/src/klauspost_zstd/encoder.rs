//! The streaming encoder (`encoder.go` `Encoder`, `encoder_options.go`):
//! cuts the input into blocks of 128 KiB, writes a frame header before
//! the first and a checksum after the last, and starts a new frame on
//! `reset` (zstd:chunked writes one frame per file this way).
//!
//! A frame whose input ends before its first block is full is written as
//! Go writes it, by `EncodeAll`: one segment with its size in the header,
//! matched without history. Go compresses blocks on other goroutines
//! (concurrency is `GOMAXPROCS` by default), handing the entropy tables
//! from block to block in order; the bytes are those of the one-goroutine
//! path ported here, which the tests check against both.
//!
//! Memory: Go's history buffer (room for two windows: 16 MiB at
//! `SpeedDefault`), the matcher's hash tables (1.25 MiB), block buffers
//! (about 0.5 MiB), and a second matcher's tables for frames of one block.
//! Input is never held beyond the window.
//!
//! Not `io::Write` on purpose: `flush` changes the bytes (it ends a block
//! early), so it is called only where Go's caller calls `Flush`.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use super::best::BestFastEncoder;
use super::block::{BlockEnc, BlockError, BlockRules};
use super::dfast::DoubleFastEncoder;
use super::enc_base::{FastBase, MAX_COMPRESSED_BLOCK_SIZE, MIN_WINDOW_SIZE};
use super::fast::FastEncoder;
use super::frame::FrameHeader;

/// Which klauspost/compress release's bytes to write. `SpeedDefault`'s
/// output changed in four releases after 1.15.12 (diffed through 1.19.1;
/// see `KZSTD_VERSIONS` in tender-test-support for what each changed);
/// each variant covers its release up to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ZstdVersion {
    /// 1.15.12 (Debian's; skopeo 1.9.3) through 1.16.3.
    #[serde(rename = "1.15.12")]
    V1_15_12,
    /// 1.16.4 through 1.16.7.
    #[serde(rename = "1.16.4")]
    V1_16_4,
    /// 1.17.0 through 1.17.7.
    #[serde(rename = "1.17.0")]
    V1_17_0,
    /// 1.17.8 through 1.18.4.
    #[serde(rename = "1.17.8")]
    V1_17_8,
    /// 1.18.5 and later (through 1.19.1).
    #[serde(rename = "1.18.5")]
    V1_18_5,
}

impl ZstdVersion {
    pub const ALL: [ZstdVersion; 5] = [
        ZstdVersion::V1_15_12,
        ZstdVersion::V1_16_4,
        ZstdVersion::V1_17_0,
        ZstdVersion::V1_17_8,
        ZstdVersion::V1_18_5,
    ];
}

/// `EncoderLevel`: the ported ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// `SpeedFastest` (`EncoderLevelFromZstd` below 3): the fast matcher,
    /// a 4 MiB window and 64 KiB blocks.
    Fastest,
    /// `SpeedDefault` (`EncoderLevelFromZstd` of 3 to 5): the double-fast
    /// matcher.
    Default,
    /// `SpeedBestCompression` (`EncoderLevelFromZstd` of 10 and above):
    /// two chained hash tables and matches chosen by estimated cost, a 32
    /// MiB window. Debian's skopeo 1.9.3 writes zstd:chunked at level 10.
    Best,
}

impl Level {
    /// Whether the port writes this level's bytes as `version` does.
    /// `SpeedBestCompression` is 1.15.12's only: its matcher changed the
    /// bytes in 1.15.13, 1.16.1, 1.16.4, 1.17.2, 1.17.3, 1.17.6 and 1.17.8.
    pub fn modelled_in(self, version: ZstdVersion) -> bool {
        self != Level::Best || version == ZstdVersion::V1_15_12
    }
}

/// `encoderOptions`, as `NewWriter` and `WithEncoderLevel` set them.
#[derive(Debug, Clone)]
pub(crate) struct EncoderOptions {
    pub(crate) version: ZstdVersion,
    pub(crate) level: Level,
    /// The longest match distance and the window in the frame header.
    pub(crate) window_size: u32,
    pub(crate) block_size: usize,
    /// Append the content checksum.
    pub(crate) crc: bool,
    /// `WithZeroFrames`: a frame even for no input.
    pub(crate) full_zero: bool,
    /// `WithNoEntropyCompression`: literals stay raw.
    pub(crate) no_entropy: bool,
    /// `WithAllLitEntropyCompression`: Huffman-code blocks that are all
    /// literals.
    pub(crate) all_lit_entropy: bool,
}

impl Default for EncoderOptions {
    /// `NewWriter(w, WithEncoderLevel(SpeedDefault))` of 1.15.12, what
    /// containers/image uses for zstd levels 3 to 5.
    fn default() -> Self {
        EncoderOptions::new(ZstdVersion::V1_15_12, Level::Default)
    }
}

impl EncoderOptions {
    /// `NewWriter(w, WithEncoderLevel(level))` of `version`; the level
    /// must be modelled in that version ([`Level::modelled_in`]).
    pub(crate) fn new(version: ZstdVersion, level: Level) -> Self {
        assert!(
            level.modelled_in(version),
            "zstd {level:?} is not modelled as klauspost/compress {version:?} writes it"
        );
        let fastest = level == Level::Fastest;
        EncoderOptions {
            version,
            level,
            window_size: match level {
                Level::Fastest => 4 << 20,
                Level::Default => 8 << 20,
                Level::Best => 32 << 20,
            },
            block_size: if fastest {
                64 << 10
            } else {
                MAX_COMPRESSED_BLOCK_SIZE
            },
            crc: true,
            // 1.18.5 writes a frame even for no input.
            full_zero: version >= ZstdVersion::V1_18_5,
            no_entropy: false,
            // Only levels above SpeedFastest (since 1.16.4: above
            // SpeedDefault) Huffman-code blocks without matches.
            all_lit_entropy: !fastest && version < ZstdVersion::V1_16_4,
        }
    }

    /// `WithWindowSize`: a power of two from 1 KiB to 512 MiB; blocks
    /// shrink to a smaller window.
    #[cfg(test)]
    pub(crate) fn with_window_size(mut self, n: u32) -> io::Result<Self> {
        if !n.is_power_of_two() || !(1 << 10..=1 << 29).contains(&n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("zstd window size {n} is not a power of two from 1 KiB to 512 MiB"),
            ));
        }
        self.window_size = n;
        self.block_size = self.block_size.min(n as usize);
        Ok(self)
    }

    fn matcher(&self) -> MatchEncoder {
        let window = self.window_size as i32;
        match self.level {
            Level::Fastest => MatchEncoder::Fast(Box::new(FastEncoder::new(window, false))),
            Level::Default => {
                MatchEncoder::DoubleFast(Box::new(DoubleFastEncoder::new(window, false)))
            }
            Level::Best => MatchEncoder::Best(Box::new(BestFastEncoder::new(window, false))),
        }
    }
}

/// The level's matcher (Go's `encoder` interface).
enum MatchEncoder {
    Fast(Box<FastEncoder>),
    DoubleFast(Box<DoubleFastEncoder>),
    Best(Box<BestFastEncoder>),
}

impl MatchEncoder {
    fn base(&mut self) -> &mut FastBase {
        match self {
            MatchEncoder::Fast(e) => &mut e.base,
            MatchEncoder::DoubleFast(e) => &mut e.base,
            MatchEncoder::Best(e) => &mut e.base,
        }
    }

    fn reset(&mut self) {
        match self {
            MatchEncoder::Fast(e) => e.reset(),
            MatchEncoder::DoubleFast(e) => e.reset(),
            MatchEncoder::Best(e) => e.reset(),
        }
    }

    fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            MatchEncoder::Fast(e) => e.encode(blk, src),
            MatchEncoder::DoubleFast(e) => e.encode(blk, src),
            MatchEncoder::Best(e) => e.encode(blk, src),
        }
    }

    fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            MatchEncoder::Fast(e) => e.encode_no_hist(blk, src),
            MatchEncoder::DoubleFast(e) => e.encode_no_hist(blk, src),
            MatchEncoder::Best(e) => e.encode_no_hist(blk, src),
        }
    }

    #[cfg(test)]
    fn set_cur_below_reset(&mut self, distance: u32) {
        match self {
            MatchEncoder::Fast(e) => e.set_cur_below_reset(distance),
            MatchEncoder::DoubleFast(e) => e.set_cur_below_reset(distance),
            MatchEncoder::Best(e) => e.set_cur_below_reset(distance),
        }
    }
}

/// A matcher and the block it fills (Go's encoder with its `blk`).
struct Matcher {
    enc: MatchEncoder,
    blk: BlockEnc,
}

impl Matcher {
    fn new(o: &EncoderOptions) -> Self {
        let mut m = Matcher {
            enc: o.matcher(),
            blk: BlockEnc::new(BlockRules::of(o.version)),
        };
        m.reset();
        m
    }

    /// `Reset(nil, _)`: `resetBase` resets the block and its tables too.
    fn reset(&mut self) {
        self.blk.reset(None);
        self.blk.init_new_encode();
        self.enc.reset();
    }
}

/// Writes zstd frames exactly as klauspost/compress's `Encoder` does.
pub(crate) struct ZstdEncoder<W: Write> {
    out: W,
    o: EncoderOptions,
    filling: Vec<u8>,
    /// The stream's matcher.
    stream: Matcher,
    /// `EncodeAll`'s (Go takes one from a pool; their state never shows
    /// in the output), made when first needed.
    all: Option<Box<Matcher>>,
    /// `EncodeAll`'s output buffer.
    current: Vec<u8>,
    header_written: bool,
    eof_written: bool,
    full_frame_written: bool,
    /// Each block's sequences as `kzstd_dump` writes them, when set.
    #[cfg(test)]
    pub(super) seq_dump: Option<String>,
}

impl<W: Write> ZstdEncoder<W> {
    /// `NewWriter(out, opts)`.
    pub(crate) fn new(out: W, options: &EncoderOptions) -> Self {
        let mut e = ZstdEncoder {
            out,
            o: options.clone(),
            filling: Vec::with_capacity(options.block_size),
            stream: Matcher::new(options),
            all: None,
            current: Vec::new(),
            header_written: false,
            eof_written: false,
            full_frame_written: false,
            #[cfg(test)]
            seq_dump: None,
        };
        e.reset();
        e
    }

    /// `Reset`: the next input starts a new frame, with the matcher's
    /// history and entropy tables as at the start.
    pub(crate) fn reset(&mut self) {
        self.filling.clear();
        self.stream.reset();
        self.header_written = false;
        self.eof_written = false;
        self.full_frame_written = false;
    }

    /// `Write`: buffers `data`, compressing each block as it fills.
    #[cfg(test)]
    pub(crate) fn write_all(&mut self, mut p: &[u8]) -> io::Result<()> {
        let block_size = self.o.block_size;
        while !p.is_empty() {
            if p.len() + self.filling.len() < block_size {
                self.add(p);
                return Ok(());
            }
            let (add, rest) = p.split_at(block_size - self.filling.len());
            self.add(add);
            p = rest;
            self.next_block(false)?;
        }
        Ok(())
    }

    /// `ReadFrom`: like `write_all` of everything `r` yields, except that
    /// a block already begun is compressed first as it is.
    pub(crate) fn read_from(&mut self, r: &mut dyn Read) -> io::Result<u64> {
        if !self.filling.is_empty() {
            self.next_block(false)?;
        }
        let block_size = self.o.block_size;
        let mut total = 0u64;
        let mut buf = std::mem::take(&mut self.filling);
        buf.resize(block_size, 0);
        let mut filled = 0;
        loop {
            let n = match r.read(&mut buf[filled..]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    buf.truncate(filled);
                    self.filling = buf;
                    return Err(e);
                }
            };
            if self.o.crc {
                self.stream.enc.base().crc.write(&buf[filled..filled + n]);
            }
            filled += n;
            total += n as u64;
            if n == 0 {
                buf.truncate(filled);
                self.filling = buf;
                return Ok(total);
            }
            if filled < block_size {
                continue;
            }
            self.filling = buf;
            self.next_block(false)?;
            buf = std::mem::take(&mut self.filling);
            buf.resize(block_size, 0);
            filled = 0;
        }
    }

    #[cfg(test)]
    fn add(&mut self, p: &[u8]) {
        if self.o.crc {
            self.stream.enc.base().crc.write(p);
        }
        self.filling.extend_from_slice(p);
    }

    /// `Flush`: compresses a block begun (short of its size) and writes it.
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        if !self.filling.is_empty() {
            self.next_block(false)?;
        }
        self.out.flush()
    }

    /// `Close`: the last block and the checksum end the frame. The encoder
    /// can go on with `reset`.
    pub(crate) fn close(&mut self) -> io::Result<()> {
        self.next_block(true)?;
        if self.full_frame_written {
            return Ok(());
        }
        if self.o.crc {
            let mut crc = Vec::with_capacity(4);
            self.stream.enc.base().append_crc(&mut crc);
            self.out.write_all(&crc)?;
        }
        Ok(())
    }

    /// Moves the matchers' offset base to `distance` below where Go
    /// rebases its tables.
    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        self.stream.enc.set_cur_below_reset(distance);
        let o = &self.o;
        let all = self.all.get_or_insert_with(|| Box::new(Matcher::new(o)));
        all.enc.set_cur_below_reset(distance);
    }

    /// The output, to write between frames (a zstd:chunked layer's
    /// skippable frames) or take each frame (tests).
    pub(crate) fn out_mut(&mut self) -> &mut W {
        &mut self.out
    }

    #[cfg(test)]
    pub(crate) fn into_inner(self) -> W {
        self.out
    }

    /// `nextBlock`: compresses `filling` (the last block if `last`).
    fn next_block(&mut self, last: bool) -> io::Result<()> {
        let mut last = last;
        if !self.header_written {
            if last && self.filling.is_empty() && !self.o.full_zero {
                self.header_written = true;
                self.full_frame_written = true;
                self.eof_written = true;
                return Ok(());
            }
            if last && !self.filling.is_empty() {
                // The whole frame in one block: Go uses EncodeAll.
                let mut current = std::mem::take(&mut self.current);
                current.clear();
                let filling = std::mem::take(&mut self.filling);
                self.encode_all(&filling, &mut current);
                self.filling = filling;
                let written = self.out.write_all(&current);
                self.current = current;
                written?;
                self.filling.clear();
                self.header_written = true;
                self.full_frame_written = true;
                self.eof_written = true;
                return Ok(());
            }
            let mut header = Vec::with_capacity(14);
            FrameHeader {
                content_size: 0,
                window_size: self.stream.enc.base().window_size(0) as u32,
                single_segment: false,
                checksum: self.o.crc,
            }
            .append_to(&mut header);
            self.header_written = true;
            self.out.write_all(&header)?;
        }
        if self.eof_written {
            // Only one last block.
            last = false;
        }
        let blk = &mut self.stream.blk;
        if self.filling.is_empty() {
            if last {
                blk.reset(None);
                blk.last = true;
                blk.encode_raw(&[]);
                self.out.write_all(&blk.output)?;
                self.eof_written = true;
            }
            return Ok(());
        }
        let src = &self.filling;
        blk.reset(None);
        self.stream.enc.encode(blk, src);
        #[cfg(test)]
        dump_seqs(&mut self.seq_dump, blk);
        blk.last = last;
        if last {
            self.eof_written = true;
        }
        entropy_or_raw(blk, src, &self.o)?;
        self.out.write_all(&blk.output)?;
        self.filling.clear();
        Ok(())
    }

    /// `EncodeAll` of one block: `src` as one frame (a single segment with
    /// its size, when above 1 KiB) appended to `dst`.
    fn encode_all(&mut self, src: &[u8], dst: &mut Vec<u8>) {
        let o = &self.o;
        // The stream calls this only for a frame of one block, never empty
        // (an empty frame is written as a stream); Go's other cases are
        // not needed.
        assert!(
            !src.is_empty() && src.len() <= o.block_size,
            "EncodeAll of {} bytes",
            src.len()
        );
        let m = self.all.get_or_insert_with(|| Box::new(Matcher::new(o)));
        let single = src.len() <= o.window_size as usize && src.len() > MIN_WINDOW_SIZE as usize;
        FrameHeader {
            content_size: src.len() as u64,
            window_size: m.enc.base().window_size(src.len() as i64) as u32,
            single_segment: single,
            checksum: o.crc,
        }
        .append_to(dst);

        m.reset();
        let blk = &mut m.blk;
        if o.crc {
            m.enc.base().crc.write(src);
        }
        blk.last = true;
        m.enc.encode_no_hist(blk, src);
        #[cfg(test)]
        dump_seqs(&mut self.seq_dump, blk);
        let header_end = dst.len();
        let mut result = Err(BlockError::Incompressible);
        let old_out = std::mem::take(&mut blk.output);
        blk.output = std::mem::take(dst);
        if blk.rules.raw_in_encode || blk.literals.len() != src.len() || src.len() != o.block_size {
            result = blk.encode(Some(src), o.no_entropy, !o.all_lit_entropy);
        }
        *dst = std::mem::replace(&mut blk.output, old_out);
        match result {
            Ok(()) => {}
            Err(BlockError::Incompressible) => {
                dst.truncate(header_end);
                blk.encode_raw_to(dst, src);
            }
            Err(e) => panic!("zstd block encoding failed: {e}"),
        }
        if o.crc {
            m.enc.base().append_crc(dst);
        }
    }
}

/// The block entropy-coded, or raw when that does not pay (or when all
/// of a full block stayed literals, which Go takes as incompressible).
fn entropy_or_raw(blk: &mut BlockEnc, src: &[u8], o: &EncoderOptions) -> io::Result<()> {
    let mut result = Err(BlockError::Incompressible);
    // Before 1.16.4 a full block that stayed all literals is taken as
    // incompressible without trying.
    if blk.rules.raw_in_encode || src.len() != blk.literals.len() || src.len() != o.block_size {
        result = blk.encode(Some(src), o.no_entropy, !o.all_lit_entropy);
    }
    match result {
        Ok(()) => Ok(()),
        Err(BlockError::Incompressible) => {
            blk.encode_raw(src);
            Ok(())
        }
        Err(e) => Err(io::Error::other(e)),
    }
}

#[cfg(test)]
fn dump_seqs(dump: &mut Option<String>, blk: &BlockEnc) {
    use std::fmt::Write as _;
    let Some(d) = dump else { return };
    let _ = writeln!(
        d,
        "block {} lits {} extra {} seqs {}",
        blk.size,
        blk.literals.len(),
        blk.extra_lits,
        blk.sequences.len()
    );
    for s in &blk.sequences {
        let _ = writeln!(d, "{} {} {}", s.lit_len, s.match_len, s.offset);
    }
}
