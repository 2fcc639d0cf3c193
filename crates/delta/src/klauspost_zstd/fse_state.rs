//! `cState`: one FSE encoder state walking a [`CTable`], from klauspost/compress
//! (`zstd/fse_encoder.go`, and `fse/compress.go`'s copy with `encodeZero`;
//! BSD-3-Clause, after Yann Collet's BSD FSE).
//!
//! FSE encodes backwards: the state is initialised from the last symbol,
//! each earlier symbol writes the low bits of the state and moves it, and
//! the final state is written last so the decoder starts from it. Go's
//! `cState` keeps a pointer to its bit writer; here the writer is passed to
//! each call, so three states (zstd's literal length, offset and match
//! length coders) can share one.

use super::bit_writer::BitWriter;
use super::fse_table::{CTable, SymbolTransform};

/// `cState`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CState<'a> {
    pub(crate) state_table: &'a [u16],
    pub(crate) state: u16,
}

impl<'a> CState<'a> {
    /// `init`: the state that encodes `first` (the last symbol of the
    /// stream). An RLE table (one state, see `FseEncoder::set_rle`) starts,
    /// and stays, at state 0.
    #[inline]
    pub(crate) fn init(ct: &'a CTable, first: SymbolTransform) -> CState<'a> {
        let state_table = &ct.state_table[..];
        if state_table.len() == 1 {
            // RLE: Go zeroes stateTable[0] here; set_rle has done it.
            return CState {
                state_table,
                state: 0,
            };
        }
        let nb_bits_out = first.delta_nb_bits.wrapping_add(1 << 15) >> 16;
        let im = (nb_bits_out << 16).wrapping_sub(first.delta_nb_bits) as i32;
        let lu = (im >> nb_bits_out) + i32::from(first.delta_find_state);
        CState {
            state_table,
            state: state_table[lu as usize],
        }
    }

    /// `encode`: writes the state bits that `symbol_tt` (the symbol's
    /// transform) sheds and moves to its next state. (zstd's blockEnc writes
    /// this inline; the steps are the same.)
    #[inline(always)]
    pub(crate) fn encode(&mut self, bw: &mut BitWriter, symbol_tt: SymbolTransform) {
        let nb_bits_out = u32::from(self.state).wrapping_add(symbol_tt.delta_nb_bits) >> 16;
        let dst_state =
            i32::from(self.state >> (nb_bits_out & 15)) + i32::from(symbol_tt.delta_find_state);
        bw.add_bits16_nc(self.state, nb_bits_out as u8);
        self.state = self.state_table[dst_state as usize];
    }

    /// `encodeZero` (fse): [`Self::encode`] for tables where a symbol may
    /// write 0 bits.
    #[inline(always)]
    pub(crate) fn encode_zero(&mut self, bw: &mut BitWriter, symbol_tt: SymbolTransform) {
        let nb_bits_out = u32::from(self.state).wrapping_add(symbol_tt.delta_nb_bits) >> 16;
        let dst_state =
            i32::from(self.state >> (nb_bits_out & 15)) + i32::from(symbol_tt.delta_find_state);
        bw.add_bits16_zero_nc(self.state, nb_bits_out as u8);
        self.state = self.state_table[dst_state as usize];
    }

    /// `flush` (zstd): writes the final state in `table_log` bits. The fse
    /// package's `flush` then also calls `bw.flush()`.
    #[inline]
    pub(crate) fn flush(&self, bw: &mut BitWriter, table_log: u8) {
        bw.flush32();
        bw.add_bits16_nc(self.state, table_log);
    }
}
