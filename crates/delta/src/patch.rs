//! The patch container (bundle spec §8.3): what a `patch`-encoded entry
//! holds.
//!
//! ```text
//! "tender-patch/v1\n"        16 bytes
//! header length              4 bytes, big-endian, at most 1 MiB
//! header                     canonical JSON (PatchHeader)
//! corrections                corrections_size bytes (gzip rebuild data)
//! diff                       diff_size bytes: zstd frames (one, or `frames`)
//! ```
//!
//! The header comes first so the importer knows the source blob and the
//! memory the rebuild needs before it reads anything else; the corrections
//! come before the diff so the diff can be decoded in one streaming pass.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};
use tender_format::{Digest, canonical};

use crate::compression::Compression;
use crate::diff_frames::{self, DiffFrame};
use crate::go_flate;
use crate::gzip::GzipRecipe;
use crate::kzstd_recipe::KzstdRecipe;
use crate::pgzip_recipe::PgzipRecipe;
use crate::zstd_recipe::ZstdRecipe;

pub const MAGIC: &[u8; 16] = b"tender-patch/v1\n";
/// Largest header a reader accepts (a gzip recipe lists one small object
/// per 8 MiB chunk, so this covers terabyte layers).
pub const MAX_HEADER: u32 = 1024 * 1024;

/// A blob by digest and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

/// How the target's exact bytes are made from its plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Rebuild {
    /// The plain text is the blob.
    Identity,
    Gzip(GzipRecipe),
    /// Go's `compress/gzip` at `level` (1 to 9) with its default header,
    /// which `go_flate` re-implements exactly: no corrections needed.
    GoGzip {
        level: u8,
    },
    /// klauspost pgzip (containers/image, umoci) at its default level or
    /// BestSpeed, which `klauspost` re-implements exactly: no corrections
    /// needed.
    Pgzip(PgzipRecipe),
    Zstd(ZstdRecipe),
    /// klauspost/compress's Go zstd encoder (containers/image, zstd and
    /// zstd:chunked), which `klauspost_zstd` re-implements exactly; the
    /// corrections hold the blob's frame layout.
    Kzstd(KzstdRecipe),
}

/// The patch header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchHeader {
    /// The blob this patch rebuilds.
    pub target: BlobRef,
    /// Bytes of the target's plain text (its uncompressed tar).
    pub target_plain_size: u64,
    /// The blob the site holds that the diff refers to.
    pub source: BlobRef,
    pub source_compression: Compression,
    /// Bytes of the source's plain text: the diff's reference prefix.
    pub source_plain_size: u64,
    /// zstd window log of the diff frame.
    pub window_log: u32,
    pub rebuild: Rebuild,
    pub corrections_size: u64,
    pub diff_size: u64,
    /// The diff as one frame per piece of the target, each against a
    /// slice of the source (absent: one frame against all of it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<DiffFrame>>,
}

impl PatchHeader {
    /// The memory a rebuild holds at once: the reference, the decoder's
    /// window and the largest chunk of plain text being re-compressed.
    pub fn window_bytes(&self) -> u64 {
        let chunk = match &self.rebuild {
            Rebuild::Gzip(recipe) => recipe.largest_chunk(),
            // One block of plain text and the previous block's tail.
            Rebuild::Pgzip(recipe) => recipe
                .block_size
                .saturating_add(crate::klauspost::pgzip::TAIL_SIZE as u64),
            Rebuild::Kzstd(recipe) => recipe.memory(),
            Rebuild::Identity | Rebuild::GoGzip { .. } | Rebuild::Zstd(_) => 0,
        };
        self.source_plain_size
            .saturating_add(self.target_plain_size.min(1u64 << self.window_log.min(40)))
            .saturating_add(chunk)
    }

    /// Bytes of the whole patch entry this header describes, given the
    /// length of the encoded header (magic and length field included).
    pub fn entry_size(&self, encoded_len: usize) -> u64 {
        (encoded_len as u64)
            .saturating_add(self.corrections_size)
            .saturating_add(self.diff_size)
    }

    /// The header as it is written: magic, length, canonical JSON.
    pub fn encode(&self) -> Vec<u8> {
        let json = canonical::to_vec(self).expect("a patch header serializes");
        let mut out = Vec::with_capacity(MAGIC.len() + 4 + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(json.len() as u32).to_be_bytes());
        out.extend_from_slice(&json);
        out
    }

    /// Reads the magic and header from the start of a patch entry and
    /// returns the header and how many bytes it took.
    pub fn read(input: &mut impl Read) -> Result<(PatchHeader, usize), PatchFormatError> {
        let mut magic = [0u8; 16];
        input.read_exact(&mut magic).map_err(PatchFormatError::io)?;
        if &magic != MAGIC {
            return Err(PatchFormatError::Invalid(
                "not a tender patch (bad magic)".into(),
            ));
        }
        let mut len = [0u8; 4];
        input.read_exact(&mut len).map_err(PatchFormatError::io)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_HEADER {
            return Err(PatchFormatError::Invalid(format!(
                "header of {len} bytes is over the {MAX_HEADER}-byte limit"
            )));
        }
        let mut json = vec![0u8; len as usize];
        input.read_exact(&mut json).map_err(PatchFormatError::io)?;
        let header: PatchHeader = canonical::from_slice(&json).map_err(|e| {
            PatchFormatError::Invalid(format!(
                "header: {}",
                tender_format::error::chain_message(&e)
            ))
        })?;
        // One header, one encoding (serde would also read it from an array).
        if canonical::to_vec(&header).ok().as_deref() != Some(&json[..]) {
            return Err(PatchFormatError::Invalid(
                "header is not in canonical form".into(),
            ));
        }
        if let Rebuild::GoGzip { level } = header.rebuild
            && !go_flate::LEVELS.contains(&level)
        {
            return Err(PatchFormatError::Invalid(format!(
                "gogzip rebuild level {level} is outside 1..=9"
            )));
        }
        if let Rebuild::Pgzip(recipe) = &header.rebuild {
            recipe.check().map_err(PatchFormatError::Invalid)?;
        }
        if !(10..=31).contains(&header.window_log) {
            return Err(PatchFormatError::Invalid(format!(
                "window_log {} is outside 10..=31",
                header.window_log
            )));
        }
        if let Some(frames) = &header.frames {
            diff_frames::check(
                frames,
                header.source_plain_size,
                header.target_plain_size,
                header.window_log,
            )
            .map_err(PatchFormatError::Invalid)?;
        }
        Ok((header, MAGIC.len() + 4 + json.len()))
    }
}

/// Why a patch entry's bytes are not a patch.
#[derive(Debug, thiserror::Error)]
pub enum PatchFormatError {
    #[error("{0}")]
    Invalid(String),
    #[error("reading the patch: {0}")]
    Io(io::Error),
}

impl PatchFormatError {
    fn io(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            PatchFormatError::Invalid("patch ends inside its header".into())
        } else {
            PatchFormatError::Io(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PatchHeader {
        PatchHeader {
            target: BlobRef {
                digest: Digest::of(b"new"),
                size: 3,
            },
            target_plain_size: 10,
            source: BlobRef {
                digest: Digest::of(b"old"),
                size: 3,
            },
            source_compression: Compression::Gzip,
            source_plain_size: 10,
            window_log: 20,
            rebuild: Rebuild::Identity,
            corrections_size: 0,
            diff_size: 5,
            frames: None,
        }
    }

    #[test]
    fn header_round_trips() {
        let bytes = sample().encode();
        let (read, len) = PatchHeader::read(&mut &bytes[..]).unwrap();
        assert_eq!(read, sample());
        assert_eq!(len, bytes.len());
    }

    #[test]
    fn bad_magic_length_and_truncation_are_invalid() {
        let mut bytes = sample().encode();
        bytes[0] = b'T';
        assert!(matches!(
            PatchHeader::read(&mut &bytes[..]),
            Err(PatchFormatError::Invalid(_))
        ));
        let mut bytes = sample().encode();
        bytes[16..20].copy_from_slice(&(MAX_HEADER + 1).to_be_bytes());
        assert!(PatchHeader::read(&mut &bytes[..]).is_err());
        let bytes = sample().encode();
        let err = PatchHeader::read(&mut &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("ends inside"), "{err}");
    }

    #[test]
    fn gogzip_levels_outside_1_to_9_are_invalid() {
        for (level, valid) in [(0, false), (1, true), (6, true), (9, true), (10, false)] {
            let header = PatchHeader {
                rebuild: Rebuild::GoGzip { level },
                ..sample()
            };
            let read = PatchHeader::read(&mut &header.encode()[..]);
            assert_eq!(read.is_ok(), valid, "level {level}");
        }
    }
}
