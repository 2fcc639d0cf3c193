//! One compressed block (`blockenc.go` `blockEnc`): the literals and
//! sequences the matcher fills, the block and literals section headers,
//! and the entropy coding of both (huff0 for literals, FSE for the
//! sequence codes) with the tables carried from block to block.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::enc_base::MAX_COMPRESSED_BLOCK_SIZE;
use super::seq::Seq;

/// `blockType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum BlockType {
    Raw = 0,
    Rle = 1,
    Compressed = 2,
}

/// `literalsBlockType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum LiteralsBlockType {
    Raw = 0,
    Rle = 1,
    Compressed = 2,
    Treeless = 3,
}

/// `blockHeader`: last flag, type and size in 3 bytes.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct BlockHeader(u32);

impl BlockHeader {
    pub(super) fn set_last(&mut self, last: bool) {
        if last {
            self.0 |= 1;
        } else {
            self.0 &= (1 << 24) - 2;
        }
    }

    pub(super) fn set_size(&mut self, v: u32) {
        self.0 = (self.0 & 7) | (v << 3);
    }

    pub(super) fn set_type(&mut self, t: BlockType) {
        const MASK: u32 = 1 | (((1 << 24) - 1) ^ 7);
        self.0 = (self.0 & MASK) | ((t as u32) << 1);
    }

    pub(super) fn append_to(self, b: &mut Vec<u8>) {
        b.extend_from_slice(&[self.0 as u8, (self.0 >> 8) as u8, (self.0 >> 16) as u8]);
    }
}

/// `literalsHeader`: the header in the low bits, its length in bytes in
/// the top 4.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LiteralsHeader(u64);

impl LiteralsHeader {
    pub(super) fn set_type(&mut self, t: LiteralsBlockType) {
        self.0 = (self.0 & (u64::MAX - 3)) | t as u64;
    }

    /// `setSize`: the one size of a raw or RLE section.
    pub(super) fn set_size(&mut self, regen_len: usize) {
        let in_bits = 32 - (regen_len as u32).leading_zeros();
        let mut lh = self.0 & 3;
        let r = regen_len as u64;
        match in_bits {
            0..=4 => lh |= (r << 3) | (1 << 60),
            5..=11 => lh |= (1 << 2) | (r << 4) | (2 << 60),
            12..=19 => lh |= (3 << 2) | (r << 4) | (3 << 60),
            _ => panic!("literals section of {regen_len} bytes is too big"),
        }
        self.0 = lh;
    }

    /// `setSizes`: compressed and regenerated sizes of a Huffman section.
    pub(super) fn set_sizes(&mut self, comp_len: usize, in_len: usize, single: bool) {
        let comp_bits = 32 - (comp_len as u32).leading_zeros();
        let in_bits = 32 - (in_len as u32).leading_zeros();
        let mut lh = self.0 & 3;
        let (c, i) = (comp_len as u64, in_len as u64);
        if comp_bits <= 10 && in_bits <= 10 {
            if !single {
                lh |= 1 << 2;
            }
            lh |= (i << 4) | (c << (10 + 4)) | (3 << 60);
        } else if comp_bits <= 14 && in_bits <= 14 {
            assert!(!single, "single stream used with more than 10 bits length");
            lh |= (2 << 2) | (i << 4) | (c << (14 + 4)) | (4 << 60);
        } else if comp_bits <= 18 && in_bits <= 18 {
            assert!(!single, "single stream used with more than 10 bits length");
            lh |= (3 << 2) | (i << 4) | (c << (18 + 4)) | (5 << 60);
        } else {
            panic!("literals section of {in_len} bytes is too big");
        }
        self.0 = lh;
    }

    pub(super) fn append_to(self, b: &mut Vec<u8>) {
        let n = self.size();
        assert!((1..=5).contains(&n), "literals header of {n} bytes");
        b.extend_from_slice(&self.0.to_le_bytes()[..n]);
    }

    /// The header's length in bytes.
    pub(super) fn size(self) -> usize {
        (self.0 >> 60) as usize
    }
}

/// Why a block was not entropy-coded.
#[derive(Debug)]
pub(super) enum BlockError {
    /// `errIncompressible`: it would not be smaller; store it raw.
    Incompressible,
    /// The entropy coders refused their input (a bug, as in Go).
    Entropy(String),
}

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockError::Incompressible => f.write_str("block is incompressible"),
            BlockError::Entropy(e) => write!(f, "entropy coding failed: {e}"),
        }
    }
}

impl std::error::Error for BlockError {}

pub(super) struct BlockEnc {
    /// Input bytes of the block.
    pub(super) size: usize,
    pub(super) literals: Vec<u8>,
    pub(super) sequences: Vec<Seq>,
    /// Literals after the last sequence.
    pub(super) extra_lits: usize,
    pub(super) output: Vec<u8>,
    pub(super) recent_offsets: [u32; 3],
    pub(super) prev_recent_offsets: [u32; 3],
    pub(super) last: bool,
}

impl BlockEnc {
    /// `init` (not `lowMem`).
    pub(super) fn new() -> Self {
        let mut b = BlockEnc {
            size: 0,
            literals: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            sequences: Vec::with_capacity(2000),
            extra_lits: 0,
            output: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            recent_offsets: [0; 3],
            prev_recent_offsets: [0; 3],
            last: false,
        };
        b.reset(None);
        b
    }

    /// `initNewEncode`: offsets and tables as at the start of a frame.
    pub(super) fn init_new_encode(&mut self) {
        self.recent_offsets = [1, 4, 8];
    }

    /// `reset`: empties the block for the next one of the frame, taking
    /// the recent offsets `prev` saved.
    pub(super) fn reset(&mut self, prev: Option<[u32; 3]>) {
        self.extra_lits = 0;
        self.literals.clear();
        self.size = 0;
        self.sequences.clear();
        self.output.clear();
        self.last = false;
        if let Some(prev_recent_offsets) = prev {
            self.recent_offsets = prev_recent_offsets;
        }
    }

    /// `pushOffsets`.
    pub(super) fn push_offsets(&mut self) {
        self.prev_recent_offsets = self.recent_offsets;
    }

    /// `popOffsets`.
    pub(super) fn pop_offsets(&mut self) {
        self.recent_offsets = self.prev_recent_offsets;
    }

    /// `encode`: literals and sequences entropy-coded into `output`.
    /// TEMPORARY until the huff0/FSE coders are merged: every block raw.
    pub(super) fn encode(
        &mut self,
        _org: Option<&[u8]>,
        _raw: bool,
        _raw_all_lits: bool,
    ) -> Result<(), BlockError> {
        Err(BlockError::Incompressible)
    }

    /// `encodeRaw`: the output is `a` as a raw block.
    pub(super) fn encode_raw(&mut self, a: &[u8]) {
        self.output.clear();
        let mut out = std::mem::take(&mut self.output);
        self.encode_raw_to(&mut out, a);
        self.output = out;
    }

    /// `encodeRawTo`: appends `src` as a raw block to `dst`.
    pub(super) fn encode_raw_to(&self, dst: &mut Vec<u8>, src: &[u8]) {
        let mut bh = BlockHeader::default();
        bh.set_last(self.last);
        bh.set_size(src.len() as u32);
        bh.set_type(BlockType::Raw);
        bh.append_to(dst);
        dst.extend_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_laid_out_as_the_format_says() {
        // Block header: last bit, 2 type bits, 21 size bits.
        let mut bh = BlockHeader::default();
        bh.set_last(true);
        bh.set_type(BlockType::Compressed);
        bh.set_size(1000);
        let mut out = Vec::new();
        bh.append_to(&mut out);
        assert_eq!(out, [0x45, 0x1f, 0x00]);
        // Raw literals: 1, 2 or 3 header bytes by size.
        for (n, len) in [(15, 1), (16, 2), (2047, 2), (2048, 3)] {
            let mut lh = LiteralsHeader::default();
            lh.set_type(LiteralsBlockType::Raw);
            lh.set_size(n);
            assert_eq!(lh.size(), len, "{n} literals");
        }
        let mut lh = LiteralsHeader::default();
        lh.set_type(LiteralsBlockType::Compressed);
        lh.set_sizes(300, 1000, false);
        let mut out = Vec::new();
        lh.append_to(&mut out);
        // Type 2, size format 1 (4 streams, 10-bit sizes).
        assert_eq!(out, [0x86, 0x3e, 0x4b]);
    }
}
