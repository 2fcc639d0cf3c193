//! The frame header (`frameenc.go` `frameHeader.appendTo`).
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

/// The zstd frame magic number, little-endian.
const FRAME_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `frameHeader`.
pub(super) struct FrameHeader {
    /// Written when above 0, or when `single_segment` (which needs it).
    pub(super) content_size: u64,
    pub(super) window_size: u32,
    pub(super) single_segment: bool,
    pub(super) checksum: bool,
}

impl FrameHeader {
    /// `appendTo` (without a dictionary ID: none is ever set here).
    pub(super) fn append_to(&self, dst: &mut Vec<u8>) {
        dst.extend_from_slice(&FRAME_MAGIC);
        let mut fhd: u8 = 0;
        if self.checksum {
            fhd |= 1 << 2;
        }
        if self.single_segment {
            fhd |= 1 << 5;
        }
        let mut fcs: u8 = 0;
        if self.content_size >= 256 {
            fcs += 1;
        }
        if self.content_size >= 65536 + 256 {
            fcs += 1;
        }
        if self.content_size >= 0xffff_ffff {
            fcs += 1;
        }
        fhd |= fcs << 6;
        dst.push(fhd);
        if !self.single_segment {
            const WIN_LOG_MIN: u32 = 10;
            let bits_len = 32 - (self.window_size.wrapping_sub(1)).leading_zeros();
            dst.push(((bits_len - WIN_LOG_MIN) << 3) as u8);
        }
        let c = self.content_size;
        match fcs {
            0 => {
                // Unless single segment, sizes below 256 are not stored.
                if self.single_segment {
                    dst.push(c as u8);
                }
            }
            1 => dst.extend_from_slice(&((c - 256) as u16).to_le_bytes()),
            2 => dst.extend_from_slice(&(c as u32).to_le_bytes()),
            _ => dst.extend_from_slice(&c.to_le_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FrameHeader;

    fn header(content_size: u64, window_size: u32, single_segment: bool) -> Vec<u8> {
        let mut out = Vec::new();
        FrameHeader {
            content_size,
            window_size,
            single_segment,
            checksum: true,
        }
        .append_to(&mut out);
        out
    }

    #[test]
    fn headers_follow_the_format() {
        // A stream: no size, an 8 MiB window (exponent 23 - 10 = 13).
        assert_eq!(
            header(0, 8 << 20, false),
            [0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x68]
        );
        // One segment: no window byte; the size in 1, 2 (minus 256) or 4 bytes.
        assert_eq!(header(100, 1024, true)[4..], [0x24, 100]);
        assert_eq!(header(300, 1024, true)[4..], [0x64, 44, 0]);
        assert_eq!(
            header(70_000, 1 << 17, true)[4..],
            [0xa4, 0x70, 0x11, 0x01, 0x00]
        );
    }
}
