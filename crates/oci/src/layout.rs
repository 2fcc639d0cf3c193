//! [`LayoutStore`]: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/sha256/<hex>`), the store both sides of tender use:
//! export pulls images into one, a bundle carries one, import and
//! `tender serve` read one.
//!
//! Crash safety: a blob is streamed into a temporary file *in*
//! `blobs/sha256/` (named `.tmp-*`), hashed while written, fsynced, and
//! renamed to its digest only when the digest (and size) match; then the
//! directory is fsynced. So a blob file under its digest name is always
//! complete and correct, and a failed or interrupted write leaves at most a
//! `.tmp-*` file ([`LayoutStore::remove_temp_files`] clears those).
//! `index.json` is replaced atomically ([`tender_format::atomic`]).
//! A scratch store ([`LayoutStore::create_scratch`]) keeps the renames but
//! skips every fsync: it is thrown away after use, so nothing in it has to
//! survive a crash, and syncing it would only wait on the disk for data
//! whose durable copy is written elsewhere.
//!
//! Concurrency: blob writes may race freely (same digest, same bytes, atomic
//! rename). `index.json` updates are serialised within one process; two
//! processes tagging the same layout at once can lose an update.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::{Digest, Hasher, atomic};

use crate::error::OciError;
use crate::media::{
    ANNOTATION_REF_NAME, Descriptor, ImageIndex, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX,
    OCI_LAYOUT_VERSION,
};

/// File name prefix of blobs being written.
pub const TEMP_PREFIX: &str = ".tmp-";
/// Largest `index.json` read (a layout of ~100k tags).
const MAX_INDEX_SIZE: u64 = 64 * 1024 * 1024;
const COPY_BUFFER: usize = 1 << 20;

/// The result of writing a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobWrite {
    pub digest: Digest,
    pub size: u64,
    /// The blob was already there; nothing was read or written.
    pub already_present: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutMarker {
    image_layout_version: String,
}

/// An OCI image layout on disk. Cheap to share between threads (`&self`
/// everywhere) and cheap to clone (clones share the `index.json` lock).
#[derive(Debug, Clone)]
pub struct LayoutStore {
    root: PathBuf,
    blobs: PathBuf,
    index_lock: Arc<Mutex<()>>,
    /// Writes are fsynced before they count (false for scratch stores).
    durable: bool,
}

impl LayoutStore {
    /// Opens the layout at `dir`, creating the directory, `oci-layout`,
    /// `index.json` and `blobs/sha256/` where missing.
    pub fn open_or_create(dir: impl AsRef<Path>) -> Result<LayoutStore, OciError> {
        LayoutStore::at(dir.as_ref().to_path_buf()).create()
    }

    /// Like [`LayoutStore::open_or_create`], for a staging layout that is
    /// deleted after use (export's): writes are renamed into place as
    /// usual, so readers never see a partial file, but never fsynced.
    pub fn create_scratch(dir: impl AsRef<Path>) -> Result<LayoutStore, OciError> {
        LayoutStore {
            durable: false,
            ..LayoutStore::at(dir.as_ref().to_path_buf())
        }
        .create()
    }

    /// Creates whatever of the skeleton is missing.
    fn create(self) -> Result<LayoutStore, OciError> {
        let created = if self.durable {
            atomic::create_dir_all(&self.blobs)
        } else {
            fs::create_dir_all(&self.blobs)
        };
        created.map_err(|e| OciError::io_at("creating", &self.blobs, e))?;
        let marker = self.root.join("oci-layout");
        if marker.exists() {
            self.check_marker()?;
        } else {
            let text = serde_json::to_vec(&LayoutMarker {
                image_layout_version: OCI_LAYOUT_VERSION.to_string(),
            })
            .expect("serializing a marker");
            self.replace_file(&marker, &text)
                .map_err(|e| OciError::io_at("writing", &marker, e))?;
        }
        if !self.index_path().exists() {
            self.write_index(&ImageIndex::empty())?;
        }
        Ok(self)
    }

    /// Opens an existing layout without creating or changing anything.
    pub fn open(dir: impl AsRef<Path>) -> Result<LayoutStore, OciError> {
        let store = LayoutStore::at(dir.as_ref().to_path_buf());
        store.check_marker()?;
        if !store.blobs.is_dir() {
            return Err(store.layout_error("has no blobs/sha256 directory"));
        }
        Ok(store)
    }

    fn at(root: PathBuf) -> LayoutStore {
        let blobs = root.join("blobs").join("sha256");
        LayoutStore {
            root,
            blobs,
            index_lock: Arc::new(Mutex::new(())),
            durable: true,
        }
    }

    fn check_marker(&self) -> Result<(), OciError> {
        let path = self.root.join("oci-layout");
        let bytes = fs::read(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                self.layout_error("not an OCI image layout (no oci-layout file)")
            } else {
                OciError::io_at("reading", &path, e)
            }
        })?;
        let marker: LayoutMarker = serde_json::from_slice(&bytes)
            .map_err(|e| self.layout_error(&format!("oci-layout is not valid: {e}")))?;
        if !marker.image_layout_version.starts_with("1.") {
            return Err(self.layout_error(&format!(
                "imageLayoutVersion {:?} is not supported (expected 1.x)",
                marker.image_layout_version
            )));
        }
        Ok(())
    }

    fn layout_error(&self, reason: &str) -> OciError {
        OciError::Layout {
            dir: self.root.clone(),
            reason: reason.to_string(),
        }
    }

    /// The layout directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Whether the blob file exists. Its content is trusted: only verified
    /// content is ever renamed into place (see [`LayoutStore::verify_blob`]).
    pub fn has_blob(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// The blob's size on disk, if it exists.
    pub fn blob_size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Re-hashes the blob file. `Ok(false)` if it does not exist;
    /// a [`OciError::DigestMismatch`] if its content is not `digest`.
    pub fn verify_blob(&self, digest: &Digest) -> Result<bool, OciError> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(OciError::io_at("opening", &path, e)),
        };
        let (actual, _) =
            Digest::of_reader(file).map_err(|e| OciError::io_at("reading", &path, e))?;
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what: format!(
                    "OCI layout {}: blob file {}",
                    self.root.display(),
                    path.display()
                ),
                expected: *digest,
                actual,
            });
        }
        Ok(true)
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, OciError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                OciError::MissingBlob {
                    dir: self.root.clone(),
                    digest: *digest,
                }
            } else {
                OciError::io_at("opening", &path, e)
            }
        })
    }

    /// Reads a small blob (a manifest, a config) whole, at most `limit`
    /// bytes, and checks its digest.
    pub fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, OciError> {
        let path = self.blob_path(digest);
        let file = self.open_blob(digest)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OciError::io_at("reading", &path, e))?;
        if bytes.len() as u64 > limit {
            return Err(OciError::TooLarge {
                what: format!("OCI layout {}: blob {digest}", self.root.display()),
                limit,
            });
        }
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(OciError::DigestMismatch {
                what: format!(
                    "OCI layout {}: blob file {}",
                    self.root.display(),
                    path.display()
                ),
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Streams `reader` into the blob `expected`: into a `.tmp-*` file in
    /// `blobs/sha256/`, hashing as it goes, then fsync and rename only if
    /// the content is `expected` (and `expected_size` bytes, if given).
    /// Otherwise the temporary file is removed and a
    /// [`OciError::DigestMismatch`] or [`OciError::SizeMismatch`] returned.
    /// Reads at most `expected_size + 1` bytes, so an endless stream cannot
    /// fill the disk. A blob already present is not read again.
    pub fn write_blob_from(
        &self,
        reader: impl Read,
        expected: &Digest,
        expected_size: Option<u64>,
    ) -> Result<BlobWrite, OciError> {
        if let Some(size) = self.blob_size(expected) {
            if let Some(expected_size) = expected_size
                && size != expected_size
            {
                return Err(OciError::SizeMismatch {
                    what: format!(
                        "OCI layout {}: existing blob {expected}",
                        self.root.display()
                    ),
                    expected: expected_size,
                    actual: size,
                });
            }
            return Ok(BlobWrite {
                digest: *expected,
                size,
                already_present: true,
            });
        }
        let what = || format!("blob {expected}");
        let tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.blobs)
            .map_err(|e| {
                OciError::io(
                    format!("creating a temporary file in {}", self.blobs.display()),
                    e,
                )
            })?;
        let limit = expected_size.map_or(u64::MAX, |s| s.saturating_add(1));
        let mut reader = reader.take(limit);
        let mut hasher = Hasher::new();
        // The buffer is filled before it is written, rather than each read
        // going through a BufWriter: one copy of every byte less.
        let mut buf = vec![0u8; COPY_BUFFER];
        loop {
            let n = fill(&mut reader, &mut buf)
                .map_err(|e| OciError::io(format!("reading {}", what()), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            tmp.as_file().write_all(&buf[..n]).map_err(|e| {
                OciError::io(format!("writing {} to {}", what(), tmp.path().display()), e)
            })?;
        }
        let (actual, size) = hasher.finish();
        // `tmp` is removed when dropped on any of these early returns.
        if let Some(expected_size) = expected_size
            && size != expected_size
        {
            return Err(OciError::SizeMismatch {
                what: what(),
                expected: expected_size,
                actual: size,
            });
        }
        if actual != *expected {
            return Err(OciError::DigestMismatch {
                what: what(),
                expected: *expected,
                actual,
            });
        }
        if self.durable {
            tmp.as_file()
                .sync_all()
                .map_err(|e| OciError::io(format!("syncing {}", tmp.path().display()), e))?;
        }
        set_readable(tmp.as_file());
        let path = self.blob_path(expected);
        tmp.persist(&path)
            .map_err(|e| OciError::io_at("renaming into", &path, e.error))?;
        if self.durable {
            atomic::sync_dir(&self.blobs)
                .map_err(|e| OciError::io_at("syncing", &self.blobs, e))?;
        }
        Ok(BlobWrite {
            digest: *expected,
            size,
            already_present: false,
        })
    }

    /// Stores a small in-memory document (manifest, config) and returns its
    /// digest.
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        self.write_blob_from(bytes, &digest, Some(bytes.len() as u64))?;
        Ok(digest)
    }

    /// Removes `.tmp-*` files left by writes that were interrupted (a crash,
    /// `kill -9`). Only call it when no other process writes to the layout.
    pub fn remove_temp_files(&self) -> Result<usize, OciError> {
        let entries =
            fs::read_dir(&self.blobs).map_err(|e| OciError::io_at("listing", &self.blobs, e))?;
        let mut removed = 0;
        for entry in entries {
            let entry = entry.map_err(|e| OciError::io_at("listing", &self.blobs, e))?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                fs::remove_file(entry.path())
                    .map_err(|e| OciError::io(format!("removing {}", entry.path().display()), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The layout's `index.json`.
    pub fn index(&self) -> Result<ImageIndex, OciError> {
        let path = self.index_path();
        let file = File::open(&path).map_err(|e| OciError::io_at("opening", &path, e))?;
        let mut bytes = Vec::new();
        file.take(MAX_INDEX_SIZE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| OciError::io_at("reading", &path, e))?;
        if bytes.len() as u64 > MAX_INDEX_SIZE {
            return Err(
                self.layout_error(&format!("index.json is larger than {MAX_INDEX_SIZE} bytes"))
            );
        }
        let index: ImageIndex = serde_json::from_slice(&bytes).map_err(|e| {
            self.layout_error(&format!("index.json is not a valid image index: {e}"))
        })?;
        if index.schema_version != 2 {
            return Err(self.layout_error(&format!(
                "index.json has schemaVersion {}, expected 2",
                index.schema_version
            )));
        }
        Ok(index)
    }

    fn write_index(&self, index: &ImageIndex) -> Result<(), OciError> {
        let bytes = serde_json::to_vec(index).expect("serializing an index");
        let path = self.index_path();
        self.replace_file(&path, &bytes)
            .map_err(|e| OciError::io_at("writing", &path, e))
    }

    /// Replaces a small file by rename, so a reader sees the old or the
    /// new one whole; durably ([`atomic::write`]) unless a scratch store.
    fn replace_file(&self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        if self.durable {
            return atomic::write(path, bytes);
        }
        let mut tmp = tempfile::NamedTempFile::new_in(&self.root)?;
        tmp.write_all(bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Points the name `ref_name` (the full reference, e.g.
    /// `registry.plant.example/plant/opcua-gateway:1.4.2`, as skopeo's
    /// `oci:DIR:REF` accepts it) at `descriptor`, replacing any entry of that
    /// name. The blob must be in the store.
    pub fn set_tag(&self, ref_name: &str, descriptor: Descriptor) -> Result<(), OciError> {
        validate_ref_name(ref_name).map_err(|reason| self.layout_error(&reason))?;
        if !self.has_blob(&descriptor.digest) {
            return Err(OciError::MissingBlob {
                dir: self.root.clone(),
                digest: descriptor.digest,
            });
        }
        let _guard = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index()?;
        let mut entry = descriptor;
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_string(), ref_name.to_string());
        match index
            .manifests
            .iter()
            .position(|d| d.ref_name() == Some(ref_name))
        {
            Some(i) => {
                index.manifests[i] = entry;
                // Drop any further duplicates of the name.
                let mut seen = false;
                index.manifests.retain(|d| {
                    if d.ref_name() != Some(ref_name) {
                        return true;
                    }
                    let keep = !seen;
                    seen = true;
                    keep
                });
            }
            None => index.manifests.push(entry),
        }
        if index.media_type.is_none() {
            index.media_type = Some(OCI_INDEX.to_string());
        }
        self.write_index(&index)
    }

    /// Removes the name; `false` if it was not there.
    pub fn remove_tag(&self, ref_name: &str) -> Result<bool, OciError> {
        let _guard = self.index_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut index = self.index()?;
        let before = index.manifests.len();
        index.manifests.retain(|d| d.ref_name() != Some(ref_name));
        if index.manifests.len() == before {
            return Ok(false);
        }
        self.write_index(&index)?;
        Ok(true)
    }

    /// The descriptor named `ref_name` in `index.json` (without the
    /// ref-name annotation's removal: the descriptor is as stored).
    pub fn resolve(&self, ref_name: &str) -> Result<Descriptor, OciError> {
        self.index()?
            .manifests
            .into_iter()
            .find(|d| d.ref_name() == Some(ref_name))
            .ok_or_else(|| OciError::TagNotFound {
                dir: self.root.clone(),
                name: ref_name.to_string(),
            })
    }

    /// Every named entry of `index.json`, in file order.
    pub fn list_tags(&self) -> Result<Vec<(String, Descriptor)>, OciError> {
        Ok(self
            .index()?
            .manifests
            .into_iter()
            .filter_map(|d| d.ref_name().map(|name| (name.to_string(), d.clone())))
            .collect())
    }

    /// Reads and parses the manifest or index `descriptor` points at.
    pub fn read_manifest(&self, descriptor: &Descriptor) -> Result<(Vec<u8>, Manifest), OciError> {
        if descriptor.size > MAX_MANIFEST_SIZE {
            return Err(OciError::TooLarge {
                what: format!(
                    "OCI layout {}: manifest {}",
                    self.root.display(),
                    descriptor.digest
                ),
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let bytes = self.read_blob(&descriptor.digest, MAX_MANIFEST_SIZE)?;
        if bytes.len() as u64 != descriptor.size {
            return Err(OciError::SizeMismatch {
                what: format!(
                    "OCI layout {}: manifest {}",
                    self.root.display(),
                    descriptor.digest
                ),
                expected: descriptor.size,
                actual: bytes.len() as u64,
            });
        }
        let manifest = Manifest::parse(&bytes, &descriptor.media_type)?;
        Ok((bytes, manifest))
    }

    /// Every descriptor reachable from `descriptor` (itself included):
    /// manifests, configs, layers, index children and subjects, each digest
    /// once, children before the manifests that point at them (the order to
    /// push in). Fails if a manifest is missing or damaged; plain blobs are
    /// listed without being opened (check them with [`Self::has_blob`]).
    pub fn walk_image(&self, descriptor: &Descriptor) -> Result<Vec<Descriptor>, OciError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        self.walk(descriptor, &mut seen, &mut out, 0)?;
        Ok(out)
    }

    fn walk(
        &self,
        descriptor: &Descriptor,
        seen: &mut HashSet<Digest>,
        out: &mut Vec<Descriptor>,
        depth: usize,
    ) -> Result<(), OciError> {
        // Content addressing rules out cycles; this bounds hostile nesting.
        const MAX_DEPTH: usize = 16;
        if !seen.insert(descriptor.digest) {
            return Ok(());
        }
        if descriptor.is_manifest() {
            if depth >= MAX_DEPTH {
                return Err(self.layout_error(&format!(
                    "manifest {} is nested more than {MAX_DEPTH} levels deep",
                    descriptor.digest
                )));
            }
            let (_, manifest) = self.read_manifest(descriptor)?;
            for child in manifest.children() {
                self.walk(&child, seen, out, depth + 1)?;
            }
        }
        out.push(descriptor.clone());
        Ok(())
    }
}

/// Reads until `buf` is full or the reader ends; the bytes read.
fn fill(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The ref-name grammar of the image-layout spec, loosely: printable, no
/// whitespace, not empty. (Full references, `:` and `@` included, pass.)
fn validate_ref_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "{name:?} is not a valid ref name (empty, or has whitespace or control characters)"
        ))
    } else {
        Ok(())
    }
}

#[cfg(unix)]
fn set_readable(file: &File) {
    use std::os::unix::fs::PermissionsExt;
    // tempfile creates 0600; a blob is content-addressed public data.
    let _ = file.set_permissions(fs::Permissions::from_mode(0o644));
}

#[cfg(not(unix))]
fn set_readable(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{OCI_CONFIG, OCI_LAYER_TAR, OCI_MANIFEST};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn creates_a_layout_skeleton() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("store");
        let store = LayoutStore::open_or_create(&root).unwrap();
        assert_eq!(
            fs::read_to_string(root.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert!(store.index().unwrap().manifests.is_empty());
        assert!(root.join("blobs/sha256").is_dir());
        // Opening again keeps what is there.
        store.put_blob_bytes(b"x").unwrap();
        let again = LayoutStore::open_or_create(&root).unwrap();
        assert!(again.has_blob(&Digest::of(b"x")));
        assert!(LayoutStore::open(&root).is_ok());
        assert!(LayoutStore::open(dir.path()).is_err());
    }

    #[test]
    fn a_scratch_store_is_the_same_layout_unsynced() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("staging");
        let scratch = LayoutStore::create_scratch(&root).unwrap();
        let one = image(&scratch, b"layer");
        scratch.set_tag("app:1", one.clone()).unwrap();
        assert_eq!(scratch.remove_temp_files().unwrap(), 0);
        let reopened = LayoutStore::open(&root).unwrap();
        assert_eq!(reopened.resolve("app:1").unwrap().digest, one.digest);
        for d in reopened.walk_image(&one).unwrap() {
            assert!(reopened.verify_blob(&d.digest).unwrap());
        }
        assert_eq!(names(&root), ["blobs", "index.json", "oci-layout"]);
    }

    #[test]
    fn write_blob_from_accepts_matching_and_rejects_mismatching_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let data = vec![42u8; 3 << 20];
        let digest = Digest::of(&data);

        let wrong = Digest::of(b"something else");
        let err = store
            .write_blob_from(&data[..], &wrong, Some(data.len() as u64))
            .unwrap_err();
        assert!(
            matches!(err, OciError::DigestMismatch { expected, actual, .. } if expected == wrong && actual == digest),
            "{err}"
        );
        let err = store
            .write_blob_from(&data[..], &digest, Some(10))
            .unwrap_err();
        assert!(
            matches!(
                err,
                OciError::SizeMismatch {
                    expected: 10,
                    actual: 11,
                    ..
                }
            ),
            "reads at most size+1 bytes: {err}"
        );
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());

        let written = store
            .write_blob_from(&data[..], &digest, Some(data.len() as u64))
            .unwrap();
        assert!(!written.already_present);
        assert_eq!(written.size, data.len() as u64);
        assert_eq!(names(&dir.path().join("blobs/sha256")), [digest.hex()]);
        assert!(store.verify_blob(&digest).unwrap());
        let again = store.write_blob_from(io::empty(), &digest, None).unwrap();
        assert!(again.already_present);

        // A damaged blob file is caught by verify_blob.
        fs::write(store.blob_path(&digest), b"rot").unwrap();
        assert!(
            store
                .verify_blob(&digest)
                .unwrap_err()
                .is_integrity_failure()
        );
        assert!(!store.verify_blob(&wrong).unwrap());
    }

    #[test]
    fn a_failing_reader_leaves_no_temp_file() {
        struct Broken(usize);
        impl Read for Broken {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("connection reset"));
                }
                self.0 -= 1;
                buf[0] = 1;
                Ok(1)
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let err = store
            .write_blob_from(Broken(5), &Digest::of(b"x"), None)
            .unwrap_err();
        assert!(matches!(err, OciError::Io(_)), "{err}");
        assert!(names(&dir.path().join("blobs/sha256")).is_empty());
        fs::write(dir.path().join("blobs/sha256/.tmp-crash"), b"half").unwrap();
        assert_eq!(store.remove_temp_files().unwrap(), 1);
    }

    fn image(store: &LayoutStore, layer: &[u8]) -> Descriptor {
        let layer_d = store.put_blob_bytes(layer).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_d = store.put_blob_bytes(config).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_d}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_TAR}","digest":"{layer_d}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        store.put_blob_bytes(manifest.as_bytes()).unwrap();
        Descriptor::of_bytes(OCI_MANIFEST, manifest.as_bytes())
    }

    #[test]
    fn tags_resolve_list_and_replace() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let one = image(&store, b"layer one");
        let two = image(&store, b"layer two");
        let name = "registry.plant.example/plant/opcua-gateway:1.4.2";
        store.set_tag(name, one.clone()).unwrap();
        store.set_tag("other:1", two.clone()).unwrap();
        assert_eq!(store.resolve(name).unwrap().digest, one.digest);
        store.set_tag(name, two.clone()).unwrap();
        assert_eq!(store.resolve(name).unwrap().digest, two.digest);
        let tags = store.list_tags().unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0].0, name, "replaced in place");
        assert!(store.remove_tag("other:1").unwrap());
        assert!(!store.remove_tag("other:1").unwrap());
        assert!(store.resolve("other:1").unwrap_err().is_not_found());
        let missing = Descriptor::of_bytes(OCI_MANIFEST, b"not stored");
        assert!(matches!(
            store.set_tag("x:1", missing).unwrap_err(),
            OciError::MissingBlob { .. }
        ));
        assert!(store.set_tag("has space", one).is_err());
    }

    #[test]
    fn walk_lists_children_first_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let one = image(&store, b"shared");
        let two = image(&store, b"shared");
        assert_eq!(one, two);
        let a = image(&store, b"a");
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{},{}]}}"#,
            serde_json::to_string(&one).unwrap(),
            serde_json::to_string(&a).unwrap()
        );
        store.put_blob_bytes(index.as_bytes()).unwrap();
        let top = Descriptor::of_bytes(OCI_INDEX, index.as_bytes());
        let walked = store.walk_image(&top).unwrap();
        // layer, config, manifest; layer, (config shared), manifest; index.
        assert_eq!(walked.len(), 6);
        assert_eq!(walked.last().unwrap().digest, top.digest);
        let pos = |d: &Digest| walked.iter().position(|w| w.digest == *d).unwrap();
        assert!(pos(&one.digest) < pos(&top.digest));
        assert!(pos(&Digest::of(b"shared")) < pos(&one.digest));

        fs::remove_file(store.blob_path(&a.digest)).unwrap();
        assert!(matches!(
            store.walk_image(&top).unwrap_err(),
            OciError::MissingBlob { .. }
        ));
    }
}
