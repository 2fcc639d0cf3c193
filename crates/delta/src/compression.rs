//! Which compression a layer blob uses, and its uncompressed bytes.
//!
//! The compression is told by the blob's first bytes, not by its media type:
//! registries carry plenty of layers whose media type says one thing while
//! the bytes are another, and the bytes are what must be rebuilt.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::read_full::read_full;

/// The compressions tender can see inside and rebuild.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Plain bytes (an uncompressed tar, a config, anything else).
    None,
    /// gzip (RFC 1952), as most registries' layers are.
    Gzip,
    /// zstd frames (RFC 8878).
    Zstd,
}

impl Compression {
    /// Tells the compression from a blob's first four bytes.
    pub fn sniff(head: &[u8]) -> Compression {
        match head {
            [0x1f, 0x8b, 0x08, ..] => Compression::Gzip,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            _ => Compression::None,
        }
    }

    /// Tells the compression of a file.
    pub fn of_file(path: &Path) -> io::Result<Compression> {
        let mut head = [0u8; 4];
        let filled = read_full(&mut File::open(path)?, &mut head)?;
        Ok(Compression::sniff(&head[..filled]))
    }
}

/// A reader of the uncompressed bytes of `compressed`.
pub fn decoder<'a>(
    compressed: impl Read + 'a,
    compression: Compression,
) -> io::Result<Box<dyn Read + 'a>> {
    let input = BufReader::with_capacity(1 << 20, compressed);
    Ok(match compression {
        Compression::None => Box::new(input),
        // Multi-member: what `gzip -d` and container runtimes accept.
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(input)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input)?),
    })
}

/// The uncompressed bytes of a blob, or `None` if there are more than
/// `limit` of them (the caller then does without a patch). `expected` is
/// how many there probably are: reserving them at once keeps a large
/// reference from being copied as it grows, which would briefly hold it
/// twice.
pub fn plain_bytes(
    compressed: impl Read,
    compression: Compression,
    limit: u64,
    expected: Option<u64>,
) -> io::Result<Option<Vec<u8>>> {
    let reserve = expected.unwrap_or(0).min(limit).saturating_add(1);
    let mut plain = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    decoder(compressed, compression)?
        .take(limit.saturating_add(1))
        .read_to_end(&mut plain)?;
    Ok((plain.len() as u64 <= limit).then_some(plain))
}

/// How many uncompressed bytes a blob file probably has: gzip's ISIZE
/// trailer (modulo 2^32, of the last member), a plain file's length, and
/// for zstd the frame content size of a blob of one frame that states it,
/// else the bytes counted by decoding it (zstd decodes at about 1 GB/s;
/// containers/image's frames do not state their size). Only a hint.
pub fn plain_size_hint(path: &Path, compression: Compression) -> Option<u64> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path).ok()?;
    match compression {
        Compression::None => file.metadata().ok().map(|m| m.len()),
        Compression::Gzip => {
            file.seek(SeekFrom::End(-4)).ok()?;
            let mut isize = [0u8; 4];
            file.read_exact(&mut isize).ok()?;
            Some(u64::from(u32::from_le_bytes(isize)))
        }
        Compression::Zstd => {
            let spans = crate::zstd_frames::spans(io::BufReader::new(file)).ok()?;
            match spans[..] {
                [
                    crate::zstd_frames::Span {
                        kind: crate::zstd_frames::SpanKind::Frame(header),
                        ..
                    },
                ] if header.content_size.is_some() => header.content_size,
                _ => plain_size(File::open(path).ok()?, Compression::Zstd).ok(),
            }
        }
    }
}

/// Counts the uncompressed bytes of a blob without keeping them.
pub fn plain_size(compressed: impl Read, compression: Compression) -> io::Result<u64> {
    io::copy(&mut decoder(compressed, compression)?, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn sniffs_by_magic() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 0x08, 0]),
            Compression::Gzip
        );
        assert_eq!(
            Compression::sniff(&[0x28, 0xb5, 0x2f, 0xfd]),
            Compression::Zstd
        );
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
    }

    #[test]
    fn plain_bytes_respects_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[7u8; 1000]).unwrap();
        let gz = gz.finish().unwrap();
        let all = plain_bytes(&gz[..], Compression::Gzip, 1000, Some(1000)).unwrap();
        assert_eq!(all.unwrap(), vec![7u8; 1000]);
        assert!(
            plain_bytes(&gz[..], Compression::Gzip, 999, None)
                .unwrap()
                .is_none()
        );
        assert_eq!(plain_size(&gz[..], Compression::Gzip).unwrap(), 1000);
    }
}
