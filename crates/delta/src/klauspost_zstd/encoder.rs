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
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use std::io::{self, Read, Write};

use super::block::{BlockEnc, BlockError, BlockRules};
use super::enc_base::{MAX_COMPRESSED_BLOCK_SIZE, MIN_WINDOW_SIZE};
use super::frame::FrameHeader;
use super::matcher::LevelEncoder;

/// Which klauspost/compress release's bytes to write. `SpeedDefault`'s
/// output changed in four releases after 1.15.12 (diffed through 1.19.1;
/// see `KZSTD_VERSIONS` in tender-test-support for what each changed);
/// each variant covers its release up to the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum ZstdVersion {
    /// 1.15.12 (Debian's; skopeo 1.9.3) through 1.16.3.
    V1_15_12,
    /// 1.16.4 through 1.16.7.
    V1_16_4,
    /// 1.17.0 through 1.17.7.
    V1_17_0,
    /// 1.17.8 through 1.18.4.
    V1_17_8,
    /// 1.18.5 and later (through 1.19.1).
    V1_18_5,
}

impl ZstdVersion {
    pub(crate) const ALL: [ZstdVersion; 5] = [
        ZstdVersion::V1_15_12,
        ZstdVersion::V1_16_4,
        ZstdVersion::V1_17_0,
        ZstdVersion::V1_17_8,
        ZstdVersion::V1_18_5,
    ];
}

/// `EncoderLevel`: the ported ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// `SpeedDefault` (`EncoderLevelFromZstd` of 3 to 5): the double-fast
    /// matcher.
    Default,
    /// `SpeedBestCompression` (`EncoderLevelFromZstd` of 10 and above):
    /// two chained hash tables and matches chosen by estimated cost
    /// (`best`). Debian's skopeo 1.9.3 writes zstd:chunked at level 10.
    /// Ported as 1.15.12 writes it only: 1.15.13 changed its bytes.
    Best,
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
    /// `customWindow`: `with_window_size` was called, so `with_level`
    /// keeps the window.
    custom_window: bool,
}

impl Default for EncoderOptions {
    /// `NewWriter(w, WithEncoderLevel(SpeedDefault))` of 1.15.12, what
    /// containers/image uses for zstd levels 3 to 5.
    fn default() -> Self {
        EncoderOptions::for_version(ZstdVersion::V1_15_12)
    }
}

impl EncoderOptions {
    /// `NewWriter(w, WithEncoderLevel(SpeedDefault))` of `version`.
    pub(crate) fn for_version(version: ZstdVersion) -> Self {
        EncoderOptions {
            version,
            level: Level::Default,
            window_size: 8 << 20,
            block_size: MAX_COMPRESSED_BLOCK_SIZE,
            crc: true,
            // 1.18.5 writes a frame even for no input.
            full_zero: version >= ZstdVersion::V1_18_5,
            no_entropy: false,
            // Since 1.16.4 only levels above SpeedDefault Huffman-code
            // blocks without matches.
            all_lit_entropy: version < ZstdVersion::V1_16_4,
            custom_window: false,
        }
    }

    /// `WithWindowSize`: a power of two from 1 KiB to 512 MiB; blocks
    /// shrink to a smaller window.
    pub(crate) fn with_window_size(mut self, n: u32) -> io::Result<Self> {
        if !n.is_power_of_two() || !(1 << 10..=1 << 29).contains(&n) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("zstd window size {n} is not a power of two from 1 KiB to 512 MiB"),
            ));
        }
        self.window_size = n;
        self.custom_window = true;
        self.block_size = self.block_size.min(n as usize);
        Ok(self)
    }

    /// `WithEncoderLevel`: the level and its window (8 MiB for
    /// `SpeedDefault`, 32 MiB for `SpeedBestCompression`) unless
    /// `with_window_size` set one before. `SpeedBestCompression` exists
    /// for 1.15.12 only (its matcher changed in 1.15.13, 1.16.1, 1.16.4,
    /// 1.17.2, 1.17.3, 1.17.6 and 1.17.8).
    pub(crate) fn with_level(mut self, level: Level) -> io::Result<Self> {
        if level == Level::Best && self.version != ZstdVersion::V1_15_12 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "zstd SpeedBestCompression is modelled as klauspost/compress 1.15.12 \
                     writes it only, not {:?}",
                    self.version
                ),
            ));
        }
        self.level = level;
        if !self.custom_window {
            self.window_size = match level {
                Level::Default => 8 << 20,
                Level::Best => 32 << 20,
            };
        }
        Ok(self)
    }

    fn matcher(&self) -> Box<LevelEncoder> {
        Box::new(LevelEncoder::new(
            self.level,
            self.window_size as i32,
            false,
        ))
    }
}

/// A matcher and the block it fills (Go's encoder with its `blk`).
struct Matcher {
    enc: Box<LevelEncoder>,
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
                self.stream
                    .enc
                    .base_mut()
                    .crc
                    .write(&buf[filled..filled + n]);
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

    fn add(&mut self, p: &[u8]) {
        if self.o.crc {
            self.stream.enc.base_mut().crc.write(p);
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

    #[cfg(test)]
    pub(crate) fn out_mut(&mut self) -> &mut W {
        &mut self.out
    }

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

    /// `EncodeAll`: `src` as one frame appended to `dst`.
    fn encode_all(&mut self, src: &[u8], dst: &mut Vec<u8>) {
        let o = &self.o;
        if src.is_empty() {
            if o.full_zero {
                FrameHeader {
                    content_size: 0,
                    window_size: MIN_WINDOW_SIZE as u32,
                    single_segment: true,
                    checksum: false,
                }
                .append_to(dst);
                let mut blk = BlockEnc::new(BlockRules::of(o.version));
                blk.last = true;
                blk.encode_raw_to(dst, &[]);
            }
            return;
        }
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
        if src.len() <= o.block_size {
            if o.crc {
                m.enc.base_mut().crc.write(src);
            }
            blk.last = true;
            m.enc.encode_no_hist(blk, src);
            #[cfg(test)]
            dump_seqs(&mut self.seq_dump, blk);
            let header_end = dst.len();
            let mut result = Err(BlockError::Incompressible);
            let old_out = std::mem::take(&mut blk.output);
            blk.output = std::mem::take(dst);
            if blk.rules.raw_in_encode
                || blk.literals.len() != src.len()
                || src.len() != o.block_size
            {
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
        } else {
            for (i, todo) in src.chunks(o.block_size).enumerate() {
                if o.crc {
                    m.enc.base_mut().crc.write(todo);
                }
                blk.push_offsets();
                m.enc.encode(blk, todo);
                #[cfg(test)]
                dump_seqs(&mut self.seq_dump, blk);
                if (i + 1) * o.block_size >= src.len() {
                    blk.last = true;
                }
                let mut result = Err(BlockError::Incompressible);
                if blk.rules.raw_in_encode
                    || blk.literals.len() != todo.len()
                    || todo.len() != o.block_size
                {
                    result = blk.encode(Some(todo), o.no_entropy, !o.all_lit_entropy);
                }
                match result {
                    Ok(()) => dst.extend_from_slice(&blk.output),
                    Err(BlockError::Incompressible) => {
                        blk.encode_raw_to(dst, todo);
                        blk.pop_offsets();
                    }
                    Err(e) => panic!("zstd block encoding failed: {e}"),
                }
                blk.reset(None);
            }
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
