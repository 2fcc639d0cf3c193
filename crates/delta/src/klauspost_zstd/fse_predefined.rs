//! The predefined FSE tables of zstd as klauspost/compress's encoder holds
//! them (`zstd/fse_predefined.go`, `fsePredefEnc`; BSD-3-Clause), and the
//! extra-bit tables they are built with (`llBitsTable`, `mlBitsTable` of
//! `zstd/seqenc.go`). The distributions are those of RFC 8878 §3.1.1.3.2.2.

use std::sync::OnceLock;

use super::fse_encoder::FseEncoder;

/// `tableIndex`: which sequence stream a table codes.
pub(crate) const TABLE_LITERAL_LENGTHS: usize = 0;
pub(crate) const TABLE_OFFSETS: usize = 1;
pub(crate) const TABLE_MATCH_LENGTHS: usize = 2;

/// `maxLiteralLengthSymbol`, `maxMatchLengthSymbol`: the largest codes.
#[cfg_attr(not(test), allow(dead_code))] // as Go has it; tests use it
pub(crate) const MAX_LITERAL_LENGTH_SYMBOL: u8 = 35;
#[cfg_attr(not(test), allow(dead_code))] // as Go has it; tests use it
pub(crate) const MAX_MATCH_LENGTH_SYMBOL: u8 = 52;

/// `llBitsTable`: extra bits after each literal length code.
pub(crate) const LL_BITS_TABLE: [u8; 36] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11,
    12, 13, 14, 15, 16,
];

/// `mlBitsTable`: extra bits after each match length code.
pub(crate) const ML_BITS_TABLE: [u8; 53] = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

/// Default distributions (table log, normalized counts).
const LL_DEFAULT: (u8, &[i16]) = (
    6,
    &[
        4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1,
        1, 1, -1, -1, -1, -1,
    ],
);
const OF_DEFAULT: (u8, &[i16]) = (
    5,
    &[
        1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1,
    ],
);
const ML_DEFAULT: (u8, &[i16]) = (
    6,
    &[
        1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
    ],
);

/// `fsePredefEnc`: the predefined encoders, by table index (built once).
pub(crate) fn fse_predef_enc() -> &'static [FseEncoder; 3] {
    static TABLES: OnceLock<[FseEncoder; 3]> = OnceLock::new();
    TABLES.get_or_init(|| {
        let build = |(table_log, norm): (u8, &[i16]), bits: Option<&[u8]>| {
            let mut enc = FseEncoder::default();
            enc.norm[..norm.len()].copy_from_slice(norm);
            enc.symbol_len = norm.len() as u16;
            enc.actual_table_log = table_log;
            enc.build_ctable()
                .expect("the predefined distributions are valid");
            enc.set_bits(bits);
            enc.pre_defined = true;
            enc
        };
        [
            build(LL_DEFAULT, Some(&LL_BITS_TABLE)),
            build(OF_DEFAULT, None),
            build(ML_DEFAULT, Some(&ML_BITS_TABLE)),
        ]
    })
}
