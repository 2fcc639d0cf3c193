//! gzip layers written by klauspost pgzip (containers/image: podman,
//! buildah, skopeo; umoci), rebuilt exactly by the `klauspost` port.
//!
//! A blob is tried only if it has pgzip's shape: its DEFLATE stream ends
//! with a sync flush followed by the final empty block (`00 00 ff ff 03
//! 00`), what pgzip's `Flush` then `Close` of the last block write. The
//! block size is read from the stream (the plain bytes before the first
//! sync flush), then each modelled klauspost/compress behaviour re-encodes
//! the plain text and is compared with the blob, stopping at the first
//! differing byte. The gzip header and trailer are kept verbatim, so
//! header variants (name, modification time, OS) cannot break a match.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

use flate2::{Decompress, FlushDecompress};
use serde::{Deserialize, Serialize};

use crate::compression::{Compression, decoder};
use crate::gzip::{self, Header};
use crate::klauspost::FlateVersion;
use crate::klauspost::pgzip::{self, DEFAULT_BLOCK_SIZE, TAIL_SIZE};
use crate::zstd_recipe::Compare;

/// What pgzip's last block ends with: `Flush` (an empty stored block) and
/// `Close` (an empty final fixed block), before the 8-byte trailer.
const PGZIP_END: [u8; 6] = [0x00, 0x00, 0xff, 0xff, 0x03, 0x00];
/// The sync flush marker: an empty stored block's length fields.
const SYNC_MARKER: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The trailer: CRC-32 and size.
const TRAILER: usize = 8;
/// Largest block size a patch may name: a rebuild holds one block.
pub const MAX_BLOCK_SIZE: u64 = 64 << 20;
/// The compression levels modelled: `DefaultCompression` and `BestSpeed`.
pub const LEVELS: [u8; 2] = [5, 1];

/// What rebuilds a pgzip blob from its plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PgzipRecipe {
    /// klauspost/compress flate level: 5 (pgzip's `DefaultCompression`) or
    /// 1 (`BestSpeed`).
    pub level: u8,
    /// Plain bytes per pgzip block.
    pub block_size: u64,
    /// The klauspost/compress behaviour that wrote it.
    pub compress: FlateVersion,
    /// The gzip member header, hex.
    pub header: String,
    /// Everything after the DEFLATE stream (the trailer), hex.
    pub tail: String,
}

impl PgzipRecipe {
    /// Checks what a patch header may claim, before anything is rebuilt.
    pub fn check(&self) -> Result<(), String> {
        if !LEVELS.contains(&self.level) {
            return Err(format!(
                "pgzip rebuild exists for levels 5 and 1, not {}",
                self.level
            ));
        }
        if self.block_size <= TAIL_SIZE as u64 || self.block_size > MAX_BLOCK_SIZE {
            return Err(format!(
                "pgzip block size {} is outside {}..={MAX_BLOCK_SIZE}",
                self.block_size,
                TAIL_SIZE + 1
            ));
        }
        for (name, value, limit) in [
            ("header", &self.header, gzip::MAX_HEADER),
            ("tail", &self.tail, TRAILER),
        ] {
            if value.len() > 2 * limit || hex::decode(value).is_err() {
                return Err(format!("pgzip {name} is not hex of at most {limit} bytes"));
            }
        }
        Ok(())
    }
}

/// What became of trying a gzip blob as pgzip's.
#[derive(Debug)]
pub enum Found {
    Exact(PgzipRecipe),
    /// Not pgzip's shape: preflate's turn.
    NotPgzip,
    /// pgzip's shape, but no modelled encoder writes it: why.
    Unmodelled(String),
}

/// Tries the gzip blob at `path` (of `plain_size` plain bytes) as pgzip's.
pub fn find(path: &Path, plain_size: u64) -> io::Result<Found> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut head = Vec::new();
    (&mut file)
        .take(gzip::MAX_HEADER as u64 + 16)
        .read_to_end(&mut head)?;
    let header_len = match gzip::header_len(&head) {
        Header::Complete(n) => n,
        Header::Incomplete | Header::Invalid(_) => return Ok(Found::NotPgzip),
    };
    if size < (header_len + PGZIP_END.len() + TRAILER) as u64 {
        return Ok(Found::NotPgzip);
    }
    let mut end = [0u8; PGZIP_END.len() + TRAILER];
    file.seek(SeekFrom::End(-(end.len() as i64)))?;
    file.read_exact(&mut end)?;
    if end[..PGZIP_END.len()] != PGZIP_END {
        return Ok(Found::NotPgzip);
    }
    let deflate_len = size - (header_len + TRAILER) as u64;
    // pgzip writes XFL 4 at BestSpeed, 2 at BestCompression, else 0.
    let xfl = head[8];
    let Some(level) = LEVELS.into_iter().find(|l| pgzip::xfl(*l) == xfl) else {
        return Ok(Found::Unmodelled(format!(
            "gzip shaped as klauspost pgzip writes it (sync-flush blocks) at a level tender \
             does not model (XFL {xfl}; tender models levels 5 and 1)"
        )));
    };

    // The block size: the plain bytes before the first sync flush (when
    // that is the whole plain text, any larger size writes the same single
    // block too), else pgzip's default.
    let mut block_sizes = Vec::new();
    if let Some(n) = first_sync_block(path, header_len as u64)?
        && n > TAIL_SIZE as u64
        && n <= plain_size
    {
        block_sizes.push(n);
    }
    block_sizes.push(DEFAULT_BLOCK_SIZE as u64);
    if plain_size >= DEFAULT_BLOCK_SIZE as u64 {
        block_sizes.push(plain_size + 1);
    }
    let mut seen = Vec::new();
    block_sizes.retain(|b| {
        *b <= MAX_BLOCK_SIZE && !seen.contains(b) && {
            seen.push(*b);
            true
        }
    });
    let mut tried = Vec::new();
    for &block_size in &block_sizes {
        for compress in FlateVersion::ALL {
            let recipe = PgzipRecipe {
                level,
                block_size,
                compress,
                header: hex::encode(&head[..header_len]),
                tail: hex::encode(&end[PGZIP_END.len()..]),
            };
            if reencodes_exactly(path, &recipe, header_len as u64, deflate_len)? {
                return Ok(Found::Exact(recipe));
            }
        }
        tried.push(block_size.to_string());
    }
    Ok(Found::Unmodelled(format!(
        "gzip shaped as klauspost pgzip writes it (sync-flush blocks) but not written by an \
         encoder version tender models (klauspost/compress 1.15.12-1.18.0 or 1.18.2-1.19.1, \
         level {level}, blocks of {} bytes)",
        tried.join(" or ")
    )))
}

/// Whether the recipe's encoder writes exactly the blob's DEFLATE stream
/// (`deflate_len` bytes after `header_len`); stops at the first difference.
fn reencodes_exactly(
    path: &Path,
    recipe: &PgzipRecipe,
    header_len: u64,
    deflate_len: u64,
) -> io::Result<bool> {
    let mut expected = BufReader::with_capacity(1 << 20, File::open(path)?);
    expected.seek(SeekFrom::Start(header_len))?;
    let mut compare = Compare::new(Box::new(expected.take(deflate_len)));
    let mut plain = decoder(File::open(path)?, Compression::Gzip)?;
    match pgzip::deflate(
        recipe.level,
        recipe.compress,
        recipe.block_size as usize,
        &mut plain,
        &mut compare,
    ) {
        Ok(_) => compare.matched_to_end(),
        Err(_) if compare.differs() => Ok(false),
        Err(e) => Err(e),
    }
}

/// The plain bytes before the stream's first sync-flush marker: pgzip's
/// block size when there is more than one block. Decodes no further.
fn first_sync_block(path: &Path, header_len: u64) -> io::Result<Option<u64>> {
    let mut input = BufReader::with_capacity(1 << 20, File::open(path)?);
    input.seek(SeekFrom::Start(header_len))?;
    let mut inflate = Decompress::new(false);
    let mut scratch = vec![0u8; 1 << 20];
    let mut chunk = vec![0u8; 1 << 16];
    // The last bytes of the previous chunk: a marker may straddle two.
    let mut carry: Vec<u8> = Vec::new();
    loop {
        let n = input.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        let seam: Vec<u8> = carry.iter().chain(&chunk[..n]).copied().collect();
        let marker = seam
            .windows(SYNC_MARKER.len())
            .position(|w| w == SYNC_MARKER)
            .map(|at| at + SYNC_MARKER.len() - carry.len());
        let mut feed = &chunk[..marker.unwrap_or(n)];
        while !feed.is_empty() {
            let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
            let status = inflate
                .decompress(feed, &mut scratch, FlushDecompress::None)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let used = (inflate.total_in() - before_in) as usize;
            feed = &feed[used..];
            let stuck = used == 0 && inflate.total_out() == before_out;
            if stuck || status == flate2::Status::StreamEnd {
                return Ok(None);
            }
        }
        if marker.is_some() {
            return Ok(Some(inflate.total_out()));
        }
        carry = chunk[n.saturating_sub(SYNC_MARKER.len() - 1)..n].to_vec();
    }
}

/// Writes the blob: header, the pgzip DEFLATE stream of `plain`, tail.
pub fn rebuild(recipe: &PgzipRecipe, plain: &mut dyn Read, out: &mut dyn Write) -> io::Result<()> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidData, e);
    recipe.check().map_err(invalid)?;
    let header = hex::decode(&recipe.header).map_err(|e| invalid(e.to_string()))?;
    let tail = hex::decode(&recipe.tail).map_err(|e| invalid(e.to_string()))?;
    out.write_all(&header)?;
    pgzip::deflate(
        recipe.level,
        recipe.compress,
        recipe.block_size as usize,
        plain,
        out,
    )?;
    out.write_all(&tail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::Rebuild;
    use tender_test_support::pgzip_with;

    /// Compressible plain text of `n` bytes.
    fn text(n: usize) -> Vec<u8> {
        (0u32..)
            .flat_map(|i| format!("line {i} of layer {}\n", i % 89).into_bytes())
            .take(n)
            .collect()
    }

    /// What `find` makes of `plain` compressed by Go's pgzip with `args`.
    fn found(args: &[&str], plain: &[u8]) -> Found {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, pgzip_with(args, plain)).unwrap();
        find(&path, plain.len() as u64).unwrap()
    }

    #[test]
    fn block_sizes_are_found_at_the_edges() {
        // (plain size, block size Go used, block size the recipe names)
        let cases = [
            // One block exactly: it is flushed full, then an empty one closes.
            (DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE, DEFAULT_BLOCK_SIZE),
            (20_000, 20_000, 20_000),
            (40_000, 20_000, 20_000),
            (40_001, 20_000, 20_000),
            (150_000, 65_536, 65_536),
            // One short block: the default stands for every larger size.
            (19_999, 20_000, DEFAULT_BLOCK_SIZE),
            (0, 20_000, DEFAULT_BLOCK_SIZE),
        ];
        for (n, go_block, named) in cases {
            let plain = text(n);
            match found(&["-1", &go_block.to_string()], &plain) {
                Found::Exact(recipe) => {
                    assert_eq!(recipe.block_size, named as u64, "{n} bytes in {go_block}")
                }
                other => panic!("{n} bytes in blocks of {go_block}: {other:?}"),
            }
        }
        // Level 1 is told by XFL 4.
        match found(&["1", "30000"], &text(100_000)) {
            Found::Exact(recipe) => assert_eq!((recipe.level, recipe.block_size), (1, 30_000)),
            other => panic!("{other:?}"),
        }
        // Level 9 (XFL 2) is pgzip's shape but not modelled.
        match found(&["9"], &text(100_000)) {
            Found::Unmodelled(why) => assert!(why.contains("XFL 2"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    fn recipe() -> PgzipRecipe {
        PgzipRecipe {
            level: 5,
            block_size: 1 << 20,
            compress: FlateVersion::V1_15_12,
            header: "1f8b080000096e8800ff".into(),
            tail: "0011223344556677".into(),
        }
    }

    #[test]
    fn the_recipe_is_the_documented_json() {
        let json = serde_json::to_value(Rebuild::Pgzip(recipe())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "kind": "pgzip", "level": 5, "block_size": 1048576,
                "compress": "1.15.12",
                "header": "1f8b080000096e8800ff", "tail": "0011223344556677",
            })
        );
        let newer = PgzipRecipe {
            compress: FlateVersion::V1_18_2,
            ..recipe()
        };
        let back: Rebuild =
            serde_json::from_value(serde_json::to_value(Rebuild::Pgzip(newer.clone())).unwrap())
                .unwrap();
        assert_eq!(back, Rebuild::Pgzip(newer));
        let unknown = serde_json::json!({
            "kind": "pgzip", "level": 5, "block_size": 1048576, "compress": "1.17.0",
            "header": "", "tail": "",
        });
        assert!(serde_json::from_value::<Rebuild>(unknown).is_err());
    }

    #[test]
    fn check_refuses_what_no_encoder_writes_or_memory_allows() {
        assert_eq!(recipe().check(), Ok(()));
        let bad = [
            PgzipRecipe {
                level: 6,
                ..recipe()
            },
            PgzipRecipe {
                level: 9,
                ..recipe()
            },
            PgzipRecipe {
                block_size: TAIL_SIZE as u64,
                ..recipe()
            },
            PgzipRecipe {
                block_size: MAX_BLOCK_SIZE + 1,
                ..recipe()
            },
            PgzipRecipe {
                header: "1f8b0x".into(),
                ..recipe()
            },
            PgzipRecipe {
                tail: "00".repeat(9),
                ..recipe()
            },
        ];
        for r in bad {
            assert!(r.check().is_err(), "{r:?}");
            let mut out = Vec::new();
            assert!(rebuild(&r, &mut &b""[..], &mut out).is_err(), "{r:?}");
        }
    }
}
