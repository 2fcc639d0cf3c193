//! The Flux and Argo artifacts pushed to a real registry, read back with
//! skopeo, unpacked with tar + flate2.

use std::io::Read;
use std::path::Path;

use crate::OciMode;
use crate::artifact::{
    ArtifactMeta, artifact_tags, build_artifact, publish_to_registry, publish_to_store,
};
use crate::files::single_file;
use tender_format::Digest;
use tender_oci::media::{FLUX_CONFIG, FLUX_CONTENT, OCI_EMPTY, OCI_LAYER_TAR_GZIP, OCI_MANIFEST};
use tender_oci::{ClientOptions, LayoutStore, Reference, RegistryClient, RegistrySettings};
use tender_test_support::{Registry, skopeo, skopeo_copy};

use super::{SET_V1, context};

fn client(registry: &Registry) -> RegistryClient {
    RegistryClient::new(
        ClientOptions::default().registry(&registry.host(), RegistrySettings::plain_http()),
    )
    .unwrap()
}

fn inspect_raw(image: &str) -> Vec<u8> {
    let out = skopeo(&["inspect", "--raw", "--tls-verify=false", image]);
    assert!(
        out.status.success(),
        "skopeo inspect {image}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Every regular file of a tar+gzip layer, read independently of the crate.
fn unpack(layer: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer));
    let mut out = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        out.push((entry.path().unwrap().to_string_lossy().into_owned(), data));
    }
    out
}

/// The manifest and layer of `tag` in an OCI layout skopeo wrote.
fn read_copied(dir: &Path, tag: &str) -> (serde_json::Value, Vec<u8>, Digest) {
    let store = LayoutStore::open(dir).unwrap();
    let descriptor = store.resolve(tag).unwrap();
    let (bytes, _) = store.read_manifest(&descriptor).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let layer_digest: Digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let layer = store.read_blob(&layer_digest, 1 << 20).unwrap();
    (manifest, layer, descriptor.digest)
}

#[test]
fn flux_artifact_round_trips_through_a_real_registry_and_skopeo() {
    let registry = Registry::start();
    let ctx = context(42);
    let meta = ArtifactMeta::for_delivery(&ctx);
    let artifact = build_artifact(&single_file(SET_V1), &meta, OciMode::Flux).unwrap();
    // Reproducible: built again, byte for byte the same.
    let again = build_artifact(&single_file(SET_V1), &meta, OciMode::Flux).unwrap();
    assert_eq!(artifact, again);

    let repo = Reference::parse(&format!(
        "{}/gitops/plant-001-line-a:stable",
        registry.host()
    ))
    .unwrap();
    let tags = artifact_tags(&ctx);
    let digest = publish_to_registry(&client(&registry), &repo, &artifact, &tags).unwrap();
    assert_eq!(digest, artifact.manifest_digest);

    let base = format!("docker://{}/gitops/plant-001-line-a", registry.host());
    for tag in &tags {
        let raw = inspect_raw(&format!("{base}:{tag}"));
        assert_eq!(raw, artifact.manifest, "tag {tag} serves our manifest");
    }
    let raw = inspect_raw(&format!("{base}@{digest}"));
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], FLUX_CONFIG);
    assert_eq!(manifest["layers"][0]["mediaType"], FLUX_CONTENT);
    let annotations = &manifest["annotations"];
    assert_eq!(
        annotations["org.opencontainers.image.source"],
        "tender://plant-001/plant-001-line-a"
    );
    assert_eq!(
        annotations["org.opencontainers.image.revision"],
        format!("seq-42@{}", ctx.manifest_set_digest)
    );
    assert_eq!(
        annotations["org.opencontainers.image.created"],
        "2026-11-26T03:42:00Z"
    );

    // skopeo copies it into an OCI layout unchanged; the layer unpacks to
    // the manifest set.
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    skopeo_copy(
        &format!("{base}:stable"),
        &format!("oci:{}:stable", layout.display()),
    );
    let (copied, layer, copied_digest) = read_copied(&layout, "stable");
    assert_eq!(
        copied_digest, artifact.manifest_digest,
        "skopeo kept the manifest as is"
    );
    assert_eq!(copied["config"]["mediaType"], FLUX_CONFIG);
    assert_eq!(layer, artifact.layer);
    assert_eq!(
        unpack(&layer),
        [("manifests.yaml".to_string(), SET_V1.as_bytes().to_vec())]
    );

    // The same release pushed to another registry has the same digest.
    let other = Registry::start();
    let other_repo =
        Reference::parse(&format!("{}/gitops/plant-001-line-a:stable", other.host())).unwrap();
    let rebuilt = build_artifact(&single_file(SET_V1), &meta, OciMode::Flux).unwrap();
    assert_eq!(
        publish_to_registry(&client(&other), &other_repo, &rebuilt, &tags).unwrap(),
        digest
    );
}

#[test]
fn argo_artifact_round_trips_with_argos_default_media_types() {
    let registry = Registry::start();
    let ctx = context(7);
    let artifact = build_artifact(
        &single_file(SET_V1),
        &ArtifactMeta::for_delivery(&ctx),
        OciMode::Argo,
    )
    .unwrap();
    let repo = Reference::parse(&format!("{}/gitops/line-a-argo:stable", registry.host())).unwrap();
    publish_to_registry(&client(&registry), &repo, &artifact, &artifact_tags(&ctx)).unwrap();

    let base = format!("docker://{}/gitops/line-a-argo", registry.host());
    let manifest: serde_json::Value =
        serde_json::from_slice(&inspect_raw(&format!("{base}:seq-7"))).unwrap();
    assert_eq!(
        manifest["artifactType"],
        crate::artifact::ARGO_ARTIFACT_TYPE
    );
    assert_eq!(manifest["config"]["mediaType"], OCI_EMPTY);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "Argo CD takes exactly one layer");
    assert_eq!(layers[0]["mediaType"], OCI_LAYER_TAR_GZIP);

    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("layout");
    skopeo_copy(
        &format!("{base}:stable"),
        &format!("oci:{}:stable", layout.display()),
    );
    let (_, layer, digest) = read_copied(&layout, "stable");
    assert_eq!(digest, artifact.manifest_digest);
    assert_eq!(
        unpack(&layer),
        [("manifests.yaml".to_string(), SET_V1.as_bytes().to_vec())]
    );
}

#[test]
fn artifact_in_the_embedded_store_reads_back_with_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let ctx = context(3);
    let artifact = build_artifact(
        &single_file(SET_V1),
        &ArtifactMeta::for_delivery(&ctx),
        OciMode::Flux,
    )
    .unwrap();
    let names: Vec<String> = artifact_tags(&ctx)
        .iter()
        .map(|t| format!("tender.local/gitops/plant-001-line-a:{t}"))
        .collect();
    publish_to_store(&store, &artifact, &names).unwrap();
    for name in &names {
        let raw = inspect_raw(&format!("oci:{}:{name}", dir.path().display()));
        assert_eq!(raw, artifact.manifest);
    }
    // skopeo can take it out again (as an operator would to check it).
    let out = tempfile::tempdir().unwrap();
    let layout = out.path().join("copy");
    skopeo_copy(
        &format!("oci:{}:{}", dir.path().display(), names[1]),
        &format!("oci:{}:x", layout.display()),
    );
    let (_, layer, digest) = read_copied(&layout, "x");
    assert_eq!(digest, artifact.manifest_digest);
    assert_eq!(unpack(&layer)[0].1, SET_V1.as_bytes());
}
