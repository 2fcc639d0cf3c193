//! Level 1 (`gzip.BestSpeed`): the Snappy-style matcher of `deflatefast.go`
//! and `encSpeed` of `deflate.go`.

use super::bit_writer::HuffmanBitWriter;
use super::tokens::*;

pub(super) const TABLE_BITS: u32 = 14;
pub(super) const TABLE_SIZE: usize = 1 << TABLE_BITS;
pub(super) const TABLE_MASK: u32 = (TABLE_SIZE - 1) as u32;
pub(super) const TABLE_SHIFT: u32 = 32 - TABLE_BITS;
pub(super) const BUFFER_RESET: i32 = i32::MAX - (MAX_STORE_BLOCK_SIZE as i32) * 2;
pub(super) const INPUT_MARGIN: usize = 16 - 1;
pub(super) const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN;

#[derive(Clone, Copy, Default)]
pub(super) struct TableEntry {
    pub(super) val: u32,
    pub(super) offset: i32,
}

#[inline]
pub(super) fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

#[inline]
fn hash(u: u32) -> u32 {
    u.wrapping_mul(0x1e35a7bd) >> TABLE_SHIFT
}

pub(super) fn emit_literal(dst: &mut Vec<u32>, lit: &[u8]) {
    dst.extend(lit.iter().map(|&b| u32::from(b)));
}

pub(super) struct DeflateFast {
    pub(super) table: Vec<TableEntry>,
    /// The previous block, empty if unknown.
    pub(super) prev: Vec<u8>,
    /// Offset of the current block in the table's coordinates.
    pub(super) cur: i32,
}

impl DeflateFast {
    pub(super) fn new() -> Self {
        DeflateFast {
            table: vec![TableEntry::default(); TABLE_SIZE],
            prev: Vec::with_capacity(MAX_STORE_BLOCK_SIZE),
            cur: MAX_STORE_BLOCK_SIZE as i32,
        }
    }

    /// `encode`: append the tokens of `src` to `dst`.
    pub(super) fn encode(&mut self, dst: &mut Vec<u32>, src: &[u8]) {
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            self.cur = self.cur.wrapping_add(MAX_STORE_BLOCK_SIZE as i32);
            self.prev.clear();
            emit_literal(dst, src);
            return;
        }

        let s_limit = (src.len() - INPUT_MARGIN) as i32;
        let mut next_emit: i32 = 0;
        let mut s: i32 = 0;
        let mut cv = load32(src, 0);
        let mut next_hash = hash(cv);

        'outer: loop {
            let mut skip: i32 = 32;
            let mut next_s = s;
            let mut candidate;
            loop {
                s = next_s;
                let bytes_between_hash_lookups = skip >> 5;
                next_s = s + bytes_between_hash_lookups;
                skip += bytes_between_hash_lookups;
                if next_s > s_limit {
                    break 'outer;
                }
                let idx = (next_hash & TABLE_MASK) as usize;
                candidate = self.table[idx];
                let now = load32(src, next_s as usize);
                self.table[idx] = TableEntry {
                    offset: s.wrapping_add(self.cur),
                    val: cv,
                };
                next_hash = hash(now);

                let offset = s.wrapping_sub(candidate.offset.wrapping_sub(self.cur));
                if offset > MAX_MATCH_OFFSET || cv != candidate.val {
                    cv = now;
                    continue;
                }
                break;
            }

            emit_literal(dst, &src[next_emit as usize..s as usize]);

            loop {
                s += 4;
                let t = candidate.offset.wrapping_sub(self.cur).wrapping_add(4);
                let l = self.match_len(s, t, src);
                dst.push(match_token(
                    (l + 4 - BASE_MATCH_LENGTH) as u32,
                    s.wrapping_sub(t).wrapping_sub(BASE_MATCH_OFFSET) as u32,
                ));
                s += l;
                next_emit = s;
                if s >= s_limit {
                    break 'outer;
                }

                let mut x = load64(src, (s - 1) as usize);
                let prev_hash = hash(x as u32);
                self.table[(prev_hash & TABLE_MASK) as usize] = TableEntry {
                    offset: self.cur.wrapping_add(s).wrapping_sub(1),
                    val: x as u32,
                };
                x >>= 8;
                let curr_hash = hash(x as u32);
                let idx = (curr_hash & TABLE_MASK) as usize;
                candidate = self.table[idx];
                self.table[idx] = TableEntry {
                    offset: self.cur.wrapping_add(s),
                    val: x as u32,
                };

                let offset = s.wrapping_sub(candidate.offset.wrapping_sub(self.cur));
                if offset > MAX_MATCH_OFFSET || x as u32 != candidate.val {
                    cv = (x >> 8) as u32;
                    next_hash = hash(cv);
                    s += 1;
                    break;
                }
            }
        }

        // emitRemainder
        if (next_emit as usize) < src.len() {
            emit_literal(dst, &src[next_emit as usize..]);
        }
        self.cur = self.cur.wrapping_add(src.len() as i32);
        self.prev.clear();
        self.prev.extend_from_slice(src);
    }

    /// `matchLen`: match length between `src[s..]` and `src[t..]`, where a
    /// negative `t` starts in the previous block.
    pub(super) fn match_len(&self, s: i32, t: i32, src: &[u8]) -> i32 {
        let s = s as usize;
        let s1 = (s + MAX_MATCH_LENGTH - 4).min(src.len());

        if t >= 0 {
            let t = t as usize;
            let a = &src[s..s1];
            let b = &src[t..t + a.len()];
            return common_prefix(a, b) as i32;
        }

        let tp = self.prev.len() as i32 + t;
        if tp < 0 {
            return 0;
        }
        let a = &src[s..s1];
        let mut b = &self.prev[tp as usize..];
        if b.len() > a.len() {
            b = &b[..a.len()];
        }
        let a = &a[..b.len()];
        let n = common_prefix(a, b);
        if n < b.len() {
            return n as i32;
        }
        if s + n == s1 {
            return n as i32;
        }
        let a = &src[s + n..s1];
        let b = &src[..a.len()];
        (common_prefix(a, b) + n) as i32
    }

    /// `reset`: forget the history.
    pub(super) fn reset(&mut self) {
        self.prev.clear();
        self.cur = self.cur.wrapping_add(MAX_MATCH_OFFSET);
        if self.cur >= BUFFER_RESET {
            self.shift_offsets();
        }
    }

    /// `shiftOffsets`: rebase table offsets so `cur` cannot overflow.
    pub(super) fn shift_offsets(&mut self) {
        if self.prev.is_empty() {
            self.table.fill(TableEntry::default());
            self.cur = MAX_MATCH_OFFSET + 1;
            return;
        }
        for e in self.table.iter_mut() {
            let v = e
                .offset
                .wrapping_sub(self.cur)
                .wrapping_add(MAX_MATCH_OFFSET)
                .wrapping_add(1);
            e.offset = v.max(0);
        }
        self.cur = MAX_MATCH_OFFSET + 1;
    }
}

// ---------------------------------------------------------------------------
// The level-1 compressor (deflate.go) and the gzip framing (gzip.go)

/// The level-1 `compressor`: `fillStore` into a `maxStoreBlockSize`
/// window and `encSpeed` on each full one.
pub(super) struct BestSpeed {
    pub(super) w: HuffmanBitWriter,
    fast: DeflateFast,
    tokens: Vec<u32>,
    window: Box<[u8]>,
    window_end: usize,
}

impl BestSpeed {
    pub(super) fn new() -> Self {
        BestSpeed {
            w: HuffmanBitWriter::new(),
            fast: DeflateFast::new(),
            tokens: Vec::with_capacity(MAX_STORE_BLOCK_SIZE + 1),
            window: vec![0; MAX_STORE_BLOCK_SIZE].into_boxed_slice(),
            window_end: 0,
        }
    }

    /// `Write`: how the input is split into calls does not matter here.
    pub(super) fn write(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.window_end == MAX_STORE_BLOCK_SIZE {
                self.enc_speed();
            }
            let n = b.len().min(MAX_STORE_BLOCK_SIZE - self.window_end);
            self.window[self.window_end..self.window_end + n].copy_from_slice(&b[..n]);
            self.window_end += n;
            b = &b[n..];
        }
    }

    /// The `step` of `close`: the last, possibly shorter, window.
    pub(super) fn finish(&mut self) {
        self.enc_speed();
    }

    /// `encSpeed` on the window: a full one (65535 bytes) or, at `Close`,
    /// the final shorter one.
    fn enc_speed(&mut self) {
        let window = &self.window[..self.window_end];
        let window_end = window.len();
        self.window_end = 0;
        if window_end < 128 {
            match window_end {
                0 => return,
                1..=16 => self.w.write_stored(window, false),
                _ => self.w.write_block_huff(false, window),
            }
            self.fast.reset();
            return;
        }

        self.tokens.clear();
        self.fast.encode(&mut self.tokens, window);
        // Huffman-only when matching removed less than 1/16th.
        if self.tokens.len() > window_end - (window_end >> 4) {
            self.w.write_block_huff(false, window);
        } else {
            self.tokens.push(END_BLOCK_MARKER as u32);
            self.w.write_block_dynamic(&self.tokens, false, window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_offsets_keeps_near_history() {
        let mut e = DeflateFast::new();
        e.prev.push(1);
        e.cur = BUFFER_RESET;
        e.table[0] = TableEntry {
            val: 7,
            offset: BUFFER_RESET - 10,
        };
        e.table[1] = TableEntry { val: 7, offset: 5 };
        e.shift_offsets();
        assert_eq!(e.cur, MAX_MATCH_OFFSET + 1);
        assert_eq!(e.table[0].offset, MAX_MATCH_OFFSET + 1 - 10);
        assert_eq!(e.table[1].offset, 0);
    }
}
