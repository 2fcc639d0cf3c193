//! `bundle-spec/fleet.schema.json` is generated from the fleet spec types
//! (`tender_render::fleet_schema`, written by `cargo xtask schema`); these
//! tests hold the committed file to what the types generate, and hold the
//! schema to the Rust loader (`tender_render::fleet::Fleet::load`): every
//! fleet spec in testdata/ and in docs/fleet-spec.md validates and loads, a
//! fleet using every field validates and loads, and each broken fleet is
//! refused by both. Validation runs boon, a draft 2020-12 validator, on the
//! YAML read as JSON, as an editor or a CI check outside tender would.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tender_render::fleet::Fleet;
use tender_render::fleet_schema::{SCHEMA_ID, fleet_schema_json};
use tender_test_support::repo_root;

fn schema_path() -> PathBuf {
    repo_root().join("bundle-spec/fleet.schema.json")
}

/// The committed schema is what the spec types generate today.
#[test]
fn committed_schema_matches_the_types() {
    let committed = fs::read_to_string(schema_path()).unwrap();
    assert!(
        committed == fleet_schema_json(),
        "bundle-spec/fleet.schema.json is stale: the fleet spec types changed; \
         run `cargo xtask schema` to rewrite it"
    );
}

/// One schema error: where in the document (a JSON pointer) and what.
#[derive(Debug)]
struct SchemaError {
    path: String,
    message: String,
}

/// The committed schema, compiled (which checks it against the draft
/// 2020-12 meta-schema).
fn compiled_schema() -> (boon::Schemas, boon::SchemaIndex) {
    let schema: Value = serde_json::from_str(&fs::read_to_string(schema_path()).unwrap())
        .expect("the schema is JSON");
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource(SCHEMA_ID, schema)
        .expect("add the schema");
    let index = compiler
        .compile(SCHEMA_ID, &mut schemas)
        .unwrap_or_else(|e| panic!("the schema does not compile: {e:#}"));
    (schemas, index)
}

/// Each YAML document's schema errors (empty: valid), flattened so that a
/// failed oneOf/anyOf lists its branches' errors too.
fn validate(files: &[&Path]) -> Vec<Vec<SchemaError>> {
    let (schemas, index) = compiled_schema();
    fn flatten(e: &boon::ValidationError, out: &mut Vec<SchemaError>) {
        out.push(SchemaError {
            path: e.instance_location.to_string(),
            message: e.kind.to_string(),
        });
        e.causes.iter().for_each(|cause| flatten(cause, out));
    }
    files
        .iter()
        .map(|path| {
            let text = fs::read_to_string(path).unwrap();
            let doc: Value = serde_saphyr::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            let mut errors = Vec::new();
            if let Err(e) = schemas.validate(&doc, index) {
                flatten(&e, &mut errors);
            }
            errors
        })
        .collect()
}

/// Every fleet spec the repository ships: testdata/ and the examples in
/// docs/fleet-spec.md (its ```yaml blocks of `kind: Fleet`) validate and
/// load.
#[test]
fn every_shipped_fleet_is_valid() {
    let mut fleets: Vec<PathBuf> = [
        "fleet/fleet.yaml",
        "fleet/fleet-waves.yaml",
        "public/fleet.yaml",
    ]
    .iter()
    .map(|rel| repo_root().join("testdata").join(rel))
    .collect();
    let docs = fs::read_to_string(repo_root().join("docs/fleet-spec.md")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let examples: Vec<&str> = docs
        .split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .filter(|block| block.contains("\nkind: Fleet\n"))
        .collect();
    assert!(examples.len() >= 2, "{examples:?}");
    for (i, example) in examples.iter().enumerate() {
        let path = dir.path().join(format!("docs-example-{i}.yaml"));
        fs::write(&path, example).unwrap();
        fleets.push(path);
    }
    let paths: Vec<&Path> = fleets.iter().map(PathBuf::as_path).collect();
    for (errors, path) in validate(&paths).iter().zip(&fleets) {
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
        Fleet::load(path).unwrap_or_else(|e| panic!("the Rust loader refuses it: {e}"));
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
        "'1w' does not match pattern",
        "soak \"1w\" is not a duration",
    ),
    (
        "empty wave soak",
        "clusters:\n  - {name: a, site: s, tier: c}\n  - {name: b, site: s, tier: p}\nwaves:\n  - {name: one, tiers: [c]}\n  - {name: two, tiers: [p], gate: {soak: \"\"}}\n",
        "/waves/1/gate/soak",
        "length must be >=1, but got 0",
        "soak \"\" is not a duration",
    ),
    (
        "unknown wave field",
        "clusters:\n  - {name: a, site: s, tier: c}\nwaves:\n  - {name: one, tiers: [c], after: zero}\n",
        "/waves/0",
        "additionalProperties 'after' not allowed",
        "unknown field `after`",
    ),
    (
        "unknown top-level field",
        "owner: ops\nclusters:\n  - {name: a, site: s, tier: t}\n",
        "",
        "additionalProperties 'owner' not allowed",
        "unknown field `owner`",
    ),
    (
        "unknown cluster field",
        "clusters:\n  - {name: a, site: s, tier: t, colour: red}\n",
        "/clusters/0",
        "additionalProperties 'colour' not allowed",
        "unknown field `colour`",
    ),
    (
        "misspelt helm field",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    helm: {chart: c, valueFiles: [v.yaml]}\n",
        "/sources/0/helm",
        "additionalProperties 'valueFiles' not allowed",
        "unknown field `valueFiles`",
    ),
    (
        "substitute that is not a boolean",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    manifests: {path: m}\n    substitute: disabled\n",
        "/sources/0/substitute",
        "boolean, but got string",
        "substitute",
    ),
    (
        "source with both helm and kustomize",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    helm: {chart: c}\n    kustomize: {path: k}\n",
        "/sources/0",
        "oneOf failed, subschemas 0, 1 matched",
        "exactly one of helm, kustomize and manifests",
    ),
    (
        "source with no kind",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    select: {tiers: [t]}\n",
        "/sources/0",
        "oneOf failed, none matched",
        "exactly one of helm, kustomize and manifests",
    ),
    (
        "cluster name with a space",
        "clusters:\n  - {name: plant 001, site: s, tier: t}\n",
        "/clusters/0/name",
        "'plant 001' does not match pattern",
        "cluster name \"plant 001\"",
    ),
    (
        "cluster name starting with a dot",
        "clusters:\n  - {name: .hidden, site: s, tier: t}\n",
        "/clusters/0/name",
        "'.hidden' does not match pattern",
        "cluster name \".hidden\"",
    ),
    (
        "source name with a slash",
        "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: apps/hmi\n    manifests: {path: m}\n",
        "/sources/0/name",
        "'apps/hmi' does not match pattern",
        "source name \"apps/hmi\" is not a token",
    ),
    (
        "variable without a value",
        "clusters:\n  - {name: a, site: s, tier: t, vars: {LINE: ~}}\n",
        "/clusters/0/vars/LINE",
        "want string, but got null",
        "Scalar",
    ),
    (
        "no clusters",
        "clusters: []\n",
        "/clusters",
        "minimum 1 items required, but got 0 items",
        "no clusters",
    ),
    (
        "blank mirror",
        "clusters:\n  - {name: a, site: s, tier: t}\nmirrors: {docker.io: \" \"}\n",
        "/mirrors/docker.io",
        "' ' does not match pattern",
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

/// The token and duration patterns are the loader's checks: on the edges
/// of both (length, first character, unit order), the schema and the
/// loader give the same verdict.
#[test]
fn patterns_agree_with_the_loader() {
    let dir = tempfile::tempdir().unwrap();
    let long = "a".repeat(128);
    let too_long = "a".repeat(129);
    let mut cases: Vec<(String, String)> = Vec::new();
    for name in [
        "a", "-a", "_a", "a.b_c-D9", &long, &too_long, ".a", "a b", "a/b", "a:b", "é",
    ] {
        let doc = format!("clusters:\n  - {{name: \"{name}\", site: s, tier: c}}\n");
        cases.push((format!("cluster name {name:?}"), doc));
    }
    for soak in [
        "0s",
        "30m",
        "24h",
        "2d",
        "1d12h",
        "25h1m1s",
        "999999999s",
        "1000000000s",
        "24",
        "h",
        "1h1d",
        "1h1h",
        "1w",
        "-1h",
        "1.5h",
        " 1h",
        "1h ",
    ] {
        let doc = format!(
            "clusters:\n  - {{name: a, site: s, tier: c}}\n  - {{name: b, site: s, tier: p}}\n\
             waves:\n  - {{name: one, tiers: [c]}}\n  - {{name: two, tiers: [p], gate: {{soak: \"{soak}\"}}}}\n"
        );
        cases.push((format!("soak {soak:?}"), doc));
    }
    let files: Vec<PathBuf> = cases
        .iter()
        .enumerate()
        .map(|(i, (_, body))| {
            let path = dir.path().join(format!("fleet-{i}.yaml"));
            fs::write(&path, format!("{HEAD}{body}")).unwrap();
            path
        })
        .collect();
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut accepted = 0;
    for (((what, _), errors), path) in cases.iter().zip(validate(&paths)).zip(&files) {
        let loader = Fleet::load(path).map_err(|e| e.to_string());
        assert_eq!(
            errors.is_empty(),
            loader.is_ok(),
            "{what}: schema {errors:#?}, loader {loader:?}"
        );
        accepted += usize::from(loader.is_ok());
    }
    // Both verdicts occur: the cases are edges, not all one side.
    assert!(accepted > 5 && accepted < cases.len() - 5, "{accepted}");
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
