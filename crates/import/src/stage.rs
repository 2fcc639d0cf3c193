//! Staging: the bundle's entries copied off the stick into a private
//! directory of the site state as they are verified. A file gets its final
//! name only after its digest matched, so anything in staging under a
//! final name was verified once; a resumed import re-hashes it anyway
//! before relying on it, since disks and people change files.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use tender_format::manifest::{BundleManifest, Encoding, Entry};
use tender_format::reader::EntrySink;
use tender_format::{BundleReader, Digest, ReadSummary, atomic};

use crate::error::ImportError;

/// Marks a staging directory whose every entry was verified.
const COMPLETE: &str = ".complete";

/// Writes one entry to `<final>.partial`, renaming it on commit.
struct StagingSink {
    partial: PathBuf,
    target: PathBuf,
    out: io::BufWriter<File>,
}

impl EntrySink for StagingSink {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        let file = self.out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        fs::rename(&self.partial, &self.target)?;
        Ok(())
    }
}

/// Where an entry is staged. A patch is not the blob its path names, so
/// it goes to `patches/` and the blob is rebuilt from it later (delta.rs).
pub fn staged_path(dir: &Path, entry: &Entry) -> PathBuf {
    // The manifest validated every path (oci-layout, index.json or
    // blobs/sha256/<hex>), so joining it onto the staging dir is safe.
    match entry.encoding {
        Encoding::Identity => dir.join(&entry.path),
        Encoding::Patch => dir.join("patches").join(&entry.path),
    }
}

fn open_sink(dir: &Path, entry: &Entry) -> io::Result<Box<dyn EntrySink>> {
    let target = staged_path(dir, entry);
    let partial = target.with_extension("partial");
    let out = io::BufWriter::with_capacity(1 << 20, File::create(&partial)?);
    Ok(Box::new(StagingSink {
        partial,
        target,
        out,
    }))
}

/// Copies and verifies every entry into `dir`, or, if `dir` holds a
/// complete earlier staging of this very manifest, re-hashes that instead
/// of reading the bundle again. Returns whether the bundle was read.
pub fn stage<R: Read>(
    reader: BundleReader<R>,
    dir: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<Option<ReadSummary>, ImportError> {
    let manifest = reader.manifest().clone();
    let digest = reader.manifest_digest();
    let io = |e| ImportError::io_at("staging", dir, e);
    if is_complete(dir, &digest) && rehash(dir, &manifest)?.is_empty() {
        return Ok(None);
    }
    atomic::create_dir_all(&dir.join("blobs/sha256")).map_err(io)?;
    if manifest
        .entries
        .iter()
        .any(|e| e.encoding == Encoding::Patch)
    {
        atomic::create_dir_all(&dir.join("patches/blobs/sha256")).map_err(io)?;
    }
    let _ = fs::remove_file(dir.join(COMPLETE));
    let factory = |_: usize, entry: &Entry| open_sink(dir, entry);
    let summary = reader.read_entries(&factory, progress)?;
    atomic::sync_dir(&dir.join("blobs/sha256")).map_err(io)?;
    if dir.join("patches").exists() {
        atomic::sync_dir(&dir.join("patches/blobs/sha256")).map_err(io)?;
    }
    atomic::write(&dir.join(COMPLETE), digest.to_string().as_bytes()).map_err(io)?;
    Ok(Some(summary))
}

fn is_complete(dir: &Path, digest: &Digest) -> bool {
    fs::read_to_string(dir.join(COMPLETE)).is_ok_and(|s| s == digest.to_string())
}

/// Re-hashes staged files against the manifest (both cores); returns the
/// paths that are missing or wrong.
pub fn rehash(dir: &Path, manifest: &BundleManifest) -> Result<Vec<String>, ImportError> {
    let ok = tender_format::parallel::map(&manifest.entries, 4, |entry| {
        File::open(staged_path(dir, entry))
            .and_then(Digest::of_reader)
            .is_ok_and(|(d, n)| d == entry.digest && n == entry.size)
    });
    Ok(manifest
        .entries
        .iter()
        .zip(ok)
        .filter(|(_, ok)| !ok)
        .map(|(e, _)| e.path.clone())
        .collect())
}
