//! XXH64 with seed 0, streamed (`github.com/cespare/xxhash` `Digest`):
//! the zstd frame's content checksum is its low 32 bits.

const PRIME1: u64 = 11_400_714_785_074_694_791;
const PRIME2: u64 = 14_029_467_366_897_019_727;
const PRIME3: u64 = 1_609_587_929_392_839_161;
const PRIME4: u64 = 9_650_029_242_287_828_579;
const PRIME5: u64 = 2_870_177_450_012_600_261;

#[inline]
fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(PRIME2))
        .rotate_left(31)
        .wrapping_mul(PRIME1)
}

#[inline]
fn merge_round(acc: u64, val: u64) -> u64 {
    (acc ^ round(0, val))
        .wrapping_mul(PRIME1)
        .wrapping_add(PRIME4)
}

#[inline]
fn u64_at(b: &[u8], i: usize) -> u64 {
    u64::from_le_bytes(b[i..i + 8].try_into().unwrap())
}

/// A running XXH64 digest.
#[derive(Clone)]
pub(super) struct Xxh64 {
    v: [u64; 4],
    total: u64,
    mem: [u8; 32],
    n: usize,
}

impl Xxh64 {
    pub(super) fn new() -> Self {
        let mut d = Xxh64 {
            v: [0; 4],
            total: 0,
            mem: [0; 32],
            n: 0,
        };
        d.reset();
        d
    }

    pub(super) fn reset(&mut self) {
        self.v = [
            PRIME1.wrapping_add(PRIME2),
            PRIME2,
            0,
            0u64.wrapping_sub(PRIME1),
        ];
        self.total = 0;
        self.n = 0;
    }

    pub(super) fn write(&mut self, mut b: &[u8]) {
        self.total += b.len() as u64;
        if self.n + b.len() < 32 {
            self.mem[self.n..self.n + b.len()].copy_from_slice(b);
            self.n += b.len();
            return;
        }
        if self.n > 0 {
            let take = 32 - self.n;
            self.mem[self.n..].copy_from_slice(&b[..take]);
            let mem = self.mem;
            self.stripe(&mem);
            b = &b[take..];
            self.n = 0;
        }
        let whole = b.len() / 32 * 32;
        for chunk in b[..whole].chunks_exact(32) {
            self.stripe(chunk);
        }
        let rest = &b[whole..];
        self.mem[..rest.len()].copy_from_slice(rest);
        self.n = rest.len();
    }

    #[inline]
    fn stripe(&mut self, chunk: &[u8]) {
        for (i, v) in self.v.iter_mut().enumerate() {
            *v = round(*v, u64_at(chunk, i * 8));
        }
    }

    pub(super) fn sum64(&self) -> u64 {
        let [v1, v2, v3, v4] = self.v;
        let mut h = if self.total >= 32 {
            let mut h = v1
                .rotate_left(1)
                .wrapping_add(v2.rotate_left(7))
                .wrapping_add(v3.rotate_left(12))
                .wrapping_add(v4.rotate_left(18));
            for v in self.v {
                h = merge_round(h, v);
            }
            h
        } else {
            v3.wrapping_add(PRIME5)
        };
        h = h.wrapping_add(self.total);
        let mut b = &self.mem[..self.n];
        while b.len() >= 8 {
            h ^= round(0, u64_at(b, 0));
            h = h.rotate_left(27).wrapping_mul(PRIME1).wrapping_add(PRIME4);
            b = &b[8..];
        }
        if b.len() >= 4 {
            h ^= u64::from(u32::from_le_bytes(b[..4].try_into().unwrap())).wrapping_mul(PRIME1);
            h = h.rotate_left(23).wrapping_mul(PRIME2).wrapping_add(PRIME3);
            b = &b[4..];
        }
        for &x in b {
            h ^= u64::from(x).wrapping_mul(PRIME5);
            h = h.rotate_left(11).wrapping_mul(PRIME1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(PRIME2);
        h ^= h >> 29;
        h = h.wrapping_mul(PRIME3);
        h ^ (h >> 32)
    }
}

#[cfg(test)]
mod tests {
    use super::Xxh64;

    fn xxh64(parts: &[&[u8]]) -> u64 {
        let mut d = Xxh64::new();
        for p in parts {
            d.write(p);
        }
        d.sum64()
    }

    #[test]
    fn known_digests_in_any_pieces() {
        // Reference values of XXH64 (seed 0).
        assert_eq!(xxh64(&[]), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(&[b"a"]), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(&[b"abc"]), 0x44bc_2cf5_ad77_0999);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = xxh64(&[&long]);
        for cut in [1, 5, 31, 32, 33, 64, 999] {
            assert_eq!(xxh64(&[&long[..cut], &long[cut..]]), whole, "cut at {cut}");
        }
    }
}
