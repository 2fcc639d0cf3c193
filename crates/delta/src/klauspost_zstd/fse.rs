//! The compress side of klauspost/compress's `fse` package (`fse/compress.go`,
//! `fse/fse.go`, 1.15.12; BSD-3-Clause, after Yann Collet's BSD FSE): huff0
//! writes a Huffman table's weights with it. Table steps are shared with
//! zstd's sequence coders in [`fse_table`](super::fse_table).
//!
//! One deliberate difference from 1.15.12: the header buffer has the size
//! 1.17.3 gave it (upstream 847c1b4, "fse: Fix max header size"); where
//! 1.15.12's was too small Go panicked, so no stream it wrote differs.

use super::bit_writer::BitWriter;
use super::fse_state::CState;
use super::fse_table::{self, CTable, TableError, high_bit};

/// `maxTableLog`.
const MAX_TABLE_LOG: u8 = 12;
/// `defaultTablelog`.
const DEFAULT_TABLELOG: u8 = 11;
/// `minTablelog`.
const MIN_TABLELOG: u8 = fse_table::MIN_TABLELOG;

/// Why [`compress`] wrote nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FseError {
    /// `ErrIncompressible`: too short, too evenly spread, or no smaller.
    #[error("FSE: input is not compressible")]
    Incompressible,
    /// `ErrUseRLE`: one byte value repeated.
    #[error("FSE: input is a single value repeated")]
    UseRle,
    #[error("FSE: input of {0} bytes is too big (2 GiB at most)")]
    TooBig(usize),
    #[error("FSE: table log {0} is above the maximum 12")]
    TableLogTooBig(u8),
    #[error("FSE: input of {0} bytes is too small to encode")]
    SrcTooSmall(usize),
    #[error(transparent)]
    Table(#[from] TableError),
}

/// `Scratch` (compress side): tables and buffers reused from call to call.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    count: [u32; 256],
    norm: [i16; 256],
    bw: BitWriter,
    ct: CTable,
    /// Count of the most probable symbol (0: count it in [`compress`]).
    max_count: usize,
    /// The output of the last [`compress`].
    pub(crate) out: Vec<u8>,
    /// Length of the active part of the symbol table.
    symbol_len: u16,
    actual_table_log: u8,
    zero_bits: bool,
    clear_count: bool,
    /// `MaxSymbolValue`: set to 255 when 0.
    pub(crate) max_symbol_value: u8,
    /// `TableLog`: the table log to aim for (0: 11).
    pub(crate) table_log: u8,
    /// `br.remain()`: the input length.
    src_len: usize,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            count: [0; 256],
            norm: [0; 256],
            bw: BitWriter::default(),
            ct: CTable::default(),
            max_count: 0,
            out: Vec::new(),
            symbol_len: 0,
            actual_table_log: 0,
            zero_bits: false,
            clear_count: false,
            max_symbol_value: 0,
            table_log: 0,
            src_len: 0,
        }
    }
}

/// `Compress`: FSE-compresses `input` (header and stream) into `s.out`.
pub(crate) fn compress<'a>(input: &[u8], s: &'a mut Scratch) -> Result<&'a [u8], FseError> {
    if input.len() <= 1 {
        return Err(FseError::Incompressible);
    }
    if input.len() > (2 << 30) - 1 {
        return Err(FseError::TooBig(input.len()));
    }
    s.prepare(input)?;

    // Create histogram, if none was provided.
    let mut max_count = s.max_count;
    if max_count == 0 {
        max_count = s.count_simple(input);
    }
    // Reset for next run.
    s.clear_count = true;
    s.max_count = 0;
    if max_count == input.len() {
        // One symbol, use RLE.
        return Err(FseError::UseRle);
    }
    if max_count == 1 || max_count < (input.len() >> 7) {
        // Each symbol present maximum once or too well distributed.
        return Err(FseError::Incompressible);
    }
    s.optimal_table_log();
    s.normalize_count()?;
    s.write_count()?;
    s.build_ctable()?;
    s.compress(input)?;
    // Check if we compressed.
    if s.out.len() >= input.len() {
        return Err(FseError::Incompressible);
    }
    Ok(&s.out)
}

impl Scratch {
    /// `Histogram`: counts to fill before [`Self::histogram_finished`].
    pub(crate) fn histogram(&mut self) -> &mut [u32; 256] {
        &mut self.count
    }

    /// `HistogramFinished`: the histogram is filled; `max_symbol` is the
    /// highest symbol and `max_count` the count of the most frequent.
    pub(crate) fn histogram_finished(&mut self, max_symbol: u8, max_count: usize) {
        self.max_count = max_count;
        self.symbol_len = u16::from(max_symbol) + 1;
        self.clear_count = max_count != 0;
    }

    fn prepare(&mut self, input: &[u8]) -> Result<(), FseError> {
        if self.max_symbol_value == 0 {
            self.max_symbol_value = 255;
        }
        if self.table_log == 0 {
            self.table_log = DEFAULT_TABLELOG;
        }
        if self.table_log > MAX_TABLE_LOG {
            return Err(FseError::TableLogTooBig(self.table_log));
        }
        if self.clear_count && self.max_count == 0 {
            self.count = [0; 256];
            self.clear_count = false;
        }
        self.src_len = input.len();
        Ok(())
    }

    /// `countSimple`: the histogram of `input`; returns the largest count.
    fn count_simple(&mut self, input: &[u8]) -> usize {
        for &v in input {
            self.count[usize::from(v)] += 1;
        }
        let mut m = 0u32;
        for (i, &v) in self.count.iter().enumerate() {
            m = m.max(v);
            if v > 0 {
                self.symbol_len = i as u16 + 1;
            }
        }
        m as usize
    }

    /// `minTableLog`: the smallest table log that represents the histogram.
    fn min_table_log(&self) -> u8 {
        let min_bits_src = high_bit((self.src_len as u32).wrapping_sub(1)).wrapping_add(1);
        let min_bits_symbols = high_bit(u32::from(self.symbol_len.wrapping_sub(1))).wrapping_add(2);
        if min_bits_src < min_bits_symbols {
            return min_bits_src as u8;
        }
        min_bits_symbols as u8
    }

    /// `optimalTableLog`.
    fn optimal_table_log(&mut self) {
        let mut table_log = self.table_log;
        let min_bits = self.min_table_log();
        let max_bits_src = (high_bit((self.src_len as u32).wrapping_sub(1)) as u8).wrapping_sub(2);
        if max_bits_src < table_log {
            // Accuracy can be reduced.
            table_log = max_bits_src;
        }
        if min_bits > table_log {
            table_log = min_bits;
        }
        // Need a minimum to safely represent all symbol values.
        self.actual_table_log = table_log.clamp(MIN_TABLELOG, MAX_TABLE_LOG);
    }

    fn normalize_count(&mut self) -> Result<(), TableError> {
        fse_table::normalize_count(
            &self.count[..usize::from(self.symbol_len)],
            &mut self.norm,
            self.src_len,
            self.actual_table_log,
        )
    }

    /// `writeCount`: the header starts `out`.
    fn write_count(&mut self) -> Result<(), TableError> {
        let max_header_size =
            ((usize::from(self.symbol_len) * usize::from(self.actual_table_log) + 4 + 2) >> 3) + 3;
        self.out.clear();
        fse_table::write_count(
            &self.norm,
            self.symbol_len,
            self.actual_table_log,
            max_header_size,
            &mut self.out,
        )
    }

    fn build_ctable(&mut self) -> Result<(), TableError> {
        self.zero_bits = self.ct.build(
            &self.norm[..usize::from(self.symbol_len)],
            self.actual_table_log,
        )?;
        Ok(())
    }

    /// `compress`: the main loop, from the last byte to the first, two
    /// interleaved states each coding every second byte.
    fn compress(&mut self, src: &[u8]) -> Result<(), FseError> {
        if src.len() <= 2 {
            return Err(FseError::SrcTooSmall(src.len()));
        }
        let tt = &self.ct.symbol_tt[..256];
        let bw = &mut self.bw;
        bw.reset(std::mem::take(&mut self.out));
        let sym = |b: u8| tt[usize::from(b)];

        // The last byte encoded (first decoded) is always c1's.
        let mut ip = src.len();
        let (mut c1, mut c2);
        if ip & 1 == 1 {
            c1 = CState::init(&self.ct, sym(src[ip - 1]));
            c2 = CState::init(&self.ct, sym(src[ip - 2]));
            c1.encode_zero(bw, sym(src[ip - 3]));
            ip -= 3;
        } else {
            c2 = CState::init(&self.ct, sym(src[ip - 1]));
            c1 = CState::init(&self.ct, sym(src[ip - 2]));
            ip -= 2;
        }
        if ip & 2 != 0 {
            c2.encode_zero(bw, sym(src[ip - 1]));
            c1.encode_zero(bw, sym(src[ip - 2]));
            ip -= 2;
        }

        // Main loop: up to 4 symbols between flushes when the table log
        // allows; symbols may cost 0 bits only when zero_bits.
        let quads = src[..ip].chunks_exact(4).rev();
        match (self.zero_bits, self.actual_table_log <= 8) {
            (false, true) => {
                for q in quads {
                    bw.flush32();
                    c2.encode(bw, sym(q[3]));
                    c1.encode(bw, sym(q[2]));
                    c2.encode(bw, sym(q[1]));
                    c1.encode(bw, sym(q[0]));
                }
            }
            (false, false) => {
                for q in quads {
                    bw.flush32();
                    c2.encode(bw, sym(q[3]));
                    c1.encode(bw, sym(q[2]));
                    bw.flush32();
                    c2.encode(bw, sym(q[1]));
                    c1.encode(bw, sym(q[0]));
                }
            }
            (true, true) => {
                for q in quads {
                    bw.flush32();
                    c2.encode_zero(bw, sym(q[3]));
                    c1.encode_zero(bw, sym(q[2]));
                    c2.encode_zero(bw, sym(q[1]));
                    c1.encode_zero(bw, sym(q[0]));
                }
            }
            (true, false) => {
                for q in quads {
                    bw.flush32();
                    c2.encode_zero(bw, sym(q[3]));
                    c1.encode_zero(bw, sym(q[2]));
                    bw.flush32();
                    c2.encode_zero(bw, sym(q[1]));
                    c1.encode_zero(bw, sym(q[0]));
                }
            }
        }

        // Flush the final states (the decoder starts from them).
        c2.flush(bw, self.actual_table_log);
        bw.flush();
        c1.flush(bw, self.actual_table_log);
        bw.flush();
        bw.close();
        self.out = std::mem::take(&mut bw.out);
        Ok(())
    }
}
