//! The bit writer of klauspost/compress's zstd, huff0 and fse packages
//! (`zstd/bitwriter.go`, `huff0/bitwriter.go`, `fse/bitwriter.go`; BSD-3-Clause,
//! after Yann Collet's BSD code): the three Go copies differ only in which
//! methods each package needs, so here they are one type with all of them.
//!
//! The first bit written is the least significant bit of the first byte.
//! Bits gather in a 64-bit container; callers flush (`flush32`) often
//! enough that the unchecked adds (`*_nc`, `*_clean`) never overflow it,
//! exactly where Go does, which is what makes the bytes the same.

/// `bitMask32`: the low `n` bits, for `n` up to 31.
pub(crate) const BIT_MASK32: [u32; 32] = {
    let mut m = [0u32; 32];
    let mut i = 0;
    while i < 32 {
        m[i] = (1u32 << i).wrapping_sub(1);
        i += 1;
    }
    m
};

/// `bitMask16`: the low `n` bits, for `n` up to 16 (more bits give 16).
const BIT_MASK16: [u16; 32] = {
    let mut m = [0xFFFFu16; 32];
    let mut i = 0;
    while i < 16 {
        m[i] = ((1u32 << i) - 1) as u16;
        i += 1;
    }
    // Go's table lists 26 entries; the rest are zero.
    let mut j = 26;
    while j < 32 {
        m[j] = 0;
        j += 1;
    }
    m
};

/// `bitWriter`.
#[derive(Debug, Default, Clone)]
pub(crate) struct BitWriter {
    pub(crate) bit_container: u64,
    pub(crate) n_bits: u8,
    /// The bytes written so far (Go's `out`, appended to).
    pub(crate) out: Vec<u8>,
}

impl BitWriter {
    /// `addBits16NC`: up to 16 bits, masked; no room check.
    #[inline(always)]
    pub(crate) fn add_bits16_nc(&mut self, value: u16, bits: u8) {
        self.bit_container |=
            u64::from(value & BIT_MASK16[usize::from(bits & 31)]) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(bits);
    }

    /// `addBits32NC`: up to 31 bits, masked; no room check.
    #[inline(always)]
    pub(crate) fn add_bits32_nc(&mut self, value: u32, bits: u8) {
        self.bit_container |=
            u64::from(value & BIT_MASK32[usize::from(bits & 31)]) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(bits);
    }

    /// `addBits64NC`: up to 64 bits; there must be room for 32.
    #[inline(always)]
    pub(crate) fn add_bits64_nc(&mut self, value: u64, bits: u8) {
        if bits <= 31 {
            self.add_bits32_clean(value as u32, bits);
            return;
        }
        self.add_bits32_clean(value as u32, 32);
        self.flush32();
        self.add_bits32_clean((value >> 32) as u32, bits - 32);
    }

    /// `addBits32Clean`: `value` must have no bits above `bits`.
    #[inline(always)]
    pub(crate) fn add_bits32_clean(&mut self, value: u32, bits: u8) {
        self.bit_container |= u64::from(value) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(bits);
    }

    /// `addBits16Clean`: `value` must have no bits above `bits`.
    #[inline(always)]
    pub(crate) fn add_bits16_clean(&mut self, value: u16, bits: u8) {
        self.bit_container |= u64::from(value) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(bits);
    }

    /// `addBits16ZeroNC` (fse): as [`Self::add_bits16_nc`], and 0 bits add
    /// nothing.
    #[inline(always)]
    pub(crate) fn add_bits16_zero_nc(&mut self, mut value: u16, bits: u8) {
        if bits == 0 {
            return;
        }
        let shift = 16u8.wrapping_sub(bits) & 15;
        value <<= shift;
        value >>= shift;
        self.bit_container |= u64::from(value) << (self.n_bits & 63);
        self.n_bits = self.n_bits.wrapping_add(bits);
    }

    /// `flush` (fse): writes every whole byte held.
    #[inline]
    pub(crate) fn flush(&mut self) {
        let v = usize::from(self.n_bits >> 3);
        assert!(v <= 8, "bits ({}) > 64", self.n_bits);
        self.out
            .extend_from_slice(&self.bit_container.to_le_bytes()[..v]);
        self.bit_container = if v == 8 {
            0
        } else {
            self.bit_container >> (v << 3)
        };
        self.n_bits &= 7;
    }

    /// `flush32`: writes 4 bytes once 32 bits are held, so that 32 more fit.
    #[inline(always)]
    pub(crate) fn flush32(&mut self) {
        if self.n_bits < 32 {
            return;
        }
        self.out
            .extend_from_slice(&(self.bit_container as u32).to_le_bytes());
        self.n_bits -= 32;
        self.bit_container >>= 32;
    }

    /// `flushAlign`: writes the remaining bits, padded to a byte.
    pub(crate) fn flush_align(&mut self) {
        let nb_bytes = usize::from((self.n_bits + 7) >> 3);
        self.out
            .extend_from_slice(&self.bit_container.to_le_bytes()[..nb_bytes]);
        self.n_bits = 0;
        self.bit_container = 0;
    }

    /// `close`: the end mark (one 1 bit), then [`Self::flush_align`].
    pub(crate) fn close(&mut self) {
        self.add_bits16_clean(1, 1);
        self.flush_align();
    }

    /// `reset`: continue by appending to `out`.
    pub(crate) fn reset(&mut self, out: Vec<u8>) {
        self.bit_container = 0;
        self.n_bits = 0;
        self.out = out;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_match_go_tables() {
        assert_eq!(
            BIT_MASK16[..18],
            [
                0, 1, 3, 7, 0xF, 0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF,
                0x3FFF, 0x7FFF, 0xFFFF, 0xFFFF
            ]
        );
        assert_eq!(BIT_MASK16[25], 0xFFFF);
        assert_eq!(BIT_MASK16[26], 0);
        assert_eq!(BIT_MASK32[31], 0x7fff_ffff);
        assert_eq!(BIT_MASK32[17], 0x1ffff);
    }

    #[test]
    fn bits_are_written_lsb_first_and_closed_with_a_one() {
        let mut bw = BitWriter::default();
        bw.add_bits16_nc(0b101, 3);
        bw.add_bits32_nc(0xffff_ffff, 6); // masked to 6 bits
        bw.flush32();
        bw.close();
        // 101 then 111111 then the end mark 1: 0b1_1111_1101, 0b11
        assert_eq!(bw.out, [0xfd, 0x03]);
    }

    #[test]
    fn add_bits64_splits_at_32() {
        let mut bw = BitWriter::default();
        bw.add_bits64_nc(0x1_2345_6789, 33);
        bw.flush_align();
        assert_eq!(bw.out, [0x89, 0x67, 0x45, 0x23, 0x01]);
    }
}
