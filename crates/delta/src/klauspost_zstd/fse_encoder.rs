//! `fseEncoder` of klauspost/compress's zstd (`zstd/fse_encoder.go`, 1.15.12;
//! BSD-3-Clause, after Yann Collet's BSD FSE): the table behind each of a
//! block's three sequence streams (literal lengths, offsets, match lengths).
//!
//! The block encoder fills the histogram, normalizes it (or finds it is a
//! single symbol, RLE), compares the estimated cost of this new table, the
//! previous block's and the predefined one ([`FseEncoder::approx_size`] plus
//! [`FseEncoder::max_header_size`]), writes the chosen table's header
//! ([`FseEncoder::write_count`]) and encodes the codes through
//! [`CState`](super::fse_state::CState)s. The table steps themselves are in
//! [`fse_table`](super::fse_table), shared with the fse package.
//!
//! `fse_encoder.go`, `fse_predefined.go` and `bitwriter.go` write the same
//! bytes in every upstream release from 1.15.12 through 1.19.1 (diffed).

use super::fse_table::{self, CTable, SymbolTransform, TableError, high_bit};

/// `maxEncTableLog`: zstd's sequence tables use at most 256 states.
pub(crate) const MAX_ENC_TABLE_LOG: u8 = 8;
/// `minEncTablelog`.
pub(crate) const MIN_ENC_TABLELOG: u8 = fse_table::MIN_TABLELOG;

/// `fseEncoder`.
#[derive(Debug, Clone)]
pub(crate) struct FseEncoder {
    /// Length of the active part of the symbol table.
    pub(crate) symbol_len: u16,
    /// The selected table log.
    pub(crate) actual_table_log: u8,
    /// Compression tables.
    pub(crate) ct: CTable,
    /// Count of the most probable symbol.
    pub(crate) max_count: usize,
    /// Some symbol has probability above 50 % (may cost 0 bits).
    pub(crate) zero_bits: bool,
    pub(crate) clear_count: bool,
    /// This encoder is for RLE.
    pub(crate) use_rle: bool,
    /// This encoder is predefined.
    pub(crate) pre_defined: bool,
    /// Set when the encoder is the previous block's, reused.
    pub(crate) re_used: bool,
    /// The RLE symbol.
    pub(crate) rle_val: u8,
    /// Maximum output bits after transform.
    pub(crate) max_bits: u8,
    pub(crate) count: [u32; 256],
    pub(crate) norm: [i16; 256],
}

impl Default for FseEncoder {
    fn default() -> Self {
        FseEncoder {
            symbol_len: 0,
            actual_table_log: 0,
            ct: CTable::default(),
            max_count: 0,
            zero_bits: false,
            clear_count: false,
            use_rle: false,
            pre_defined: false,
            re_used: false,
            rle_val: 0,
            max_bits: 0,
            count: [0; 256],
            norm: [0; 256],
        }
    }
}

impl FseEncoder {
    /// `Histogram`: the counts to fill before [`Self::histogram_finished`].
    pub(crate) fn histogram(&mut self) -> &mut [u32; 256] {
        &mut self.count
    }

    /// `HistogramFinished`: `max_symbol` is the highest symbol counted and
    /// `max_count` the count of the most frequent; both taken at face value.
    pub(crate) fn histogram_finished(&mut self, max_symbol: u8, max_count: usize) {
        self.max_count = max_count;
        self.symbol_len = u16::from(max_symbol) + 1;
        self.clear_count = max_count != 0;
    }

    /// `allocCtable`.
    fn alloc_ctable(&mut self) {
        self.ct.alloc(self.actual_table_log);
    }

    /// `buildCTable`: the compression tables for `norm`.
    pub(crate) fn build_ctable(&mut self) -> Result<(), TableError> {
        self.zero_bits = self.ct.build(
            &self.norm[..usize::from(self.symbol_len)],
            self.actual_table_log,
        )?;
        Ok(())
    }

    /// `setRLE`: this encoder writes only `val`, with no state bits.
    pub(crate) fn set_rle(&mut self, val: u8) {
        self.alloc_ctable();
        self.actual_table_log = 0;
        self.ct.state_table.truncate(1);
        // Go's cState.init zeroes this when it meets a one-state table.
        self.ct.state_table[0] = 0;
        self.ct.symbol_tt[usize::from(val)] = SymbolTransform::default();
        self.rle_val = val;
        self.use_rle = true;
    }

    /// `setBits`: how many extra bits follow each symbol (`transform`, by
    /// symbol; `None` means as many as the symbol's value, as for offsets).
    pub(crate) fn set_bits(&mut self, transform: Option<&[u8]>) {
        if self.re_used || self.pre_defined {
            return;
        }
        if self.use_rle {
            let rle = usize::from(self.rle_val);
            match transform {
                None => {
                    self.ct.symbol_tt[rle].out_bits = self.rle_val;
                    self.max_bits = self.rle_val;
                }
                Some(t) => {
                    self.max_bits = t[rle];
                    self.ct.symbol_tt[rle].out_bits = self.max_bits;
                }
            }
            return;
        }
        let symbol_len = usize::from(self.symbol_len);
        match transform {
            None => {
                for (i, tt) in self.ct.symbol_tt[..symbol_len].iter_mut().enumerate() {
                    tt.out_bits = i as u8;
                }
                self.max_bits = self.symbol_len.wrapping_sub(1) as u8;
            }
            Some(t) => {
                self.max_bits = 0;
                for (tt, &v) in self.ct.symbol_tt.iter_mut().zip(&t[..symbol_len]) {
                    tt.out_bits = v;
                    self.max_bits = self.max_bits.max(v);
                }
            }
        }
    }

    /// `normalizeCount`: normalizes the histogram of `length` symbols to
    /// the table size and builds the tables, or marks the encoder RLE when
    /// one symbol is all of them. A reused encoder keeps its table.
    pub(crate) fn normalize_count(&mut self, length: usize) -> Result<(), TableError> {
        if self.re_used {
            return Ok(());
        }
        self.optimal_table_log(length);
        if self.max_count == length {
            self.use_rle = true;
            return Ok(());
        }
        self.use_rle = false;
        let symbol_len = usize::from(self.symbol_len);
        fse_table::normalize_count(
            &self.count[..symbol_len],
            &mut self.norm,
            length,
            self.actual_table_log,
        )?;
        self.build_ctable()
    }

    /// `optimalTableLog` for `length` symbols (5 to 8).
    pub(crate) fn optimal_table_log(&mut self, length: usize) {
        let mut table_log = MAX_ENC_TABLE_LOG;
        let min_bits_src = high_bit(length as u32).wrapping_add(1);
        let min_bits_symbols = high_bit(u32::from(self.symbol_len.wrapping_sub(1))).wrapping_add(2);
        let mut min_bits = min_bits_symbols as u8;
        if min_bits_src < min_bits_symbols {
            min_bits = min_bits_src as u8;
        }

        let max_bits_src = (high_bit((length as u32).wrapping_sub(1)) as u8).wrapping_sub(2);
        if max_bits_src < table_log {
            // Accuracy can be reduced.
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        // Need a minimum to safely represent all symbol values.
        table_log = table_log.clamp(MIN_ENC_TABLELOG, MAX_ENC_TABLE_LOG);
        self.actual_table_log = table_log;
    }

    /// `validateNorm` (Go runs it under `debugAsserts`).
    #[cfg(test)]
    pub(crate) fn validate_norm(&self) -> Result<(), TableError> {
        fse_table::validate_norm(
            &self.count,
            &self.norm,
            usize::from(self.symbol_len),
            self.actual_table_log,
        )
    }

    /// `writeCount`: appends the table header to `out`: the symbol for RLE,
    /// nothing for a predefined or reused table. On error `out` is as it was.
    pub(crate) fn write_count(&self, out: &mut Vec<u8>) -> Result<(), TableError> {
        if self.use_rle {
            out.push(self.rle_val);
            return Ok(());
        }
        if self.pre_defined || self.re_used {
            // Never write predefined.
            return Ok(());
        }
        // Go's maximum header size plus 2 bytes for the final output.
        let max_header_size =
            ((usize::from(self.symbol_len) * usize::from(self.actual_table_log)) >> 3) + 3 + 2;
        fse_table::write_count(
            &self.norm,
            self.symbol_len,
            self.actual_table_log,
            max_header_size,
            out,
        )
    }

    /// `bitCost`: the approximate cost of `symbol_value` in fixed point
    /// with `accuracy_log` fractional bits.
    pub(crate) fn bit_cost(&self, symbol_value: u8, accuracy_log: u32) -> u32 {
        let tt = self.ct.symbol_tt[usize::from(symbol_value)];
        let min_nb_bits = tt.delta_nb_bits >> 16;
        let threshold = (min_nb_bits + 1) << 16;
        let table_size = 1u32 << self.actual_table_log;
        let delta_from_threshold =
            threshold.wrapping_sub(tt.delta_nb_bits.wrapping_add(table_size));
        // Linear interpolation (very approximate).
        let normalized_delta_from_threshold =
            delta_from_threshold.wrapping_shl(accuracy_log) >> self.actual_table_log;
        let bit_multiplier = 1u32 << accuracy_log;
        (min_nb_bits + 1)
            .wrapping_mul(bit_multiplier)
            .wrapping_sub(normalized_delta_from_threshold)
    }

    /// `approxSize`: the cost in bits of the histogram `hist` (up to its
    /// last non-zero symbol) with this table; `u32::MAX` if the table
    /// cannot encode some symbol of it (or is RLE).
    pub(crate) fn approx_size(&self, hist: &[u32]) -> u32 {
        if usize::from(self.symbol_len) < hist.len() {
            // More symbols than we have.
            return u32::MAX;
        }
        if self.use_rle {
            // RLE encoders are never reused.
            return u32::MAX;
        }
        const K_ACCURACY_LOG: u32 = 8;
        let bad_cost = (u32::from(self.actual_table_log) + 1) << K_ACCURACY_LOG;
        let mut cost = 0u32;
        for (i, &v) in hist.iter().enumerate() {
            if v == 0 {
                continue;
            }
            if self.norm[i] == 0 {
                return u32::MAX;
            }
            let bit_cost = self.bit_cost(i as u8, K_ACCURACY_LOG);
            if bit_cost > bad_cost {
                return u32::MAX;
            }
            cost = cost.wrapping_add(v.wrapping_mul(bit_cost));
        }
        cost >> K_ACCURACY_LOG
    }

    /// `maxHeaderSize`: an upper bound of the header in bits (a penalty for
    /// new tables more than an exact size).
    pub(crate) fn max_header_size(&self) -> u32 {
        if self.pre_defined {
            return 0;
        }
        if self.use_rle {
            return 8;
        }
        (((u32::from(self.symbol_len) * u32::from(self.actual_table_log)) >> 3) + 3) * 8
    }
}
