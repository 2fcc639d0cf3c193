//! Sealing: turn a staged OCI image layout into a signed bundle file.
//!
//! Blobs are listed under the digests the store named them by after
//! hashing them, and hashed again as they are written, so a file that
//! changed in between is caught rather than sealed.
//!
//! The layout may still be filling ([`seal_arriving`]): the manifest needs
//! only each blob's digest and size, which its descriptor gives before the
//! download, so the bundle is written, in entry order, while the blobs
//! land, and the pull is not followed by a second full pass over the data.
//! Those blobs were hashed as they landed, so they are copied into the
//! bundle by the kernel rather than hashed again.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use tender_format::FromIo;

use tender_format::layout::{BLOBS_DIR, EntryPath, OCI_INDEX_FILE, OCI_LAYOUT_FILE};
use tender_format::manifest::{
    Base, BaseBlob, BundleKind, BundleManifest, DEFAULT_SIGNATURE_SLOT_SIZE, Encoding, Entry,
    FORMAT_V1, MAX_WHOLE_REASON, PatchSource, Release, Targets, WholeBlob,
};
use tender_format::volumes::{VolumeIndex, VolumeWriter, index_name};
use tender_format::{Carried, Digest, EntrySource, SignatureSlot, atomic, ustar, write_bundle};
use tender_oci::Arrivals;
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
    /// Policy updates the bundle carries to its sites (bundle-spec §7.3).
    pub policy_updates: Vec<tender_format::policy_update::PolicyUpdate>,
    /// A wave gate this bundle went past (`tender export --override-gate`).
    pub gate_override: Option<tender_format::manifest::GateOverride>,
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
    seal_manifest(layout, manifest, Blobs::Staged, options, key, out, progress)
}

/// As [`seal_layout`], while `arrivals` still download into the layout:
/// they are listed at their descriptors' sizes, and each is written as
/// soon as the bundle reaches it and it has landed.
pub fn seal_arriving(
    layout: &Path,
    arrivals: &Arrivals,
    options: &SealOptions,
    key: &PrivateKey,
    out: &BundleOutput,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    // Before listing the layout: a blob landing in between is then listed
    // twice (once each way) rather than not at all.
    let pending = arrivals.pending();
    let manifest = manifest_with(layout, &pending, options)?;
    seal_manifest(
        layout,
        manifest,
        Blobs::Arriving(arrivals),
        options,
        key,
        out,
        progress,
    )
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
    seal_manifest(
        layout,
        manifest,
        Blobs::Patched(plan),
        options,
        key,
        out,
        progress,
    )
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
        whole: plan
            .choices
            .iter()
            .filter(|c| c.how == Carried::Whole)
            .filter_map(|c| {
                Some(WholeBlob {
                    digest: c.digest,
                    reason: one_line_reason(c.note.as_deref()?),
                })
            })
            .collect(),
    });
    manifest.validate()?;
    Ok(manifest)
}

/// A whole-blob reason as the manifest holds it: one line (control
/// characters become spaces), cut at a character boundary to the limit.
fn one_line_reason(reason: &str) -> String {
    let mut line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > MAX_WHOLE_REASON {
        let mut cut = MAX_WHOLE_REASON - '…'.len_utf8();
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
        line.push('…');
    }
    line
}

/// Where sealing reads the blobs of a layout from.
#[derive(Clone, Copy)]
enum Blobs<'a> {
    /// All in the layout.
    Staged,
    /// In the layout once each has landed.
    Arriving(&'a Arrivals),
    /// In the layout, but those the plan patched from its patch files.
    Patched(&'a DeltaPlan),
}

/// Signs `manifest` with `key` in role `release` and writes the bundle,
/// reading blobs from `layout` as `blobs` says.
fn seal_manifest(
    layout: &Path,
    manifest: BundleManifest,
    blobs: Blobs,
    options: &SealOptions,
    key: &PrivateKey,
    out: &BundleOutput,
    progress: &mut dyn FnMut(u64),
) -> Result<SealedBundle, ExportError> {
    let manifest_bytes = manifest.to_canonical_bytes()?;
    let manifest_digest = Digest::of(&manifest_bytes);
    let mut slot = SignatureSlot::default();
    slot.add(key.sign("release", &manifest_bytes, &options.creator));
    let mut open = |entry: &Entry| open_entry(blobs, layout, entry);
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
            let bytes = write_file(path, blobs, &manifest_bytes, &slot, &mut open, progress)?;
            (path.clone(), bytes, None)
        }
        BundleOutput::Volumes { path, size } => {
            let dir = parent(path);
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "bundle.tender".into());
            let mut writer = VolumeWriter::new(dir, &base, *size)
                .map_err(|e| ExportError::io_at("writing volumes", dir, e))?;
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
                .map_err(|e| ExportError::io_at("writing volumes", dir, e))?;
            (dir.join(index_name(&base)), bytes, Some(index))
        }
        BundleOutput::Stdout => {
            let stdout = io::stdout();
            let mut w = io::BufWriter::with_capacity(1 << 20, stdout.lock());
            let bytes = write_bundle(&mut w, &manifest_bytes, &slot, &mut open, progress)?;
            w.flush()
                .map_err(|e| ExportError::io_at("writing bundle", "-", e))?;
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

/// Where entry `entry` of the layout is read from: a patched blob from
/// its patch file, an arriving blob once it has landed (already hashed),
/// anything else from the layout.
fn open_entry(blobs: Blobs, layout: &Path, entry: &Entry) -> io::Result<EntrySource> {
    match (blobs, blob_of(entry)) {
        (Blobs::Patched(plan), Some(digest)) if entry.encoding == Encoding::Patch => {
            if let Some(p) = plan.patches.get(&digest) {
                return Ok(EntrySource::Read(Box::new(File::open(&p.patch.file)?)));
            }
        }
        (Blobs::Arriving(arrivals), Some(digest)) if arrivals.was_queued(&digest) => {
            // Hashed against its digest as it landed, by this export,
            // in its own staging directory: not hashed a second time.
            arrivals.wait(&digest)?;
            return Ok(EntrySource::Checked(File::open(layout.join(&entry.path))?));
        }
        _ => {}
    }
    Ok(EntrySource::Read(Box::new(File::open(
        layout.join(&entry.path),
    )?)))
}

/// The bundle written to one file, atomically; returns its size.
fn write_file(
    path: &Path,
    blobs: Blobs,
    manifest_bytes: &[u8],
    slot: &SignatureSlot,
    open: &mut dyn FnMut(&Entry) -> io::Result<EntrySource>,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, ExportError> {
    atomic::write_with(path, |w| {
        // Written at the pace of the downloads: let the disk take
        // it as it comes, so the closing fsync has little left.
        let flusher = match blobs {
            Blobs::Arriving(_) => Some(Flusher::start(w.get_ref().try_clone()?)),
            _ => None,
        };
        let mut progress = |done: u64| {
            if let Some(flusher) = &flusher {
                flusher.written(done);
            }
            progress(done)
        };
        write_bundle(w, manifest_bytes, slot, open, &mut progress).map_err(io::Error::other)
    })
    .map_err(|e| ExportError::io_at("writing bundle", path, e))
}

/// Syncs a file being written, on a thread of its own, each time another
/// [`Flusher::EVERY`] bytes were written to it. Errors are left to the
/// closing fsync, which reports them.
struct Flusher {
    written: Option<mpsc::Sender<u64>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Flusher {
    const EVERY: u64 = 32 << 20;

    fn start(file: File) -> Flusher {
        let (written, bytes) = mpsc::channel::<u64>();
        let thread = thread::spawn(move || {
            let mut synced = 0;
            while let Ok(mut done) = bytes.recv() {
                // Only the latest count matters.
                done = bytes.try_iter().last().unwrap_or(done);
                if done >= synced + Flusher::EVERY {
                    let _ = file.sync_data();
                    synced = done;
                }
            }
        });
        Flusher {
            written: Some(written),
            thread: Some(thread),
        }
    }

    /// `done` bytes are written so far.
    fn written(&self, done: u64) {
        if let Some(written) = &self.written {
            let _ = written.send(done);
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.written.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The digest of a blob entry (`None` for `oci-layout`, `index.json`).
fn blob_of(entry: &Entry) -> Option<Digest> {
    match EntryPath::parse(&entry.path) {
        Ok(EntryPath::Blob(digest)) => Some(digest),
        _ => None,
    }
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
    manifest_with(layout, &[], options)
}

/// The manifest of the layout's files plus `pending` blobs (digest and
/// size) that are not in it yet.
fn manifest_with(
    layout: &Path,
    pending: &[(Digest, u64)],
    options: &SealOptions,
) -> Result<BundleManifest, ExportError> {
    let bad = |reason: String| ExportError::BadLayout {
        path: layout.to_path_buf(),
        reason,
    };
    // Blob files are named by digest by the store that wrote them after
    // hashing; the writer hashes every byte again as it seals, and fails
    // on a mismatch. Only the two small layout files are hashed here.
    let files = [OCI_LAYOUT_FILE.to_string(), OCI_INDEX_FILE.to_string()];
    let mut entries = hash_files(layout, &files)?;
    // By digest: the order blob entries take (bundle spec §4.3).
    let mut blobs: BTreeMap<Digest, u64> = pending.iter().copied().collect();
    let blobs_dir = layout.join(BLOBS_DIR);
    let listing =
        fs::read_dir(&blobs_dir).map_err(|e| ExportError::io_at("listing", &blobs_dir, e))?;
    for item in listing {
        let item = item.map_err(|e| ExportError::io_at("listing", &blobs_dir, e))?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp") {
            // A download's temporary file: still arriving (and maybe gone
            // by now, renamed to its digest), or left by an interrupted one.
            continue;
        }
        let metadata = item
            .metadata()
            .map_err(|e| ExportError::io_at("listing", item.path(), e))?;
        if !metadata.is_file() {
            return Err(bad(format!("{BLOBS_DIR}{name} is not a regular file")));
        }
        match EntryPath::parse(&format!("{BLOBS_DIR}{name}")).map_err(bad)? {
            EntryPath::Blob(digest) => blobs.insert(digest, metadata.len()),
            _ => unreachable!("a path under {BLOBS_DIR} names a blob or nothing"),
        };
    }
    entries.extend(blobs.into_iter().map(|(digest, size)| Entry {
        path: EntryPath::blob(&digest),
        size,
        digest,
        encoding: Encoding::Identity,
    }));
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
        policy_updates: options.policy_updates.clone(),
        gate_override: options.gate_override.clone(),
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
            .map_err(|e| ExportError::io_at("hashing", path, e))
    })
    .into_iter()
    .collect()
}

fn random_id() -> Result<String, ExportError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| tender_trust::TrustError::Random(e.to_string()))?;
    Ok(hex::encode(bytes))
}
