//! What a zstd blob is made of, from its frame and block headers alone.
//!
//! Used to say precisely why a zstd layer cannot be rebuilt from its plain
//! text: a blob of many frames plus skippable frames is zstd:chunked (the
//! containers/storage format: one frame per file or chunk, then the table
//! of contents and a footer in skippable frames), which tender can only
//! patch at the compressed level; a single frame that no libzstd level
//! reproduces was written by another encoder (containers/image and BuildKit
//! use klauspost/compress). Reading the headers costs no decompression.

use std::io::{self, Read};

use crate::compression::read_full;

/// RFC 8878 §3.1.1: a zstd frame.
const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// RFC 8878 §3.1.2: skippable frames use magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// How many frames of each kind a zstd blob holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Survey {
    pub frames: u64,
    pub skippable: u64,
}

impl Survey {
    /// Whether this looks like zstd:chunked: several data frames plus
    /// skippable frames (the table of contents and footer).
    pub fn is_chunked(&self) -> bool {
        self.frames > 1 && self.skippable > 0
    }

    /// The blob's shape in words, for a whole-blob reason.
    pub fn describe(&self) -> String {
        if self.is_chunked() {
            format!(
                "zstd:chunked ({} frames and {} skippable frames: per-file frames, table of contents, footer)",
                self.frames, self.skippable
            )
        } else if self.frames == 1 && self.skippable == 0 {
            "one zstd frame".into()
        } else {
            format!(
                "{} zstd frames and {} skippable frames",
                self.frames, self.skippable
            )
        }
    }
}

/// Walks the frames of a zstd blob; fails on anything that is not a
/// well-formed sequence of frames.
pub fn survey(blob: impl Read) -> io::Result<Survey> {
    let mut input = io::BufReader::with_capacity(1 << 16, blob);
    let mut survey = Survey::default();
    loop {
        let mut magic = [0u8; 4];
        match read_full(&mut input, &mut magic)? {
            0 => return Ok(survey),
            4 => {}
            _ => return Err(bad("a truncated frame magic")),
        }
        let magic = u32::from_le_bytes(magic);
        if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let size = u32::from_le_bytes(read_array(&mut input)?);
            skip(&mut input, u64::from(size))?;
            survey.skippable += 1;
        } else if magic == FRAME_MAGIC {
            frame(&mut input)?;
            survey.frames += 1;
        } else {
            return Err(bad("a frame magic that is neither zstd nor skippable"));
        }
    }
}

/// Skips one frame after its magic (RFC 8878 §3.1.1).
fn frame(input: &mut impl Read) -> io::Result<()> {
    let [descriptor] = read_array::<1>(input)?;
    let content_size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let checksum = descriptor & 0x04 != 0;
    let dictionary_bytes = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let window_bytes = u64::from(!single_segment);
    let content_size_bytes = match content_size_flag {
        0 => u64::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    skip(input, window_bytes + dictionary_bytes + content_size_bytes)?;
    loop {
        let [a, b, c] = read_array::<3>(input)?;
        let header = u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16;
        let last = header & 1 != 0;
        let kind = (header >> 1) & 3;
        let size = u64::from(header >> 3);
        match kind {
            1 => skip(input, 1)?, // RLE: one byte, repeated `size` times
            3 => return Err(bad("a reserved block type")),
            _ => skip(input, size)?,
        }
        if last {
            break;
        }
    }
    if checksum {
        skip(input, 4)?;
    }
    Ok(())
}

fn read_array<const N: usize>(input: &mut impl Read) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    if read_full(input, &mut buf)? != N {
        return Err(bad("a truncated frame"));
    }
    Ok(buf)
}

fn skip(input: &mut impl Read, n: u64) -> io::Result<()> {
    if io::copy(&mut input.take(n), &mut io::sink())? != n {
        return Err(bad("a truncated frame"));
    }
    Ok(())
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("not a zstd blob: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skippable(payload: &[u8]) -> Vec<u8> {
        let mut out = (SKIPPABLE_MAGIC | 0xe).to_le_bytes().to_vec();
        out.extend((payload.len() as u32).to_le_bytes());
        out.extend(payload);
        out
    }

    #[test]
    fn counts_frames_and_skippable_frames() {
        let text: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let one = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            survey(&one[..]).unwrap(),
            Survey {
                frames: 1,
                skippable: 0
            }
        );
        // The zstd:chunked shape: frames per file, then the table of
        // contents and footer as skippable frames.
        let mut chunked = zstd::encode_all(&b"file one"[..], 3).unwrap();
        chunked.extend(zstd::encode_all(&text[..1000], 19).unwrap());
        chunked.extend(skippable(b"{\"version\":1,\"entries\":[]}"));
        chunked.extend(skippable(&[0u8; 40]));
        let s = survey(&chunked[..]).unwrap();
        assert_eq!(
            s,
            Survey {
                frames: 2,
                skippable: 2
            }
        );
        assert!(s.is_chunked());
        assert!(s.describe().starts_with("zstd:chunked"), "{}", s.describe());
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let one = zstd::encode_all(&b"some text some text"[..], 3).unwrap();
        assert!(survey(&one[..one.len() - 1]).is_err());
        assert!(survey(&b"ustar and more"[..]).is_err());
    }
}
