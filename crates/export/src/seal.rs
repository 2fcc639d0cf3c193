//! Sealing: turn a staged OCI image layout into a signed bundle file.
//!
//! Every blob is hashed while the manifest is built (both cores, one blob
//! per core), and hashed again as it is written, so a file that changed in
//! between is caught rather than sealed.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use tender_format::layout::{BLOBS_DIR, EntryPath, OCI_INDEX_FILE, OCI_LAYOUT_FILE};
use tender_format::manifest::{
    Base, BaseBlob, BundleKind, BundleManifest, DEFAULT_SIGNATURE_SLOT_SIZE, Encoding, Entry,
    FORMAT_V1, PatchSource, Release, Targets,
};
use tender_format::volumes::{VolumeIndex, VolumeWriter, index_name};
use tender_format::{Digest, SignatureSlot, atomic, ustar, write_bundle};
use tender_trust::PrivateKey;
use tender_trust::keys::now_rfc3339;

use crate::delta::DeltaPlan;
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
    /// The bundle file, or the volume index when cut into volumes.
    pub path: PathBuf,
    pub volumes: Option<VolumeIndex>,
    pub manifest: BundleManifest,
    pub manifest_digest: Digest,
    pub bytes: u64,
}

/// Where a sealed bundle goes.
#[derive(Debug, Clone)]
pub enum BundleOutput {
    /// One file, replaced atomically. With `split_above`, a bundle larger
    /// than that is cut into volumes of that size instead (FAT32 media,
    /// whose files stop at 4 GiB - 1).
    File {
        path: PathBuf,
        split_above: Option<u64>,
    },
    /// Volumes `NAME.001`... of at most `size` bytes beside `path`, plus
    /// `NAME.volumes.json`.
    Volumes { path: PathBuf, size: u64 },
    /// Standard output, for pipes (`tender export -o - | ssh site tender import -`).
    Stdout,
}

/// Builds the manifest for a layout, signs it with `key` in role
/// `release`, and writes the bundle to `out`.
pub fn seal_layout(
    layout: &Path,
    options: &SealOptions,
    key: &PrivateKey,
    out: &BundleOutput,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    let manifest = manifest_for_layout(layout, options)?;
    seal_manifest(layout, manifest, None, options, key, out, progress)
}

/// As [`seal_layout`], but a delta (bundle spec §8): the blobs `plan`
/// references are left out, the ones it patched travel as patches.
pub fn seal_delta(
    layout: &Path,
    options: &SealOptions,
    plan: &DeltaPlan,
    key: &PrivateKey,
    out: &BundleOutput,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    let manifest = delta_manifest(manifest_for_layout(layout, options)?, plan)?;
    seal_manifest(layout, manifest, Some(plan), options, key, out, progress)
}

/// Turns a full manifest of the release into the delta `plan` describes.
fn delta_manifest(full: BundleManifest, plan: &DeltaPlan) -> Result<BundleManifest, ExportError> {
    let mut manifest = full;
    manifest.entries = manifest
        .entries
        .into_iter()
        .filter_map(|entry| {
            let Ok(EntryPath::Blob(digest)) = EntryPath::parse(&entry.path) else {
                return Some(entry);
            };
            if plan.referenced.contains_key(&digest) {
                return None;
            }
            Some(match plan.patches.get(&digest) {
                Some(p) => Entry {
                    path: entry.path,
                    size: p.patch.size,
                    digest: p.patch.digest,
                    encoding: Encoding::Patch,
                },
                None => entry,
            })
        })
        .collect();
    manifest.kind = BundleKind::Delta;
    manifest.base = Some(Base {
        bundle_id: plan.base_bundle_id.clone(),
        manifest_digest: plan.base_manifest_digest,
        blobs: plan
            .referenced
            .iter()
            .map(|(digest, size)| BaseBlob {
                digest: *digest,
                size: *size,
            })
            .collect(),
        patches: plan
            .patches
            .iter()
            .map(|(target, p)| PatchSource {
                target: *target,
                target_size: p.target_size,
                source: p.source,
                source_size: p.source_size,
            })
            .collect(),
    });
    manifest.validate()?;
    Ok(manifest)
}

/// Signs `manifest` with `key` in role `release` and writes the bundle,
/// reading blobs from `layout` and patches from `plan`.
fn seal_manifest(
    layout: &Path,
    manifest: BundleManifest,
    plan: Option<&DeltaPlan>,
    options: &SealOptions,
    key: &PrivateKey,
    out: &BundleOutput,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    let manifest_bytes = manifest.to_canonical_bytes()?;
    let manifest_digest = Digest::of(&manifest_bytes);
    let mut slot = SignatureSlot::default();
    slot.add(key.sign("release", &manifest_bytes, &options.creator));
    let mut open = |entry: &Entry| -> io::Result<Box<dyn Read>> {
        let patch = match (entry.encoding, EntryPath::parse(&entry.path), plan) {
            (Encoding::Patch, Ok(EntryPath::Blob(digest)), Some(plan)) => {
                plan.patches.get(&digest).map(|p| &p.patch.file)
            }
            _ => None,
        };
        match patch {
            Some(path) => Ok(Box::new(File::open(path)?)),
            None => Ok(Box::new(File::open(layout.join(&entry.path))?)),
        }
    };
    let total = bundle_size(manifest_bytes.len() as u64, &manifest);
    let out = match out {
        BundleOutput::File {
            path,
            split_above: Some(limit),
        } if total > *limit => BundleOutput::Volumes {
            path: path.clone(),
            size: *limit,
        },
        other => other.clone(),
    };
    let (path, bytes, volumes) = match &out {
        BundleOutput::File { path, .. } => {
            let bytes = atomic::write_with(path, |w| {
                write_bundle(w, &manifest_bytes, &slot, &mut open, progress)
                    .map_err(io::Error::other)
            })
            .map_err(|e| ExportError::io("writing bundle", path, e))?;
            (path.clone(), bytes, None)
        }
        BundleOutput::Volumes { path, size } => {
            let dir = parent(path);
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bundle.tender".into());
            let mut writer = VolumeWriter::new(dir, &base, *size)
                .map_err(|e| ExportError::io("writing volumes", dir, e))?;
            let written = {
                let mut buffered = io::BufWriter::with_capacity(1 << 20, &mut writer);
                let r = write_bundle(&mut buffered, &manifest_bytes, &slot, &mut open, progress);
                r.and_then(|n| {
                    buffered
                        .flush()
                        .map_err(|e| tender_format::Error::io("writing volumes", e))?;
                    Ok(n)
                })
            };
            let bytes = match written {
                Ok(bytes) => bytes,
                Err(e) => {
                    writer.abandon();
                    return Err(e.into());
                }
            };
            let index = writer
                .finish(&manifest.bundle_id, manifest_digest)
                .map_err(|e| ExportError::io("writing volumes", dir, e))?;
            (dir.join(index_name(&base)), bytes, Some(index))
        }
        BundleOutput::Stdout => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let bytes = write_bundle(&mut w, &manifest_bytes, &slot, &mut open, progress)?;
            w.flush()
                .map_err(|e| ExportError::io("writing bundle", "-", e))?;
            (PathBuf::from("-"), bytes, None)
        }
    };
    Ok(SealedBundle {
        path,
        manifest_digest,
        manifest,
        bytes,
        volumes,
    })
}

/// The exact size of the bundle stream a manifest describes.
pub fn bundle_size(manifest_len: u64, manifest: &BundleManifest) -> u64 {
    let entry = |size: u64| 512 + size + ustar::padding(size) as u64;
    entry(manifest_len)
        + entry(manifest.signature_slot_size)
        + manifest.entries.iter().map(|e| entry(e.size)).sum::<u64>()
        + 1024
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
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

    // Blob files are named by digest by the store that wrote them after
    // hashing; the writer hashes every byte again as it seals, and fails
    // on a mismatch. Only the two small layout files are hashed here.
    let mut entries = hash_files(layout, &paths[..2])?;
    for path in &paths[2..] {
        let Ok(EntryPath::Blob(digest)) = EntryPath::parse(path) else {
            unreachable!("checked above")
        };
        let full = layout.join(path);
        let size = fs::metadata(&full)
            .map_err(|e| ExportError::io("reading", &full, e))?
            .len();
        entries.push(Entry {
            path: path.clone(),
            size,
            digest,
            encoding: Encoding::Identity,
        });
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
    tender_format::parallel::map(paths, 8, |rel| {
        let path = root.join(rel);
        File::open(&path)
            .and_then(Digest::of_reader)
            .map(|(digest, size)| Entry {
                path: rel.clone(),
                size,
                digest,
                encoding: Encoding::Identity,
            })
            .map_err(|e| ExportError::io("hashing", path, e))
    })
    .into_iter()
    .collect()
}

fn random_id() -> Result<String, ExportError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| tender_trust::TrustError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}
