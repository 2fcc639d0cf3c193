//! Delivery end to end through the `tender` binary: a bundle exported from
//! the sample fleet is imported at a site whose site file hands each
//! cluster's manifests to an OCI artifact (a real registry, or the embedded
//! store), a bare git repository or a directory; what arrives is read back
//! with skopeo, tar and git. Then rollback, receipts at the hub, and
//! objects a release drops (reported, never deleted).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::Value;
use tender_test_support::{Registry, repo_root, sha256_digest, skopeo, skopeo_copy};
use tender_trust::PublicKey;

use crate::util::{
    TestCommand, Workspace, assert_exit, copy_tree, export_fleet, inspect_json, sample_fleet,
    stderr, stdout, tender, tree, write_site_file,
};

const SITE: &str = "plant-001";
const LINE_A: &str = "plant-001-line-a";
const LINE_B: &str = "plant-001-line-b";
const SOURCE_HOST: &str = "registry.plant.example/";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const FLUX_CONFIG: &str = "application/vnd.cncf.flux.config.v1+json";
const FLUX_CONTENT: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const ARGO_ARTIFACT_TYPE: &str = "application/vnd.tender.manifests.v1";

/// One file per object of line-a's release in the sample fleet (helm's
/// line-hmi, the canary historian overlay, the raw plant policies).
const LINE_A_FILES: [&str; 9] = [
    "configmap-line-a-historian-config.yaml",
    "configmap-line-a-line-hmi-config.yaml",
    "cronjob-plant-ops-plc-backup.yaml",
    "deployment-line-a-line-hmi.yaml",
    "namespace-plant-ops.yaml",
    "networkpolicy-plant-ops-plc-egress-only.yaml",
    "service-line-a-historian.yaml",
    "service-line-a-line-hmi.yaml",
    "statefulset-line-a-historian.yaml",
];

/// The raw `manifests` source's objects for line-a: what seq 3 drops.
const LINE_A_POLICY_FILES: [&str; 3] = [
    "cronjob-plant-ops-plc-backup.yaml",
    "namespace-plant-ops.yaml",
    "networkpolicy-plant-ops-plc-egress-only.yaml",
];

/// `namespace-plant-ops.yaml` for line-a, byte for byte: the raw manifest
/// with `${SITE}` and `${CLUSTER_NAME}` substituted, keys sorted.
const LINE_A_NAMESPACE: &str = "apiVersion: v1
kind: Namespace
metadata:
  labels:
    plant.example/cluster: plant-001-line-a
    plant.example/site: plant-001
    pod-security.kubernetes.io/enforce: restricted
  name: plant-ops
";

/// Bundles exported once from one hub state and shared, read only, by the
/// tests alive at the time; the directory goes when the last drops it.
struct Bundles {
    hub: Workspace,
    /// The sample fleet, sequence 1.
    seq1: PathBuf,
    /// line-hmi with `replicaCount: 3` instead of 2, sequence 2.
    seq2: PathBuf,
    /// The raw `plant-policies` source no longer selects line-a, sequence 3.
    seq3: PathBuf,
}

impl Bundles {
    fn shared() -> Arc<Bundles> {
        static SHARED: Mutex<Weak<Bundles>> = Mutex::new(Weak::new());
        crate::util::shared_fixture(&SHARED, || {
            let hub = Workspace::new();
            let replicas = edited_fleet(
                &hub,
                "fleet-replicas",
                "inline: { replicaCount: 2,",
                "inline: { replicaCount: 3,",
            );
            let no_policies = edited_fleet(
                &hub,
                "fleet-no-policies",
                "select: { clusters: [plant-001-line-a, plant-001-line-b] }",
                "select: { clusters: [plant-001-line-b] }",
            );
            let bundles = Bundles {
                seq1: export_fleet(&hub, &sample_fleet(), "seq1.tender"),
                seq2: export_fleet(&hub, &replicas, "seq2.tender"),
                seq3: export_fleet(&hub, &no_policies, "seq3.tender"),
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

    /// The id of the key the bundles are signed with.
    fn signer_key_id(&self) -> String {
        PublicKey::read(&self.hub.join("hub.pub"))
            .unwrap()
            .id()
            .to_string()
    }
}

/// A copy of `testdata/fleet` in `ws/name` whose `fleet.yaml` has `from`
/// replaced by `to` (which must occur exactly once).
fn edited_fleet(ws: &Workspace, name: &str, from: &str, to: &str) -> PathBuf {
    let dir = ws.join(name);
    copy_tree(&repo_root().join("testdata/fleet"), &dir);
    let file = dir.join("fleet.yaml");
    let text = fs::read_to_string(&file).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} in fleet.yaml");
    fs::write(&file, text.replace(from, to)).unwrap();
    file
}

/// A workspace trusting the shared bundles' hub key, with a site file.
struct Site {
    ws: Workspace,
    file: PathBuf,
    bundles: Arc<Bundles>,
}

impl Site {
    /// Site `name` with `clusters`; `extra` goes into the site file as is.
    fn new(name: &str, clusters: &[&str], extra: &str) -> Site {
        let bundles = Bundles::shared();
        let ws = Workspace::new();
        fs::copy(bundles.hub.join("hub.pub"), ws.join("hub.pub")).unwrap();
        let file = write_site_file(&ws, "site.yaml", name, clusters, extra);
        Site { ws, file, bundles }
    }

    /// plant-001 with both of its clusters.
    fn plant_001(extra: &str) -> Site {
        Site::new(SITE, &[LINE_A, LINE_B], extra)
    }

    /// `tender ARGS --site FILE` in the site's workspace.
    fn at_site(&self, args: &[&str]) -> TestCommand {
        let mut cmd = self.ws.tender();
        cmd.args(args).arg("--site").arg(&self.file);
        cmd
    }

    fn state(&self) -> PathBuf {
        self.ws.join("state")
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
        cmd.env_remove("TENDER_FAILPOINT");
        cmd
    }

    /// Imports, asserting success; returns the human report.
    fn import_ok(&self, bundle: &Path) -> String {
        let o = self.import_cmd(bundle, false).ok();
        assert!(
            stdout(&o).starts_with("IMPORTED "),
            "{}\n{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// Imports with `--json`, asserting success; returns the report.
    fn import_json(&self, bundle: &Path) -> Value {
        let o = self.import_cmd(bundle, true).ok();
        serde_json::from_slice(&o.stdout).expect("import --json prints JSON")
    }

    /// `tender releases --json`.
    fn releases(&self) -> Value {
        let o = self.at_site(&["releases", "--json"]).ok();
        serde_json::from_slice(&o.stdout).expect("releases --json prints JSON")
    }

    /// The cluster's current release record.
    fn current(&self, cluster: &str) -> Value {
        let releases = self.releases();
        let record = releases["current"][cluster].clone();
        assert!(record.is_object(), "no current release for {cluster}");
        record
    }

    /// The manifest set the cluster's current release delivered (images
    /// pinned), from the state directory.
    fn delivered_set(&self, cluster: &str) -> String {
        let record = self.current(cluster);
        let digest = record["delivered"]
            .as_str()
            .or(record["manifests"].as_str())
            .unwrap();
        let hex = digest.strip_prefix("sha256:").unwrap();
        let text = fs::read_to_string(self.state().join("manifests/sha256").join(hex)).unwrap();
        assert_eq!(sha256_digest(text.as_bytes()), digest);
        text
    }

    fn audit(&self) -> Vec<Value> {
        fs::read_to_string(self.state().join("audit.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    #[track_caller]
    fn assert_audit_intact(&self, entries: usize) {
        let o = self.at_site(&["audit", "verify"]).ok();
        assert!(
            stdout(&o).contains(&format!("audit chain intact: {entries} entries")),
            "{}",
            stdout(&o)
        );
    }

    /// Digest of what `name` (`host/repository:tag`) points at in the
    /// embedded store.
    fn store_digest(&self, name: &str) -> String {
        let store = self.state().join("store");
        sha256_digest(&skopeo_raw(&format!("oci:{}:{name}", store.display())))
    }
}

/// `skopeo inspect --raw` (TLS verification off: the test registries and
/// the sites speak plain HTTP), asserting success.
fn skopeo_raw(reference: &str) -> Vec<u8> {
    let o = skopeo(&["inspect", "--raw", "--tls-verify=false", reference]);
    assert!(
        o.status.success(),
        "skopeo inspect --raw {reference}: {}",
        stderr(&o)
    );
    o.stdout
}

/// The documents of a canonical manifest set (`---` before each).
fn documents(set: &str) -> Vec<String> {
    let mut docs: Vec<String> = set
        .split("---\n")
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    docs.sort();
    docs
}

/// Every file of `dir` (flat), name → contents.
fn read_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            assert!(e.file_type().unwrap().is_file(), "{}", e.path().display());
            (
                e.file_name().into_string().unwrap(),
                fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Asserts the files are exactly the documents of the delivered set, one
/// object per file.
#[track_caller]
fn assert_files_are_the_set(files: &[(String, String)], set: &str) {
    let mut contents: Vec<String> = files.iter().map(|(_, c)| c.clone()).collect();
    contents.sort();
    assert_eq!(contents, documents(set));
}

/// Every `image:` value in a YAML text (plain, quoted or folded `>-`).
fn images_in(yaml: &str) -> Vec<String> {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let key = line.trim_start().trim_start_matches("- ");
        let Some(value) = key.strip_prefix("image:") else {
            continue;
        };
        let value = match value.trim() {
            ">-" | ">" | "|-" | "|" => lines[i + 1].trim(),
            v => v,
        };
        out.push(value.trim_matches(['"', '\'']).to_string());
    }
    out
}

/// Every image in `files` is `HOST/registry.plant.example/<path>:<tag>@sha256:...`
/// (the site repository keeps the source registry), pinned to the digest
/// the release signed for `registry.plant.example/<path>:<tag>`.
/// Returns the pinned references, deduplicated.
#[track_caller]
fn assert_images_pinned(files: &[(String, String)], host: &str, record: &Value) -> Vec<String> {
    let mut pinned = BTreeSet::new();
    for (name, text) in files {
        for image in images_in(text) {
            let (named, digest) = image
                .split_once("@sha256:")
                .unwrap_or_else(|| panic!("{name}: {image} is not pinned by digest"));
            let path = named
                .strip_prefix(&format!("{host}/{SOURCE_HOST}"))
                .unwrap_or_else(|| panic!("{name}: {image} is not on {host}"));
            let signed = record["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["reference"] == format!("{SOURCE_HOST}{path}"))
                .unwrap_or_else(|| panic!("{name}: {image} is not one of the release's images"));
            assert_eq!(
                signed["digest"],
                format!("sha256:{digest}"),
                "{name}: {image}"
            );
            pinned.insert(image.clone());
        }
    }
    assert!(
        pinned.len() >= 2,
        "the sample's line manifests name at least two images: {pinned:?}"
    );
    pinned.into_iter().collect()
}

/// Copies the artifact `docker://<reference>` into an OCI layout with
/// skopeo, checks the copy kept the manifest byte for byte, and unpacks
/// its one layer with tar into `into`.
fn pull_and_unpack(reference: &str, work: &Path, into: &Path) {
    let layout = work.join("pulled");
    let _ = fs::remove_dir_all(&layout);
    skopeo_copy(
        &format!("docker://{reference}"),
        &format!("oci:{}:artifact", layout.display()),
    );
    let index: Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let blob = |digest: &str| layout.join("blobs/sha256").join(&digest["sha256:".len()..]);
    let manifest_bytes = fs::read(blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    assert_eq!(
        manifest_bytes,
        skopeo_raw(&format!("docker://{reference}")),
        "skopeo copy changed the artifact manifest"
    );
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let layer = blob(manifest["layers"][0]["digest"].as_str().unwrap());
    fs::create_dir_all(into).unwrap();
    let o = Command::new("tar")
        .arg("-xzf")
        .arg(&layer)
        .arg("-C")
        .arg(into)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "tar -xzf: {}", stderr(&o));
}

/// Runs `cmd`, killing it if it has not finished within `limit` (a hang
/// guard: a command that hangs fails the test instead of stalling CI).
fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                stdout(&o),
                stderr(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Flux pulls an OCI artifact from the site registry: the manifest, config
/// and layer are what `flux push artifact` makes, the layer holds the
/// cluster's objects one per file, and every image they name is pinned to
/// a digest the registry serves. line-b's Argo-mode artifact has the layer
/// type Argo CD's repo-server accepts by default.
#[test]
fn flux_artifact_in_a_real_registry() {
    let registry = Registry::start();
    let host = registry.host();
    let site = Site::plant_001(&format!(
        "registry: {{url: \"{host}\", plainHttp: true}}
delivery:
  {LINE_A}:
    oci: {{repository: gitops/{LINE_A}}}
  {LINE_B}:
    oci: {{repository: gitops/{LINE_B}, mode: argo}}
"
    ));
    let bundle = &site.bundles.seq1;
    let out = site.import_ok(bundle);
    for cluster in [LINE_A, LINE_B] {
        assert!(
            out.contains(&format!(
                "publish   {cluster} → oci://{host}/gitops/{cluster}@sha256:"
            )),
            "{out}"
        );
    }
    let created = inspect_json(bundle)["manifest"]["created"].clone();

    // Flux mode, line-a.
    let record = site.current(LINE_A);
    let stable = format!("{host}/gitops/{LINE_A}:stable");
    let raw = skopeo_raw(&format!("docker://{stable}"));
    let m: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(m["schemaVersion"], 2);
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert!(m.get("artifactType").is_none(), "{m}");
    assert_eq!(m["config"]["mediaType"], FLUX_CONFIG);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], FLUX_CONTENT);
    let ann = &m["annotations"];
    assert_eq!(
        ann["org.opencontainers.image.source"],
        format!("tender://{SITE}/{LINE_A}")
    );
    assert_eq!(
        ann["org.opencontainers.image.revision"],
        format!("seq-1@{}", record["manifests"].as_str().unwrap())
    );
    assert_eq!(ann["org.opencontainers.image.created"], created);
    assert_eq!(ann["dev.tender.sequence"], "1");
    assert_eq!(ann["dev.tender.bundle"], record["bundle_id"]);
    // The import reported the digest the tag now names; seq-1 names it too.
    let digest = sha256_digest(&raw);
    assert!(
        out.contains(&format!("oci://{host}/gitops/{LINE_A}@{digest}")),
        "{out}"
    );
    assert_eq!(
        sha256_digest(&skopeo_raw(&format!(
            "docker://{host}/gitops/{LINE_A}:seq-1"
        ))),
        digest
    );

    let unpacked = site.ws.join("line-a");
    pull_and_unpack(&stable, site.ws.path(), &unpacked);
    let files = read_files(&unpacked);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, LINE_A_FILES);
    assert_files_are_the_set(&files, &site.delivered_set(LINE_A));
    assert_eq!(
        files
            .iter()
            .find(|(n, _)| n == "namespace-plant-ops.yaml")
            .unwrap()
            .1,
        LINE_A_NAMESPACE
    );
    let pinned = assert_images_pinned(&files, &host, &record);
    for image in &pinned {
        let (named, digest) = image.split_once('@').unwrap();
        let (repository, _tag) = named.rsplit_once(':').unwrap();
        // By digest (what a node pulls) and by the tag the image came with.
        let by_digest = skopeo_raw(&format!("docker://{repository}@{digest}"));
        assert_eq!(sha256_digest(&by_digest), digest, "{image}");
        let by_tag = skopeo_raw(&format!("docker://{named}"));
        assert_eq!(sha256_digest(&by_tag), digest, "{image}");
    }

    // Argo mode, line-b.
    let record = site.current(LINE_B);
    let stable = format!("{host}/gitops/{LINE_B}:stable");
    let m: Value = serde_json::from_slice(&skopeo_raw(&format!("docker://{stable}"))).unwrap();
    assert_eq!(m["mediaType"], OCI_MANIFEST);
    assert_eq!(m["artifactType"], ARGO_ARTIFACT_TYPE);
    assert_eq!(m["config"]["mediaType"], OCI_EMPTY);
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1, "{m}");
    assert_eq!(layers[0]["mediaType"], OCI_LAYER_GZIP);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.source"],
        format!("tender://{SITE}/{LINE_B}")
    );
    skopeo_raw(&format!("docker://{host}/gitops/{LINE_B}:seq-1"));
    let unpacked = site.ws.join("line-b");
    pull_and_unpack(&stable, site.ws.path(), &unpacked);
    let files = read_files(&unpacked);
    assert_files_are_the_set(&files, &site.delivered_set(LINE_B));
    assert!(
        files
            .iter()
            .all(|(n, _)| !n.contains("line-a") && n.ends_with(".yaml")),
        "{files:?}"
    );
    assert_images_pinned(&files, &host, &record);
}

/// Git delivery into a bare repository, read back with the git CLI: one
/// commit whose message names the bundle, sequence and signer; one file
/// per object under the configured path, with the pinned contents.
#[test]
fn git_delivery_read_back_with_git() {
    let site = Site::plant_001(&format!(
        "registryHost: site.local:5000
delivery:
  {LINE_A}:
    git: {{repo: fleet.git, branch: line-a, path: clusters/line-a}}
"
    ));
    let repo = site.ws.join("fleet.git");
    let o = Command::new("git")
        .args(["init", "--quiet", "--bare"])
        .arg(&repo)
        .output()
        .expect("run git init");
    assert!(o.status.success(), "{}", stderr(&o));
    let git = |args: &[&str]| -> String {
        let o = Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(args)
            .output()
            .expect("run git");
        assert!(o.status.success(), "git {args:?}: {}", stderr(&o));
        stdout(&o)
    };

    let bundle = &site.bundles.seq1;
    let out = site.import_ok(bundle);
    let head = git(&["rev-parse", "line-a"]);
    assert!(
        out.contains(&format!("publish   {LINE_A} → git:")) && out.contains(head.trim()),
        "{out}\nhead {head}"
    );
    let bundle_id = inspect_json(bundle)["manifest"]["bundle_id"]
        .as_str()
        .unwrap()
        .to_string();
    let record = site.current(LINE_A);

    assert_eq!(git(&["rev-list", "--count", "line-a"]).trim(), "1");
    let message = git(&["log", "-1", "--format=%B", "line-a"]);
    for line in [
        format!("tender: stable sequence 1 (bundle {bundle_id})"),
        format!("Site: {SITE}"),
        format!("Cluster: {LINE_A}"),
        format!("Bundle: {bundle_id}"),
        format!("Manifest-Set: {}", record["manifests"].as_str().unwrap()),
        format!("Signed-By: {} (release, ", site.bundles.signer_key_id()),
    ] {
        assert!(message.contains(&line), "{line:?} not in:\n{message}");
    }
    let trailers = git(&[
        "log",
        "-1",
        "--format=%(trailers:key=Bundle,valueonly)",
        "line-a",
    ]);
    assert_eq!(trailers.trim(), bundle_id);

    // The whole branch is the path; one file per object in it.
    assert_eq!(
        git(&["ls-tree", "--name-only", "line-a"]).trim(),
        "clusters"
    );
    let listed = git(&["ls-tree", "--name-only", "line-a:clusters/line-a"]);
    let names: Vec<&str> = listed.lines().collect();
    assert_eq!(names, LINE_A_FILES);
    let files: Vec<(String, String)> = names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                git(&["show", &format!("line-a:clusters/line-a/{n}")]),
            )
        })
        .collect();
    assert_files_are_the_set(&files, &site.delivered_set(LINE_A));
    let file = |name: &str| files.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(file("namespace-plant-ops.yaml"), LINE_A_NAMESPACE);
    let deployment = file("deployment-line-a-line-hmi.yaml");
    assert!(deployment.contains("\n  replicas: 2\n"), "{deployment}");
    let gateway = record["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["reference"] == format!("{SOURCE_HOST}plant/opcua-gateway:1.4.2"))
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let pinned =
        format!("site.local:5000/registry.plant.example/plant/opcua-gateway:1.4.2@{gateway}");
    assert_eq!(images_in(&deployment), [pinned.clone(), pinned]);
    assert_images_pinned(&files, "site.local:5000", &record);

    // Importing the same bundle again delivers nothing new.
    let o = site.import_cmd(bundle, false).ok();
    assert!(stdout(&o).starts_with("ALREADY IMPORTED"), "{}", stdout(&o));
    assert_eq!(git(&["rev-parse", "line-a"]), head);
}

/// Sequence 2 changes line-a's manifests; a rollback to sequence 1 puts
/// sequence 1's files back in the directory and points the channel tag at
/// sequence 1's artifact again, within seconds, audited and receipted.
#[test]
fn rollback_republishes_the_earlier_manifest_digest() {
    let site = Site::plant_001(&format!(
        "registryHost: site.local:5000
siteKey: site.key
delivery:
  {LINE_A}:
    oci: {{repository: gitops/{LINE_A}}}
    directory: {{path: out/line-a}}
"
    ));
    assert_exit(&tender(&["keygen", "site"], site.ws.path()), 0);
    let dir = site.ws.join("out/line-a");
    let name = |tag: &str| format!("site.local:5000/gitops/{LINE_A}:{tag}");

    site.import_ok(&site.bundles.seq1);
    let files1 = read_files(&dir);
    let names: Vec<&str> = files1.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, LINE_A_FILES);
    let set1 = site.current(LINE_A)["manifests"].clone();
    let artifact1 = site.store_digest(&name("stable"));
    assert_eq!(site.store_digest(&name("seq-1")), artifact1);

    site.import_ok(&site.bundles.seq2);
    let files2 = read_files(&dir);
    assert_ne!(files2, files1, "sequence 2 changes line-a's manifests");
    let deployment = |files: &[(String, String)]| {
        files
            .iter()
            .find(|(n, _)| n == "deployment-line-a-line-hmi.yaml")
            .unwrap()
            .1
            .clone()
    };
    assert!(deployment(&files1).contains("\n  replicas: 2\n"));
    assert!(deployment(&files2).contains("\n  replicas: 3\n"));
    assert_ne!(site.current(LINE_A)["manifests"], set1);
    let artifact2 = site.store_digest(&name("stable"));
    assert_ne!(artifact2, artifact1);
    assert_eq!(site.store_digest(&name("seq-2")), artifact2);
    assert_eq!(site.store_digest(&name("seq-1")), artifact1);

    let mut cmd = site.at_site(&["rollback"]);
    cmd.args(["--cluster", LINE_A, "--to", "1", "--operator", "tester"])
        .stdin_from(Stdio::null());
    // A hang guard, not a timing assertion: rollback moves tags only.
    let o = output_within(cmd.into_command(), Duration::from_secs(60));
    assert_exit(&o, 0);
    assert!(
        stdout(&o).starts_with(&format!("ROLLED BACK {LINE_A} to sequence 1")),
        "{}",
        stdout(&o)
    );

    // The directory holds sequence 1's files again, byte for byte.
    assert_eq!(read_files(&dir), files1);
    // The agent's tag names sequence 1's artifact again: the same digest,
    // not a rebuild; the per-release tags did not move.
    assert_eq!(site.store_digest(&name("stable")), artifact1);
    assert_eq!(site.store_digest(&name("seq-1")), artifact1);
    assert_eq!(site.store_digest(&name("seq-2")), artifact2);

    let releases = site.releases();
    assert_eq!(releases["current"][LINE_A]["sequence"], 1);
    assert_eq!(releases["current"][LINE_A]["manifests"], set1);
    assert_eq!(releases["current"][LINE_B]["sequence"], 2);
    let kept: Vec<&Value> = releases["releases"][LINE_A]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["sequence"])
        .collect();
    assert_eq!(kept, [1, 2]);

    let audit = site.audit();
    assert_eq!(audit.len(), 3);
    let last = &audit[2];
    assert_eq!(last["action"], "rollback", "{last}");
    assert_eq!(last["result"], "rolled back", "{last}");
    assert_eq!(last["sequence"], 1, "{last}");
    assert_eq!(last["operator"], "tester", "{last}");
    assert_eq!(last["clusters"], serde_json::json!([LINE_A]), "{last}");
    site.assert_audit_intact(3);

    // The rollback's receipt states what the site now runs.
    let err = stderr(&o);
    let path = err
        .lines()
        .find_map(|l| l.strip_prefix("receipt for the hub: "))
        .unwrap_or_else(|| panic!("no receipt reported:\n{err}"));
    let path = site.ws.path().join(path.trim());
    assert!(
        path.starts_with(site.state().join("receipts"))
            && path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with("-rollback-1.receipt.json")),
        "{}",
        path.display()
    );
    let receipt: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let r = &receipt["receipt"];
    assert_eq!(r["action"], "rollback");
    assert_eq!(r["site"], SITE);
    assert_eq!(r["sequence"], 1);
    let running: Vec<(String, u64)> = r["releases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["cluster"].as_str().unwrap().to_string(),
                e["sequence"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(running, [(LINE_A.to_string(), 1), (LINE_B.to_string(), 2)]);
    assert_eq!(
        fs::read_dir(site.state().join("receipts")).unwrap().count(),
        3,
        "two imports and the rollback"
    );
}

/// The hub trusts a site's receipt only with the site's registered key and
/// only as signed: a real import's receipt is recorded, an edited one and
/// one from a site the hub does not know are refused (exit 3).
#[test]
fn receipts_from_an_import_reach_the_hub() {
    let site = Site::plant_001("siteKey: site.key\n");
    let d = site.ws.path();
    assert_exit(&tender(&["keygen", "site"], d), 0);
    let report = site.import_json(&site.bundles.seq1);
    let receipt = PathBuf::from(report["receipt"].as_str().expect("a receipt was written"));
    assert!(receipt.is_file(), "{}", receipt.display());
    assert!(receipt.starts_with(site.state().join("receipts")));

    let hub = |args: &[&str]| {
        let mut all = vec!["hub"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--state-dir", "hub"]);
        tender(&all, d)
    };
    let status = || {
        let o = hub(&["status", "--json"]);
        assert_exit(&o, 0);
        serde_json::from_slice::<Value>(&o.stdout).unwrap()
    };
    assert_exit(&hub(&["add-site", SITE, "--key", "site.pub"]), 0);
    // The hub has exported sequence 1 of the channel.
    fs::create_dir_all(d.join("hub/sequences")).unwrap();
    fs::write(d.join("hub/sequences/stable"), "1\n").unwrap();

    let o = TestCommand::new(d)
        .args(["hub", "ingest"])
        .arg(&receipt)
        .args(["--state-dir", "hub"])
        .output();
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("recorded"), "{}", stdout(&o));
    let json = status();
    let sites = json["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1, "{json}");
    assert_eq!(sites[0]["site"], SITE);
    assert_eq!(sites[0]["last_action"], "import");
    assert_eq!(sites[0]["last_sequence"], 1);
    let clusters: Vec<(&str, &Value, &Value, &Value)> = sites[0]["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap(),
                &c["sequence"],
                &c["bundle_id"],
                &c["state"],
            )
        })
        .collect();
    let id = &report["bundle_id"];
    let current = Value::from("current");
    let one = Value::from(1);
    assert_eq!(
        clusters,
        [(LINE_A, &one, id, &current), (LINE_B, &one, id, &current)]
    );

    // The same receipt with its sequence edited: the signature no longer
    // matches, and the hub's record stays as it was.
    let mut edited: Value = serde_json::from_slice(&fs::read(&receipt).unwrap()).unwrap();
    edited["receipt"]["sequence"] = 2.into();
    for entry in edited["receipt"]["releases"].as_array_mut().unwrap() {
        entry["sequence"] = 2.into();
    }
    fs::write(d.join("edited.json"), serde_json::to_vec(&edited).unwrap()).unwrap();
    let before = status();
    let o = hub(&["ingest", "edited.json"]);
    assert_exit(&o, 3);
    let out = stdout(&o);
    assert!(
        out.starts_with("REFUSED") && out.contains("signature") && out.contains("tampered"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("1 of 1 receipt(s) refused"),
        "{}",
        stderr(&o)
    );
    let after = status();
    assert_eq!(after["sites"], before["sites"]);

    // A genuine receipt from plant-002, which the hub never registered.
    let other = Site::new("plant-002", &["plant-002-assembly"], "siteKey: site.key\n");
    assert_exit(&tender(&["keygen", "site"], other.ws.path()), 0);
    let report = other.import_json(&other.bundles.seq1);
    let foreign = report["receipt"].as_str().expect("a receipt was written");
    let o = hub(&["ingest", foreign]);
    assert_exit(&o, 3);
    assert!(
        stdout(&o).contains("receipt is from site plant-002, which is not registered at this hub"),
        "{}",
        stdout(&o)
    );
    assert_eq!(status()["sites"], before["sites"]);
}

/// A release that drops objects: the import names each one as removed and
/// deletes nothing (no kubectl runs at all); the directory, which tender
/// owns, holds exactly the new set.
#[test]
fn removed_objects_are_reported_never_deleted() {
    let site = Site::plant_001(&format!(
        "delivery:
  {LINE_A}:
    directory: {{path: out/line-a}}
"
    ));
    // A kubectl on PATH that records any call: none may happen.
    let bin = site.ws.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let log = site.ws.join("kubectl.log");
    let shim = bin.join("kubectl");
    fs::write(
        &shim,
        format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 0\n", log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let import = |bundle: &Path| {
        let o = site.import_cmd(bundle, false).env("PATH", &path).ok();
        stdout(&o)
    };

    let dir = site.ws.join("out/line-a");
    let out = import(&site.bundles.seq1);
    assert!(!out.contains("removed"), "{out}");
    let names: Vec<String> = read_files(&dir).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, LINE_A_FILES);

    let out = import(&site.bundles.seq3);
    let removed: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("removed"))
        .collect();
    assert_eq!(
        removed,
        [
            format!(
                "  removed   {LINE_A} no longer has /Namespace /plant-ops (not deleted: tender never prunes)"
            ),
            format!(
                "  removed   {LINE_A} no longer has networking.k8s.io/NetworkPolicy plant-ops/plc-egress-only (not deleted: tender never prunes)"
            ),
            format!(
                "  removed   {LINE_A} no longer has batch/CronJob plant-ops/plc-backup (not deleted: tender never prunes)"
            ),
        ],
        "{out}"
    );
    // line-b still has the policies: nothing reported for it.
    assert!(!out.contains(&format!("removed   {LINE_B}")), "{out}");

    let files = read_files(&dir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let expected: Vec<&str> = LINE_A_FILES
        .into_iter()
        .filter(|n| !LINE_A_POLICY_FILES.contains(n))
        .collect();
    assert_eq!(names, expected);
    assert_files_are_the_set(&files, &site.delivered_set(LINE_A));
    assert_eq!(site.current(LINE_A)["sequence"], 3);
    assert!(!log.exists(), "kubectl ran: {:?}", fs::read_to_string(&log));
    // Nothing left beside the directory (no half-swapped copies).
    assert_eq!(tree(&site.ws.join("out")).len(), 1 + expected.len());
}
