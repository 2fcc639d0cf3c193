//! The bundle manifest: the first tar entry, and the bytes every signature
//! covers. It tells the importer everything it needs before it reads a blob.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::digest::Digest;
pub use crate::fields::{is_token, is_utc_seconds};
use crate::layout::{EntryPath, OCI_INDEX_FILE, OCI_LAYOUT_FILE};
use crate::policy_update::{PolicyUpdate, validate_chain};
use crate::ustar::MAX_ENTRY_SIZE;

/// The value of `format` for this version of the spec.
pub const FORMAT_V1: &str = "tender-bundle/v1";

/// Size of the signature slot (entry 1) that `tender export` reserves.
/// 64 KiB holds several hundred signatures.
pub const DEFAULT_SIGNATURE_SLOT_SIZE: u64 = 64 * 1024;

/// Largest signature slot a reader accepts.
pub const MAX_SIGNATURE_SLOT_SIZE: u64 = 1024 * 1024;

/// Largest manifest a reader accepts (about 300,000 blobs). It is read
/// before any signature is checked, so it is kept modest.
pub const MAX_MANIFEST_SIZE: u64 = 64 * 1024 * 1024;

/// Whether a bundle stands alone or builds on a base bundle the site holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    Full,
    Delta,
}

/// As the manifest spells it (`full`, `delta`), for people too.
impl std::fmt::Display for BundleKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BundleKind::Full => "full",
            BundleKind::Delta => "delta",
        })
    }
}

/// How a blob of a release reaches a site in a delta bundle: carried as it
/// is, referenced (the site holds it), or carried as a patch. Reports and
/// `tender inspect` say it; the manifest says it by encoding and `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carried {
    Whole,
    Referenced,
    Patched,
}

impl Carried {
    pub fn as_str(self) -> &'static str {
        match self {
            Carried::Whole => "whole",
            Carried::Referenced => "referenced",
            Carried::Patched => "patched",
        }
    }
}

/// As reports spell it; honours width and alignment (`{:<8}`).
impl std::fmt::Display for Carried {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// How an entry's bytes relate to the blob they carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The entry's bytes are the blob itself.
    Identity,
    /// The entry's bytes are a patch (spec §8.3) that rebuilds the blob its
    /// path names from a source blob the site holds. Delta bundles only.
    Patch,
}

/// One tar entry after the manifest and the signature slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub digest: Digest,
    pub encoding: Encoding,
}

impl Entry {
    /// The blob the entry's path names, if it is a blob entry.
    pub fn blob(&self) -> Option<Digest> {
        match EntryPath::parse(&self.path) {
            Ok(EntryPath::Blob(named)) => Some(named),
            _ => None,
        }
    }
}

/// An image a release uses, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageRef {
    /// The reference as the manifests name it (`registry/repo:tag`).
    pub reference: String,
    /// The manifest or index digest the tag resolved to at export time.
    pub digest: Digest,
}

/// What one cluster runs after this bundle is imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    pub cluster: String,
    pub site: String,
    /// The blob holding the cluster's rendered manifest set.
    pub manifests: Digest,
    pub images: Vec<ImageRef>,
}

/// Which sites and clusters may import the bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub sites: Vec<String>,
    pub clusters: Vec<String>,
}

/// What a delta builds on: the bundle it was computed against, the blobs
/// of this release it does not carry, and where each patch comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Base {
    pub bundle_id: String,
    pub manifest_digest: Digest,
    /// Blobs of this release the site already holds (not carried), sorted
    /// by digest.
    pub blobs: Vec<BaseBlob>,
    /// One per `patch` entry, sorted by target digest.
    pub patches: Vec<PatchSource>,
    /// Why layers the delta carries whole could not travel as patches,
    /// sorted by digest; omitted when empty. Informational (signed, never
    /// acted on): an operator reading the stick sees why it is large.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub whole: Vec<WholeBlob>,
}

/// A carried blob of a delta and why it is not a patch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WholeBlob {
    pub digest: Digest,
    pub reason: String,
}

/// Longest `base.whole[].reason`, in bytes.
pub const MAX_WHOLE_REASON: usize = 1024;

/// A blob a delta relies on the site holding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseBlob {
    pub digest: Digest,
    pub size: u64,
}

/// The source blob (which the site holds) a patch entry rebuilds its
/// target from, and the target's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchSource {
    pub target: Digest,
    pub target_size: u64,
    pub source: Digest,
    pub source_size: u64,
}

impl Base {
    /// Every blob the site must hold, intact, before the delta is applied:
    /// the referenced blobs and the patch sources, by digest.
    pub fn required(&self) -> BTreeMap<Digest, u64> {
        self.blobs
            .iter()
            .map(|b| (b.digest, b.size))
            .chain(self.patches.iter().map(|p| (p.source, p.source_size)))
            .collect()
    }
}

/// The bundle manifest, format v1 (bundle-spec §4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BundleManifest {
    pub format: String,
    pub bundle_id: String,
    pub kind: BundleKind,
    pub channel: String,
    pub sequence: u64,
    /// RFC 3339 UTC, seconds precision.
    pub created: String,
    pub creator: String,
    pub targets: Targets,
    pub releases: Vec<Release>,
    pub base: Option<Base>,
    pub signature_slot_size: u64,
    pub entries: Vec<Entry>,
    /// Policy updates for the sites, applied before this bundle's own
    /// signatures are evaluated (§7.3). Optional: omitted when empty, so
    /// a bundle without updates has the bytes it always had.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy_updates: Vec<PolicyUpdate>,
    /// The hub exported this bundle past a wave gate that did not hold
    /// (`tender export --override-gate`): why, and whose receipts were
    /// missing. Informational, signed, never acted on. Optional: omitted
    /// when absent, so other bundles keep their bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_override: Option<GateOverride>,
}

/// Why a bundle went out although its wave's gate did not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateOverride {
    /// The operator's reason, as given.
    pub reason: String,
    /// The clusters of the gating waves that had not shown the release
    /// (never reported, ran another release, not soaked long enough,
    /// rolled back), sorted, each once.
    pub pending: Vec<String>,
}

/// Longest `gate_override.reason`, in bytes.
pub const MAX_GATE_OVERRIDE_REASON: usize = 1024;

impl GateOverride {
    /// A reason of 1 … 1 024 bytes without control characters, and
    /// `pending` sorted tokens, each once.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.reason.trim().is_empty()
            || self.reason.len() > MAX_GATE_OVERRIDE_REASON
            || self.reason.chars().any(char::is_control)
        {
            return Err(ManifestError::Invalid(format!(
                "gate_override reason is blank, longer than {MAX_GATE_OVERRIDE_REASON} bytes or has control characters"
            )));
        }
        if let Some(bad) = self.pending.iter().find(|c| !is_token(c)) {
            return Err(ManifestError::Invalid(format!(
                "gate_override pending cluster {bad:?} is not a token"
            )));
        }
        if !self.pending.windows(2).all(|w| w[0] < w[1]) {
            return Err(ManifestError::Invalid(
                "gate_override pending clusters are not sorted, or repeat".into(),
            ));
        }
        Ok(())
    }
}

/// Why a manifest breaks the rules of the spec.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not canonical JSON")]
    Canonical(#[from] CanonicalError),
    #[error("unsupported bundle format {0:?} (this tender reads {FORMAT_V1})")]
    Format(String),
    #[error("manifest is invalid: {0}")]
    Invalid(String),
}

impl BundleManifest {
    /// The exact bytes that go into the bundle and get signed.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        Ok(canonical::to_vec(self)?)
    }

    /// Parses and validates manifest bytes read from a bundle.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, ManifestError> {
        // Check the version before anything else, so a newer format gets a
        // message about the version rather than about a field.
        #[derive(Deserialize)]
        struct Probe {
            format: String,
        }
        if let Ok(probe) = serde_json::from_slice::<Probe>(bytes)
            && probe.format != FORMAT_V1
        {
            return Err(ManifestError::Format(probe.format));
        }
        let manifest: BundleManifest = canonical::from_slice(bytes)?;
        // One manifest, one encoding: re-encoding the struct must give the
        // same bytes (this catches omitted optional fields too).
        if manifest.to_canonical_bytes()? != bytes {
            return Err(CanonicalError::NotCanonical.into());
        }
        Ok(manifest)
    }

    /// The blobs the bundle's entries carry, whole or as patches, by the
    /// digest their path names.
    pub fn carried_blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.entries.iter().filter_map(Entry::blob)
    }

    /// The blobs the entries carry with `encoding`, in entry order.
    fn carried_as(&self, encoding: Encoding) -> impl Iterator<Item = Digest> + '_ {
        self.entries
            .iter()
            .filter(move |e| e.encoding == encoding)
            .filter_map(Entry::blob)
    }

    /// Every blob of the release once imported: carried, and (for a delta)
    /// referenced from the base.
    pub fn release_blobs(&self) -> impl Iterator<Item = Digest> + '_ {
        self.carried_blobs().chain(
            self.base
                .iter()
                .flat_map(|b| b.blobs.iter().map(|b| b.digest)),
        )
    }

    /// Total bytes of entry data (without tar headers). Cannot overflow:
    /// `validate` bounds each size.
    pub fn payload_bytes(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |sum, e| sum.saturating_add(e.size))
    }

    /// Checks every rule the spec states about the manifest on its own.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let invalid = |msg: String| Err(ManifestError::Invalid(msg));
        if self.format != FORMAT_V1 {
            return Err(ManifestError::Format(self.format.clone()));
        }
        if !is_token(&self.bundle_id) {
            return invalid(format!("bundle_id {:?} is not a token", self.bundle_id));
        }
        if !is_token(&self.channel) {
            return invalid(format!("channel {:?} is not a token", self.channel));
        }
        if !is_utc_seconds(&self.created) {
            return invalid(format!(
                "created {:?} is not an RFC 3339 UTC time in seconds (YYYY-MM-DDTHH:MM:SSZ)",
                self.created
            ));
        }
        for list in [&self.targets.sites, &self.targets.clusters] {
            let mut seen = BTreeSet::new();
            for name in list {
                if !is_token(name) {
                    return invalid(format!("target {name:?} is not a token"));
                }
                if !seen.insert(name) {
                    return invalid(format!("target {name} is listed twice"));
                }
            }
        }
        if let Some(base) = &self.base {
            self.validate_base(base)?;
        }
        if self.signature_slot_size == 0
            || self.signature_slot_size > MAX_SIGNATURE_SLOT_SIZE
            || !self.signature_slot_size.is_multiple_of(512)
        {
            return invalid(format!(
                "signature_slot_size {} must be a positive multiple of 512 up to {MAX_SIGNATURE_SLOT_SIZE}",
                self.signature_slot_size
            ));
        }
        match (self.kind, &self.base) {
            (BundleKind::Full, Some(_)) => return invalid("a full bundle has no base".into()),
            (BundleKind::Delta, None) => return invalid("a delta bundle names its base".into()),
            _ => {}
        }
        self.validate_entries()?;
        // The blobs this release has once the bundle is imported.
        let blobs: BTreeSet<Digest> = self.release_blobs().collect();
        let mut clusters = BTreeSet::new();
        for release in &self.releases {
            if !clusters.insert(release.cluster.as_str()) {
                return invalid(format!("cluster {} has two releases", release.cluster));
            }
            if !self.targets.clusters.contains(&release.cluster) {
                return invalid(format!(
                    "release for untargeted cluster {}",
                    release.cluster
                ));
            }
            if !self.targets.sites.contains(&release.site) {
                return invalid(format!("release for untargeted site {}", release.site));
            }
            if !blobs.contains(&release.manifests) {
                return invalid(format!(
                    "manifest set {} of cluster {} is neither an entry nor a base blob",
                    release.manifests, release.cluster
                ));
            }
        }
        validate_chain(&self.policy_updates)
            .map_err(|e| ManifestError::Invalid(format!("policy_updates: {e}")))?;
        if let Some(o) = &self.gate_override {
            o.validate()?;
        }
        Ok(())
    }

    /// A delta's base: sorted lists, one patch record per patch entry, and
    /// nothing both carried and referenced.
    fn validate_base(&self, base: &Base) -> Result<(), ManifestError> {
        let invalid = |msg: String| Err(ManifestError::Invalid(msg));
        if !is_token(&base.bundle_id) {
            return invalid(format!(
                "base bundle_id {:?} is not a token",
                base.bundle_id
            ));
        }
        if !base.blobs.windows(2).all(|w| w[0].digest < w[1].digest) {
            return invalid("base blobs are not sorted by digest, or repeat".into());
        }
        if !base.patches.windows(2).all(|w| w[0].target < w[1].target) {
            return invalid("base patches are not sorted by target, or repeat".into());
        }
        let carried: BTreeSet<Digest> = self.carried_blobs().collect();
        if let Some(both) = base.blobs.iter().find(|b| carried.contains(&b.digest)) {
            return invalid(format!(
                "blob {} is both carried and referenced",
                both.digest
            ));
        }
        let patched: Vec<Digest> = self.carried_as(Encoding::Patch).collect();
        let recorded: Vec<Digest> = base.patches.iter().map(|p| p.target).collect();
        if patched != recorded {
            return invalid("base patches do not list exactly the patch entries, in order".into());
        }
        if let Some(p) = base.patches.iter().find(|p| p.source == p.target) {
            return invalid(format!("patch of {} names itself as source", p.target));
        }
        if !base.whole.windows(2).all(|w| w[0].digest < w[1].digest) {
            return invalid("base whole reasons are not sorted by digest, or repeat".into());
        }
        let identity: BTreeSet<Digest> = self.carried_as(Encoding::Identity).collect();
        for w in &base.whole {
            if !identity.contains(&w.digest) {
                return invalid(format!(
                    "base gives a reason for {}, which is not a blob carried whole",
                    w.digest
                ));
            }
            if w.reason.is_empty()
                || w.reason.len() > MAX_WHOLE_REASON
                || w.reason.chars().any(char::is_control)
            {
                return invalid(format!(
                    "the reason given for {} is empty, longer than {MAX_WHOLE_REASON} bytes or has control characters",
                    w.digest
                ));
            }
        }
        Ok(())
    }

    fn validate_entries(&self) -> Result<(), ManifestError> {
        let invalid = |msg: String| Err(ManifestError::Invalid(msg));
        let mut seen = BTreeSet::new();
        let mut last_blob: Option<Digest> = None;
        for (i, entry) in self.entries.iter().enumerate() {
            if entry.size > MAX_ENTRY_SIZE {
                return invalid(format!(
                    "entry {} is {} bytes; v1 entries stop at {MAX_ENTRY_SIZE}",
                    entry.path, entry.size
                ));
            }
            let path = EntryPath::parse(&entry.path)
                .map_err(|e| ManifestError::Invalid(format!("entry {i}: {e}")))?;
            if !seen.insert(entry.path.as_str()) {
                return invalid(format!("entry {} is listed twice", entry.path));
            }
            // Fixed order: oci-layout, index.json, then blobs by digest.
            // One order means one byte stream for one set of contents.
            if entry.encoding == Encoding::Patch
                && (self.kind != BundleKind::Delta || !matches!(path, EntryPath::Blob(_)))
            {
                return invalid(format!(
                    "entry {}: only blobs of a delta bundle may be patches",
                    entry.path
                ));
            }
            let expected_position = match path {
                EntryPath::OciLayout => Some(0),
                EntryPath::OciIndex => Some(1),
                EntryPath::Blob(digest) => {
                    if entry.encoding == Encoding::Identity && digest != entry.digest {
                        return invalid(format!(
                            "entry {} is named for another digest than {}",
                            entry.path, entry.digest
                        ));
                    }
                    if last_blob.is_some_and(|prev| prev >= digest) {
                        return invalid(format!("blob {} is out of digest order", entry.path));
                    }
                    last_blob = Some(digest);
                    None
                }
            };
            if let Some(pos) = expected_position
                && pos != i
            {
                return invalid(format!("{} must be entry {pos} of the list", entry.path));
            }
        }
        if !(seen.contains(OCI_LAYOUT_FILE) && seen.contains(OCI_INDEX_FILE)) {
            return invalid("a bundle carries oci-layout and index.json".into());
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> BundleManifest {
        let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
        let blob = Digest::of(b"manifests");
        BundleManifest {
            format: FORMAT_V1.into(),
            bundle_id: "b-1".into(),
            kind: BundleKind::Full,
            channel: "stable".into(),
            sequence: 1,
            created: "2026-11-26T00:00:00Z".into(),
            creator: "test".into(),
            targets: Targets {
                sites: vec!["plant-001".into()],
                clusters: vec!["line-a".into()],
            },
            releases: vec![Release {
                cluster: "line-a".into(),
                site: "plant-001".into(),
                manifests: blob,
                images: vec![],
            }],
            base: None,
            signature_slot_size: DEFAULT_SIGNATURE_SLOT_SIZE,
            policy_updates: Vec::new(),
            gate_override: None,
            entries: vec![
                Entry {
                    path: OCI_LAYOUT_FILE.into(),
                    size: layout.len() as u64,
                    digest: Digest::of(layout),
                    encoding: Encoding::Identity,
                },
                Entry {
                    path: OCI_INDEX_FILE.into(),
                    size: 2,
                    digest: Digest::of(b"{}"),
                    encoding: Encoding::Identity,
                },
                Entry {
                    path: format!("blobs/sha256/{}", blob.hex()),
                    size: 9,
                    digest: blob,
                    encoding: Encoding::Identity,
                },
            ],
        }
    }

    #[test]
    fn canonical_round_trip() {
        let m = sample();
        let bytes = m.to_canonical_bytes().unwrap();
        assert_eq!(BundleManifest::from_canonical_bytes(&bytes).unwrap(), m);
    }

    #[test]
    fn newer_format_is_named_in_the_error() {
        let mut m = sample();
        m.format = "tender-bundle/v9".into();
        let bytes = canonical::to_vec(&m).unwrap();
        let err = BundleManifest::from_canonical_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("tender-bundle/v9"), "{err}");
    }

    #[test]
    fn blob_named_for_another_digest_is_invalid() {
        let mut m = sample();
        m.entries[2].path = format!("blobs/sha256/{}", Digest::of(b"other").hex());
        assert!(m.validate().is_err());
    }

    #[test]
    fn duplicate_and_unordered_entries_are_invalid() {
        let mut m = sample();
        m.entries.push(m.entries[2].clone());
        assert!(m.validate().unwrap_err().to_string().contains("twice"));
        let mut m = sample();
        m.entries.swap(0, 1);
        assert!(m.validate().is_err());
    }

    /// `sample` as a delta whose one blob is a patch of it.
    fn delta_sample() -> BundleManifest {
        let mut m = sample();
        let target = m.entries[2].digest;
        m.kind = BundleKind::Delta;
        m.entries[2].encoding = Encoding::Patch;
        m.entries[2].digest = Digest::of(b"patch bytes");
        m.base = Some(Base {
            bundle_id: "b-0".into(),
            manifest_digest: Digest::of(b"base manifest"),
            blobs: vec![BaseBlob {
                digest: Digest::of(b"config layer"),
                size: 12,
            }],
            patches: vec![PatchSource {
                target,
                target_size: 9,
                source: Digest::of(b"old manifests"),
                source_size: 13,
            }],
            whole: Vec::new(),
        });
        m
    }

    #[test]
    fn whole_reasons_name_carried_blobs_and_round_trip() {
        let mut m = delta_sample();
        m.validate().unwrap();
        // Absent when empty, so deltas written before reasons existed
        // still read and re-encode to the same bytes.
        let bytes = m.to_canonical_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains("whole"));
        let carried = Digest::of(b"a layer");
        m.entries.push(Entry {
            path: format!("blobs/sha256/{}", carried.hex()),
            size: 7,
            digest: carried,
            encoding: Encoding::Identity,
        });
        m.entries[2..].sort_by(|a, b| a.path.cmp(&b.path));
        m.base.as_mut().unwrap().whole = vec![WholeBlob {
            digest: carried,
            reason: "encoder not modelled: zstd written by klauspost/compress".into(),
        }];
        let bytes = m.to_canonical_bytes().unwrap();
        assert_eq!(BundleManifest::from_canonical_bytes(&bytes).unwrap(), m);
        // A reason for a patched blob, or one with a newline, is refused.
        let patched = m.base.as_ref().unwrap().patches[0].target;
        m.base.as_mut().unwrap().whole[0].digest = patched;
        assert!(
            m.validate()
                .unwrap_err()
                .to_string()
                .contains("not a blob carried whole")
        );
        m.base.as_mut().unwrap().whole[0].digest = carried;
        m.base.as_mut().unwrap().whole[0].reason = "two\nlines".into();
        assert!(m.validate().unwrap_err().to_string().contains("control"));
    }

    #[test]
    fn a_gate_override_is_optional_signed_text_and_checked() {
        let mut m = sample();
        let without = m.to_canonical_bytes().unwrap();
        assert!(!String::from_utf8_lossy(&without).contains("gate_override"));
        m.gate_override = Some(GateOverride {
            reason: "line A is down for a week; production needs the fix".into(),
            pending: vec!["plant-001-line-a".into()],
        });
        let bytes = m.to_canonical_bytes().unwrap();
        assert_eq!(BundleManifest::from_canonical_bytes(&bytes).unwrap(), m);
        // Written as null it is a second encoding of "absent": refused.
        let null = String::from_utf8(without.clone()).unwrap().replacen(
            "\"kind\"",
            "\"gate_override\":null,\"kind\"",
            1,
        );
        assert_ne!(null.as_bytes(), without.as_slice());
        assert!(BundleManifest::from_canonical_bytes(null.as_bytes()).is_err());
        for (reason, pending) in [
            ("", vec![]),
            ("two\nlines", vec![]),
            ("ok", vec!["b".to_string(), "a".to_string()]),
            ("ok", vec!["../x".to_string()]),
        ] {
            m.gate_override = Some(GateOverride {
                reason: reason.into(),
                pending,
            });
            assert!(m.validate().is_err(), "{reason:?}");
        }
    }

    #[test]
    fn a_delta_lists_its_patches_and_references() {
        let m = delta_sample();
        m.validate().unwrap();
        let bytes = m.to_canonical_bytes().unwrap();
        assert_eq!(BundleManifest::from_canonical_bytes(&bytes).unwrap(), m);
        let required = m.base.as_ref().unwrap().required();
        assert_eq!(required.len(), 2);
        assert_eq!(m.release_blobs().count(), 2);
    }

    #[test]
    fn delta_rules_are_enforced() {
        // A patch in a full bundle.
        let mut m = delta_sample();
        m.kind = BundleKind::Full;
        m.base = None;
        assert!(m.validate().unwrap_err().to_string().contains("patches"));
        // A patch entry without its base record, and the reverse.
        let mut m = delta_sample();
        m.base.as_mut().unwrap().patches.clear();
        assert!(m.validate().unwrap_err().to_string().contains("exactly"));
        let mut m = delta_sample();
        m.entries[2].encoding = Encoding::Identity;
        m.entries[2].digest = m.base.as_ref().unwrap().patches[0].target;
        assert!(m.validate().unwrap_err().to_string().contains("exactly"));
        // A blob both carried and referenced.
        let mut m = delta_sample();
        let carried = m.base.as_ref().unwrap().patches[0].target;
        m.base.as_mut().unwrap().blobs.push(BaseBlob {
            digest: carried,
            size: 9,
        });
        m.base.as_mut().unwrap().blobs.sort_by_key(|b| b.digest);
        assert!(m.validate().unwrap_err().to_string().contains("both"));
        // A patch that names itself as its source.
        let mut m = delta_sample();
        let base = m.base.as_mut().unwrap();
        base.patches[0].source = base.patches[0].target;
        assert!(m.validate().unwrap_err().to_string().contains("itself"));
    }

    #[test]
    fn tokens() {
        assert!(is_token("plant-001_line.a"));
        for bad in ["", ".hidden", "a/b", "a b", "..", &"x".repeat(129)] {
            assert!(!is_token(bad), "{bad}");
        }
    }
}
