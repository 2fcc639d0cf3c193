//! The `SpeedFastest` matcher (`enc_fast.go` `fastEncoder`, after zstd's
//! `zstd_fast.c`): one table of 6-byte hashes, probed at two positions,
//! with repeat offsets within a block. zstd level 1 and 2 map to it.
//!
//! Go writes `Encode` (on a stream, matching into the history) and
//! `EncodeNoHist` (one block alone) as two copies; they differ only in the
//! points `HIST` switches here.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::block::BlockEnc;
use super::enc_base::{BUFFER_RESET, FastBase, load32, load64, matchlen};
use super::seq::{Seq, ZSTD_MIN_MATCH};

/// `tableBits`.
const TABLE_BITS: u32 = 15;
const TABLE_SIZE: usize = 1 << TABLE_BITS;
/// `maxMatchLength`.
const MAX_MATCH_LENGTH: i32 = 131_074;
/// Bytes read past a position.
const INPUT_MARGIN: i32 = 8;
/// Blocks shorter than this are all literals.
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 1 + 1 + INPUT_MARGIN as usize;
/// `kSearchStrength`.
const K_SEARCH_STRENGTH: i32 = 6;
/// `stepSize`.
const STEP_SIZE: i32 = 2;

const PRIME6BYTES: u64 = 227_718_039_650_203;

/// `hashLen(u, tableBits, tableFastHashLen)` (6 bytes).
#[inline(always)]
fn hash6(u: u64) -> usize {
    ((u << (64 - 48)).wrapping_mul(PRIME6BYTES) >> (64 - TABLE_BITS)) as usize
}

#[derive(Clone, Copy, Default)]
struct TableEntry {
    val: u32,
    offset: i32,
}

pub(super) struct FastEncoder {
    pub(super) base: FastBase,
    table: Box<[TableEntry]>,
}

impl FastEncoder {
    pub(super) fn new(window_size: i32, low_mem: bool) -> Self {
        FastEncoder {
            base: FastBase::new(window_size, low_mem),
            table: vec![TableEntry::default(); TABLE_SIZE].into_boxed_slice(),
        }
    }

    /// `Reset` (no dictionary).
    pub(super) fn reset(&mut self) {
        self.base.reset_base();
    }

    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        self.base.cur = BUFFER_RESET - distance as i32;
    }

    /// `Encode`: matches may reach into the frame's earlier blocks.
    pub(super) fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        let e = &mut self.base;
        if e.cur >= BUFFER_RESET {
            if e.hist.is_empty() {
                self.table.fill(TableEntry::default());
            } else {
                let min_off = e.cur + e.hist.len() as i32 - e.max_match_off;
                let (cur, max) = (e.cur, e.max_match_off);
                for t in self.table.iter_mut() {
                    t.offset = if t.offset < min_off {
                        0
                    } else {
                        t.offset - cur + max
                    };
                }
            }
            e.cur = e.max_match_off;
        }
        let s = e.add_block(src);
        blk.size = src.len();
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = src.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(src);
            return;
        }
        let (offset1, offset2) = run::<true>(
            &mut self.table,
            blk,
            &self.base.hist,
            s,
            self.base.cur,
            self.base.max_match_off,
        );
        blk.recent_offsets[0] = offset1 as u32;
        blk.recent_offsets[1] = offset2 as u32;
    }

    /// `EncodeNoHist`: one block with no history and none to follow.
    pub(super) fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        if self.base.cur >= BUFFER_RESET {
            self.table.fill(TableEntry::default());
            self.base.cur = self.base.max_match_off;
        }
        blk.size = src.len();
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = src.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(src);
            return;
        }
        run::<false>(
            &mut self.table,
            blk,
            src,
            0,
            self.base.cur,
            self.base.max_match_off,
        );
        // No history is kept: move `cur` past this block.
        if self.base.cur < BUFFER_RESET {
            self.base.cur += src.len() as i32;
        }
    }
}

/// The match loop from `s` to the end of `src`; returns the last two
/// offsets. `HIST`: `Encode` (repeat checks decided once per match, the
/// match length limit, a bounds check of the repeat position) or
/// `EncodeNoHist` (none of these).
// Exact port of klauspost's zstd.(*fastEncoder).Encode and EncodeNoHist
// (zstd/enc_fast.go), the two copies one loop over HIST:
// kept line for line so it can be checked against the original.
#[allow(clippy::too_many_lines)]
fn run<const HIST: bool>(
    table: &mut [TableEntry],
    blk: &mut BlockEnc,
    src: &[u8],
    mut s: i32,
    cur: i32,
    max_match_off: i32,
) -> (i32, i32) {
    let s_limit = src.len() as i32 - INPUT_MARGIN;
    let mut next_emit = s;
    let mut cv = load64(src, s as usize);
    let mut offset1 = blk.recent_offsets[0] as i32;
    let mut offset2 = blk.recent_offsets[1] as i32;

    'encode: loop {
        let mut t: i32;
        // Repeat offsets only once the block has its own.
        let can_repeat = blk.sequences.len() > 2;
        loop {
            let next_hash = hash6(cv);
            let next_hash2 = hash6(cv >> 8);
            let candidate = table[next_hash];
            let candidate2 = table[next_hash2];
            let mut rep_index = s - offset1 + 2;
            table[next_hash] = TableEntry {
                offset: s + cur,
                val: cv as u32,
            };
            table[next_hash2] = TableEntry {
                offset: s + cur + 1,
                val: (cv >> 8) as u32,
            };

            let repeat = if HIST {
                can_repeat && rep_index >= 0
            } else {
                blk.sequences.len() > 2
            };
            if repeat && load32(src, rep_index as usize) == (cv >> 16) as u32 {
                let length = 4 + matchlen((s + 6) as usize, (rep_index + 4) as usize, src);
                let mut seq = Seq {
                    match_len: (length - ZSTD_MIN_MATCH as i32) as u32,
                    ..Seq::default()
                };
                // Extend backwards, never to zero literals.
                let mut start = s + 2;
                let start_limit = next_emit + 1;
                let s_min = (s - max_match_off).max(0);
                while rep_index > s_min
                    && start > start_limit
                    && src[(rep_index - 1) as usize] == src[(start - 1) as usize]
                    && (!HIST || seq.match_len < (MAX_MATCH_LENGTH - ZSTD_MIN_MATCH as i32) as u32)
                {
                    rep_index -= 1;
                    start -= 1;
                    seq.match_len += 1;
                }
                if start != next_emit {
                    blk.literals
                        .extend_from_slice(&src[next_emit as usize..start as usize]);
                    seq.lit_len = (start - next_emit) as u32;
                }
                // Repeat offset 0.
                seq.offset = 1;
                blk.sequences.push(seq);
                s += length + 2;
                next_emit = s;
                if s >= s_limit {
                    break 'encode;
                }
                cv = load64(src, s as usize);
                continue;
            }
            let coffset0 = s - (candidate.offset - cur);
            let coffset1 = s - (candidate2.offset - cur) + 1;
            if coffset0 < max_match_off && cv as u32 == candidate.val {
                t = candidate.offset - cur;
                break;
            }
            if coffset1 < max_match_off && (cv >> 8) as u32 == candidate2.val {
                t = candidate2.offset - cur;
                s += 1;
                break;
            }
            s += STEP_SIZE + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
            if s >= s_limit {
                break 'encode;
            }
            cv = load64(src, s as usize);
        }
        offset2 = offset1;
        offset1 = s - t;

        let mut l = matchlen((s + 4) as usize, (t + 4) as usize, src) + 4;

        // Extend backwards.
        let t_min = (s - max_match_off).max(0);
        while t > t_min
            && s > next_emit
            && src[(t - 1) as usize] == src[(s - 1) as usize]
            && (!HIST || l < MAX_MATCH_LENGTH)
        {
            s -= 1;
            t -= 1;
            l += 1;
        }

        let mut seq = Seq {
            lit_len: (s - next_emit) as u32,
            match_len: (l - ZSTD_MIN_MATCH as i32) as u32,
            offset: (s - t) as u32 + 3,
            ..Seq::default()
        };
        if seq.lit_len > 0 {
            blk.literals
                .extend_from_slice(&src[next_emit as usize..s as usize]);
        }
        s += l;
        blk.sequences.push(seq);
        next_emit = s;
        if s >= s_limit {
            break 'encode;
        }
        cv = load64(src, s as usize);

        // Repeat offset 2 right after a match (once).
        let o2 = s - offset2;
        let check = if HIST {
            can_repeat
        } else {
            blk.sequences.len() > 2
        };
        if check && load32(src, o2 as usize) == cv as u32 {
            let l = 4 + matchlen((s + 4) as usize, (o2 + 4) as usize, src);
            table[hash6(cv)] = TableEntry {
                offset: s + cur,
                val: cv as u32,
            };
            seq.match_len = l as u32 - ZSTD_MIN_MATCH;
            seq.lit_len = 0;
            // With no literals, 1 is repeat offset 2.
            seq.offset = 1;
            s += l;
            next_emit = s;
            blk.sequences.push(seq);
            std::mem::swap(&mut offset1, &mut offset2);
            if s >= s_limit {
                break 'encode;
            }
            cv = load64(src, s as usize);
        }
    }

    if (next_emit as usize) < src.len() {
        blk.literals.extend_from_slice(&src[next_emit as usize..]);
        blk.extra_lits = src.len() - next_emit as usize;
    }
    (offset1, offset2)
}
