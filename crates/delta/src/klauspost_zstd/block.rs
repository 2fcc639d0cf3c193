//! One compressed block (`blockenc.go` `blockEnc`): the literals and
//! sequences the matcher fills, the block and literals section headers,
//! and the entropy coding of both (huff0 for literals, FSE for the
//! sequence codes) with the tables carried from block to block.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::bit_writer::{BIT_MASK32, BitWriter};
use super::enc_base::MAX_COMPRESSED_BLOCK_SIZE;
use super::encoder::ZstdVersion;
use super::fse_encoder::FseEncoder;
use super::fse_predefined::{
    LL_BITS_TABLE, ML_BITS_TABLE, TABLE_LITERAL_LENGTHS, TABLE_MATCH_LENGTHS, TABLE_OFFSETS,
    fse_predef_enc,
};
use super::fse_state::CState;
use super::fse_table::TableError;
use super::huff0::{self, Huff0Error, ReusePolicy, Scratch};
use super::seq::{Seq, SeqCoders, Used, ZSTD_MIN_MATCH, ll_code, ml_code, of_code};

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

/// What differs in block coding between the modelled releases.
#[derive(Debug, Clone, Copy)]
pub(super) struct BlockRules {
    /// A block's matches must save `size >> saved_shift` bytes (5, then 6
    /// from 1.16.4) or it is coded as literals only.
    pub(super) saved_shift: u32,
    /// From 1.16.4 `encode` stores a block raw itself when coding does not
    /// make it smaller, and every block is tried.
    pub(super) raw_in_encode: bool,
    /// Literals above this many (and below 1 KiB) are Huffman-coded in one
    /// stream: 32, then 16 from 1.17.0.
    pub(super) single_stream_above: usize,
    /// From 1.17.0 Huffman-coded literals that are not smaller than raw
    /// ones (headers included) are stored raw.
    pub(super) raw_unless_smaller: bool,
    /// From 1.17.8 a block that is one byte repeated is an RLE block.
    pub(super) rle_blocks: bool,
}

impl BlockRules {
    pub(super) fn of(version: ZstdVersion) -> Self {
        BlockRules {
            saved_shift: if version >= ZstdVersion::V1_16_4 {
                6
            } else {
                5
            },
            raw_in_encode: version >= ZstdVersion::V1_16_4,
            single_stream_above: if version >= ZstdVersion::V1_17_0 {
                16
            } else {
                32
            },
            raw_unless_smaller: version >= ZstdVersion::V1_17_0,
            rle_blocks: version >= ZstdVersion::V1_17_8,
        }
    }
}

pub(super) struct BlockEnc {
    pub(super) rules: BlockRules,
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
    /// The sequence codes' FSE tables, carried from block to block.
    coders: SeqCoders,
    /// The literals' Huffman coder, carried likewise.
    lit_enc: Box<Scratch>,
    wr: BitWriter,
}

impl BlockEnc {
    /// `init` (not `lowMem`).
    pub(super) fn new(rules: BlockRules) -> Self {
        let mut b = BlockEnc {
            rules,
            size: 0,
            literals: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            sequences: Vec::with_capacity(2000),
            extra_lits: 0,
            output: Vec::with_capacity(MAX_COMPRESSED_BLOCK_SIZE),
            recent_offsets: [0; 3],
            prev_recent_offsets: [0; 3],
            last: false,
            coders: SeqCoders::new(),
            lit_enc: Box::default(),
            wr: BitWriter::default(),
        };
        b.lit_enc.want_log_less = 4;
        b.reset(None);
        b
    }

    /// `initNewEncode`: offsets and tables as at the start of a frame.
    pub(super) fn init_new_encode(&mut self) {
        self.recent_offsets = [1, 4, 8];
        self.lit_enc.reuse = ReusePolicy::None;
        self.coders.set_prev(Used::Other, Used::Other, Used::Other);
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

    /// `popOffsets`: back to the offsets `pushOffsets` saved. Go pushes
    /// only in `EncodeAll` of several blocks, which the stream never uses,
    /// so here they are zeros; the matchers never read the offsets a block
    /// starts with before replacing them.
    pub(super) fn pop_offsets(&mut self) {
        self.recent_offsets = self.prev_recent_offsets;
    }

    /// `encodeLits`: a block that is all literals, Huffman-coded in one
    /// or four streams, or RLE or raw.
    pub(super) fn encode_lits(&mut self, lits: &[u8], raw: bool) -> Result<(), BlockError> {
        let mut bh = BlockHeader::default();
        bh.set_last(self.last);
        bh.set_size(lits.len() as u32);
        // Too small to compress (there is no dictionary's table to use).
        if lits.len() < 32 || raw {
            bh.set_type(BlockType::Raw);
            bh.append_to(&mut self.output);
            self.output.extend_from_slice(lits);
            return Ok(());
        }
        let rules = self.rules;
        let mut coded = if lits.len() >= 1024 {
            huff0::compress_4x(lits, &mut self.lit_enc).map(|(out, reused)| (out, reused, false))
        } else if lits.len() > rules.single_stream_above {
            huff0::compress_1x(lits, &mut self.lit_enc).map(|(out, reused)| (out, reused, true))
        } else {
            Err(Huff0Error::Incompressible)
        };
        if rules.raw_unless_smaller
            && let Ok((out, _, single)) = &coded
            && out.len() + 5 > lits.len()
        {
            let mut lh = LiteralsHeader::default();
            lh.set_sizes(out.len(), lits.len(), *single);
            if out.len() + lh.size() >= lits.len() {
                coded = Err(Huff0Error::Incompressible);
            }
        }
        match coded {
            Err(Huff0Error::Incompressible) => {
                bh.set_type(BlockType::Raw);
                bh.append_to(&mut self.output);
                self.output.extend_from_slice(lits);
                Ok(())
            }
            Err(Huff0Error::UseRle) => {
                bh.set_type(BlockType::Rle);
                bh.append_to(&mut self.output);
                self.output.push(lits[0]);
                Ok(())
            }
            Err(e) => Err(BlockError::Entropy(e.to_string())),
            Ok((out, reused, single)) => {
                bh.set_type(BlockType::Compressed);
                let mut lh = LiteralsHeader::default();
                lh.set_type(if reused {
                    LiteralsBlockType::Treeless
                } else {
                    LiteralsBlockType::Compressed
                });
                lh.set_sizes(out.len(), lits.len(), single);
                bh.set_size((out.len() + lh.size() + 1) as u32);
                bh.append_to(&mut self.output);
                lh.append_to(&mut self.output);
                self.output.extend_from_slice(out);
                // No sequences.
                self.output.push(0);
                self.lit_enc.reuse = ReusePolicy::Allow;
                Ok(())
            }
        }
    }

    /// `encode`: the block's literals and sequences entropy-coded and
    /// appended to `output`. `Incompressible` when that would not be
    /// smaller than the input (the caller stores `org` raw); a block with
    /// too few matches to pay for the sequence tables is coded as all
    /// literals from `org`.
    // Exact port of klauspost's zstd.(*blockEnc).encode (zstd/blockenc.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn encode(
        &mut self,
        org: Option<&[u8]>,
        raw: bool,
        raw_all_lits: bool,
    ) -> Result<(), BlockError> {
        if self.sequences.is_empty() {
            let literals = std::mem::take(&mut self.literals);
            let result = self.encode_lits(&literals, raw_all_lits);
            self.literals = literals;
            return result;
        }
        let rules = self.rules;
        if rules.rle_blocks
            && self.sequences.len() == 1
            && let Some(org) = org.filter(|o| !o.is_empty())
            && self.literals.len() <= 1
        {
            // One byte repeated (a match at offset 1 after at most one
            // literal): an RLE block.
            let seq = self.sequences[0];
            if seq.lit_len == self.literals.len() as u32 && seq.offset.wrapping_sub(3) == 1 {
                let mut bh = BlockHeader::default();
                bh.set_last(self.last);
                bh.set_size(seq.match_len + ZSTD_MIN_MATCH + seq.lit_len);
                bh.set_type(BlockType::Rle);
                bh.append_to(&mut self.output);
                self.output.push(org[0]);
                return Ok(());
            }
        }
        // Some difference at least to pay for the headers.
        let saved = self.size as isize
            - self.literals.len() as isize
            - (self.size >> rules.saved_shift) as isize;
        if saved < 16 {
            let Some(org) = org else {
                return Err(BlockError::Incompressible);
            };
            self.pop_offsets();
            return self.encode_lits(org, raw_all_lits);
        }

        let mut bh = BlockHeader::default();
        bh.set_last(self.last);
        bh.set_type(BlockType::Compressed);
        // Rewritten with the size at the end.
        let bh_offset = self.output.len();
        bh.append_to(&mut self.output);

        let n_lits = self.literals.len();
        let mut coded = if n_lits >= 1024 && !raw {
            huff0::compress_4x(&self.literals, &mut self.lit_enc)
                .map(|(out, reused)| (out, reused, false))
        } else if n_lits > rules.single_stream_above && !raw {
            huff0::compress_1x(&self.literals, &mut self.lit_enc)
                .map(|(out, reused)| (out, reused, true))
        } else {
            Err(Huff0Error::Incompressible)
        };
        if rules.raw_unless_smaller
            && let Ok((out, _, single)) = &coded
            && out.len() + 5 > n_lits
        {
            let mut lh = LiteralsHeader::default();
            lh.set_size(n_lits);
            let size_raw = lh.size();
            lh.set_sizes(out.len(), n_lits, *single);
            if out.len() + lh.size() >= n_lits + size_raw {
                coded = Err(Huff0Error::Incompressible);
            }
        }
        let mut lh = LiteralsHeader::default();
        match coded {
            Err(Huff0Error::Incompressible) => {
                lh.set_type(LiteralsBlockType::Raw);
                lh.set_size(n_lits);
                lh.append_to(&mut self.output);
                self.output.extend_from_slice(&self.literals);
            }
            Err(Huff0Error::UseRle) => {
                lh.set_type(LiteralsBlockType::Rle);
                lh.set_size(n_lits);
                lh.append_to(&mut self.output);
                self.output.push(self.literals[0]);
            }
            Err(e) => return Err(BlockError::Entropy(e.to_string())),
            Ok((out, reused, single)) => {
                lh.set_type(if reused {
                    LiteralsBlockType::Treeless
                } else {
                    LiteralsBlockType::Compressed
                });
                lh.set_sizes(out.len(), n_lits, single);
                lh.append_to(&mut self.output);
                self.output.extend_from_slice(out);
                self.lit_enc.reuse = ReusePolicy::Allow;
            }
        }

        // The number of sequences.
        let n = self.sequences.len();
        if n < 128 {
            self.output.push(n as u8);
        } else if n < 0x7f00 {
            self.output
                .extend_from_slice(&[128 + (n >> 8) as u8, n as u8]);
        } else {
            let n = n - 0x7f00;
            self.output
                .extend_from_slice(&[255, n as u8, (n >> 8) as u8]);
        }
        self.gen_codes();
        let entropy = |e: TableError| BlockError::Entropy(e.to_string());
        let coders = &mut self.coders;
        coders.ll_enc.normalize_count(n).map_err(entropy)?;
        coders.of_enc.normalize_count(n).map_err(entropy)?;
        coders.ml_enc.normalize_count(n).map_err(entropy)?;

        // The table of each code: RLE, predefined, the previous block's or
        // a new one, whichever is estimated smallest.
        let predef = fse_predef_enc();
        let first = self.sequences[0];
        let mut mode = 0u8;
        let ll_used = if coders.ll_enc.use_rle {
            coders.ll_enc.set_rle(first.ll_code);
            mode |= (CompMode::Rle as u8) << 6;
            Used::Current
        } else {
            let (used, m) = choose_comp(
                &coders.ll_enc,
                &coders.ll_prev,
                &predef[TABLE_LITERAL_LENGTHS],
            );
            mode |= (m as u8) << 6;
            used
        };
        let of_used = if coders.of_enc.use_rle {
            coders.of_enc.set_rle(first.of_code);
            mode |= (CompMode::Rle as u8) << 4;
            Used::Current
        } else {
            let (used, m) = choose_comp(&coders.of_enc, &coders.of_prev, &predef[TABLE_OFFSETS]);
            mode |= (m as u8) << 4;
            used
        };
        let ml_used = if coders.ml_enc.use_rle {
            coders.ml_enc.set_rle(first.ml_code);
            mode |= (CompMode::Rle as u8) << 2;
            Used::Current
        } else {
            let (used, m) = choose_comp(
                &coders.ml_enc,
                &coders.ml_prev,
                &predef[TABLE_MATCH_LENGTHS],
            );
            mode |= (m as u8) << 2;
            used
        };
        self.output.push(mode);
        // Only a new (or RLE) table has bits to set: a reused one has them,
        // the predefined ones were built with them.
        if ll_used == Used::Current {
            coders.ll_enc.set_bits(Some(&LL_BITS_TABLE));
        }
        if ml_used == Used::Current {
            coders.ml_enc.set_bits(Some(&ML_BITS_TABLE));
        }
        if of_used == Used::Current {
            coders.of_enc.set_bits(None);
        }
        let ll_enc = pick(
            ll_used,
            &coders.ll_enc,
            &coders.ll_prev,
            &predef[TABLE_LITERAL_LENGTHS],
        );
        let of_enc = pick(
            of_used,
            &coders.of_enc,
            &coders.of_prev,
            &predef[TABLE_OFFSETS],
        );
        let ml_enc = pick(
            ml_used,
            &coders.ml_enc,
            &coders.ml_prev,
            &predef[TABLE_MATCH_LENGTHS],
        );
        ll_enc.write_count(&mut self.output).map_err(entropy)?;
        of_enc.write_count(&mut self.output).map_err(entropy)?;
        ml_enc.write_count(&mut self.output).map_err(entropy)?;

        // The sequences, last first.
        let mut wr = std::mem::take(&mut self.wr);
        wr.reset(std::mem::take(&mut self.output));
        let (ll_tt, of_tt, ml_tt) = (
            &ll_enc.ct.symbol_tt,
            &of_enc.ct.symbol_tt,
            &ml_enc.ct.symbol_tt,
        );
        let s = self.sequences[n - 1];
        let (ll_b, of_b, ml_b) = (
            ll_tt[s.ll_code as usize],
            of_tt[s.of_code as usize],
            ml_tt[s.ml_code as usize],
        );
        let mut ll = CState::init(&ll_enc.ct, ll_b);
        let mut of = CState::init(&of_enc.ct, of_b);
        wr.flush32();
        let mut ml = CState::init(&ml_enc.ct, ml_b);
        wr.add_bits32_nc(s.lit_len, ll_b.out_bits);
        wr.add_bits32_nc(s.match_len, ml_b.out_bits);
        wr.flush32();
        wr.add_bits32_nc(s.offset, of_b.out_bits);
        for s in self.sequences[..n - 1].iter().rev() {
            let of_b = of_tt[s.of_code as usize];
            // Table logs are below 8: at most 24 bits of states.
            wr.flush32();
            of.encode(&mut wr, of_b);
            let out_bits = of_b.out_bits & 31;
            let mut extra_bits = u64::from(s.offset & BIT_MASK32[out_bits as usize]);
            let mut extra_bits_n = out_bits;

            let ml_b = ml_tt[s.ml_code as usize];
            ml.encode(&mut wr, ml_b);
            let out_bits = ml_b.out_bits & 31;
            extra_bits =
                extra_bits << out_bits | u64::from(s.match_len & BIT_MASK32[out_bits as usize]);
            extra_bits_n += out_bits;

            let ll_b = ll_tt[s.ll_code as usize];
            ll.encode(&mut wr, ll_b);
            let out_bits = ll_b.out_bits & 31;
            extra_bits =
                extra_bits << out_bits | u64::from(s.lit_len & BIT_MASK32[out_bits as usize]);
            extra_bits_n += out_bits;

            wr.flush32();
            wr.add_bits64_nc(extra_bits, extra_bits_n);
        }
        ml.flush(&mut wr, ml_enc.actual_table_log);
        of.flush(&mut wr, of_enc.actual_table_log);
        ll.flush(&mut wr, ll_enc.actual_table_log);
        wr.close();
        self.output = std::mem::take(&mut wr.out);
        self.wr = wr;

        if self.output.len() - 3 - bh_offset >= self.size {
            self.lit_enc.reuse = ReusePolicy::None;
            if !rules.raw_in_encode {
                return Err(BlockError::Incompressible);
            }
            self.output.truncate(bh_offset);
            let mut output = std::mem::take(&mut self.output);
            self.encode_raw_to(&mut output, org.unwrap_or_default());
            self.output = output;
            self.pop_offsets();
            return Ok(());
        }
        bh.set_size((self.output.len() - bh_offset - 3) as u32);
        let mut header = Vec::with_capacity(3);
        bh.append_to(&mut header);
        self.output[bh_offset..bh_offset + 3].copy_from_slice(&header);
        self.coders.set_prev(ll_used, ml_used, of_used);
        Ok(())
    }

    /// `genCodes`: each sequence's three codes and their histograms.
    fn gen_codes(&mut self) {
        assert!(
            self.sequences.len() <= usize::from(u16::MAX),
            "can only encode up to 64K sequences"
        );
        let mut ll_h = [0u32; 256];
        let mut of_h = [0u32; 256];
        let mut ml_h = [0u32; 256];
        let (mut ll_max, mut of_max, mut ml_max) = (0u8, 0u8, 0u8);
        for seq in &mut self.sequences {
            seq.ll_code = ll_code(seq.lit_len);
            ll_h[seq.ll_code as usize] += 1;
            ll_max = ll_max.max(seq.ll_code);
            seq.of_code = of_code(seq.offset);
            of_h[seq.of_code as usize] += 1;
            of_max = of_max.max(seq.of_code);
            seq.ml_code = ml_code(seq.match_len);
            ml_h[seq.ml_code as usize] += 1;
            ml_max = ml_max.max(seq.ml_code);
        }
        let max_count = |h: &[u32]| h.iter().copied().max().unwrap_or(0) as usize;
        for (enc, h, max) in [
            (&mut self.coders.ml_enc, &ml_h, ml_max),
            (&mut self.coders.of_enc, &of_h, of_max),
            (&mut self.coders.ll_enc, &ll_h, ll_max),
        ] {
            *enc.histogram() = *h;
            enc.histogram_finished(max, max_count(&h[..=max as usize]));
        }
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

/// `seqCompMode`: how a code's table is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum CompMode {
    Predefined = 0,
    Rle = 1,
    Fse = 2,
    Repeat = 3,
}

/// `chooseComp`: predefined, previous or new table, by estimated size
/// (a new one pays its header and a small penalty).
fn choose_comp(cur: &FseEncoder, prev: &FseEncoder, predef: &FseEncoder) -> (Used, CompMode) {
    let hist = &cur.count[..usize::from(cur.symbol_len)];
    let mut n_size = cur.approx_size(hist).wrapping_add(cur.max_header_size());
    let predef_size = predef.approx_size(hist);
    let prev_size = prev.approx_size(hist);
    n_size = n_size.wrapping_add(n_size.wrapping_add(2 * 8 * 16) >> 4);
    if predef_size <= prev_size && predef_size <= n_size {
        (Used::Other, CompMode::Predefined)
    } else if prev_size <= n_size {
        (Used::Prev, CompMode::Repeat)
    } else {
        (Used::Current, CompMode::Fse)
    }
}

/// The encoder `used` names.
fn pick<'a>(
    used: Used,
    cur: &'a FseEncoder,
    prev: &'a FseEncoder,
    predef: &'a FseEncoder,
) -> &'a FseEncoder {
    match used {
        Used::Current => cur,
        Used::Prev => prev,
        Used::Other => predef,
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
