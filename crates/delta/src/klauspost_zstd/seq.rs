//! Sequences and their codes (`seqenc.go`, and `seq` from `seqdec.go`):
//! what the matcher emits per block, and the literal-length, match-length
//! and offset codes the entropy stage codes them with.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::fse_encoder::FseEncoder;

/// One sequence: `lit_len` literals, then a match of `match_len + 3` bytes
/// at `offset` (a real offset plus 3, or 1 to 3 for a repeat offset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Seq {
    pub(super) lit_len: u32,
    pub(super) match_len: u32,
    pub(super) offset: u32,
    pub(super) ll_code: u8,
    pub(super) ml_code: u8,
    pub(super) of_code: u8,
}

/// `zstdMinMatch`: match lengths are stored minus this.
pub(super) const ZSTD_MIN_MATCH: u32 = 3;

/// `highBit`: the index of the highest set bit.
#[inline]
pub(super) fn high_bit(val: u32) -> u32 {
    31 - val.leading_zeros()
}

const LL_CODE_TABLE: [u8; 64] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20,
    20, 20, 21, 21, 21, 21, 22, 22, 22, 22, 22, 22, 22, 22, 23, 23, 23, 23, 23, 23, 23, 23, 24, 24,
    24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24, 24,
];

/// `llCode`.
#[inline]
pub(super) fn ll_code(lit_length: u32) -> u8 {
    const LL_DELTA_CODE: u8 = 19;
    if lit_length <= 63 {
        return LL_CODE_TABLE[(lit_length & 63) as usize];
    }
    high_bit(lit_length) as u8 + LL_DELTA_CODE
}

const ML_CODE_TABLE: [u8; 128] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25,
    26, 27, 28, 29, 30, 31, 32, 32, 33, 33, 34, 34, 35, 35, 36, 36, 36, 36, 37, 37, 37, 37, 38, 38,
    38, 38, 38, 38, 38, 38, 39, 39, 39, 39, 39, 39, 39, 39, 40, 40, 40, 40, 40, 40, 40, 40, 40, 40,
    40, 40, 40, 40, 40, 40, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 41, 42, 42,
    42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42, 42,
    42, 42, 42, 42, 42, 42,
];

/// `mlCode` (of the stored length, `matchLength - 3`).
#[inline]
pub(super) fn ml_code(ml_base: u32) -> u8 {
    const ML_DELTA_CODE: u8 = 36;
    if ml_base <= 127 {
        return ML_CODE_TABLE[(ml_base & 127) as usize];
    }
    high_bit(ml_base) as u8 + ML_DELTA_CODE
}

/// `ofCode` (a valid offset is never 0).
#[inline]
pub(super) fn of_code(offset: u32) -> u8 {
    high_bit(offset) as u8
}

/// `seqCoders`: the FSE encoders of the three codes, each with the one
/// the previous block used (which a block may repeat).
pub(super) struct SeqCoders {
    pub(super) ll_enc: Box<FseEncoder>,
    pub(super) of_enc: Box<FseEncoder>,
    pub(super) ml_enc: Box<FseEncoder>,
    pub(super) ll_prev: Box<FseEncoder>,
    pub(super) of_prev: Box<FseEncoder>,
    pub(super) ml_prev: Box<FseEncoder>,
}

/// Which encoder coded a block's code (Go compares pointers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Used {
    /// The new table (or RLE) in the current slot.
    Current,
    /// The previous block's table, repeated.
    Prev,
    /// A predefined table, or none (a new frame).
    Other,
}

impl SeqCoders {
    pub(super) fn new() -> Self {
        SeqCoders {
            ll_enc: Box::default(),
            of_enc: Box::default(),
            ml_enc: Box::default(),
            ll_prev: Box::default(),
            of_prev: Box::default(),
            ml_prev: Box::default(),
        }
    }

    /// `setPrev`: a table the block built becomes the previous one; a
    /// predefined one (or none) makes the previous unusable.
    pub(super) fn set_prev(&mut self, ll: Used, ml: Used, of: Used) {
        compare_swap(ll, &mut self.ll_enc, &mut self.ll_prev);
        compare_swap(ml, &mut self.ml_enc, &mut self.ml_prev);
        compare_swap(of, &mut self.of_enc, &mut self.of_prev);
    }
}

fn compare_swap(used: Used, current: &mut Box<FseEncoder>, prev: &mut Box<FseEncoder>) {
    match used {
        Used::Current => {
            std::mem::swap(current, prev);
            current.re_used = false;
            prev.re_used = true;
        }
        Used::Prev => {}
        Used::Other => prev.symbol_len = 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_follow_the_format_tables() {
        // RFC 8878 3.1.1.3.2.1.1: literal lengths 0-15 are their own
        // codes, 16-17 code 16, 64-127 code 25, 65536+ code 35.
        assert_eq!(ll_code(15), 15);
        assert_eq!(ll_code(17), 16);
        assert_eq!(ll_code(64), 25);
        assert_eq!(ll_code(127), 25);
        assert_eq!(ll_code(65536), 35);
        // Match lengths (minus 3): 0-31 their own, 32-33 code 32,
        // 128-255 code 43, 65536+ code 52.
        assert_eq!(ml_code(31), 31);
        assert_eq!(ml_code(33), 32);
        assert_eq!(ml_code(128), 43);
        assert_eq!(ml_code(65536), 52);
        assert_eq!(of_code(1), 0);
        assert_eq!(of_code(1 << 20 | 5), 20);
    }
}
