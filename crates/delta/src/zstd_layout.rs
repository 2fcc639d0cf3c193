//! The frame layout of a zstd blob, so that a blob of many frames can be
//! rebuilt frame by frame from its plain text.
//!
//! zstd:chunked (containers/storage) writes one frame per file or chunk,
//! then its table of contents and footer in skippable frames; the plain
//! text of the blob is the frames' contents one after the other. A rebuild
//! needs to know where each frame's plain text ends and what each skippable
//! frame holds (it carries no plain text, so it travels verbatim). That is
//! the layout: a list of parts, written into the patch's corrections
//! section.
//!
//! ```text
//! part      := frame | flushed | skippable
//! frame     := 0x00 varint(plain bytes)
//! flushed   := 0x02 varint(plain bytes) varint(n) varint(step)*n
//! skippable := 0x01 nibble varint(length) bytes[length]
//! ```
//!
//! A `flushed` frame's encoder was flushed `n` times while it was written:
//! after `step` more plain bytes each time (offsets within the frame, each
//! from the one before). A streaming encoder writes a block before its
//! buffer is full only when flushed, so the flushes show in the blob as
//! short blocks: containers/storage flushes the last frame of a
//! zstd:chunked layer before closing it (which leaves an empty last
//! block), containers/image writes a layer's first bytes before copying
//! the rest (a short first block).

use std::io::{self, Read};

use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};

use crate::zstd_frames::{FrameHeader, SKIPPABLE_MAGIC, Span, SpanKind};

/// One frame of a blob's layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// A zstd frame holding `plain` bytes of the plain text, its encoder
    /// flushed after each of the `flushes` (offsets within the frame, in
    /// order).
    Frame { plain: u64, flushes: Vec<u64> },
    /// A skippable frame: the low four bits of its magic and its content.
    Skippable { nibble: u8, data: Vec<u8> },
}

const FRAME: u8 = 0;
const SKIPPABLE: u8 = 1;
const FLUSHED: u8 = 2;

/// Encodes a layout for the corrections section.
pub fn encode(parts: &[Part]) -> Vec<u8> {
    let mut out = Vec::new();
    for part in parts {
        match part {
            Part::Frame { plain, flushes } => {
                out.push(if flushes.is_empty() { FRAME } else { FLUSHED });
                varint(&mut out, *plain);
                if !flushes.is_empty() {
                    varint(&mut out, flushes.len() as u64);
                    let mut at = 0;
                    for &flush in flushes {
                        varint(&mut out, flush - at);
                        at = flush;
                    }
                }
            }
            Part::Skippable { nibble, data } => {
                out.push(SKIPPABLE);
                out.push(*nibble);
                varint(&mut out, data.len() as u64);
                out.extend_from_slice(data);
            }
        }
    }
    out
}

/// Decodes a layout and checks it against what the patch header claims:
/// the frames' plain bytes add up to `plain_size`, and nothing is left
/// over.
pub fn decode(mut bytes: &[u8], plain_size: u64) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut plain = 0u64;
    while let Some((&tag, rest)) = bytes.split_first() {
        bytes = rest;
        match tag {
            FRAME | FLUSHED => {
                let n = read_varint(&mut bytes)?;
                plain = plain
                    .checked_add(n)
                    .ok_or("frame sizes overflow".to_string())?;
                let mut flushes = Vec::new();
                if tag == FLUSHED {
                    let count = read_varint(&mut bytes)?;
                    if count == 0 || count > bytes.len() as u64 {
                        return Err(format!("a frame with {count} flushes"));
                    }
                    let mut at = 0u64;
                    for _ in 0..count {
                        at = at
                            .checked_add(read_varint(&mut bytes)?)
                            .filter(|&at| at <= n)
                            .ok_or("a flush past its frame's end".to_string())?;
                        flushes.push(at);
                    }
                }
                parts.push(Part::Frame { plain: n, flushes });
            }
            SKIPPABLE => {
                let (&nibble, rest) = bytes
                    .split_first()
                    .ok_or("a truncated skippable frame".to_string())?;
                bytes = rest;
                if nibble > 0xf {
                    return Err(format!("skippable frame nibble {nibble} is over 15"));
                }
                let len = read_varint(&mut bytes)?;
                let len = usize::try_from(len)
                    .ok()
                    .filter(|&l| l <= bytes.len() && l <= u32::MAX as usize)
                    .ok_or("a skippable frame longer than the layout".to_string())?;
                let (data, rest) = bytes.split_at(len);
                bytes = rest;
                parts.push(Part::Skippable {
                    nibble,
                    data: data.to_vec(),
                });
            }
            other => return Err(format!("unknown layout part {other}")),
        }
    }
    if plain != plain_size {
        return Err(format!(
            "the layout's frames hold {plain} plain bytes, the header says {plain_size}"
        ));
    }
    if !parts.iter().any(|p| matches!(p, Part::Frame { .. })) {
        return Err("the layout has no frame".into());
    }
    Ok(parts)
}

/// An encoder that writes a blob's frames into the rebuilt blob.
pub trait FrameWriter {
    /// Writes one whole zstd frame holding exactly `len` bytes of `plain`,
    /// flushing the encoder after each offset of `flushes`.
    fn frame(&mut self, plain: &mut dyn Read, len: u64, flushes: &[u64]) -> io::Result<()>;
    /// Writes bytes as they are.
    fn raw(&mut self, bytes: &[u8]) -> io::Result<()>;
}

/// Rebuilds a blob from its plain text: each frame by `frames`, each
/// skippable frame from the layout.
pub fn write(parts: &[Part], plain: &mut dyn Read, frames: &mut dyn FrameWriter) -> io::Result<()> {
    for part in parts {
        match part {
            Part::Frame {
                plain: len,
                flushes,
            } => frames.frame(plain, *len, flushes)?,
            Part::Skippable { nibble, data } => {
                frames.raw(&(SKIPPABLE_MAGIC | u32::from(*nibble)).to_le_bytes())?;
                frames.raw(&(data.len() as u32).to_le_bytes())?;
                frames.raw(data)?;
            }
        }
    }
    Ok(())
}

/// Reads the layout of `blob` from its spans: the plain bytes of each frame
/// and where its encoder was flushed (by decoding it block by block), and
/// the content of each skippable frame. One pass over the blob.
pub fn read(mut blob: impl Read, spans: &[Span]) -> io::Result<Vec<Part>> {
    let mut parts = Vec::with_capacity(spans.len());
    let mut at = 0u64;
    for span in spans {
        if span.offset != at {
            return Err(invalid("frame spans out of order"));
        }
        let mut frame = (&mut blob).take(span.len);
        match span.kind {
            SpanKind::Frame(header) => {
                parts.push(frame_part(&mut frame, &header)?);
                io::copy(&mut frame, &mut io::sink())?;
            }
            SpanKind::Skippable { nibble } => {
                let mut data = Vec::new();
                frame.read_to_end(&mut data)?;
                data.drain(..8);
                parts.push(Part::Skippable { nibble, data });
            }
        }
        at += span.len;
    }
    Ok(parts)
}

/// The largest block a streaming encoder writes with this frame's window:
/// klauspost's fastest level (4 MiB window) cuts 64 KiB blocks, the others
/// and libzstd 128 KiB.
fn full_block(header: &FrameHeader) -> u64 {
    if header.window_size() == Some(4 << 20) {
        64 << 10
    } else {
        128 << 10
    }
}

/// Decodes one frame block by block: its plain size, and a flush after
/// every block shorter than a full one but the last.
fn frame_part(frame: &mut impl Read, header: &FrameHeader) -> io::Result<Part> {
    let dictionary_bytes = [0, 1, 2, 4][usize::from(header.descriptor & 3)];
    let content_size_bytes = match (header.descriptor >> 6, header.window_descriptor) {
        (0, None) => 1,
        (0, Some(_)) => 0,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let header_len =
        5 + usize::from(header.window_descriptor.is_some()) + dictionary_bytes + content_size_bytes;
    let mut decoder = Decoder::new()?;
    let mut scratch = vec![0u8; 256 << 10];
    let mut bytes = vec![0u8; header_len];
    frame.read_exact(&mut bytes)?;
    feed(&mut decoder, &bytes, &mut scratch)?;
    let full = full_block(header);
    let (mut plain, mut flushes) = (0u64, Vec::new());
    loop {
        let mut block_header = [0u8; 3];
        frame.read_exact(&mut block_header)?;
        let h = u32::from_le_bytes([block_header[0], block_header[1], block_header[2], 0]);
        let last = h & 1 != 0;
        let size = match (h >> 1) & 3 {
            1 => 1,
            3 => return Err(invalid("a reserved block type")),
            _ => (h >> 3) as usize,
        };
        bytes.clear();
        bytes.extend_from_slice(&block_header);
        bytes.resize(3 + size, 0);
        frame.read_exact(&mut bytes[3..])?;
        let block_plain = feed(&mut decoder, &bytes, &mut scratch)?;
        plain += block_plain;
        if last {
            break;
        }
        if block_plain < full {
            flushes.push(plain);
        }
    }
    Ok(Part::Frame { plain, flushes })
}

/// Gives `input` to the decoder and returns how many plain bytes came out.
fn feed(decoder: &mut Decoder<'_>, input: &[u8], scratch: &mut [u8]) -> io::Result<u64> {
    let mut input = InBuffer::around(input);
    let mut produced = 0u64;
    loop {
        let mut output = OutBuffer::around(&mut scratch[..]);
        decoder.run(&mut input, &mut output)?;
        produced += output.pos() as u64;
        if input.pos() == input.src.len() && output.pos() < output.capacity() {
            return Ok(produced);
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes
            .split_first()
            .ok_or("a truncated number in the layout".to_string())?;
        *bytes = rest;
        n |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err("a number over 64 bits in the layout".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zstd_frames::spans;
    use std::io::Write;

    /// libzstd level 3 as the frame writer, standing in for any
    /// deterministic encoder.
    struct Libzstd(Vec<u8>);

    impl FrameWriter for Libzstd {
        fn frame(&mut self, plain: &mut dyn Read, len: u64, _flushes: &[u64]) -> io::Result<()> {
            let mut encoder = zstd::stream::Encoder::new(&mut self.0, 3)?;
            encoder.include_contentsize(false)?;
            io::copy(&mut plain.take(len), &mut encoder)?;
            encoder.finish()?;
            Ok(())
        }

        fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
            self.0.write_all(bytes)
        }
    }

    fn chunked(files: &[&[u8]], toc: &[u8]) -> Vec<u8> {
        let mut frames = Libzstd(Vec::new());
        for file in files {
            frames
                .frame(&mut &file[..], file.len() as u64, &[])
                .unwrap();
        }
        let mut blob = frames.0;
        for (nibble, data) in [(0u8, toc), (0, &[9u8; 40][..])] {
            blob.extend((SKIPPABLE_MAGIC | u32::from(nibble)).to_le_bytes());
            blob.extend((data.len() as u32).to_le_bytes());
            blob.extend(data);
        }
        blob
    }

    #[test]
    fn a_chunked_blob_is_rebuilt_frame_by_frame_from_its_plain_text() {
        let files: Vec<Vec<u8>> = (0..5u32)
            .map(|i| {
                (0..(i * 40_000 + 3))
                    .map(|j| (j * (i + 1) % 251) as u8)
                    .collect()
            })
            .collect();
        let refs: Vec<&[u8]> = files.iter().map(|f| &f[..]).collect();
        let blob = chunked(&refs, b"{\"entries\":[]}");
        let plain: Vec<u8> = files.concat();
        let parts = read(&blob[..], &spans(&blob[..]).unwrap()).unwrap();
        assert_eq!(parts.len(), 7);
        assert_eq!(
            parts[1],
            Part::Frame {
                plain: 40_003,
                flushes: vec![]
            }
        );

        let layout = encode(&parts);
        let back = decode(&layout, plain.len() as u64).unwrap();
        assert_eq!(back, parts);
        let mut rebuilt = Libzstd(Vec::new());
        write(&back, &mut &plain[..], &mut rebuilt).unwrap();
        assert!(rebuilt.0 == blob);
    }

    #[test]
    fn a_layout_that_disagrees_with_the_header_is_refused() {
        let parts = vec![
            Part::Frame {
                plain: 10,
                flushes: vec![3, 10],
            },
            Part::Skippable {
                nibble: 0,
                data: b"toc".to_vec(),
            },
        ];
        let layout = encode(&parts);
        assert!(decode(&layout, 10).is_ok());
        assert!(decode(&layout, 11).unwrap_err().contains("header says 11"));
        assert!(decode(&layout[..layout.len() - 1], 10).is_err());
        assert!(decode(&[7], 0).unwrap_err().contains("unknown layout part"));
        assert!(
            decode(&encode(&parts[1..]), 0)
                .unwrap_err()
                .contains("no frame")
        );
        // A skippable length past the end of the layout.
        assert!(decode(&[1, 0, 0xff, 0x01], 0).is_err());
    }
}
