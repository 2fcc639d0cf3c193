//! The hub's content store: every blob the hub has exported, and the
//! manifest and image index of every bundle, so a later delta always has
//! its base at hand (bundle spec §8). Blobs are hard-linked from the export
//! staging when it shares the file system, so keeping them costs no copy.
//!
//! ```text
//! <hub state>/store/                 OCI layout: blobs/sha256/<hex>
//! <hub state>/bundles/<hex>/manifest.json   the exact manifest bytes
//! <hub state>/bundles/<hex>/index.json      the bundle's index.json
//! <hub state>/store/unsynced.json    blobs linked but not yet fsynced
//! ```
//!
//! Linked blobs are made durable lazily, so an export writes one copy of
//! its data to disk (the bundle), not two: before linking, the store notes
//! their digests and the machine's boot id in `unsynced.json` (fsynced);
//! the next time the store is opened it settles that list. On the same
//! boot the kernel has written the blobs back long since, or does so now,
//! when each is fsynced; after a reboot (a power cut, say) each is hashed
//! again and a damaged one removed, so no delta is ever made against a
//! torn base layer and the next export that carries it links it afresh.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};

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
    settled: Settled,
}

/// What opening the store did with the blobs the last export linked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Settled {
    /// Made durable (same boot).
    pub synced: usize,
    /// Hashed again, the machine having rebooted since.
    pub rehashed: usize,
    /// Of those, damaged and removed.
    pub removed: usize,
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

/// The blobs linked into the store since it was last settled.
#[derive(Debug, Serialize, Deserialize)]
struct Unsynced {
    /// `/proc/sys/kernel/random/boot_id` when they were linked.
    boot_id: String,
    blobs: Vec<Digest>,
}

const UNSYNCED_FILE: &str = "unsynced.json";

impl HubStore {
    /// Opens the store (the caller holds the hub state lock) and settles
    /// the blobs the last export linked.
    pub(crate) fn open(state_dir: &Path) -> Result<Self, ExportError> {
        let bundles = state_dir.join("bundles");
        atomic::create_dir_all(&bundles)
            .map_err(|e| ExportError::io_at("creating", &bundles, e))?;
        let mut store = HubStore {
            blobs: LayoutStore::open_or_create(state_dir.join("store"))?,
            bundles,
            settled: Settled::default(),
        };
        store.settled = store.settle()?;
        Ok(store)
    }

    /// What [`HubStore::open`] did with the last export's unsynced blobs.
    pub fn settled(&self) -> Settled {
        self.settled
    }

    fn unsynced_path(&self) -> PathBuf {
        self.blobs.root().join(UNSYNCED_FILE)
    }

    /// Makes the blobs listed in `unsynced.json` durable, or, after a
    /// reboot, removes those that did not survive it; then drops the list.
    fn settle(&self) -> Result<Settled, ExportError> {
        let path = self.unsynced_path();
        let mut settled = Settled::default();
        let Some(unsynced) = self.read_unsynced()? else {
            return remove_durably(&path).map(|()| settled);
        };
        let same_boot = boot_id().is_some_and(|id| id == unsynced.boot_id);
        for digest in &unsynced.blobs {
            let blob = self.blobs.blob_path(digest);
            if !blob.exists() {
                continue;
            }
            let intact = if same_boot {
                File::open(&blob)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| ExportError::io_at("syncing", &blob, e))?;
                settled.synced += 1;
                true
            } else {
                settled.rehashed += 1;
                match self.blobs.verify_blob(digest) {
                    Ok(intact) => intact,
                    Err(e) if e.is_integrity_failure() => false,
                    Err(e) => return Err(e.into()),
                }
            };
            if !intact {
                fs::remove_file(&blob)
                    .map_err(|e| ExportError::io_at("removing damaged", &blob, e))?;
                settled.removed += 1;
            }
        }
        let dir = self.blobs.root().join("blobs/sha256");
        atomic::sync_dir(&dir).map_err(|e| ExportError::io_at("syncing", &dir, e))?;
        remove_durably(&path)?;
        Ok(settled)
    }

    /// The list in `unsynced.json`; `None` if there is none, or if it is
    /// not readable (written by hand: it is replaced atomically, and
    /// nothing is linked before it is durable).
    fn read_unsynced(&self) -> Result<Option<Unsynced>, ExportError> {
        let path = self.unsynced_path();
        match fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ExportError::io_at("reading", &path, e)),
        }
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
        let mut new = Vec::new();
        for item in fs::read_dir(&dir).map_err(|e| ExportError::io_at("listing", &dir, e))? {
            let item = item.map_err(|e| ExportError::io_at("listing", &dir, e))?;
            let Ok(digest) = Digest::from_hex(&item.file_name().to_string_lossy()) else {
                continue; // temporary files
            };
            if !self.blobs.has_blob(&digest) {
                new.push(digest);
            }
        }
        if !new.is_empty() {
            // Listed (durably) before linking: see the module docs. An
            // export writing several bundles records each: keep the list
            // of the ones before.
            let mut listed = self.read_unsynced()?.map_or_else(Vec::new, |u| u.blobs);
            listed.extend(new.iter().copied());
            listed.sort();
            listed.dedup();
            let unsynced = Unsynced {
                boot_id: boot_id().unwrap_or_default(),
                blobs: listed,
            };
            let bytes = serde_json::to_vec(&unsynced).expect("plain data serialises");
            let path = self.unsynced_path();
            atomic::write(&path, &bytes).map_err(|e| ExportError::io_at("writing", &path, e))?;
        }
        for digest in new {
            self.keep_blob(&staged.blob_path(&digest), digest)?;
        }
        let index = fs::read(layout.join(OCI_INDEX_FILE))
            .map_err(|e| ExportError::io_at("reading", layout.join(OCI_INDEX_FILE), e))?;
        self.keep_bundle(manifest_bytes, manifest_digest, &index)
    }

    /// Hard-links (or copies) a verified blob file into the store. A link
    /// is not fsynced here (the module docs say when it is).
    fn keep_blob(&self, from: &Path, digest: Digest) -> Result<(), ExportError> {
        let to = self.blobs.blob_path(&digest);
        let tmp = to.with_extension("linking");
        let _ = fs::remove_file(&tmp);
        if fs::hard_link(from, &tmp).is_ok() {
            return fs::rename(&tmp, &to).map_err(|e| ExportError::io_at("keeping", &to, e));
        }
        let file = File::open(from).map_err(|e| ExportError::io_at("reading", from, e))?;
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
        let io = |e| ExportError::io_at("recording bundle in", &dir, e);
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
            Err(e) => return Err(ExportError::io_at("reading", dir.join("manifest.json"), e)),
        };
        let manifest = BundleManifest::from_canonical_bytes(&manifest_bytes)?;
        let index = fs::read(dir.join(OCI_INDEX_FILE))
            .map_err(|e| ExportError::io_at("reading", dir.join(OCI_INDEX_FILE), e))?;
        Ok(Some(StoredBundle {
            manifest,
            manifest_digest: *manifest_digest,
            index,
        }))
    }

    /// Every bundle the hub recorded.
    pub fn bundles(&self) -> Result<Vec<StoredBundle>, ExportError> {
        let listing = fs::read_dir(&self.bundles)
            .map_err(|e| ExportError::io_at("listing", &self.bundles, e))?;
        let mut out = Vec::new();
        for item in listing {
            let item = item.map_err(|e| ExportError::io_at("listing", &self.bundles, e))?;
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

/// This boot of the machine (Linux); `None` where there is no such file,
/// and then every settling re-hashes.
fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_string())
        .filter(|id| !id.is_empty())
}

fn remove_durably(path: &Path) -> Result<(), ExportError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(ExportError::io_at("removing", path, e)),
    }
    let dir = path.parent().expect("a file in the store");
    atomic::sync_dir(dir).map_err(|e| ExportError::io_at("syncing", dir, e))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A hub state dir whose store has linked `blobs` from a staging
    /// layout, as an export leaves it.
    fn hub_after_export(blobs: &[&[u8]]) -> (tempfile::TempDir, Vec<Digest>) {
        let dir = tempfile::tempdir().unwrap();
        let staging = LayoutStore::create_scratch(dir.path().join("staging")).unwrap();
        let digests = blobs
            .iter()
            .map(|b| staging.put_blob_bytes(b).unwrap())
            .collect();
        let hub = HubStore::open(&dir.path().join("hub")).unwrap();
        hub.record(staging.root(), b"{}", Digest::of(b"{}"))
            .unwrap();
        (dir, digests)
    }

    fn unsynced(dir: &Path) -> Option<Unsynced> {
        let bytes = fs::read(dir.join("hub/store").join(UNSYNCED_FILE)).ok()?;
        Some(serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn linked_blobs_are_listed_until_the_next_open_syncs_them() {
        let (dir, digests) = hub_after_export(&[b"layer one", b"layer two"]);
        let listed = unsynced(dir.path()).expect("listed after the export");
        let mut expected = digests.clone();
        expected.sort();
        let mut got = listed.blobs.clone();
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(Some(listed.boot_id), boot_id());

        let hub = HubStore::open(&dir.path().join("hub")).unwrap();
        assert!(unsynced(dir.path()).is_none(), "settled");
        assert_eq!(
            hub.settled(),
            Settled {
                synced: 2,
                rehashed: 0,
                removed: 0
            }
        );
        for d in &digests {
            assert!(hub.blobs().verify_blob(d).unwrap());
        }
    }

    #[test]
    fn every_bundle_of_one_export_adds_to_the_list() {
        let (dir, first) = hub_after_export(&[b"layer one"]);
        // A second bundle of the same export (a delta for other sites),
        // recorded before the store is opened again.
        let hub = HubStore {
            blobs: LayoutStore::open(dir.path().join("hub/store")).unwrap(),
            bundles: dir.path().join("hub/bundles"),
            settled: Settled::default(),
        };
        let staging = LayoutStore::create_scratch(dir.path().join("staging2")).unwrap();
        let second = staging.put_blob_bytes(b"layer two").unwrap();
        hub.record(staging.root(), b"[]", Digest::of(b"[]"))
            .unwrap();
        let mut listed = unsynced(dir.path()).unwrap().blobs;
        listed.sort();
        let mut expected = vec![first[0], second];
        expected.sort();
        assert_eq!(listed, expected);
    }

    #[test]
    fn after_a_reboot_a_torn_blob_is_removed_and_intact_ones_kept() {
        let (dir, digests) = hub_after_export(&[b"layer one", b"layer two"]);
        let store = dir.path().join("hub/store");
        // As a power cut after the export can leave it: one blob's data
        // never reached the disk, and the machine booted again since.
        let torn = store.join("blobs/sha256").join(digests[0].hex());
        fs::remove_file(&torn).unwrap();
        fs::write(&torn, vec![0u8; 9]).unwrap();
        let mut listed = unsynced(dir.path()).unwrap();
        listed.boot_id = "an-earlier-boot".into();
        fs::write(
            store.join(UNSYNCED_FILE),
            serde_json::to_vec(&listed).unwrap(),
        )
        .unwrap();

        let hub = HubStore::open(&dir.path().join("hub")).unwrap();
        assert_eq!(
            hub.settled(),
            Settled {
                synced: 0,
                rehashed: 2,
                removed: 1
            }
        );
        assert!(!hub.blobs().has_blob(&digests[0]), "torn blob removed");
        assert!(hub.blobs().verify_blob(&digests[1]).unwrap());
        assert!(unsynced(dir.path()).is_none());
    }

    #[test]
    fn a_torn_list_is_dropped_and_no_blob_touched() {
        let (dir, digests) = hub_after_export(&[b"layer one"]);
        let store = dir.path().join("hub/store");
        fs::write(store.join(UNSYNCED_FILE), b"{\"boot_id\":\"x\",\"blo").unwrap();
        let hub = HubStore::open(&dir.path().join("hub")).unwrap();
        assert!(!store.join(UNSYNCED_FILE).exists());
        assert!(hub.blobs().verify_blob(&digests[0]).unwrap());
    }
}
