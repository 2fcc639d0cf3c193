//! Rendering as a Flux user expects it (issue #12 parts 1 and 2), through
//! the real Helm engine (`scripts/helm`) and the built `tender`: Helm output
//! reaches the manifest set as Helm printed it, variables go into Helm
//! values before rendering, the Flux opt-out annotation is honoured, text
//! left unsubstituted is warned about, test hooks are skipped, and charts
//! that render differently each time are named.
//!
//! The chart is `testdata/charts/shell-scripts`: a ConfigMap with shell
//! `${X:-default}`, `$${X}` and Go-template text, and a test Pod named with
//! `randAlphaNum`. Its sources name no images, so nothing is pulled.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tender_render::manifest_set;
use tender_test_support::{helm_shim, repo_root};

use crate::util::{TestCommand, Workspace, assert_exit, stderr, untar};

fn chart() -> PathBuf {
    repo_root().join("testdata/charts/shell-scripts")
}

/// A workspace with its own hub state, running tender with `helm`.
struct Hub {
    ws: Workspace,
}

impl Hub {
    fn new() -> Hub {
        let hub = Hub {
            ws: Workspace::new(),
        };
        fs::create_dir_all(hub.join("tmp")).unwrap();
        hub
    }

    fn join(&self, p: &str) -> PathBuf {
        self.ws.join(p)
    }

    /// tender in the workspace with the hub's environment and `helm`.
    fn cmd_with(&self, helm: &Path) -> TestCommand {
        let mut cmd = self.ws.tender();
        cmd.env("TENDER_HUB_STATE", self.join("hub-state"))
            .env("TENDER_HELM", helm)
            .env("DOCKER_CONFIG", self.join("docker-config"))
            // Where tender and Helm keep scratch files (substituted values).
            .env("TMPDIR", self.join("tmp"));
        cmd
    }

    fn cmd(&self) -> TestCommand {
        self.cmd_with(&helm_shim())
    }

    /// Writes `fleet.yaml` (head, clusters and sources given) in `dir`.
    fn fleet(&self, dir: &str, body: &str) -> PathBuf {
        let root = self.join(dir);
        fs::create_dir_all(&root).unwrap();
        let path = root.join("fleet.yaml");
        fs::write(
            &path,
            format!("apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: render-test\n{body}"),
        )
        .unwrap();
        path
    }

    /// Exports `fleet` to `out` and returns the `--json` summary and stderr.
    fn export(&self, fleet: &Path, out: &str) -> (Value, String) {
        let o = self
            .cmd()
            .arg("export")
            .arg(fleet)
            .arg("-o")
            .arg(self.join(out))
            .args(["--key", "hub.key", "--no-progress", "--json"])
            .output();
        assert_exit(&o, 0);
        (serde_json::from_slice(&o.stdout).unwrap(), stderr(&o))
    }

    /// The objects of `cluster`'s manifest set in the bundle `out`.
    fn manifest_set(&self, out: &str, cluster: &str) -> Vec<Value> {
        let bundle = self.join(out);
        let o = self
            .cmd()
            .arg("inspect")
            .arg(&bundle)
            .arg("--json")
            .output();
        assert_exit(&o, 0);
        let inspect: Value = serde_json::from_slice(&o.stdout).unwrap();
        let release = inspect["manifest"]["releases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["cluster"] == cluster)
            .unwrap_or_else(|| panic!("no release for {cluster}"))
            .clone();
        let digest = release["manifests"].as_str().unwrap();
        let x = self.join(&format!("{out}.x"));
        if !x.exists() {
            untar(&bundle, &x);
        }
        let text =
            fs::read_to_string(x.join("blobs/sha256").join(&digest["sha256:".len()..])).unwrap();
        manifest_set::parse("set", &text)
            .unwrap()
            .into_iter()
            .map(|o| o.value)
            .collect()
    }

    /// `tender export FLEET --list-images --json`: renders, pulls nothing.
    fn list_images(&self, fleet: &Path) -> (Value, String) {
        let o = self
            .cmd()
            .arg("export")
            .arg(fleet)
            .args(["--list-images", "--json", "--no-progress"])
            .output();
        assert_exit(&o, 0);
        (serde_json::from_slice(&o.stdout).unwrap(), stderr(&o))
    }
}

/// `helm template` run directly, parsed.
/// `helm template rel CHART -n NAMESPACE --skip-tests -f VALUES`, parsed.
fn helm_directly(chart: &Path, namespace: &str, values: &Path) -> Vec<Value> {
    let o = Command::new(helm_shim())
        .args(["template", "rel"])
        .arg(chart)
        .args(["-n", namespace, "--skip-tests", "-f"])
        .arg(values)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    manifest_set::parse("helm", &String::from_utf8(o.stdout).unwrap())
        .unwrap()
        .into_iter()
        .map(|o| o.value)
        .collect()
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {objects:#?}"))
}

fn warnings(json: &Value) -> Vec<Value> {
    json["warnings"].as_array().cloned().unwrap_or_default()
}

/// The chart's shell text, as Helm prints it (checked so that the test
/// cannot pass with a chart that lost its placeholders).
const BACKUP_SH: &str = "#!/bin/sh\n# Shell defaults, as public charts write them: the container's shell\n# expands them at run time, never tender.\nEXIT_CODE=${BACKUP_EXIT:-0}\nFRONTEND=\"${FRONTEND_URL:-http://frontend}\"\necho \"home is $${HOME}, path is $PATH, pid $$\"\nexit \"$EXIT_CODE\"\n";

#[test]
fn helm_output_is_kept_as_helm_prints_it_and_values_get_the_variables() {
    let hub = Hub::new();
    let values = hub.join("helm-fleet/values.yaml");
    fs::create_dir_all(values.parent().unwrap()).unwrap();
    fs::write(
        &values,
        "# per cluster: ${GREETING:=hi}\ngreeting: \"${GREETING:=hi}\"\n",
    )
    .unwrap();
    let fleet = hub.fleet(
        "helm-fleet",
        &format!(
            "clusters:
  - {{name: line-a, site: plant-1, tier: t, namespace: a, vars: {{GREETING: moin, EP: \"opc.tcp://10.0.0.1:4840\"}}}}
  - {{name: line-b, site: plant-1, tier: t, namespace: b, vars: {{EP: \"opc.tcp://10.0.0.2:4840\"}}}}
sources:
  - name: rel
    helm:
      chart: {chart}
      values: [values.yaml]
      inline: {{endpoint: \"${{EP}}\"}}
",
            chart = chart().display()
        ),
    );
    let (summary, log) = hub.export(&fleet, "helm.tender");
    // The substituted values files were private copies, gone after use.
    assert_eq!(crate::util::tree(&hub.join("tmp")), Vec::<String>::new());

    for (cluster, ns, greeting, endpoint) in [
        ("line-a", "a", "moin", "opc.tcp://10.0.0.1:4840"),
        ("line-b", "b", "hi", "opc.tcp://10.0.0.2:4840"),
    ] {
        let set = hub.manifest_set("helm.tender", cluster);
        // What a Helm user gets passing the same values by hand.
        let by_hand = hub.join(&format!("{cluster}-values.yaml"));
        fs::write(
            &by_hand,
            format!("greeting: {greeting}\nendpoint: \"{endpoint}\"\n"),
        )
        .unwrap();
        let direct = helm_directly(&chart(), ns, &by_hand);
        let exported = find(&set, "ConfigMap", "rel-scripts");
        let mut expected = find(&direct, "ConfigMap", "rel-scripts").clone();
        expected["metadata"]["namespace"] = Value::String(ns.to_string());
        assert_eq!(exported, &expected, "{cluster}");
        assert_eq!(exported["data"]["backup.sh"], BACKUP_SH, "{cluster}");
        assert_eq!(
            exported["data"]["template.txt"],
            "{{ .Values.passedThrough }} and ${NOT_A_VAR}"
        );
        assert_eq!(exported["data"]["greeting"], greeting);
        assert_eq!(exported["data"]["endpoint"], endpoint);
        assert_eq!(set.len(), 1, "{cluster}: the test Pod is skipped: {set:#?}");
    }

    // The leftover ${...} is warned about once for both clusters (and
    // their namespaces), on stderr and in the JSON summary.
    let w = warnings(&summary);
    assert_eq!(w.len(), 1, "{w:#?}");
    let w = &w[0];
    assert_eq!(w["kind"], "unsubstituted");
    assert_eq!(w["source"], "rel");
    assert_eq!(w["objects"], serde_json::json!(["/ConfigMap rel-scripts"]));
    assert_eq!(w["namespaces"], serde_json::json!(["a", "b"]));
    assert_eq!(w["clusters"], serde_json::json!(["line-a", "line-b"]));
    for p in [
        "${BACKUP_EXIT:-0}",
        "${FRONTEND_URL:-http://frontend}",
        "$${HOME}",
        "${NOT_A_VAR}",
    ] {
        assert!(
            w["placeholders"].as_array().unwrap().contains(&p.into()),
            "{p}: {w:#}"
        );
    }
    assert!(
        log.contains(
            "warning: source rel (clusters line-a, line-b): /ConfigMap rel-scripts in namespaces a, b keeps ${BACKUP_EXIT:-0}"
        ),
        "{log}"
    );
    assert!(log.contains("substitute: true"), "{log}");

    // Saying `substitute: false` keeps the text and silences the warning;
    // `substitute: true` brings back the old behaviour, which needs the
    // variables the shell text names.
    let text = fs::read_to_string(&fleet).unwrap();
    fs::write(&fleet, format!("{text}    substitute: false\n")).unwrap();
    let (json, log) = hub.list_images(&fleet);
    assert!(warnings(&json).is_empty(), "{json:#}");
    assert!(!log.contains("warning"), "{log}");
    fs::write(&fleet, format!("{text}    substitute: true\n")).unwrap();
    let o = hub
        .cmd()
        .arg("export")
        .arg(&fleet)
        .arg("--list-images")
        .output();
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("variable NOT_A_VAR is not set and has no default"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn objects_annotated_or_labelled_substitute_disabled_are_kept_as_rendered() {
    let hub = Hub::new();
    let dir = hub.join("optout/manifests");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("objects.yaml"),
        "apiVersion: v1
kind: ConfigMap
metadata:
  name: substituted
data:
  cluster: \"${CLUSTER_NAME}\"
  escaped: \"$${HOME}\"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: annotated
  annotations:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  script: \"echo ${UNDEFINED} ${CLUSTER_NAME} $${HOME}\"
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: labelled
  labels:
    kustomize.toolkit.fluxcd.io/substitute: disabled
data:
  script: \"echo ${ALSO_UNDEFINED:-x}\"
",
    )
    .unwrap();
    // The same through `kubectl kustomize`, which re-serializes objects.
    let kust = hub.join("optout/kust");
    fs::create_dir_all(&kust).unwrap();
    fs::write(
        kust.join("kustomization.yaml"),
        "resources: [objects.yaml]\ncommonLabels: {from: kustomize}\n",
    )
    .unwrap();
    fs::write(
        kust.join("objects.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k-substituted\ndata: {site: \"${SITE}\"}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: k-annotated\n  annotations: {kustomize.toolkit.fluxcd.io/substitute: disabled}\ndata: {script: \"echo ${SITE} ${UNDEFINED:-}\"}\n",
    )
    .unwrap();
    let fleet = hub.fleet(
        "optout",
        "clusters:\n  - {name: edge-1, site: s1, tier: t, namespace: apps}\nsources:\n  - name: raw\n    manifests: {path: manifests}\n  - name: kust\n    kustomize: {path: kust}\n",
    );
    let (summary, log) = hub.export(&fleet, "optout.tender");
    assert!(warnings(&summary).is_empty(), "{summary:#}");
    assert!(!log.contains("warning"), "{log}");
    let set = hub.manifest_set("optout.tender", "edge-1");
    let data = |name: &str| find(&set, "ConfigMap", name)["data"].clone();
    assert_eq!(
        data("substituted"),
        serde_json::json!({"cluster": "edge-1", "escaped": "${HOME}"})
    );
    assert_eq!(
        data("annotated")["script"],
        "echo ${UNDEFINED} ${CLUSTER_NAME} $${HOME}"
    );
    assert_eq!(data("labelled")["script"], "echo ${ALSO_UNDEFINED:-x}");
    assert_eq!(data("k-substituted")["site"], "s1");
    assert_eq!(data("k-annotated")["script"], "echo ${SITE} ${UNDEFINED:-}");

    // Without the annotation the undefined variable fails the export,
    // naming it: the annotation is what kept it out.
    let text = fs::read_to_string(dir.join("objects.yaml")).unwrap();
    fs::write(
        dir.join("objects.yaml"),
        text.replace("kustomize.toolkit.fluxcd.io/substitute: disabled", "x: y"),
    )
    .unwrap();
    let o = hub
        .cmd()
        .arg("export")
        .arg(&fleet)
        .arg("--list-images")
        .output();
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("UNDEFINED"), "{}", stderr(&o));
}

/// A `helm` that logs each run to `log`, then runs the shim.
fn counting_helm(dir: &Path, log: &Path) -> PathBuf {
    let path = dir.join("helm");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\necho run >> '{}'\nexec '{}' \"$@\"\n",
            log.display(),
            helm_shim().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn test_hooks_are_skipped_renders_repeat_exactly_and_random_ones_are_named() {
    let hub = Hub::new();
    // Three clusters in one namespace; line-c's values differ.
    let clusters = "clusters:
  - {name: line-a, site: plant-1, tier: t, namespace: apps}
  - {name: line-b, site: plant-1, tier: t, namespace: apps}
  - {name: line-c, site: plant-2, tier: t, namespace: apps, vars: {GREETING: hej}}
";
    fs::create_dir_all(hub.join("tests-fleet")).unwrap();
    fs::write(
        hub.join("tests-fleet/values.yaml"),
        "greeting: \"${GREETING:=hi}\"\n",
    )
    .unwrap();
    let source = |extra: &str| {
        format!(
            "{clusters}sources:\n  - name: rel\n    substitute: false\n    helm:\n      chart: {}\n      values: [values.yaml]\n{extra}",
            chart().display()
        )
    };
    let fleet = hub.fleet("tests-fleet", &source(""));

    // Two exports of the same inputs: the same manifest sets.
    let log = hub.join("helm-runs.log");
    let helm = counting_helm(hub.ws.path(), &log);
    let digests = |out: &str| {
        let o = hub
            .cmd_with(&helm)
            .arg("export")
            .arg(&fleet)
            .arg("-o")
            .arg(hub.join(out))
            .args(["--key", "hub.key", "--no-progress", "--json"])
            .ok();
        assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
        let o = hub
            .cmd()
            .arg("inspect")
            .arg(hub.join(out))
            .arg("--json")
            .output();
        let inspect: Value = serde_json::from_slice(&o.stdout).unwrap();
        inspect["manifest"]["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["cluster"].clone(), r["manifests"].clone()))
            .collect::<Vec<_>>()
    };
    let first = digests("one.tender");
    assert_eq!(first.len(), 3);
    assert_eq!(first, digests("two.tender"));
    // Two distinct Helm invocations (line-a and line-b share one), each
    // rendered twice, per export.
    let runs = fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(runs, 2 * 2 * 2, "helm runs over two exports");
    let set = hub.manifest_set("one.tender", "line-a");
    assert!(set.iter().all(|o| o["kind"] != "Pod"), "{set:#?}");

    // With the tests included, the random Pod names differ between the
    // two renders, and the warning names them for every cluster.
    let fleet = hub.fleet("tests-fleet", &source("      includeTests: true\n"));
    let (json, log) = hub.list_images(&fleet);
    let w = warnings(&json);
    assert_eq!(w.len(), 2, "one per distinct invocation: {w:#?}");
    let mut clusters_named = Vec::new();
    for w in &w {
        assert_eq!(w["kind"], "unreproducible", "{w:#}");
        assert_eq!(w["source"], "rel");
        let objects = w["objects"].as_array().unwrap();
        assert_eq!(objects.len(), 2, "a Pod name from each render: {w:#}");
        for o in objects {
            assert!(o.as_str().unwrap().starts_with("/Pod rel-test-"), "{w:#}");
        }
        assert_eq!(w["namespaces"], serde_json::json!(["apps"]));
        clusters_named.extend(w["clusters"].as_array().unwrap().iter().cloned());
    }
    clusters_named.sort_by_key(|c| c.to_string());
    assert_eq!(
        clusters_named,
        serde_json::json!(["line-a", "line-b", "line-c"])
            .as_array()
            .unwrap()
            .clone()
    );
    assert!(
        log.contains(
            "warning: source rel (clusters line-a, line-b): two Helm renders of the same inputs differ in /Pod rel-test-"
        ),
        "{log}"
    );
    // The test Pod's image is now part of the plan.
    assert!(
        json["images"]
            .as_array()
            .unwrap()
            .contains(&"registry.example/tools/busybox:1.36".into()),
        "{json:#}"
    );
}
