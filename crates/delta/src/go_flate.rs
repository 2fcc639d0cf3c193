//! Byte-exact re-implementation of Go 1.19's `compress/gzip` writer at
//! `gzip.BestSpeed` (level 1), i.e. `compress/flate`'s BestSpeed encoder.
//!
//! Go-built images (ko, crane, umoci, ...) often compress layers with
//! `gzip.NewWriterLevel(w, gzip.BestSpeed)`. Re-running that exact encoder
//! on the uncompressed tar gives back the published blob bit for bit, so no
//! preflate correction data has to travel.
//!
//! The port follows the Go sources closely (names in comments refer to
//! them):
//!
//! * `deflate.go`: level 1 fills a window of `maxStoreBlockSize` (65535)
//!   bytes (`fillStore`) and runs `encSpeed` on every full window; `Close`
//!   runs `encSpeed` once more on the remainder with `sync` set (remainders
//!   of 1..=16 bytes are stored, 17..=127 bytes Huffman-only), then writes
//!   an empty final stored block.
//! * `deflatefast.go`: the Snappy-style matcher with a 1<<14 entry hash
//!   table, history of the previous block (`prev`) and the running offset
//!   `cur`, including `shiftOffsets` near `bufferReset`.
//! * `huffman_bit_writer.go` / `huffman_code.go`: `writeBlockHuff`,
//!   `writeBlockDynamic`, the code-length limited Huffman construction
//!   (`bitCounts`) and the code-length run-length encoding (`generateCodegen`).
//! * `gzip.go`: the 10-byte header (`XFL` = 4 for BestSpeed, `OS` = 255, no
//!   name, no mtime) and the CRC-32 / ISIZE trailer.
//!
//! How Go chunks its `Write` calls does not change the output: blocks are
//! always whole 65535-byte windows plus one final shorter window.

use std::io::{self, Read, Write};

// ---------------------------------------------------------------------------
// Constants (deflate.go, deflatefast.go, huffman_bit_writer.go, token.go)

const MAX_NUM_LIT: usize = 286;
const OFFSET_CODE_COUNT: usize = 30;
const END_BLOCK_MARKER: usize = 256;
const LENGTH_CODES_START: usize = 257;
const CODEGEN_CODE_COUNT: usize = 19;
const BAD_CODE: u8 = 255;

const MAX_STORE_BLOCK_SIZE: usize = 65535;
const BASE_MATCH_LENGTH: i32 = 3;
const BASE_MATCH_OFFSET: i32 = 1;
const MAX_MATCH_LENGTH: usize = 258;
const MAX_MATCH_OFFSET: i32 = 1 << 15;

const TABLE_BITS: u32 = 14;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const TABLE_MASK: u32 = (TABLE_SIZE - 1) as u32;
const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
const BUFFER_RESET: i32 = i32::MAX - (MAX_STORE_BLOCK_SIZE as i32) * 2;
const INPUT_MARGIN: usize = 16 - 1;
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN;

// Token layout: 2 bits type (0 literal, 1 match), 8 bits length - 3,
// 22 bits offset - 1 (or the literal).
const LENGTH_SHIFT: u32 = 22;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
const MATCH_TYPE: u32 = 1 << 30;

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255];

/// Number of extra bits of length code `X - LENGTH_CODES_START`.
const LENGTH_EXTRA_BITS: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];

/// The length (minus 3) at which each length code starts.
const LENGTH_BASE: [u32; 29] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255,
];

const OFFSET_EXTRA_BITS: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

const OFFSET_BASE: [u32; 30] = [
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c, 0x000010,
    0x000018, 0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0, 0x000100, 0x000180,
    0x000200, 0x000300, 0x000400, 0x000600, 0x000800, 0x000c00, 0x001000, 0x001800, 0x002000,
    0x003000, 0x004000, 0x006000,
];

/// The order in which code-length code lengths are written.
const CODEGEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

/// `lengthCodes[length - 3]` (token.go).
const LENGTH_CODES: [u8; 256] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9, 10, 10, 11, 11, //
    12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15, //
    16, 16, 16, 16, 16, 16, 16, 16, 17, 17, 17, 17, 17, 17, 17, 17, //
    18, 18, 18, 18, 18, 18, 18, 18, 19, 19, 19, 19, 19, 19, 19, 19, //
    20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, //
    21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, 21, //
    22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, //
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23, //
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, //
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, //
    25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, //
    25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, 25, //
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, //
    26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, 26, //
    27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, //
    27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 27, 28, //
];

/// `offsetCodes` (token.go), indexed by small offsets (minus 1).
const OFFSET_CODES: [u8; 256] = [
    0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7, //
    8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, //
    10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10, //
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, //
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, //
    12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, //
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, //
    13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, 13, //
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, //
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, //
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, //
    14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, 14, //
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, //
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, //
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, //
    15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, //
];

// ---------------------------------------------------------------------------
// Tokens (token.go)

#[inline]
fn match_token(xlength: u32, xoffset: u32) -> u32 {
    MATCH_TYPE + (xlength << LENGTH_SHIFT) + xoffset
}

#[inline]
fn token_length(t: u32) -> u32 {
    (t - MATCH_TYPE) >> LENGTH_SHIFT
}

#[inline]
fn token_offset(t: u32) -> u32 {
    t & OFFSET_MASK
}

#[inline]
fn length_code(len: u32) -> usize {
    LENGTH_CODES[len as usize] as usize
}

#[inline]
fn offset_code(off: u32) -> usize {
    if off < 256 {
        OFFSET_CODES[off as usize] as usize
    } else if off >> 7 < 256 {
        OFFSET_CODES[(off >> 7) as usize] as usize + 14
    } else {
        OFFSET_CODES[(off >> 14) as usize] as usize + 28
    }
}

// ---------------------------------------------------------------------------
// Huffman code construction (huffman_code.go)

#[derive(Clone, Copy, Default)]
struct HCode {
    code: u16,
    len: u16,
}

#[derive(Clone, Copy, Default)]
struct LiteralNode {
    literal: u16,
    freq: i32,
}

#[derive(Clone, Copy, Default)]
struct LevelInfo {
    level: i32,
    last_freq: i32,
    next_char_freq: i32,
    next_pair_freq: i32,
    needed: i32,
}

const MAX_BITS_LIMIT: usize = 16;

fn reverse_bits(number: u16, bit_length: u32) -> u16 {
    (number << (16 - bit_length)).reverse_bits()
}

struct HuffmanEncoder {
    codes: Vec<HCode>,
    freqcache: Vec<LiteralNode>,
    bit_count: [i32; 17],
}

impl HuffmanEncoder {
    fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![HCode::default(); size],
            freqcache: vec![LiteralNode::default(); MAX_NUM_LIT + 1],
            bit_count: [0; 17],
        }
    }

    fn bit_length(&self, freq: &[i32]) -> i64 {
        freq.iter()
            .zip(&self.codes)
            .filter(|(f, _)| **f != 0)
            .map(|(f, c)| i64::from(*f) * i64::from(c.len))
            .sum()
    }

    /// `bitCounts`: number of literals per code length, lengths limited to
    /// `max_bits`. `list` holds the `n` used literals sorted by frequency
    /// plus one spare slot. Returns how many entries of `bit_count` are valid.
    fn bit_counts(&mut self, list: &mut [LiteralNode], mut max_bits: i32) -> usize {
        assert!(max_bits < MAX_BITS_LIMIT as i32, "flate: maxBits too large");
        let n = (list.len() - 1) as i32;
        list[n as usize] = LiteralNode {
            literal: u16::MAX,
            freq: i32::MAX,
        };
        if max_bits > n - 1 {
            max_bits = n - 1;
        }
        let mut levels = [LevelInfo::default(); MAX_BITS_LIMIT];
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT];
        for level in 1..=max_bits {
            let l = level as usize;
            levels[l] = LevelInfo {
                level,
                last_freq: list[1].freq,
                next_char_freq: list[2].freq,
                next_pair_freq: list[0].freq.wrapping_add(list[1].freq),
                needed: 0,
            };
            leaf_counts[l][l] = 2;
            if level == 1 {
                levels[l].next_pair_freq = i32::MAX;
            }
        }
        levels[max_bits as usize].needed = 2 * n - 4;

        let mut level = max_bits as usize;
        loop {
            if levels[level].next_pair_freq == i32::MAX && levels[level].next_char_freq == i32::MAX
            {
                levels[level].needed = 0;
                levels[level + 1].next_pair_freq = i32::MAX;
                level += 1;
                continue;
            }
            let prev_freq = levels[level].last_freq;
            if levels[level].next_char_freq < levels[level].next_pair_freq {
                let nn = leaf_counts[level][level] + 1;
                levels[level].last_freq = levels[level].next_char_freq;
                leaf_counts[level][level] = nn;
                levels[level].next_char_freq = list[nn as usize].freq;
            } else {
                levels[level].last_freq = levels[level].next_pair_freq;
                let (lower, upper) = leaf_counts.split_at_mut(level);
                upper[0][..level].copy_from_slice(&lower[level - 1][..level]);
                levels[levels[level].level as usize - 1].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if levels[level].level == max_bits {
                    break;
                }
                levels[level + 1].next_pair_freq = prev_freq.wrapping_add(levels[level].last_freq);
                level += 1;
            } else {
                while levels[level - 1].needed > 0 {
                    level -= 1;
                }
            }
        }
        assert!(
            leaf_counts[max_bits as usize][max_bits as usize] == n,
            "leafCounts[maxBits][maxBits] != n"
        );

        // bit_count[bits] = number of literals needing exactly `bits` bits.
        let counts = &leaf_counts[max_bits as usize];
        for (bits, level) in (1..).zip((1..=max_bits as usize).rev()) {
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        max_bits as usize + 1
    }

    /// `assignEncodingAndSize`: canonical codes, assigned in literal order
    /// within each length.
    fn assign_encoding_and_size(&mut self, bit_count_len: usize, list: &mut [LiteralNode]) {
        let mut code: u16 = 0;
        let mut end = list.len();
        for n in 0..bit_count_len {
            let bits = self.bit_count[n];
            code <<= 1;
            if n == 0 || bits == 0 {
                continue;
            }
            let start = end - bits as usize;
            let chunk = &mut list[start..end];
            chunk.sort_unstable_by_key(|node| node.literal);
            for node in chunk.iter() {
                self.codes[node.literal as usize] = HCode {
                    code: reverse_bits(code, n as u32),
                    len: n as u16,
                };
                code = code.wrapping_add(1);
            }
            end = start;
        }
    }

    /// `generate`: the length-limited Huffman code for `freq`.
    fn generate(&mut self, freq: &[i32], max_bits: i32) {
        let mut list = std::mem::take(&mut self.freqcache);
        let mut count = 0;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                list[count] = LiteralNode {
                    literal: i as u16,
                    freq: f,
                };
                count += 1;
            } else {
                self.codes[i].len = 0;
            }
        }
        if count <= 2 {
            // Everything gets length 1, in literal order.
            for (i, node) in list[..count].iter().enumerate() {
                self.codes[node.literal as usize] = HCode {
                    code: i as u16,
                    len: 1,
                };
            }
        } else {
            // Go's sort.Sort is not stable, but (freq, literal) is a total
            // order over distinct literals, so any sort agrees with it.
            list[..count]
                .sort_unstable_by(|a, b| a.freq.cmp(&b.freq).then(a.literal.cmp(&b.literal)));
            let bit_count_len = self.bit_counts(&mut list[..count + 1], max_bits);
            self.assign_encoding_and_size(bit_count_len, &mut list[..count]);
        }
        self.freqcache = list;
    }
}

// ---------------------------------------------------------------------------
// Bit output and block writing (huffman_bit_writer.go)

/// The bit stream. Go buffers 48 bits at a time and 240 bytes before writing,
/// but the byte sequence only depends on the sequence of bits, so a plain
/// accumulator into a byte vector produces the same bytes.
struct BitSink {
    bits: u64,
    nbits: u32,
    out: Vec<u8>,
}

impl BitSink {
    #[inline]
    fn write_bits(&mut self, b: i32, nb: u32) {
        self.bits |= (i64::from(b) as u64) << self.nbits;
        self.nbits += nb;
        if self.nbits >= 48 {
            self.spill();
        }
    }

    #[inline]
    fn write_code(&mut self, c: HCode) {
        self.bits |= u64::from(c.code) << self.nbits;
        self.nbits += u32::from(c.len);
        if self.nbits >= 48 {
            self.spill();
        }
    }

    #[inline]
    fn spill(&mut self) {
        let bytes = self.bits.to_le_bytes();
        self.out.extend_from_slice(&bytes[..6]);
        self.bits >>= 48;
        self.nbits -= 48;
    }

    /// `flush`: pad to a byte boundary.
    fn flush(&mut self) {
        while self.nbits != 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits = self.nbits.saturating_sub(8);
        }
        self.bits = 0;
    }

    /// `writeBytes`: raw bytes; only called on a byte boundary.
    fn write_bytes(&mut self, bytes: &[u8]) {
        debug_assert!(self.nbits & 7 == 0, "writeBytes with unfinished bits");
        while self.nbits != 0 {
            self.out.push(self.bits as u8);
            self.bits >>= 8;
            self.nbits -= 8;
        }
        self.out.extend_from_slice(bytes);
    }

    fn write_stored_header(&mut self, length: usize, is_eof: bool) {
        self.write_bits(i32::from(is_eof), 3);
        self.flush();
        self.write_bits(length as i32, 16);
        self.write_bits(i32::from(!(length as u16)), 16);
    }
}

struct HuffmanBitWriter {
    sink: BitSink,
    codegen_freq: [i32; CODEGEN_CODE_COUNT],
    literal_freq: [i32; MAX_NUM_LIT],
    offset_freq: [i32; OFFSET_CODE_COUNT],
    codegen: [u8; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
    literal_encoding: HuffmanEncoder,
    offset_encoding: HuffmanEncoder,
    codegen_encoding: HuffmanEncoder,
    /// `huffOffset`: the offset code used by Huffman-only blocks.
    huff_offset: HuffmanEncoder,
}

/// `generateCodegen`: run-length encode the concatenated literal and offset
/// code lengths into `codegen` (in place), counting symbols in `freq`.
fn generate_codegen(
    codegen: &mut [u8],
    freq: &mut [i32; CODEGEN_CODE_COUNT],
    num_literals: usize,
    num_offsets: usize,
    lit: &[HCode],
    off: &[HCode],
) {
    freq.fill(0);
    for (dst, c) in codegen[..num_literals].iter_mut().zip(lit) {
        *dst = c.len as u8;
    }
    for (dst, c) in codegen[num_literals..num_literals + num_offsets]
        .iter_mut()
        .zip(off)
    {
        *dst = c.len as u8;
    }
    codegen[num_literals + num_offsets] = BAD_CODE;

    let mut size = codegen[0];
    let mut count: i32 = 1;
    let mut out_index = 0usize;
    let mut in_index = 1usize;
    while size != BAD_CODE {
        let next_size = codegen[in_index];
        in_index += 1;
        if next_size == size {
            count += 1;
            continue;
        }
        if size != 0 {
            codegen[out_index] = size;
            out_index += 1;
            freq[size as usize] += 1;
            count -= 1;
            while count >= 3 {
                let n = count.min(6);
                codegen[out_index] = 16;
                codegen[out_index + 1] = (n - 3) as u8;
                out_index += 2;
                freq[16] += 1;
                count -= n;
            }
        } else {
            while count >= 11 {
                let n = count.min(138);
                codegen[out_index] = 18;
                codegen[out_index + 1] = (n - 11) as u8;
                out_index += 2;
                freq[18] += 1;
                count -= n;
            }
            if count >= 3 {
                codegen[out_index] = 17;
                codegen[out_index + 1] = (count - 3) as u8;
                out_index += 2;
                freq[17] += 1;
                count = 0;
            }
        }
        count -= 1;
        while count >= 0 {
            codegen[out_index] = size;
            out_index += 1;
            freq[size as usize] += 1;
            count -= 1;
        }
        size = next_size;
        count = 1;
    }
    codegen[out_index] = BAD_CODE;
}

impl HuffmanBitWriter {
    fn new() -> Self {
        let mut huff_offset = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        let mut offset_freq = [0i32; OFFSET_CODE_COUNT];
        offset_freq[0] = 1;
        huff_offset.generate(&offset_freq, 15);
        HuffmanBitWriter {
            sink: BitSink {
                bits: 0,
                nbits: 0,
                out: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1024),
            },
            codegen_freq: [0; CODEGEN_CODE_COUNT],
            literal_freq: [0; MAX_NUM_LIT],
            offset_freq: [0; OFFSET_CODE_COUNT],
            codegen: [0; MAX_NUM_LIT + OFFSET_CODE_COUNT + 1],
            literal_encoding: HuffmanEncoder::new(MAX_NUM_LIT),
            offset_encoding: HuffmanEncoder::new(OFFSET_CODE_COUNT),
            codegen_encoding: HuffmanEncoder::new(CODEGEN_CODE_COUNT),
            huff_offset,
        }
    }

    /// `dynamicSize` in bits, and the number of code-length codes to send.
    fn dynamic_size(
        &self,
        lit: &HuffmanEncoder,
        off: &HuffmanEncoder,
        extra_bits: i64,
    ) -> (i64, usize) {
        let mut num_codegens = CODEGEN_CODE_COUNT;
        while num_codegens > 4 && self.codegen_freq[CODEGEN_ORDER[num_codegens - 1]] == 0 {
            num_codegens -= 1;
        }
        let header = 3
            + 5
            + 5
            + 4
            + 3 * num_codegens as i64
            + self.codegen_encoding.bit_length(&self.codegen_freq)
            + i64::from(self.codegen_freq[16]) * 2
            + i64::from(self.codegen_freq[17]) * 3
            + i64::from(self.codegen_freq[18]) * 7;
        let size = header
            + lit.bit_length(&self.literal_freq)
            + off.bit_length(&self.offset_freq)
            + extra_bits;
        (size, num_codegens)
    }

    /// `writeDynamicHeader`, with the code lengths of `codegen_encoding`.
    fn write_dynamic_header(
        &mut self,
        num_literals: usize,
        num_offsets: usize,
        num_codegens: usize,
        is_eof: bool,
    ) {
        let sink = &mut self.sink;
        sink.write_bits(if is_eof { 5 } else { 4 }, 3);
        sink.write_bits(num_literals as i32 - 257, 5);
        sink.write_bits(num_offsets as i32 - 1, 5);
        sink.write_bits(num_codegens as i32 - 4, 4);
        for &order in &CODEGEN_ORDER[..num_codegens] {
            sink.write_bits(i32::from(self.codegen_encoding.codes[order].len), 3);
        }
        let mut i = 0;
        loop {
            let code_word = self.codegen[i];
            i += 1;
            if code_word == BAD_CODE {
                break;
            }
            sink.write_code(self.codegen_encoding.codes[code_word as usize]);
            let extra = match code_word {
                16 => 2,
                17 => 3,
                18 => 7,
                _ => continue,
            };
            sink.write_bits(i32::from(self.codegen[i]), extra);
            i += 1;
        }
    }

    /// `writeStoredHeader` + `writeBytes`: `input` as a stored block.
    fn write_stored(&mut self, input: &[u8], eof: bool) {
        self.sink.write_stored_header(input.len(), eof);
        self.sink.write_bytes(input);
    }

    /// `storedSize` (inputs here are never larger than one stored block).
    fn stored_size(input: &[u8]) -> Option<i64> {
        (input.len() <= MAX_STORE_BLOCK_SIZE).then(|| (input.len() as i64 + 5) * 8)
    }

    /// `writeBlockHuff`: literals only, or stored when that is not worth it.
    fn write_block_huff(&mut self, eof: bool, input: &[u8]) {
        self.literal_freq.fill(0);
        for &b in input {
            self.literal_freq[b as usize] += 1;
        }
        self.literal_freq[END_BLOCK_MARKER] = 1;
        const NUM_LITERALS: usize = END_BLOCK_MARKER + 1;
        self.offset_freq[0] = 1;
        const NUM_OFFSETS: usize = 1;

        self.literal_encoding.generate(&self.literal_freq, 15);
        generate_codegen(
            &mut self.codegen,
            &mut self.codegen_freq,
            NUM_LITERALS,
            NUM_OFFSETS,
            &self.literal_encoding.codes,
            &self.huff_offset.codes,
        );
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) = self.dynamic_size(&self.literal_encoding, &self.huff_offset, 0);

        if let Some(ssize) = Self::stored_size(input)
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }

        self.write_dynamic_header(NUM_LITERALS, NUM_OFFSETS, num_codegens, eof);
        let codes = &self.literal_encoding.codes;
        for &b in input {
            self.sink.write_code(codes[b as usize]);
        }
        self.sink.write_code(codes[END_BLOCK_MARKER]);
    }

    /// `indexTokens`: symbol frequencies and the two dynamic codes.
    fn index_tokens(&mut self, tokens: &[u32]) -> (usize, usize) {
        self.literal_freq.fill(0);
        self.offset_freq.fill(0);
        for &t in tokens {
            if t < MATCH_TYPE {
                self.literal_freq[t as usize] += 1;
                continue;
            }
            self.literal_freq[LENGTH_CODES_START + length_code(token_length(t))] += 1;
            self.offset_freq[offset_code(token_offset(t))] += 1;
        }
        let mut num_literals = MAX_NUM_LIT;
        while self.literal_freq[num_literals - 1] == 0 {
            num_literals -= 1;
        }
        let mut num_offsets = OFFSET_CODE_COUNT;
        while num_offsets > 0 && self.offset_freq[num_offsets - 1] == 0 {
            num_offsets -= 1;
        }
        if num_offsets == 0 {
            self.offset_freq[0] = 1;
            num_offsets = 1;
        }
        self.literal_encoding.generate(&self.literal_freq, 15);
        self.offset_encoding.generate(&self.offset_freq, 15);
        (num_literals, num_offsets)
    }

    /// `writeBlockDynamic`: `tokens` must already end with the end-of-block
    /// marker.
    fn write_block_dynamic(&mut self, tokens: &[u32], eof: bool, input: &[u8]) {
        let (num_literals, num_offsets) = self.index_tokens(tokens);
        generate_codegen(
            &mut self.codegen,
            &mut self.codegen_freq,
            num_literals,
            num_offsets,
            &self.literal_encoding.codes,
            &self.offset_encoding.codes,
        );
        self.codegen_encoding.generate(&self.codegen_freq, 7);
        let (size, num_codegens) =
            self.dynamic_size(&self.literal_encoding, &self.offset_encoding, 0);

        if let Some(ssize) = Self::stored_size(input)
            && ssize < size + (size >> 4)
        {
            self.write_stored(input, eof);
            return;
        }

        self.write_dynamic_header(num_literals, num_offsets, num_codegens, eof);
        self.write_tokens(tokens);
    }

    /// `writeTokens` with the dynamic codes.
    fn write_tokens(&mut self, tokens: &[u32]) {
        let le = &self.literal_encoding.codes;
        let oe = &self.offset_encoding.codes;
        let sink = &mut self.sink;
        for &t in tokens {
            if t < MATCH_TYPE {
                sink.write_code(le[t as usize]);
                continue;
            }
            let length = token_length(t);
            let lc = length_code(length);
            sink.write_code(le[lc + LENGTH_CODES_START]);
            let extra_length_bits = u32::from(LENGTH_EXTRA_BITS[lc]);
            if extra_length_bits > 0 {
                sink.write_bits((length - LENGTH_BASE[lc]) as i32, extra_length_bits);
            }
            let offset = token_offset(t);
            let oc = offset_code(offset);
            sink.write_code(oe[oc]);
            let extra_offset_bits = u32::from(OFFSET_EXTRA_BITS[oc]);
            if extra_offset_bits > 0 {
                sink.write_bits((offset - OFFSET_BASE[oc]) as i32, extra_offset_bits);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The BestSpeed matcher (deflatefast.go)

#[derive(Clone, Copy, Default)]
struct TableEntry {
    val: u32,
    offset: i32,
}

#[inline]
fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[inline]
fn load64(b: &[u8], i: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(x)
}

#[inline]
fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

/// Length of the common prefix of `a` and `b`.
#[inline]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = load64(a, i) ^ load64(b, i);
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n {
        if a[i] != b[i] {
            return i;
        }
        i += 1;
    }
    n
}

fn emit_literal(dst: &mut Vec<u32>, lit: &[u8]) {
    dst.extend(lit.iter().map(|&b| u32::from(b)));
}

struct DeflateFast {
    table: Vec<TableEntry>,
    /// The previous block, empty if unknown.
    prev: Vec<u8>,
    /// Offset of the current block in the table's coordinates.
    cur: i32,
}

impl DeflateFast {
    fn new() -> Self {
        DeflateFast {
            table: vec![TableEntry::default(); TABLE_SIZE],
            prev: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// `encode`: append the tokens of `src` to `dst`.
    fn encode(&mut self, dst: &mut Vec<u32>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            self.cur = self.cur.wrapping_add(MAX_STORE_BLOCK_SIZE as i32);
            self.prev.clear();
            emit_literal(dst, src);
            return;
        }

        let s_limit = (src.len() - INPUT_MARGIN) as i32;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, 0);
        let mut next_hash = hash(cv);

        'outer: loop {
            let mut skip: i32 = 32;
            let mut next_s = s;
            let mut candidate;
            loop {
                s = next_s;
                let bytes_between_hash_lookups = skip >> 5;
                next_s = s + bytes_between_hash_lookups;
                skip += bytes_between_hash_lookups;
                if next_s > s_limit {
                    break 'outer;
                }
                let idx = (next_hash & TABLE_MASK) as usize;
                candidate = self.table[idx];
                let now = load32(src, next_s as usize);
                self.table[idx] = TableEntry {
                    offset: s.wrapping_add(self.cur),
                    val: cv,
                };
                next_hash = hash(now);

                let offset = s.wrapping_sub(candidate.offset.wrapping_sub(self.cur));
                if offset > MAX_MATCH_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }

            emit_literal(dst, &src[next_emit as usize..s as usize]);

            loop {
                s += 4;
                let t = candidate.offset.wrapping_sub(self.cur).wrapping_add(4);
                let l = self.match_len(s, t, src);
                dst.push(match_token(
                    (l + 4 - BASE_MATCH_LENGTH) as u32,
                    s.wrapping_sub(t).wrapping_sub(BASE_MATCH_OFFSET) as u32,
                ));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    break 'outer;
                }

                let mut x = load64(src, (s - 1) as usize);
                let prev_hash = hash(x as u32);
                self.table[(prev_hash & TABLE_MASK) as usize] = TableEntry {
                    offset: self.cur.wrapping_add(s).wrapping_sub(1),
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let idx = (curr_hash & TABLE_MASK) as usize;
                candidate = self.table[idx];
                self.table[idx] = TableEntry {
                    offset: self.cur.wrapping_add(s),
                    val: x as u32,
                };

                let offset = s.wrapping_sub(candidate.offset.wrapping_sub(self.cur));
                if offset > MAX_MATCH_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }

        // emitRemainder
        if (next_emit as usize) < src.len() {
            emit_literal(dst, &src[next_emit as usize..]);
        }
        self.cur = self.cur.wrapping_add(src.len() as i32);
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// `matchLen`: match length between `src[s..]` and `src[t..]`, where a
    /// negative `t` starts in the previous block.
    fn match_len(&self, s: i32, t: i32, src: &[u8]) -> i32 {
        let s = s as usize;
        let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len());

        if t >= 0 {
            let t = t as usize;
            let a = &src[s..s1];
            let b = &src[t..t + a.len()];
            return common_prefix(a, b) as i32;
        }

        let tp = self.prev.len() as i32 + t;
        if tp < 0 {
            return 0;
        }
        let a = &src[s..s1];
        let mut b = &self.prev[tp as usize..];
        if b.len() > a.len() {
            b = &b[..a.len()];
        }
        let a = &a[..b.len()];
        let n = common_prefix(a, b);
        if n < b.len() {
            return n as i32;
        }
        if s + n == s1 {
            return n as i32;
        }
        let a = &src[s + n..s1];
        let b = &src[..a.len()];
        (common_prefix(a, b) + n) as i32
    }

    /// `reset`: forget the history.
    fn reset(&mut self) {
        self.prev.clear();
        self.cur = self.cur.wrapping_add(MAX_MATCH_OFFSET);
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    /// `shiftOffsets`: rebase table offsets so `cur` cannot overflow.
    fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(TableEntry::default());
            self.cur = MAX_MATCH_OFFSET + 1;
            return;
        }
        for e in self.table.iter_mut() {
            let v = e
                .offset
                .wrapping_sub(self.cur)
                .wrapping_add(MAX_MATCH_OFFSET)
                .wrapping_add(1);
            e.offset = v.max(0);
        }
        self.cur = MAX_MATCH_OFFSET + 1;
    }
}

// ---------------------------------------------------------------------------
// The level-1 compressor (deflate.go) and the gzip framing (gzip.go)

struct Compressor {
    w: HuffmanBitWriter,
    fast: DeflateFast,
    tokens: Vec<u32>,
}

impl Compressor {
    fn new() -> Self {
        Compressor {
            w: HuffmanBitWriter::new(),
            fast: DeflateFast::new(),
            tokens: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1),
        }
    }

    /// `encSpeed` on a window: a full one (65535 bytes) or, at `Close`
    /// (`sync` set), the final shorter one.
    fn enc_speed(&mut self, window: &[u8]) {
        let window_end = window.len();
        if window_end < 128 {
            match window_end {
                0 => return,
                1..=16 => self.w.write_stored(window, false),
                _ => self.w.write_block_huff(false, window),
            }
            self.fast.reset();
            return;
        }

        self.tokens.clear();
        self.fast.encode(&mut self.tokens, window);
        // Huffman-only when matching removed less than 1/16th.
        if self.tokens.len() > window_end - (window_end >> 4) {
            self.w.write_block_huff(false, window);
        } else {
            self.tokens.push(END_BLOCK_MARKER as u32);
            self.w.write_block_dynamic(&self.tokens, false, window);
        }
    }
}

const fn make_crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        let mut k = 1;
        while k < 8 {
            let p = t[k - 1][i];
            t[k][i] = (p >> 8) ^ t[0][(p & 0xff) as usize];
            k += 1;
        }
        i += 1;
    }
    t
}

static CRC_TABLES: [[u32; 256]; 8] = make_crc_tables();

/// CRC-32 (IEEE), continuing from `crc` (0 to start).
fn crc32_update(crc: u32, data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut c = !crc;
    let mut chunks = data.chunks_exact(8);
    for ch in &mut chunks {
        let lo = u32::from_le_bytes([ch[0], ch[1], ch[2], ch[3]]) ^ c;
        let hi = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][(hi & 0xff) as usize]
            ^ t[2][((hi >> 8) & 0xff) as usize]
            ^ t[1][((hi >> 16) & 0xff) as usize]
            ^ t[0][(hi >> 24) as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Reads until `buf` is full or the input ends; returns the count.
fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Writes exactly what Go 1.19's gzip.NewWriterLevel(w, gzip.BestSpeed) writes for `plain` (io.Copy then Close), header and trailer included.
pub fn go_gzip_best_speed(plain: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    out.write_all(&GZIP_HEADER)?;
    let mut c = Compressor::new();
    let mut window = vec![0u8; MAX_STORE_BLOCK_SIZE];
    let mut crc = 0u32;
    let mut size = 0u32;
    loop {
        let n = read_full(plain, &mut window)?;
        crc = crc32_update(crc, &window[..n]);
        size = size.wrapping_add(n as u32);
        c.enc_speed(&window[..n]);
        out.write_all(&c.w.sink.out)?;
        c.w.sink.out.clear();
        if n < MAX_STORE_BLOCK_SIZE {
            break;
        }
    }
    // `close`: an empty final stored block.
    c.w.sink.write_stored_header(0, true);
    c.w.sink.flush();
    c.w.sink.out.extend_from_slice(&crc.to_le_bytes());
    c.w.sink.out.extend_from_slice(&size.to_le_bytes());
    out.write_all(&c.w.sink.out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic mixed input: text runs, pseudo-random bytes, byte runs.
    fn sample(n: usize) -> Vec<u8> {
        const TEXT: &[u8] =
            b"The quick brown fox jumps over the lazy dog; tender layer 0123456789.\n";
        let mut x: u32 = 0x9e37_79b9;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let r = next();
            let run = (r % 300) as usize + 1;
            match r >> 30 {
                0 | 1 => {
                    let start = (r >> 8) as usize;
                    out.extend((0..run).map(|i| TEXT[(start + i) % TEXT.len()]));
                }
                2 => out.extend((0..run).map(|_| next() as u8)),
                _ => out.extend(std::iter::repeat_n((r >> 16) as u8, run)),
            }
        }
        out.truncate(n);
        out
    }

    fn gzip(plain: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        go_gzip_best_speed(&mut &plain[..], &mut out).unwrap();
        out
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Expected bytes below were produced by Go 1.19.8:
    // gzip.NewWriterLevel(w, gzip.BestSpeed), io.Copy, Close.

    #[test]
    fn tiny_inputs_match_go_exactly() {
        let cases: [(usize, &str); 6] = [
            (0, "1f8b08000000000004ff010000ffff0000000000000000"),
            (
                1,
                "1f8b08000000000004ff000100feff65010000ffff5a7adaef01000000",
            ),
            // 16 bytes: final window <= 16 bytes, stored block.
            (
                16,
                "1f8b08000000000004ff001000efff657220746865206c617a7920646f673b010000ffff9feb4a9910000000",
            ),
            // 17 bytes: Huffman-only path, which then prefers a stored block.
            (
                17,
                "1f8b08000000000004ff001100eeff657220746865206c617a7920646f673b20010000ffff7b0b458911000000",
            ),
            // 127 bytes: Huffman-only block.
            (
                127,
                "1f8b08000000000004ff04c0d91183201804e077abd80a1cef636cc3065036622410ff400c569f8f826008abee04edb709814e536055a2a028abba69bb7e18f36c36c419f7f5c022fe7278f81f9ef1f5fec07f290886b0ea4ed07e9b10e8340556250a8ab2aa9bb6eb8731cf66439c715f0f2ce22ff70f0000ffff7da358217f000000",
            ),
            // 128 bytes: the matcher runs, dynamic Huffman block.
            (
                128,
                "1f8b08000000000004ff9cccdb1544301006e0f7ade2af60cf5e5c8f363410320491612488eaf5a0818f04de10acba2234f7153c394d02ab22093edfdf3f49b3bc28dfafda10d630b4131ae1c3a1e3136398970dbc3f57ee000000ffff679af9c780000000",
            ),
        ];
        for (n, hex) in cases {
            assert_eq!(gzip(&sample(n)), unhex(hex), "sample({n})");
        }
    }

    /// Larger inputs: length and CRC-32 of Go's output.
    #[test]
    fn block_sized_inputs_match_go() {
        let cases: [(Vec<u8>, usize, u32); 4] = [
            (sample(65535), 18086, 0x9579_fe8a),
            (sample(65536), 18092, 0xa566_29b7),
            (sample(200_000), 58339, 0x82cb_e25c),
            (vec![0u8; 1_000_000], 1246, 0xe5e5_49b3),
        ];
        for (plain, len, crc) in cases {
            let gz = gzip(&plain);
            assert_eq!(
                (gz.len(), crc32_update(0, &gz)),
                (len, crc),
                "input of {} bytes",
                plain.len()
            );
        }
    }

    /// A reader that hands out a few bytes at a time.
    struct Dribble<'a>(&'a [u8], usize);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = self.1 % 13 + 1;
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn short_reads_do_not_change_output() {
        let plain = sample(200_000);
        let mut out = Vec::new();
        go_gzip_best_speed(&mut Dribble(&plain, 0), &mut out).unwrap();
        assert_eq!(out, gzip(&plain));
    }

    #[test]
    fn trailer_and_header() {
        let plain = sample(70_000);
        let gz = gzip(&plain);
        assert_eq!(gz[..10], GZIP_HEADER);
        let n = gz.len();
        assert_eq!(gz[n - 8..n - 4], crc32_update(0, &plain).to_le_bytes());
        assert_eq!(gz[n - 4..], (plain.len() as u32).to_le_bytes());
        // Known CRC-32 check value.
        assert_eq!(crc32_update(0, b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn shift_offsets_keeps_near_history() {
        let mut e = DeflateFast::new();
        e.prev.push(1);
        e.cur = BUFFER_RESET;
        e.table[0] = TableEntry {
            val: 7,
            offset: BUFFER_RESET - 10,
        };
        e.table[1] = TableEntry { val: 7, offset: 5 };
        e.shift_offsets();
        assert_eq!(e.cur, MAX_MATCH_OFFSET + 1);
        assert_eq!(e.table[0].offset, MAX_MATCH_OFFSET + 1 - 10);
        assert_eq!(e.table[1].offset, 0);
    }
}
