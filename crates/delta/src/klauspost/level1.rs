//! The level-1 matcher (`level1.go` `fastEncL1`), pgzip's `BestSpeed`.
//!
//! One table of 5-byte hashes, checking two positions per step and
//! skipping faster through unmatched data than level 5.

use super::fast_gen::{
    BUFFER_RESET, FastGen, MAX_MATCH_OFFSET, TABLE_SIZE, hash5, load32, load64, matchlen_long,
};
use super::tokens::Tokens;

pub(super) struct FastEncL1 {
    history: FastGen,
    table: Box<[i32]>,
}

impl FastEncL1 {
    pub(super) fn new() -> Self {
        FastEncL1 {
            history: FastGen::new(),
            table: vec![0; TABLE_SIZE].into_boxed_slice(),
        }
    }

    pub(super) fn reset(&mut self) {
        self.history.reset();
    }

    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        self.history.cur = BUFFER_RESET - distance as i32;
    }

    /// Rebases the table before `cur` overflows.
    fn protect_cur(&mut self) {
        while self.history.cur >= BUFFER_RESET {
            if self.history.hist.is_empty() {
                self.table.fill(0);
                self.history.cur = MAX_MATCH_OFFSET;
                break;
            }
            let rebase = self.history.rebase();
            for v in self.table.iter_mut() {
                *v = rebase(*v);
            }
            self.history.cur = MAX_MATCH_OFFSET;
        }
    }

    /// `Encode`: tokens for `src`, which may refer back into the history.
    // Exact port of klauspost's flate.(*fastEncL1).Encode (flate/level1.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn encode(&mut self, dst: &mut Tokens, src: &[u8]) {
        const INPUT_MARGIN: i32 = 12 - 1;
        const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;
        const SKIP_LOG: i32 = 5;
        const DO_EVERY: i32 = 2;

        self.protect_cur();
        let mut s = self.history.add_block(src);
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            // No tokens; the caller stores or Huffman-codes such input.
            dst.n = src.len();
            return;
        }

        let FastEncL1 { history, table } = self;
        let cur = history.cur;
        let src = &history.hist[..];
        let mut next_emit = s;
        let s_limit = src.len() as i32 - INPUT_MARGIN;
        let mut cv = load64(src, s);
        'outer: loop {
            let mut next_s;
            let mut candidate;
            loop {
                let next_hash = hash5(cv);
                candidate = table[next_hash];
                next_s = s + DO_EVERY + ((s - next_emit) >> SKIP_LOG);
                if next_s > s_limit {
                    break 'outer;
                }
                let mut now = load64(src, next_s);
                table[next_hash] = s + cur;
                let next_hash = hash5(now);
                // Both checks below store `next_s` under this hash.

                let t = candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    table[next_hash] = next_s + cur;
                    break;
                }

                // Do one right away...
                cv = now;
                s = next_s;
                next_s += 1;
                candidate = table[next_hash];
                now >>= 8;
                table[next_hash] = s + cur;

                let t = candidate - cur;
                if s - t < MAX_MATCH_OFFSET && cv as u32 == load32(src, t) {
                    table[next_hash] = next_s + cur;
                    break;
                }
                cv = now;
                s = next_s;
            }

            // A 4-byte match at `s`: extend it, emit, and look for another
            // match right after it.
            loop {
                let mut t = candidate - cur;
                let mut l = matchlen_long(s + 4, t + 4, src) + 4;

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
                    // Index the first pair after the match end (Go tests
                    // s+l+8 here, with s already past the match).
                    if ((s + l + 8) as usize) < src.len() {
                        let cv = load64(src, s);
                        table[hash5(cv)] = s + cur;
                    }
                    break 'outer;
                }

                // Update the table at s-2 and at s, and try a match at s.
                let mut x = load64(src, s - 2);
                let o = cur + s - 2;
                table[hash5(x)] = o;
                x >>= 16;
                let curr_hash = hash5(x);
                candidate = table[curr_hash];
                table[curr_hash] = o + 2;

                let t = candidate - cur;
                if s - t > MAX_MATCH_OFFSET || x as u32 != load32(src, t) {
                    cv = x >> 8;
                    s += 1;
                    break;
                }
            }
        }

        // emitRemainder: nothing at all when no match was found.
        if (next_emit as usize) < src.len() && dst.n != 0 {
            dst.add_literals(&src[next_emit as usize..]);
        }
    }
}
