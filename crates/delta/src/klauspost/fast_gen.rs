//! What the fast levels share (`fast_encoder.go`): the history of recent
//! input and the running offset `cur` that table entries are relative to,
//! the hash functions and the match-length helpers.
//!
//! The history keeps up to `allocHistory` bytes and is moved down to the
//! last 32 KiB when full; `reset` advances `cur` past every stored entry
//! instead of clearing the tables, so entries from an earlier stream can
//! never be reached (their distance is always above 32 KiB).

use super::tokens::MAX_STORE_BLOCK_SIZE;

pub(super) const TABLE_BITS: u32 = 15;
pub(super) const TABLE_SIZE: usize = 1 << TABLE_BITS;
pub(super) const MAX_MATCH_OFFSET: i32 = 1 << 15;
pub(super) const MAX_MATCH_LENGTH: i32 = 258;
/// `allocHistory`: the history's capacity, which decides when it moves.
pub(super) const ALLOC_HISTORY: usize = MAX_STORE_BLOCK_SIZE * 5;
/// `bufferReset`: `cur` is rebased before it can overflow.
pub(super) const BUFFER_RESET: i32 =
    ((1i64 << 31) - ALLOC_HISTORY as i64 - MAX_STORE_BLOCK_SIZE as i64 - 1) as i32;
pub(super) const PRIME4BYTES: u32 = 2_654_435_761;
pub(super) const PRIME5BYTES: u64 = 889_523_592_379;
pub(super) const PRIME7BYTES: u64 = 58_295_818_150_454_627;

/// History and offset base of a fast encoder (`fastGen`).
pub(super) struct FastGen {
    pub(super) hist: Vec<u8>,
    pub(super) cur: i32,
}

impl FastGen {
    pub(super) fn new() -> Self {
        FastGen {
            hist: Vec::with_capacity(ALLOC_HISTORY),
            cur: MAX_STORE_BLOCK_SIZE as i32,
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
    pub(super) fn add_block(&mut self, src: &[u8]) -> i32 {
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

    /// The rebasing of a table entry when `cur` is reset while history
    /// remains: entries out of reach become 0.
    pub(super) fn rebase(&self) -> impl Fn(i32) -> i32 + use<> {
        let min_off = self.cur + self.hist.len() as i32 - MAX_MATCH_OFFSET;
        let cur = self.cur;
        move |v| {
            if v <= min_off {
                0
            } else {
                v - cur + MAX_MATCH_OFFSET
            }
        }
    }
}

#[inline]
pub(super) fn load32(b: &[u8], i: i32) -> u32 {
    let i = i as usize;
    u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"))
}

#[inline]
pub(super) fn load64(b: &[u8], i: i32) -> u64 {
    let i = i as usize;
    u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"))
}

/// `hashLen(u, tableBits, 4)`.
#[inline]
pub(super) fn hash4(u: u64) -> usize {
    ((u as u32).wrapping_mul(PRIME4BYTES) >> (32 - TABLE_BITS)) as usize
}

/// `hashLen(u, tableBits, 5)`.
#[inline]
pub(super) fn hash5(u: u64) -> usize {
    ((u << (64 - 40)).wrapping_mul(PRIME5BYTES) >> (64 - TABLE_BITS)) as usize
}

/// `hash7(u, tableBits)`.
#[inline]
pub(super) fn hash7(u: u64) -> usize {
    ((u << 8).wrapping_mul(PRIME7BYTES) >> (64 - TABLE_BITS)) as usize
}

/// `matchLen`: length of the common prefix; `a` is the shorter.
#[inline]
pub(super) fn match_len(a: &[u8], b: &[u8]) -> i32 {
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
pub(super) fn matchlen(s: i32, t: i32, src: &[u8]) -> i32 {
    let s1 = (s as usize + MAX_MATCH_LENGTH as usize - 4).min(src.len());
    match_len(&src[s as usize..s1], &src[t as usize..])
}

/// `matchlenLong`: to the end of the input.
#[inline]
pub(super) fn matchlen_long(s: i32, t: i32, src: &[u8]) -> i32 {
    match_len(&src[s as usize..], &src[t as usize..])
}
