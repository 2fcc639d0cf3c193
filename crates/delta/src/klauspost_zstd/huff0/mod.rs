//! The compress side of klauspost/compress's `huff0` package (1.15.12;
//! BSD-3-Clause, after Yann Collet's BSD Huff0): the Huffman coder of zstd's
//! literals. `Scratch` carries the previous block's table, so a block can
//! reuse it (a "treeless" literals section) when that is cheaper or asked
//! for by the [`ReusePolicy`].
//!
//! Files as in Go: here `huff0.go` (the scratch, its preparation and the
//! errors), `compress` (`compress.go`: the entry points and the 1- and
//! 4-stream encoders) and `table` (`compress.go`'s table building and
//! `huff0.go`'s table writing and size estimates).
//!
//! Upstream changed these files after 1.15.12 only for speed and style
//! (diffed through 1.19.1): the output is the same in every release since.

mod compress;
mod table;

#[cfg(test)]
pub(crate) use compress::estimate_sizes;
pub(crate) use compress::{compress_1x, compress_4x};

use super::fse;

/// `maxSymbolValue`.
const MAX_SYMBOL_VALUE: usize = 255;
/// `tableLogMax`: zstd limits Huffman codes to 11 bits.
const TABLE_LOG_MAX: u8 = 11;
/// `tableLogDefault`.
const TABLE_LOG_DEFAULT: u8 = 11;
/// `minTablelog`.
const MIN_TABLELOG: u8 = 5;
/// `huffNodesLen`.
const HUFF_NODES_LEN: usize = 512;
/// `BlockSizeMax`: the largest input of one block.
pub(crate) const BLOCK_SIZE_MAX: usize = (1 << 18) - 1;

/// Why a block was not Huffman-coded (Go's `ErrIncompressible`, `ErrUseRLE`
/// and `ErrTooBig` are the first three; zstd's block encoder stores the
/// literals raw or as RLE on the first two).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Huff0Error {
    #[error("huff0: input is not compressible")]
    Incompressible,
    #[error("huff0: input is a single value repeated")]
    UseRle,
    #[error("huff0: input too big for one block ({BLOCK_SIZE_MAX} bytes at most)")]
    TooBig,
    #[error("huff0: table log {0} is outside {MIN_TABLELOG} to {TABLE_LOG_MAX}")]
    InvalidTableLog(u8),
    #[error(
        "huff0: the most frequent symbol counts {max_count}, more than the input's {length} bytes"
    )]
    MaxCountTooBig { max_count: usize, length: usize },
    #[error("huff0: code lengths reach {0} bits, above the maximum {TABLE_LOG_MAX}")]
    MaxNbBits(u8),
}

/// `ReusePolicy`: whether a block may be coded with the previous block's
/// table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum ReusePolicy {
    /// `ReusePolicyAllow`: reuse if that gives smaller output (Go's zero
    /// value).
    #[default]
    Allow,
    /// `ReusePolicyPrefer`: reuse whenever possible and not larger than the
    /// input, without trying a new table first.
    #[cfg_attr(not(test), allow(dead_code))] // as Go has it; tests use it
    Prefer,
    /// `ReusePolicyNone`: never reuse (and forget the previous table).
    None,
    /// `ReusePolicyMust`: reuse, or the block is incompressible.
    Must,
}

/// `cTableEntry`: one symbol's code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CTableEntry {
    pub(crate) val: u16,
    pub(crate) n_bits: u8,
}

/// `cTable`: codes by symbol, as long as the symbol length of the block
/// that built it (empty: no table).
pub(crate) type CTable = Vec<CTableEntry>;

/// `nodeElt`: a Huffman tree node while building a table.
#[derive(Debug, Clone, Copy, Default)]
struct NodeElt {
    count: u32,
    parent: u16,
    symbol: u8,
    nb_bits: u8,
}

/// `Scratch`: one literal coder's state across blocks.
#[derive(Debug, Clone)]
pub(crate) struct Scratch {
    count: [u32; MAX_SYMBOL_VALUE + 1],

    /// `Out`: the output of the last call (table, then data).
    pub(crate) out: Vec<u8>,
    /// `OutTable`: how much of `out` is a new table (`None`: none written).
    out_table: Option<usize>,
    /// `OutData`: where the coded data starts in `out` (`None`: no output).
    out_data: Option<usize>,

    /// `MaxSymbolValue`: set to 255 when 0 (compression does not use it).
    pub(crate) max_symbol_value: u8,
    /// `TableLog`: the longest code to aim for, 5 to 11 (0: 11).
    pub(crate) table_log: u8,
    /// `Reuse`: the reuse policy of the next block.
    pub(crate) reuse: ReusePolicy,
    /// `WantLogLess`: output must be smaller than the input by at least
    /// `input >> want_log_less` bytes (0: any gain); zstd sets 4.
    pub(crate) want_log_less: u8,

    /// Length of the active part of the symbol table.
    symbol_len: u16,
    /// Count of the most probable symbol.
    max_count: usize,
    clear_count: bool,
    /// The selected table log.
    actual_table_log: u8,
    /// Table log of the previous table.
    prev_table_log: u8,
    /// The table the previous block was coded with (empty: none).
    prev_table: CTable,
    /// The table being built.
    c_table: CTable,
    /// `nodes`, kept across blocks as Go keeps its slice.
    nodes: Vec<NodeElt>,
    /// `fse`: codes the table's weights.
    fse: fse::Scratch,
    huff_weight: [u8; MAX_SYMBOL_VALUE + 1],
    /// `br.remain()`: the input length.
    src_len: usize,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            count: [0; MAX_SYMBOL_VALUE + 1],
            out: Vec::new(),
            out_table: None,
            out_data: None,
            max_symbol_value: 0,
            table_log: 0,
            reuse: ReusePolicy::Allow,
            want_log_less: 0,
            symbol_len: 0,
            max_count: 0,
            clear_count: false,
            actual_table_log: 0,
            prev_table_log: 0,
            prev_table: CTable::new(),
            c_table: CTable::new(),
            nodes: Vec::new(),
            fse: fse::Scratch::default(),
            huff_weight: [0; MAX_SYMBOL_VALUE + 1],
            src_len: 0,
        }
    }
}

impl Scratch {
    /// `OutTable`: the new table written by the last call, if any.
    #[cfg(test)]
    pub(crate) fn out_table(&self) -> Option<&[u8]> {
        self.out_table.map(|n| &self.out[..n])
    }

    /// `OutData`: the coded data of the last call, if it succeeded.
    #[cfg(test)]
    pub(crate) fn out_data(&self) -> Option<&[u8]> {
        self.out_data.map(|n| &self.out[n..])
    }

    /// `TransferCTable`: takes `src`'s previous table as this one's (zstd
    /// does so with a dictionary's literal table).
    #[cfg(test)]
    pub(crate) fn transfer_ctable(&mut self, src: &Scratch) {
        self.prev_table.clear();
        self.prev_table.extend_from_slice(&src.prev_table);
        self.prev_table_log = src.prev_table_log;
    }

    /// `prepare`: checks the parameters and resets per-block state.
    fn prepare(&mut self, input: &[u8]) -> Result<(), Huff0Error> {
        if input.len() > BLOCK_SIZE_MAX {
            return Err(Huff0Error::TooBig);
        }
        if self.max_symbol_value == 0 {
            self.max_symbol_value = MAX_SYMBOL_VALUE as u8;
        }
        if self.table_log == 0 {
            self.table_log = TABLE_LOG_DEFAULT;
        }
        if self.table_log > TABLE_LOG_MAX || self.table_log < MIN_TABLELOG {
            return Err(Huff0Error::InvalidTableLog(self.table_log));
        }
        if self.clear_count && self.max_count == 0 {
            self.count = [0; MAX_SYMBOL_VALUE + 1];
            self.clear_count = false;
        }
        self.out.clear();
        self.out_table = None;
        self.out_data = None;
        self.nodes.resize(HUFF_NODES_LEN + 1, NodeElt::default());
        self.src_len = input.len();
        Ok(())
    }

    /// `minSize`: the Shannon limit of the histogram of `total` symbols in
    /// bytes (Go's float arithmetic, `math.Log2` included, to the bit).
    #[cfg(test)]
    pub(crate) fn min_size(&self, total: usize) -> usize {
        let mut nb_bits = 7f64;
        let f_total = total as f64;
        for &v in &self.count[..usize::from(self.symbol_len)] {
            let n = f64::from(v);
            if n > 0.0 {
                nb_bits += super::go_math::log2(f_total / n) * n;
            }
        }
        (nb_bits as i64 >> 3) as usize
    }
}
