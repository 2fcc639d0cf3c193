//! Length-limited Huffman codes (`huffman_code.go`).
//!
//! klauspost's version of Go's package-merge construction: frequencies are
//! 16-bit, the sentinel is a node with literal 0xffff, and codes within one
//! length are assigned in literal order. Go sorts with hand-written,
//! unstable quicksorts, but both orders, (frequency, literal) and literal,
//! are total over distinct literals, so any sort gives the same codes.

use super::tokens::{LITERAL_COUNT, OFFSET_CODE_COUNT};

/// A code: bits (already reversed for LSB-first output) and length;
/// length 0 means the symbol has no code.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(super) struct HCode {
    pub(super) code: u16,
    pub(super) len: u8,
}

impl HCode {
    pub(super) fn zero(self) -> bool {
        self.len == 0 && self.code == 0
    }
}

#[derive(Clone, Copy, Default)]
struct LiteralNode {
    literal: u16,
    freq: u16,
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

fn reverse_bits(number: u16, bit_length: u8) -> u16 {
    (number << ((16 - u32::from(bit_length)) & 15)).reverse_bits()
}

pub(super) struct HuffmanEncoder {
    pub(super) codes: Vec<HCode>,
    bit_count: [i32; 17],
    freqcache: Vec<LiteralNode>,
}

impl HuffmanEncoder {
    pub(super) fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![HCode::default(); size],
            bit_count: [0; 17],
            freqcache: vec![LiteralNode::default(); LITERAL_COUNT + 1],
        }
    }

    /// The fixed literal/length code of RFC 1951 3.2.6.
    pub(super) fn fixed_literal() -> Self {
        let mut h = HuffmanEncoder::new(LITERAL_COUNT);
        for ch in 0..LITERAL_COUNT as u16 {
            let (bits, size) = match ch {
                0..144 => (ch + 48, 8),
                144..256 => (ch + 400 - 144, 9),
                256..280 => (ch - 256, 7),
                _ => (ch + 192 - 280, 8),
            };
            h.codes[ch as usize] = HCode {
                code: reverse_bits(bits, size),
                len: size,
            };
        }
        h
    }

    /// The fixed offset code: 5 bits each.
    pub(super) fn fixed_offset() -> Self {
        let mut h = HuffmanEncoder::new(OFFSET_CODE_COUNT);
        for (ch, c) in h.codes.iter_mut().enumerate() {
            *c = HCode {
                code: reverse_bits(ch as u16, 5),
                len: 5,
            };
        }
        h
    }

    /// `bitLength`: bits to code `freq` with this code.
    pub(super) fn bit_length(&self, freq: &[u16]) -> i32 {
        let mut total = 0i32;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                total += i32::from(f) * i32::from(self.codes[i].len);
            }
        }
        total
    }

    /// `canReuseBits`: as `bit_length`, or `i32::MAX` if a used symbol has
    /// no code.
    pub(super) fn can_reuse_bits(&self, freq: &[u16]) -> i32 {
        let mut total = 0i32;
        for (i, &f) in freq.iter().enumerate() {
            if f != 0 {
                let code = self.codes[i];
                if code.zero() {
                    return i32::MAX;
                }
                total += i32::from(f) * i32::from(code.len);
            }
        }
        total
    }

    /// `bitCounts`: how many symbols get each length, lengths at most
    /// `max_bits`. `list` holds the `n` used symbols sorted by frequency
    /// and one spare slot for the sentinel. Returns the valid prefix length
    /// of `bit_count`.
    fn bit_counts(&mut self, list: &mut [LiteralNode], mut max_bits: i32) -> usize {
        assert!(max_bits < MAX_BITS_LIMIT as i32, "flate: maxBits too large");
        let n = (list.len() - 1) as i32;
        list[n as usize] = LiteralNode {
            literal: u16::MAX,
            freq: u16::MAX,
        };
        if max_bits > n - 1 {
            max_bits = n - 1;
        }
        let mut levels = [LevelInfo::default(); MAX_BITS_LIMIT];
        let mut leaf_counts = [[0i32; MAX_BITS_LIMIT]; MAX_BITS_LIMIT];

        let l2f = i32::from(list[2].freq);
        let l1f = i32::from(list[1].freq);
        let l0f = i32::from(list[0].freq) + i32::from(list[1].freq);
        for level in 1..=max_bits {
            levels[level as usize] = LevelInfo {
                level,
                last_freq: l1f,
                next_char_freq: l2f,
                next_pair_freq: l0f,
                needed: 0,
            };
            leaf_counts[level as usize][level as usize] = 2;
            if level == 1 {
                levels[level as usize].next_pair_freq = i32::MAX;
            }
        }
        levels[max_bits as usize].needed = 2 * n - 4;

        let mut level = max_bits as usize;
        while level < 16 {
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
                let e = list[nn as usize];
                levels[level].next_char_freq = if e.literal < u16::MAX {
                    i32::from(e.freq)
                } else {
                    i32::MAX
                };
            } else {
                levels[level].last_freq = levels[level].next_pair_freq;
                let save = leaf_counts[level][level];
                leaf_counts[level] = leaf_counts[level - 1];
                leaf_counts[level][level] = save;
                let below = levels[level].level as usize - 1;
                levels[below].needed = 2;
            }
            levels[level].needed -= 1;
            if levels[level].needed == 0 {
                if levels[level].level == max_bits {
                    break;
                }
                let up = levels[level].level as usize + 1;
                levels[up].next_pair_freq = prev_freq.wrapping_add(levels[level].last_freq);
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

        let counts = &leaf_counts[max_bits as usize];
        for (bits, level) in (1..).zip((1..=max_bits as usize).rev()) {
            self.bit_count[bits] = counts[level] - counts[level - 1];
        }
        max_bits as usize + 1
    }

    /// `assignEncodingAndSize`: canonical codes, in literal order within
    /// each length.
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
                    code: reverse_bits(code, n as u8),
                    len: n as u8,
                };
                code = code.wrapping_add(1);
            }
            end = start;
        }
    }

    /// `generate`: the code for `freq`, lengths at most `max_bits`. Symbols
    /// past `freq.len()` keep whatever code they had (as in Go).
    pub(super) fn generate(&mut self, freq: &[u16], max_bits: i32) {
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
                self.codes[i] = HCode::default();
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
            list[..count]
                .sort_unstable_by(|a, b| a.freq.cmp(&b.freq).then(a.literal.cmp(&b.literal)));
            let bit_count_len = self.bit_counts(&mut list[..count + 1], max_bits);
            self.assign_encoding_and_size(bit_count_len, &mut list[..count]);
        }
        self.freqcache = list;
    }
}
