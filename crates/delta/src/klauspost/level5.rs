//! The level-5 matcher (`fast_encoder.go` `fastGen`, `level5.go`
//! `fastEncL5`), which `DefaultCompression` maps to.
//!
//! Two hash tables: 4-byte hashes with one candidate, 7-byte hashes with
//! two (current and previous), over the shared history of `fast_gen`.

use super::fast_gen::{
    BUFFER_RESET, FastGen, MAX_MATCH_LENGTH, MAX_MATCH_OFFSET, TABLE_SIZE, hash4, hash7, load32,
    load64, matchlen, matchlen_long,
};
use super::tokens::Tokens;

#[derive(Clone, Copy, Default)]
struct TableEntryPrev {
    cur: i32,
    prev: i32,
}

pub(super) struct FastEncL5 {
    history: FastGen,
    table: Box<[i32]>,
    b_table: Box<[TableEntryPrev]>,
}

#[inline]
fn push_long(e: &mut TableEntryPrev, offset: i32) {
    e.prev = e.cur;
    e.cur = offset;
}

impl FastEncL5 {
    pub(super) fn new() -> Self {
        FastEncL5 {
            history: FastGen::new(),
            table: vec![0; TABLE_SIZE].into_boxed_slice(),
            b_table: vec![TableEntryPrev::default(); TABLE_SIZE].into_boxed_slice(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.history.reset();
    }

    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        self.history.cur = BUFFER_RESET - distance as i32;
    }

    /// Rebases the tables before `cur` overflows.
    fn protect_cur(&mut self) {
        while self.history.cur >= BUFFER_RESET {
            if self.history.hist.is_empty() {
                self.table.fill(0);
                self.b_table.fill(TableEntryPrev::default());
                self.history.cur = MAX_MATCH_OFFSET;
                break;
            }
            let rebase = self.history.rebase();
            for v in self.table.iter_mut() {
                *v = rebase(*v);
            }
            for v in self.b_table.iter_mut() {
                if rebase(v.cur) == 0 {
                    *v = TableEntryPrev::default();
                } else {
                    v.cur = rebase(v.cur);
                    v.prev = rebase(v.prev);
                }
            }
            self.history.cur = MAX_MATCH_OFFSET;
        }
    }

    /// `Encode`: tokens for `src`, which may refer back into the history.
    // Exact port of klauspost's flate.(*fastEncL5).Encode (flate/level5.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const INPUT_MARGIN: i32 = 12 - 1;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;

        self.protect_cur();
        let mut s = self.history.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            // No tokens; the caller stores or Huffman-codes such input.
            dst.n = src.len();
            return;
        }

        let FastEncL5 {
            history,
            table,
            b_table,
        } = self;
        let cur = history.cur;
        let src = &history.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s = s;
            let mut l: i32 = 0;
            let mut t: i32;
            loop {
                let next_hash_s = hash4(cv);
                let next_hash_l = hash7(cv);
                s = next_s;
                next_s = s + 1 + ((s - next_emit) >> 6);
                if next_s > s_limit {
                    break 'outer;
                }
                let s_candidate = table[next_hash_s];
                let mut l_candidate = b_table[next_hash_l];
                let next = load64(src, next_s);
                let entry = s + cur;
                table[next_hash_s] = entry;
                push_long(&mut b_table[next_hash_l], entry);

                let next_hash_s = hash4(next);
                let next_hash_l = hash7(next);

                t = l_candidate.cur - cur;
                if s - t < MAX_MATCH_OFFSET {
                    if cv as u32 == load32(src, t) {
                        // Store the next match.
                        table[next_hash_s] = next_s + cur;
                        push_long(&mut b_table[next_hash_l], next_s + cur);
                        let t2 = l_candidate.prev - cur;
                        if s - t2 < MAX_MATCH_OFFSET && cv as u32 == load32(src, t2) {
                            l = matchlen(s + 4, t + 4, src) + 4;
                            let ml1 = matchlen(s + 4, t2 + 4, src) + 4;
                            if ml1 > l {
                                t = t2;
                                l = ml1;
                                break;
                            }
                        }
                        break;
                    }
                    t = l_candidate.prev - cur;
                    if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                        table[next_hash_s] = next_s + cur;
                        push_long(&mut b_table[next_hash_l], next_s + cur);
                        break;
                    }
                }

                t = s_candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    // Found a 4 match...
                    l = matchlen(s + 4, t + 4, src) + 4;
                    l_candidate = b_table[next_hash_l];
                    table[next_hash_s] = next_s + cur;
                    push_long(&mut b_table[next_hash_l], next_s + cur);

                    // If the next long is a candidate, use that...
                    let t2 = l_candidate.cur - cur;
                    if next_s - t2 < MAX_MATCH_OFFSET {
                        if load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                        // If the previous long is a candidate, use that...
                        let t2 = l_candidate.prev - cur;
                        if next_s - t2 < MAX_MATCH_OFFSET && load32(src, t2) == next as u32 {
                            let ml = matchlen(next_s + 4, t2 + 4, src) + 4;
                            if ml > l {
                                t = t2;
                                s = next_s;
                                l = ml;
                                break;
                            }
                        }
                    }
                    break;
                }
                cv = next;
            }

            // A 4-byte match has been found: extend it.
            if l == 0 {
                l = matchlen_long(s + 4, t + 4, src) + 4;
            } else if l == MAX_MATCH_LENGTH {
                l += matchlen_long(s + l, t + l, src);
            }

            // Try to locate a better match by checking the end of the best
            // match, allowing two bytes at the start to mismatch.
            let s_at = s + l;
            if l < 30 && s_at < s_limit {
                const SKIP_BEGINNING: i32 = 2;
                let e_long = b_table[hash7(load64(src, s_at))].cur;
                let t2 = e_long - cur - l + SKIP_BEGINNING;
                let s2 = s + SKIP_BEGINNING;
                let off = s2 - t2;
                if t2 >= 0 && off < MAX_MATCH_OFFSET && off > 0 {
                    let l2 = matchlen_long(s2, t2, src);
                    if l2 > l {
                        t = t2;
                        l = l2;
                        s = s2;
                    }
                }
            }

            // Extend backwards.
            while t > 0 && s > next_emit && src[(t - 1) as usize] == src[(s - 1) as usize] {
                s -= 1;
                t -= 1;
                l += 1;
            }
            if next_emit < s {
                dst.add_literals(&src[next_emit as usize..s as usize]);
            }
            dst.add_match_long(l, (s - t - 1) as u32);
            s += l;
            next_emit = s;
            if next_s >= s {
                s = next_s + 1;
            }
            if s >= s_limit {
                break 'outer;
            }

            // Store every 3rd hash in between.
            let mut i = s - l + 1;
            if i < s - 1 {
                let cv = load64(src, i);
                let t = i + cur;
                table[hash4(cv)] = t;
                push_long(&mut b_table[hash7(cv)], t);
                // A long at i+1.
                let cv = cv >> 8;
                let t = t + 1;
                push_long(&mut b_table[hash7(cv)], t);
                // Only enough bits for a short entry at i+2.
                let cv = cv >> 8;
                let t = t + 1;
                table[hash4(cv)] = t;
                // Skip one, otherwise we risk hitting `s`.
                i += 4;
                while i < s - 1 {
                    let cv = load64(src, i);
                    let t = i + cur;
                    push_long(&mut b_table[hash7(cv)], t);
                    table[hash4(cv >> 8)] = t + 1;
                    i += 3;
                }
            }

            // Update the tables at s-1 and s before going on.
            let x = load64(src, s - 1);
            let o = cur + s - 1;
            table[hash4(x)] = o;
            push_long(&mut b_table[hash7(x)], o);
            cv = x >> 8;
        }

        // emitRemainder: nothing at all when no match was found.
        if (next_emit as usize) < src.len() && dst.n != 0 {
            dst.add_literals(&src[next_emit as usize..]);
        }
    }
}
