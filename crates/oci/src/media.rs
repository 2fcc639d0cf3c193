//! Media types, descriptors, and just enough manifest parsing to enumerate
//! what a manifest or index points at ([`children`]).
//!
//! Parsing is lenient with fields it does not know (they are ignored, and
//! kept when a document is rewritten, see [`Descriptor::extra`]) and strict
//! with what it relies on: every digest must be `sha256:<64 lowercase hex>`
//! (the only kind a bundle can carry), `schemaVersion` must be 2, and a
//! `mediaType` inside the document must agree with the one it was served or
//! referenced as.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tender_format::Digest;

use crate::error::OciError;

// --- OCI image spec -----------------------------------------------------------
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// Deprecated by image-spec 1.1, still found in the wild.
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
/// The empty JSON descriptor (`{}`), used as config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The short-lived artifact manifest of image-spec 1.1-rc (blobs, subject).
pub const OCI_ARTIFACT_MANIFEST: &str = "application/vnd.oci.artifact.manifest.v1+json";
pub const OCI_LAYOUT_VERSION: &str = "1.0.0";

// --- Docker image manifest v2 schema 2 ---------------------------------------
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_FOREIGN_LAYER_TAR_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
pub const DOCKER_PLUGIN_CONFIG: &str = "application/vnd.docker.plugin.v1+json";
/// Schema 1: not supported (no content-addressable config).
pub const DOCKER_MANIFEST_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_V1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

// --- Signatures, attestations, GitOps artifacts ------------------------------
/// A cosign signature layer (`sha256-<hex>.sig` tags).
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// A DSSE envelope (cosign attestations, `.att` tags).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// Flux OCI artifacts (`flux push artifact`).
pub const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
pub const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// Helm charts in OCI registries.
pub const HELM_CONFIG: &str = "application/vnd.cncf.helm.config.v1+json";
pub const HELM_CHART: &str = "application/vnd.cncf.helm.chart.content.v1.tar+gzip";

// --- Annotations -------------------------------------------------------------
/// The tag of an `index.json` entry in an OCI image layout.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// What a client accepts when it fetches a manifest (the `Accept` header).
pub const MANIFEST_ACCEPT: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_ARTIFACT_MANIFEST,
];

/// Largest manifest or index accepted (distribution's own limit).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;

/// Whether `media_type` is an index (OCI index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// Whether `media_type` is a single manifest (image or artifact).
pub fn is_image_manifest(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | DOCKER_MANIFEST | OCI_ARTIFACT_MANIFEST
    )
}

/// Whether a descriptor of this media type points at a manifest or index
/// (something with children, fetched from `/manifests/`), not a plain blob.
pub fn is_manifest(media_type: &str) -> bool {
    is_index(media_type) || is_image_manifest(media_type)
}

/// A platform: `os/arch[/variant]` plus the rarely used fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.map(str::to_string),
            os_version: None,
            os_features: Vec::new(),
            features: Vec::new(),
        }
    }

    /// Whether a manifest for `candidate` satisfies this platform used as a
    /// filter: same OS and architecture (after containerd's normalisation:
    /// `x86_64` is `amd64`, `aarch64` is `arm64`, arm64 without variant is
    /// `v8`, arm without variant is `v7`), and the same variant if the
    /// filter names one.
    pub fn matches(&self, candidate: &Platform) -> bool {
        let (os, arch, variant) = normalize(&self.os, &self.architecture, self.variant.as_deref());
        let (c_os, c_arch, c_variant) = normalize(
            &candidate.os,
            &candidate.architecture,
            candidate.variant.as_deref(),
        );
        os == c_os && arch == c_arch && (self.variant.is_none() || variant == c_variant)
    }
}

fn normalize(os: &str, arch: &str, variant: Option<&str>) -> (String, String, Option<String>) {
    let os = os.to_ascii_lowercase();
    let arch = match arch.to_ascii_lowercase().as_str() {
        "x86_64" | "x86-64" => "amd64".to_string(),
        "aarch64" => "arm64".to_string(),
        "armhf" => "arm".to_string(),
        "i386" => "386".to_string(),
        other => other.to_string(),
    };
    let variant = match (arch.as_str(), variant) {
        ("arm64", None | Some("8") | Some("v8")) => Some("v8".to_string()),
        ("arm", None | Some("7")) => Some("v7".to_string()),
        ("arm", Some("5")) => Some("v5".to_string()),
        ("arm", Some("6")) => Some("v6".to_string()),
        ("amd64", Some("v1")) => None,
        (_, variant) => variant.map(str::to_string),
    };
    (os, arch, variant)
}

impl FromStr for Platform {
    type Err = OciError;

    /// Parses `os/arch` or `os/arch/variant` (as `--platform` takes it).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |reason: &str| OciError::InvalidPlatform {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let part_ok = |p: &&str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid("expected os/arch or os/arch/variant"));
        }
        if !parts.iter().all(part_ok) {
            return Err(invalid(
                "each part must be letters, digits, '_', '-' or '.'",
            ));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

/// An OCI content descriptor. Unknown fields are kept in `extra`, so a
/// document rewritten through this type loses nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl Descriptor {
    pub fn new(media_type: &str, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            platform: None,
            artifact_type: None,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The descriptor of an in-memory document.
    pub fn of_bytes(media_type: &str, bytes: &[u8]) -> Descriptor {
        Descriptor::new(media_type, Digest::of(bytes), bytes.len() as u64)
    }

    /// `org.opencontainers.image.ref.name`, if set.
    pub fn ref_name(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_REF_NAME)
            .map(String::as_str)
    }

    /// Whether this descriptor points at a manifest or index.
    pub fn is_manifest(&self) -> bool {
        is_manifest(&self.media_type)
    }
}

/// An image manifest (OCI or Docker v2 schema 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image index (OCI index or Docker manifest list); also the shape of an
/// OCI layout's `index.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl ImageIndex {
    /// An empty OCI index.
    pub fn empty() -> ImageIndex {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_string()),
            artifact_type: None,
            manifests: Vec::new(),
            subject: None,
            annotations: BTreeMap::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// The image-spec 1.1-rc artifact manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactManifest {
    pub media_type: String,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default)]
    pub blobs: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
}

/// A parsed manifest of any supported kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(Box<ImageManifest>),
    Index(Box<ImageIndex>),
    Artifact(Box<ArtifactManifest>),
}

impl Manifest {
    /// Parses `bytes` served or referenced as `media_type`. An empty or
    /// generic media type (`application/json`, `application/octet-stream`)
    /// is resolved from the document itself ([`sniff_media_type`]).
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest, OciError> {
        let what = || format!("manifest {}", Digest::of(bytes));
        let media_type =
            effective_media_type(bytes, media_type).ok_or_else(|| OciError::InvalidManifest {
                what: what(),
                reason: "cannot tell its media type: no mediaType field, and neither \
                         \"manifests\" nor \"config\""
                    .into(),
            })?;
        let invalid = |reason: String| OciError::InvalidManifest {
            what: what(),
            reason,
        };
        if matches!(
            media_type.as_str(),
            DOCKER_MANIFEST_V1 | DOCKER_MANIFEST_V1_SIGNED
        ) {
            return Err(OciError::UnsupportedMediaType {
                what: what(),
                media_type,
                reason: "Docker schema 1 manifests are deprecated; push the image again \
                         with a current client"
                    .into(),
            });
        }
        // Before the shape: "an index served as a manifest" says more than
        // "missing field config".
        check_declared(declared_media_type(bytes).as_deref(), &media_type, &invalid)?;
        let manifest = match media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {
                let m: ImageManifest = serde_json::from_slice(bytes)
                    .map_err(|e| invalid(format!("not a valid image manifest: {e}")))?;
                check_schema(m.schema_version, &invalid)?;
                Manifest::Image(Box::new(m))
            }
            OCI_INDEX | DOCKER_MANIFEST_LIST => {
                let m: ImageIndex = serde_json::from_slice(bytes)
                    .map_err(|e| invalid(format!("not a valid image index: {e}")))?;
                check_schema(m.schema_version, &invalid)?;
                Manifest::Index(Box::new(m))
            }
            OCI_ARTIFACT_MANIFEST => {
                let m: ArtifactManifest = serde_json::from_slice(bytes)
                    .map_err(|e| invalid(format!("not a valid artifact manifest: {e}")))?;
                Manifest::Artifact(Box::new(m))
            }
            other => {
                return Err(OciError::UnsupportedMediaType {
                    what: what(),
                    media_type: other.to_string(),
                    reason: format!("expected one of {}", MANIFEST_ACCEPT.join(", ")),
                });
            }
        };
        Ok(manifest)
    }

    /// Everything this manifest points at, in document order: an image
    /// manifest's config then layers, an index's manifests, an artifact's
    /// blobs; then the `subject`, if any.
    pub fn children(&self) -> Vec<Descriptor> {
        let (mut out, subject) = match self {
            Manifest::Image(m) => {
                let mut out = vec![m.config.clone()];
                out.extend(m.layers.iter().cloned());
                (out, &m.subject)
            }
            Manifest::Index(m) => (m.manifests.clone(), &m.subject),
            Manifest::Artifact(m) => (m.blobs.clone(), &m.subject),
        };
        out.extend(subject.iter().cloned());
        out
    }

    /// The `subject` (what a referrer such as a signature refers to).
    pub fn subject(&self) -> Option<&Descriptor> {
        match self {
            Manifest::Image(m) => m.subject.as_ref(),
            Manifest::Index(m) => m.subject.as_ref(),
            Manifest::Artifact(m) => m.subject.as_ref(),
        }
    }
}

fn check_schema(version: u32, invalid: &impl Fn(String) -> OciError) -> Result<(), OciError> {
    if version == 2 {
        Ok(())
    } else {
        Err(invalid(format!("schemaVersion is {version}, expected 2")))
    }
}

fn check_declared(
    declared: Option<&str>,
    media_type: &str,
    invalid: &impl Fn(String) -> OciError,
) -> Result<(), OciError> {
    match declared {
        Some(declared) if declared != media_type => Err(invalid(format!(
            "its mediaType field says {declared:?}, but it was served or referenced as \
             {media_type:?}"
        ))),
        _ => Ok(()),
    }
}

/// Every descriptor a manifest points at (see [`Manifest::children`]).
pub fn children(manifest_bytes: &[u8], media_type: &str) -> Result<Vec<Descriptor>, OciError> {
    Ok(Manifest::parse(manifest_bytes, media_type)?.children())
}

/// The media type a manifest document declares or implies: its `mediaType`
/// field, else `manifests` means an OCI index and `config` an OCI manifest.
pub fn sniff_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        config: Option<serde_json::Value>,
    }
    let probe: Probe = serde_json::from_slice(bytes).ok()?;
    match (probe.media_type, probe.manifests, probe.config) {
        (Some(media_type), _, _) => Some(media_type),
        (None, Some(_), None) => Some(OCI_INDEX.to_string()),
        (None, None, Some(_)) => Some(OCI_MANIFEST.to_string()),
        _ => None,
    }
}

/// The `mediaType` field of a manifest document, if it has one.
pub(crate) fn declared_media_type(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

/// `media_type` without parameters, or the sniffed one where it says nothing
/// (empty, `application/json`, `application/octet-stream`, `text/plain`).
pub(crate) fn effective_media_type(bytes: &[u8], media_type: &str) -> Option<String> {
    let bare = media_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match bare.as_str() {
        "" | "application/json" | "application/octet-stream" | "text/plain" => {
            sniff_media_type(bytes)
        }
        _ => Some(bare),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn image_manifest_children_are_config_layers_subject() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}",
            "config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":10}},
            "layers":[{{"mediaType":"{OCI_LAYER_TAR_GZIP}","digest":"{}","size":20,"futureField":1}},
                      {{"mediaType":"{COSIGN_SIMPLESIGNING}","digest":"{}","size":30,
                        "annotations":{{"dev.cosignproject.cosign/signature":"x"}}}}],
            "subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":40}},
            "unknownTopLevel":{{"a":1}}}}"#,
            d(1),
            d(2),
            d(3),
            d(4)
        );
        let kids = children(json.as_bytes(), OCI_MANIFEST).unwrap();
        let digests: Vec<_> = kids.iter().map(|k| k.digest).collect();
        assert_eq!(digests, [d(1), d(2), d(3), d(4)]);
        assert_eq!(
            kids[1].extra.get("futureField"),
            Some(&serde_json::json!(1))
        );
        assert!(kids[3].is_manifest());
        assert!(!kids[0].is_manifest());
        // Served with parameters or as plain JSON: still understood.
        assert_eq!(
            children(json.as_bytes(), &format!("{OCI_MANIFEST}; charset=utf-8"))
                .unwrap()
                .len(),
            4
        );
        assert_eq!(
            children(json.as_bytes(), "application/json").unwrap().len(),
            4
        );
    }

    #[test]
    fn index_children_are_manifests() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST_LIST}","manifests":[
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":1,"platform":{{"architecture":"amd64","os":"linux"}}}},
              {{"mediaType":"{DOCKER_MANIFEST}","digest":"{}","size":2,"platform":{{"architecture":"arm64","os":"linux","variant":"v8"}}}}]}}"#,
            d(1),
            d(2)
        );
        let kids = children(json.as_bytes(), DOCKER_MANIFEST_LIST).unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(
            kids[1].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
        // No mediaType field: sniffed from "manifests".
        let bare = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":1}}]}}"#,
            d(1)
        );
        assert_eq!(sniff_media_type(bare.as_bytes()).unwrap(), OCI_INDEX);
        assert_eq!(children(bare.as_bytes(), "").unwrap().len(), 1);
    }

    #[test]
    fn strict_with_digests_schema_and_declared_type() {
        let bad_digest = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha256:ABC","size":1}},"layers":[]}}"#
        );
        let err = children(bad_digest.as_bytes(), OCI_MANIFEST).unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
        let sha512 = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{OCI_CONFIG}","digest":"sha512:{}","size":1}}}}"#,
            "ab".repeat(64)
        );
        assert!(children(sha512.as_bytes(), OCI_MANIFEST).is_err());
        let v1 = format!(
            r#"{{"schemaVersion":1,"config":{{"mediaType":"{OCI_CONFIG}","digest":"{}","size":1}}}}"#,
            d(1)
        );
        let err = children(v1.as_bytes(), OCI_MANIFEST).unwrap_err();
        assert!(err.to_string().contains("schemaVersion is 1"), "{err}");
        let index_as_manifest =
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
        let err = children(index_as_manifest.as_bytes(), OCI_MANIFEST).unwrap_err();
        assert!(err.to_string().contains("mediaType field says"), "{err}");
        let err = children(b"{}", DOCKER_MANIFEST_V1_SIGNED).unwrap_err();
        assert!(
            matches!(err, OciError::UnsupportedMediaType { .. }),
            "{err}"
        );
        let err = children(b"{}", "application/vnd.example+json").unwrap_err();
        assert!(
            matches!(err, OciError::UnsupportedMediaType { .. }),
            "{err}"
        );
        assert!(children(b"not json", OCI_MANIFEST).is_err());
    }

    #[test]
    fn artifact_manifest_children() {
        let json = format!(
            r#"{{"mediaType":"{OCI_ARTIFACT_MANIFEST}","artifactType":"application/x","blobs":[{{"mediaType":"application/x","digest":"{}","size":1}}],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":2}}}}"#,
            d(1),
            d(2)
        );
        let m = Manifest::parse(json.as_bytes(), OCI_ARTIFACT_MANIFEST).unwrap();
        assert_eq!(m.children().len(), 2);
        assert_eq!(m.subject().unwrap().digest, d(2));
    }

    #[test]
    fn platforms_parse_and_match_like_containerd() {
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64: Platform = "linux/arm64".parse().unwrap();
        let arm64_v8: Platform = "linux/arm64/v8".parse().unwrap();
        let arm_v6: Platform = "linux/arm/v6".parse().unwrap();
        assert_eq!(arm_v6.to_string(), "linux/arm/v6");
        assert!(amd64.matches(&Platform::new("linux", "amd64", None)));
        assert!(amd64.matches(&Platform::new("linux", "x86_64", None)));
        assert!(!amd64.matches(&Platform::new("linux", "arm64", None)));
        assert!(!amd64.matches(&Platform::new("windows", "amd64", None)));
        assert!(arm64.matches(&Platform::new("linux", "arm64", Some("v8"))));
        assert!(arm64_v8.matches(&Platform::new("linux", "arm64", None)));
        assert!(arm64_v8.matches(&Platform::new("linux", "aarch64", None)));
        assert!(!arm_v6.matches(&Platform::new("linux", "arm", Some("v7"))));
        assert!(!arm_v6.matches(&Platform::new("linux", "arm", None)));
        for bad in ["linux", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn descriptor_round_trips_unknown_fields() {
        let json = format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":3,"data":"e30=","annotations":{{"{ANNOTATION_REF_NAME}":"r/x:1"}}}}"#,
            d(1)
        );
        let desc: Descriptor = serde_json::from_str(&json).unwrap();
        assert_eq!(desc.ref_name(), Some("r/x:1"));
        let back: serde_json::Value = serde_json::to_value(&desc).unwrap();
        assert_eq!(back["data"], "e30=");
        assert_eq!(back["size"], 3);
        assert!(back.get("platform").is_none());
    }
}
