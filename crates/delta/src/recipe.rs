//! Which rebuild gives back a blob's exact bytes from its plain text:
//! an exact port of the encoder that wrote it (Go's `compress/gzip`,
//! klauspost pgzip, libzstd at a level), else preflate's corrections for
//! gzip; or, when none does, the reason, naming the encoder.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use tender_format::FromIo;

use crate::compression::{Compression, decoder};
use crate::error::DeltaError;
use crate::go_flate;
use crate::gzip::{self, AnalyzeError, Chunking};
use crate::job::PatchOptions;
use crate::patch::Rebuild;
use crate::pgzip_recipe::{self, Found};
use crate::{kzstd_recipe, zstd_frames, zstd_recipe};

/// The rebuild of the blob at `path` (and its corrections), or why there
/// is none. Each candidate encoder is dropped at its first differing byte.
pub(crate) fn find(
    target_path: &Path,
    target_compression: Compression,
    target_plain_size: u64,
    options: &PatchOptions,
) -> Result<Result<(Rebuild, Vec<u8>), String>, DeltaError> {
    let open = |path: &Path| File::open(path).map_err(DeltaError::io_with("opening a blob"));
    let mut corrections = Vec::new();
    let mut rebuild = Rebuild::Identity;
    match target_compression {
        Compression::None => {}
        Compression::Gzip if let Some(level) = go_gzip_level(target_path)? => {
            rebuild = Rebuild::GoGzip { level };
        }
        Compression::Gzip => {
            let pgzip = pgzip_recipe::find(target_path, target_plain_size)
                .map_err(DeltaError::io_with("reading a blob"))?;
            match pgzip {
                Found::Exact(recipe) => rebuild = Rebuild::Pgzip(recipe),
                Found::NotPgzip | Found::Unmodelled(_) => {
                    match gzip_recipe(target_path, target_plain_size, options)? {
                        Ok(analysis) => {
                            corrections = analysis.corrections;
                            rebuild = Rebuild::Gzip(analysis.recipe);
                        }
                        Err(reason) => {
                            return Ok(Err(match pgzip {
                                Found::Unmodelled(why) => {
                                    format!("encoder not modelled: {why}; {reason}")
                                }
                                _ => format!("encoder not modelled: {reason}"),
                            }));
                        }
                    }
                }
            }
        }
        Compression::Zstd => {
            // klauspost/compress first: its frames are tried by their
            // window, and a probe of the first MiB rules it out.
            let kzstd = kzstd_recipe::find(target_path, target_plain_size)
                .map_err(DeltaError::io_with("reading a blob"))?;
            let kzstd_reason = match kzstd {
                kzstd_recipe::Found::Exact(recipe, layout) => {
                    return Ok(Ok((Rebuild::Kzstd(recipe), layout)));
                }
                kzstd_recipe::Found::Unmodelled(why) => why,
            };
            // A libzstd recipe makes one frame: a blob of several is not
            // tried, which would also cost each level's tables.
            let survey = zstd_frames::survey(open(target_path)?);
            if !matches!(survey, Ok(s) if s.frames == 1 && s.skippable == 0) {
                return Ok(Err(zstd_reason(target_path, &kzstd_reason, false)?));
            }
            let mut reopen =
                || -> io::Result<Box<dyn Read>> { Ok(Box::new(File::open(target_path)?)) };
            match zstd_recipe::find(&mut reopen, target_plain_size)
                .map_err(DeltaError::io_with("reading a blob"))?
            {
                Some(recipe) => rebuild = Rebuild::Zstd(recipe),
                None => return Ok(Err(zstd_reason(target_path, &kzstd_reason, true)?)),
            }
        }
    }
    Ok(Ok((rebuild, corrections)))
}

/// Why a zstd blob has no recipe, as precisely as its frames tell: what
/// the klauspost search found, and whether libzstd's levels were tried
/// (only for a blob of one frame, which is all a libzstd recipe makes).
fn zstd_reason(path: &Path, kzstd: &str, libzstd_tried: bool) -> Result<String, DeltaError> {
    let file = File::open(path).map_err(DeltaError::io_with("opening a blob"))?;
    let shape = match zstd_frames::survey(file) {
        Ok(survey) => survey.describe(),
        Err(e) => e.to_string(),
    };
    let libzstd = if libzstd_tried {
        "no level reproduces it"
    } else {
        "not tried, its recipes make one frame"
    };
    Ok(format!(
        "encoder not modelled: {shape}; klauspost/compress: {kzstd}; libzstd {}: {libzstd}",
        zstd_recipe::libzstd_version()
    ))
}

/// Analyses a gzip blob, moving the chunk boundaries if preflate fails at
/// one, and last as one chunk if that fits the window limit.
fn gzip_recipe(
    path: &Path,
    plain_size: u64,
    options: &PatchOptions,
) -> Result<Result<gzip::Analysis, String>, DeltaError> {
    let whole = Chunking {
        read_size: usize::MAX,
        plain_limit: usize::try_from(plain_size.saturating_add(1)).unwrap_or(usize::MAX),
    };
    let fits_whole = plain_size.saturating_mul(3) <= options.window_limit;
    let mut reason = String::new();
    for chunking in gzip::CHUNKINGS
        .into_iter()
        .chain(fits_whole.then_some(whole))
    {
        let file = File::open(path).map_err(DeltaError::io_with("opening a blob"))?;
        match gzip::analyze(file, chunking, |_| Ok(())) {
            Ok(analysis) => return Ok(Ok(analysis)),
            Err(AnalyzeError::Unsupported(why)) => reason = why,
            Err(AnalyzeError::Io(e)) => return Err(DeltaError::io_with("reading a blob")(e)),
        }
    }
    Ok(Err(reason))
}

/// The level at which Go's `compress/gzip` writes exactly this gzip blob,
/// if it does: then `go_flate` rebuilds it with no corrections at all
/// (preflate needs 1-6 % of the blob for these streams). The header Go
/// writes (no name, time 0, OS 255, XFL by level) rules most blobs out at
/// once and names the levels to try; each try stops at the first byte that
/// differs, which for another encoder is within its first block.
fn go_gzip_level(path: &Path) -> Result<Option<u8>, DeltaError> {
    let open = || File::open(path).map_err(DeltaError::io_with("opening a blob"));
    let mut head = [0u8; 10];
    if open()?.read_exact(&mut head).is_err() {
        return Ok(None);
    }
    let plain =
        || decoder(open()?, Compression::Gzip).map_err(DeltaError::io_with("reading a blob"));
    for &level in go_flate::candidate_levels(&head) {
        // The first 256 KiB first: pgzip and klauspost's gzip write Go's header
        // too, and the whole layer at seven levels would cost seconds.
        let expected: Box<dyn Read> = Box::new(io::BufReader::new(open()?));
        let mut compare = zstd_recipe::Compare::new(expected);
        if go_flate::go_gzip_start(level, &mut plain()?, 256 << 10, &mut compare).is_err() {
            continue;
        }
        let expected: Box<dyn Read> = Box::new(io::BufReader::new(open()?));
        let mut compare = zstd_recipe::Compare::new(expected);
        if go_flate::go_gzip(level, &mut plain()?, &mut compare).is_ok()
            && compare
                .matched_to_end()
                .map_err(DeltaError::io_with("reading a blob"))?
        {
            return Ok(Some(level));
        }
    }
    Ok(None)
}
