//! Public charts and a public kustomization that nobody on this project
//! wrote (issue #12 part 7), vendored under `testdata/public/` with their
//! licences: tender's manifest set for each cluster must hold exactly the
//! objects that the Helm engine (`scripts/helm template`) and `kubectl
//! kustomize` print when run directly with the same inputs.
//!
//! Both sides are parsed by PyYAML (YAML 1.1, as kubectl reads manifests),
//! not by tender's own parser, so a scalar tender reads differently from
//! Kubernetes (`defaultMode: 0755`) shows up as a difference. The only
//! normalisations are the documented ones: tender gives namespaced objects
//! without a namespace the cluster's `namespace`, and orders objects by
//! kind; nothing else may differ.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use tender_render::fleet::{Fleet, SourceKind};
use tender_test_support::{helm_shim, repo_root};

use crate::export::object_id;
use crate::util::{TestCommand, stderr, stdout, venv_python};

/// Cluster-scoped kinds in these charts (docs/fleet-spec.md has tender's
/// full list).
const CLUSTER_SCOPED: &[&str] = &[
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "ValidatingWebhookConfiguration",
];

fn public_fleet() -> PathBuf {
    repo_root().join("testdata/public/fleet.yaml")
}

/// Every document of a YAML stream as JSON, parsed by PyYAML.
fn pyyaml_documents(text: &str) -> Vec<Value> {
    let mut child = Command::new(venv_python())
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run the venv's Python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "PyYAML could not parse the stream");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Objects by id, namespaced ones defaulted to `namespace` when given.
fn by_id(docs: Vec<Value>, namespace: Option<&str>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for mut doc in docs {
        let kind = doc["kind"].as_str().unwrap_or("").to_string();
        let named = doc["metadata"]["namespace"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        if let Some(ns) = namespace
            && !named
            && !CLUSTER_SCOPED.contains(&kind.as_str())
        {
            doc["metadata"]["namespace"] = Value::String(ns.to_string());
        }
        let id = object_id(&doc);
        assert!(out.insert(id.clone(), doc).is_none(), "{id} twice");
    }
    out
}

/// Where two values first differ (a JSON pointer with both sides), if anywhere.
fn first_difference(ours: &Value, theirs: &Value, at: String) -> Option<String> {
    match (ours, theirs) {
        (Value::Object(a), Value::Object(b)) => a
            .keys()
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .find_map(|k| match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) => first_difference(x, y, format!("{at}/{k}")),
                (x, y) => Some(format!("{at}/{k}: tender {x:?}, directly {y:?}")),
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}/{i}"))),
        _ if ours == theirs => None,
        _ => Some(format!("{at}: tender {ours}, directly {theirs}")),
    }
}

fn run(mut cmd: Command, stdin: Option<&str>) -> String {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run a renderer");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(data) = stdin {
        pipe.write_all(data.as_bytes()).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What one cluster's sources print when their tools run directly, with
/// the arguments a Helm or kustomize user would give for the spec.
fn rendered_directly(fleet: &Fleet, cluster: &str) -> String {
    let cluster = fleet
        .spec
        .clusters
        .iter()
        .find(|c| c.name == cluster)
        .unwrap();
    let mut out = String::new();
    for source in fleet
        .spec
        .sources
        .iter()
        .filter(|s| s.select.matches(cluster))
    {
        match source.kind().unwrap() {
            SourceKind::Helm(helm) => {
                let mut cmd = Command::new(helm_shim());
                cmd.arg("template")
                    .arg(&source.name)
                    .arg(fleet.path(&helm.chart))
                    .args(["--namespace", cluster.namespace.as_deref().unwrap()])
                    .args(["--include-crds", "--skip-tests"]);
                let inline = helm.inline.as_ref().map(|v| v.to_string());
                if inline.is_some() {
                    cmd.args(["--values", "-"]);
                }
                out.push_str(&run(cmd, inline.as_deref()));
            }
            SourceKind::Kustomize(k) => {
                let mut cmd = Command::new("kubectl");
                cmd.arg("kustomize").arg(fleet.path(&k.path));
                out.push_str(&run(cmd, None));
            }
            SourceKind::Manifests(_) => unreachable!("the public fleet has no raw manifests"),
        }
        out.push_str("\n---\n");
    }
    out
}

fn render_with_tender(dir: &Path) -> String {
    let o = TestCommand::new(dir)
        .arg("render")
        .arg(public_fleet())
        .arg("-o")
        .arg(dir)
        .env("TENDER_HELM", helm_shim())
        .ok();
    stderr(&o)
}

#[test]
fn public_charts_and_kustomizations_render_exactly_as_their_own_tools_do() {
    let fleet = Fleet::load(&public_fleet()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let warnings = render_with_tender(tmp.path());

    let mut sources_seen = 0;
    for cluster in &fleet.spec.clusters {
        let ours = fs::read_to_string(tmp.path().join(format!("{}.yaml", cluster.name))).unwrap();
        let ours = by_id(pyyaml_documents(&ours), None);
        let direct = by_id(
            pyyaml_documents(&rendered_directly(&fleet, &cluster.name)),
            cluster.namespace.as_deref(),
        );
        let only_ours: Vec<_> = ours.keys().filter(|k| !direct.contains_key(*k)).collect();
        let only_direct: Vec<_> = direct.keys().filter(|k| !ours.contains_key(*k)).collect();
        assert!(
            only_ours.is_empty() && only_direct.is_empty(),
            "{}: only in tender's set {only_ours:?}; only in the direct render {only_direct:?}",
            cluster.name
        );
        for (id, object) in &ours {
            if let Some(at) = first_difference(object, &direct[id], String::new()) {
                panic!("{}: {id} differs at {at}", cluster.name);
            }
        }
        sources_seen += fleet
            .spec
            .sources
            .iter()
            .filter(|s| s.select.matches(cluster))
            .count();
    }
    assert_eq!(
        sources_seen,
        fleet.spec.sources.len(),
        "every source checked"
    );

    // What these inputs exercise, so a chart update that drops it is noticed.
    let charts = fs::read_to_string(tmp.path().join("lab-charts.yaml")).unwrap();
    let docs = pyyaml_documents(&charts);
    let count = |pred: &dyn Fn(&Value) -> bool| docs.iter().filter(|d| pred(d)).count();
    assert!(
        count(&|d| d["kind"] == "CustomResourceDefinition") >= 6,
        "cert-manager CRDs"
    );
    let hook = |d: &Value| {
        d["metadata"]["annotations"]["helm.sh/hook"]
            .as_str()
            .map(str::to_string)
    };
    assert!(
        count(&|d| hook(d).is_some_and(|h| h.contains("install"))) >= 3,
        "install hooks (podinfo's Jobs, cert-manager's startupapicheck) are objects of the set"
    );
    assert_eq!(
        count(&|d| hook(d).as_deref() == Some("test")),
        0,
        "tests skipped"
    );
    for subchart in [
        "alertmanager",
        "kube-state-metrics",
        "prometheus-node-exporter",
    ] {
        assert!(
            count(&|d| d["metadata"]["labels"]["app.kubernetes.io/name"] == subchart) > 0,
            "objects of the {subchart} subchart"
        );
    }
    // The bitnami/redis (sentinel) scripts keep their shell defaults: the
    // object comparison above already holds each script's text to Helm's,
    // byte for byte.
    let scripts = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "redis-scripts")
        .expect("redis-scripts ConfigMap");
    let text = scripts["data"].to_string();
    for shell in ["${1:-0}", "${2:-}", "${REDIS_PORT}", "${args[@]}"] {
        assert!(text.contains(shell), "{shell} kept in redis-scripts");
    }
    // ... and tender says it left them alone, naming the object.
    assert!(
        warnings.contains("ConfigMap redis-scripts") && warnings.contains("${args[@]}"),
        "{warnings}"
    );
    assert!(
        !warnings.contains("differ"),
        "renders are reproducible: {warnings}"
    );
}

/// Every `image` of every container list anywhere in a document: found by
/// walking the whole tree, not by tender's table of pod-spec kinds.
fn container_images(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Some(list) = v.as_array()
                {
                    out.extend(
                        list.iter()
                            .filter_map(|c| c["image"].as_str().map(str::to_string)),
                    );
                }
                container_images(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| container_images(v, out)),
        _ => {}
    }
}

/// Image discovery on real charts: `--list-images` names exactly the
/// container images of the direct renders (tag, or tag and digest, as
/// the chart wrote them), and nothing else.
#[test]
fn every_container_image_of_the_public_charts_is_found() {
    let fleet = Fleet::load(&public_fleet()).unwrap();
    let mut direct = BTreeSet::new();
    for cluster in &fleet.spec.clusters {
        for doc in pyyaml_documents(&rendered_directly(&fleet, &cluster.name)) {
            container_images(&doc, &mut direct);
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let fleet_file = public_fleet();
    let o = TestCommand::new(tmp.path())
        .arg("export")
        .arg(&fleet_file)
        .arg("--list-images")
        .env("TENDER_HELM", helm_shim())
        .ok();
    let listed: BTreeSet<String> = stdout(&o).lines().map(str::to_string).collect();
    assert_eq!(listed, direct);
    assert!(
        direct.iter().any(|i| i.contains(":v1.15.1@sha256:")),
        "ingress-nginx pins tag and digest: {direct:?}"
    );
}
