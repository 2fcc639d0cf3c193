//! The diff frame of a patch, and its proof: the patch entry is written
//! (header, corrections, diff) and then applied exactly as a site will, so
//! that only a patch that rebuilds the blob's digest ever ships.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;
use tender_format::FromIo;
use tender_format::Verdict;

use tempfile::NamedTempFile;
use tender_format::Hasher;
use zstd::stream::raw::CParameter;

use crate::apply::{ApplyLimits, apply};
use crate::diff_frames::{self, FrameEncoding};
use crate::error::DeltaError;
use crate::job::{Patch, PatchOptions, PatchOutcome, frame_threads};
use crate::patch::PatchHeader;

/// Search settings for two diff levels, measured on the Debian scenario of
/// scripts/bench.sh (a 48 MB and a 24 MB layer tar against their previous
/// versions). Long-distance matching finds the long matches into the base
/// layer either way; these settings decide the cost of the rest.
///
/// - 16 to 19 cut into frames (`diff_frames`, the default for large
///   layers): the level's own search with a binary tree of 2^24 entries,
///   which spans a whole frame (its 8 MiB of source and 4 MiB of target).
///   A narrow search loses 3 to 12 % there (measured with the zstd CLI on
///   the ruff binary's frames: search log 3 +3 %, one probe +11 %), so the
///   optimal parser keeps its full search: 5,288,448 → 4,872,704 bytes on
///   the zstd row, in 3.5 times the CPU of the narrow one-frame search.
/// - 19 in one frame: its optimal parser with a narrow search (one
///   binary-tree probe, 16 bytes is a good enough match, level 18's tree
///   size). 3.5 times faster than plain level 19, a third less memory,
///   2 % more bytes.
/// - 12, the fast choice: its lazy matcher with hash and chain tables of
///   2^24, which let it see the whole base layer. About 29 MB/s per core,
///   5 % more bytes than the default.
fn tuned_search(level: i32, framed: bool) -> Vec<CParameter> {
    match level {
        16..=19 if framed => vec![CParameter::ChainLog(24), CParameter::HashLog(20)],
        19 => vec![
            CParameter::SearchLog(1),
            CParameter::TargetLength(16),
            CParameter::ChainLog(23),
        ],
        12 => vec![CParameter::ChainLog(24), CParameter::HashLog(24)],
        _ => Vec::new(),
    }
}

/// Diffs `plain` against `reference`, writes the patch entry (header,
/// corrections, diff) and proves it by rebuilding the target exactly as a
/// site will. Anything short of the exact digest travels whole.
pub(crate) fn write_and_prove(
    mut header: PatchHeader,
    corrections: &[u8],
    reference: Vec<u8>,
    mut plain: Box<dyn Read + '_>,
    (source_path, work_dir): (&Path, &Path),
    level: i32,
    options: &PatchOptions,
) -> Result<PatchOutcome, DeltaError> {
    let window_limit = options.window_limit;
    let target_ref = header.target;
    if header.window_bytes() > window_limit {
        return Ok(PatchOutcome::Whole(format!(
            "rebuilding it would hold {} bytes, over the {}-byte window limit",
            header.window_bytes(),
            window_limit
        )));
    }

    // The diff of the plain texts, into a temporary file.
    let diff_file = NamedTempFile::new_in(work_dir)
        .map_err(DeltaError::io_with("creating a temporary file"))?;
    let search = tuned_search(level, header.frames.is_some());
    let mut out = BufWriter::with_capacity(1 << 20, diff_file.as_file());
    diff_frames::write_diff(
        &reference,
        header.frames.as_deref(),
        header.window_log,
        header.target_plain_size,
        &FrameEncoding {
            level,
            search: &search,
            threads: frame_threads(reference.len() as u64, options),
        },
        &mut plain,
        &mut out,
    )
    .map_err(DeltaError::io_with("writing the diff"))?;
    out.flush()
        .map_err(DeltaError::io_with("writing the diff"))?;
    drop(out);
    drop(reference);
    header.corrections_size = corrections.len() as u64;
    header.diff_size = diff_file
        .as_file()
        .metadata()
        .map_err(DeltaError::io_with("writing the diff"))?
        .len();

    // The patch entry: header, corrections, diff.
    let patch_file = NamedTempFile::new_in(work_dir)
        .map_err(DeltaError::io_with("creating a temporary file"))?;
    let mut hasher = Hasher::new();
    {
        let mut out = BufWriter::with_capacity(1 << 20, patch_file.as_file());
        let mut put = |bytes: &[u8]| -> io::Result<()> {
            hasher.update(bytes);
            out.write_all(bytes)
        };
        put(&header.encode()).map_err(DeltaError::io_with("writing the patch"))?;
        put(corrections).map_err(DeltaError::io_with("writing the patch"))?;
        let mut diff_in =
            File::open(diff_file.path()).map_err(DeltaError::io_with("reading the diff"))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = diff_in
                .read(&mut buf)
                .map_err(DeltaError::io_with("reading the diff"))?;
            if n == 0 {
                break;
            }
            put(&buf[..n]).map_err(DeltaError::io_with("writing the patch"))?;
        }
        out.flush()
            .map_err(DeltaError::io_with("writing the patch"))?;
    }
    drop(diff_file);
    let (digest, size) = hasher.finish();
    if size >= target_ref.size {
        return Ok(PatchOutcome::Whole(format!(
            "the patch ({size} bytes) is not smaller than the blob"
        )));
    }

    // Prove it: rebuild exactly as a site will.
    let limits = ApplyLimits {
        window: window_limit,
    };
    let patch_path = patch_file.into_temp_path();
    match apply(
        &patch_path,
        target_ref.digest,
        source_path,
        &mut io::sink(),
        limits,
    ) {
        Ok(_) => Ok(PatchOutcome::Patched(Box::new(Patch {
            file: patch_path,
            size,
            digest,
            header,
        }))),
        Err(e) if e.is_rejection() => Ok(PatchOutcome::Whole(format!(
            "the patch did not rebuild the blob exactly: {e}"
        ))),
        Err(e) => Err(e),
    }
}
