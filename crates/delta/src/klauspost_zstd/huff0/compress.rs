//! The entry points of `huff0/compress.go` (`Compress1X`, `Compress4X`,
//! `EstimateSizes`), the reuse decision they share (`compress`) and the
//! stream encoders: one bit stream coded from the last byte to the first
//! (`compress1xDo`), or four of them over quarters of the input behind a
//! 6-byte jump table (`compress4X`; Go's parallel `compress4Xp` writes the
//! same bytes and is unused). klauspost/compress is BSD-3-Clause, huff0
//! after Yann Collet's BSD Huff0.

use super::table::estimate_size;
use super::{CTable, CTableEntry, Huff0Error, ReusePolicy, Scratch};
use crate::klauspost_zstd::bit_writer::BitWriter;

/// A stream encoder appending to `Scratch::out` (`compress1X`, `compress4X`).
type Compressor = fn(&mut Scratch, &[u8]) -> Result<(), Huff0Error>;

/// `Compress1X`: Huffman-codes `input` as one stream. Returns the output
/// (a table description first unless the previous table was reused; also
/// in `s.out`) and whether the previous table was reused.
pub(crate) fn compress_1x<'a>(
    input: &[u8],
    s: &'a mut Scratch,
) -> Result<(&'a [u8], bool), Huff0Error> {
    s.prepare(input)?;
    compress(input, s, Scratch::compress1x)
}

/// `Compress4X`: as [`compress_1x`] with four streams (zstd uses it for
/// 1 KiB of literals or more).
pub(crate) fn compress_4x<'a>(
    input: &[u8],
    s: &'a mut Scratch,
) -> Result<(&'a [u8], bool), Huff0Error> {
    s.prepare(input)?;
    compress(input, s, Scratch::compress4x)
}

/// `compress`: counts the input, then codes it with the previous table or
/// a new one as the reuse policy and the size estimates decide.
// Exact port of klauspost's huff0.compress (huff0/compress.go):
// kept line for line so it can be checked against the original.
#[allow(clippy::too_many_lines)]
fn compress<'a>(
    input: &[u8],
    s: &'a mut Scratch,
    compressor: Compressor,
) -> Result<(&'a [u8], bool), Huff0Error> {
    // Forget the previous table if it cannot be reused anyway.
    if s.reuse == ReusePolicy::None {
        s.prev_table.clear();
    }

    // Create the histogram, if none was provided.
    let mut max_count = s.max_count;
    let can_reuse;
    if max_count == 0 {
        (max_count, can_reuse) = s.count_simple(input);
    } else {
        can_reuse = s.can_use_table(&s.prev_table);
    }

    // The output must be smaller than this.
    let mut want_size = input.len();
    if s.want_log_less > 0 {
        // Go's shift by 64 or more gives 0.
        want_size -= want_size
            .checked_shr(u32::from(s.want_log_less))
            .unwrap_or(0);
    }

    // Reset for the next run.
    s.clear_count = true;
    s.max_count = 0;
    if max_count >= input.len() {
        if max_count > input.len() {
            return Err(Huff0Error::MaxCountTooBig {
                max_count,
                length: input.len(),
            });
        }
        if input.len() == 1 {
            return Err(Huff0Error::Incompressible);
        }
        // One symbol: use RLE.
        return Err(Huff0Error::UseRle);
    }
    if max_count == 1 || max_count < (input.len() >> 7) {
        // Each symbol present at most once, or too well distributed.
        return Err(Huff0Error::Incompressible);
    }
    if s.reuse == ReusePolicy::Must && !can_reuse {
        // We must reuse, but we can't.
        return Err(Huff0Error::Incompressible);
    }
    if matches!(s.reuse, ReusePolicy::Prefer | ReusePolicy::Must) && can_reuse {
        let ok = s.run_with_prev_table(input, compressor).is_ok();
        if ok && s.out.len() < want_size {
            s.out_data = Some(0);
            return Ok((&s.out, true));
        }
        if s.reuse == ReusePolicy::Must {
            return Err(Huff0Error::Incompressible);
        }
        // Do not attempt to reuse later. (As in Go, `out` keeps what this
        // attempt wrote, and the new table is appended after it.)
        s.prev_table.clear();
    }

    // Calculate a new table.
    s.build_ctable()?;

    if s.reuse == ReusePolicy::Allow && can_reuse {
        let h_size = s.out.len();
        let old_size = estimate_size(&s.prev_table, &s.count[..usize::from(s.symbol_len)]);
        let new_size = estimate_size(&s.c_table, &s.count[..usize::from(s.symbol_len)]);
        if old_size <= h_size + new_size || h_size + 12 >= want_size {
            // Keep the new table even though the previous one is used.
            s.run_with_prev_table(input, compressor)?;
            if s.out.len() >= want_size {
                return Err(Huff0Error::Incompressible);
            }
            s.out_data = Some(0);
            return Ok((&s.out, true));
        }
    }

    // Use the new table.
    s.write_ctable()?;
    let table_len = s.out.len();
    s.out_table = Some(table_len);

    // Compress with the new table.
    if let Err(e) = run(s, input, compressor) {
        s.out_table = None;
        return Err(e);
    }
    if s.out.len() >= want_size {
        s.out_table = None;
        return Err(Huff0Error::Incompressible);
    }
    // The new table becomes the previous one.
    std::mem::swap(&mut s.prev_table, &mut s.c_table);
    s.prev_table_log = s.actual_table_log;
    s.c_table.clear();
    s.out_data = Some(table_len);
    Ok((&s.out, false))
}

/// Runs `compressor`; on error `out` is emptied, as Go's `s.Out, err =
/// compressor(in)` leaves it nil.
fn run(s: &mut Scratch, input: &[u8], compressor: Compressor) -> Result<(), Huff0Error> {
    let result = compressor(s, input);
    if result.is_err() {
        s.out.clear();
    }
    result
}

/// `EstimateSizes`: the sizes of a new table, of the input coded with it,
/// and of the input coded with the previous table (-1 when that cannot be
/// used); nothing is coded.
#[cfg(test)]
pub(crate) fn estimate_sizes(
    input: &[u8],
    s: &mut Scratch,
) -> Result<(isize, isize, isize), Huff0Error> {
    s.prepare(input)?;

    // Create the histogram, if none was provided.
    let mut max_count = s.max_count;
    let can_reuse;
    if max_count == 0 {
        (max_count, can_reuse) = s.count_simple(input);
    } else {
        can_reuse = s.can_use_table(&s.prev_table);
    }

    // Reset for the next run.
    s.clear_count = true;
    s.max_count = 0;
    if max_count >= input.len() {
        if max_count > input.len() {
            return Err(Huff0Error::MaxCountTooBig {
                max_count,
                length: input.len(),
            });
        }
        if input.len() == 1 {
            return Err(Huff0Error::Incompressible);
        }
        // One symbol: use RLE.
        return Err(Huff0Error::UseRle);
    }
    if max_count == 1 || max_count < (input.len() >> 7) {
        // Each symbol present at most once, or too well distributed.
        return Err(Huff0Error::Incompressible);
    }

    // Calculate a new table.
    s.build_ctable()?;

    let table_sz = s.est_table_size()? as isize;
    let hist = &s.count[..usize::from(s.symbol_len)];
    let reuse_sz = if can_reuse {
        estimate_size(&s.prev_table, hist) as isize
    } else {
        -1
    };
    let data_sz = estimate_size(&s.c_table, hist) as isize;
    Ok((table_sz, data_sz, reuse_sz))
}

impl Scratch {
    /// Codes `input` with the previous table, keeping the new one (Go swaps
    /// `cTable` and `actualTableLog` for the call and back).
    fn run_with_prev_table(
        &mut self,
        input: &[u8],
        compressor: Compressor,
    ) -> Result<(), Huff0Error> {
        std::mem::swap(&mut self.c_table, &mut self.prev_table);
        let keep_tl = std::mem::replace(&mut self.actual_table_log, self.prev_table_log);
        let result = run(self, input, compressor);
        std::mem::swap(&mut self.c_table, &mut self.prev_table);
        self.actual_table_log = keep_tl;
        result
    }

    /// `compress1X`.
    fn compress1x(&mut self, src: &[u8]) -> Result<(), Huff0Error> {
        self.compress1x_do(src);
        Ok(())
    }

    /// `compress1xDo`: appends one stream coding `src` to `out`: the last
    /// byte first, four symbols per flush (two flushes when codes may be
    /// longer than 8 bits), then the end mark.
    fn compress1x_do(&mut self, src: &[u8]) {
        // Codes by byte value: indexing by u8 needs no bounds checks. Only
        // symbols below the table's length occur in `src`.
        let mut c_table = [CTableEntry::default(); 256];
        c_table[..self.c_table.len()].copy_from_slice(&self.c_table);
        let mut bw = BitWriter::default();
        bw.reset(std::mem::take(&mut self.out));
        bw.out.reserve(src.len() + 8);

        // Length divisible by 4.
        let n = src.len() & !3;
        // Encode the last bytes.
        for &b in src[n..].iter().rev() {
            bw.enc_symbol(&c_table, b);
        }
        let quads = src[..n].chunks_exact(4).rev();
        if self.actual_table_log <= 8 {
            for q in quads {
                bw.flush32();
                bw.enc_two_symbols(&c_table, q[3], q[2]);
                bw.enc_two_symbols(&c_table, q[1], q[0]);
            }
        } else {
            for q in quads {
                bw.flush32();
                bw.enc_two_symbols(&c_table, q[3], q[2]);
                bw.flush32();
                bw.enc_two_symbols(&c_table, q[1], q[0]);
            }
        }
        bw.close();
        self.out = bw.out;
    }

    /// `compress4X`: a 6-byte jump table (the sizes of the first three
    /// streams, little-endian) and four streams over quarters of `src`.
    fn compress4x(&mut self, mut src: &[u8]) -> Result<(), Huff0Error> {
        if src.len() < 12 {
            return Err(Huff0Error::Incompressible);
        }
        let segment_size = src.len().div_ceil(4);

        // Placeholder for the stream lengths.
        let offset_idx = self.out.len();
        self.out.extend_from_slice(&[0; 6]);

        for i in 0..4 {
            let to_do = &src[..segment_size.min(src.len())];
            src = &src[to_do.len()..];

            let idx = self.out.len();
            self.compress1x_do(to_do);
            let length = self.out.len() - idx;
            if length > usize::from(u16::MAX) {
                // The size does not fit the jump table.
                return Err(Huff0Error::Incompressible);
            }
            // The last length is not written.
            if i < 3 {
                self.out[offset_idx + i * 2..offset_idx + i * 2 + 2]
                    .copy_from_slice(&(length as u16).to_le_bytes());
            }
        }
        Ok(())
    }

    /// `countSimple`: the histogram of `input` into `count`; returns the
    /// largest count and whether the previous table codes every symbol.
    pub(super) fn count_simple(&mut self, input: &[u8]) -> (usize, bool) {
        for &v in input {
            self.count[usize::from(v)] += 1;
        }
        let mut m = 0u32;
        let mut reuse = true;
        let has_prev = !self.prev_table.is_empty();
        for (i, &v) in self.count.iter().enumerate() {
            if v == 0 {
                continue;
            }
            m = m.max(v);
            self.symbol_len = i as u16 + 1;
            if has_prev && (i >= self.prev_table.len() || self.prev_table[i].n_bits == 0) {
                reuse = false;
            }
        }
        (m as usize, has_prev && reuse)
    }

    /// `canUseTable`: whether `c` has a code for every counted symbol.
    pub(super) fn can_use_table(&self, c: &CTable) -> bool {
        if c.len() < usize::from(self.symbol_len) {
            return false;
        }
        self.count[..usize::from(self.symbol_len)]
            .iter()
            .zip(c)
            .all(|(&v, e)| v == 0 || e.n_bits != 0)
    }

    /// `validateTable`: as [`Self::can_use_table`], and no code is longer
    /// than the table log (Go keeps it for debugging).
    #[cfg(test)]
    pub(super) fn validate_table(&self, c: &CTable) -> bool {
        if c.len() < usize::from(self.symbol_len) {
            return false;
        }
        self.count[..usize::from(self.symbol_len)]
            .iter()
            .zip(c)
            .all(|(&v, e)| v == 0 || (e.n_bits != 0 && e.n_bits <= self.actual_table_log))
    }
}

impl BitWriter {
    /// `encSymbol`: adds `symbol`'s code (no room check).
    #[inline(always)]
    fn enc_symbol(&mut self, ct: &[CTableEntry; 256], symbol: u8) {
        let enc = ct[usize::from(symbol)];
        self.bit_container |= u64::from(enc.val) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(enc.n_bits);
    }

    /// `encTwoSymbols`: adds the codes of `av` then `bv` (no room check).
    #[inline(always)]
    fn enc_two_symbols(&mut self, ct: &[CTableEntry; 256], av: u8, bv: u8) {
        let enc_a = ct[usize::from(av)];
        let enc_b = ct[usize::from(bv)];
        let sh = self.n_bits & 63;
        let combined = u64::from(enc_a.val) | (u64::from(enc_b.val) << (enc_a.n_bits & 63));
        self.bit_container |= combined << sh;
        self.n_bits = self
            .n_bits
            .wrapping_add(enc_a.n_bits)
            .wrapping_add(enc_b.n_bits);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_table_validates_and_one_missing_a_symbol_does_not() {
        let mut s = Scratch::default();
        let input: Vec<u8> = (0..4000u32)
            .map(|i| b"aaaabbbcdeeeeeeffg"[(i * 7 % 18) as usize])
            .collect();
        let (_, reused) = compress_4x(&input, &mut s).unwrap();
        assert!(!reused);
        s.actual_table_log = s.prev_table_log;
        assert!(s.can_use_table(&s.prev_table));
        assert!(s.validate_table(&s.prev_table));
        let mut lacking = s.prev_table.clone();
        lacking[usize::from(b'g')].n_bits = 0;
        assert!(!s.can_use_table(&lacking));
        assert!(!s.validate_table(&lacking));
        let mut too_long = s.prev_table.clone();
        too_long[usize::from(b'g')].n_bits = s.actual_table_log + 1;
        assert!(s.can_use_table(&too_long));
        assert!(!s.validate_table(&too_long));
    }
}
