//! The manifests as an OCI artifact, for agents that pull from a registry.
//!
//! # Flux mode (`flux push artifact`'s format)
//!
//! * manifest `application/vnd.oci.image.manifest.v1+json`, annotated with
//!   `org.opencontainers.image.source` (`tender://<site>/<cluster>`),
//!   `org.opencontainers.image.revision` and
//!   `org.opencontainers.image.created` (source-controller shows all three
//!   in the `OCIRepository`'s `status.artifact.metadata`), plus tender's
//!   own `dev.tender.*` provenance annotations;
//! * config `application/vnd.cncf.flux.config.v1+json`, content `{}`
//!   (`flux push` writes go-containerregistry's default image config
//!   there; source-controller never reads it);
//! * one layer `application/vnd.cncf.flux.content.v1.tar+gzip`: the files.
//!
//! # Argo mode
//!
//! Argo CD's `oci://` source takes a manifest with exactly one layer whose
//! media type is on the repo-server's `--oci-layer-media-types` list
//! (default: `application/vnd.oci.image.layer.v1.tar`, `...tar+gzip`, and
//! the Helm chart type) and never reads the config. So: the same layer as
//! `application/vnd.oci.image.layer.v1.tar+gzip`, and the OCI empty config
//! (`application/vnd.oci.empty.v1+json`, `{}`) with `artifactType`
//! [`ARGO_ARTIFACT_TYPE`], as ORAS pushes artifacts (image-spec 1.1 asks
//! for an `artifactType` when the config is empty).
//!
//! # Revision
//!
//! `org.opencontainers.image.revision` is `seq-<N>@sha256:<hex>`: the
//! artifact's immutable tag, then the digest of the signed manifest set.
//! That is the `<ref>@<algo>:<hex>` shape Flux uses for its own revisions
//! (`main@sha1:...`), and it names the signed content, not the artifact
//! (which changes with image rewriting). Tags are the channel (moving, what
//! an `OCIRepository` follows) and `seq-<N>` (one per release).
//!
//! # Reproducibility
//!
//! The same files and [`ArtifactMeta`] give the same bytes, so the same
//! digest: tar entries sorted by path, mtime 0, uid/gid 0, no user or group
//! names, mode 0644 (directories 0755); gzip with header mtime 0, no file
//! name, maximum compression. Created time is the bundle's, not the clock.
//! (A different deflate implementation could compress differently; the
//! digest is stable for one build of tender.)

use std::collections::BTreeMap;
use tender_format::FromIo;

use flate2::{Compression, GzBuilder};
use tender_format::Digest;
use tender_oci::media::{
    FLUX_CONFIG, FLUX_CONTENT, ImageManifest, OCI_EMPTY, OCI_LAYER_TAR_GZIP, OCI_MANIFEST,
};
use tender_oci::{Descriptor, LayoutStore, Reference, RegistryClient};

use crate::DeliveryContext;
use crate::config::OciMode;
use crate::error::DeliverError;
use crate::files::check_files;

pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// The `artifactType` of Argo-mode artifacts.
pub const ARGO_ARTIFACT_TYPE: &str = "application/vnd.tender.manifests.v1";
/// What the artifact says about its origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactMeta {
    pub source: String,
    pub revision: String,
    /// RFC 3339.
    pub created: String,
    /// Further manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

impl ArtifactMeta {
    /// The metadata tender gives a delivery (see the module docs).
    pub fn for_delivery(ctx: &DeliveryContext) -> ArtifactMeta {
        let annotations = [
            ("dev.tender.site", ctx.site.clone()),
            ("dev.tender.cluster", ctx.cluster.clone()),
            ("dev.tender.channel", ctx.channel.clone()),
            ("dev.tender.sequence", ctx.sequence.to_string()),
            ("dev.tender.bundle", ctx.bundle_id.clone()),
            (
                "dev.tender.manifest-set",
                ctx.manifest_set_digest.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        ArtifactMeta {
            source: format!("tender://{}/{}", ctx.site, ctx.cluster),
            revision: format!("seq-{}@{}", ctx.sequence, ctx.manifest_set_digest),
            created: ctx.created.clone(),
            annotations,
        }
    }
}

/// The tags a delivery is published under: the channel, then `seq-<N>`.
pub fn artifact_tags(ctx: &DeliveryContext) -> Vec<String> {
    vec![ctx.channel.clone(), format!("seq-{}", ctx.sequence)]
}

/// A built artifact, every blob in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub mode: OciMode,
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
}

impl Artifact {
    /// The descriptor of the manifest (what a tag points at).
    pub fn descriptor(&self) -> Descriptor {
        let mut d = Descriptor::of_bytes(OCI_MANIFEST, &self.manifest);
        if self.mode == OciMode::Argo {
            d.artifact_type = Some(ARGO_ARTIFACT_TYPE.to_string());
        }
        d
    }

    pub fn config_descriptor(&self) -> Descriptor {
        Descriptor::of_bytes(config_media_type(self.mode), &self.config)
    }

    pub fn layer_descriptor(&self) -> Descriptor {
        Descriptor::of_bytes(layer_media_type(self.mode), &self.layer)
    }
}

pub fn config_media_type(mode: OciMode) -> &'static str {
    match mode {
        OciMode::Flux => FLUX_CONFIG,
        OciMode::Argo => OCI_EMPTY,
    }
}

pub fn layer_media_type(mode: OciMode) -> &'static str {
    match mode {
        OciMode::Flux => FLUX_CONTENT,
        OciMode::Argo => OCI_LAYER_TAR_GZIP,
    }
}

/// Builds the artifact of `files` (see the module docs).
pub fn build_artifact(
    files: &[(String, Vec<u8>)],
    meta: &ArtifactMeta,
    mode: OciMode,
) -> Result<Artifact, DeliverError> {
    let layer = build_layer(files)?;
    let config = b"{}".to_vec();
    let mut annotations = meta.annotations.clone();
    annotations.insert(ANNOTATION_SOURCE.to_string(), meta.source.clone());
    annotations.insert(ANNOTATION_REVISION.to_string(), meta.revision.clone());
    annotations.insert(ANNOTATION_CREATED.to_string(), meta.created.clone());
    let manifest = ImageManifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.to_string()),
        artifact_type: (mode == OciMode::Argo).then(|| ARGO_ARTIFACT_TYPE.to_string()),
        config: Descriptor::of_bytes(config_media_type(mode), &config),
        layers: vec![Descriptor::of_bytes(layer_media_type(mode), &layer)],
        subject: None,
        annotations,
    };
    let manifest = serde_json::to_vec(&manifest).expect("manifests serialize");
    Ok(Artifact {
        mode,
        manifest_digest: Digest::of(&manifest),
        config,
        layer,
        manifest,
    })
}

/// The reproducible tar+gzip of `files`, with a directory entry before the
/// first file of each directory.
pub fn build_layer(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, DeliverError> {
    check_files(files)?;
    let mut entries: BTreeMap<String, Option<&[u8]>> = BTreeMap::new();
    for (path, data) in files {
        let mut dir = String::new();
        let components: Vec<&str> = path.split('/').collect();
        for component in &components[..components.len() - 1] {
            dir.push_str(component);
            dir.push('/');
            entries.insert(dir.clone(), None);
        }
        entries.insert(path.clone(), Some(data));
    }
    let gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    let mut tar = tar::Builder::new(gz);
    for (path, data) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let io = |e| DeliverError::io_at("building the artifact layer at", path.clone(), e);
        match data {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, &path, std::io::empty())
                    .map_err(io)?;
            }
            Some(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(0o644);
                header.set_size(data.len() as u64);
                tar.append_data(&mut header, &path, data).map_err(io)?;
            }
        }
    }
    let io = |e| DeliverError::io_at("finishing the artifact layer", "(memory)", e);
    tar.into_inner().map_err(io)?.finish().map_err(io)
}

/// Stores the artifact in an OCI layout (the embedded store `tender serve`
/// serves) and names it by each of `ref_names` — full references such as
/// `tender.local/gitops/plant-001-line-a:stable`, as the store names every
/// image. Blobs first, the manifest, then the names.
pub fn publish_to_store(
    store: &LayoutStore,
    artifact: &Artifact,
    ref_names: &[String],
) -> Result<Descriptor, DeliverError> {
    for name in ref_names {
        Reference::parse(name)?;
    }
    store.put_blob_bytes(&artifact.config)?;
    store.put_blob_bytes(&artifact.layer)?;
    store.put_blob_bytes(&artifact.manifest)?;
    let descriptor = artifact.descriptor();
    for name in ref_names {
        store.set_tag(name, descriptor.clone())?;
    }
    Ok(descriptor)
}

/// Pushes the artifact into `repository` (its registry and repository;
/// tag and digest ignored): both blobs, the manifest by digest, then each
/// tag. Returns the manifest digest.
pub fn publish_to_registry(
    client: &RegistryClient,
    repository: &Reference,
    artifact: &Artifact,
    tags: &[String],
) -> Result<Digest, DeliverError> {
    for tag in tags {
        repository.with_tag(tag)?;
    }
    // The client streams blobs from a layout store: a small private one.
    let dir = tempfile::Builder::new()
        .prefix("tender-artifact-")
        .tempdir()
        .map_err(|e| {
            DeliverError::io_at("creating a temporary directory in", std::env::temp_dir(), e)
        })?;
    let store = LayoutStore::open_or_create(dir.path())?;
    for (bytes, descriptor) in [
        (&artifact.config, artifact.config_descriptor()),
        (&artifact.layer, artifact.layer_descriptor()),
    ] {
        store.put_blob_bytes(bytes)?;
        client.push_blob_from(&store, repository, &descriptor, None)?;
    }
    let digest = client.push_manifest(
        repository,
        &artifact.manifest_digest.to_string(),
        &artifact.manifest,
        OCI_MANIFEST,
    )?;
    for tag in tags {
        client.push_manifest(repository, tag, &artifact.manifest, OCI_MANIFEST)?;
    }
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::io::Read;

    use crate::files::Files;
    use crate::files::single_file;
    use crate::test_context as context;

    /// Largest layer [`read_layer`] unpacks (manifests are text: small).
    const MAX_UNPACKED: u64 = 256 * 1024 * 1024;

    /// Unpacks a layer built by [`build_layer`] (or `flux push`): its regular
    /// files, sorted by path. Refuses links, devices, unsafe paths and more
    /// than [`MAX_UNPACKED`] bytes.
    fn read_layer(layer: &[u8]) -> Result<Files, DeliverError> {
        let bad = |why: String| DeliverError::Manifests(format!("artifact layer: {why}"));
        let gz = flate2::read::GzDecoder::new(layer).take(MAX_UNPACKED + 1);
        let mut archive = tar::Archive::new(gz);
        let mut out = BTreeMap::new();
        let entries = archive.entries().map_err(|e| bad(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| bad("a path is not UTF-8".into()))?;
            let path = path.trim_start_matches("./").to_string();
            match entry.header().entry_type() {
                tar::EntryType::Directory => continue,
                tar::EntryType::Regular | tar::EntryType::Continuous => {}
                other => return Err(bad(format!("{path:?} is a {other:?} entry"))),
            }
            let mut data = Vec::new();
            entry
                .read_to_end(&mut data)
                .map_err(|e| bad(e.to_string()))?;
            out.insert(path, data);
        }
        let files: Files = out.into_iter().collect();
        check_files(&files)?;
        Ok(files)
    }

    /// Every path of `files` and of the directories above them, sorted: what
    /// the layer lists.
    fn layer_paths(files: &[(String, Vec<u8>)]) -> Vec<String> {
        let mut paths = BTreeSet::new();
        for (path, _) in files {
            let mut dir = String::new();
            let components: Vec<&str> = path.split('/').collect();
            for component in &components[..components.len() - 1] {
                dir.push_str(component);
                dir.push('/');
                paths.insert(dir.clone());
            }
            paths.insert(path.clone());
        }
        paths.into_iter().collect()
    }

    const YAML: &str = "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn flux_artifact_has_fluxs_media_types_and_annotations() {
        let ctx = context();
        let a = build_artifact(
            &single_file(YAML),
            &ArtifactMeta::for_delivery(&ctx),
            OciMode::Flux,
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], OCI_MANIFEST);
        assert!(m.get("artifactType").is_none());
        assert_eq!(m["config"]["mediaType"], FLUX_CONFIG);
        assert_eq!(m["config"]["size"], 2);
        assert_eq!(m["layers"].as_array().unwrap().len(), 1);
        assert_eq!(m["layers"][0]["mediaType"], FLUX_CONTENT);
        assert_eq!(m["layers"][0]["digest"], Digest::of(&a.layer).to_string());
        let ann = &m["annotations"];
        assert_eq!(
            ann[ANNOTATION_SOURCE],
            "tender://plant-001/plant-001-line-a"
        );
        assert_eq!(
            ann[ANNOTATION_REVISION],
            format!("seq-42@{}", Digest::of(b"set"))
        );
        assert_eq!(ann[ANNOTATION_CREATED], "2026-11-26T03:42:00Z");
        assert_eq!(ann["dev.tender.bundle"], "b-0042");
        assert_eq!(a.config, b"{}");
        assert_eq!(a.manifest_digest, Digest::of(&a.manifest));
        assert_eq!(a.descriptor().digest, a.manifest_digest);
        // tender-oci reads it back as an image manifest.
        let parsed = tender_oci::Manifest::parse(&a.manifest, OCI_MANIFEST).unwrap();
        assert_eq!(parsed.children().len(), 2);
        assert_eq!(artifact_tags(&ctx), ["stable", "seq-42"]);
    }

    #[test]
    fn argo_artifact_uses_a_default_allowed_layer_type_and_the_empty_config() {
        let ctx = context();
        let a = build_artifact(
            &single_file(YAML),
            &ArtifactMeta::for_delivery(&ctx),
            OciMode::Argo,
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&a.manifest).unwrap();
        assert_eq!(m["artifactType"], ARGO_ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], OCI_EMPTY);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["layers"][0]["mediaType"], OCI_LAYER_TAR_GZIP);
        assert_eq!(
            a.descriptor().artifact_type.as_deref(),
            Some(ARGO_ARTIFACT_TYPE)
        );
    }

    #[test]
    fn layers_are_reproducible_and_normalised() {
        let files: Files = vec![
            ("b.yaml".into(), b"b: 1\n".to_vec()),
            ("apps/x/a.yaml".into(), b"a: 1\n".to_vec()),
            ("a.yaml".into(), b"a: 2\n".to_vec()),
        ];
        let one = build_layer(&files).unwrap();
        let mut reversed = files.clone();
        reversed.reverse();
        assert_eq!(
            one,
            build_layer(&reversed).unwrap(),
            "input order does not matter"
        );
        // gzip header: magic, deflate, no flags, mtime 0.
        assert_eq!(&one[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&one[..]));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some(""));
            let mode = if h.entry_type().is_dir() {
                0o755
            } else {
                0o644
            };
            assert_eq!(h.mode().unwrap(), mode);
            seen.push(entry.path().unwrap().to_string_lossy().into_owned());
        }
        assert_eq!(seen, layer_paths(&files));
        assert_eq!(
            seen,
            ["a.yaml", "apps/", "apps/x/", "apps/x/a.yaml", "b.yaml"]
        );
        let back = read_layer(&one).unwrap();
        assert_eq!(back.len(), 3);
        assert_eq!(back[1], ("apps/x/a.yaml".to_string(), b"a: 1\n".to_vec()));
        assert!(build_layer(&[("../x".into(), Vec::new())]).is_err());
    }

    #[test]
    fn same_input_same_digest_and_any_change_shows() {
        let ctx = context();
        let meta = ArtifactMeta::for_delivery(&ctx);
        let a = build_artifact(&single_file(YAML), &meta, OciMode::Flux).unwrap();
        let b = build_artifact(&single_file(YAML), &meta, OciMode::Flux).unwrap();
        assert_eq!(a, b);
        let changed = build_artifact(
            &single_file(&YAML.replace("a\n", "b\n")),
            &meta,
            OciMode::Flux,
        )
        .unwrap();
        assert_ne!(changed.manifest_digest, a.manifest_digest);
        let later = ArtifactMeta {
            created: "2026-11-27T00:00:00Z".into(),
            ..meta
        };
        let c = build_artifact(&single_file(YAML), &later, OciMode::Flux).unwrap();
        assert_eq!(c.layer, a.layer);
        assert_ne!(c.manifest_digest, a.manifest_digest);
    }

    #[test]
    fn publishes_into_a_layout_store_blobs_before_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let ctx = context();
        let a = build_artifact(
            &single_file(YAML),
            &ArtifactMeta::for_delivery(&ctx),
            OciMode::Flux,
        )
        .unwrap();
        let names =
            ["stable", "seq-42"].map(|t| format!("tender.local/gitops/plant-001-line-a:{t}"));
        let d = publish_to_store(&store, &a, &names).unwrap();
        assert_eq!(d.digest, a.manifest_digest);
        for name in &names {
            assert_eq!(store.resolve(name).unwrap().digest, a.manifest_digest);
        }
        let walked = store
            .walk_image(&store.resolve(&names[0]).unwrap())
            .unwrap();
        assert_eq!(walked.len(), 3);
        assert!(publish_to_store(&store, &a, &["not a ref".to_string()]).is_err());
    }
}
