//! `compress.ShannonEntropyBits` (klauspost/compress `compressible.go`):
//! the literal cost SpeedBestCompression scores matches against. It is
//! floating point, so the logarithm is Go's own (`math.Log2` over the
//! fdlibm `math.Log` that Go's amd64 assembly also computes), not the
//! platform's: a last-bit difference could move a `ceil` and with it the
//! matcher's choices.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post) and
//! Go's math package (BSD-3-Clause, The Go Authors).

/// `ShannonEntropyBits`: the bits an ideal order-0 entropy coder needs for
/// `b`, each symbol's share rounded up.
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
            shannon += (-go_log2(n * inv_total) * n).ceil();
        }
    }
    shannon.ceil() as i32
}

/// Go's `math.Log2`: exact for powers of two, else `Log(frac) / ln 2 + exp`.
fn go_log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    go_log(frac) * (1.0 / std::f64::consts::LN_2) + f64::from(exp)
}

/// Go's `math.Frexp` for the positive normal numbers `go_log2` sees
/// (`n / len` with `n <= len`): `x = frac * 2^exp`, `frac` in [0.5, 1).
fn frexp(x: f64) -> (f64, i32) {
    debug_assert!(x.is_normal() && x > 0.0);
    let bits = x.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1022;
    let frac = f64::from_bits(bits & !(0x7ff << 52) | (1022 << 52));
    (frac, exp)
}

/// Go's `math.Log` (FreeBSD's `e_log.c`) for positive normal `x`.
fn go_log(x: f64) -> f64 {
    // Go's constants, by their bits (as Go's log.go notes them).
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
    const L1: f64 = f64::from_bits(0x3fe5_5555_5555_5593);
    const L2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04);
    const L3: f64 = f64::from_bits(0x3fd2_4924_9422_9359);
    const L4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af);
    const L5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de);
    const L6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f);
    const L7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244);
    let (mut f1, mut ki) = frexp(x);
    if f1 < std::f64::consts::SQRT_2 / 2.0 {
        f1 *= 2.0;
        ki -= 1;
    }
    let f = f1 - 1.0;
    let k = f64::from(ki);
    let s = f / (2.0 + f);
    let s2 = s * s;
    let s4 = s2 * s2;
    let t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
    let t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
    let r = t1 + t2;
    let hfsq = 0.5 * f * f;
    k * LN2_HI - ((hfsq - (s * (hfsq + r) + k * LN2_LO)) - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constants_are_gos() {
        // Go's 1/Ln2 and Sqrt2/2 as float64 bits (printed by Go 1.19).
        assert_eq!(
            (1.0 / std::f64::consts::LN_2).to_bits(),
            0x3ff7_1547_652b_82fe
        );
        assert_eq!(
            (std::f64::consts::SQRT_2 / 2.0).to_bits(),
            0x3fe6_a09e_667f_3bcd
        );
        assert_eq!(go_log2(0.25), -2.0);
        assert_eq!(frexp(3.0), (0.75, 2));
    }

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
