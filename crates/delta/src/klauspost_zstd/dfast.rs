//! The `SpeedDefault` matcher (`enc_dfast.go` `doubleFastEncoder`, after
//! zstd's `zstd_dfast.c`): a long table of 8-byte hashes and a short one
//! of 5-byte hashes, one candidate each, repeat offsets within a block.
//!
//! `encode` works on a stream (matches reach back into the history of
//! earlier blocks); `encode_no_hist` on one block alone (`EncodeAll` of
//! an input of at most one block). Go writes them as two copies that
//! differ in small ways its output depends on; here they are one loop
//! with those differences named.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::block::BlockEnc;
use super::enc_base::{BUFFER_RESET, FastBase, load32, load64, matchlen};
use super::seq::{Seq, ZSTD_MIN_MATCH};

/// `dFastLongTableBits`.
const LONG_TABLE_BITS: u32 = 17;
const LONG_TABLE_SIZE: usize = 1 << LONG_TABLE_BITS;
/// `dFastShortTableBits` (`tableBits`).
const SHORT_TABLE_BITS: u32 = 15;
const SHORT_TABLE_SIZE: usize = 1 << SHORT_TABLE_BITS;
/// `maxMatchLength`.
const MAX_MATCH_LENGTH: i32 = 131_074;
/// Bytes read past a position (8) and the most read ahead (2).
const INPUT_MARGIN: i32 = 8 + 2;
/// Blocks shorter than this are all literals.
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
/// `kSearchStrength`: how fast the search skips ahead without matches.
const K_SEARCH_STRENGTH: i32 = 8;

const PRIME5BYTES: u64 = 889_523_592_379;
const PRIME8BYTES: u64 = 0xcf1b_bcdc_b7a5_6463;

/// `hashLen(u, dFastLongTableBits, 8)`.
#[inline(always)]
fn hash_long(u: u64) -> usize {
    (u.wrapping_mul(PRIME8BYTES) >> (64 - LONG_TABLE_BITS)) as usize
}

/// `hashLen(u, dFastShortTableBits, 5)`.
#[inline(always)]
fn hash_short(u: u64) -> usize {
    ((u << (64 - 40)).wrapping_mul(PRIME5BYTES) >> (64 - SHORT_TABLE_BITS)) as usize
}

/// `tableEntry`: a position (plus `cur`) and its first 4 bytes.
#[derive(Clone, Copy, Default)]
struct TableEntry {
    val: u32,
    offset: i32,
}

pub(super) struct DoubleFastEncoder {
    pub(super) base: FastBase,
    table: Box<[TableEntry]>,
    long_table: Box<[TableEntry]>,
}

impl DoubleFastEncoder {
    pub(super) fn new(window_size: i32, low_mem: bool) -> Self {
        DoubleFastEncoder {
            base: FastBase::new(window_size, low_mem),
            table: vec![TableEntry::default(); SHORT_TABLE_SIZE].into_boxed_slice(),
            long_table: vec![TableEntry::default(); LONG_TABLE_SIZE].into_boxed_slice(),
        }
    }

    /// `Reset` (no dictionary): the tables stay but fall out of reach.
    pub(super) fn reset(&mut self) {
        self.base.reset_base();
    }

    #[cfg(test)]
    pub(super) fn set_cur_below_reset(&mut self, distance: u32) {
        self.base.cur = BUFFER_RESET - distance as i32;
    }

    /// Clears or rebases the tables before `cur` overflows.
    fn protect_cur(&mut self) {
        let e = &mut self.base;
        if e.cur < BUFFER_RESET {
            return;
        }
        if e.hist.is_empty() {
            self.table.fill(TableEntry::default());
            self.long_table.fill(TableEntry::default());
        } else {
            // Keep what is still within reach, relative to the new base.
            let min_off = e.cur + e.hist.len() as i32 - e.max_match_off;
            let (cur, max) = (e.cur, e.max_match_off);
            for t in self.table.iter_mut().chain(self.long_table.iter_mut()) {
                t.offset = if t.offset < min_off {
                    0
                } else {
                    t.offset - cur + max
                };
            }
        }
        e.cur = e.max_match_off;
    }

    /// `Encode`: the sequences and literals of `src` into `blk`, matching
    /// into the history of the frame's earlier blocks too.
    pub(super) fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.protect_cur();
        let s = self.base.add_block(src);
        blk.size = src.len();
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = src.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(src);
            return;
        }
        let (offset1, offset2) = run::<true>(self, blk, None, s);
        blk.recent_offsets[0] = offset1 as u32;
        blk.recent_offsets[1] = offset2 as u32;
    }

    /// `EncodeNoHist`: one block with no history and none to follow.
    pub(super) fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        if self.base.cur >= BUFFER_RESET {
            self.table.fill(TableEntry::default());
            self.long_table.fill(TableEntry::default());
            self.base.cur = self.base.max_match_off;
        }
        blk.size = src.len();
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = src.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(src);
            return;
        }
        run::<false>(self, blk, Some(src), 0);
        // No history is kept: move `cur` past this block so the next user
        // cannot match into it.
        if self.base.cur < BUFFER_RESET {
            self.base.cur += src.len() as i32;
        }
    }
}

/// The match loop from `s` to the end of the input (`src`, or the history
/// when `None`); returns the last two offsets. Go writes it twice: `HIST`
/// is `Encode`, which decides the repeat checks once per match, limits
/// match lengths and bounds-checks the repeat position; otherwise
/// `EncodeNoHist`, which checks repeats on the sequence count as it stands
/// and hashes the short entry of a repeat-2 match from the end of the
/// previous match (Go's code does: `cv1>>8` of the already shifted `cv1`,
/// which is `cv`'s bytes only the first time round).
// Exact port of klauspost's zstd.(*doubleFastEncoder).Encode and EncodeNoHist
// (zstd/enc_dfast.go), the two copies one loop over HIST:
// kept line for line so it can be checked against the original.
#[allow(clippy::too_many_lines)]
fn run<const HIST: bool>(
    e: &mut DoubleFastEncoder,
    blk: &mut BlockEnc,
    src: Option<&[u8]>,
    mut s: i32,
) -> (i32, i32) {
    let cur = e.base.cur;
    let max_match_off = e.base.max_match_off;
    let table = &mut e.table;
    let long_table = &mut e.long_table;
    let src = src.unwrap_or(&e.base.hist);
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
            let next_hash_l = hash_long(cv);
            let next_hash_s = hash_short(cv);
            let candidate_l = long_table[next_hash_l];
            let candidate_s = table[next_hash_s];

            const REP_OFF: i32 = 1;
            let mut rep_index = s - offset1 + REP_OFF;
            let entry = TableEntry {
                offset: s + cur,
                val: cv as u32,
            };
            long_table[next_hash_l] = entry;
            table[next_hash_s] = entry;

            let repeat = if HIST {
                can_repeat && rep_index >= 0
            } else {
                blk.sequences.len() > 2
            };
            if repeat && load32(src, rep_index as usize) == (cv >> (REP_OFF * 8)) as u32 {
                let length =
                    4 + matchlen((s + 4 + REP_OFF) as usize, (rep_index + 4) as usize, src);
                let mut seq = Seq {
                    match_len: (length - ZSTD_MIN_MATCH as i32) as u32,
                    ..Seq::default()
                };
                // Extend backwards, never to zero literals.
                let mut start = s + REP_OFF;
                let start_limit = next_emit + 1;
                let t_min = (s - max_match_off).max(0);
                while rep_index > t_min
                    && start > start_limit
                    && src[(rep_index - 1) as usize] == src[(start - 1) as usize]
                    && (!HIST
                        || seq.match_len < (MAX_MATCH_LENGTH - ZSTD_MIN_MATCH as i32 - 1) as u32)
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
                s += length + REP_OFF;
                next_emit = s;
                if s >= s_limit {
                    break 'encode;
                }
                cv = load64(src, s as usize);
                continue;
            }
            let coffset_l = s - (candidate_l.offset - cur);
            let coffset_s = s - (candidate_s.offset - cur);

            // A long match (only 4 bytes are compared; the hash makes 8
            // likely).
            if coffset_l < max_match_off && cv as u32 == candidate_l.val {
                t = candidate_l.offset - cur;
                break;
            }

            if coffset_s < max_match_off && cv as u32 == candidate_s.val {
                // A short match: is there a long one at s+1?
                const CHECK_AT: i32 = 1;
                let cv = load64(src, (s + CHECK_AT) as usize);
                let next_hash_l = hash_long(cv);
                let candidate_l = long_table[next_hash_l];
                let coffset_l = s - (candidate_l.offset - cur) + CHECK_AT;
                long_table[next_hash_l] = TableEntry {
                    offset: s + CHECK_AT + cur,
                    val: cv as u32,
                };
                if coffset_l < max_match_off && cv as u32 == candidate_l.val {
                    t = candidate_l.offset - cur;
                    s += CHECK_AT;
                    break;
                }
                t = candidate_s.offset - cur;
                break;
            }

            // No match: skip ahead, faster the longer none is found.
            s += 1 + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
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

        // Index match start+1 (long) and start+2 (short), end-2 (long)
        // and end-1 (short).
        let index0 = s - l + 1;
        let index1 = s - 2;
        let cv1 = load64(src, index1 as usize);
        index_match_ends(table, long_table, src, cur, index0, index1);

        cv = load64(src, s as usize);

        if !(if HIST {
            can_repeat
        } else {
            blk.sequences.len() > 2
        }) {
            continue;
        }

        // Repeat offset 2 right after a match.
        loop {
            let o2 = s - offset2;
            if load32(src, o2 as usize) != cv as u32 {
                break;
            }
            let next_hash_s = if HIST {
                hash_short(cv)
            } else {
                hash_short(cv1 >> 16)
            };
            let next_hash_l = hash_long(cv);
            let l = 4 + matchlen((s + 4) as usize, (o2 + 4) as usize, src);
            let entry = TableEntry {
                offset: s + cur,
                val: cv as u32,
            };
            long_table[next_hash_l] = entry;
            table[next_hash_s] = entry;
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

/// Indexes the positions after a match: `index0` (long table) and
/// `index0 + 1` (short), `index1` (long) and `index1 + 1` (short).
#[inline(always)]
fn index_match_ends(
    table: &mut [TableEntry],
    long_table: &mut [TableEntry],
    src: &[u8],
    cur: i32,
    index0: i32,
    index1: i32,
) {
    let cv0 = load64(src, index0 as usize);
    let cv1 = load64(src, index1 as usize);
    long_table[hash_long(cv0)] = TableEntry {
        offset: index0 + cur,
        val: cv0 as u32,
    };
    long_table[hash_long(cv1)] = TableEntry {
        offset: index1 + cur,
        val: cv1 as u32,
    };
    table[hash_short(cv0 >> 8)] = TableEntry {
        offset: index0 + 1 + cur,
        val: (cv0 >> 8) as u32,
    };
    table[hash_short(cv1 >> 8)] = TableEntry {
        offset: index1 + 1 + cur,
        val: (cv1 >> 8) as u32,
    };
}
