//! The level-5 matcher (`fast_encoder.go` `fastGen`, `level5.go`
//! `fastEncL5`), which `DefaultCompression` maps to.
//!
//! Two hash tables: 4-byte hashes with one candidate, 7-byte hashes with
//! two (current and previous). The history (`hist`) keeps up to
//! `allocHistory` bytes and is moved down to the last 32 KiB when full;
//! table entries are absolute positions offset by `cur`, which `reset`
//! advances past every stored entry instead of clearing the tables.

use super::tokens::{MAX_STORE_BLOCK_SIZE, Tokens};

const TABLE_BITS: u32 = 15;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
const MAX_MATCH_OFFSET: i32 = 1 << 15;
const MAX_MATCH_LENGTH: i32 = 258;
/// `allocHistory`: the history's capacity, which decides when it moves.
const ALLOC_HISTORY: usize = MAX_STORE_BLOCK_SIZE * 5;
/// `bufferReset`: `cur` is rebased before it can overflow.
const BUFFER_RESET: i32 = i32::MAX - ALLOC_HISTORY as i32 - MAX_STORE_BLOCK_SIZE as i32 - 1;
const PRIME4BYTES: u32 = 2_654_435_761;
const PRIME7BYTES: u64 = 58_295_818_150_454_627;

#[derive(Clone, Copy, Default)]
struct TableEntryPrev {
    cur: i32,
    prev: i32,
}

pub(super) struct FastEncL5 {
    hist: Vec<u8>,
    cur: i32,
    table: Box<[i32]>,
    b_table: Box<[TableEntryPrev]>,
}

#[inline]
fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline]
fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// `hashLen(u, tableBits, 4)`.
#[inline]
fn hash4(u: u64) -> usize {
    ((u as u32).wrapping_mul(PRIME4BYTES) >> (32 - TABLE_BITS)) as usize
}

/// `hash7(u, tableBits)`.
#[inline]
fn hash7(u: u64) -> usize {
    ((u << 8).wrapping_mul(PRIME7BYTES) >> (64 - TABLE_BITS)) as usize
}

/// `matchLen`: length of the common prefix; `a` is the shorter.
#[inline]
fn match_len(a: &[u8], b: &[u8]) -> i32 {
    let b = &b[..a.len()];
    let mut checked = 0;
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        let diff = u64::from_le_bytes(x.try_into().expect("8"))
            ^ u64::from_le_bytes(y.try_into().expect("8"));
        if diff != 0 {
            return checked + (diff.trailing_zeros() >> 3) as i32;
        }
        checked += 8;
    }
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        if x != y {
            return checked;
        }
        checked += 1;
    }
    checked
}

/// `matchlen`: at most 254 bytes (`maxMatchLength - 4`).
#[inline]
fn matchlen(s: i32, t: i32, src: &[u8]) -> i32 {
    let s1 = (s as usize + MAX_MATCH_LENGTH as usize - 4).min(src.len());
    match_len(&src[s as usize..s1], &src[t as usize..])
}

/// `matchlenLong`: to the end of the input.
#[inline]
fn matchlen_long(s: i32, t: i32, src: &[u8]) -> i32 {
    match_len(&src[s as usize..], &src[t as usize..])
}

#[inline]
fn push_long(e: &mut TableEntryPrev, offset: i32) {
    e.prev = e.cur;
    e.cur = offset;
}

impl FastEncL5 {
    pub(super) fn new() -> Self {
        FastEncL5 {
            hist: Vec::with_capacity(ALLOC_HISTORY),
            cur: MAX_STORE_BLOCK_SIZE as i32,
            table: vec![0; TABLE_SIZE].into_boxed_slice(),
            b_table: vec![TableEntryPrev::default(); TABLE_SIZE].into_boxed_slice(),
        }
    }

    /// `Reset`: move `cur` past every entry; the tables stay.
    pub(super) fn reset(&mut self) {
        if self.cur <= BUFFER_RESET {
            self.cur += MAX_MATCH_OFFSET + self.hist.len() as i32;
        }
        self.hist.clear();
    }

    /// `addBlock`: appends `src` to the history (moving the last 32 KiB
    /// down first when it would not fit) and returns where it starts.
    fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.hist.len() + src.len() > ALLOC_HISTORY {
            let offset = self.hist.len() - MAX_MATCH_OFFSET as usize;
            self.hist.copy_within(offset.., 0);
            self.cur += offset as i32;
            self.hist.truncate(MAX_MATCH_OFFSET as usize);
        }
        let s = self.hist.len() as i32;
        self.hist.extend_from_slice(src);
        s
    }

    /// Rebases the tables before `cur` overflows.
    fn protect_cur(&mut self) {
        while self.cur >= BUFFER_RESET {
            if self.hist.is_empty() {
                self.table.fill(0);
                self.b_table.fill(TableEntryPrev::default());
                self.cur = MAX_MATCH_OFFSET;
                break;
            }
            let min_off = self.cur + self.hist.len() as i32 - MAX_MATCH_OFFSET;
            let cur = self.cur;
            let rebase = |v: i32| {
                if v <= min_off {
                    0
                } else {
                    v - cur + MAX_MATCH_OFFSET
                }
            };
            for v in self.table.iter_mut() {
                *v = rebase(*v);
            }
            for v in self.b_table.iter_mut() {
                if v.cur <= min_off {
                    *v = TableEntryPrev::default();
                } else {
                    v.cur = rebase(v.cur);
                    v.prev = rebase(v.prev);
                }
            }
            self.cur = MAX_MATCH_OFFSET;
        }
    }

    /// `Encode`: tokens for `src`, which may refer back into the history.
    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const INPUT_MARGIN: i32 = 12 - 1;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;

        self.protect_cur();
        let mut s = self.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            // No tokens; the caller stores or Huffman-codes such input.
            dst.n = src.len();
            return;
        }

        let FastEncL5 {
            hist,
            cur,
            table,
            b_table,
        } = self;
        let cur = *cur;
        let src = &hist[..];
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
