//! Exact rebuild of a gzip member from its uncompressed bytes.
//!
//! The member header and whatever follows the DEFLATE stream (the CRC-32 and
//! size trailer, sometimes padding) are kept verbatim. The DEFLATE stream
//! itself is analysed by preflate, which re-runs the compressor it infers
//! and records only where the real stream decided differently. The stream
//! is cut into chunks at block boundaries so that neither analysis nor
//! rebuild holds more than one chunk of plain text.

use std::io::{self, Cursor, Read, Write};

use preflate_rs::{ExitCode, PreflateConfig, PreflateStreamProcessor, RecreateStreamProcessor};
use serde::{Deserialize, Serialize};

/// How analysis cuts the stream into chunks: compressed bytes read at a
/// time, and the most plain text one chunk holds. preflate 0.7 sometimes
/// fails to model a match that crosses a chunk boundary (long runs of
/// zeros, as at the end of every tar), so a failed analysis is retried
/// with the boundaries elsewhere, and finally as one chunk.
#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    pub read_size: usize,
    pub plain_limit: usize,
}

/// The chunkings export tries, in order, before one whole chunk.
pub const CHUNKINGS: [Chunking; 2] = [
    Chunking {
        read_size: 1 << 20,
        plain_limit: 8 << 20,
    },
    Chunking {
        read_size: (3 << 20) + 4093,
        plain_limit: 12 << 20,
    },
];
/// A gzip header longer than this (a huge comment or extra field) is not
/// worth a patch.
pub(crate) const MAX_HEADER: usize = 64 * 1024;
/// Bytes after the DEFLATE stream kept verbatim: the 8-byte trailer, and a
/// little padding or a tiny second member.
const MAX_TAIL: usize = 64 * 1024;

/// What rebuilds a gzip member from its plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GzipRecipe {
    /// The member header, hex.
    pub header: String,
    /// The DEFLATE stream's chunks, in order.
    pub chunks: Vec<Chunk>,
    /// Everything after the DEFLATE stream (trailer first), hex.
    pub tail: String,
}

/// One chunk of the DEFLATE stream: how much plain text it covers and how
/// many bytes of preflate corrections rebuild it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chunk {
    pub plain: u64,
    pub corrections: u64,
}

/// The result of analysing a gzip blob.
pub struct Analysis {
    pub recipe: GzipRecipe,
    /// The chunks' corrections, concatenated.
    pub corrections: Vec<u8>,
}

/// Why analysis failed: the machine, or a stream preflate cannot model
/// (the blob then travels whole).
#[derive(Debug)]
pub enum AnalyzeError {
    Io(io::Error),
    Unsupported(String),
}

impl From<io::Error> for AnalyzeError {
    fn from(e: io::Error) -> Self {
        AnalyzeError::Io(e)
    }
}

/// Reads a gzip blob, hands its plain text to `plain` chunk by chunk, and
/// returns what rebuilds the exact blob from that plain text.
pub fn analyze(
    mut input: impl Read,
    chunking: Chunking,
    mut plain: impl FnMut(&[u8]) -> io::Result<()>,
) -> Result<Analysis, AnalyzeError> {
    let unsupported = |m: String| AnalyzeError::Unsupported(m);
    let read_size = chunking.read_size;
    let mut buf = Vec::with_capacity(read_size.min(64 << 20));
    let mut eof = fill(&mut input, &mut buf, read_size)? == 0;
    let header_len = loop {
        match header_len(&buf) {
            Header::Complete(n) => break n,
            Header::Invalid(why) => return Err(unsupported(why.into())),
            Header::Incomplete if eof || buf.len() > MAX_HEADER => {
                return Err(unsupported("gzip header is truncated or too long".into()));
            }
            Header::Incomplete => eof = fill(&mut input, &mut buf, read_size)? == 0,
        }
    };
    let header = hex::encode(&buf[..header_len]);
    buf.drain(..header_len);

    let config = PreflateConfig {
        plain_text_limit: chunking.plain_limit,
        // The caller proves the whole blob end to end.
        verify_compression: false,
        ..PreflateConfig::default()
    };
    let mut processor = PreflateStreamProcessor::new(&config);
    let mut chunks = Vec::new();
    let mut corrections = Vec::new();
    while !processor.is_done() {
        let needs_more = match processor.decompress(&buf) {
            Ok(result) => {
                buf.drain(..result.compressed_size);
                let text = processor.plain_text().text();
                if !text.is_empty() || !result.corrections.is_empty() {
                    plain(text)?;
                    chunks.push(Chunk {
                        plain: text.len() as u64,
                        corrections: result.corrections.len() as u64,
                    });
                    corrections.extend_from_slice(&result.corrections);
                }
                processor.shrink_to_dictionary();
                result.compressed_size == 0 && !processor.is_done()
            }
            Err(e) if e.exit_code() == ExitCode::ShortRead => true,
            Err(e) => {
                return Err(unsupported(format!(
                    "preflate cannot model this DEFLATE stream: {}",
                    e.message().lines().next().unwrap_or("")
                )));
            }
        };
        if needs_more {
            if eof {
                return Err(unsupported("DEFLATE stream is truncated".into()));
            }
            eof = fill(&mut input, &mut buf, read_size)? == 0;
        }
    }
    // Whatever follows the stream: normally just the trailer.
    input.take(MAX_TAIL as u64 + 1).read_to_end(&mut buf)?;
    if buf.len() > MAX_TAIL {
        return Err(unsupported(
            "more than 64 KiB follow the DEFLATE stream (a multi-member gzip)".into(),
        ));
    }
    Ok(Analysis {
        recipe: GzipRecipe {
            header,
            chunks,
            tail: hex::encode(&buf),
        },
        corrections,
    })
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Corrupt(String),
}

impl GzipRecipe {
    /// The largest chunk of plain text a rebuild holds at once.
    pub fn largest_chunk(&self) -> u64 {
        self.chunks.iter().map(|c| c.plain).max().unwrap_or(0)
    }
}

/// Writes the exact gzip blob for `plain` (which must be exactly the
/// recipe's plain text) and `corrections`; no chunk may exceed `max_chunk`.
pub fn rebuild(
    recipe: &GzipRecipe,
    corrections: &[u8],
    max_chunk: u64,
    plain: &mut impl Read,
    out: &mut impl Write,
) -> Result<(), RebuildError> {
    let corrupt = |m: &str| RebuildError::Corrupt(m.to_string());
    let header = hex::decode(&recipe.header).map_err(|_| corrupt("gzip header is not hex"))?;
    let tail = hex::decode(&recipe.tail).map_err(|_| corrupt("gzip tail is not hex"))?;
    out.write_all(&header)?;
    let mut recreate = RecreateStreamProcessor::new();
    let mut offset = 0usize;
    let mut text = Vec::new();
    for chunk in &recipe.chunks {
        if chunk.plain > max_chunk {
            return Err(corrupt("a chunk is larger than the memory limit allows"));
        }
        text.clear();
        plain.by_ref().take(chunk.plain).read_to_end(&mut text)?;
        if text.len() as u64 != chunk.plain {
            return Err(corrupt("plain text ends before the last chunk"));
        }
        let end = usize::try_from(chunk.corrections)
            .ok()
            .and_then(|n| offset.checked_add(n))
            .filter(|end| *end <= corrections.len())
            .ok_or_else(|| corrupt("corrections are shorter than the chunks say"))?;
        let (deflate, _) = recreate
            .recompress(&mut Cursor::new(&text), &corrections[offset..end])
            .map_err(|e| {
                RebuildError::Corrupt(format!(
                    "preflate rebuild failed: {}",
                    e.message().lines().next().unwrap_or("")
                ))
            })?;
        offset = end;
        out.write_all(&deflate)?;
    }
    if offset != corrections.len() {
        return Err(corrupt("corrections are longer than the chunks say"));
    }
    if plain.read(&mut [0u8; 1])? != 0 {
        return Err(corrupt("plain text is longer than the chunks say"));
    }
    out.write_all(&tail)?;
    Ok(())
}

/// Appends up to `n` bytes from `input` to `buf`; returns how many.
fn fill(input: &mut impl Read, buf: &mut Vec<u8>, n: usize) -> io::Result<usize> {
    let got = input.take(n as u64).read_to_end(buf)?;
    Ok(got)
}

pub(crate) enum Header {
    Complete(usize),
    Incomplete,
    Invalid(&'static str),
}

/// The length of the gzip member header at the start of `data` (RFC 1952
/// §2.3): fixed 10 bytes, then the optional extra field, name, comment and
/// header CRC that the flags announce.
pub(crate) fn header_len(data: &[u8]) -> Header {
    const FHCRC: u8 = 0x02;
    const FEXTRA: u8 = 0x04;
    const FNAME: u8 = 0x08;
    const FCOMMENT: u8 = 0x10;
    if data.len() < 10 {
        return Header::Incomplete;
    }
    if data[..3] != [0x1f, 0x8b, 0x08] {
        return Header::Invalid("not a gzip member (bad magic or method)");
    }
    let flags = data[3];
    if flags & 0xe0 != 0 {
        return Header::Invalid("gzip header has reserved flags set");
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        let Some(len) = data.get(at..at + 2) else {
            return Header::Incomplete;
        };
        at += 2 + u16::from_le_bytes([len[0], len[1]]) as usize;
    }
    for flag in [FNAME, FCOMMENT] {
        if flags & flag != 0 {
            match data
                .get(at..)
                .and_then(|rest| rest.iter().position(|b| *b == 0))
            {
                Some(nul) => at += nul + 1,
                None => return Header::Incomplete,
            }
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    if data.len() < at {
        Header::Incomplete
    } else {
        Header::Complete(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_text() -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..40_000u32 {
            text.extend_from_slice(format!("line {i} of a sample {}\n", i % 97).as_bytes());
        }
        text
    }

    fn round_trip(blob: &[u8]) -> Analysis {
        let mut plain = Vec::new();
        let analysis = analyze(blob, CHUNKINGS[0], |chunk| {
            plain.extend_from_slice(chunk);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e:?}"));
        let mut rebuilt = Vec::new();
        rebuild(
            &analysis.recipe,
            &analysis.corrections,
            u64::MAX,
            &mut &plain[..],
            &mut rebuilt,
        )
        .unwrap();
        assert!(rebuilt == blob, "rebuilt blob differs");
        analysis
    }

    #[test]
    fn zlib_streams_with_a_file_name_rebuild_exactly() {
        let text = sample_text();
        for level in [1, 6, 9] {
            let mut gz = flate2::GzBuilder::new()
                .filename("layer.tar")
                .mtime(1_700_000_000)
                .write(Vec::new(), flate2::Compression::new(level));
            gz.write_all(&text).unwrap();
            round_trip(&gz.finish().unwrap());
        }
    }

    #[test]
    fn rebuild_refuses_plain_text_of_the_wrong_length() {
        let text = sample_text();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let blob = gz.finish().unwrap();
        let analysis = round_trip(&blob);
        let short = &text[..text.len() - 1];
        let err = rebuild(
            &analysis.recipe,
            &analysis.corrections,
            u64::MAX,
            &mut &short[..],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(matches!(err, RebuildError::Corrupt(_)), "{err}");
        let mut long = text.clone();
        long.push(b'x');
        let err = rebuild(
            &analysis.recipe,
            &analysis.corrections,
            u64::MAX,
            &mut &long[..],
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("longer"), "{err}");
    }

    #[test]
    fn truncated_and_foreign_input_is_unsupported() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&sample_text()).unwrap();
        let blob = gz.finish().unwrap();
        let cut = &blob[..blob.len() / 2];
        assert!(matches!(
            analyze(cut, CHUNKINGS[0], |_| Ok(())),
            Err(AnalyzeError::Unsupported(_))
        ));
        assert!(matches!(
            analyze(&b"not gzip at all"[..], CHUNKINGS[0], |_| Ok(())),
            Err(AnalyzeError::Unsupported(_))
        ));
    }

    #[test]
    fn header_lengths() {
        assert!(matches!(
            header_len(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
            Header::Complete(10)
        ));
        let named = [&[0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3][..], b"a.tar\0"].concat();
        assert!(matches!(header_len(&named), Header::Complete(16)));
        assert!(matches!(header_len(&named[..14]), Header::Incomplete));
    }
}
