//! How a histogram becomes an FSE table and its header, as klauspost/compress
//! does it twice: `fse/compress.go` (the fse package, which huff0 uses for
//! its weights) and `zstd/fse_encoder.go` (the sequence coders). BSD-3-Clause,
//! after Yann Collet's BSD FSE.
//!
//! The Go copies are the same algorithm over different limits (table log up
//! to 12 there, 8 here) and different buffers, so the steps live here once:
//! [`normalize_count`] (`normalizeCount` and its fallback `normalizeCount2`),
//! [`CTable::build`] (`buildCTable`) and [`write_count`] (`writeCount`).
//! Integer widths and wrap-arounds follow Go's exactly; a table that Go
//! would reject is an error here too.

/// Why a normalized histogram could not become a table. Go returns these as
/// "internal error"s: they mean the histogram broke an invariant of the
/// caller, so the block cannot be encoded as modelled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TableError {
    #[error("FSE table: normalized counts sum to {sum}, not the table size {table_size}")]
    CumulMismatch { sum: i32, table_size: u32 },
    #[error("FSE table: spreading symbols did not visit every cell")]
    SpreadIncomplete,
    #[error("FSE table: symbol states total {total}, not the table size {table_size}")]
    TotalMismatch { total: i32, table_size: u32 },
    #[error("FSE normalization: a symbol got a weight below 1")]
    WeightBelowOne,
    #[error("FSE header: the remaining probability fell below 1")]
    RemainingBelowOne,
    #[error("FSE header: counts run past the symbol length {symbol_len}")]
    PastSymbolLen { symbol_len: u16 },
    #[error("FSE header: {needed} bytes needed, at most {max} allowed")]
    HeaderTooBig { needed: usize, max: usize },
    #[error("FSE normalization: the normalized counts sum to {total}, not {table_size}")]
    #[cfg_attr(not(test), allow(dead_code))] // as Go has it; tests use it
    NormTotal { total: i64, table_size: u32 },
    #[error("FSE normalization: symbol {symbol} counted beyond the symbol length")]
    #[cfg_attr(not(test), allow(dead_code))] // as Go has it; tests use it
    SymbolOutOfRange { symbol: usize },
}

/// `tableStep`: the stride that spreads symbols over the state table.
pub(crate) fn table_step(table_size: u32) -> u32 {
    (table_size >> 1) + (table_size >> 3) + 3
}

/// `highBit` / `highBits`: the index of the highest set bit (`bits.Len32(v)
/// - 1`; for 0 that is `u32::MAX`, as Go's conversion makes it).
#[inline]
pub(crate) fn high_bit(v: u32) -> u32 {
    (32 - v.leading_zeros()).wrapping_sub(1)
}

/// `minTablelog` (fse) and `minEncTablelog` (zstd): the smallest table log
/// a header can state.
pub(crate) const MIN_TABLELOG: u8 = 5;

/// `rtbTable`: rounding thresholds for small probabilities.
const RTB_TABLE: [u32; 8] = [0, 473195, 504333, 520860, 550000, 700000, 750000, 830000];

/// `symbolTransform`: how a symbol moves the encoder state. Go's fse package
/// keeps `deltaFindState` as int32 and zstd as int16; every value fits 16
/// bits, so one type serves both. `out_bits` (zstd only) is how many extra
/// bits follow the symbol in a sequence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SymbolTransform {
    pub(crate) delta_nb_bits: u32,
    pub(crate) delta_find_state: i16,
    pub(crate) out_bits: u8,
}

/// `cTable`: the tables an FSE encoder runs on.
#[derive(Debug, Clone, Default)]
pub(crate) struct CTable {
    pub(crate) table_symbol: Vec<u8>,
    pub(crate) state_table: Vec<u16>,
    /// Always 256 entries (indexed by any byte); only the symbols of the
    /// last build are meaningful.
    pub(crate) symbol_tt: Vec<SymbolTransform>,
}

impl CTable {
    /// `allocCtable`: sizes the tables for `table_log`, reusing their memory.
    /// (Go keeps stale entries past the old length; every entry a build
    /// exposes is rewritten before use, so zeros are the same here.)
    pub(crate) fn alloc(&mut self, table_log: u8) {
        let table_size = 1usize << table_log;
        self.table_symbol.resize(table_size, 0);
        self.state_table.resize(table_size, 0);
        self.symbol_tt.resize(256, SymbolTransform::default());
    }

    /// `buildCTable` over `norm[..symbol_len]`; returns `zeroBits` (some
    /// symbol has probability above 50 %, so it may cost 0 bits).
    pub(crate) fn build(&mut self, norm: &[i16], table_log: u8) -> Result<bool, TableError> {
        let symbol_len = norm.len();
        let table_size = 1u32 << table_log;
        let mut high_threshold = table_size - 1;
        let mut cumul = [0i16; 258];

        self.alloc(table_log);
        let table_symbol = &mut self.table_symbol[..table_size as usize];
        // Symbol start positions.
        for (u, &v) in norm.iter().enumerate() {
            if v == -1 {
                // Low probability symbol.
                cumul[u + 1] = cumul[u].wrapping_add(1);
                table_symbol[high_threshold as usize] = u as u8;
                high_threshold = high_threshold.wrapping_sub(1);
            } else {
                cumul[u + 1] = cumul[u].wrapping_add(v);
            }
        }
        if cumul[symbol_len] as u32 != table_size {
            return Err(TableError::CumulMismatch {
                sum: i32::from(cumul[symbol_len]),
                table_size,
            });
        }
        cumul[symbol_len] = (table_size as i16).wrapping_add(1);

        // Spread symbols.
        let mut zero_bits = false;
        {
            let step = table_step(table_size);
            let table_mask = table_size - 1;
            let mut position = 0u32;
            // If any symbol > largeLimit, we may have 0 bits output.
            let large_limit = (1i32 << (table_log - 1)) as i16;
            for (symbol, &v) in norm.iter().enumerate() {
                if v > large_limit {
                    zero_bits = true;
                }
                for _ in 0..v.max(0) {
                    table_symbol[position as usize] = symbol as u8;
                    position = (position + step) & table_mask;
                    while position > high_threshold {
                        position = (position + step) & table_mask;
                    } // Low probability area.
                }
            }
            if position != 0 {
                return Err(TableError::SpreadIncomplete);
            }
        }

        // Build table: the next state value, sorted by symbol order.
        let table = &mut self.state_table;
        for (u, &v) in table_symbol.iter().enumerate() {
            let c = &mut cumul[usize::from(v)];
            table[*c as u16 as usize] = (table_size as usize + u) as u16;
            *c = c.wrapping_add(1);
        }

        // Build the symbol transformation table.
        let mut total = 0i16;
        let tl = (u32::from(table_log) << 16).wrapping_sub(1 << table_log);
        for (tt, &v) in self.symbol_tt[..symbol_len].iter_mut().zip(norm) {
            match v {
                0 => {}
                -1 | 1 => {
                    tt.delta_nb_bits = tl;
                    tt.delta_find_state = total.wrapping_sub(1);
                    total = total.wrapping_add(1);
                }
                _ => {
                    let max_bits_out =
                        u32::from(table_log).wrapping_sub(high_bit((v as u32).wrapping_sub(1)));
                    let min_state_plus = (v as u32).wrapping_shl(max_bits_out);
                    tt.delta_nb_bits = (max_bits_out << 16).wrapping_sub(min_state_plus);
                    tt.delta_find_state = total.wrapping_sub(v);
                    total = total.wrapping_add(v);
                }
            }
        }
        if total as i32 != table_size as i32 {
            return Err(TableError::TotalMismatch {
                total: i32::from(total),
                table_size,
            });
        }
        Ok(zero_bits)
    }
}

/// `normalizeCount` (with `normalizeCount2` as Go falls back to it): scales
/// `count` (the histogram up to its last symbol) of `length` symbols into
/// `norm` so that it sums to `1 << table_log`; -1 marks a symbol rarer than
/// one table cell.
pub(crate) fn normalize_count(
    count: &[u32],
    norm: &mut [i16],
    length: usize,
    table_log: u8,
) -> Result<(), TableError> {
    let scale = 62 - u64::from(table_log);
    let step = (1u64 << 62) / length as u64;
    let v_step = 1u64 << (scale - 20);
    let mut still_to_distribute = (1i32 << table_log) as i16;
    let mut largest = 0usize;
    let mut largest_p = 0i16;
    let low_threshold = (length >> table_log) as u32;

    for (i, &cnt) in count.iter().enumerate() {
        if cnt == 0 {
            norm[i] = 0;
            continue;
        }
        if cnt <= low_threshold {
            norm[i] = -1;
            still_to_distribute = still_to_distribute.wrapping_sub(1);
        } else {
            let mut proba = (u64::from(cnt).wrapping_mul(step) >> scale) as i16;
            if proba < 8 {
                let rest_to_beat = v_step.wrapping_mul(u64::from(RTB_TABLE[proba as usize]));
                let v = u64::from(cnt)
                    .wrapping_mul(step)
                    .wrapping_sub((proba as u64) << scale);
                if v > rest_to_beat {
                    proba += 1;
                }
            }
            if proba > largest_p {
                largest_p = proba;
                largest = i;
            }
            norm[i] = proba;
            still_to_distribute = still_to_distribute.wrapping_sub(proba);
        }
    }

    if -i32::from(still_to_distribute) >= i32::from(norm[largest] >> 1) {
        // Corner case, needs the other normalization method.
        return normalize_count2(count, norm, length, table_log);
    }
    norm[largest] = norm[largest].wrapping_add(still_to_distribute);
    Ok(())
}

/// `normalizeCount2`: the secondary method, for histograms the first one
/// would round badly.
fn normalize_count2(
    count: &[u32],
    norm: &mut [i16],
    length: usize,
    table_log: u8,
) -> Result<(), TableError> {
    const NOT_YET_ASSIGNED: i16 = -2;
    let symbol_len = count.len();
    let mut distributed = 0u32;
    let mut total = length as u32;
    let low_threshold = total >> table_log;
    let mut low_one = total.wrapping_mul(3) >> (table_log + 1);
    for (i, &cnt) in count.iter().enumerate() {
        if cnt == 0 {
            norm[i] = 0;
            continue;
        }
        if cnt <= low_threshold {
            norm[i] = -1;
            distributed += 1;
            total = total.wrapping_sub(cnt);
            continue;
        }
        if cnt <= low_one {
            norm[i] = 1;
            distributed += 1;
            total = total.wrapping_sub(cnt);
            continue;
        }
        norm[i] = NOT_YET_ASSIGNED;
    }
    let mut to_distribute = (1u32 << table_log).wrapping_sub(distributed);

    if total / to_distribute > low_one {
        // Risk of rounding to zero.
        low_one = total.wrapping_mul(3) / to_distribute.wrapping_mul(2);
        for (i, &cnt) in count.iter().enumerate() {
            if norm[i] == NOT_YET_ASSIGNED && cnt <= low_one {
                norm[i] = 1;
                distributed += 1;
                total = total.wrapping_sub(cnt);
            }
        }
        to_distribute = (1u32 << table_log).wrapping_sub(distributed);
    }
    if distributed == symbol_len as u32 + 1 {
        // All values are pretty poor (probably incompressible data): give
        // all remaining points to the most frequent.
        let mut max_v = 0usize;
        let mut max_c = 0u32;
        for (i, &cnt) in count.iter().enumerate() {
            if cnt > max_c {
                max_v = i;
                max_c = cnt;
            }
        }
        norm[max_v] = norm[max_v].wrapping_add(to_distribute as i16);
        return Ok(());
    }

    if total == 0 {
        // Every symbol was low enough for lowOne or lowThreshold.
        let mut i = 0usize;
        while to_distribute > 0 {
            if norm[i] > 0 {
                to_distribute -= 1;
                norm[i] += 1;
            }
            i = (i + 1) % symbol_len;
        }
        return Ok(());
    }

    let v_step_log = 62 - u64::from(table_log);
    let mid = (1u64 << (v_step_log - 1)) - 1;
    let r_step = ((1u64 << v_step_log)
        .wrapping_mul(u64::from(to_distribute))
        .wrapping_add(mid))
        / u64::from(total);
    let mut tmp_total = mid;
    for (i, &cnt) in count.iter().enumerate() {
        if norm[i] == NOT_YET_ASSIGNED {
            let end = tmp_total.wrapping_add(u64::from(cnt).wrapping_mul(r_step));
            let s_start = (tmp_total >> v_step_log) as u32;
            let s_end = (end >> v_step_log) as u32;
            let weight = s_end.wrapping_sub(s_start);
            if weight < 1 {
                return Err(TableError::WeightBelowOne);
            }
            norm[i] = weight as i16;
            tmp_total = end;
        }
    }
    Ok(())
}

/// `validateNorm`: the normalized counts sum to the table size and nothing
/// is counted past the symbol length (Go runs it under `debugAsserts`).
#[cfg(test)]
pub(crate) fn validate_norm(
    count: &[u32],
    norm: &[i16],
    symbol_len: usize,
    table_log: u8,
) -> Result<(), TableError> {
    let total: i64 = norm[..symbol_len].iter().map(|&v| i64::from(v).abs()).sum();
    if total != 1 << table_log {
        return Err(TableError::NormTotal {
            total,
            table_size: 1 << table_log,
        });
    }
    if let Some(i) = count[symbol_len..].iter().position(|&v| v != 0) {
        return Err(TableError::SymbolOutOfRange { symbol: i });
    }
    Ok(())
}

/// `writeCount`: appends the FSE table header (table log, then each
/// normalized count, with runs of zeros packed) for `norm`, whose last
/// symbol is `symbol_len - 1`. `max_header_size` is the room Go leaves for
/// the header; needing more is an error (Go fails or panics there).
pub(crate) fn write_count(
    norm: &[i16],
    symbol_len: u16,
    table_log: u8,
    max_header_size: usize,
    out: &mut Vec<u8>,
) -> Result<(), TableError> {
    let start = out.len();
    let table_size = 1i32 << table_log;
    let mut previous0 = false;
    let mut charnum = 0u16;
    let mut bit_stream = u32::from(table_log.wrapping_sub(MIN_TABLELOG));
    let mut bit_count = 4u32;
    let mut remaining = (table_size + 1) as i16; // +1 for extra accuracy
    let mut threshold = table_size as i16;
    let mut nb_bits = u32::from(table_log) + 1;

    // Stops at 1.
    while remaining > 1 {
        if previous0 {
            let mut start = charnum;
            while norm[usize::from(charnum)] == 0 {
                charnum += 1;
            }
            while charnum >= start + 24 {
                start += 24;
                bit_stream = bit_stream.wrapping_add(0xFFFF << bit_count);
                put16(out, bit_stream);
                bit_stream >>= 16;
            }
            while charnum >= start + 3 {
                start += 3;
                bit_stream = bit_stream.wrapping_add(3 << bit_count);
                bit_count += 2;
            }
            bit_stream = bit_stream.wrapping_add(u32::from(charnum - start) << bit_count);
            bit_count += 2;
            if bit_count > 16 {
                put16(out, bit_stream);
                bit_stream >>= 16;
                bit_count -= 16;
            }
        }

        let mut count = norm[usize::from(charnum)];
        charnum += 1;
        let max = (2 * threshold - 1) - remaining;
        if count < 0 {
            remaining += count;
        } else {
            remaining -= count;
        }
        count += 1; // +1 for extra accuracy
        if count >= threshold {
            count += max; // [0..max[ [max..threshold[ (...) [threshold+max 2*threshold[
        }
        bit_stream = bit_stream.wrapping_add((count as u32) << bit_count);
        bit_count += nb_bits;
        if count < max {
            bit_count -= 1;
        }

        previous0 = count == 1;
        if remaining < 1 {
            out.truncate(start);
            return Err(TableError::RemainingBelowOne);
        }
        while remaining < threshold {
            nb_bits -= 1;
            threshold >>= 1;
        }

        if bit_count > 16 {
            put16(out, bit_stream);
            bit_stream >>= 16;
            bit_count -= 16;
        }
    }

    let needed = out.len() - start + 2;
    if needed > max_header_size {
        out.truncate(start);
        return Err(TableError::HeaderTooBig {
            needed,
            max: max_header_size,
        });
    }
    put16(out, bit_stream);
    out.truncate(out.len() - 2 + (bit_count as usize).div_ceil(8));

    if charnum > symbol_len {
        out.truncate(start);
        return Err(TableError::PastSymbolLen { symbol_len });
    }
    Ok(())
}

/// Appends the low 16 bits of `bit_stream`, little-endian.
fn put16(out: &mut Vec<u8>, bit_stream: u32) {
    out.extend_from_slice(&(bit_stream as u16).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_bit_is_go_bits_len_minus_one() {
        assert_eq!(high_bit(1), 0);
        assert_eq!(high_bit(2), 1);
        assert_eq!(high_bit(0x8000_0000), 31);
        assert_eq!(high_bit(0), u32::MAX);
    }

    #[test]
    fn a_table_the_counts_do_not_fill_is_refused() {
        let mut ct = CTable::default();
        assert_eq!(
            ct.build(&[10, 10], 5),
            Err(TableError::CumulMismatch {
                sum: 20,
                table_size: 32
            })
        );
    }
}
