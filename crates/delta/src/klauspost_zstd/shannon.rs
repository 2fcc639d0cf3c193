//! `compress.ShannonEntropyBits` (klauspost/compress `compressible.go`):
//! the literal cost SpeedBestCompression scores matches against. It is
//! floating point, so the logarithm is Go's own (`go_math`), not the
//! platform's.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

/// `ShannonEntropyBits`: the bits an ideal order-0 entropy coder needs for
/// `b`, each symbol's share rounded up.
use super::go_math;

pub(super) fn shannon_entropy_bits(b: &[u8]) -> i32 {
    if b.is_empty() {
        return 0;
    }
    let mut hist = [0u32; 256];
    for &c in b {
        hist[c as usize] += 1;
    }
    let mut shannon = 0.0f64;
    let inv_total = 1.0 / b.len() as f64;
    for &v in &hist {
        if v > 0 {
            let n = f64::from(v);
            shannon += (-go_math::log2(n * inv_total) * n).ceil();
        }
    }
    shannon.ceil() as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_bits_match_go() {
        // Chunks of every size class the matcher sees (< 16 bytes is never
        // scored but must still agree), over text, binaries, runs and
        // random bytes, against compress.ShannonEntropyBits itself.
        let mut data = crate::test_inputs::mixed(1 << 20, 7);
        let bash = std::fs::read("/bin/bash").unwrap();
        data.extend_from_slice(&bash[..bash.len().min(1 << 20)]);
        let mut lengths = Vec::new();
        let (mut at, mut i) = (0, 0usize);
        while at < data.len() {
            let n =
                [0, 1, 2, 15, 16, 17, 100, 999, 4096, 65_536, 131_072][i % 11] + (i * 7919) % 313;
            let n = n.min(data.len() - at);
            lengths.push(n);
            at += n;
            i += 1;
        }
        let list: Vec<String> = lengths.iter().map(usize::to_string).collect();
        let out = tender_test_support::kzstd_best_with(&["entropy", &list.join(",")], &data);
        let mut at = 0;
        for (i, &n) in lengths.iter().enumerate() {
            let want = u32::from_le_bytes(out[4 * i..4 * i + 4].try_into().unwrap());
            assert_eq!(
                shannon_entropy_bits(&data[at..at + n]) as u32,
                want,
                "chunk {i} of {n} bytes at {at}"
            );
            at += n;
        }
        assert_eq!(out.len(), 4 * lengths.len());
    }
}
