//! The matchers' shared state (`enc_base.go` `fastBase`): the history
//! buffer the current block is appended to, the offset base `cur` that
//! table entries are stored relative to, and the frame's running checksum.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::xxhash::Xxh64;

/// `maxCompressedBlockSize`: the largest block (128 KiB).
pub(super) const MAX_COMPRESSED_BLOCK_SIZE: usize = 128 << 10;
/// `MaxWindowSize` of the format as this package allows it.
const MAX_WINDOW_SIZE: i32 = 1 << 29;
/// `bufferReset`: `cur` is rebased before it reaches this.
pub(super) const BUFFER_RESET: i32 = i32::MAX - MAX_WINDOW_SIZE;
/// `MinWindowSize`.
pub(super) const MIN_WINDOW_SIZE: i32 = 1 << 10;

pub(super) struct FastBase {
    /// The offset at the start of `hist`.
    pub(super) cur: i32,
    /// The longest match distance (the window size).
    pub(super) max_match_off: i32,
    /// History followed by the block being encoded. Its capacity is
    /// Go's `cap(e.hist)`, kept explicitly since when the history moves
    /// down depends on it.
    pub(super) hist: Vec<u8>,
    hist_cap: usize,
    pub(super) crc: Xxh64,
    low_mem: bool,
}

impl FastBase {
    pub(super) fn new(max_match_off: i32, low_mem: bool) -> Self {
        FastBase {
            cur: 0,
            max_match_off,
            hist: Vec::new(),
            hist_cap: 0,
            crc: Xxh64::new(),
            low_mem,
        }
    }

    /// `AppendCRC`: the low 32 bits of the XXH64, little-endian.
    pub(super) fn append_crc(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&(self.crc.sum64() as u32).to_le_bytes());
    }

    /// `WindowSize`: the window, or the smallest power of two above a
    /// known smaller input (at least 1 KiB).
    pub(super) fn window_size(&self, size: i64) -> i32 {
        if size > 0 && size < i64::from(self.max_match_off) {
            let b = 1i32 << (64 - size.leading_zeros());
            return b.max(MIN_WINDOW_SIZE);
        }
        self.max_match_off
    }

    /// `addBlock`: appends `src` to the history, first moving the last
    /// window down when it would not fit; returns where `src` starts.
    pub(super) fn add_block(&mut self, src: &[u8]) -> i32 {
        if self.hist.len() + src.len() > self.hist_cap {
            if self.hist_cap == 0 {
                self.ensure_hist(src.len());
            } else {
                assert!(
                    self.hist_cap >= self.max_match_off as usize + MAX_COMPRESSED_BLOCK_SIZE,
                    "history buffer too small for the window"
                );
                let offset = self.hist.len() - self.max_match_off as usize;
                self.hist.copy_within(offset.., 0);
                self.cur += offset as i32;
                self.hist.truncate(self.max_match_off as usize);
            }
        }
        let s = self.hist.len() as i32;
        self.hist.extend_from_slice(src);
        s
    }

    /// `ensureHist`: room for the window and a block (or a second
    /// window), at least 1 MiB, at least `n`.
    pub(super) fn ensure_hist(&mut self, n: usize) {
        if self.hist_cap >= n {
            return;
        }
        let block = MAX_COMPRESSED_BLOCK_SIZE as i32;
        let mut l = self.max_match_off;
        // Go: `(lowMem && maxMatchOff > block) || maxMatchOff <= block`.
        if self.low_mem || self.max_match_off <= block {
            l += block;
        } else {
            l += self.max_match_off;
        }
        if l < 1 << 20 && !self.low_mem {
            l = 1 << 20;
        }
        let l = (l as usize).max(n);
        self.hist = Vec::with_capacity(l);
        self.hist_cap = l;
    }

    /// `resetBase` without a dictionary: moves `cur` so every table entry
    /// is out of reach (or leaves it for the matcher to purge at the
    /// rebase line), empties the history and restarts the checksum.
    pub(super) fn reset_base(&mut self) {
        self.crc.reset();
        if self.cur < BUFFER_RESET {
            self.cur += self.max_match_off + self.hist.len() as i32;
        }
        self.hist.clear();
    }
}

/// `matchlen` / `matchLen`: how many bytes at `s` equal those at `t`
/// (`t < s`), up to the end of `src`.
#[inline]
pub(super) fn matchlen(s: usize, t: usize, src: &[u8]) -> i32 {
    let a = &src[s..];
    let b = &src[t..t + a.len()];
    let mut i = 0;
    while i + 8 <= a.len() {
        let diff = load64(a, i) ^ load64(b, i);
        if diff != 0 {
            return (i + (diff.trailing_zeros() >> 3) as usize) as i32;
        }
        i += 8;
    }
    while i < a.len() {
        if a[i] != b[i] {
            return i as i32;
        }
        i += 1;
    }
    a.len() as i32
}

/// `load6432`.
#[inline(always)]
pub(super) fn load64(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// `load3232`.
#[inline(always)]
pub(super) fn load32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes(b[i..i + 4].try_into().unwrap())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_size_fits_small_inputs() {
        let base = FastBase::new(8 << 20, false);
        // bits.Len(size) as Go computes it: 1000 needs 10 bits -> 1024.
        assert_eq!(base.window_size(1), 1024);
        assert_eq!(base.window_size(1024), 2048);
        assert_eq!(base.window_size(1 << 20), 2 << 20);
        assert_eq!(base.window_size(0), 8 << 20);
        assert_eq!(base.window_size(9 << 20), 8 << 20);
    }

    #[test]
    fn history_moves_down_keeping_the_window() {
        let mut base = FastBase::new(1 << 20, false);
        let block = vec![7u8; MAX_COMPRESSED_BLOCK_SIZE];
        let starts: Vec<i32> = (0..20).map(|_| base.add_block(&block)).collect();
        // Room for two windows (2 MiB): the 17th block moves the last
        // 1 MiB down, starts right after it, and `cur` follows.
        assert_eq!(starts[15], 15 * MAX_COMPRESSED_BLOCK_SIZE as i32);
        assert_eq!(starts[16], 1 << 20);
        assert_eq!(base.cur, 1 << 20);
        assert_eq!(matchlen(10, 3, &[1; 40]), 30);
        assert_eq!(matchlen(10, 3, b"abcdefghijabcdefghijabcdefghiX"), 0);
    }
}
