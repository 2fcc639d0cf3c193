//! Length-limited Huffman codes exactly as Go builds them (`huffman_code.go`).

use super::tokens::MAX_NUM_LIT;

#[derive(Clone, Copy, Default)]
pub(super) struct HCode {
    pub(super) code: u16,
    pub(super) len: u16,
}

#[derive(Clone, Copy, Default)]
pub(super) struct LiteralNode {
    pub(super) literal: u16,
    pub(super) freq: i32,
}

#[derive(Clone, Copy, Default)]
pub(super) struct LevelInfo {
    pub(super) level: i32,
    pub(super) last_freq: i32,
    pub(super) next_char_freq: i32,
    pub(super) next_pair_freq: i32,
    pub(super) needed: i32,
}

pub(super) const MAX_BITS_LIMIT: usize = 16;

pub(super) fn reverse_bits(number: u16, bit_length: u32) -> u16 {
    (number << (16 - bit_length)).reverse_bits()
}

pub(super) struct HuffmanEncoder {
    pub(super) codes: Vec<HCode>,
    pub(super) freqcache: Vec<LiteralNode>,
    pub(super) bit_count: [i32; 17],
}

impl HuffmanEncoder {
    pub(super) fn new(size: usize) -> Self {
        HuffmanEncoder {
            codes: vec![HCode::default(); size],
            freqcache: vec![LiteralNode::default(); MAX_NUM_LIT + 1],
            bit_count: [0; 17],
        }
    }

    pub(super) fn bit_length(&self, freq: &[i32]) -> i64 {
        freq.iter()
            .zip(&self.codes)
            .filter(|(f, _)| **f != 0)
            .map(|(f, c)| i64::from(*f) * i64::from(c.len))
            .sum()
    }

    /// `bitCounts`: number of literals per code length, lengths limited to
    /// `max_bits`. `list` holds the `n` used literals sorted by frequency
    /// plus one spare slot. Returns how many entries of `bit_count` are valid.
    pub(super) fn bit_counts(&mut self, list: &mut [LiteralNode], mut max_bits: i32) -> usize {
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
    pub(super) fn assign_encoding_and_size(
        &mut self,
        bit_count_len: usize,
        list: &mut [LiteralNode],
    ) {
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
    pub(super) fn generate(&mut self, freq: &[i32], max_bits: i32) {
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

impl HuffmanEncoder {
    /// `generateFixedLiteralEncoding`: the fixed literal/length code of
    /// RFC 1951 §3.2.6.
    pub(super) fn fixed_literal() -> Self {
        let mut h = HuffmanEncoder::new(MAX_NUM_LIT);
        for (ch, code) in (0u16..).zip(h.codes.iter_mut()) {
            let (bits, size) = match ch {
                0..144 => (ch + 48, 8),
                144..256 => (ch + 400 - 144, 9),
                256..280 => (ch - 256, 7),
                _ => (ch + 192 - 280, 8),
            };
            *code = HCode {
                code: reverse_bits(bits, size),
                len: size as u16,
            };
        }
        h
    }

    /// `generateFixedOffsetEncoding`: 5 bits for every offset code.
    pub(super) fn fixed_offset() -> Self {
        let mut h = HuffmanEncoder::new(super::tokens::OFFSET_CODE_COUNT);
        for (ch, code) in (0u16..).zip(h.codes.iter_mut()) {
            *code = HCode {
                code: reverse_bits(ch, 5),
                len: 5,
            };
        }
        h
    }
}
