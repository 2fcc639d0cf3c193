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

use crate::read_full::read_full;

/// RFC 8878 §3.1.1: a zstd frame.
const FRAME_MAGIC: u32 = 0xFD2F_B528;
/// RFC 8878 §3.1.2: skippable frames use magics 0x184D2A50..=0x184D2A5F.
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;

/// One frame of a zstd blob: where it lies and what its header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// Offset of the frame's magic in the blob.
    pub offset: u64,
    /// Bytes of the whole frame, magic included.
    pub len: u64,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    /// A zstd frame (RFC 8878 §3.1.1) and its header's fields.
    Frame(FrameHeader),
    /// A skippable frame; `nibble` is the low four bits of its magic.
    Skippable { nibble: u8 },
}

/// The fields of a zstd frame header that tell encoders apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The frame header descriptor byte.
    pub descriptor: u8,
    /// The window descriptor byte; absent in single-segment frames.
    pub window_descriptor: Option<u8>,
    /// The content size the header states, if it does.
    pub content_size: Option<u64>,
    pub checksum: bool,
    pub dictionary: bool,
}

impl FrameHeader {
    /// The window size the header asks a decoder for (§3.1.1.1.2), or the
    /// content size for a single-segment frame.
    pub fn window_size(&self) -> Option<u64> {
        match self.window_descriptor {
            Some(w) => {
                let base = 1u64 << (10 + (w >> 3));
                Some(base + (base / 8) * u64::from(w & 7))
            }
            None => self.content_size,
        }
    }
}

/// How many frames of each kind a zstd blob holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Survey {
    pub frames: u64,
    pub skippable: u64,
}

impl Survey {
    /// Counts the frames of each kind.
    pub fn of(spans: &[Span]) -> Survey {
        let frames = spans
            .iter()
            .filter(|s| matches!(s.kind, SpanKind::Frame(_)))
            .count() as u64;
        Survey {
            frames,
            skippable: spans.len() as u64 - frames,
        }
    }

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

/// Counts the frames of a zstd blob; fails on anything that is not a
/// well-formed sequence of frames.
pub fn survey(blob: impl Read) -> io::Result<Survey> {
    Ok(Survey::of(&spans(blob)?))
}

/// Lists the frames of a zstd blob in order; fails on anything that is not
/// a well-formed sequence of frames.
pub fn spans(blob: impl Read) -> io::Result<Vec<Span>> {
    let mut input = Counting {
        inner: io::BufReader::with_capacity(1 << 16, blob),
        read: 0,
    };
    let mut spans = Vec::new();
    loop {
        let offset = input.read;
        let mut magic = [0u8; 4];
        match read_full(&mut input, &mut magic)? {
            0 => return Ok(spans),
            4 => {}
            _ => return Err(bad("a truncated frame magic")),
        }
        let magic = u32::from_le_bytes(magic);
        let kind = if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
            let size = u32::from_le_bytes(read_array(&mut input)?);
            skip(&mut input, u64::from(size))?;
            SpanKind::Skippable {
                nibble: (magic & 0xf) as u8,
            }
        } else if magic == FRAME_MAGIC {
            SpanKind::Frame(frame(&mut input)?)
        } else {
            return Err(bad("a frame magic that is neither zstd nor skippable"));
        };
        spans.push(Span {
            offset,
            len: input.read - offset,
            kind,
        });
    }
}

/// Reads one frame after its magic (RFC 8878 §3.1.1) and returns its header.
fn frame(input: &mut impl Read) -> io::Result<FrameHeader> {
    let [descriptor] = read_array::<1>(input)?;
    let content_size_flag = descriptor >> 6;
    let single_segment = descriptor & 0x20 != 0;
    let checksum = descriptor & 0x04 != 0;
    let dictionary_bytes = [0, 1, 2, 4][usize::from(descriptor & 0x03)];
    let window_descriptor = if single_segment {
        None
    } else {
        Some(read_array::<1>(input)?[0])
    };
    skip(input, dictionary_bytes)?;
    let content_size = match (content_size_flag, single_segment) {
        (0, false) => None,
        (0, true) => Some(u64::from(read_array::<1>(input)?[0])),
        (1, _) => Some(u64::from(u16::from_le_bytes(read_array(input)?)) + 256),
        (2, _) => Some(u64::from(u32::from_le_bytes(read_array(input)?))),
        _ => Some(u64::from_le_bytes(read_array(input)?)),
    };
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
    Ok(FrameHeader {
        descriptor,
        window_descriptor,
        content_size,
        checksum,
        dictionary: dictionary_bytes != 0,
    })
}

/// Counts the bytes read through it: the offsets of the frames.
struct Counting<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
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
    fn spans_give_offsets_and_header_fields() {
        let text = vec![7u8; 5000];
        let mut blob = zstd::encode_all(&text[..], 3).unwrap();
        let first = blob.len() as u64;
        blob.extend(skippable(b"toc"));
        // A streamed frame: no content size, a window descriptor.
        let mut streamed = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        streamed.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut streamed, &text).unwrap();
        blob.extend(streamed.finish().unwrap());
        let spans = spans(&blob[..]).unwrap();
        assert_eq!(spans.len(), 3);
        assert_eq!((spans[0].offset, spans[0].len), (0, first));
        let SpanKind::Frame(header) = spans[0].kind else {
            panic!("{spans:?}")
        };
        assert_eq!(header.content_size, Some(5000));
        assert_eq!(spans[1].kind, SpanKind::Skippable { nibble: 0xe });
        assert_eq!((spans[1].offset, spans[1].len), (first, 11));
        let SpanKind::Frame(header) = spans[2].kind else {
            panic!("{spans:?}")
        };
        assert_eq!(header.content_size, None);
        assert!(header.window_size().unwrap() >= 5000);
        assert_eq!(spans[2].offset + spans[2].len, blob.len() as u64);
    }

    #[test]
    fn truncated_or_foreign_bytes_are_refused() {
        let one = zstd::encode_all(&b"some text some text"[..], 3).unwrap();
        assert!(survey(&one[..one.len() - 1]).is_err());
        assert!(survey(&b"ustar and more"[..]).is_err());
    }
}
