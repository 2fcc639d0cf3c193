//! `bundle-spec/fleet.schema.json` against the sample fleet and against the
//! Rust loader (`tender_render::fleet::Fleet::load`): the sample validates,
//! a fleet using every field validates and loads, and each broken fleet is
//! refused by both. Validation runs the venv's Python (`$TENDER_VENV`, else
//! `<repo>/.venv`, made by `scripts/install-deps.sh`) with jsonschema and
//! PyYAML, the way an editor or CI check outside tender would.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tender_render::fleet::Fleet;
use tender_test_support::repo_root;

fn schema_path() -> PathBuf {
    repo_root().join("bundle-spec/fleet.schema.json")
}

pub(crate) fn venv_python() -> PathBuf {
    let venv = std::env::var_os("TENDER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no venv Python at {}; run scripts/install-deps.sh",
        python.display()
    );
    python
}

/// Checks the schema itself, then prints one JSON line per document:
/// `{"file": ..., "errors": [{"path": "/json/pointer", "message": ...}]}`,
/// where the messages of a failed oneOf/anyOf include its branches' errors.
const VALIDATE: &str = r#"
import json, sys
import jsonschema, yaml

with open(sys.argv[1]) as f:
    schema = json.load(f)
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

def flatten(error):
    yield error
    for sub in error.context or ():
        yield from flatten(sub)

for path in sys.argv[2:]:
    with open(path) as f:
        doc = yaml.safe_load(f)
    errors = []
    for top in validator.iter_errors(doc):
        for e in flatten(top):
            pointer = "".join("/" + str(p) for p in e.absolute_path)
            errors.append({"path": pointer, "message": e.message})
    print(json.dumps({"file": path, "errors": errors}))
"#;

#[derive(Debug)]
struct SchemaError {
    path: String,
    message: String,
}

/// Validates each file against the schema; one error list per file.
fn validate(files: &[&Path]) -> Vec<Vec<SchemaError>> {
    let out = Command::new(venv_python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(schema_path())
        .args(files)
        .output()
        .expect("run the venv's Python");
    assert!(
        out.status.success(),
        "schema validation failed to run (scripts/install-deps.sh installs jsonschema and PyYAML):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let results: Vec<Vec<SchemaError>> = stdout
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).unwrap();
            v["errors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| SchemaError {
                    path: e["path"].as_str().unwrap().to_string(),
                    message: e["message"].as_str().unwrap().to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(results.len(), files.len(), "{stdout}");
    results
}

#[test]
fn sample_fleet_is_valid() {
    for name in ["fleet.yaml", "fleet-waves.yaml"] {
        let sample = repo_root().join("testdata/fleet").join(name);
        let errors = validate(&[&sample]);
        assert!(errors[0].is_empty(), "{name}: {:#?}", errors[0]);
        Fleet::load(&sample).expect("the Rust loader reads the sample too");
    }
}

const HEAD: &str = "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: f\n";

/// Every field of the spec, including nulls for optional ones.
const EVERY_FIELD: &str = r#"
channel: edge
clusters:
  - name: hall-1
    site: plant-9
    tier: canary
    namespace: apps
    vars: {REGION: eu-north, REPLICAS: 3, RATIO: 0.5, DEBUG: false}
  - name: hall-2
    site: plant-9
    tier: production
    namespace: ~
sources:
  - name: from-oci
    helm:
      chart: oci://charts.example/stack/app
      version: "1.10.0"
      releaseName: app
      values: [values/a.yaml, values/b.yaml]
      inline: {replicaCount: 2, service: {port: 8080}}
      includeCrds: false
      kubeVersion: "1.31.0"
      includeTests: true
    substitute: true
  - name: from-repo
    helm: {chart: ingress-nginx, repo: "https://charts.example/ingress", version: "4.11.3", inline: ~}
    select: {tiers: [production]}
  - name: overlays
    helm: ~
    kustomize: {path: "kustomize/overlays/${TIER}"}
    select: {clusters: [hall-1], tiers: []}
    substitute: false
  - name: raw.files_1
    manifests: {path: manifests}
    select: {}
images: [registry.plant.example/tools/diag:1.0.0]
mirrors:
  registry.plant.example: oci-layout:images
  docker.io: mirror.hub.example:5000
registries:
  mirror.hub.example:5000: {plainHttp: true}
  registry.plant.example: {insecureSkipTlsVerify: true, plainHttp: false}
  quay.io: {}
waves:
  - name: first
    tiers: [canary]
    gate: ~
  - name: rest
    clusters: [hall-2]
    gate: {soak: 1d12h}
"#;

#[test]
fn fleet_using_every_field_is_valid_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.yaml");
    fs::write(&path, format!("{HEAD}{EVERY_FIELD}")).unwrap();
    let errors = validate(&[&path]);
    assert!(errors[0].is_empty(), "{:#?}", errors[0]);
    let fleet = Fleet::load(&path).unwrap();
    assert_eq!(fleet.spec.sources.len(), 4);
    let helm = fleet.spec.sources[0].helm.as_ref().unwrap();
    assert!(!helm.include_crds);
    assert!(helm.include_tests);
    assert_eq!(fleet.spec.sources[0].substitute, Some(true));
    assert_eq!(fleet.spec.sources[2].substitute, Some(false));
    assert_eq!(fleet.spec.sources[3].substitute, None);
    assert_eq!(fleet.spec.waves[1].soak_seconds(), 36 * 3600);
}

/// Broken fleets: (what is wrong, document, JSON pointer of the schema
/// error, text in the schema error, text in the loader's error).
const INVALID: &[(&str, &str, &str, &str, &str)] = &[
    (
        "wave soak that is not a duration",
        "clusters:\n  - {name: a, site: s, tier: c}\n  - {name: b, site: s, tier: p}\nwaves:\n  - {name: one, tiers: [c]}\n  - {name: two, tiers: [p], gate: {soak: 1w}}\n",
        "/waves/1/gate/soak",
        "does not match",
        "soak \"1w\" is not a duration",
    ),
    (
        "unknown wave field",
        "clusters:\n  - {name: a, site: s, tier: c}\nwaves:\n  - {name: one, tiers: [c], after: zero}\n",
        "/waves/0",
        "'after' was unexpected",
        "unknown field `after`",
    ),
    (
        "unknown top-level field",
        "owner: ops\nclusters:\n  - {name: a, site: s, tier: t}\n",
        "",
        "'owner' was unexpected",
        "unknown field `owner`",
    ),
    (
        "unknown cluster field",
        "clusters:\n  - {name: a, site: s, tier: t, colour: red}\n",
        "/clusters/0",
        "'colour' was unexpected",
        "unknown field `colour`",
    ),
    (
        "misspelt helm field",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    helm: {chart: c, valueFiles: [v.yaml]}\n",
        "/sources/0/helm",
        "'valueFiles' was unexpected",
        "unknown field `valueFiles`",
    ),
    (
        "substitute that is not a boolean",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    manifests: {path: m}\n    substitute: disabled\n",
        "/sources/0/substitute",
        "is not of type 'boolean'",
        "substitute",
    ),
    (
        "source with both helm and kustomize",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    helm: {chart: c}\n    kustomize: {path: k}\n",
        "/sources/0",
        "is valid under each of",
        "exactly one of helm, kustomize and manifests",
    ),
    (
        "source with no kind",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    select: {tiers: [t]}\n",
        "/sources/0",
        "is not valid under any of the given schemas",
        "exactly one of helm, kustomize and manifests",
    ),
    (
        "cluster name with a space",
        "clusters:\n  - {name: plant 001, site: s, tier: t}\n",
        "/clusters/0/name",
        "does not match",
        "cluster name \"plant 001\"",
    ),
    (
        "cluster name starting with a dot",
        "clusters:\n  - {name: .hidden, site: s, tier: t}\n",
        "/clusters/0/name",
        "does not match",
        "cluster name \".hidden\"",
    ),
    (
        "source name with a slash",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: apps/hmi\n    manifests: {path: m}\n",
        "/sources/0/name",
        "does not match",
        "source name \"apps/hmi\" is not a token",
    ),
    (
        "variable without a value",
        "clusters:\n  - {name: a, site: s, tier: t, vars: {LINE: ~}}\n",
        "/clusters/0/vars/LINE",
        "is not of type",
        "Scalar",
    ),
    (
        "no clusters",
        "clusters: []\n",
        "/clusters",
        "should be non-empty",
        "no clusters",
    ),
    (
        "blank mirror",
        "clusters:\n  - {name: a, site: s, tier: t}\nmirrors: {docker.io: \" \"}\n",
        "/mirrors/docker.io",
        "does not match",
        "mirror for docker.io is empty",
    ),
];

#[test]
fn schema_and_loader_refuse_the_same_broken_fleets() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, (_, body, ..)) in INVALID.iter().enumerate() {
        let path = dir.path().join(format!("fleet-{i}.yaml"));
        fs::write(&path, format!("{HEAD}{body}")).unwrap();
        files.push(path);
    }
    // A wrong apiVersion, written whole.
    let wrong_version = dir.path().join("fleet-version.yaml");
    fs::write(
        &wrong_version,
        "apiVersion: tender.dev/v1\nkind: Fleet\nname: f\nclusters:\n  - {name: a, site: s, tier: t}\n",
    )
    .unwrap();

    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let results = validate(&paths);
    for ((what, _, pointer, schema_needle, loader_needle), (errors, path)) in
        INVALID.iter().zip(results.iter().zip(&files))
    {
        assert!(
            errors
                .iter()
                .any(|e| e.path == *pointer && e.message.contains(schema_needle)),
            "{what}: the schema should refuse it at {pointer:?} with {schema_needle:?}; got {errors:#?}"
        );
        let err = Fleet::load(path)
            .err()
            .unwrap_or_else(|| panic!("{what}: the loader accepted it"));
        let err = err.to_string();
        assert!(
            err.contains(loader_needle),
            "{what}: loader error {err:?} lacks {loader_needle:?}"
        );
    }

    let errors = &validate(&[&wrong_version])[0];
    assert!(
        errors.iter().any(|e| e.path == "/apiVersion"),
        "{errors:#?}"
    );
    let err = Fleet::load(&wrong_version).unwrap_err().to_string();
    assert!(err.contains("expected apiVersion"), "{err}");
}

/// Every property in the schema has a description, and the user
/// reference (`docs/fleet-spec.md`) names every one of them.
#[test]
fn every_schema_property_is_described_and_documented() {
    let schema: Value = serde_json::from_str(&fs::read_to_string(schema_path()).unwrap()).unwrap();
    let docs = fs::read_to_string(repo_root().join("docs/fleet-spec.md")).unwrap();
    let mut names = Vec::new();
    fn walk(v: &Value, names: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(Value::Object(props)) = map.get("properties") {
                    for (name, prop) in props {
                        assert!(
                            prop.get("description").is_some_and(Value::is_string),
                            "schema property {name} has no description"
                        );
                        names.push(name.clone());
                    }
                }
                map.values().for_each(|child| walk(child, names));
            }
            Value::Array(items) => items.iter().for_each(|child| walk(child, names)),
            _ => {}
        }
    }
    walk(&schema, &mut names);
    assert!(names.len() > 25, "{names:?}");
    for name in names {
        assert!(
            docs.contains(&format!("`{name}`")),
            "docs/fleet-spec.md does not mention `{name}`"
        );
    }
}
