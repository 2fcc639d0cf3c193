//! Go's `math.Log2` and `math.Log` (the portable algorithm, FreeBSD's
//! `e_log.c`, which Go's amd64 assembly follows): klauspost's float
//! estimates (huff0's `minSize`, `ShannonEntropyBits`) round as Go's do
//! only with Go's logarithm, and a last-bit difference could change a
//! `ceil` and with it an encoder's choice.
//!
//! Port of Go's math package (BSD-3-Clause, The Go Authors).

/// `math.Log2`.
pub(super) fn log2(x: f64) -> f64 {
    let (frac, exp) = frexp(x);
    // Make sure exact powers of two give an exact answer.
    if frac == 0.5 {
        return f64::from(exp - 1);
    }
    // Go's constant `1/Ln2` is log2(e), rounded once.
    log(frac) * std::f64::consts::LOG2_E + f64::from(exp)
}

/// `math.Frexp` for the finite positive values `log2` gets.
fn frexp(f: f64) -> (f64, i32) {
    if f == 0.0 || f.is_infinite() || f.is_nan() {
        return (f, 0);
    }
    let (mut f, mut exp) = (f, 0i32);
    // Normalize subnormals.
    if f.abs() < f64::MIN_POSITIVE {
        f *= (1u64 << 52) as f64;
        exp = -52;
    }
    let mut x = f.to_bits();
    exp += ((x >> 52) & 0x7ff) as i32 - 1022;
    x &= !(0x7ffu64 << 52);
    x |= 1022u64 << 52;
    (f64::from_bits(x), exp)
}

/// `math.log` (FreeBSD's `e_log.c` as Go transcribes it; the constants
/// by their bits, as Go's source notes them).
fn log(x: f64) -> f64 {
    const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 6.93147180369123816490e-01
    const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.90821492927058770002e-10
    const L1: f64 = f64::from_bits(0x3fe5_5555_5555_5593); // 6.666666666666735130e-01
    const L2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04); // 3.999999999940941908e-01
    const L3: f64 = f64::from_bits(0x3fd2_4924_9422_9359); // 2.857142874366239149e-01
    const L4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af); // 2.222219843214978396e-01
    const L5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de); // 1.818357216161805012e-01
    const L6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f); // 1.531383769920937332e-01
    const L7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244); // 1.479819860511658591e-01

    if x.is_nan() || x.is_infinite() && x > 0.0 {
        return x;
    }
    if x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }

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
    fn constants_and_exact_cases_are_gos() {
        // Go's 1/Ln2 and Sqrt2/2 as float64 bits (printed by Go 1.19).
        assert_eq!(std::f64::consts::LOG2_E.to_bits(), 0x3ff7_1547_652b_82fe);
        assert_eq!(
            (std::f64::consts::SQRT_2 / 2.0).to_bits(),
            0x3fe6_a09e_667f_3bcd
        );
        assert_eq!(log2(0.25), -2.0);
        assert_eq!(frexp(3.0), (0.75, 2));
    }
}
