//! Sealing: turn a staged OCI image layout into a signed bundle file.
//!
//! Every blob is hashed while the manifest is built (both cores, one blob
//! per core), and hashed again as it is written, so a file that changed in
//! between is caught rather than sealed.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::thread;

use tender_format::layout::{BLOBS_DIR, EntryPath, OCI_INDEX_FILE, OCI_LAYOUT_FILE};
use tender_format::manifest::{
    BundleKind, BundleManifest, DEFAULT_SIGNATURE_SLOT_SIZE, Encoding, Entry, FORMAT_V1, Release,
    Targets,
};
use tender_format::{Digest, SignatureSlot, atomic, write_bundle};
use tender_trust::PrivateKey;
use tender_trust::keys::now_rfc3339;

use crate::error::ExportError;

/// What the manifest says beyond the layout's contents.
#[derive(Debug, Clone)]
pub struct SealOptions {
    pub channel: String,
    pub sequence: u64,
    pub creator: String,
    pub targets: Targets,
    pub releases: Vec<Release>,
    /// Fixed for reproducible test vectors; random otherwise.
    pub bundle_id: Option<String>,
    /// Fixed for reproducible test vectors; now otherwise.
    pub created: Option<String>,
}

/// A bundle written to disk.
#[derive(Debug, Clone)]
pub struct SealedBundle {
    pub path: PathBuf,
    pub manifest: BundleManifest,
    pub manifest_digest: Digest,
    pub bytes: u64,
}

/// Builds the manifest for a layout, signs it with `key` in role
/// `release`, and writes the bundle atomically to `out`.
pub fn seal_layout(
    layout: &Path,
    options: &SealOptions,
    key: &PrivateKey,
    out: &Path,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    let manifest = manifest_for_layout(layout, options)?;
    let manifest_bytes = manifest.to_canonical_bytes()?;
    let mut slot = SignatureSlot::default();
    slot.add(key.sign("release", &manifest_bytes, &options.creator));
    let bytes = atomic::write_with(out, |w| {
        let mut open = |entry: &Entry| -> io::Result<Box<dyn Read>> {
            Ok(Box::new(File::open(layout.join(&entry.path))?))
        };
        write_bundle(w, &manifest_bytes, &slot, &mut open, progress).map_err(io::Error::other)
    })
    .map_err(|e| ExportError::io("writing bundle", out, e))?;
    Ok(SealedBundle {
        path: out.to_path_buf(),
        manifest_digest: Digest::of(&manifest_bytes),
        manifest,
        bytes,
    })
}

/// Lists and hashes every file of the layout into a v1 manifest.
pub fn manifest_for_layout(
    layout: &Path,
    options: &SealOptions,
) -> Result<BundleManifest, ExportError> {
    let bad = |reason: String| ExportError::BadLayout {
        path: layout.to_path_buf(),
        reason,
    };
    let mut paths = vec![OCI_LAYOUT_FILE.to_string(), OCI_INDEX_FILE.to_string()];
    let blobs_dir = layout.join(BLOBS_DIR);
    let listing =
        fs::read_dir(&blobs_dir).map_err(|e| ExportError::io("listing", &blobs_dir, e))?;
    let mut blob_names = Vec::new();
    for item in listing {
        let item = item.map_err(|e| ExportError::io("listing", &blobs_dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        let file_type = item
            .file_type()
            .map_err(|e| ExportError::io("listing", item.path(), e))?;
        if !file_type.is_file() {
            return Err(bad(format!("{BLOBS_DIR}{name} is not a regular file")));
        }
        if name.starts_with(".tmp") {
            continue; // an interrupted download's temporary file
        }
        let path = format!("{BLOBS_DIR}{name}");
        EntryPath::parse(&path).map_err(bad)?;
        blob_names.push(path);
    }
    blob_names.sort();
    paths.extend(blob_names);

    let entries = hash_files(layout, &paths)?;
    for entry in &entries {
        if let Ok(EntryPath::Blob(named)) = EntryPath::parse(&entry.path)
            && named != entry.digest
        {
            return Err(bad(format!(
                "{} holds content with digest {}",
                entry.path, entry.digest
            )));
        }
    }
    let bundle_id = match &options.bundle_id {
        Some(id) => id.clone(),
        None => random_id()?,
    };
    let manifest = BundleManifest {
        format: FORMAT_V1.to_string(),
        bundle_id,
        kind: BundleKind::Full,
        channel: options.channel.clone(),
        sequence: options.sequence,
        created: options.created.clone().unwrap_or_else(now_rfc3339),
        creator: options.creator.clone(),
        targets: options.targets.clone(),
        releases: options.releases.clone(),
        base: None,
        signature_slot_size: DEFAULT_SIGNATURE_SLOT_SIZE,
        entries,
    };
    manifest.validate()?;
    Ok(manifest)
}

/// Hashes files on all cores, one whole file per worker at a time.
fn hash_files(root: &Path, paths: &[String]) -> Result<Vec<Entry>, ExportError> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<Result<Entry, ExportError>>>> =
        Mutex::new((0..paths.len()).map(|_| None).collect());
    let workers = thread::available_parallelism().map_or(2, |n| n.get().min(8));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = {
                        let mut n = next.lock().expect("no panics while locked");
                        let i = *n;
                        *n += 1;
                        i
                    };
                    let Some(rel) = paths.get(i) else { break };
                    let path = root.join(rel);
                    let result = File::open(&path)
                        .and_then(Digest::of_reader)
                        .map(|(digest, size)| Entry {
                            path: rel.clone(),
                            size,
                            digest,
                            encoding: Encoding::Identity,
                        })
                        .map_err(|e| ExportError::io("hashing", path, e));
                    results.lock().expect("no panics while locked")[i] = Some(result);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no panics while locked")
        .into_iter()
        .map(|r| r.expect("every index was taken"))
        .collect()
}

fn random_id() -> Result<String, ExportError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| tender_trust::TrustError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}
