//! The site's inventory: every blob it holds, where, and whether intact.
//!
//! One question, "do I hold this blob intact", has one answer for every
//! blob kind, asked by the hub (through the receipt's inventory) and by a
//! delta import (its required set, bundle spec §8.2). A site keeps blobs in
//! these places:
//!
//! * `state/manifests/sha256/` — every release's manifest set, at every
//!   site (publishing and rollback read them there);
//! * `state/blobs/sha256/` — at a registry site, any other blob a bundle
//!   carried that no image reaches, so nothing the bundle carried is lost;
//! * the image target — the embedded store (which also keeps every blob
//!   of the release) or the site registry (images' blobs and manifests).
//!
//! The embedded store is its own inventory; for a registry target tender
//! keeps the list of what it holds (`inventory.json`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use tender_format::{Digest, atomic};
use tender_oci::{Descriptor, LayoutStore, Reference, RegistryClient};

use crate::error::ImportError;
use crate::site::{ImageTarget, Site};

const FILE: &str = "inventory.json";

/// Adds blobs to the recorded inventory.
pub fn add(state_dir: &Path, blobs: &[Digest]) -> Result<(), ImportError> {
    let mut all = recorded(state_dir)?;
    let before = all.len();
    all.extend(blobs.iter().copied());
    if all.len() == before {
        return Ok(());
    }
    let path = state_dir.join(FILE);
    let text = serde_json::to_vec(&all).expect("digests serialize");
    atomic::write(&path, &text).map_err(|e| ImportError::io_at("writing inventory", &path, e))
}

/// Removes blobs from the recorded inventory (`tender gc` deleted them).
pub fn forget(state_dir: &Path, blobs: &BTreeSet<Digest>) -> Result<(), ImportError> {
    let mut all = recorded(state_dir)?;
    let before = all.len();
    all.retain(|d| !blobs.contains(d));
    if all.len() == before {
        return Ok(());
    }
    let path = state_dir.join(FILE);
    let text = serde_json::to_vec(&all).expect("digests serialize");
    atomic::write(&path, &text).map_err(|e| ImportError::io_at("writing inventory", &path, e))
}

fn recorded(state_dir: &Path) -> Result<BTreeSet<Digest>, ImportError> {
    let path = state_dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::io_at(
                "reading inventory",
                &path,
                std::io::Error::other(e.to_string()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(ImportError::io_at("reading inventory", &path, e)),
    }
}

/// What the site holds now.
pub fn current(site: &Site) -> Result<BTreeSet<Digest>, ImportError> {
    match &site.target {
        ImageTarget::Registry(_) => recorded(&site.state_dir),
        ImageTarget::Embedded => {
            let dir = site.store_dir().join("blobs/sha256");
            let mut out = BTreeSet::new();
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(ImportError::io_at("listing", &dir, e)),
            };
            for e in entries {
                let e = e.map_err(|err| ImportError::io_at("listing", &dir, err))?;
                if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                    out.insert(d);
                }
            }
            Ok(out)
        }
    }
}

/// Where the site keeps a manifest set.
pub fn manifest_set_path(state_dir: &Path, digest: &Digest) -> PathBuf {
    state_dir.join("manifests/sha256").join(digest.hex())
}

/// Where a registry site keeps a carried blob that no image reaches.
pub fn kept_blob_path(state_dir: &Path, digest: &Digest) -> PathBuf {
    state_dir.join("blobs/sha256").join(digest.hex())
}

/// Copies a verified blob (from staging) to where the state keeps it,
/// unless an intact copy is already there. Returns whether it was new.
pub fn keep(from: &Path, to: &Path, digest: &Digest, size: u64) -> Result<bool, ImportError> {
    if intact(to, digest, size) == Some(true) {
        return Ok(false);
    }
    let dir = to.parent().expect("blob paths have a directory");
    let io = |e| ImportError::io_at("keeping blob", to, e);
    atomic::create_dir_all(dir).map_err(io)?;
    let tmp = to.with_extension("keeping");
    fs::copy(from, &tmp).map_err(io)?;
    File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
    fs::rename(&tmp, to).map_err(io)?;
    atomic::sync_dir(dir).map_err(io)?;
    Ok(true)
}

/// [`keep`] for a blob of the verified staging layout.
pub fn keep_staged(staging: &LayoutStore, digest: &Digest, to: &Path) -> Result<bool, ImportError> {
    let from = staging.blob_path(digest);
    let size = fs::metadata(&from)
        .map_err(|e| ImportError::io_at("reading staged blob", &from, e))?
        .len();
    keep(&from, to, digest, size)
}

/// `None` if there is no file, else whether it has the size and digest.
fn intact(path: &Path, digest: &Digest, size: u64) -> Option<bool> {
    let meta = fs::metadata(path).ok().filter(|m| m.is_file())?;
    if meta.len() != size {
        return Some(false);
    }
    Some(
        File::open(path)
            .and_then(Digest::of_reader)
            .is_ok_and(|(d, n)| d == *digest && n == size),
    )
}

/// The site registry, when images go to one: the repositories a release's
/// images live in, and a scratch store to pull blobs into (they are needed
/// as files, and re-hashed as they arrive).
pub struct RegistryPlace<'a> {
    pub client: &'a RegistryClient,
    pub repositories: Vec<Reference>,
    pub scratch: LayoutStore,
}

/// Whether the site holds one blob intact, and where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// Re-hashed now: this file has the blob.
    Intact(PathBuf),
    /// Not intact anywhere; why (`missing`, `damaged in the site registry`).
    Not(String),
}

/// Looks for every blob of `required` (digest → size) in every place this
/// site keeps blobs (the module doc), re-hashing each copy before relying
/// on it. A damaged copy counts as none, and the next place is asked.
pub fn find(
    site: &Site,
    required: &BTreeMap<Digest, u64>,
    registry: Option<&RegistryPlace>,
) -> Result<BTreeMap<Digest, Held>, ImportError> {
    let state_dir = &site.state_dir;
    let store = match &site.target {
        ImageTarget::Embedded => Some(LayoutStore::open_or_create(site.store_dir())?),
        ImageTarget::Registry(_) => None,
    };
    let list: Vec<(Digest, u64)> = required.iter().map(|(d, s)| (*d, *s)).collect();
    // Local files first (both cores): the state's copies, then the store.
    let local = tender_format::parallel::map(&list, 2, |(digest, size)| {
        let mut places = vec![
            manifest_set_path(state_dir, digest),
            kept_blob_path(state_dir, digest),
        ];
        if let Some(store) = &store {
            places.push(store.blob_path(digest));
        }
        let mut damaged = false;
        for path in places {
            match intact(&path, digest, *size) {
                Some(true) => return Ok(path),
                Some(false) => damaged = true,
                None => {}
            }
        }
        Err(if damaged { "damaged" } else { "missing" })
    });
    let mut out = BTreeMap::new();
    for ((digest, size), found) in list.iter().zip(local) {
        let held = match (found, registry) {
            (Ok(path), _) => Held::Intact(path),
            (Err(why), None) => Held::Not(why.to_string()),
            (Err(why), Some(registry)) => match from_registry(registry, digest, *size)? {
                // A damaged copy in the state says more than "not in the
                // registry either".
                Held::Not(_) if why == "damaged" => Held::Not(why.to_string()),
                held => held,
            },
        };
        out.insert(*digest, held);
    }
    Ok(out)
}

/// Pulls a blob from the first of the release's repositories that has it,
/// verifying it as it arrives.
fn from_registry(
    registry: &RegistryPlace,
    digest: &Digest,
    size: u64,
) -> Result<Held, ImportError> {
    let descriptor = Descriptor::new("application/octet-stream", *digest, size);
    for repo in &registry.repositories {
        match registry
            .client
            .pull_blob_to(&registry.scratch, repo, &descriptor)
        {
            Ok(_) => return Ok(Held::Intact(registry.scratch.blob_path(digest))),
            // Not in this repository: try the next.
            Err(e) if e.is_not_found() => {}
            // A damaged copy is the same as none.
            Err(e) if e.is_integrity_failure() => {
                return Ok(Held::Not("damaged in the site registry".into()));
            }
            // The registry cannot be read: a machine problem.
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Held::Not("missing from the site registry".into()))
}
