//! Levels 2 to 9: the hash-chain matcher of `deflate.go` (`deflate`,
//! `findMatch`, `fillDeflate`, `writeBlock`).
//!
//! Levels 2 and 3 take the first match found (`fastSkipHashing`), levels
//! 4 to 9 look one byte ahead for a longer one (lazy matching); the table of
//! `levels` sets how hard each looks. Integers follow Go's `int` (64-bit)
//! so that every comparison is the one Go makes.

use super::bit_writer::HuffmanBitWriter;
use super::parallel::{Oracle, Record, State};
use super::tokens::*;

const LOG_WINDOW_SIZE: u32 = 15;
pub(super) const WINDOW_SIZE: i64 = 1 << LOG_WINDOW_SIZE;
const WINDOW_MASK: i64 = WINDOW_SIZE - 1;
const MIN_MATCH_LENGTH: i64 = 4;
const MAX_MATCH: i64 = MAX_MATCH_LENGTH as i64;
const MAX_FLATE_BLOCK_TOKENS: usize = 1 << 14;
const HASH_BITS: u32 = 17;
const HASH_SIZE: usize = 1 << HASH_BITS;
const HASH_MASK: u32 = (1 << HASH_BITS) - 1;
const MAX_HASH_OFFSET: i64 = 1 << 24;
const SKIP_NEVER: i64 = i32::MAX as i64;
const HASH_MUL: u32 = 0x1e35a7bd;

/// One row of Go's `levels` table.
#[derive(Clone, Copy, Debug)]
struct Params {
    /// With a match this long, search only a quarter of the chain.
    good: i64,
    /// Look for a better match at the next byte only below this length.
    lazy: i64,
    /// Stop searching at a match this long.
    nice: i64,
    /// Most chain entries to try.
    chain: i64,
    /// Levels 2 and 3: matches longer than this skip hashing their bytes;
    /// `SKIP_NEVER` selects lazy matching.
    fast_skip_hashing: i64,
}

/// `levels[2..=9]`.
const LEVELS: [Params; 8] = [
    Params::new(4, 0, 16, 8, 5),
    Params::new(4, 0, 32, 32, 6),
    Params::new(4, 4, 16, 16, SKIP_NEVER),
    Params::new(8, 16, 32, 32, SKIP_NEVER),
    Params::new(8, 16, 128, 128, SKIP_NEVER),
    Params::new(8, 32, 128, 256, SKIP_NEVER),
    Params::new(32, 128, 258, 1024, SKIP_NEVER),
    Params::new(32, 258, 258, 4096, SKIP_NEVER),
];

impl Params {
    const fn new(good: i64, lazy: i64, nice: i64, chain: i64, fast_skip_hashing: i64) -> Self {
        Params {
            good,
            lazy,
            nice,
            chain,
            fast_skip_hashing,
        }
    }
}

/// `hash4`: the hash of the 4 bytes at the start of `b`.
#[inline]
fn hash4(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]).wrapping_mul(HASH_MUL) >> (32 - HASH_BITS)
}

/// The `compressor` of `deflate.go` for levels 2 to 9.
pub(super) struct Lazy {
    params: Params,
    pub(super) w: HuffmanBitWriter,
    /// `sync`: flushing at `Close`.
    sync: bool,

    /// `hashHead[h]`: the latest position (plus `hash_offset`) with hash `h`.
    hash_head: Box<[u32]>,
    /// `hashPrev[p & windowMask]`: the previous position with the same hash.
    hash_prev: Box<[u32]>,
    chain_head: i64,
    hash_offset: i64,

    /// Unprocessed input is `window[index..window_end]`.
    window: Box<[u8]>,
    index: i64,
    window_end: i64,
    /// Where the queued tokens' input starts (`i32::MAX` once slid away).
    block_start: i64,
    /// Whether `window[index - 1]` still needs a token (lazy matching).
    byte_available: bool,
    tokens: Vec<u32>,

    length: i64,
    offset: i64,
    max_insert_index: i64,

    /// Position in the whole input of `window[0]`.
    base: u64,
    role: Role,
}

/// What the matcher loop does besides following Go's parse.
pub(super) enum Role {
    /// Everything: search, tokens, blocks (the whole encoder in one thread).
    Encode,
    /// Search only, recording what it finds and the parse state (a worker
    /// of `parallel`): no tokens, no blocks.
    Search(Box<Record>),
    /// Tokens and blocks, taking each search's outcome from workers: no
    /// hashing, no search.
    Replay(Box<Oracle>),
}

impl Lazy {
    /// `init` and `initDeflate` for `level` in 2..=9.
    pub(super) fn new(level: u8) -> Self {
        assert!((2..=9).contains(&level), "lazy levels are 2 to 9");
        Lazy {
            params: LEVELS[usize::from(level) - 2],
            w: HuffmanBitWriter::new(),
            sync: false,
            hash_head: vec![0; HASH_SIZE].into_boxed_slice(),
            hash_prev: vec![0; WINDOW_SIZE as usize].into_boxed_slice(),
            chain_head: -1,
            hash_offset: 1,
            window: vec![0; 2 * WINDOW_SIZE as usize].into_boxed_slice(),
            index: 0,
            window_end: 0,
            block_start: 0,
            byte_available: false,
            tokens: Vec::with_capacity(MAX_FLATE_BLOCK_TOKENS + 1),
            length: MIN_MATCH_LENGTH - 1,
            offset: 0,
            max_insert_index: 0,
            base: 0,
            role: Role::Encode,
        }
    }

    /// A matcher in `role` whose window starts at `base` in the input
    /// (a multiple of the window size, so that it slides where Go's does).
    pub(super) fn with_role(level: u8, base: u64, role: Role) -> Self {
        debug_assert!(base.is_multiple_of(WINDOW_SIZE as u64));
        Lazy {
            base,
            role,
            ..Lazy::new(level)
        }
    }

    /// Whether `level` parses the same whatever the searches find, so that
    /// workers can search pieces of the input on their own (levels 4 to 9
    /// hash every position; levels 2 and 3 skip those in long matches).
    pub(super) fn hashes_every_position(level: u8) -> bool {
        level >= 4
    }

    pub(super) fn role_mut(&mut self) -> &mut Role {
        &mut self.role
    }

    /// Hands the finished bytes to `out`.
    pub(super) fn drain_to(&mut self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.w.sink.out)?;
        self.w.sink.out.clear();
        Ok(())
    }

    /// Hashes the first `n` positions of a full window without parsing
    /// them, as the history a worker's piece needs; parsing starts at `n`.
    pub(super) fn prime(&mut self, n: i64) {
        debug_assert!(self.index == 0);
        let limit = self.window_end - (MIN_MATCH_LENGTH - 1);
        for index in 0..n.min(limit) {
            self.insert(index);
        }
        self.index = n.min(self.window_end);
    }

    /// Input bytes given so far, counted from the start of the input.
    pub(super) fn filled_to(&self) -> u64 {
        self.base + self.window_end as u64
    }

    /// Fills the window without matching (before `prime`).
    pub(super) fn fill_only(&mut self, b: &[u8]) -> usize {
        self.fill_deflate(b)
    }

    /// `Write` of `b` as one call: `step` before every `fill`, as Go does.
    #[cfg(test)]
    pub(super) fn write(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            self.deflate();
            let n = self.fill_deflate(b);
            b = &b[n..];
        }
    }

    /// Continues a `Write` call begun earlier with more of its bytes: the
    /// matcher runs only on a full window, as it does inside one long call.
    pub(super) fn write_more(&mut self, mut b: &[u8]) {
        while !b.is_empty() {
            if self.window_end == self.window.len() as i64 {
                self.deflate();
            }
            let n = self.fill_deflate(b);
            b = &b[n..];
        }
    }

    /// The `step` of `close`: everything left, then (by the caller) the
    /// final empty stored block.
    pub(super) fn finish(&mut self) {
        self.sync = true;
        self.deflate();
    }

    /// `fillDeflate`: slide the window once the matcher is near its end,
    /// then copy in what fits.
    fn fill_deflate(&mut self, b: &[u8]) -> usize {
        if self.index >= 2 * WINDOW_SIZE - (MIN_MATCH_LENGTH + MAX_MATCH) {
            let w = WINDOW_SIZE as usize;
            self.window.copy_within(w..2 * w, 0);
            self.base += WINDOW_SIZE as u64;
            self.index -= WINDOW_SIZE;
            self.window_end -= WINDOW_SIZE;
            if self.block_start >= WINDOW_SIZE {
                self.block_start -= WINDOW_SIZE;
            } else {
                self.block_start = i64::from(i32::MAX);
            }
            self.hash_offset += WINDOW_SIZE;
            if self.hash_offset > MAX_HASH_OFFSET {
                let delta = self.hash_offset - 1;
                self.hash_offset -= delta;
                self.chain_head -= delta;
                for v in self.hash_prev.iter_mut().chain(self.hash_head.iter_mut()) {
                    *v = if i64::from(*v) > delta {
                        (i64::from(*v) - delta) as u32
                    } else {
                        0
                    };
                }
            }
        }
        let end = self.window_end as usize;
        let n = b.len().min(self.window.len() - end);
        self.window[end..end + n].copy_from_slice(&b[..n]);
        self.window_end += n as i64;
        n
    }

    /// `writeBlock`: the queued tokens, ending at window position `index`.
    fn write_block(&mut self, index: i64) {
        if index > 0 {
            let input = (self.block_start <= index)
                .then(|| &self.window[self.block_start as usize..index as usize]);
            self.block_start = index;
            self.tokens.push(END_BLOCK_MARKER as u32);
            self.w.write_block(&self.tokens, false, input);
        }
        self.tokens.clear();
    }

    /// Records `index` in the hash chains (the inner loop of `deflate`).
    #[inline]
    fn insert(&mut self, index: i64) {
        let i = index as usize;
        let hash = hash4(&self.window[i..i + MIN_MATCH_LENGTH as usize]);
        let head = &mut self.hash_head[(hash & HASH_MASK) as usize];
        self.hash_prev[(index & WINDOW_MASK) as usize] = *head;
        *head = (index + self.hash_offset) as u32;
    }

    /// `findMatch`: the longest match at `pos` longer than `prev_length`,
    /// trying at most `chain` earlier positions from `prev_head`.
    fn find_match(
        &self,
        pos: i64,
        prev_head: i64,
        prev_length: i64,
        lookahead: i64,
    ) -> Option<(i64, i64)> {
        let min_match_look = lookahead.min(MAX_MATCH) as usize;
        let pos_u = pos as usize;
        let win = &self.window[..pos_u + min_match_look];
        let nice = min_match_look.min(self.params.nice as usize);
        let mut tries = self.params.chain;
        let mut length = prev_length as usize;
        if length as i64 >= self.params.good {
            tries >>= 2;
        }
        let mut found = None;
        let w_pos = &win[pos_u..];
        let mut w_end = w_pos[length];
        let min_index = pos - WINDOW_SIZE;
        let hash_prev: &[u32; WINDOW_SIZE as usize] = (&*self.hash_prev)
            .try_into()
            .expect("hashPrev spans the window");

        let mut i = prev_head;
        while tries > 0 {
            // `i` is in 0..pos here, so `i + length < pos + min_match_look`.
            let cand = &win[i as usize..i as usize + min_match_look];
            if w_end == cand[length] {
                let n = common_prefix(cand, w_pos);
                if n > length && (n > MIN_MATCH_LENGTH as usize || pos - i <= 4096) {
                    length = n;
                    found = Some((n as i64, pos - i));
                    if n >= nice {
                        break;
                    }
                    w_end = w_pos[n];
                }
            }
            if i == min_index {
                // hashPrev[i & windowMask] already holds a newer position.
                break;
            }
            i = i64::from(hash_prev[(i & WINDOW_MASK) as usize]) - self.hash_offset;
            if i < min_index || i < 0 {
                break;
            }
            tries -= 1;
        }
        found
    }

    /// `deflate`: tokens for the window, blocks of `maxFlateBlockTokens`.
    // Exact port of Go's flate.(*compressor).deflate (compress/flate/deflate.go):
    // kept line for line so it can be checked against the original.
    #[allow(clippy::too_many_lines)]
    fn deflate(&mut self) {
        let p = self.params;
        let fast = p.fast_skip_hashing != SKIP_NEVER;
        if self.window_end - self.index < MIN_MATCH_LENGTH + MAX_MATCH && !self.sync {
            return;
        }
        self.max_insert_index = self.window_end - (MIN_MATCH_LENGTH - 1);

        let searching = matches!(self.role, Role::Search(_));
        let replaying = matches!(self.role, Role::Replay(_));
        loop {
            assert!(self.index <= self.window_end, "index > windowEnd");
            let lookahead = self.window_end - self.index;
            if lookahead < MIN_MATCH_LENGTH + MAX_MATCH {
                if !self.sync {
                    break;
                }
                if lookahead == 0 && searching {
                    // A worker writes no blocks.
                    break;
                }
                if lookahead == 0 {
                    // Flush the current output block, if any.
                    if self.byte_available {
                        let pending = self.window[(self.index - 1) as usize];
                        self.tokens.push(u32::from(pending));
                        self.byte_available = false;
                    }
                    if !self.tokens.is_empty() {
                        self.write_block(self.index);
                    }
                    break;
                }
            }
            let at = self.base + self.index as u64;
            if let Role::Replay(oracle) = &self.role
                && self.length < MIN_MATCH_LENGTH
                && !fast
            {
                // With no match pending, every step up to the next found
                // match only hands the byte before it out as a literal:
                // take those steps at once.
                let next = oracle
                    .next_at()
                    .map_or(i64::MAX, |n| (n - self.base) as i64);
                let end = next.min(self.window_end - (MIN_MATCH_LENGTH + MAX_MATCH) + 1);
                if end > self.index + 1 {
                    for index in self.index..end {
                        if self.byte_available {
                            self.tokens.push(u32::from(self.window[index as usize - 1]));
                            if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                                self.write_block(index);
                            }
                        }
                        self.byte_available = true;
                    }
                    self.index = end;
                    self.offset = 0;
                    continue;
                }
            }
            if let Role::Search(record) = &mut self.role {
                record.state(
                    at,
                    State::new(self.length, self.offset, self.byte_available),
                );
            }
            if self.index < self.max_insert_index && !replaying {
                let i = self.index as usize;
                let hash = hash4(&self.window[i..i + MIN_MATCH_LENGTH as usize]);
                let head = &mut self.hash_head[(hash & HASH_MASK) as usize];
                self.chain_head = i64::from(*head);
                self.hash_prev[(self.index & WINDOW_MASK) as usize] = self.chain_head as u32;
                *head = (self.index + self.hash_offset) as u32;
            }
            let prev_length = self.length;
            let prev_offset = self.offset;
            self.length = MIN_MATCH_LENGTH - 1;
            self.offset = 0;
            let min_index = (self.index - WINDOW_SIZE).max(0);

            let found = if let Role::Replay(oracle) = &mut self.role {
                oracle.found(at)
            } else if self.chain_head - self.hash_offset >= min_index
                && (fast && lookahead > MIN_MATCH_LENGTH - 1
                    || !fast && lookahead > prev_length && prev_length < p.lazy)
            {
                self.find_match(
                    self.index,
                    self.chain_head - self.hash_offset,
                    MIN_MATCH_LENGTH - 1,
                    lookahead,
                )
            } else {
                None
            };
            if let Some((length, offset)) = found {
                self.length = length;
                self.offset = offset;
                if let Role::Search(record) = &mut self.role {
                    record.found(at, length, offset);
                }
            }

            if fast && self.length >= MIN_MATCH_LENGTH
                || !fast && prev_length >= MIN_MATCH_LENGTH && self.length <= prev_length
            {
                // A match at the previous byte (or, levels 2-3, here) that
                // the current one does not beat: emit it.
                let (length, offset) = if fast {
                    (self.length, self.offset)
                } else {
                    (prev_length, prev_offset)
                };
                if !searching {
                    self.tokens.push(match_token(
                        (length - i64::from(BASE_MATCH_LENGTH)) as u32,
                        (offset - i64::from(BASE_MATCH_OFFSET)) as u32,
                    ));
                }
                // Hash every position up to the end of the match (index and
                // index-1 are in already), as far as the lookahead allows.
                if self.length <= p.fast_skip_hashing {
                    let new_index = if fast {
                        self.index + self.length
                    } else {
                        self.index + prev_length - 1
                    };
                    let mut index = self.index + 1;
                    while index < new_index {
                        if index < self.max_insert_index && !replaying {
                            self.insert(index);
                        }
                        index += 1;
                    }
                    self.index = index;
                    if !fast {
                        self.byte_available = false;
                        self.length = MIN_MATCH_LENGTH - 1;
                    }
                } else {
                    // Long matches (levels 2-3) are not hashed byte by byte.
                    self.index += self.length;
                }
                if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                    // The block includes the current byte.
                    self.write_block(self.index);
                }
            } else {
                if (fast || self.byte_available) && !searching {
                    let i = if fast { self.index } else { self.index - 1 };
                    self.tokens.push(u32::from(self.window[i as usize]));
                    if self.tokens.len() == MAX_FLATE_BLOCK_TOKENS {
                        self.write_block(i + 1);
                    }
                }
                self.index += 1;
                if !fast {
                    self.byte_available = true;
                }
            }
        }
    }
}
