//! `tender import` end to end: a bundle exported from the sample fleet goes
//! into a site's embedded store or a real registry; refusals, damage,
//! crashes at every phase, flaky registries, full disks and a tampered
//! audit trail are each met with the documented outcome.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex, Weak};

use serde_json::Value;
use tender_test_support::{
    Fault, FaultyProxy, Registry, repo_root, sha256_digest, skopeo_copy, skopeo_inspect_digest,
};

use crate::util::{
    TestCommand, Workspace, assert_exit, export_fleet, inspect_json, sample_fleet, stderr, stdout,
    tar_spans, tree, write_site_file,
};

const SITE: &str = "plant-001";
const CLUSTERS: [&str; 2] = ["plant-001-line-a", "plant-001-line-b"];
const SOURCE_HOST: &str = "registry.plant.example/";
const FAILPOINT: &str = "TENDER_FAILPOINT";
const SIGABRT: i32 = 6;

/// Bundles exported once from one hub state and shared, read only, by the
/// tests alive at the time (exporting takes seconds: helm runs per
/// cluster); the directory goes when the last of them drops it.
struct Bundles {
    hub: Workspace,
    /// The sample fleet, sequence 1.
    seq1: PathBuf,
    /// The sample fleet plus one image (new blobs), sequence 2.
    seq2: PathBuf,
    /// The sample fleet again, sequence 3.
    seq3: PathBuf,
}

impl Bundles {
    fn shared() -> Arc<Bundles> {
        static SHARED: Mutex<Weak<Bundles>> = Mutex::new(Weak::new());
        crate::util::shared_fixture(&SHARED, || {
            let hub = Workspace::new();
            let next = fleet_with_extra_image(&hub);
            let bundles = Bundles {
                seq1: export_fleet(&hub, &sample_fleet(), "seq1.tender"),
                seq2: export_fleet(&hub, &next, "seq2.tender"),
                seq3: export_fleet(&hub, &sample_fleet(), "seq3.tender"),
                hub,
            };
            for (n, bundle) in [&bundles.seq1, &bundles.seq2, &bundles.seq3]
                .into_iter()
                .enumerate()
            {
                assert_eq!(inspect_json(bundle)["manifest"]["sequence"], n + 1);
            }
            bundles
        })
    }

    /// The OCI layout `seq2` was exported from.
    fn seq2_layout(&self) -> PathBuf {
        self.hub.join("fleet-next/images")
    }
}

/// A workspace trusting the shared bundles' hub key, plus one site file
/// for plant-001 and its own state directory.
struct Site {
    ws: Workspace,
    file: PathBuf,
    state: PathBuf,
    bundles: Arc<Bundles>,
}

impl Site {
    /// Embedded store under `<workspace>/state`.
    fn embedded() -> Site {
        Site::with("")
    }

    /// `extra` goes into the site file as is (`registry:`, `stateDir:`).
    fn with(extra: &str) -> Site {
        let bundles = Bundles::shared();
        let ws = Workspace::new();
        // policy.yaml trusts hub.pub for releases: make that the key the
        // shared bundles are signed with.
        fs::copy(bundles.hub.join("hub.pub"), ws.join("hub.pub")).unwrap();
        let file = write_site_file(&ws, "site.yaml", SITE, &CLUSTERS, extra);
        let state = if extra.contains("stateDir:") {
            let line = extra.lines().find(|l| l.starts_with("stateDir:")).unwrap();
            PathBuf::from(line["stateDir:".len()..].trim())
        } else {
            ws.join("state")
        };
        Site {
            ws,
            file,
            state,
            bundles,
        }
    }

    /// `tender ARGS --site FILE` in the site's workspace.
    fn at_site(&self, args: &[&str]) -> TestCommand {
        let mut cmd = self.ws.tender();
        cmd.args(args).arg("--site").arg(&self.file);
        cmd
    }

    fn import_cmd(&self, bundle: &Path, json: bool) -> TestCommand {
        let mut cmd = self.ws.tender();
        cmd.arg("import")
            .arg(bundle)
            .arg("--site")
            .arg(&self.file)
            .args(["--operator", "tester", "--no-progress"]);
        if json {
            cmd.arg("--json");
        }
        cmd.env_remove(FAILPOINT);
        cmd
    }

    fn import(&self, bundle: &Path) -> Output {
        self.import_cmd(bundle, false).output()
    }

    /// Imports with `--json`, asserting success; returns the report.
    fn import_ok(&self, bundle: &Path) -> Value {
        let o = self.import_cmd(bundle, true).ok();
        serde_json::from_slice(&o.stdout).expect("import --json prints JSON")
    }

    /// Imports with a failpoint armed; asserts the process died by abort.
    fn import_killed_at(&self, bundle: &Path, failpoint: &str) {
        let o = self
            .import_cmd(bundle, false)
            .env(FAILPOINT, failpoint)
            .output();
        assert_eq!(
            (o.status.code(), o.status.signal()),
            (None, Some(SIGABRT)),
            "failpoint {failpoint} must abort the import\nstdout:\n{}\nstderr:\n{}",
            stdout(&o),
            stderr(&o)
        );
    }

    fn audit_verify(&self) -> Output {
        self.at_site(&["audit", "verify"]).output()
    }

    #[track_caller]
    fn assert_audit_intact(&self, entries: usize) {
        let o = self.audit_verify();
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains(&format!("audit chain intact: {entries} entries")),
            "{}",
            stdout(&o)
        );
    }

    /// `site.json` as text (byte-exact), if there is one.
    fn site_json(&self) -> Option<String> {
        fs::read_to_string(self.state.join("site.json")).ok()
    }

    fn site_state(&self) -> Value {
        serde_json::from_str(&self.site_json().expect("site.json exists")).unwrap()
    }

    fn audit_text(&self) -> String {
        fs::read_to_string(self.state.join("audit.jsonl")).unwrap_or_default()
    }

    fn audit(&self) -> Vec<Value> {
        self.audit_text()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    fn store(&self) -> PathBuf {
        self.state.join("store")
    }

    /// Every file under the store (empty if there is none).
    fn store_tree(&self) -> Vec<String> {
        if self.store().exists() {
            tree(&self.store())
        } else {
            Vec::new()
        }
    }
}

/// What a site must hold after importing `bundle` from the OCI layout
/// `layout`: full reference → digest, for every image a release of this
/// site's clusters names (the digests the signed manifest states, which
/// must be the source's) plus the cosign signature tags that came along.
fn expected_images(bundle: &Path, layout: &Path) -> BTreeMap<String, String> {
    let manifest = &inspect_json(bundle)["manifest"];
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let source: BTreeMap<String, String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_string(),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected = BTreeMap::new();
    for release in manifest["releases"].as_array().unwrap() {
        if release["site"] != SITE {
            continue;
        }
        for image in release["images"].as_array().unwrap() {
            let reference = image["reference"].as_str().unwrap().to_string();
            let digest = image["digest"].as_str().unwrap().to_string();
            assert_eq!(source.get(&reference), Some(&digest), "{reference}");
            expected.insert(reference, digest);
        }
    }
    let signatures: Vec<_> = source.iter().filter(|(r, _)| r.ends_with(".sig")).collect();
    assert!(!signatures.is_empty(), "the sample has a cosign signature");
    for (reference, digest) in signatures {
        expected.insert(reference.clone(), digest.clone());
    }
    assert!(expected.len() >= 4, "{expected:?}");
    expected
}

/// skopeo reads every expected image from the embedded store with the
/// expected digest, and every blob there hashes to its name.
#[track_caller]
fn assert_store_holds(store: &Path, expected: &BTreeMap<String, String>) {
    for (reference, digest) in expected {
        let image = format!("oci:{}:{reference}", store.display());
        assert_eq!(&skopeo_inspect_digest(&image, &[]), digest, "{reference}");
    }
    assert_store_blobs_intact(store);
}

#[track_caller]
fn assert_store_blobs_intact(store: &Path) {
    for entry in fs::read_dir(store.join("blobs/sha256")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert_eq!(
            sha256_digest(&fs::read(entry.path()).unwrap()),
            format!("sha256:{name}"),
            "store blob {name} is damaged"
        );
    }
}

/// The sample layout.
fn sample_layout() -> PathBuf {
    repo_root().join("testdata/fleet/images")
}

/// A copy of the sample fleet whose mirror holds one more image,
/// `registry.plant.example/plant/extra:1.0.0` (new config, layer and
/// manifest blobs), which `fleet.yaml` lists for every cluster: a later
/// release that brings blobs the site does not have yet.
fn fleet_with_extra_image(ws: &Workspace) -> PathBuf {
    let dir = ws.join("fleet-next");
    let status = Command::new("cp")
        .args(["-r"])
        .arg(repo_root().join("testdata/fleet"))
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success());
    let layout = dir.join("images");
    let put = |data: &[u8]| {
        let digest = sha256_digest(data);
        fs::write(
            layout.join("blobs/sha256").join(&digest["sha256:".len()..]),
            data,
        )
        .unwrap();
        digest
    };
    let layer: Vec<u8> = (0..6000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let layer_digest = put(&layer);
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Labels":{{"test":"tender import"}}}},"rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
    );
    let config_digest = put(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    let manifest_digest = put(manifest.as_bytes());
    let index_path = layout.join("index.json");
    let mut index: Value = serde_json::from_slice(&fs::read(&index_path).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": "amd64", "os": "linux"},
            "annotations": {
                "org.opencontainers.image.ref.name": "registry.plant.example/plant/extra:1.0.0"
            }
        }));
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    let fleet = dir.join("fleet.yaml");
    let text = fs::read_to_string(&fleet).unwrap();
    let listed = "  - registry.plant.example/plant/diag-tools:1.0.0\n";
    assert!(text.contains(listed), "fleet.yaml changed shape");
    fs::write(
        &fleet,
        text.replace(
            listed,
            &format!("{listed}  - registry.plant.example/plant/extra:1.0.0\n"),
        ),
    )
    .unwrap();
    fleet
}

/// A bundle file with one byte flipped inside the data of its last blob
/// entry (headers and the end marker stay intact).
fn flip_last_blob(bundle: &Path, to: &Path) {
    let mut bytes = fs::read(bundle).unwrap();
    let spans = tar_spans(&bytes);
    let last = spans
        .iter()
        .rev()
        .find(|s| s.path.starts_with("blobs/sha256/") && s.size > 0)
        .expect("a blob entry");
    let at = last.data_offset + last.size / 2;
    assert!(
        at < bytes.len() - 1024,
        "inside entry data, before the end marker"
    );
    bytes[at] ^= 0x01;
    fs::write(to, bytes).unwrap();
}

#[test]
fn import_into_the_embedded_store() {
    let site = Site::embedded();
    let bundle = site.bundles.seq1.clone();
    let expected = expected_images(&bundle, &sample_layout());

    let report = site.import_ok(&bundle);
    assert_eq!(report["outcome"], "imported");
    assert_eq!(report["sequence"], 1);
    assert_eq!(report["clusters"], serde_json::json!(CLUSTERS));
    assert!(
        report["audit_hash"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    assert_store_holds(&site.store(), &expected);
    // The layers are there too: skopeo copies the whole image out.
    let out = site.ws.join("copy");
    skopeo_copy(
        &format!(
            "oci:{}:registry.plant.example/plant/opcua-gateway:1.4.2",
            site.store().display()
        ),
        &format!("oci:{}:x", out.display()),
    );

    let state = site.site_state();
    let current: Vec<&String> = state["current"].as_object().unwrap().keys().collect();
    assert_eq!(current, CLUSTERS, "only this site's clusters");
    assert_eq!(state["channels"]["stable"]["sequence"], 1);
    let manifest = &inspect_json(&bundle)["manifest"];
    for release in manifest["releases"].as_array().unwrap() {
        let cluster = release["cluster"].as_str().unwrap();
        let set = release["manifests"].as_str().unwrap();
        let kept = site
            .state
            .join("manifests/sha256")
            .join(&set["sha256:".len()..]);
        if release["site"] == SITE {
            let record = &state["current"][cluster];
            assert_eq!(record["sequence"], 1);
            assert_eq!(record["manifests"], release["manifests"]);
            assert_eq!(record["images"], release["images"]);
            assert_eq!(sha256_digest(&fs::read(&kept).unwrap()), set);
            assert!(
                site.state
                    .join(format!("releases/{cluster}/00000000000000000001.json"))
                    .is_file()
            );
        } else {
            assert_eq!(cluster, "plant-002-assembly");
            assert!(!kept.exists(), "another site's manifest set was kept");
            assert!(!site.state.join("releases").join(cluster).exists());
        }
    }
    // Staging is gone once the import committed.
    assert_eq!(fs::read_dir(site.state.join("staging")).unwrap().count(), 0);

    site.assert_audit_intact(1);
    let audit = site.audit();
    assert_eq!(audit[0]["result"], "imported");
    assert_eq!(audit[0]["operator"], "tester");
    assert_eq!(audit[0]["clusters"], serde_json::json!(CLUSTERS));
}

#[test]
fn import_into_a_registry() {
    let registry = Registry::start();
    let host = registry.host();
    let site = Site::with(&format!(
        "registry: {{url: \"{host}\", plainHttp: true, prefix: site}}\n"
    ));
    let bundle = site.bundles.seq1.clone();
    let expected = expected_images(&bundle, &sample_layout());

    let report = site.import_ok(&bundle);
    assert_eq!(report["outcome"], "imported");
    // Into an empty registry every blob of the release is new, and the
    // site holds each: in the registry, or (manifest sets, which no image
    // reaches) in its state directory.
    let blobs = bundle_blobs(&bundle);
    assert_eq!(
        (
            report["blobs_new"].as_u64(),
            report["blobs_present"].as_u64()
        ),
        (Some(blobs.len() as u64), Some(0)),
        "{report}"
    );
    let inventory: Vec<String> =
        serde_json::from_slice(&fs::read(site.state.join("inventory.json")).unwrap()).unwrap();
    assert_eq!(inventory, blobs);
    let manifests = inspect_json(&bundle)["manifest"]["releases"].clone();
    for release in manifests.as_array().unwrap() {
        let hex = &release["manifests"].as_str().unwrap()["sha256:".len()..];
        let dir = if release["site"] == SITE {
            "manifests"
        } else {
            "blobs"
        };
        let kept = site.state.join(dir).join("sha256").join(hex);
        assert!(kept.is_file(), "{} not kept", kept.display());
    }

    // Stock tools pull the image, layers and all.
    let out = site.ws.join("pulled");
    skopeo_copy(
        &format!("docker://{host}/site/{SOURCE_HOST}plant/opcua-gateway:1.4.2"),
        &format!("oci:{}:x", out.display()),
    );
    for (reference, digest) in &expected {
        // The site repository keeps the source registry.
        let image = format!("docker://{host}/site/{reference}");
        assert_eq!(&skopeo_inspect_digest(&image, &[]), digest, "{image}");
        let source = format!("oci:{}:{reference}", sample_layout().display());
        assert_eq!(&skopeo_inspect_digest(&source, &[]), digest, "{source}");
    }
    let gateway = &expected["registry.plant.example/plant/opcua-gateway:1.4.2"];
    let sig_tag = format!(
        "docker://{host}/site/{SOURCE_HOST}plant/opcua-gateway:sha256-{}.sig",
        &gateway["sha256:".len()..]
    );
    assert!(expected.keys().any(|r| r.ends_with(".sig")));
    skopeo_inspect_digest(&sig_tag, &[]);

    // The site state says where each image now lives; nothing went into
    // an embedded store.
    let state = site.site_state();
    for cluster in CLUSTERS {
        let locations = state["current"][cluster]["locations"].as_object().unwrap();
        assert_eq!(
            locations["registry.plant.example/plant/opcua-gateway:1.4.2"],
            format!("{host}/site/{SOURCE_HOST}plant/opcua-gateway:1.4.2")
        );
    }
    assert!(!site.store().exists());
    site.assert_audit_intact(1);

    // The next release shares most blobs: counted as already present.
    let next = site.bundles.seq2.clone();
    let report = site.import_ok(&next);
    let (new, present) = (
        report["blobs_new"].as_u64().unwrap(),
        report["blobs_present"].as_u64().unwrap(),
    );
    assert_eq!(new + present, bundle_blobs(&next).len() as u64, "{report}");
    assert!(new > 0 && present > new, "{report}");
}

/// `tender gc` at a registry site removes the blobs the state keeps that no
/// retained release names (another site's manifest set) and takes them out
/// of the inventory, so the hub never references them in a delta; the
/// current releases' manifest sets stay.
#[test]
fn gc_at_a_registry_site_keeps_the_inventory_true() {
    let registry = Registry::start();
    let site = Site::with(&format!(
        "registry: {{url: \"{}\", plainHttp: true}}\n",
        registry.host()
    ));
    let bundle = site.bundles.seq1.clone();
    site.import_ok(&bundle);
    let releases = inspect_json(&bundle)["manifest"]["releases"].clone();
    let (ours, theirs): (Vec<&Value>, Vec<&Value>) = releases
        .as_array()
        .unwrap()
        .iter()
        .partition(|r| r["site"] == SITE);
    let kept = |dir: &str, release: &Value| {
        let hex = &release["manifests"].as_str().unwrap()["sha256:".len()..];
        site.state.join(dir).join("sha256").join(hex)
    };
    assert!(!theirs.is_empty());
    assert!(theirs.iter().all(|r| kept("blobs", r).is_file()));

    site.at_site(&["gc", "--keep", "1"]).ok();
    let inventory = fs::read_to_string(site.state.join("inventory.json")).unwrap();
    for r in &theirs {
        assert!(!kept("blobs", r).exists(), "{r}");
        assert!(!inventory.contains(r["manifests"].as_str().unwrap()), "{r}");
    }
    for r in &ours {
        assert!(kept("manifests", r).is_file(), "{r}");
        assert!(inventory.contains(r["manifests"].as_str().unwrap()), "{r}");
    }
}

/// The blob digests a full bundle carries, sorted.
fn bundle_blobs(bundle: &Path) -> Vec<String> {
    inspect_json(bundle)["manifest"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["path"].as_str().unwrap().starts_with("blobs/"))
        .map(|e| e["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reimport_changes_nothing_but_the_audit_trail() {
    let site = Site::embedded();
    let bundle = site.bundles.seq1.clone();
    site.import_ok(&bundle);
    let before = site.site_json().unwrap();
    let store = site.store_tree();
    let releases = tree(&site.state.join("releases"));

    let o = site.import(&bundle);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("ALREADY IMPORTED"), "{}", stdout(&o));
    // It says that it did not read the contents, and how to check them.
    assert!(
        stdout(&o).contains("not re-read") && stdout(&o).contains("tender import --check"),
        "{}",
        stdout(&o)
    );
    assert_eq!(site.site_json().unwrap(), before);
    assert_eq!(site.store_tree(), store);
    assert_eq!(tree(&site.state.join("releases")), releases);

    let audit = site.audit();
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1]["result"], "already imported");
    site.assert_audit_intact(2);
    let report = site.import_ok(&bundle);
    assert_eq!(report["outcome"], "already imported");
    assert_eq!(report["contents_verified"], false);
}

/// Copies of an imported bundle, each damaged after the import the way an
/// attack or a bad stick would, named after it.
fn hostile_copies(bundle: &Path, dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let bit_flip = dir.join("bit-flip.tender");
    flip_last_blob(bundle, &bit_flip);

    let bytes = fs::read(bundle).unwrap();
    let truncated = dir.join("truncated.tender");
    fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).unwrap();

    // A path escaping the extraction directory, appended after the last
    // listed entry (where a reader that stops at the listed entries would
    // never look), before the end-of-archive marker.
    let last = tar_spans(&bytes).into_iter().last().expect("entries");
    let end = (last.data_offset + last.size).div_ceil(512) * 512;
    let mut slip = tar::Builder::new(Vec::new());
    let payload = b"* * * * * root /tmp/x\n";
    let mut header = tar::Header::new_ustar();
    header.set_size(payload.len() as u64);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    slip.append_data(&mut header, "evil", &payload[..]).unwrap();
    let mut entry = slip.into_inner().unwrap();
    // tar::Builder refuses `..` in names: write it into the header itself.
    let name = b"../../etc/cron.d/evil";
    entry[..100].fill(0);
    entry[..name.len()].copy_from_slice(name);
    let mut raw = [0u8; 512];
    raw.copy_from_slice(&entry[..512]);
    let mut header = tar::Header::from_byte_slice(&raw).clone();
    header.set_cksum();
    entry[..512].copy_from_slice(header.as_bytes());
    let mut tampered = bytes[..end].to_vec();
    tampered.extend_from_slice(&entry);
    tampered.extend_from_slice(&bytes[end..]);
    let tar_slip = dir.join("tar-slip-added-after-import.tender");
    fs::write(&tar_slip, tampered).unwrap();

    vec![
        ("bit flip", bit_flip),
        ("truncated", truncated),
        ("tar-slip added after import", tar_slip),
    ]
}

/// A re-import reads only the manifest and signatures, so a damaged copy
/// of the current bundle is still "already imported" (and says it was not
/// re-read); `--check` reads every byte, names the damage, exits 3, and
/// changes nothing at the site but its audit line.
#[test]
fn a_damaged_copy_of_an_imported_bundle_is_caught_by_check_and_nothing_changes() {
    let site = Site::embedded();
    let bundle = site.bundles.seq1.clone();
    site.import_ok(&bundle);
    let check = |bundle: &Path| site.import_cmd(bundle, false).arg("--check").output();
    let unchanged = || {
        (
            site.site_json(),
            site.store_tree(),
            tree(&site.state.join("releases")),
            tree(&site.state.join("staging")),
        )
    };
    let before = unchanged();

    // The genuine stick checks clean.
    let o = check(&bundle);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("CHECKED"), "{}", stdout(&o));
    assert!(stdout(&o).contains("already imported"), "{}", stdout(&o));

    let mut audited = 2;
    for (attack, copy) in hostile_copies(&bundle, site.ws.path()) {
        let o = site.import(&copy);
        assert_exit(&o, 0);
        assert!(
            stdout(&o).contains("not re-read"),
            "{attack}: {}",
            stdout(&o)
        );

        let o = check(&copy);
        assert_exit(&o, 3);
        let err = stderr(&o);
        let named = match attack {
            "bit flip" => err.contains("digest"),
            "truncated" => err.contains("truncated"),
            _ => err.contains("../../etc/cron.d/evil"),
        };
        assert!(named, "{attack}: the damage is not named: {err}");
        assert_eq!(unchanged(), before, "{attack} changed the site");
        audited += 2;
        let audit = site.audit();
        assert_eq!(audit.len(), audited, "{attack}");
        assert_eq!(audit[audited - 1]["action"], "check");
        let result = audit[audited - 1]["result"].as_str().unwrap();
        assert!(result.starts_with("refused: "), "{attack}: {result}");
    }
    site.assert_audit_intact(audited);

    // A bundle not yet imported: checked, "would import", still nothing
    // changed.
    let o = site
        .import_cmd(&site.bundles.seq2, true)
        .arg("--check")
        .ok();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["status"], "would import");
    assert!(report["entries"].as_u64().unwrap() > 2);
    assert_eq!(unchanged(), before);
}

#[test]
fn an_older_sequence_is_refused() {
    let site = Site::embedded();
    let first = site.bundles.seq1.clone();
    let second = site.bundles.seq2.clone();
    assert_eq!(inspect_json(&first)["manifest"]["sequence"], 1);
    assert_eq!(inspect_json(&second)["manifest"]["sequence"], 2);

    assert_eq!(site.import_ok(&second)["sequence"], 2);
    let before = site.site_json().unwrap();
    let store = site.store_tree();

    let o = site.import(&first);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("not newer"), "{}", stderr(&o));
    assert_eq!(site.site_json().unwrap(), before);
    assert_eq!(site.store_tree(), store);
    assert_eq!(site.site_state()["channels"]["stable"]["sequence"], 2);

    let audit = site.audit();
    assert_eq!(audit.len(), 2);
    let result = audit[1]["result"].as_str().unwrap();
    assert!(
        result.starts_with("refused") && result.contains("not newer"),
        "{result}"
    );
    assert_eq!(audit[1]["sequence"], 1);
    site.assert_audit_intact(2);
}

#[test]
fn a_bundle_for_another_site_is_refused() {
    let site = Site::embedded();
    let bundle = site.bundles.seq1.clone();
    let other = write_site_file(&site.ws, "other.yaml", "plant-999", &["plant-999-line"], "");

    let o = site
        .ws
        .tender()
        .arg("import")
        .arg(&bundle)
        .arg("--site")
        .arg(&other)
        .arg("--no-progress")
        .expect_exit(3);
    assert!(
        stderr(&o).contains("bundle is for site(s) plant-001, plant-002, this is plant-999"),
        "{}",
        stderr(&o)
    );
    assert!(!site.store().exists(), "nothing may reach the store");
    assert!(site.site_json().is_none());
    assert_eq!(
        fs::read_dir(site.state.join("staging")).unwrap().count(),
        0,
        "nothing staged"
    );
    let audit = site.audit();
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0]["result"]
            .as_str()
            .unwrap()
            .starts_with("refused: bundle is for site(s)")
    );
}

#[test]
fn a_flipped_bit_is_refused_and_nothing_changes() {
    let site = Site::embedded();
    let first = site.bundles.seq1.clone();
    let second = site.bundles.seq2.clone();

    // Into an empty site.
    let bad = site.ws.join("bad1.tender");
    flip_last_blob(&first, &bad);
    let o = site.import(&bad);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("REJECTED"), "{}", stderr(&o));
    assert!(site.site_json().is_none());
    assert!(site.store_tree().is_empty(), "{:?}", site.store_tree());

    // Into a site holding sequence 1: the new images never appear.
    site.import_ok(&first);
    let before = site.site_json().unwrap();
    let store = site.store_tree();
    let bad = site.ws.join("bad2.tender");
    flip_last_blob(&second, &bad);
    let o = site.import(&bad);
    assert_exit(&o, 3);
    assert_eq!(site.site_json().unwrap(), before);
    assert_eq!(site.store_tree(), store);
    assert_store_blobs_intact(&site.store());

    let audit = site.audit();
    let results: Vec<&str> = audit
        .iter()
        .map(|a| a["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 3, "{results:?}");
    assert!(results[0].starts_with("refused"), "{results:?}");
    assert_eq!(results[1], "imported");
    assert!(results[2].starts_with("refused"), "{results:?}");
    site.assert_audit_intact(3);

    // The genuine bundle still goes in.
    assert_eq!(site.import_ok(&second)["outcome"], "imported");
    assert_store_holds(
        &site.store(),
        &expected_images(&second, &site.bundles.seq2_layout()),
    );
}

/// Kills an import at `failpoint`, first into an empty site and then over
/// an earlier release, and resumes each without the failpoint.
fn kill_and_resume(failpoint: &str) {
    let site = Site::embedded();
    let first = site.bundles.seq1.clone();
    let second = site.bundles.seq2.clone();

    // 1. The first import dies: there is no site state yet.
    site.import_killed_at(&first, failpoint);
    assert!(site.site_json().is_none(), "{failpoint}: nothing committed");
    let staging = site
        .state
        .join("staging")
        .join(&inspect_json(&first)["manifest_digest"].as_str().unwrap()["sha256:".len()..]);
    assert!(staging.join(".complete").is_file(), "{failpoint}");

    // A staged file damaged while nobody watched: the rerun must re-hash
    // staging instead of trusting it, and read the bundle again.
    let mut damaged = None;
    if failpoint == "staged" {
        let blob = fs::read_dir(staging.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .max_by_key(|p| fs::metadata(p).unwrap().len())
            .unwrap();
        let mut bytes = fs::read(&blob).unwrap();
        bytes[0] ^= 0xff;
        fs::write(&blob, bytes).unwrap();
        damaged = Some(blob.file_name().unwrap().to_owned());
    }

    let report = site.import_ok(&first);
    assert_eq!(report["outcome"], "imported", "{failpoint}");
    assert_eq!(report["sequence"], 1);
    let read = report["bytes_read"].as_u64().unwrap();
    if damaged.is_some() {
        assert!(
            read > 0,
            "a damaged staging must be read again from the bundle"
        );
    } else {
        assert_eq!(read, 0, "{failpoint}: a verified staging is resumed");
    }
    if let Some(name) = damaged {
        let stored = fs::read(site.store().join("blobs/sha256").join(&name)).unwrap();
        assert_eq!(sha256_digest(&stored), format!("sha256:{}", name.display()));
    }
    assert_store_holds(&site.store(), &expected_images(&first, &sample_layout()));
    assert_eq!(site.site_state()["channels"]["stable"]["sequence"], 1);
    assert!(!staging.exists(), "staging is removed after the commit");

    // 2. The next release dies: sequence 1 stays the visible one.
    let before = site.site_json().unwrap();
    site.import_killed_at(&second, failpoint);
    assert_eq!(site.site_json().unwrap(), before, "{failpoint}");
    assert_store_holds(&site.store(), &expected_images(&first, &sample_layout()));

    let report = site.import_ok(&second);
    assert_eq!(report["outcome"], "imported", "{failpoint}");
    assert_eq!(report["bytes_read"], 0, "{failpoint}");
    let state = site.site_state();
    assert_eq!(state["channels"]["stable"]["sequence"], 2);
    for cluster in CLUSTERS {
        assert_eq!(state["current"][cluster]["sequence"], 2);
    }
    assert_store_holds(
        &site.store(),
        &expected_images(&second, &site.bundles.seq2_layout()),
    );

    // A run killed before it changed anything leaves no audit entry; one
    // killed later is audited by the next run, as interrupted (nothing was
    // committed). Never a broken chain.
    let results: Vec<String> = site
        .audit()
        .iter()
        .map(|a| a["result"].as_str().unwrap().to_string())
        .collect();
    if failpoint == "staged" {
        assert_eq!(results, ["imported", "imported"]);
    } else {
        assert_eq!(results.len(), 4, "{failpoint}: {results:?}");
        for (i, result) in results.iter().enumerate() {
            match i % 2 {
                0 => assert!(
                    result.starts_with("interrupted before its commit"),
                    "{failpoint}: {results:?}"
                ),
                _ => assert_eq!(result, "imported", "{failpoint}: {results:?}"),
            }
        }
    }
    site.assert_audit_intact(results.len());
}

#[test]
fn killed_after_staging_resumes() {
    kill_and_resume("staged");
}

#[test]
fn killed_mid_load_resumes() {
    kill_and_resume("mid-load");
}

#[test]
fn killed_after_loading_resumes() {
    kill_and_resume("loaded");
}

#[test]
fn killed_after_recording_resumes() {
    kill_and_resume("recorded");
}

#[test]
fn an_import_killed_after_its_commit_is_audited_by_the_next_run() {
    let site = Site::embedded();
    let (first, second) = (site.bundles.seq1.clone(), site.bundles.seq2.clone());
    site.import_killed_at(&first, "committed");
    // Committed, not yet audited: verify says so, without calling it
    // tampering.
    assert_eq!(site.site_state()["channels"]["stable"]["sequence"], 1);
    assert!(site.audit().is_empty());
    let o = site.audit_verify();
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("pending: import of"), "{}", stdout(&o));

    assert_eq!(site.import_ok(&second)["outcome"], "imported");
    let audit = site.audit();
    let results: Vec<&str> = audit
        .iter()
        .map(|a| a["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(
        results[0].starts_with("imported (audited late"),
        "{results:?}"
    );
    assert_eq!(audit[0]["sequence"], 1);
    assert_eq!(results[1], "imported");
    site.assert_audit_intact(2);
    assert!(!stdout(&site.audit_verify()).contains("pending"));
}

#[test]
fn registry_errors_are_retried() {
    let registry = Registry::start();
    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(500, 3)
            .path_contains("/blobs/uploads")
            .method("PUT"),
    );
    let site = Site::with(&format!(
        "registry: {{url: \"{}\", plainHttp: true, prefix: site}}\n",
        proxy.host()
    ));
    let bundle = site.bundles.seq1.clone();
    let expected = expected_images(&bundle, &sample_layout());

    let o = site.import(&bundle);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("IMPORTED"), "{}", stdout(&o));
    assert_eq!(proxy.failed_count(), 3);
    let err = stderr(&o);
    let retries = err.lines().filter(|l| l.starts_with("retry ")).count();
    assert_eq!(retries, 3, "one retry line per failed request:\n{err}");
    assert!(err.contains("500"), "{err}");

    for (reference, digest) in &expected {
        let image = format!("docker://{}/site/{reference}", registry.host());
        assert_eq!(&skopeo_inspect_digest(&image, &[]), digest, "{image}");
    }
    site.assert_audit_intact(1);
}

/// A tmpfs mounted on a temp dir, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            o.status.success(),
            "mounting a {size} tmpfs failed; this test needs root (CAP_SYS_ADMIN) to simulate a full disk: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs { dir }
    }

    fn grow(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .output()
            .expect("run mount");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_cleanly_and_the_import_resumes() {
    let disk = Tmpfs::mount("64k");
    let site = Site::with(&format!("stateDir: {}\n", disk.path().display()));
    let bundle = site.bundles.seq1.clone();
    assert!(fs::metadata(&bundle).unwrap().len() > 64 * 1024);

    let o = site.import(&bundle);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(err.contains("No space left on device"), "{err}");
    // The import's own failure is reported, not the audit write that
    // failed after it for the same reason. Which entry meets the full disk
    // first depends on the parallel writers, so any named entry will do.
    assert!(err.contains("storing "), "the failing step is named: {err}");
    assert!(!err.contains("audit log"), "{err}");
    assert!(site.site_json().is_none());
    assert!(!site.store().join("index.json").exists());

    disk.grow("16m");
    let report = site.import_ok(&bundle);
    assert_eq!(report["outcome"], "imported");
    assert_store_holds(&site.store(), &expected_images(&bundle, &sample_layout()));
    assert_eq!(site.site_state()["channels"]["stable"]["sequence"], 1);
    let o = site.audit_verify();
    assert_exit(&o, 0);
}

#[test]
fn an_edited_audit_line_is_detected_and_never_extended() {
    let site = Site::embedded();
    let first = site.bundles.seq1.clone();
    let second = site.bundles.seq2.clone();
    site.import_ok(&first);
    assert_exit(&site.import(&first), 0);
    site.import_ok(&second);
    site.assert_audit_intact(3);

    // Someone rewrites who did the second import.
    let text = site.audit_text();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains(r#""operator":"tester""#));
    let edited = format!(
        "{}\n{}\n{}\n",
        lines[0],
        lines[1].replace(r#""operator":"tester""#, r#""operator":"someone-else""#),
        lines[2]
    );
    fs::write(site.state.join("audit.jsonl"), &edited).unwrap();

    let o = site.audit_verify();
    assert_exit(&o, 3);
    assert!(
        stdout(&o).contains("AUDIT CHAIN BROKEN: line 2 was changed after it was written"),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    let o = site.at_site(&["audit", "verify", "--json"]).expect_exit(3);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["broken_at"], 2);
    assert_eq!(report["entries"], 1);

    // A further import refuses to build on the broken chain, and changes
    // nothing: no new release, no store change, no line appended.
    let third = site.bundles.seq3.clone();
    let before = site.site_json().unwrap();
    let store = site.store_tree();
    let o = site.import(&third);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("broken audit chain"), "{}", stderr(&o));
    assert_eq!(site.site_json().unwrap(), before, "nothing committed");
    assert_eq!(site.site_state()["channels"]["stable"]["sequence"], 2);
    assert_eq!(site.store_tree(), store);
    assert_eq!(
        site.audit_text(),
        edited,
        "the broken chain is not extended"
    );
    assert!(
        fs::read_dir(site.state.join("staging"))
            .unwrap()
            .next()
            .is_none(),
        "nothing staged"
    );
}
