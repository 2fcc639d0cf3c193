//! The token buffer of one block and its histograms (`token.go`).
//!
//! A token is a literal byte or a match. klauspost counts the histograms
//! while it adds tokens, and the block writer's size estimates read them,
//! so they are part of what decides the output bytes.

/// Largest window the fast levels compress at once (`maxStoreBlockSize`).
pub(super) const MAX_STORE_BLOCK_SIZE: usize = 65535;
pub(super) const END_BLOCK_MARKER: usize = 256;
pub(super) const OFFSET_CODE_COUNT: usize = 30;
/// Literal/length codes in use (`literalCount`).
pub(super) const LITERAL_COUNT: usize = 286;
const BASE_MATCH_LENGTH: i32 = 3;

// Token layout: bits 0-15 offset - 1 (or the literal), 16-21 offset code,
// 22-29 length - 3, 30-31 type.
const LENGTH_SHIFT: u32 = 22;
pub(super) const MATCH_TYPE: u32 = 1 << 30;
const OFFSET_MASK: u32 = (1 << LENGTH_SHIFT) - 1;
pub(super) const MATCH_OFFSET_ONLY_MASK: u32 = 0xffff;

/// Extra bits of length code `257 + i`.
pub(super) const LENGTH_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0, 0, 0, 0,
];

/// Length (minus 3) at which length code `257 + i` starts.
pub(super) const LENGTH_BASE: [u8; 32] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128,
    160, 192, 224, 255, 0, 0, 0,
];

/// Extra bits of offset code `i`.
pub(super) const OFFSET_EXTRA_BITS: [u8; 32] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13, 14, 14,
];

/// Offset (minus 1) at which offset code `i` starts.
pub(super) const OFFSET_BASE: [u32; 30] = [
    0x000000, 0x000001, 0x000002, 0x000003, 0x000004, 0x000006, 0x000008, 0x00000c, 0x000010,
    0x000018, 0x000020, 0x000030, 0x000040, 0x000060, 0x000080, 0x0000c0, 0x000100, 0x000180,
    0x000200, 0x000300, 0x000400, 0x000600, 0x000800, 0x000c00, 0x001000, 0x001800, 0x002000,
    0x003000, 0x004000, 0x006000,
];

/// `lengthCodes[length - 3]`.
pub(super) const LENGTH_CODES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut code = 0;
    while code < 29 {
        let start = LENGTH_BASE[code] as usize;
        let end = if code == 28 {
            256
        } else {
            LENGTH_BASE[code + 1] as usize
        };
        let mut i = start;
        while i < end {
            t[i] = code as u8;
            i += 1;
        }
        code += 1;
    }
    // 258 (index 255) has its own code; 257 (index 254) belongs to 27.
    t[254] = 27;
    t[255] = 28;
    t
};

/// `offsetCodes[offset - 1]` for offsets up to 256.
const OFFSET_CODES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut code = 0;
    while code < 16 {
        let start = OFFSET_BASE[code] as usize;
        let end = if code == 15 {
            256
        } else {
            OFFSET_BASE[code + 1] as usize
        };
        let mut i = start;
        while i < end {
            t[i] = code as u8;
            i += 1;
        }
        code += 1;
    }
    t
};

/// `offsetCode`: the offset code of `off` (offset - 1, below 32768).
#[inline]
pub(super) fn offset_code(off: u32) -> u32 {
    if off < 256 {
        u32::from(OFFSET_CODES[off as usize])
    } else {
        u32::from(OFFSET_CODES[(off >> 7) as u8 as usize]) + 14
    }
}

/// Tokens of one block with their histograms (`tokens`).
pub(super) struct Tokens {
    /// Counts of codes 256.. (end of block, then length codes 257..).
    pub(super) extra_hist: [u16; 32],
    pub(super) off_hist: [u16; 32],
    pub(super) lit_hist: [u16; 256],
    pub(super) n: usize,
    pub(super) tokens: Box<[u32]>,
}

impl Tokens {
    pub(super) fn new() -> Self {
        Tokens {
            extra_hist: [0; 32],
            off_hist: [0; 32],
            lit_hist: [0; 256],
            n: 0,
            tokens: vec![0; MAX_STORE_BLOCK_SIZE + 1].into_boxed_slice(),
        }
    }

    /// `Reset`: Go skips the clearing when there are no tokens.
    pub(super) fn reset(&mut self) {
        if self.n == 0 {
            return;
        }
        self.n = 0;
        self.lit_hist = [0; 256];
        self.extra_hist = [0; 32];
        self.off_hist = [0; 32];
    }

    pub(super) fn slice(&self) -> &[u32] {
        &self.tokens[..self.n]
    }

    /// `emitLiteral`.
    #[inline]
    pub(super) fn add_literals(&mut self, lits: &[u8]) {
        for &v in lits {
            self.tokens[self.n] = u32::from(v);
            self.lit_hist[v as usize] = self.lit_hist[v as usize].wrapping_add(1);
            self.n += 1;
        }
    }

    /// `AddMatchLong`: a match of `length` bytes (no base subtracted) at
    /// `xoffset` (offset - 1), split into pieces of at most 258.
    #[inline]
    pub(super) fn add_match_long(&mut self, mut length: i32, xoffset: u32) {
        let oc = offset_code(xoffset);
        let xoffset = xoffset | (oc << 16);
        while length > 0 {
            let mut xl = length;
            if xl > 258 {
                // At least baseMatchLength must be left for the next piece.
                xl = if xl > 258 + BASE_MATCH_LENGTH {
                    258
                } else {
                    258 - BASE_MATCH_LENGTH
                };
            }
            length -= xl;
            let xl = (xl - BASE_MATCH_LENGTH) as u32;
            let code = LENGTH_CODES[xl as u8 as usize] as usize + 1;
            self.extra_hist[code] = self.extra_hist[code].wrapping_add(1);
            let oslot = (oc & 31) as usize;
            self.off_hist[oslot] = self.off_hist[oslot].wrapping_add(1);
            self.tokens[self.n] = MATCH_TYPE | (xl << LENGTH_SHIFT) | xoffset;
            self.n += 1;
        }
    }

    /// `AddEOB`.
    pub(super) fn add_eob(&mut self) {
        self.tokens[self.n] = END_BLOCK_MARKER as u32;
        self.extra_hist[0] = self.extra_hist[0].wrapping_add(1);
        self.n += 1;
    }

    /// `EstimatedBits`: the block's size under an optimal code, from its
    /// histograms, in single-precision floats exactly as Go computes it.
    pub(super) fn estimated_bits(&self) -> i32 {
        let mut shannon = 0f32;
        let mut bits = 0i32;
        let mut n_matches = 0i32;
        let total = self.n;
        if total > 0 {
            let inv_total = 1.0f32 / total as f32;
            for &v in &self.lit_hist {
                if v > 0 {
                    let n = f32::from(v);
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                }
            }
            // Just add 15 for EOB.
            shannon += 15.0;
            for (i, &v) in self.extra_hist[1..LITERAL_COUNT - 256].iter().enumerate() {
                if v > 0 {
                    let n = f32::from(v);
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                    bits += i32::from(LENGTH_EXTRA_BITS[i & 31]) * i32::from(v);
                    n_matches += i32::from(v);
                }
            }
        }
        if n_matches > 0 {
            let inv_total = 1.0f32 / n_matches as f32;
            for (i, &v) in self.off_hist[..OFFSET_CODE_COUNT].iter().enumerate() {
                if v > 0 {
                    let n = f32::from(v);
                    shannon += at_least_one(-m_fast_log2(n * inv_total)) * n;
                    bits += i32::from(OFFSET_EXTRA_BITS[i & 31]) * i32::from(v);
                }
            }
        }
        shannon as i32 + bits
    }
}

/// The length (minus 3) of a match token.
#[inline]
pub(super) fn token_length(t: u32) -> u8 {
    (t >> LENGTH_SHIFT) as u8
}

/// The offset field (offset - 1, with its code in bits 16-21).
#[inline]
pub(super) fn token_offset(t: u32) -> u32 {
    t & OFFSET_MASK
}

/// `mFastLog2`: an approximate log2 (https://stackoverflow.com/a/28730362).
/// The constants are Go's, digit for digit: they round to the same `f32`.
#[allow(clippy::excessive_precision)]
fn m_fast_log2(val: f32) -> f32 {
    let mut ux = val.to_bits() as i32;
    let mut log2 = (((ux >> 23) & 255) - 128) as f32;
    ux &= -0x7f80_0001;
    ux = ux.wrapping_add(127 << 23);
    let uval = f32::from_bits(ux as u32);
    log2 += ((-0.34484843f32) * uval + 2.02466578f32) * uval - 0.67487759f32;
    log2
}

/// `atLeastOne`: clamps to 1..=15.
fn at_least_one(v: f32) -> f32 {
    v.clamp(1.0, 15.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_tables_match_go() {
        // Spot checks against token.go's literal tables.
        assert_eq!(&LENGTH_CODES[..12], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 9, 9]);
        assert_eq!(LENGTH_CODES[253], 27);
        assert_eq!(LENGTH_CODES[254], 27);
        assert_eq!(LENGTH_CODES[255], 28);
        assert_eq!(LENGTH_CODES[224], 27);
        assert_eq!(LENGTH_CODES[223], 26);
        assert_eq!(offset_code(0), 0);
        assert_eq!(offset_code(4), 4);
        assert_eq!(offset_code(255), 15);
        assert_eq!(offset_code(256), 16);
        assert_eq!(offset_code(32767), 29);
        assert_eq!(offset_code(0x6000), 29);
        assert_eq!(offset_code(0x5fff), 28);
    }

    #[test]
    fn long_matches_are_split_like_go() {
        let mut t = Tokens::new();
        t.add_match_long(259, 0);
        // 259 = 256 + 3: Go leaves at least 3 for the last piece.
        let lens: Vec<u32> = t
            .slice()
            .iter()
            .map(|&x| u32::from(token_length(x)) + 3)
            .collect();
        assert_eq!(lens, vec![255, 4]);
        let mut t = Tokens::new();
        t.add_match_long(600, 0);
        let lens: Vec<u32> = t
            .slice()
            .iter()
            .map(|&x| u32::from(token_length(x)) + 3)
            .collect();
        assert_eq!(lens, vec![258, 258, 84]);
    }
}
