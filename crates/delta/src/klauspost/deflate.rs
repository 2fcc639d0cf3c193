//! The compressor of the fast levels 1 and 5 (`deflate.go`: `storeFast`,
//! `fillWindow`, `write`, `syncFlush`, `close`, `ResetDict`).
//!
//! Input is cut into windows of 65535 bytes; a full window is compressed
//! when more input arrives (so a `Flush` or `Close` right after a full
//! window compresses it with `sync` set). Each window becomes a stored,
//! Huffman-only or dynamic block, or extends the open dynamic table.

use super::FlateVersion;
use super::bit_writer::BitWriter;
use super::level1::FastEncL1;
use super::level5::FastEncL5;
use super::tokens::{MAX_STORE_BLOCK_SIZE, Tokens};

/// The matcher of a fast level (`fastEnc`).
enum FastEnc {
    L1(Box<FastEncL1>),
    L5(Box<FastEncL5>),
}

impl FastEnc {
    fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        match self {
            FastEnc::L1(e) => e.encode(dst, src),
            FastEnc::L5(e) => e.encode(dst, src),
        }
    }

    fn reset(&mut self) {
        match self {
            FastEnc::L1(e) => e.reset(),
            FastEnc::L5(e) => e.reset(),
        }
    }
}

/// `logNewTablePenalty` of levels 1 to 6.
const FAST_LOG_NEW_TABLE_PENALTY: u32 = 7;
/// `maxMatchOffset`: how much of a preset dictionary the matcher sees.
const MAX_MATCH_OFFSET: usize = 1 << 15;

pub(super) struct Deflater {
    pub(super) w: BitWriter,
    fast: FastEnc,
    tokens: Tokens,
    window: Vec<u8>,
}

impl Deflater {
    /// A compressor at `level` (1 or 5), or `None` for a level not ported.
    pub(super) fn new(level: u8, version: FlateVersion) -> Option<Self> {
        let fast = match level {
            1 => FastEnc::L1(Box::new(FastEncL1::new())),
            5 => FastEnc::L5(Box::new(FastEncL5::new())),
            _ => return None,
        };
        let exact_tables = version == FlateVersion::V1_18_2;
        Some(Deflater {
            w: BitWriter::new(FAST_LOG_NEW_TABLE_PENALTY, exact_tables),
            fast,
            tokens: Tokens::new(),
            window: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
        })
    }

    /// Puts the matcher's offset base `distance` below the point where it
    /// is rebased (tests: Go's pooled writers get there after ~2 GiB).
    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        match &mut self.fast {
            FastEnc::L1(e) => e.set_cur_below_reset(distance),
            FastEnc::L5(e) => e.set_cur_below_reset(distance),
        }
    }

    /// `ResetDict`: a new stream whose matches may reach into `dict`.
    pub(super) fn reset_dict(&mut self, dict: &[u8]) {
        self.w.reset();
        self.fast.reset();
        self.window.clear();
        self.tokens.reset();
        // fillWindow: encode the dictionary's tail, discard the tokens.
        let dict = &dict[dict.len().saturating_sub(MAX_MATCH_OFFSET)..];
        self.fast.encode(&mut self.tokens, dict);
        self.tokens.reset();
    }

    /// `write`: buffers `data`, compressing each full window once more
    /// input arrives.
    pub(super) fn write(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.window.len() == MAX_STORE_BLOCK_SIZE {
                self.store_fast(false);
            }
            let n = (MAX_STORE_BLOCK_SIZE - self.window.len()).min(data.len());
            self.window.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
    }

    /// `Flush`: compress what is buffered and end with a sync marker (an
    /// empty stored block: `00 00 ff ff` on a byte boundary).
    pub(super) fn flush(&mut self) {
        self.store_fast(true);
        self.w.write_stored_header(0, false);
        self.w.flush();
    }

    /// `Close` (after a `Flush`, as pgzip calls it): the final block.
    pub(super) fn close(&mut self) {
        self.store_fast(true);
        self.w.write_stored_header(0, true);
        self.w.flush();
    }

    /// `storeFast`: compress the window if it is full or `sync` is set.
    fn store_fast(&mut self, sync: bool) {
        let window_end = self.window.len();
        if window_end < MAX_STORE_BLOCK_SIZE {
            if !sync {
                return;
            }
            // Extremely small sizes.
            if window_end < 128 {
                if window_end == 0 {
                    return;
                }
                if window_end <= 32 {
                    self.w.write_stored_block(&self.window);
                } else {
                    self.w.write_block_huff(false, &self.window, true);
                }
                self.tokens.reset();
                self.window.clear();
                self.fast.reset();
                return;
            }
        }
        self.fast.encode(&mut self.tokens, &self.window);
        if self.tokens.n == 0 {
            // No matches at all: stored.
            self.w.write_stored_block(&self.window);
        } else if self.tokens.n > window_end - (window_end >> 4) {
            // Matching removed less than 1/16th: Huffman only.
            self.w.write_block_huff(false, &self.window, sync);
        } else {
            self.w
                .write_block_dynamic(&mut self.tokens, false, &self.window, sync);
        }
        self.tokens.reset();
        self.window.clear();
    }
}
