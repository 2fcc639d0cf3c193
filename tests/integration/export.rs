//! `tender export` end to end, with real tools only: Helm's engine (the
//! `scripts/helm` shim), `kubectl kustomize`, a real `docker-registry`,
//! skopeo, GNU tar, and the fault-injecting proxy for registry failures.
//!
//! Every test has its own workspace (keys, policy, hub state, docker config)
//! and its own registry, so they run in parallel.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tender_render::manifest_set;
use tender_render::substitute::substitute;
use tender_test_support::{
    Fault, FaultyProxy, Registry, helm_shim, repo_root, sha256_digest, skopeo_inspect_digest,
};

use crate::util::{
    SAMPLE_REGISTRY, TestCommand, Workspace, assert_exit, copy_tree, push_sample_images, stderr,
    stdout, untar,
};

const GATEWAY: &str = "registry.plant.example/plant/opcua-gateway:1.4.2";
const HISTORIAN: &str = "registry.plant.example/plant/historian:2.1.0";
const DIAG: &str = "registry.plant.example/plant/diag-tools:1.0.0";
/// Renders one cluster only (half the helm and kustomize runs), which still
/// uses all three sample images: for tests about pulling, not rendering.
const ONE_CLUSTER: [&str; 2] = ["--cluster", "plant-002-assembly"];

/// A hub: a workspace with the `hub` release key and a policy trusting it,
/// plus this hub's own state directory and an empty docker config.
struct Hub {
    ws: Workspace,
}

impl Hub {
    fn new() -> Hub {
        Hub {
            ws: Workspace::new(),
        }
    }

    fn path(&self) -> &Path {
        self.ws.path()
    }

    fn join(&self, p: &str) -> PathBuf {
        self.ws.join(p)
    }

    /// tender in the workspace with the hub's environment.
    fn cmd(&self) -> TestCommand {
        let mut cmd = self.ws.tender();
        cmd.env("TENDER_HUB_STATE", self.join("hub-state"))
            .env("TENDER_HELM", helm_shim())
            // No credentials from the machine running the tests.
            .env("DOCKER_CONFIG", self.join("docker-config"));
        cmd
    }

    /// `tender export FLEET -o OUT --key hub.key --no-progress --json EXTRA...`
    fn export(&self, fleet: &Path, out: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Output {
        self.cmd()
            .arg("export")
            .arg(fleet)
            .arg("-o")
            .arg(out)
            .args(["--key", "hub.key", "--no-progress", "--json"])
            .args(extra)
            .output()
    }

    fn inspect(&self, bundle: &Path) -> Value {
        let o = self.cmd().arg("inspect").arg(bundle).arg("--json").ok();
        serde_json::from_slice(&o.stdout).unwrap()
    }

    /// The hub state's last sequence on `stable`, if any export finished.
    fn last_sequence(&self) -> Option<String> {
        fs::read_to_string(self.join("hub-state/sequences/stable")).ok()
    }

    /// A copy of the whole sample fleet (charts, overlays, manifests, the
    /// image layout) in `dir`. With `mirrors`, everything from the
    /// `mirrors:` key on is replaced by that YAML.
    fn sample_fleet(&self, dir: &str, mirrors: Option<&str>) -> PathBuf {
        let root = self.join(dir);
        copy_tree(&repo_root().join("testdata/fleet"), &root);
        let path = root.join("fleet.yaml");
        if let Some(tail) = mirrors {
            let text = fs::read_to_string(&path).unwrap();
            let at = text
                .find("\nmirrors:")
                .expect("the sample fleet has mirrors");
            fs::write(&path, format!("{}\n{tail}", &text[..=at])).unwrap();
        }
        path
    }

    /// The sample fleet reading `registry.plant.example` from the plain-HTTP
    /// registry `host` only: its image layout is deleted.
    fn registry_fleet(&self, dir: &str, host: &str) -> PathBuf {
        let fleet = self.sample_fleet(dir, Some(&registry_mirror(host)));
        fs::remove_dir_all(fleet.parent().unwrap().join("images")).unwrap();
        fleet
    }
}

/// `mirrors` + `registries` YAML sending the sample registry to `host`.
fn registry_mirror(host: &str) -> String {
    format!(
        "mirrors:\n  {SAMPLE_REGISTRY}: \"{host}\"\nregistries:\n  \"{host}\": {{ plainHttp: true }}\n"
    )
}

/// `registry.plant.example/plant/x:1` → `docker://HOST/plant/x:1`.
fn in_registry(reference: &str, host: &str) -> String {
    let path = reference
        .strip_prefix(&format!("{SAMPLE_REGISTRY}/"))
        .unwrap_or_else(|| panic!("{reference} is not a sample image"));
    format!("docker://{host}/{path}")
}

/// The manifest of `reference` as the registry at `host` serves it.
fn registry_manifest(reference: &str, host: &str) -> Value {
    let o = tender_test_support::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &in_registry(reference, host),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// A layer of the historian image that no other sample image has, so a
/// fault on it hits exactly one image.
fn historian_only_layer(host: &str) -> String {
    let layers = |reference| -> Vec<String> {
        registry_manifest(reference, host)["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect()
    };
    let others: BTreeSet<String> = layers(GATEWAY).into_iter().chain(layers(DIAG)).collect();
    layers(HISTORIAN)
        .into_iter()
        .find(|l| !others.contains(l))
        .expect("historian has a layer of its own")
}

/// The stderr of a failed command: exactly one line, returned.
#[track_caller]
fn one_line_error(o: &Output) -> String {
    let err = stderr(o);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(lines.len(), 1, "want a one-line error, got:\n{err}");
    assert!(lines[0].starts_with("tender: error: "), "{err}");
    lines[0].to_string()
}

/// Every entry name in a directory (not recursive), sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

// --- 1. a real registry ------------------------------------------------------

#[test]
fn export_from_a_real_registry_pins_every_digest() {
    let hub = Hub::new();
    let registry = Registry::start();
    let host = registry.host();
    let pushed = push_sample_images(&host);
    assert_eq!(pushed.len(), 4, "three images and a cosign signature");
    let fleet = hub.registry_fleet("fleet", &host);

    let o = hub.export(&fleet, "out/fleet.tender", &[]);
    assert_exit(&o, 0);
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["sequence"], 1);
    assert_eq!(summary["channel"], "stable");
    assert_eq!(summary["clusters"], 3);
    assert_eq!(summary["images"], 3);
    assert_eq!(summary["signatures"], 1);
    let bundle = hub.join("out/fleet.tender");
    assert!(bundle.is_file());

    let o = hub
        .cmd()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "policy.yaml", "--json", "--no-progress"])
        .output();
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["sequence"], 1);
    assert_eq!(report["trust"]["signatures"][0]["status"], "valid");

    // Every digest the bundle pins is what the registry serves for the tag.
    let inspect = hub.inspect(&bundle);
    let releases = inspect["manifest"]["releases"].as_array().unwrap();
    let clusters: Vec<&str> = releases
        .iter()
        .map(|r| r["cluster"].as_str().unwrap())
        .collect();
    assert_eq!(
        clusters,
        ["plant-001-line-a", "plant-001-line-b", "plant-002-assembly"]
    );
    let mut served: BTreeMap<String, String> = BTreeMap::new();
    for release in releases {
        let images = release["images"].as_array().unwrap();
        assert_eq!(images.len(), 3, "{release}");
        for image in images {
            let reference = image["reference"].as_str().unwrap();
            let expected = served
                .entry(reference.to_string())
                .or_insert_with(|| skopeo_inspect_digest(&in_registry(reference, &host), &[]));
            assert_eq!(image["digest"].as_str().unwrap(), expected, "{reference}");
        }
    }
    assert_eq!(
        served.keys().map(String::as_str).collect::<Vec<_>>(),
        [DIAG, HISTORIAN, GATEWAY],
        "images keep their registry.plant.example names"
    );

    // The bundle is an OCI layout: the images and the cosign signature of
    // the gateway are named in index.json, under the original registry.
    let x = hub.join("x");
    untar(&bundle, &x);
    let index: Value = serde_json::from_slice(&fs::read(x.join("index.json")).unwrap()).unwrap();
    let named: BTreeMap<String, String> = index["manifests"]
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
    let gateway_hex = served[GATEWAY].strip_prefix("sha256:").unwrap();
    let sig = format!("{SAMPLE_REGISTRY}/plant/opcua-gateway:sha256-{gateway_hex}.sig");
    assert_eq!(
        named.keys().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from([
            DIAG.to_string(),
            HISTORIAN.to_string(),
            GATEWAY.to_string(),
            sig.clone()
        ]),
        "{index}"
    );
    assert_eq!(
        named[&sig],
        skopeo_inspect_digest(&in_registry(&sig, &host), &[]),
        "the signature artifact is the registry's"
    );
    for (name, digest) in &named {
        if name != &sig {
            assert_eq!(digest, &served[name], "{name}");
        }
        // Every named manifest and everything it points at is in the bundle.
        let reference = format!("oci:{}:{name}", x.display());
        assert_eq!(&skopeo_inspect_digest(&reference, &[]), digest, "{name}");
        let manifest: Value = serde_json::from_slice(
            &fs::read(x.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap(),
        )
        .unwrap();
        let config = std::iter::once(&manifest["config"]);
        for d in config.chain(manifest["layers"].as_array().unwrap()) {
            let d = d["digest"].as_str().unwrap();
            let blob = fs::read(x.join("blobs/sha256").join(&d["sha256:".len()..])).unwrap();
            assert_eq!(sha256_digest(&blob), d, "{name}: {d}");
        }
    }
}

// --- 2. rendering is helm's and kustomize's ----------------------------------

/// One cluster of `testdata/fleet/fleet.yaml`, written out again here so
/// the test does not take the loader's word for it.
struct SampleCluster {
    name: &'static str,
    site: &'static str,
    tier: &'static str,
    namespace: &'static str,
    vars: &'static [(&'static str, &'static str)],
    /// Selected by `plant-policies`.
    policies: bool,
    objects: usize,
}

const SAMPLE_CLUSTERS: [SampleCluster; 3] = [
    SampleCluster {
        name: "plant-001-line-a",
        site: "plant-001",
        tier: "canary",
        namespace: "line-a",
        vars: &[
            ("REGION", "eu-north"),
            ("LINE", "a"),
            ("OPCUA_ENDPOINT", "opc.tcp://10.1.1.10:4840"),
        ],
        policies: true,
        objects: 9,
    },
    SampleCluster {
        name: "plant-001-line-b",
        site: "plant-001",
        tier: "production",
        namespace: "line-b",
        vars: &[
            ("REGION", "eu-north"),
            ("LINE", "b"),
            ("OPCUA_ENDPOINT", "opc.tcp://10.1.2.10:4840"),
        ],
        policies: true,
        objects: 9,
    },
    SampleCluster {
        name: "plant-002-assembly",
        site: "plant-002",
        tier: "production",
        namespace: "assembly",
        vars: &[
            ("REGION", "eu-central"),
            ("OPCUA_ENDPOINT", "opc.tcp://10.2.1.10:4840"),
        ],
        policies: false,
        objects: 6,
    },
];

/// The inline values of the `line-hmi` source, as a values file.
const LINE_HMI_INLINE: &str = "replicaCount: 2\nservice:\n  port: 8080\n";

/// Runs a tool and returns its stdout, failing the test if it fails.
fn run_tool(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Kinds of the sample (and of common charts) that live outside namespaces;
/// the full list is in docs/fleet-spec.md.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
];

/// Parses a YAML stream into objects (serde-saphyr into serde_json), giving
/// namespaced objects without a namespace `namespace`.
fn objects(text: &str, namespace: &str) -> Vec<Value> {
    manifest_set::parse("test", text)
        .unwrap_or_else(|e| panic!("{e}:\n{text}"))
        .into_iter()
        .map(|o| {
            let mut v = o.value;
            let kind = v["kind"].as_str().unwrap_or("").to_string();
            let has_namespace = v["metadata"]["namespace"]
                .as_str()
                .is_some_and(|n| !n.is_empty());
            if !has_namespace && !CLUSTER_SCOPED.contains(&kind.as_str()) {
                v["metadata"]["namespace"] = Value::String(namespace.to_string());
            }
            v
        })
        .collect()
}

/// `apiVersion kind namespace/name`, to sort objects by.
pub(crate) fn object_id(v: &Value) -> String {
    format!(
        "{} {} {}/{}",
        v["apiVersion"].as_str().unwrap_or(""),
        v["kind"].as_str().unwrap_or(""),
        v["metadata"]["namespace"].as_str().unwrap_or(""),
        v["metadata"]["name"].as_str().unwrap_or("")
    )
}

fn sorted(mut objects: Vec<Value>) -> Vec<Value> {
    objects.sort_by_key(object_id);
    objects
}

/// What a cluster's manifest set should hold: helm, kustomize and the raw
/// files run here directly, then substituted and namespaced.
fn rendered_directly(fleet: &Path, cluster: &SampleCluster, inline: &Path) -> Vec<Value> {
    let mut vars: BTreeMap<String, String> = cluster
        .vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    for (k, v) in [
        ("CLUSTER_NAME", cluster.name),
        ("SITE", cluster.site),
        ("TIER", cluster.tier),
        ("NAMESPACE", cluster.namespace),
    ] {
        vars.insert(k.to_string(), v.to_string());
    }
    // Helm gets the values file with the cluster's variables substituted,
    // and its output is taken as it is.
    let values = tempfile::NamedTempFile::new().unwrap();
    let common = fs::read_to_string(fleet.join("values/common.yaml")).unwrap();
    fs::write(values.path(), substitute(&common, &vars).unwrap()).unwrap();
    let helm = run_tool(
        Command::new(helm_shim())
            .args(["template", "line-hmi"])
            .arg(fleet.join("charts/line-hmi"))
            .args(["-n", cluster.namespace, "--skip-tests", "-f"])
            .arg(values.path())
            .arg("-f")
            .arg(inline),
    );
    let mut all = objects(&helm, cluster.namespace);
    let mut texts = vec![run_tool(
        Command::new("kubectl")
            .arg("kustomize")
            .arg(fleet.join("kustomize/overlays").join(cluster.tier)),
    )];
    if cluster.policies {
        let dir = fleet.join("manifests");
        for name in entries(&dir) {
            texts.push(fs::read_to_string(dir.join(name)).unwrap());
        }
    }
    for text in texts {
        let text = substitute(&text, &vars).unwrap_or_else(|e| panic!("{e}:\n{text}"));
        all.extend(objects(&text, cluster.namespace));
    }
    sorted(all)
}

#[test]
fn rendered_output_equals_helm_and_kustomize_run_directly() {
    let hub = Hub::new();
    let fleet_file = repo_root().join("testdata/fleet/fleet.yaml");
    let fleet = fleet_file.parent().unwrap();
    // The inline values below are the spec's; keep them in step.
    assert!(
        fs::read_to_string(&fleet_file)
            .unwrap()
            .contains("inline: { replicaCount: 2, service: { port: 8080 } }"),
        "testdata/fleet/fleet.yaml changed its inline values"
    );
    let inline = hub.join("inline.yaml");
    fs::write(&inline, LINE_HMI_INLINE).unwrap();

    let o = hub.export(&fleet_file, "out/fleet.tender", &[]);
    assert_exit(&o, 0);
    let bundle = hub.join("out/fleet.tender");
    let inspect = hub.inspect(&bundle);
    let x = hub.join("x");
    untar(&bundle, &x);

    let releases = inspect["manifest"]["releases"].as_array().unwrap();
    assert_eq!(releases.len(), SAMPLE_CLUSTERS.len());
    let mut digests = BTreeSet::new();
    std::thread::scope(|scope| {
        let checks: Vec<_> = SAMPLE_CLUSTERS
            .iter()
            .map(|cluster| {
                let release = releases
                    .iter()
                    .find(|r| r["cluster"] == cluster.name)
                    .unwrap_or_else(|| panic!("no release for {}", cluster.name));
                let digest = release["manifests"].as_str().unwrap().to_string();
                let (x, inline) = (&x, &inline);
                scope.spawn(move || {
                    let path = x.join("blobs/sha256").join(&digest["sha256:".len()..]);
                    let blob = fs::read(&path)
                        .unwrap_or_else(|e| panic!("{}: manifest set {digest}: {e}", cluster.name));
                    assert_eq!(sha256_digest(&blob), digest, "{}", cluster.name);
                    let text = String::from_utf8(blob).unwrap();
                    assert!(text.starts_with("---\n"), "{text}");
                    assert_eq!(
                        text.contains("${BACKUP_DIR}"),
                        cluster.policies,
                        "$${{BACKUP_DIR}} renders as ${{BACKUP_DIR}}"
                    );
                    // The set already carries its namespaces: defaulting
                    // again must change nothing.
                    let exported = sorted(objects(&text, "no-such-namespace"));
                    let direct = rendered_directly(fleet, cluster, inline);
                    assert_eq!(exported.len(), cluster.objects, "{}", cluster.name);
                    assert_eq!(
                        exported.iter().map(object_id).collect::<Vec<_>>(),
                        direct.iter().map(object_id).collect::<Vec<_>>(),
                        "{}",
                        cluster.name
                    );
                    for (e, d) in exported.iter().zip(&direct) {
                        assert_eq!(e, d, "{}: {}", cluster.name, object_id(e));
                    }
                    digest
                })
            })
            .collect();
        for check in checks {
            digests.insert(check.join().expect("cluster check"));
        }
    });
    assert_eq!(digests.len(), 3, "three different renders, three blobs");
}

#[test]
fn clusters_with_identical_renders_share_one_manifest_blob() {
    let hub = Hub::new();
    let dir = hub.join("twins");
    fs::create_dir_all(dir.join("manifests")).unwrap();
    let layout = repo_root().join("testdata/fleet/images");
    // edge-1 and edge-2 differ only in name, which no source uses; edge-3
    // is at another site, which the ConfigMap names.
    fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1
kind: Fleet
name: twins
clusters:
  - {{ name: edge-1, site: plant-009, tier: production, namespace: apps }}
  - {{ name: edge-2, site: plant-009, tier: production, namespace: apps }}
  - {{ name: edge-3, site: plant-010, tier: production, namespace: apps }}
sources:
  - name: app
    manifests: {{ path: manifests }}
mirrors:
  {SAMPLE_REGISTRY}: \"oci-layout:{}\"
",
            layout.display()
        ),
    )
    .unwrap();
    fs::write(
        dir.join("manifests/app.yaml"),
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: app
data:
  site: \"${SITE}\"
  namespace: \"${NAMESPACE}\"
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
spec:
  selector: { matchLabels: { app: app } }
  template:
    metadata: { labels: { app: app } }
    spec:
      containers:
        - name: gateway
          image: registry.plant.example/plant/opcua-gateway:1.4.2
",
    )
    .unwrap();
    let fleet = dir.join("fleet.yaml");

    let o = hub
        .cmd()
        .arg("export")
        .arg(&fleet)
        .args(["--dry-run", "--json", "--no-progress"])
        .output();
    assert_exit(&o, 0);
    let plan: Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest_of = |name: &str| -> String {
        plan["plan"]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["cluster"] == name)
            .unwrap()["manifests"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(digest_of("edge-1"), digest_of("edge-2"));
    assert_ne!(digest_of("edge-1"), digest_of("edge-3"));

    let o = hub.export(
        &fleet,
        "out/twins.tender",
        &["--cluster", "edge-1", "--cluster", "edge-2"],
    );
    assert_exit(&o, 0);
    let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(summary["clusters"], 2);
    assert_eq!(summary["manifest_sets"], 1);
    let inspect = hub.inspect(&hub.join("out/twins.tender"));
    let m = &inspect["manifest"];
    assert_eq!(
        json_strings(&m["targets"]["clusters"]),
        ["edge-1", "edge-2"]
    );
    assert_eq!(json_strings(&m["targets"]["sites"]), ["plant-009"]);
    let releases = m["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 2);
    let shared = digest_of("edge-1");
    for r in releases {
        assert_eq!(r["manifests"], shared.as_str(), "{r}");
    }
    let blob_path = format!("blobs/sha256/{}", &shared["sha256:".len()..]);
    let holding: Vec<&Value> = m["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["digest"] == shared.as_str())
        .collect();
    assert_eq!(holding.len(), 1, "one blob for both clusters");
    assert_eq!(holding[0]["path"], blob_path.as_str());
}

// --- 3. errors ---------------------------------------------------------------

/// Runs a failing export of `fleet` for plant-001-line-a and checks that it
/// fails with exit 1 and one line, writes no bundle and takes no sequence.
#[track_caller]
fn failing_export(hub: &Hub, fleet: &Path) -> String {
    let o = hub.export(fleet, "out/fail.tender", &["--cluster", "plant-001-line-a"]);
    assert_exit(&o, 1);
    assert!(o.stdout.is_empty(), "{}", stdout(&o));
    let line = one_line_error(&o);
    let out = hub.join("out");
    assert!(
        !out.exists() || entries(&out).is_empty(),
        "{:?}",
        entries(&out)
    );
    assert_eq!(
        hub.last_sequence(),
        None,
        "a failed export takes no sequence"
    );
    line
}

#[test]
fn render_errors_name_the_source_and_the_cluster() {
    let hub = Hub::new();
    let prefix = "rendering source line-hmi for cluster plant-001-line-a: ";

    // A chart directory that is not there.
    let fleet = hub.sample_fleet("no-chart", None);
    let text = fs::read_to_string(&fleet).unwrap();
    fs::write(
        &fleet,
        text.replace("chart: charts/line-hmi", "chart: charts/gone"),
    )
    .unwrap();
    let line = failing_export(&hub, &fleet);
    assert!(line.contains(prefix), "{line}");
    assert!(line.contains("charts/gone not found"), "{line}");

    // A template that fails on purpose, and one that does not parse.
    for (dir, template, says) in [
        ("fail", "{{ fail \"boom\" }}\n", "boom"),
        ("syntax", "{{ if }}\n", "fail.yaml"),
    ] {
        let fleet = hub.sample_fleet(dir, None);
        fs::write(
            fleet
                .parent()
                .unwrap()
                .join("charts/line-hmi/templates/fail.yaml"),
            template,
        )
        .unwrap();
        let line = failing_export(&hub, &fleet);
        assert!(line.contains(prefix), "{line}");
        assert!(line.contains("helm failed"), "{line}");
        assert!(line.contains(says), "{line}");
    }

    // A variable no cluster defines, without a default, in a raw manifest.
    let fleet = hub.sample_fleet("nope", None);
    fs::write(
        fleet.parent().unwrap().join("manifests/zz-nope.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nope\n  namespace: plant-ops\ndata:\n  value: \"${NOPE}\"\n",
    )
    .unwrap();
    let line = failing_export(&hub, &fleet);
    assert!(
        line.contains("rendering source plant-policies for cluster plant-001-line-a: "),
        "{line}"
    );
    assert!(
        line.contains("variable NOPE is not set and has no default"),
        "{line}"
    );
}

#[test]
fn a_missing_image_is_named_with_the_objects_that_use_it() {
    let hub = Hub::new();
    let fleet = hub.sample_fleet("fleet", None);
    fs::write(
        fleet.parent().unwrap().join("manifests/zz-ghost.yaml"),
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: ghost\nspec:\n  containers:\n    - name: main\n      image: registry.plant.example/plant/nope:1.0\n",
    )
    .unwrap();
    let line = failing_export(&hub, &fleet);
    assert!(
        line.contains("image registry.plant.example/plant/nope:1.0"),
        "{line}"
    );
    assert!(
        line.contains("plant-001-line-a /Pod line-a/ghost"),
        "{line}"
    );
    assert!(line.contains("no image named"), "{line}");
}

#[test]
fn export_usage_errors_exit_2() {
    let hub = Hub::new();
    let fleet = repo_root().join("testdata/fleet/fleet.yaml");
    // No key (and no --dry-run or --list-images).
    let o = hub
        .cmd()
        .arg("export")
        .arg(&fleet)
        .args(["-o", "out/b.tender", "--no-progress"])
        .expect_exit(2);
    assert!(stderr(&o).contains("--key"), "{}", stderr(&o));
    // A platform that is not os/arch.
    let o = hub.export(&fleet, "out/b.tender", &["--platform", "linux"]);
    assert_exit(&o, 2);
    let err = stderr(&o);
    assert!(err.starts_with("tender: usage error: "), "{err}");
    assert!(err.contains("\"linux\""), "{err}");
    assert!(!hub.join("out").exists());
}

#[test]
fn registry_500s_are_retried() {
    let hub = Hub::new();
    let registry = Registry::start();
    push_sample_images(&registry.host());
    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(500, 3).path_contains("/blobs/").method("GET"),
    );
    let fleet = hub.registry_fleet("fleet", &proxy.host());

    let o = hub.export(&fleet, "out/fleet.tender", &ONE_CLUSTER);
    assert_exit(&o, 0);
    assert_eq!(proxy.failed_count(), 3);
    // One retry line per injected 500 (a dropped connection under load
    // would add its own, which is fine too).
    let err = stderr(&o);
    let retries: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("retry ") && l.contains("HTTP 500"))
        .collect();
    assert_eq!(retries.len(), 3, "{err}");
    for line in &retries {
        assert!(line.contains("blob "), "{line}");
        assert!(line.contains("next try in"), "{line}");
    }
    // Each failed GET was sent again and went through.
    let requests = proxy.requests();
    for (i, failed) in requests
        .iter()
        .enumerate()
        .filter(|(_, r)| r.injected.is_some())
    {
        assert!(
            requests[i + 1..]
                .iter()
                .any(|r| r.path == failed.path && r.injected.is_none()),
            "{} was not retried",
            failed.path
        );
    }
    // And the bundle is whole and right.
    let bundle = hub.join("out/fleet.tender");
    let o = hub
        .cmd()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "policy.yaml", "--no-progress"])
        .output();
    assert_exit(&o, 0);
    for release in hub.inspect(&bundle)["manifest"]["releases"]
        .as_array()
        .unwrap()
    {
        for image in release["images"].as_array().unwrap() {
            let reference = image["reference"].as_str().unwrap();
            assert_eq!(
                image["digest"].as_str().unwrap(),
                skopeo_inspect_digest(&in_registry(reference, &registry.host()), &[]),
            );
        }
    }
}

/// A 401 is not retried with backoff: the client runs the auth flow
/// (`GET /v2/` for a challenge; this registry sends none, so it goes on
/// anonymously) and sends the request once more. A second 401 for the same
/// request is final: access denied.
#[test]
fn registry_401_reauthenticates_once_then_is_denied() {
    let hub = Hub::new();
    let registry = Registry::start();
    push_sample_images(&registry.host());
    let layer = historian_only_layer(&registry.host());
    let blob_path = format!("/blobs/{layer}");

    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(401, 1).path_contains(&blob_path),
    );
    let fleet = hub.registry_fleet("once", &proxy.host());
    let o = hub.export(&fleet, "out/once.tender", &ONE_CLUSTER);
    assert_exit(&o, 0);
    assert!(
        !stderr(&o)
            .lines()
            .any(|l| l.starts_with("retry ") && l.contains("401")),
        "a 401 is no backoff retry: {}",
        stderr(&o)
    );
    assert_eq!(proxy.failed_count(), 1);
    let requests = proxy.requests();
    let denied = requests
        .iter()
        .position(|r| r.injected == Some(401))
        .unwrap();
    assert!(requests[denied].path.ends_with(&blob_path));
    let probe = denied
        + 1
        + requests[denied + 1..]
            .iter()
            .position(|r| r.path == "/v2/")
            .expect("the auth flow asks /v2/ for a challenge");
    assert!(
        requests[probe + 1..]
            .iter()
            .any(|r| r.path == requests[denied].path && r.injected.is_none()),
        "the blob is fetched again after authenticating: {requests:?}"
    );
    assert!(hub.join("out/once.tender").is_file());

    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(401, 2).path_contains(&blob_path),
    );
    let fleet = hub.registry_fleet("twice", &proxy.host());
    let o = hub.export(&fleet, "out/twice.tender", &ONE_CLUSTER);
    assert_exit(&o, 1);
    let line = one_line_error(&o);
    assert!(line.contains(&format!("image {HISTORIAN}")), "{line}");
    assert!(line.contains("access denied (HTTP 401)"), "{line}");
    assert!(line.contains(&layer), "{line}");
    assert_eq!(proxy.failed_count(), 2);
    assert!(!hub.join("out/twice.tender").exists());
    assert_eq!(hub.last_sequence().as_deref(), Some("1\n"));
}

#[test]
fn a_blob_that_does_not_match_its_digest_fails_the_export_and_leaves_nothing() {
    let hub = Hub::new();
    let registry = Registry::start();
    push_sample_images(&registry.host());
    let layer = historian_only_layer(&registry.host());
    let hex = layer.strip_prefix("sha256:").unwrap();
    let data = registry
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
        .join("data");
    // Same size, different bytes: only the digest can tell.
    let corrupt: Vec<u8> = fs::read(&data).unwrap().iter().map(|b| !b).collect();
    fs::write(&data, &corrupt).unwrap();

    let fleet = hub.registry_fleet("fleet", &registry.host());
    let o = hub.export(&fleet, "out/fleet.tender", &ONE_CLUSTER);
    assert_exit(&o, 1);
    let line = one_line_error(&o);
    assert!(line.contains(&format!("image {HISTORIAN}")), "{line}");
    assert!(line.contains("content digest is"), "{line}");
    assert!(line.contains(&format!("expected {layer}")), "{line}");
    // No bundle, and no staging directory left beside where it would be.
    let out = hub.join("out");
    assert!(out.is_dir(), "the output directory is made before pulling");
    assert_eq!(entries(&out), Vec::<String>::new());
    assert_eq!(hub.last_sequence(), None);
}

// --- 4. dry run, image list --------------------------------------------------

#[test]
fn dry_run_prints_the_plan_and_pulls_no_layers() {
    let hub = Hub::new();
    let registry = Registry::start();
    push_sample_images(&registry.host());
    // A proxy that injects nothing, to see every request.
    let proxy = FaultyProxy::start(&registry.host(), Fault::new(500, 0));
    let fleet = hub.registry_fleet("fleet", &proxy.host());

    let o = hub
        .cmd()
        .arg("export")
        .arg(&fleet)
        .args([
            "-o",
            "out/fleet.tender",
            "--key",
            "hub.key",
            "--dry-run",
            "--no-progress",
        ])
        .output();
    assert_exit(&o, 0);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "DRY RUN: nothing pulled, nothing written");
    let mut planned: BTreeMap<String, String> = BTreeMap::new();
    for (cluster, rest) in [
        (
            "plant-001-line-a",
            "(site plant-001, tier canary): 9 object(s) from line-hmi, historian, plant-policies, manifests sha256:",
        ),
        (
            "plant-001-line-b",
            "(site plant-001, tier production): 9 object(s) from line-hmi, historian, plant-policies, manifests sha256:",
        ),
        (
            "plant-002-assembly",
            "(site plant-002, tier production): 6 object(s) from line-hmi, historian, manifests sha256:",
        ),
    ] {
        let head = format!("cluster {cluster} {rest}");
        let line = lines
            .iter()
            .find(|l| l.starts_with(&head))
            .unwrap_or_else(|| panic!("no line {head:?} in:\n{out}"));
        planned.insert(cluster.to_string(), line[head.len() - 7..].to_string());
    }
    for image in [DIAG, HISTORIAN, GATEWAY] {
        let digest = skopeo_inspect_digest(&in_registry(image, &registry.host()), &[]);
        assert!(
            lines.contains(&format!("image {image} → {digest}").as_str()),
            "{image} {digest}:\n{out}"
        );
    }
    assert_eq!(lines.len(), 1 + 3 + 3, "{out}");

    // Nothing written, no sequence taken, no blob asked for.
    assert!(!hub.join("out").exists());
    assert_eq!(hub.last_sequence(), None);
    let requests = proxy.requests();
    assert!(
        requests.iter().any(|r| r.path.contains("/manifests/")),
        "the dry run resolves tags through the proxy: {requests:?}"
    );
    let blobs: Vec<_> = requests
        .iter()
        .filter(|r| r.path.contains("/blobs/"))
        .collect();
    assert!(blobs.is_empty(), "a dry run fetched blobs: {blobs:?}");
    assert_eq!(proxy.failed_count(), 0);

    // A real export then pins the same manifest set the plan showed.
    let before = requests.len();
    let o = hub.export(&fleet, "out/fleet.tender", &ONE_CLUSTER);
    assert_exit(&o, 0);
    assert!(
        proxy.requests()[before..]
            .iter()
            .any(|r| r.path.contains("/blobs/")),
        "the export pulls blobs through the same proxy"
    );
    let inspect = hub.inspect(&hub.join("out/fleet.tender"));
    let releases = inspect["manifest"]["releases"].as_array().unwrap();
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["cluster"], ONE_CLUSTER[1]);
    assert_eq!(
        releases[0]["manifests"].as_str().unwrap(),
        planned[ONE_CLUSTER[1]]
    );
}

#[test]
fn list_images_json_lists_exactly_the_sample_images() {
    let hub = Hub::new();
    let fleet = repo_root().join("testdata/fleet/fleet.yaml");
    let list_images = |args: &[&str]| {
        hub.cmd()
            .arg("export")
            .arg(&fleet)
            .arg("--list-images")
            .args(args)
            .arg("--no-progress")
            .ok()
    };
    let o = list_images(&["--json"]);
    let list: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json_strings(&list["images"]), [DIAG, HISTORIAN, GATEWAY]);
    let clusters = list["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    for c in clusters {
        assert_eq!(
            json_strings(&c["images"]),
            [DIAG, HISTORIAN, GATEWAY],
            "{c}"
        );
        // Extra images are listed but used by no object.
        let uses = c["uses"].as_array().unwrap();
        assert!(uses.iter().all(|u| u["image"] != DIAG), "{c}");
    }
    let assembly = clusters
        .iter()
        .find(|c| c["cluster"] == "plant-002-assembly")
        .unwrap();
    let objects: BTreeSet<String> = assembly["uses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["object"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        objects.into_iter().collect::<Vec<_>>(),
        [
            "apps/Deployment assembly/line-hmi",
            "apps/StatefulSet assembly/historian"
        ],
        "plant-002 has no plc-backup CronJob"
    );

    let o = list_images(&[]);
    assert_eq!(stdout(&o), format!("{DIAG}\n{HISTORIAN}\n{GATEWAY}\n"));
    // Listing touches neither the network nor the hub state.
    assert!(!hub.join("hub-state").exists());
}

/// A reader that stops early (`| head`) is the reader's choice, for JSON
/// as for text: not an error.
#[test]
fn json_to_a_closed_pipe_is_not_an_error() {
    let hub = Hub::new();
    let fleet = repo_root().join("testdata/fleet/fleet.yaml");
    let mut child = TestCommand::new(hub.path())
        .arg("export")
        .arg(&fleet)
        .args(["--list-images", "--json", "--no-progress"])
        .args(["--cluster", "plant-002-assembly"])
        .env("TENDER_HELM", helm_shim())
        .spawn_piped();
    // Gone long before tender has rendered anything to print.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_exit(&o, 0);
    assert_eq!(stderr(&o), "");
}

// --- 5. sequences ------------------------------------------------------------

#[test]
fn sequences_count_up_and_never_repeat() {
    let hub = Hub::new();
    let fleet = repo_root().join("testdata/fleet/fleet.yaml");
    let mut ids = Vec::new();
    for (n, out) in [(1, "out/one.tender"), (2, "out/two.tender")] {
        let o = hub.export(&fleet, out, &ONE_CLUSTER);
        assert_exit(&o, 0);
        let summary: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(summary["sequence"], n);
        assert_eq!(summary["channel"], "stable");
        let inspect = hub.inspect(&hub.join(out));
        assert_eq!(inspect["manifest"]["sequence"], n);
        assert_eq!(summary["bundle_id"], inspect["manifest"]["bundle_id"]);
        ids.push(summary["bundle_id"].as_str().unwrap().to_string());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(hub.last_sequence().as_deref(), Some("2\n"));

    for taken in ["1", "2"] {
        let o = hub.export(&fleet, "out/again.tender", &["--sequence", taken]);
        assert_exit(&o, 1);
        let line = one_line_error(&o);
        assert!(
            line.contains(&format!(
                "sequence {taken} is not above 2, the last exported on channel stable"
            )),
            "{line}"
        );
        assert!(!hub.join("out/again.tender").exists());
    }
    assert_eq!(hub.last_sequence().as_deref(), Some("2\n"));

    // The log has one line per finished export, in order.
    let log = fs::read_to_string(hub.join("hub-state/exports.jsonl")).unwrap();
    let records: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{log}");
    for (record, (n, id)) in records.iter().zip([(1, &ids[0]), (2, &ids[1])]) {
        assert_eq!(record["sequence"], n);
        assert_eq!(record["bundle_id"], id.as_str());
        assert_eq!(record["channel"], "stable");
    }
}
