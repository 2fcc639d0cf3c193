//! The `SpeedBestCompression` matcher (`enc_best.go` `bestFastEncoder`):
//! what Debian's skopeo 1.9.3 compresses zstd:chunked layers with (zstd
//! level 10, which `EncoderLevelFromZstd` maps here).
//!
//! Two tables, a long one of 8-byte hashes and a short one of 4-byte
//! hashes, each entry keeping the position before it (a chain of two).
//! At every position all four candidates and, once the block has three
//! sequences, the three repeat offsets at `s+1` and `s+3` are scored by
//! [`Match::est_bits`]: the bits the predefined FSE tables would spend on
//! the match against what its bytes would cost as literals at the block's
//! Shannon entropy. A short best match is then challenged by candidates at
//! `s+1` and `s+2` and by one ending where it ends.
//!
//! `encode` works on a stream (matches reach into the history of earlier
//! blocks); `encode_no_hist` (`EncodeAll` of one block) is the same over
//! an emptied history. Dictionaries are not ported: containers/image
//! passes none.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use std::sync::OnceLock;

use super::block::BlockEnc;
use super::enc_base::{BUFFER_RESET, FastBase, load32, load64, matchlen};
use super::fse_predefined::{TABLE_MATCH_LENGTHS, TABLE_OFFSETS, fse_predef_enc};
use super::seq::{Seq, ZSTD_MIN_MATCH, ml_code, of_code};
use super::shannon::shannon_entropy_bits;

/// `bestLongTableBits`.
const LONG_TABLE_BITS: u32 = 22;
const LONG_TABLE_SIZE: usize = 1 << LONG_TABLE_BITS;
/// `bestShortTableBits`.
const SHORT_TABLE_BITS: u32 = 18;
const SHORT_TABLE_SIZE: usize = 1 << SHORT_TABLE_BITS;
/// `maxMatchLength`.
const MAX_MATCH_LENGTH: i32 = 131_074;
/// Bytes read past a position (8) and the most read ahead (4).
const INPUT_MARGIN: i32 = 8 + 4;
/// Blocks shorter than this are all literals.
const MIN_NON_LITERAL_BLOCK_SIZE: usize = 16;
/// `kSearchStrength`: how fast the search skips ahead without matches.
const K_SEARCH_STRENGTH: i32 = 10;
/// A match this long is taken without looking further.
const GOOD_ENOUGH: i32 = 100;
/// `highScore`: the score of no match.
const HIGH_SCORE: i32 = 25_000;

const PRIME4BYTES: u32 = 2_654_435_761;
const PRIME8BYTES: u64 = 0xcf1b_bcdc_b7a5_6463;

/// `hashLen(u, bestLongTableBits, bestLongLen)`: 8 bytes.
#[inline(always)]
fn hash_long(u: u64) -> usize {
    (u.wrapping_mul(PRIME8BYTES) >> (64 - LONG_TABLE_BITS)) as usize
}

/// `hashLen(u, bestShortTableBits, bestShortLen)`: 4 bytes.
#[inline(always)]
fn hash_short(u: u64) -> usize {
    ((u as u32).wrapping_mul(PRIME4BYTES) >> (32 - SHORT_TABLE_BITS)) as usize
}

/// `prevEntry`: a position (plus `cur`) and the one its hash held before.
#[derive(Clone, Copy, Default)]
struct PrevEntry {
    offset: i32,
    prev: i32,
}

/// What a match costs in bits beyond its literal savings: the predefined
/// FSE encoders' `outBits + deltaNbBits >> 16` for each offset and
/// match-length code, the two terms `estBits` adds per match.
struct PredefCosts {
    of: [i32; 32],
    ml: [i32; 53],
}

fn predef_costs() -> &'static PredefCosts {
    static COSTS: OnceLock<PredefCosts> = OnceLock::new();
    COSTS.get_or_init(|| {
        let tables = fse_predef_enc();
        let cost = |table: usize, code: usize| {
            let tt = tables[table].ct.symbol_tt[code];
            i32::from(tt.out_bits) + (tt.delta_nb_bits >> 16) as i32
        };
        PredefCosts {
            of: std::array::from_fn(|code| cost(TABLE_OFFSETS, code)),
            ml: std::array::from_fn(|code| cost(TABLE_MATCH_LENGTHS, code)),
        }
    })
}

/// `match`: a candidate at `s` copying `length` bytes from `offset`, or a
/// repeat (`rep` 1 to 3; -1 for a plain offset), with its estimated cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Match {
    offset: i32,
    s: i32,
    length: i32,
    rep: i32,
    est: i32,
}

impl Match {
    /// No match at `s`.
    fn none(s: i32) -> Match {
        Match {
            offset: 0,
            s,
            length: 0,
            rep: 0,
            est: HIGH_SCORE,
        }
    }

    /// `estBits`: the match's cost in bits minus the literals it saves
    /// (at `bits_per_byte`, scaled by 1024); a match that saves nothing
    /// becomes no match.
    fn est_bits(&mut self, bits_per_byte: i32, costs: &PredefCosts) {
        let mlc = ml_code((self.length - ZSTD_MIN_MATCH as i32) as u32);
        let ofc = if self.rep < 0 {
            of_code((self.s - self.offset) as u32 + 3)
        } else {
            of_code(self.rep as u32)
        };
        self.est = costs.of[ofc as usize] + costs.ml[mlc as usize];
        self.est -= (self.length * bits_per_byte) >> 10;
        if self.est > 0 {
            self.length = 0;
            self.est = HIGH_SCORE;
        }
    }
}

/// What scoring a candidate needs: the history, the window, the literal
/// cost and the cost tables.
struct Scorer<'a> {
    src: &'a [u8],
    max_match_off: i32,
    bits_per_byte: i32,
    costs: &'a PredefCosts,
}

impl Scorer<'_> {
    /// `matchAt`: the match at `s` from `offset` if its first 4 bytes
    /// (`first`) agree and it is within the window, scored.
    #[inline(always)]
    fn match_at(&self, offset: i32, s: i32, first: u32, rep: i32) -> Match {
        if s - offset >= self.max_match_off || load32(self.src, offset as usize) != first {
            return Match::none(s);
        }
        let mut m = Match {
            offset,
            s,
            length: 4 + matchlen(s as usize + 4, offset as usize + 4, self.src),
            rep,
            est: 0,
        };
        m.est_bits(self.bits_per_byte, self.costs);
        m
    }

    /// `bestOf`: the cheaper of two matches, each charged the literals it
    /// leaves before the other's start; `b` on a tie.
    #[inline(always)]
    fn best_of(&self, a: Match, b: Match) -> Match {
        let bpb = self.bits_per_byte;
        if a.est + (((a.s - b.s) * bpb) >> 10) < b.est + (((b.s - a.s) * bpb) >> 10) {
            a
        } else {
            b
        }
    }
}

pub(super) struct BestFastEncoder {
    pub(super) base: FastBase,
    table: Box<[PrevEntry]>,
    long_table: Box<[PrevEntry]>,
}

impl BestFastEncoder {
    pub(super) fn new(window_size: i32, low_mem: bool) -> Self {
        BestFastEncoder {
            base: FastBase::new(window_size, low_mem),
            table: vec![PrevEntry::default(); SHORT_TABLE_SIZE].into_boxed_slice(),
            long_table: vec![PrevEntry::default(); LONG_TABLE_SIZE].into_boxed_slice(),
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

    /// Clears or rebases both tables (entries and their `prev`) before
    /// `cur` overflows.
    fn protect_cur(&mut self) {
        let e = &mut self.base;
        if e.cur < BUFFER_RESET {
            return;
        }
        if e.hist.is_empty() {
            self.table.fill(PrevEntry::default());
            self.long_table.fill(PrevEntry::default());
        } else {
            // Keep what is still within reach, relative to the new base.
            let min_off = e.cur + e.hist.len() as i32 - e.max_match_off;
            let (cur, max) = (e.cur, e.max_match_off);
            for t in self.table.iter_mut().chain(self.long_table.iter_mut()) {
                *t = if t.offset < min_off {
                    PrevEntry::default()
                } else {
                    PrevEntry {
                        offset: t.offset - cur + max,
                        prev: if t.prev < min_off {
                            0
                        } else {
                            t.prev - cur + max
                        },
                    }
                };
            }
        }
        e.cur = e.max_match_off;
    }

    /// `EncodeNoHist`: one block alone, with room for it in the history.
    pub(super) fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.base.ensure_hist(src.len());
        self.encode(blk, src);
    }

    /// `Encode`: the sequences and literals of `src` into `blk`, matching
    /// into the history of the frame's earlier blocks too.
    // Exact port of klauspost's zstd.(*bestFastEncoder).Encode (zstd/enc_best.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    pub(super) fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        self.protect_cur();
        let mut s = self.base.add_block(src);
        blk.size = src.len();
        if src.len() < MIN_NON_LITERAL_BLOCK_SIZE {
            blk.extra_lits = src.len();
            blk.literals.clear();
            blk.literals.extend_from_slice(src);
            return;
        }
        // The literal cost, in bits per byte scaled by 1024; Huffman
        // never goes below 1 bit per byte.
        let bits_per_byte =
            ((i64::from(shannon_entropy_bits(src)) * 1024) / src.len() as i64).max(1024) as i32;

        let cur = self.base.cur;
        let table = &mut self.table;
        let long_table = &mut self.long_table;
        let src = &self.base.hist[..];
        let sc = Scorer {
            src,
            max_match_off: self.base.max_match_off,
            bits_per_byte,
            costs: predef_costs(),
        };
        let max_match_off = sc.max_match_off;
        let s_limit = src.len() as i32 - INPUT_MARGIN;

        let mut next_emit = s;
        let mut cv = load64(src, s as usize);
        let mut offset1 = blk.recent_offsets[0] as i32;
        let mut offset2 = blk.recent_offsets[1] as i32;
        let mut offset3 = blk.recent_offsets[2] as i32;

        'encode: loop {
            // Repeat offsets only once the block has its own.
            let can_repeat = blk.sequences.len() > 2;

            let next_hash_l = hash_long(cv);
            let next_hash_s = hash_short(cv);
            let candidate_l = long_table[next_hash_l];
            let candidate_s = table[next_hash_s];

            let first = cv as u32;
            let mut best = sc.best_of(
                sc.match_at(candidate_l.offset - cur, s, first, -1),
                sc.match_at(candidate_l.prev - cur, s, first, -1),
            );
            best = sc.best_of(best, sc.match_at(candidate_s.offset - cur, s, first, -1));
            best = sc.best_of(best, sc.match_at(candidate_s.prev - cur, s, first, -1));

            if can_repeat && best.length < GOOD_ENOUGH {
                let mut cv32 = (cv >> 8) as u32;
                let mut spp = s + 1;
                best = sc.best_of(best, sc.match_at(spp - offset1, spp, cv32, 1));
                best = sc.best_of(best, sc.match_at(spp - offset2, spp, cv32, 2));
                best = sc.best_of(best, sc.match_at(spp - offset3, spp, cv32, 3));
                if best.length > 0 {
                    cv32 = (cv >> 24) as u32;
                    spp += 2;
                    best = sc.best_of(best, sc.match_at(spp - offset1, spp, cv32, 1));
                    best = sc.best_of(best, sc.match_at(spp - offset2, spp, cv32, 2));
                    best = sc.best_of(best, sc.match_at(spp - offset3, spp, cv32, 3));
                }
            }
            long_table[next_hash_l] = PrevEntry {
                offset: s + cur,
                prev: candidate_l.offset,
            };
            table[next_hash_s] = PrevEntry {
                offset: s + cur,
                prev: candidate_s.offset,
            };

            // Look further ahead, unless the match is long already.
            if best.length < GOOD_ENOUGH {
                if best.length < 4 {
                    // No match: skip ahead, faster the longer none was found.
                    s += 1 + ((s - next_emit) >> (K_SEARCH_STRENGTH - 1));
                    if s >= s_limit {
                        break 'encode;
                    }
                    cv = load64(src, s as usize);
                    continue;
                }

                s += 1;
                let candidate_s = table[hash_short(cv >> 8)];
                cv = load64(src, s as usize);
                let cv2 = load64(src, s as usize + 1);
                let candidate_l = long_table[hash_long(cv)];
                let candidate_l2 = long_table[hash_long(cv2)];

                // Short at s+1.
                best = sc.best_of(
                    best,
                    sc.match_at(candidate_s.offset - cur, s, cv as u32, -1),
                );
                // Long at s+1, s+2.
                best = sc.best_of(
                    best,
                    sc.match_at(candidate_l.offset - cur, s, cv as u32, -1),
                );
                best = sc.best_of(best, sc.match_at(candidate_l.prev - cur, s, cv as u32, -1));
                best = sc.best_of(
                    best,
                    sc.match_at(candidate_l2.offset - cur, s + 1, cv2 as u32, -1),
                );
                best = sc.best_of(
                    best,
                    sc.match_at(candidate_l2.prev - cur, s + 1, cv2 as u32, -1),
                );

                // A candidate for where the best match ends may give a
                // better match for all of it.
                let s_at = best.s + best.length;
                if s_at < s_limit {
                    let candidate_end = long_table[hash_long(load64(src, s_at as usize))];
                    let pos = candidate_end.offset - cur - best.length;
                    if pos >= 0 {
                        let first = load32(src, best.s as usize);
                        let mut best_end = sc.best_of(best, sc.match_at(pos, best.s, first, -1));
                        let pos = candidate_end.prev - cur - best.length;
                        if pos >= 0 {
                            best_end = sc.best_of(best_end, sc.match_at(pos, best.s, first, -1));
                        }
                        best = best_end;
                    }
                }
            }

            if best.rep > 0 {
                // A repeat offset.
                s = best.s;
                let mut seq = Seq {
                    match_len: (best.length - ZSTD_MIN_MATCH as i32) as u32,
                    ..Seq::default()
                };
                // Extend backwards, stopping short of 0 literals (which
                // would renumber the repeat offsets).
                let mut start = best.s;
                let start_limit = next_emit + 1;
                let t_min = (s - max_match_off).max(0);
                let mut rep_index = best.offset;
                while rep_index > t_min
                    && start > start_limit
                    && src[rep_index as usize - 1] == src[start as usize - 1]
                    && seq.match_len < (MAX_MATCH_LENGTH - ZSTD_MIN_MATCH as i32 - 1) as u32
                {
                    rep_index -= 1;
                    start -= 1;
                    seq.match_len += 1;
                }
                // `addLiterals`.
                if start != next_emit {
                    blk.literals
                        .extend_from_slice(&src[next_emit as usize..start as usize]);
                    seq.lit_len = (start - next_emit) as u32;
                }
                seq.offset = best.rep as u32;
                blk.sequences.push(seq);

                // Index match start+1 (long) -> s - 1.
                let mut index0 = s;
                s = best.s + best.length;
                next_emit = s;
                if s >= s_limit {
                    break 'encode;
                }
                let mut off = index0 + cur;
                while index0 < s - 1 {
                    let cv0 = load64(src, index0 as usize);
                    let h0 = hash_long(cv0);
                    let h1 = hash_short(cv0);
                    long_table[h0] = PrevEntry {
                        offset: off,
                        prev: long_table[h0].offset,
                    };
                    table[h1] = PrevEntry {
                        offset: off,
                        prev: table[h1].offset,
                    };
                    off += 1;
                    index0 += 1;
                }
                match best.rep {
                    2 => std::mem::swap(&mut offset1, &mut offset2),
                    3 => (offset1, offset2, offset3) = (offset3, offset1, offset2),
                    _ => {}
                }
                cv = load64(src, s as usize);
                continue;
            }

            // A match: update the recent offsets.
            s = best.s;
            let mut t = best.offset;
            (offset1, offset2, offset3) = (s - t, offset1, offset2);
            let mut l = best.length;

            // Extend backwards.
            let t_min = (s - max_match_off).max(0);
            while t > t_min
                && s > next_emit
                && src[t as usize - 1] == src[s as usize - 1]
                && l < MAX_MATCH_LENGTH
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

            // Index match start+1 (long) -> s - 1, every position.
            let mut index0 = s - l + 1;
            while index0 < s - 1 {
                let cv0 = load64(src, index0 as usize);
                let h0 = hash_long(cv0);
                let h1 = hash_short(cv0);
                let off = index0 + cur;
                long_table[h0] = PrevEntry {
                    offset: off,
                    prev: long_table[h0].offset,
                };
                table[h1] = PrevEntry {
                    offset: off,
                    prev: table[h1].offset,
                };
                index0 += 1;
            }

            cv = load64(src, s as usize);
            if !can_repeat {
                continue;
            }

            // Repeat offset 2 right after the match, as often as it holds.
            loop {
                let o2 = s - offset2;
                if load32(src, o2 as usize) != cv as u32 {
                    break;
                }
                // Index it, since we have it.
                let next_hash_s = hash_short(cv);
                let next_hash_l = hash_long(cv);
                // At least 4 bytes; no looking back, we come from a match.
                let l = 4 + matchlen(s as usize + 4, o2 as usize + 4, src);
                long_table[next_hash_l] = PrevEntry {
                    offset: s + cur,
                    prev: long_table[next_hash_l].offset,
                };
                table[next_hash_s] = PrevEntry {
                    offset: s + cur,
                    prev: table[next_hash_s].offset,
                };
                seq.match_len = l as u32 - ZSTD_MIN_MATCH;
                seq.lit_len = 0;
                // With no literals, repeat code 1 is offset 2.
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
        blk.recent_offsets = [offset1 as u32, offset2 as u32, offset3 as u32];
    }
}

#[cfg(test)]
mod tests {
    use super::super::block::BlockRules;
    use super::super::encoder::ZstdVersion;
    use super::*;
    use crate::test_inputs::{binaries_tar, mixed};

    const WINDOW: i32 = 32 << 20;

    /// How the matcher is driven, as `scripts/kzstd-best seqs` does.
    #[derive(Clone, Copy, PartialEq)]
    enum Path {
        /// `Encode` over each frame's blocks (the streaming Encoder).
        Hist,
        /// `EncodeNoHist` of single-block frames (`EncodeAll`).
        NoHist,
    }

    /// What the matcher leaves in each block, in export_best.go's layout.
    fn dump(blk: &BlockEnc, out: &mut Vec<u8>) {
        let mut u32 = |v: u32| out.extend_from_slice(&v.to_le_bytes());
        u32(blk.literals.len() as u32);
        out.extend_from_slice(&blk.literals);
        let mut u32 = |v: u32| out.extend_from_slice(&v.to_le_bytes());
        u32(blk.sequences.len() as u32);
        for s in &blk.sequences {
            u32(s.lit_len);
            u32(s.match_len);
            u32(s.offset);
        }
        u32(blk.extra_lits as u32);
        u32(blk.size as u32);
        for o in blk.recent_offsets {
            u32(o);
        }
    }

    /// Runs the port as kzstd-best does over `frames` (block lengths) of
    /// `data`, with `cur` `cur_below_reset` bytes before the rebase line
    /// after the first frame's reset if given; also returns the final `cur`.
    fn rust_seqs(
        window: i32,
        path: Path,
        frames: &[Vec<usize>],
        data: &[u8],
        cur_below_reset: Option<u32>,
    ) -> (Vec<u8>, i32) {
        let mut enc = BestFastEncoder::new(window, false);
        let mut blk = BlockEnc::new(BlockRules::of(ZstdVersion::V1_15_12));
        let reset = |enc: &mut BestFastEncoder, blk: &mut BlockEnc| {
            blk.reset(None);
            blk.init_new_encode();
            enc.reset();
        };
        reset(&mut enc, &mut blk);
        let mut cur_below_reset = cur_below_reset;
        let (mut out, mut at) = (Vec::new(), 0);
        for frame in frames {
            if path == Path::Hist {
                reset(&mut enc, &mut blk);
            }
            if let Some(distance) = cur_below_reset.take() {
                enc.set_cur_below_reset(distance);
            }
            for &n in frame {
                let src = &data[at..at + n];
                at += n;
                blk.reset(None);
                if path == Path::NoHist {
                    reset(&mut enc, &mut blk);
                    enc.encode_no_hist(&mut blk, src);
                } else {
                    enc.encode(&mut blk, src);
                }
                dump(&blk, &mut out);
            }
        }
        (out, enc.base.cur)
    }

    fn go_seqs(window: i32, path: Path, frames: &[Vec<usize>], data: &[u8]) -> Vec<u8> {
        let list: Vec<String> = frames
            .iter()
            .map(|f| f.iter().map(usize::to_string).collect::<Vec<_>>().join(","))
            .collect();
        let path = if path == Path::Hist { "hist" } else { "nohist" };
        tender_test_support::kzstd_best_with(
            &["seqs", &window.to_string(), path, &list.join("/")],
            data,
        )
    }

    /// Compares the port's blocks with Go's, naming the first that differs.
    fn check(name: &str, window: i32, path: Path, frames: &[Vec<usize>], data: &[u8]) {
        let total: usize = frames.iter().flatten().sum();
        let data = &data[..total];
        let want = go_seqs(window, path, frames, data);
        let (got, _) = rust_seqs(window, path, frames, data, None);
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b);
            panic!(
                "{name}: sequences differ from Go's at dump byte {at:?} ({} vs {} bytes)",
                got.len(),
                want.len()
            );
        }
    }

    /// A block of `n` bytes `k` times.
    fn blocks(n: usize, k: usize) -> Vec<usize> {
        vec![n; k]
    }

    #[test]
    fn streaming_sequences_match_go() {
        let tar = binaries_tar(3 << 20, 400 << 10, |_| {});
        let text = mixed(2 << 20, 3);
        let full = MAX_BLOCK;
        // Real binaries: 24 full blocks and a tail, matches reaching back
        // across blocks.
        let n = tar.len() / full;
        let mut frame = blocks(full, n.min(24));
        frame.push(tar.len().min(24 * full + 777) - frame.iter().sum::<usize>());
        check("tar", WINDOW, Path::Hist, &[frame], &tar);
        // Mixed text/runs/random in uneven blocks, several frames.
        let frames = vec![
            vec![1, 15, 16, 17, 100, full, full - 1, 5000],
            vec![full, 31, full],
            vec![],
            vec![full; 4],
        ];
        check("mixed", WINDOW, Path::Hist, &frames, &text);
        // A small window: offsets beyond it must be refused and the
        // history moves down often.
        check(
            "window 64K",
            64 << 10,
            Path::Hist,
            &[blocks(full / 2, 14)],
            &tar,
        );
    }

    const MAX_BLOCK: usize = super::super::enc_base::MAX_COMPRESSED_BLOCK_SIZE;

    #[test]
    fn single_block_sequences_match_go() {
        let tar = binaries_tar(2 << 20, 300 << 10, |_| {});
        let text = mixed(1 << 20, 11);
        let mut data = Vec::new();
        let mut frame = Vec::new();
        // Every small size, then sizes around the block, from both inputs.
        for n in (0..40).chain([
            64,
            100,
            1000,
            4095,
            4096,
            4097,
            65_536,
            MAX_BLOCK - 1,
            MAX_BLOCK,
        ]) {
            let from = if frame.len() % 2 == 0 { &tar } else { &text };
            let start = (frame.len() * 7919) % (from.len() - n);
            data.extend_from_slice(&from[start..start + n]);
            frame.push(n);
        }
        // Incompressible and all-same blocks.
        let mut x = 0x1234_5678u32;
        data.extend((0..50_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        }));
        frame.push(50_000);
        data.extend(std::iter::repeat_n(b'a', MAX_BLOCK));
        frame.push(MAX_BLOCK);
        // One matcher for all, as an Encoder's EncodeAll pool does: each
        // reset moves `cur` on by the window, so the rebase of `cur`
        // happens along the way too (every ~48 frames at 32 MiB).
        let frames: Vec<Vec<usize>> = frame.iter().map(|&n| vec![n]).collect();
        check("single blocks", WINDOW, Path::NoHist, &frames, &data);
        let many: Vec<Vec<usize>> = (0..120).map(|i| vec![100 + i * 37]).collect();
        check("120 frames", WINDOW, Path::NoHist, &many, &tar);
    }

    #[test]
    fn rebasing_cur_keeps_what_is_in_reach() {
        // With a 256 KiB window the history (1 MiB) moves down by 768 KiB
        // at the 9th block; starting 384 KiB below the rebase line, that
        // takes `cur` over it, so the 10th block rebases the tables in the
        // middle of the stream. The sequences must be those of a matcher
        // that never rebased, and Go's.
        let tar = binaries_tar(2 << 20, 300 << 10, |_| {});
        let frames = vec![blocks(MAX_BLOCK, 12)];
        let data = &tar[..12 * MAX_BLOCK];
        let window = 256 << 10;
        let (plain, _) = rust_seqs(window, Path::Hist, &frames, data, None);
        let (rebased, cur) = rust_seqs(
            window,
            Path::Hist,
            &frames,
            data,
            Some(3 * MAX_BLOCK as u32),
        );
        assert!(cur < 4 << 20, "cur {cur} was not rebased");
        assert!(plain == rebased, "rebasing changed the sequences");
        assert!(plain == go_seqs(window, Path::Hist, &frames, data));
    }
}

/// The whole encoder at zstd level 10 (what Debian's skopeo 1.9.3 writes
/// zstd:chunked layers with) against `scripts/kzstd -level=10`: every
/// output byte (sequences, which show where a difference starts, are
/// compared matcher-only in `tests` above, and here at the window edges).
#[cfg(test)]
mod level10 {
    use super::super::encoder::{EncoderOptions, Level, ZstdEncoder, ZstdVersion};
    use super::super::tests::{Feed, assert_same_bytes, assert_same_sequences, random};
    use crate::test_inputs::{binaries_tar, mixed};

    const BLOCK: usize = 128 << 10;

    fn feed() -> Feed {
        Feed {
            best: true,
            ..Feed::default()
        }
    }

    #[test]
    fn small_inputs_and_block_edges_match_go() {
        // Up to one block: EncodeAll (one segment, no history); above: the
        // stream, with history across blocks.
        for n in [0, 1, 15, 16, 17, 31, 32, 33, 100, 1024, 1025, 5000] {
            assert_same_bytes(&format!("mixed({n})"), &feed(), &mixed(n, 1));
        }
        for n in [
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            2 * BLOCK - 1,
            2 * BLOCK,
            2 * BLOCK + 1,
        ] {
            assert_same_bytes(&format!("mixed({n})"), &feed(), &mixed(n, 2));
        }
    }

    #[test]
    fn real_binaries_match_go() {
        let tar = binaries_tar(3 << 20, usize::MAX, |_| {});
        assert!(tar.len() > 2 << 20, "too little in /usr/bin");
        assert_same_bytes("tar of /usr/bin", &feed(), &tar);
    }

    #[test]
    fn content_kinds_match_go() {
        let skewed: Vec<u8> = random(2 * BLOCK + 500, 8).iter().map(|b| b % 16).collect();
        let text: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz0123456789"
            .iter()
            .copied()
            .cycle()
            .take(2 * BLOCK + 99)
            .collect();
        for (what, plain) in [
            ("random", random(3 * BLOCK + 10, 7)),
            ("zeros", vec![0u8; 3 * BLOCK + 7]),
            ("repeating text", text),
            ("skewed", skewed),
        ] {
            assert_same_bytes(what, &feed(), &plain);
        }
    }

    #[test]
    fn chunked_frames_and_write_sizes_match_go() {
        // zstd:chunked: a frame per file, most of one block (EncodeAll),
        // some longer (the stream). Every Reset moves `cur` on by the 32
        // MiB window, so after ~48 frames both matchers pass the rebase
        // line and clear their tables.
        let tar = binaries_tar(3 << 20, usize::MAX, |_| {});
        let frames: Vec<usize> = (0..140)
            .map(|i| match i % 7 {
                0 => 0,
                1 => 3 * BLOCK + i,
                2 => BLOCK,
                _ => 50 + i * 97,
            })
            .collect();
        let chunked = Feed {
            frames: frames.clone(),
            ..feed()
        };
        assert_same_bytes("140 frames", &chunked, &tar);
        // Write calls of any size and Flush give the same frames as
        // io.Copy (ReadFrom).
        let plain = mixed(900_000, 3);
        let frames = vec![0, 1, 1000, 70_000, BLOCK, BLOCK + 1, 5, 0, 17, 33];
        for (write, flush) in [(1000, 0), (77_777, 100_000)] {
            let feed = Feed {
                frames: frames.clone(),
                write,
                flush,
                ..feed()
            };
            assert_same_bytes("frames", &feed, &plain);
        }
        // Go encodes blocks on one goroutine (concurrency 1) or hands them,
        // their recent offsets and entropy tables to others: same bytes.
        for concurrency in [1, 4] {
            let feed = Feed {
                frames: vec![5000, 3 * BLOCK + 7, 200_000],
                concurrency,
                ..feed()
            };
            assert_same_bytes("frames", &feed, &plain);
        }
    }

    #[test]
    fn the_window_edges_match_go() {
        // A 64 KiB window (WithWindowSize after the level, as Go applies
        // options in order): the history moves down every 960 KiB and
        // matches reach just within and just beyond the window.
        let mut plain = random(200_000, 11);
        plain.extend_from_within(..100_000);
        plain.extend_from_within(60_000..140_000);
        plain.extend(mixed(1_500_000, 12));
        plain.extend_from_within(1_000_000..1_100_000);
        let feed = Feed {
            window: 1 << 16,
            ..feed()
        };
        assert_same_sequences("window edges", &feed, &plain);
        assert_same_bytes("window edges", &feed, &plain);
    }

    #[test]
    fn skopeo_zstd_chunked_frames_rebuild_exactly() {
        // Debian's skopeo 1.9.3 writes zstd:chunked (containers/storage's
        // chunked writer) at level 10: a frame per file (Close, Reset),
        // then the table of contents in skippable frames. Every data frame
        // of a real layer of binaries is the port's frame of its content;
        // a frame ending in an empty last block was flushed before Close.
        let dir = tempfile::tempdir().unwrap();
        let tar = binaries_tar(3 << 20, 1 << 20, |_| {});
        let input = oci_layout(&dir.path().join("in"), &tar);
        let out = dir.path().join("out");
        let output = tender_test_support::skopeo(&[
            "--insecure-policy",
            "copy",
            "--quiet",
            "--dest-compress",
            "--dest-compress-format",
            "zstd:chunked",
            &format!("oci:{}:v", input.display()),
            &format!("oci:{}:v", out.display()),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The layer is the largest blob.
        let blob = std::fs::read_dir(out.join("blobs/sha256"))
            .unwrap()
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .max_by_key(Vec::len)
            .unwrap();
        let options = EncoderOptions::new(ZstdVersion::V1_15_12, Level::Best);
        let mut e = ZstdEncoder::new(Vec::new(), &options);
        let (mut frames, mut plain_total) = (0, 0);
        for frame in data_frames(&blob) {
            let plain = zstd::decode_all(frame).unwrap();
            plain_total += plain.len();
            e.reset();
            e.write_all(&plain).unwrap();
            // No content size and an empty last block: flushed, then closed.
            let flushed = frame[4] & 0xe4 == 0x04 && frame[frame.len() - 7..][..3] == [1, 0, 0];
            if flushed {
                e.flush().unwrap();
            }
            e.close().unwrap();
            let ours = std::mem::take(e.out_mut());
            assert!(
                ours == frame,
                "frame {frames} ({} bytes of plain text) differs",
                plain.len()
            );
            frames += 1;
        }
        assert_eq!(plain_total, tar.len(), "the frames hold the whole tar");
        assert!(frames > 100, "only {frames} frames");
    }

    /// An OCI layout at `dir` with one uncompressed layer `tar` (tag v).
    fn oci_layout(dir: &std::path::Path, tar: &[u8]) -> std::path::PathBuf {
        let blobs = dir.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            let digest = tender_test_support::sha256_digest(data);
            std::fs::write(blobs.join(&digest[7..]), data).unwrap();
            (digest, data.len())
        };
        let (layer, layer_size) = put(tar);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer}"]}}}}"#
        );
        let (config, config_size) = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer}","size":{layer_size}}}]}}"#
        );
        let (manifest, manifest_size) = put(manifest.as_bytes());
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest}","size":{manifest_size},"annotations":{{"org.opencontainers.image.ref.name":"v"}}}}]}}"#
        );
        std::fs::write(dir.join("index.json"), index).unwrap();
        dir.to_path_buf()
    }

    /// The zstd frames of `blob` (skippable frames left out), each whole,
    /// from their frame and block headers (RFC 8878 §3.1.1).
    fn data_frames(blob: &[u8]) -> Vec<&[u8]> {
        let mut frames = Vec::new();
        let mut i = 0;
        while i < blob.len() {
            let magic = u32::from_le_bytes(blob[i..i + 4].try_into().unwrap());
            if magic & 0xffff_fff0 == 0x184d_2a50 {
                let size = u32::from_le_bytes(blob[i + 4..i + 8].try_into().unwrap());
                i += 8 + size as usize;
                continue;
            }
            assert_eq!(magic, 0xfd2f_b528, "not a zstd frame at {i}");
            let start = i;
            let fhd = blob[i + 4];
            let single = fhd & 0x20 != 0;
            i += 5 + usize::from(!single) + [0, 1, 2, 4][usize::from(fhd & 3)];
            i += [usize::from(single), 2, 4, 8][usize::from(fhd >> 6)];
            loop {
                let h = u32::from_le_bytes([blob[i], blob[i + 1], blob[i + 2], 0]);
                i += 3 + if (h >> 1) & 3 == 1 {
                    1
                } else {
                    h as usize >> 3
                };
                if h & 1 == 1 {
                    break;
                }
            }
            i += if fhd & 4 != 0 { 4 } else { 0 };
            frames.push(&blob[start..i]);
        }
        frames
    }

    #[test]
    fn best_is_modelled_for_1_15_12_only() {
        // 1.15.13 changed the matcher's choices: no later release's
        // SpeedBestCompression bytes can be promised.
        for version in ZstdVersion::ALL {
            assert_eq!(
                Level::Best.modelled_in(version),
                version == ZstdVersion::V1_15_12,
                "{version:?}"
            );
        }
        let refused =
            std::panic::catch_unwind(|| EncoderOptions::new(ZstdVersion::V1_16_4, Level::Best));
        assert!(refused.is_err(), "an unmodelled release was accepted");
        // WithEncoderLevel's window, unless WithWindowSize follows.
        let o = EncoderOptions::new(ZstdVersion::V1_15_12, Level::Best);
        assert_eq!(o.window_size, 32 << 20);
        assert_eq!(o.with_window_size(1 << 20).unwrap().window_size, 1 << 20);
    }

    #[test]
    fn stream_frames_declare_a_32_mib_window() {
        // Frame header descriptor 0x78 (2^(10 + 15) * 1 = 32 MiB), as
        // skopeo 1.9.3's zstd:chunked layers carry it.
        let out = super::super::tests::ours(&feed(), &mixed(3 * BLOCK, 5)).0;
        assert_eq!(&out[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(out[4] & 0x20, 0, "not single-segment");
        assert_eq!(out[5], 0x78);
    }
}

#[cfg(test)]
mod bench {
    use super::super::block::{BlockEnc, BlockRules};
    use super::super::encoder::{EncoderOptions, Level, ZstdEncoder, ZstdVersion};
    use super::BestFastEncoder;
    use crate::test_inputs::binaries_tar;

    /// Release-mode speed at level 10 on a tar of real binaries, the
    /// matcher alone and the whole encoder, against Go's encoder
    /// (`scripts/kzstd -level=10`, process start included):
    /// `cargo test --release -p tender-delta best::bench -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn speed_on_real_binaries() {
        let tar = binaries_tar(48 << 20, usize::MAX, |_| {});
        let mb = tar.len() as f64 / 1e6;
        let options = EncoderOptions::new(ZstdVersion::V1_15_12, Level::Best);

        let start = std::time::Instant::now();
        let mut m = BestFastEncoder::new(32 << 20, false);
        let mut blk = BlockEnc::new(BlockRules::of(options.version));
        blk.init_new_encode();
        m.reset();
        for block in tar.chunks(128 << 10) {
            blk.reset(None);
            m.encode(&mut blk, block);
        }
        let matcher = mb / start.elapsed().as_secs_f64();

        let start = std::time::Instant::now();
        let mut e = ZstdEncoder::new(Vec::with_capacity(tar.len()), &options);
        e.read_from(&mut &tar[..]).unwrap();
        e.close().unwrap();
        let out = e.into_inner();
        let whole = mb / start.elapsed().as_secs_f64();

        let start = std::time::Instant::now();
        let go = tender_test_support::kzstd_with(&["-level=10"], &tar);
        let go_speed = mb / start.elapsed().as_secs_f64();
        assert!(go == out, "not Go's bytes");
        println!(
            "level 10, {} bytes -> {} bytes: matcher {matcher:.1} MB/s, encoder {whole:.1} MB/s, \
             Go's encoder {go_speed:.1} MB/s",
            tar.len(),
            out.len()
        );
    }
}
