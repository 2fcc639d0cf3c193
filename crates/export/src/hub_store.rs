//! The hub's content store: every blob the hub has exported, and the
//! manifest and image index of every bundle, so a later delta always has
//! its base at hand (bundle spec §8). Blobs are hard-linked from the export
//! staging when it shares the file system, so keeping them costs no copy.
//!
//! ```text
//! <hub state>/store/                 OCI layout: blobs/sha256/<hex>
//! <hub state>/bundles/<hex>/manifest.json   the exact manifest bytes
//! <hub state>/bundles/<hex>/index.json      the bundle's index.json
//! ```

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tender_format::layout::{EntryPath, OCI_INDEX_FILE};
use tender_format::manifest::{BundleManifest, Encoding, Entry};
use tender_format::reader::{DiscardSink, EntrySink};
use tender_format::{BundleReader, Digest, atomic};
use tender_oci::LayoutStore;

use crate::error::ExportError;

/// The hub's store of exported content.
pub struct HubStore {
    blobs: LayoutStore,
    bundles: PathBuf,
}

/// A bundle the hub knows, with what its release holds.
#[derive(Debug, Clone)]
pub struct StoredBundle {
    pub manifest: BundleManifest,
    pub manifest_digest: Digest,
    /// The bundle's `index.json`, as bytes.
    pub index: Vec<u8>,
}

impl StoredBundle {
    /// Every blob a site holds once it has imported this bundle: carried,
    /// rebuilt from patches, and (for a delta) referenced from its base.
    pub fn release_blobs(&self) -> BTreeMap<Digest, u64> {
        let mut out = BTreeMap::new();
        let patched: BTreeMap<Digest, u64> = self
            .manifest
            .base
            .iter()
            .flat_map(|b| b.patches.iter().map(|p| (p.target, p.target_size)))
            .collect();
        for entry in &self.manifest.entries {
            if let Ok(EntryPath::Blob(digest)) = EntryPath::parse(&entry.path) {
                let size = match entry.encoding {
                    Encoding::Identity => entry.size,
                    Encoding::Patch => patched.get(&digest).copied().unwrap_or(0),
                };
                out.insert(digest, size);
            }
        }
        for b in self.manifest.base.iter().flat_map(|b| &b.blobs) {
            out.insert(b.digest, b.size);
        }
        out
    }
}

impl HubStore {
    pub fn open(state_dir: &Path) -> Result<Self, ExportError> {
        let bundles = state_dir.join("bundles");
        atomic::create_dir_all(&bundles).map_err(|e| ExportError::io("creating", &bundles, e))?;
        Ok(HubStore {
            blobs: LayoutStore::open_or_create(state_dir.join("store"))?,
            bundles,
        })
    }

    pub fn blobs(&self) -> &LayoutStore {
        &self.blobs
    }

    /// Keeps every blob of an export's staging layout and the bundle's
    /// manifest and index.
    pub fn record(
        &self,
        layout: &Path,
        manifest_bytes: &[u8],
        manifest_digest: Digest,
    ) -> Result<(), ExportError> {
        let staged = LayoutStore::open(layout)?;
        let dir = layout.join("blobs/sha256");
        for item in fs::read_dir(&dir).map_err(|e| ExportError::io("listing", &dir, e))? {
            let item = item.map_err(|e| ExportError::io("listing", &dir, e))?;
            let Ok(digest) = Digest::from_hex(&item.file_name().to_string_lossy()) else {
                continue; // temporary files
            };
            self.keep_blob(&staged.blob_path(&digest), digest)?;
        }
        let index = fs::read(layout.join(OCI_INDEX_FILE))
            .map_err(|e| ExportError::io("reading", layout.join(OCI_INDEX_FILE), e))?;
        self.keep_bundle(manifest_bytes, manifest_digest, &index)
    }

    /// Hard-links (or copies) a verified blob file into the store.
    fn keep_blob(&self, from: &Path, digest: Digest) -> Result<(), ExportError> {
        if self.blobs.has_blob(&digest) {
            return Ok(());
        }
        let to = self.blobs.blob_path(&digest);
        let tmp = to.with_extension("linking");
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(from, &tmp).is_ok() {
            // Export staging is a scratch store (never fsynced): make the
            // kept copy durable before its name says it is complete. By now
            // writeback has usually flushed it, so this is cheap.
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| ExportError::io("keeping", &tmp, e))?;
            fs::rename(&tmp, &to).map_err(|e| ExportError::io("keeping", &to, e))?;
            return atomic::sync_dir(to.parent().expect("blob path has a parent"))
                .map_err(|e| ExportError::io("keeping", &to, e));
        }
        let file = File::open(from).map_err(|e| ExportError::io("reading", from, e))?;
        self.blobs.write_blob_from(file, &digest, None)?;
        Ok(())
    }

    fn keep_bundle(
        &self,
        manifest_bytes: &[u8],
        manifest_digest: Digest,
        index: &[u8],
    ) -> Result<(), ExportError> {
        let dir = self.bundles.join(manifest_digest.hex());
        let io = |e| ExportError::io("recording bundle in", &dir, e);
        atomic::create_dir_all(&dir).map_err(io)?;
        atomic::write(&dir.join(OCI_INDEX_FILE), index).map_err(io)?;
        // The manifest last: a bundle directory with a manifest is complete.
        atomic::write(&dir.join("manifest.json"), manifest_bytes).map_err(io)
    }

    /// A bundle the hub recorded, by manifest digest.
    pub fn bundle(&self, manifest_digest: &Digest) -> Result<Option<StoredBundle>, ExportError> {
        let dir = self.bundles.join(manifest_digest.hex());
        let manifest_bytes = match fs::read(dir.join("manifest.json")) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ExportError::io("reading", dir.join("manifest.json"), e)),
        };
        let manifest = BundleManifest::from_canonical_bytes(&manifest_bytes)?;
        let index = fs::read(dir.join(OCI_INDEX_FILE))
            .map_err(|e| ExportError::io("reading", dir.join(OCI_INDEX_FILE), e))?;
        Ok(Some(StoredBundle {
            manifest,
            manifest_digest: *manifest_digest,
            index,
        }))
    }

    /// Every bundle the hub recorded.
    pub fn bundles(&self) -> Result<Vec<StoredBundle>, ExportError> {
        let listing = fs::read_dir(&self.bundles)
            .map_err(|e| ExportError::io("listing", &self.bundles, e))?;
        let mut out = Vec::new();
        for item in listing {
            let item = item.map_err(|e| ExportError::io("listing", &self.bundles, e))?;
            let Ok(digest) = Digest::from_hex(&item.file_name().to_string_lossy()) else {
                continue;
            };
            out.extend(self.bundle(&digest)?);
        }
        Ok(out)
    }

    /// Reads a bundle file, verifying every entry, into the store (for a
    /// base the hub did not export itself, or whose record was lost). A
    /// delta's patched and referenced blobs must already be here.
    pub fn ingest(&self, path: &Path) -> Result<StoredBundle, ExportError> {
        let reader = BundleReader::open_file(path)?;
        let manifest = reader.manifest().clone();
        let manifest_bytes = reader.manifest_bytes().to_vec();
        let manifest_digest = reader.manifest_digest();
        let index = Arc::new(Mutex::new(Vec::new()));
        let blobs_dir = self.blobs.root().join("blobs/sha256");
        let factory = |_: usize, entry: &Entry| -> io::Result<Box<dyn EntrySink>> {
            match (EntryPath::parse(&entry.path), entry.encoding) {
                (Ok(EntryPath::Blob(digest)), Encoding::Identity) => {
                    if self.blobs.has_blob(&digest) {
                        return Ok(Box::new(DiscardSink));
                    }
                    let tmp = tempfile::NamedTempFile::new_in(&blobs_dir)?;
                    Ok(Box::new(BlobSink {
                        out: io::BufWriter::new(tmp),
                        to: blobs_dir.join(digest.hex()),
                    }))
                }
                (Ok(EntryPath::OciIndex), _) => Ok(Box::new(MemorySink {
                    data: Vec::new(),
                    into: Arc::clone(&index),
                })),
                _ => Ok(Box::new(DiscardSink)),
            }
        };
        reader.read_entries(&factory, &mut |_| {})?;
        let stored = StoredBundle {
            manifest,
            manifest_digest,
            index: std::mem::take(&mut *index.lock().expect("index lock")),
        };
        let missing: Vec<Digest> = stored
            .release_blobs()
            .into_keys()
            .filter(|d| !self.blobs.has_blob(d))
            .collect();
        if let Some(first) = missing.first() {
            return Err(ExportError::BadLayout {
                path: path.to_path_buf(),
                reason: format!(
                    "it is a delta whose blob {first} (and {} more) this hub does not hold",
                    missing.len() - 1
                ),
            });
        }
        self.keep_bundle(&manifest_bytes, manifest_digest, &stored.index)?;
        Ok(stored)
    }
}

struct BlobSink {
    out: io::BufWriter<tempfile::NamedTempFile>,
    to: PathBuf,
}

impl EntrySink for BlobSink {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.out.write_all(data)
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        let tmp = self.out.into_inner().map_err(|e| e.into_error())?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.to).map_err(|e| e.error)?;
        Ok(())
    }
}

struct MemorySink {
    data: Vec<u8>,
    into: Arc<Mutex<Vec<u8>>>,
}

impl EntrySink for MemorySink {
    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(data);
        Ok(())
    }

    fn commit(self: Box<Self>) -> io::Result<()> {
        *self.into.lock().expect("index lock") = self.data;
        Ok(())
    }
}
