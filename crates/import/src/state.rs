//! The site state directory. Everything an import decides rests on one
//! file, `site.json` (the last sequence per channel and each cluster's
//! current release), replaced atomically as the import's last step: before
//! it the previous release is the visible one, after it the new one is.
//!
//! ```text
//! state/
//!   lock            held for the whole import
//!   site.json       channels and current releases (the commit point)
//!   audit.jsonl     hash-chained audit trail
//!   releases/<cluster>/<sequence>.json   every release ever imported
//!   manifests/sha256/<hex>               manifest sets, by digest
//!   blobs/sha256/<hex>                   registry site: carried blobs no image reaches
//!   staging/<manifest hex>/              an import in progress
//!   store/                               the embedded OCI layout store
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::lock_file::LockFile;
use tender_format::manifest::ImageRef;
use tender_format::policy_update::{PolicyUpdate, unix_seconds};
use tender_format::{Digest, atomic};

use crate::error::ImportError;

/// What a channel last received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelState {
    pub sequence: u64,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub imported_at: String,
    /// Set when a policy update reset the channel's sequence (§7.3): no
    /// bundle created before the reset is accepted on it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ChannelReset>,
}

/// A channel's sequence floor set by a policy update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReset {
    /// The policy that reset it.
    pub policy_version: u64,
    /// That policy's `created`: bundles must be newer.
    pub not_before: String,
}

/// One cluster's release as the site holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseRecord {
    pub cluster: String,
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    pub manifest_digest: String,
    /// The cluster's manifest set.
    pub manifests: Digest,
    pub images: Vec<ImageRef>,
    /// Where each image now lives at the site (registry or embedded store).
    pub locations: BTreeMap<String, String>,
    /// The manifest set as delivered (images rewritten), if it differs.
    #[serde(default)]
    pub delivered: Option<Digest>,
    /// Where the manifests were published (`oci:…`, `git:…`, `dir:…`).
    #[serde(default)]
    pub published: Vec<String>,
    pub imported_at: String,
    /// The bundle's `created` time, which the OCI artifact carries: a
    /// rollback republishes the byte-identical artifact (same digest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStateFile {
    pub channels: BTreeMap<String, ChannelState>,
    pub current: BTreeMap<String, ReleaseRecord>,
    /// The accepted policy update and the freshness high-water mark.
    #[serde(default, skip_serializing_if = "TrustState::is_empty")]
    pub trust: TrustState,
}

/// What the site's trust rests on besides its first policy (bundle-spec
/// §7.3, §11.7). Kept in `site.json` so that a policy update, its resets
/// and the high-water mark commit together, atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustState {
    /// The last policy update accepted; the site's policy while its
    /// version is above the site file's `trustPolicy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyUpdate>,
    /// The newest signed `created` the site ever accepted (bundles and
    /// policy updates): the reference time without a trusted clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high_water_mark: Option<String>,
}

impl TrustState {
    pub fn is_empty(&self) -> bool {
        self.policy.is_none() && self.high_water_mark.is_none()
    }

    /// Raises the high-water mark to `created` if that is newer.
    pub fn raise(&mut self, created: &str) {
        let newer = match &self.high_water_mark {
            Some(h) => unix_seconds(created) > unix_seconds(h),
            None => true,
        };
        if newer {
            self.high_water_mark = Some(created.to_string());
        }
    }
}

/// The state directory, locked for the life of this value.
pub struct SiteState {
    dir: PathBuf,
    _lock: LockFile,
}

impl SiteState {
    pub fn open(dir: &Path) -> Result<Self, ImportError> {
        let io = |e| ImportError::io_at("opening site state", dir, e);
        for sub in ["releases", "manifests/sha256", "staging"] {
            atomic::create_dir_all(&dir.join(sub)).map_err(io)?;
        }
        let lock = LockFile::try_acquire(&dir.join("lock"))
            .map_err(io)?
            .ok_or_else(|| {
                ImportError::Busy(format!(
                    "{} is locked by another tender process",
                    dir.display()
                ))
            })?;
        Ok(SiteState {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn read(&self) -> Result<SiteStateFile, ImportError> {
        read_state(&self.dir)
    }

    /// Replaces `site.json` atomically: the commit point of an import.
    pub fn commit(&self, state: &SiteStateFile) -> Result<(), ImportError> {
        let path = self.dir.join("site.json");
        let mut text = serde_json::to_vec_pretty(state).expect("state serializes");
        text.push(b'\n');
        atomic::write(&path, &text)
            .map_err(|e| ImportError::io_at("committing site state", &path, e))
    }

    /// Keeps a release in the history (before it becomes current).
    pub fn record_release(&self, release: &ReleaseRecord) -> Result<(), ImportError> {
        let dir = self.dir.join("releases").join(&release.cluster);
        let io = |e| ImportError::io_at("recording release", &dir, e);
        atomic::create_dir_all(&dir).map_err(io)?;
        let path = dir.join(format!("{:020}.json", release.sequence));
        let mut text = serde_json::to_vec_pretty(release).expect("records serialize");
        text.push(b'\n');
        atomic::write(&path, &text).map_err(io)
    }

    pub fn manifests_path(&self, digest: &Digest) -> PathBuf {
        crate::inventory::manifest_set_path(&self.dir, digest)
    }

    pub fn staging_dir(&self, manifest_digest: &Digest) -> PathBuf {
        self.dir.join("staging").join(manifest_digest.hex())
    }
}

/// Reads `site.json` without taking the lock (for status commands).
pub fn read_state(dir: &Path) -> Result<SiteStateFile, ImportError> {
    let path = dir.join("site.json");
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::io_at(
                "reading site state",
                &path,
                std::io::Error::other(e.to_string()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(SiteStateFile::default()),
        Err(e) => Err(ImportError::io_at("reading site state", &path, e)),
    }
}
