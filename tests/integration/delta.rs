//! Delta bundles end to end (bundle spec §8): a hub exports release v1
//! whole, then v2 and v3 as deltas; a site with the embedded store imports
//! the chain and ends with every blob byte-identical to the source images.
//! Layers are compressed by the real encoders images use (GNU gzip, Go's
//! compress/gzip at level 1 and at its default), one image each. Sites
//! lacking the base, holding a damaged base blob, or holding another base
//! are refused before anything changes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex, Weak};

use serde_json::{Value, json};
use tender_test_support::{Compressor, sha256_digest};

use crate::util::{
    TestCommand, Workspace, assert_exit, inspect_json, shared_fixture, stderr, stdout,
    write_site_file,
};

const HOST: &str = "registry.delta.example";
const SITE: &str = "plant-001";
const CLUSTER: &str = "line-a";

/// Deterministic bytes that compress like a binary: words from a small
/// vocabulary mixed with noise. `salt` changes a slice of them.
fn binary_like(len: usize, seed: u64, salt: u32, changed: std::ops::Range<usize>) -> Vec<u8> {
    let words: [&[u8]; 8] = [
        b"\x48\x89\xe5",
        b"\xe8\x00\x00\x00\x00",
        b"SSL_CTX_new",
        b"\x0f\x1f\x44\x00",
        b"EVP_DigestInit",
        b"\xc3",
        b"libcrypto.so.3",
        b"\x41\x57\x41\x56",
    ];
    let mut state = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let pick = (state >> 33) as usize;
        if pick.is_multiple_of(5) {
            out.extend_from_slice(&state.to_le_bytes()[..3]);
        } else {
            out.extend_from_slice(words[pick % words.len()]);
        }
    }
    out.truncate(len);
    for (i, b) in out[changed].iter_mut().enumerate() {
        *b = b.wrapping_add((salt as usize + i % 7) as u8);
    }
    out
}

/// A layer tar with fixed metadata: what a reproducible image build makes.
fn layer_tar(files: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(1_700_000_000);
        header.set_uid(0);
        header.set_gid(0);
        header.set_cksum();
        builder.append_data(&mut header, path, &data[..]).unwrap();
    }
    builder.into_inner().unwrap()
}

/// The three layers of release `version`: a base whose "libssl" moves a
/// little each release, an app binary that changes in a few places, and a
/// config layer that never changes.
fn layers(version: u32) -> [Vec<u8>; 3] {
    let v = version as usize;
    let base = layer_tar(&[
        ("usr/lib/libc.so.6", binary_like(600_000, 1, 0, 0..0)),
        (
            "usr/lib/libssl.so.3",
            binary_like(300_000, 2, version, 10_000 * v..10_000 * v + 3_000),
        ),
        (
            "etc/os-release",
            b"PRETTY_NAME=\"Debian GNU/Linux 12\"\n".to_vec(),
        ),
    ]);
    let app = layer_tar(&[(
        "usr/bin/app",
        binary_like(900_000, 3, version, 50_000 * v..50_000 * v + 8_000),
    )]);
    let config = layer_tar(&[("etc/app/app.conf", b"listen = 0.0.0.0:8080\n".to_vec())]);
    [base, app, config]
}

/// Writes image `repo:v<version>` (layers compressed by `how`) into the OCI
/// layout at `dir`, returning the reference.
fn add_image(dir: &Path, repo: &str, version: u32, how: Compressor) -> String {
    let reference = format!("{HOST}/{repo}:v{version}");
    put_image(dir, &reference, &layers(version), version, how);
    reference
}

/// Writes an image of `layers` (compressed by `how`, `version` as a config
/// label) into the OCI layout at `dir`, named `reference`.
fn put_image(dir: &Path, reference: &str, layers: &[Vec<u8>], version: u32, how: Compressor) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let digest = sha256_digest(bytes);
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        (digest, bytes.len())
    };
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    let media_type = match how {
        Compressor::Zstd3 | Compressor::KlauspostZstd => {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        }
        _ => "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    for layer in layers {
        diff_ids.push(sha256_digest(layer));
        let (digest, size) = put(&how.compress(layer));
        descriptors.push(json!({
            "mediaType": media_type,
            "digest": digest, "size": size,
        }));
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": { "version": version.to_string() } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap();
    let (config_digest, config_size) = put(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config_size,
        },
        "layers": descriptors,
    }))
    .unwrap();
    let (manifest_digest, manifest_size) = put(&manifest);
    let index_path = dir.join("index.json");
    let mut index: Value = fs::read(&index_path)
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or_else(|_| json!({ "schemaVersion": 2, "manifests": [] }));
    index["manifests"].as_array_mut().unwrap().push(json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": manifest_digest, "size": manifest_size,
        "annotations": { "org.opencontainers.image.ref.name": reference },
    }));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn repo_for(how: Compressor) -> String {
    format!("delta/app-{}", how.name())
}

/// A fleet of one cluster whose Deployment runs the three images at
/// `version`; the images come from the shared `images` layout.
fn write_fleet(hub: &Workspace, version: u32) -> PathBuf {
    let repos: Vec<String> = Compressor::ALL_GZIP.iter().map(|h| repo_for(*h)).collect();
    write_fleet_of(hub, version, &repos)
}

/// A fleet of one cluster whose Deployment runs `repos` at `version`.
fn write_fleet_of(hub: &Workspace, version: u32, repos: &[String]) -> PathBuf {
    let dir = hub.join(&format!("fleet-v{version}"));
    fs::create_dir_all(dir.join("manifests")).unwrap();
    let containers: Vec<String> = repos
        .iter()
        .enumerate()
        .map(|(i, repo)| {
            format!("        - name: c{i}\n          image: {HOST}/{repo}:v{version}\n")
        })
        .collect();
    fs::write(
        dir.join("manifests/app.yaml"),
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: line\nspec:\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      containers:\n{}",
            containers.concat()
        ),
    )
    .unwrap();
    let images = hub.join("images");
    fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: delta\nchannel: stable\nclusters:\n  - name: {CLUSTER}\n    site: {SITE}\n    tier: production\nsources:\n  - name: app\n    manifests: {{ path: manifests }}\nmirrors:\n  {HOST}: oci-layout:{}\n",
            images.display()
        ),
    )
    .unwrap();
    dir.join("fleet.yaml")
}

/// v1 whole, v2 as a delta against the v1 file, v3 as a delta against v2
/// by manifest digest: exported once, shared by the tests.
struct Chain {
    hub: Workspace,
    v1: PathBuf,
    v2: PathBuf,
    v3: PathBuf,
    v2_report: Value,
}

/// A hub workspace whose `images` layout holds releases 1 to `versions`
/// of the app, once per compression.
fn hub_with_images(versions: u32) -> Workspace {
    let hub = Workspace::new();
    for version in 1..=versions {
        for how in Compressor::ALL_GZIP {
            add_image(&hub.join("images"), &repo_for(how), version, how);
        }
    }
    hub
}

/// `tender export -o OUT` of the test fleet at `version`; add any other
/// arguments.
fn export(hub: &Workspace, version: u32, out: &Path) -> TestCommand {
    let fleet = write_fleet(hub, version);
    let mut cmd = hub.export(fleet);
    cmd.arg("-o").arg(out);
    cmd
}

impl Chain {
    fn shared() -> Arc<Chain> {
        static SLOT: Mutex<Weak<Chain>> = Mutex::new(Weak::new());
        shared_fixture(&SLOT, || {
            let hub = hub_with_images(3);
            let v1 = hub.join("v1.tender");
            export(&hub, 1, &v1).ok();
            let v2 = hub.join("v2.tender");
            let o = export(&hub, 2, &v2)
                .arg("--base")
                .arg(&v1)
                .args(["--delta-level", "3", "--json"])
                .ok();
            let v2_report: Value = serde_json::from_slice(&o.stdout).expect("export --json");
            let v2_digest = inspect_json(&v2)["manifest_digest"]
                .as_str()
                .unwrap()
                .to_string();
            let v3 = hub.join("v3.tender");
            // Frames of 64 KiB, so that the chain's last link is cut into
            // frames as large layers are by default.
            export(&hub, 3, &v3)
                .args(["--base", &v2_digest, "--delta-level", "3"])
                .args(["--delta-frame-size", "64KiB"])
                .ok();
            Chain {
                hub,
                v1,
                v2,
                v3,
                v2_report,
            }
        })
    }
}

/// An OCI layout at `dir` holding one image (tag `v`) of uncompressed
/// `layers`: the input a build tool compresses.
fn plain_image(dir: &Path, layers: &[Vec<u8>], version: u32) {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let digest = sha256_digest(bytes);
        fs::write(blobs.join(&digest["sha256:".len()..]), bytes).unwrap();
        (digest, bytes.len())
    };
    let descriptors: Vec<Value> = layers
        .iter()
        .map(|layer| {
            let (digest, size) = put(layer);
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": size})
        })
        .collect();
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
    let (config_digest, config_size) = put(&serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux",
        "config": { "Labels": { "version": version.to_string() } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    }))
    .unwrap());
    let (manifest_digest, manifest_size) = put(&serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest, "size": config_size,
        },
        "layers": descriptors,
    }))
    .unwrap());
    fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": { "org.opencontainers.image.ref.name": "v" },
        }]}))
        .unwrap(),
    )
    .unwrap();
    fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// The layers of `reference` in the layout at `dir`, by digest.
fn layout_layers(dir: &Path, reference: &str) -> Vec<String> {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference)
        .expect("image in layout")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(blob_file(dir, &digest)).unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// Images compressed by the real containers/image encoders (`skopeo copy
/// --dest-compress-format`: klauspost pgzip, zstd and zstd:chunked, as
/// podman and buildah push them) reach the site byte-exact through a
/// delta, every changed layer as a patch of its plain text.
#[test]
fn layers_written_by_skopeo_reach_the_site_byte_exact() {
    let hub = Workspace::new();
    let images = hub.join("images");
    let formats = ["gzip", "zstd", "zstd:chunked"];
    let repo = |format: &str| format!("delta/skopeo-{}", format.replace(':', "-"));
    for version in 1..=2 {
        let plain = hub.join(&format!("plain-v{version}"));
        plain_image(&plain, &layers(version), version);
        for format in formats {
            let reference = format!("{HOST}/{}:v{version}", repo(format));
            let o = std::process::Command::new("skopeo")
                .args([
                    "copy",
                    "-q",
                    "--dest-compress",
                    "--dest-compress-format",
                    format,
                ])
                .arg(format!("oci:{}:v", plain.display()))
                .arg(format!("oci:{}:{reference}", images.display()))
                .output()
                .expect("run skopeo");
            assert!(o.status.success(), "skopeo {format}: {}", stderr(&o));
        }
    }
    let repos: Vec<String> = formats.iter().map(|f| repo(f)).collect();
    let v1 = hub.join("v1.tender");
    let fleet = write_fleet_of(&hub, 1, &repos);
    hub.export(&fleet).arg("-o").arg(&v1).ok();
    let v2 = hub.join("v2.tender");
    let fleet = write_fleet_of(&hub, 2, &repos);
    hub.export(&fleet)
        .arg("-o")
        .arg(&v2)
        .arg("--base")
        .arg(&v1)
        .args(["--delta-level", "3"])
        .ok();

    let rows = blob_rows(&v2);
    let layer = |format: &str, i: usize| {
        let digest = &layout_layers(&images, &format!("{HOST}/{}:v2", repo(format)))[i];
        (digest.clone(), rows[digest].clone())
    };
    // klauspost pgzip, zstd and zstd:chunked: rebuilt exactly by tender's
    // ports of the encoders, so each changed layer travels as a small patch.
    for format in formats {
        for i in 0..2 {
            let (_, row) = layer(format, i);
            assert_eq!(row["how"], "patched", "{format}: {row}");
            assert!(
                row["shipped"].as_u64().unwrap() * 5 < row["size"].as_u64().unwrap(),
                "{format}: {row}"
            );
        }
    }

    let site = Workspace::new();
    fs::copy(hub.join("hub.pub"), site.join("hub.pub")).unwrap();
    let file = write_site_file(&site, "site.yaml", SITE, &[CLUSTER], "");
    assert_exit(&import_at(&site, &file, &v1), 0);
    let o = import_at(&site, &file, &v2);
    assert_exit(&o, 0);
    for format in formats {
        for digest in layout_layers(&images, &format!("{HOST}/{}:v2", repo(format))) {
            let at_site = site
                .join("state/store/blobs/sha256")
                .join(&digest["sha256:".len()..]);
            assert!(
                fs::read(&at_site).unwrap() == fs::read(blob_file(&images, &digest)).unwrap(),
                "{format} layer {digest} differs at the site"
            );
        }
    }
}

/// A site (embedded store) trusting the chain's hub key.
struct Site {
    ws: Workspace,
    file: PathBuf,
}

impl Site {
    fn new(chain: &Chain) -> Site {
        let ws = Workspace::new();
        fs::copy(chain.hub.join("hub.pub"), ws.join("hub.pub")).unwrap();
        let file = write_site_file(&ws, "site.yaml", SITE, &[CLUSTER], "");
        Site { ws, file }
    }

    fn import(&self, bundle: &Path) -> Output {
        import_at(&self.ws, &self.file, bundle)
    }

    fn store_blob(&self, digest: &str) -> PathBuf {
        self.ws
            .join("state/store/blobs/sha256")
            .join(&digest["sha256:".len()..])
    }

    fn site_json(&self) -> String {
        fs::read_to_string(self.ws.join("state/site.json")).unwrap_or_default()
    }

    /// Asserts the store holds every blob of `version`'s images, each
    /// byte-identical to the source layout's.
    #[track_caller]
    fn assert_holds(&self, chain: &Chain, version: u32) {
        for how in Compressor::ALL_GZIP {
            for digest in image_blobs(&chain.hub.join("images"), &repo_for(how), version) {
                let source = fs::read(blob_file(&chain.hub.join("images"), &digest)).unwrap();
                let held = fs::read(self.store_blob(&digest))
                    .unwrap_or_else(|e| panic!("store lacks {digest} of v{version}: {e}"));
                assert!(held == source, "{digest} differs in the store");
                assert_eq!(sha256_digest(&held), digest);
            }
        }
    }
}

/// A site whose images go to a fresh loopback registry (prefix `site`),
/// trusting `hub`'s key: the registry, the site's workspace and site file.
fn registry_site(hub: &Path) -> (tender_test_support::Registry, Workspace, PathBuf) {
    let registry = tender_test_support::Registry::start();
    let ws = Workspace::new();
    fs::copy(hub.join("hub.pub"), ws.join("hub.pub")).unwrap();
    let file = write_site_file(
        &ws,
        "site.yaml",
        SITE,
        &[CLUSTER],
        &format!(
            "registry: {{url: \"{}\", plainHttp: true, prefix: site}}\n",
            registry.host()
        ),
    );
    (registry, ws, file)
}

/// `tender import BUNDLE --site FILE` in a site's workspace.
fn import_at(ws: &Workspace, file: &Path, bundle: &Path) -> Output {
    ws.tender()
        .arg("import")
        .arg(bundle)
        .arg("--site")
        .arg(file)
        .arg("--no-progress")
        .output()
}

fn blob_file(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(&digest["sha256:".len()..])
}

/// The manifest, config and layer digests of one image in a layout.
fn image_blobs(layout: &Path, repo: &str, version: u32) -> Vec<String> {
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let reference = format!("{HOST}/{repo}:v{version}");
    let manifest_digest = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == reference.as_str())
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: Value =
        serde_json::from_slice(&fs::read(blob_file(layout, &manifest_digest)).unwrap()).unwrap();
    let mut out = vec![
        manifest_digest,
        manifest["config"]["digest"].as_str().unwrap().into(),
    ];
    for layer in manifest["layers"].as_array().unwrap() {
        out.push(layer["digest"].as_str().unwrap().to_string());
    }
    out
}

fn layer_digests(chain: &Chain, how: Compressor, version: u32) -> Vec<String> {
    image_blobs(&chain.hub.join("images"), &repo_for(how), version)[2..].to_vec()
}

/// `inspect --json`'s per-blob rows, by digest.
fn blob_rows(bundle: &Path) -> BTreeMap<String, Value> {
    inspect_json(bundle)["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["digest"].as_str().unwrap().to_string(), r.clone()))
        .collect()
}

#[test]
fn changed_layers_travel_as_patches_for_every_compression_and_rebuild_exactly() {
    let chain = Chain::shared();
    let rows = blob_rows(&chain.v2);
    for how in Compressor::ALL_GZIP {
        let [base, app, config] = <[String; 3]>::try_from(layer_digests(&chain, how, 2)).unwrap();
        let [base1, app1, _] = <[String; 3]>::try_from(layer_digests(&chain, how, 1)).unwrap();
        for (layer, source) in [(&base, &base1), (&app, &app1)] {
            let row = &rows[layer];
            assert_eq!(row["how"], "patched", "{}: {row}", how.name());
            assert_eq!(
                row["source"],
                source.as_str(),
                "{}: same lineage first",
                how.name()
            );
            assert!(
                row["shipped"].as_u64().unwrap() * 5 < row["size"].as_u64().unwrap(),
                "{}: patch is not small: {row}",
                how.name()
            );
        }
        assert_eq!(rows[&config]["how"], "referenced", "unchanged layer");
    }
    // The export's own summary agrees, and says what it saved.
    let delta = &chain.v2_report["bundles"][0]["delta"];
    // Two changed layers per image, one image per encoder.
    assert_eq!(delta["patched"], 2 * Compressor::ALL_GZIP.len(), "{delta}");
    assert!(delta["bytes_saved"].as_u64().unwrap() > delta["release_bytes"].as_u64().unwrap() / 2);
    // A delta is a fraction of the whole release.
    let full = fs::metadata(&chain.v1).unwrap().len();
    let v2 = fs::metadata(&chain.v2).unwrap().len();
    assert!(v2 * 4 < full, "delta {v2} bytes vs full {full}");

    let site = Site::new(&chain);
    assert_exit(&site.import(&chain.v1), 0);
    site.assert_holds(&chain, 1);
    let o = site.import(&chain.v2);
    assert_exit(&o, 0);
    site.assert_holds(&chain, 2);
    // A chain: v3 against v2, its patches cut into frames.
    let v3 = fs::read(&chain.v3).unwrap();
    let framed = crate::util::tar_spans(&v3)
        .iter()
        .filter(|s| s.path.starts_with("blobs/sha256/"))
        .filter_map(|s| {
            let entry = &v3[s.data_offset..s.data_offset + s.size];
            let (header, _) = tender_delta::PatchHeader::read(&mut &entry[..]).ok()?;
            Some(header.frames.map_or(0, |f| f.len()))
        })
        .collect::<Vec<_>>();
    assert!(
        !framed.is_empty() && framed.iter().all(|&n| n > 5),
        "frames per patch: {framed:?}"
    );
    let o = site.import(&chain.v3);
    assert_exit(&o, 0);
    site.assert_holds(&chain, 3);
    let state: Value = serde_json::from_str(&site.site_json()).unwrap();
    assert_eq!(state["channels"]["stable"]["sequence"], 3);
}

#[test]
fn a_missing_or_damaged_base_blob_is_named_and_nothing_changes() {
    let chain = Chain::shared();
    let how = Compressor::GoGzip1;
    let [_, _, config] = <[String; 3]>::try_from(layer_digests(&chain, how, 2)).unwrap();
    let [_, app1, _] = <[String; 3]>::try_from(layer_digests(&chain, how, 1)).unwrap();
    for (what, damage) in [
        (
            "missing",
            Box::new(|p: &Path| fs::remove_file(p).unwrap()) as Box<dyn Fn(&Path)>,
        ),
        (
            "damaged",
            Box::new(|p: &Path| {
                let mut bytes = fs::read(p).unwrap();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                fs::write(p, bytes).unwrap();
            }),
        ),
    ] {
        // The referenced config layer when missing; the patch source when damaged.
        let blob = if what == "missing" { &config } else { &app1 };
        let site = Site::new(&chain);
        assert_exit(&site.import(&chain.v1), 0);
        damage(&site.store_blob(blob));
        let before = site.site_json();
        let o = site.import(&chain.v2);
        assert_exit(&o, 3);
        let err = stderr(&o);
        assert!(
            err.contains(blob.as_str()) && err.contains(what),
            "{what}: {err}"
        );
        assert_eq!(site.site_json(), before, "{what}: site state changed");
        assert!(
            !site.ws.join("state/staging").exists()
                || fs::read_dir(site.ws.join("state/staging"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{what}: a refused delta leaves nothing staged"
        );
    }
}

#[test]
fn a_delta_against_a_base_the_site_never_imported_is_refused() {
    let chain = Chain::shared();
    let site = Site::new(&chain);
    let o = site.import(&chain.v2);
    assert_exit(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("has not imported"), "{err}");
    assert!(site.site_json().is_empty(), "nothing committed");
    // With v1 in place the same bundle goes in.
    assert_exit(&site.import(&chain.v1), 0);
    assert_exit(&site.import(&chain.v2), 0);
}

#[test]
fn inspect_shows_how_each_blob_travels() {
    let chain = Chain::shared();
    let o = chain.hub.tender().arg("inspect").arg(&chain.v2).ok();
    let text = stdout(&o);
    let patched = format!("{} patched", 2 * Compressor::ALL_GZIP.len());
    assert!(text.contains("delta") && text.contains(&patched), "{text}");
    for how in Compressor::ALL_GZIP {
        let app1 = &layer_digests(&chain, how, 1)[1];
        assert!(text.contains(&format!("against {app1}")), "{text}");
    }
}

/// A fleet with one cluster per site, all running the GNU-gzip image at
/// `version`.
fn write_sites_fleet(hub: &Workspace, version: u32, sites: &[&str]) -> PathBuf {
    let dir = hub.join(&format!("sites-fleet-v{version}"));
    fs::create_dir_all(dir.join("manifests")).unwrap();
    fs::write(
        dir.join("manifests/app.yaml"),
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: app\n  namespace: line\nspec:\n  containers:\n    - name: app\n      image: {HOST}/{}:v{version}\n",
            repo_for(Compressor::GnuGzip6)
        ),
    )
    .unwrap();
    let clusters: String = sites
        .iter()
        .map(|s| format!("  - name: {s}-line\n    site: {s}\n    tier: production\n"))
        .collect();
    fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: sites\nchannel: stable\nclusters:\n{clusters}sources:\n  - name: app\n    manifests: {{ path: manifests }}\nmirrors:\n  {HOST}: oci-layout:{}\n",
            hub.join("images").display()
        ),
    )
    .unwrap();
    dir.join("fleet.yaml")
}

#[test]
fn sites_on_the_same_base_share_one_delta_and_unknown_sites_get_a_full_bundle() {
    let sites = ["plant-001", "plant-002", "plant-003", "plant-004"];
    let hub = Workspace::new();
    for version in 1..=3 {
        add_image(
            &hub.join("images"),
            &repo_for(Compressor::GnuGzip6),
            version,
            Compressor::GnuGzip6,
        );
    }
    let export = |version: u32, out: &Path| -> TestCommand {
        let fleet = write_sites_fleet(&hub, version, &sites);
        let mut cmd = hub.export(fleet);
        cmd.arg("-o").arg(out);
        cmd
    };
    let v1 = hub.join("v1.tender");
    let v2 = hub.join("v2.tender");
    export(1, &v1).ok();
    export(2, &v2).ok();

    // plant-001 and -002 run v2, plant-003 v1; plant-004 never reported.
    let site_ws: Vec<(Workspace, PathBuf)> = sites[..3]
        .iter()
        .map(|name| {
            let ws = Workspace::new();
            fs::copy(hub.join("hub.pub"), ws.join("hub.pub")).unwrap();
            ws.tender().args(["keygen", "site"]).ok();
            let file = write_site_file(
                &ws,
                "site.yaml",
                name,
                &[&format!("{name}-line")],
                "siteKey: site.key\n",
            );
            (ws, file)
        })
        .collect();
    for (i, (ws, file)) in site_ws.iter().enumerate() {
        let versions: &[&PathBuf] = if i < 2 { &[&v1, &v2] } else { &[&v1] };
        for bundle in versions {
            assert_exit(&import_at(ws, file, bundle), 0);
        }
        let hub_cmd = || {
            let mut cmd = hub.tender();
            cmd.env("TENDER_HUB_STATE", hub.join("hub-state"));
            cmd
        };
        hub_cmd()
            .args(["hub", "add-site", sites[i], "--key"])
            .arg(ws.join("site.pub"))
            .ok();
        let receipts: Vec<PathBuf> = fs::read_dir(ws.join("state/receipts"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        hub_cmd().args(["hub", "ingest"]).args(&receipts).ok();
    }

    let out = hub.join("v3");
    let o = export(3, &out).args(["--base", "sites", "--json"]).ok();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let bundles = report["bundles"].as_array().unwrap();
    let by_sites: BTreeMap<String, &Value> = bundles
        .iter()
        .map(|b| {
            (
                b["sites"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(","),
                b,
            )
        })
        .collect();
    assert_eq!(
        by_sites.keys().cloned().collect::<Vec<_>>(),
        ["plant-001,plant-002", "plant-003", "plant-004"],
        "{report}"
    );
    let v2_id = inspect_json(&v2)["manifest"]["bundle_id"].clone();
    let v1_id = inspect_json(&v1)["manifest"]["bundle_id"].clone();
    assert_eq!(by_sites["plant-001,plant-002"]["kind"], "delta");
    assert_eq!(
        by_sites["plant-001,plant-002"]["delta"]["base_bundle_id"],
        v2_id
    );
    assert_eq!(by_sites["plant-003"]["kind"], "delta");
    assert_eq!(by_sites["plant-003"]["delta"]["base_bundle_id"], v1_id);
    assert_eq!(by_sites["plant-004"]["kind"], "full");

    // Each site imports the bundle meant for it.
    for (i, (ws, file)) in site_ws.iter().enumerate() {
        let key = if i < 2 {
            "plant-001,plant-002"
        } else {
            "plant-003"
        };
        let bundle = Path::new(by_sites[key]["path"].as_str().unwrap());
        assert_exit(&import_at(ws, file, bundle), 0);
        let state: Value =
            serde_json::from_slice(&fs::read(ws.join("state/site.json")).unwrap()).unwrap();
        assert_eq!(state["channels"]["stable"]["sequence"], 3, "{}", sites[i]);
    }
}

/// A bit flipped in a patch entry is caught as a digest mismatch (exit 3)
/// before anything is rebuilt. (A correctly listed patch whose output is
/// another blob is refused by the rebuild's own digest check: tender-delta's
/// `a_patch_whose_output_is_another_blob_is_a_mismatch`.)
#[test]
fn a_damaged_patch_entry_is_rejected_before_anything_is_rebuilt() {
    let chain = Chain::shared();
    let site = Site::new(&chain);
    assert_exit(&site.import(&chain.v1), 0);
    let damaged = site.ws.join("v2-damaged.tender");
    let mut bytes = fs::read(&chain.v2).unwrap();
    let spans = crate::util::tar_spans(&bytes);
    let patch = spans
        .iter()
        .filter(|s| s.path.starts_with("blobs/sha256/"))
        .max_by_key(|s| s.size)
        .unwrap();
    bytes[patch.data_offset + patch.size / 2] ^= 0x40;
    fs::write(&damaged, bytes).unwrap();
    let before = site.site_json();
    let o = site.import(&damaged);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("digest"), "{}", stderr(&o));
    assert_eq!(site.site_json(), before);
}

/// A registry site upgraded from a tender whose site repositories dropped
/// the registry host keeps v1's images at the old paths (`site/delta/...`,
/// nothing moves them); the first delta after the upgrade finds its base
/// blobs there and lands at the new paths.
#[test]
fn a_delta_finds_its_base_where_an_older_tender_pushed_it() {
    let chain = Chain::shared();
    let (registry, ws, file) = registry_site(chain.hub.path());
    let host = registry.host();
    assert_exit(&import_at(&ws, &file, &chain.v1), 0);
    // Make v1 look as an older tender left it: its repositories at the
    // paths without the registry host, none at the new ones.
    let repositories = registry
        .storage_dir()
        .join("docker/registry/v2/repositories/site");
    fs::rename(
        repositories.join(HOST).join("delta"),
        repositories.join("delta"),
    )
    .unwrap();
    for how in Compressor::ALL_GZIP {
        let old = format!("docker://{host}/site/{}:v1", repo_for(how));
        let want = &image_blobs(&chain.hub.join("images"), &repo_for(how), 1)[0];
        assert_eq!(&tender_test_support::skopeo_inspect_digest(&old, &[]), want);
    }

    let o = import_at(&ws, &file, &chain.v2);
    assert_exit(&o, 0);
    for how in Compressor::ALL_GZIP {
        let new = format!("docker://{host}/site/{HOST}/{}:v2", repo_for(how));
        let want = &image_blobs(&chain.hub.join("images"), &repo_for(how), 2)[0];
        assert_eq!(&tender_test_support::skopeo_inspect_digest(&new, &[]), want);
    }
}

/// A site whose images live in a registry holds its base blobs there: the
/// delta's referenced blobs and patch sources are fetched back from the
/// site registry (each checked by digest) and v2 lands complete, as
/// `skopeo copy` to a layout proves by its digests.
#[test]
fn a_registry_site_takes_the_chain_too() {
    let chain = Chain::shared();
    let (registry, ws, file) = registry_site(chain.hub.path());
    let host = registry.host();
    for bundle in [&chain.v1, &chain.v2, &chain.v3] {
        assert_exit(&import_at(&ws, &file, bundle), 0);
    }
    for how in Compressor::ALL_GZIP {
        let want = &image_blobs(&chain.hub.join("images"), &repo_for(how), 3)[0];
        let got = tender_test_support::skopeo_inspect_digest(
            &format!("docker://{host}/site/{HOST}/{}:v3", repo_for(how)),
            &[],
        );
        assert_eq!(&got, want, "{}", how.name());
        // Every layer is there, byte-exact (copy verifies each digest).
        let layout = ws.join(&format!("copy-{}", how.name()));
        let o = tender_test_support::skopeo_copy(
            &format!("docker://{host}/site/{HOST}/{}:v3", repo_for(how)),
            &format!("oci:{}:v3", layout.display()),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        for layer in layer_digests(&chain, how, 3) {
            assert!(blob_file(&layout, &layer).exists(), "{layer} missing");
        }
    }
}

/// The encoders of [`Compressor`]: Go's and GNU gzip, and zstd.
const ENCODERS: [Compressor; 4] = [
    Compressor::GnuGzip6,
    Compressor::GoGzip1,
    Compressor::GoGzipDefault,
    Compressor::Zstd3,
];

/// A fleet whose images move under one tag (`:stable`) and whose
/// ConfigMap never changes: the rendered manifest set of every release is
/// the same blob. Release `version`'s images come from `images-v<version>`.
fn write_stable_fleet(hub: &Workspace, version: u32) -> PathBuf {
    let dir = hub.join(&format!("stable-v{version}"));
    fs::create_dir_all(dir.join("manifests")).unwrap();
    let containers: String = ENCODERS
        .iter()
        .map(|how| {
            format!(
                "        - name: {}\n          image: {HOST}/{}:stable\n",
                how.name(),
                repo_for(*how)
            )
        })
        .collect();
    fs::write(
        dir.join("manifests/app.yaml"),
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n  namespace: line\ndata:\n  app.conf: \"listen = 0.0.0.0:8080\"\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app\n  namespace: line\nspec:\n  selector:\n    matchLabels: {{app: app}}\n  template:\n    metadata:\n      labels: {{app: app}}\n    spec:\n      containers:\n{containers}"
        ),
    )
    .unwrap();
    let images = hub.join(&format!("images-v{version}"));
    for how in ENCODERS {
        // Small layers: one that never changes (referenced by the deltas,
        // so read back from the site registry) and one that does.
        let layers = [
            layer_tar(&[(
                "etc/os-release",
                format!("ID=debian\nBUILD={}\n", how.name()).into_bytes(),
            )]),
            layer_tar(&[("usr/bin/app", binary_like(40_000, 3, version, 1_000..1_500))]),
        ];
        let reference = format!("{HOST}/{}:stable", repo_for(how));
        put_image(&images, &reference, &layers, version, how);
    }
    fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: delta\nchannel: stable\nclusters:\n  - name: {CLUSTER}\n    site: {SITE}\n    tier: production\nsources:\n  - name: app\n    manifests: {{ path: manifests }}\nmirrors:\n  {HOST}: oci-layout:{}\n",
            images.display()
        ),
    )
    .unwrap();
    dir.join("fleet.yaml")
}

/// The `blobs` line of an import's summary: (new, already present).
fn blob_counts(o: &Output) -> (u64, u64) {
    let out = stdout(o);
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("blobs"))
        .unwrap_or_else(|| panic!("no blobs line in:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[0].parse().unwrap(), words[2].parse().unwrap())
}

/// The common case at a registry-backed site: new image content under the
/// same tag, unchanged ConfigMaps. Each delta references the manifest set
/// (which the site keeps in its state, not in the registry) and the
/// unchanged layer (which it keeps in the registry); v1 → v2 → v3 import
/// for every encoder, the summary counts what was new, and the site
/// registry ends with v3's images, byte-exact.
#[test]
fn a_registry_site_takes_deltas_whose_manifest_set_is_unchanged() {
    let hub = Workspace::new();
    let mut bundles: Vec<PathBuf> = Vec::new();
    for version in 1..=3u32 {
        let fleet = write_stable_fleet(&hub, version);
        let out = hub.join(&format!("stable-v{version}.tender"));
        // Each delta against the release before it, named by digest.
        let base: Vec<String> = match bundles.last() {
            Some(previous) => vec![
                "--base".into(),
                inspect_json(previous)["manifest_digest"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            ],
            None => Vec::new(),
        };
        hub.export(&fleet).arg("-o").arg(&out).args(&base).ok();
        bundles.push(out);
    }
    // The deltas do reference the unchanged manifest set.
    let v1 = inspect_json(&bundles[0]);
    let set = v1["manifest"]["releases"][0]["manifests"]
        .as_str()
        .unwrap()
        .to_string();
    for delta in &bundles[1..] {
        assert_eq!(
            inspect_json(delta)["manifest"]["releases"][0]["manifests"],
            set.as_str()
        );
        assert_eq!(blob_rows(delta)[&set]["how"], "referenced", "{set}");
    }

    let (registry, ws, file) = registry_site(hub.path());
    let host = registry.host();
    // v1: every blob is new (4 images of manifest, config and 2 layers,
    // and the manifest set).
    let o = import_at(&ws, &file, &bundles[0]);
    assert_exit(&o, 0);
    assert_eq!(blob_counts(&o), (4 * 4 + 1, 0), "{}", stdout(&o));
    for delta in &bundles[1..] {
        let o = import_at(&ws, &file, delta);
        assert_exit(&o, 0);
        // New: each image's manifest, config and changed layer. Present:
        // the unchanged layers and the manifest set.
        assert_eq!(blob_counts(&o), (4 * 3, 4 + 1), "{}", stdout(&o));
    }
    let images = hub.join("images-v3");
    for how in ENCODERS {
        let at_site = format!("docker://{host}/site/{HOST}/{}:stable", repo_for(how));
        let index: Value =
            serde_json::from_slice(&fs::read(images.join("index.json")).unwrap()).unwrap();
        let want = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| {
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .is_some_and(|r| r.contains(&repo_for(how)))
            })
            .unwrap()["digest"]
            .as_str()
            .unwrap()
            .to_string();
        let got = tender_test_support::skopeo_inspect_digest(&at_site, &[]);
        assert_eq!(got, want, "{}", how.name());
        // Every blob is there, byte-exact (copy verifies each digest).
        let layout = ws.join(&format!("copy-{}", how.name()));
        let o =
            tender_test_support::skopeo_copy(&at_site, &format!("oci:{}:stable", layout.display()));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

/// A base layer too large for the configured memory limit is not patched:
/// the layer travels whole and the export says why.
#[test]
fn layers_over_the_memory_limit_travel_whole_with_the_reason() {
    let hub = hub_with_images(2);
    let v1 = hub.join("v1.tender");
    export(&hub, 1, &v1).ok();
    let v2 = hub.join("v2.tender");
    let o = export(&hub, 2, &v2)
        .arg("--base")
        .arg(&v1)
        .args(["--delta-memory-limit", "256K", "--json"])
        .ok();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let delta = &report["bundles"][0]["delta"];
    assert_eq!(delta["patched"], 0, "{delta}");
    let notes: Vec<&str> = delta["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["note"].as_str())
        .collect();
    assert!(
        notes.iter().filter(|n| n.contains("window limit")).count() >= 6,
        "{notes:?}"
    );
    // Unchanged blobs are still referenced.
    assert!(delta["referenced"].as_u64().unwrap() >= 3, "{delta}");
    // The reasons travel in the signed manifest: the stick itself says why
    // it is large, for exactly the layers that travel whole.
    let rows = blob_rows(&v2);
    let reasons: Vec<&str> = rows.values().filter_map(|r| r["reason"].as_str()).collect();
    assert!(
        reasons
            .iter()
            .filter(|r| r.contains("window limit"))
            .count()
            >= 6,
        "{rows:?}"
    );
    assert!(
        rows.values()
            .all(|r| r["reason"].is_null() || r["how"] == "whole"),
        "{rows:?}"
    );
    let o = hub.tender().arg("inspect").arg(&v2).ok();
    let text = stdout(&o);
    assert!(
        text.lines()
            .any(|l| l.contains("why whole:") && l.contains("window limit")),
        "{text}"
    );
    // A bad size is a usage error.
    export(&hub, 2, &v2)
        .args(["--delta-memory-limit", "lots"])
        .expect_exit(2);
}
