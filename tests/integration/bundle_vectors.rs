//! The spec's test vectors: the committed files are exactly what the
//! generator makes, and `tender verify` reports each expected outcome.

use std::fs;
use std::path::PathBuf;

use tender_test_support::{repo_root, vectors};

use crate::util::{TestCommand, assert_exit, stderr, stdout, tree};

fn vectors_dir() -> PathBuf {
    repo_root().join("bundle-spec/vectors")
}

/// `TENDER_REGENERATE_VECTORS=1 cargo test --test integration vectors`
/// rewrites the committed vectors; otherwise they must match exactly.
#[test]
fn committed_vectors_match_the_generator() {
    if std::env::var_os("TENDER_REGENERATE_VECTORS").is_some() {
        vectors::write_all(&vectors_dir()).unwrap();
    }
    let fresh = tempfile::tempdir().unwrap();
    vectors::write_all(fresh.path()).unwrap();
    let files = tree(fresh.path());
    assert!(files.len() > 40, "{files:?}");
    for rel in files {
        let new = fresh.path().join(&rel);
        if new.is_file() {
            let committed = fs::read(vectors_dir().join(&rel))
                .unwrap_or_else(|e| panic!("bundle-spec/vectors/{rel}: {e}"));
            assert!(
                committed == fs::read(&new).unwrap(),
                "bundle-spec/vectors/{rel} is stale"
            );
        }
    }
}

/// Files are read with positional reads by the hashers, pipes as one
/// stream: both paths must give every verdict.
#[test]
fn every_vector_gets_its_expected_outcome() {
    for stdin in [false, true] {
        every_vector_via(stdin);
    }
}

fn every_vector_via(stdin: bool) {
    for v in vectors::all() {
        let dir = vectors_dir().join(v.name);
        // Run from an empty directory with an empty TMPDIR: a verifier
        // must not write anything anywhere, whatever the bundle holds.
        let cwd = tempfile::tempdir().unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let bundle = dir.join("bundle.tender");
        let policy = dir.join("policy.yaml");
        let mut cmd = TestCommand::new(cwd.path());
        cmd.arg("verify");
        if stdin {
            cmd.arg("-").stdin(fs::read(&bundle).unwrap());
        } else {
            cmd.arg(&bundle);
        }
        let o = cmd
            .arg("--trust")
            .arg(&policy)
            .arg("--no-progress")
            .env("TMPDIR", tmp.path())
            .expect_exit(v.expected.exit_code);
        let err = stderr(&o);
        if v.expected.exit_code == 0 {
            assert!(err.is_empty(), "{}: {err}", v.name);
        } else {
            assert!(
                err.contains(v.expected.reason_contains),
                "{}: expected reason containing {:?}, got: {err}",
                v.name,
                v.expected.reason_contains
            );
            assert_eq!(
                err.trim().lines().count(),
                1,
                "{}: one-line reason: {err}",
                v.name
            );
            assert!(err.starts_with("tender: REJECTED: "), "{err}");
        }
        assert!(tree(cwd.path()).is_empty(), "{}: wrote into cwd", v.name);
        assert!(tree(tmp.path()).is_empty(), "{}: wrote into TMPDIR", v.name);
    }
}

/// Volumes are read as one file with positional reads: every vector that
/// `tender split` can cut (it needs a readable manifest) gets the same
/// verdict from 700-byte volumes, with tar headers, blobs and padding
/// across volume boundaries.
#[test]
fn every_vector_gets_its_expected_outcome_from_volumes() {
    let mut cut = 0;
    for v in vectors::all() {
        let dir = vectors_dir().join(v.name);
        let work = tempfile::tempdir().unwrap();
        let volumes = work.path().join("volumes");
        let split = TestCommand::new(work.path())
            .arg("split")
            .arg(dir.join("bundle.tender"))
            .args(["--volume-size", "700", "-o"])
            .arg(&volumes)
            .output();
        if !split.status.success() {
            assert_eq!(v.expected.exit_code, 3, "{}: {}", v.name, stderr(&split));
            continue;
        }
        cut += 1;
        let o = TestCommand::new(work.path())
            .arg("verify")
            .arg(&volumes)
            .arg("--trust")
            .arg(dir.join("policy.yaml"))
            .arg("--no-progress")
            .output();
        assert_exit(&o, v.expected.exit_code);
        assert!(
            stderr(&o).contains(v.expected.reason_contains),
            "{}: expected reason containing {:?}, got: {}",
            v.name,
            v.expected.reason_contains,
            stderr(&o)
        );
    }
    assert!(cut >= 10, "only {cut} vectors could be cut into volumes");
}

#[test]
fn rejections_are_also_reported_when_reading_stdin() {
    let dir = vectors_dir().join("bit-flipped-blob");
    let cwd = tempfile::tempdir().unwrap();
    let o = TestCommand::new(cwd.path())
        .args(["verify", "-", "--trust"])
        .arg(dir.join("policy.yaml"))
        .stdin_from(fs::File::open(dir.join("bundle.tender")).unwrap())
        .expect_exit(3);
    assert!(stderr(&o).contains("content digest is"), "{}", stderr(&o));
    let ok = vectors_dir().join("valid-minimal");
    let o = TestCommand::new(cwd.path())
        .arg("inspect")
        .arg(ok.join("bundle.tender"))
        .arg("--json")
        .output();
    assert_exit(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verified"], false);
    assert_eq!(
        v["manifest"]["releases"][0]["images"][0]["reference"],
        vectors::IMAGE_REF
    );
}

/// A site for the vectors: plant-001 with cluster line-a, trusting the
/// vector's policy, its state in the workspace.
fn vector_site(dir: &std::path::Path, policy: &std::path::Path) -> PathBuf {
    let site = dir.join("site.yaml");
    fs::write(
        &site,
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: plant-001\nclusters: [line-a]\ntrustPolicy: {}\n",
            policy.display()
        ),
    )
    .unwrap();
    site
}

/// The import reaches every bundle vector's verdict too, and a refused
/// bundle changes nothing at the site but its audit trail: no sequence,
/// no release, no image, no high-water mark. A valid policy update it
/// carried stands on its own and is kept (`revoked-key-signature`: the
/// revocation outlives the refusal); an invalid one changes nothing.
#[test]
fn every_vector_gets_its_expected_outcome_from_import() {
    for v in vectors::all() {
        let dir = vectors_dir().join(v.name);
        let ws = tempfile::tempdir().unwrap();
        let site = vector_site(ws.path(), &dir.join("policy.yaml"));
        let bundle = dir.join("bundle.tender");
        let import = |extra: &[&str]| {
            TestCommand::new(ws.path())
                .arg("import")
                .arg(&bundle)
                .arg("--site")
                .arg(&site)
                .arg("--no-progress")
                .args(extra)
                .output()
        };
        // --check reaches the same verdict and stores nothing, not even a
        // policy update the bundle carries.
        let o = import(&["--check"]);
        assert_exit(&o, v.expected.exit_code);
        assert!(
            stderr(&o).contains(v.expected.reason_contains),
            "{}: {}",
            v.name,
            stderr(&o)
        );
        assert!(!ws.path().join("state/site.json").exists(), "{}", v.name);
        let o = import(&[]);
        assert_exit(&o, v.expected.exit_code);
        let err = stderr(&o);
        assert!(
            err.contains(v.expected.reason_contains),
            "{}: expected reason containing {:?}, got: {err}",
            v.name,
            v.expected.reason_contains
        );
        let state = ws.path().join("state");
        if v.expected.exit_code == 0 {
            assert!(stdout(&o).starts_with("IMPORTED"), "{}", stdout(&o));
            continue;
        }
        if let Ok(text) = fs::read_to_string(state.join("site.json")) {
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(json["channels"], serde_json::json!({}), "{}", v.name);
            assert_eq!(json["current"], serde_json::json!({}), "{}", v.name);
            assert_eq!(v.name, "revoked-key-signature", "{text}");
            assert_eq!(json["trust"]["policy"]["policy"]["policy_version"], 2);
            // The update's own time, not the refused bundle's.
            assert_eq!(json["trust"]["high_water_mark"], "2026-11-02T00:00:00Z");
        }
        let store = state.join("store");
        assert!(
            !store.exists() || !tree(&store).iter().any(|f| f.starts_with("blobs/sha256/")),
            "{}: blobs stored",
            v.name
        );
        let audit = fs::read_to_string(state.join("audit.jsonl")).unwrap();
        assert!(
            audit.contains("\"result\":\"refused: "),
            "{}: {audit}",
            v.name
        );
    }
}

/// The vectors that need a site's (or the hub's) state: each step through
/// the real binary against one fresh site and hub, in order.
#[test]
fn scenario_vectors_get_their_outcome_at_every_step() {
    use tender_test_support::trust_vectors::{StepKind, scenarios};
    for scenario in scenarios() {
        let dir = vectors_dir().join(scenario.name);
        let ws = tempfile::tempdir().unwrap();
        let site = vector_site(ws.path(), &dir.join("policy.yaml"));
        let hub = ws.path().join("hub");
        for (i, step) in scenario.steps.iter().enumerate() {
            let file = dir.join(step.file);
            let mut cmd = TestCommand::new(ws.path());
            match step.kind {
                StepKind::Import => cmd
                    .arg("import")
                    .arg(&file)
                    .arg("--site")
                    .arg(&site)
                    .arg("--no-progress"),
                StepKind::PolicyApply => cmd
                    .args(["policy", "apply"])
                    .arg(&file)
                    .arg("--site")
                    .arg(&site),
                StepKind::HubAddSite => cmd
                    .args(["hub", "add-site", "plant-001", "--key"])
                    .arg(&file)
                    .arg("--state-dir")
                    .arg(&hub),
                StepKind::HubIngest => cmd
                    .args(["hub", "ingest"])
                    .arg(&file)
                    .arg("--state-dir")
                    .arg(&hub),
            };
            let o = cmd.output();
            let what = format!(
                "{} step {} ({} {})",
                scenario.name,
                i + 1,
                step.kind.as_str(),
                step.file
            );
            assert_eq!(
                o.status.code(),
                Some(step.expected.exit_code),
                "{what}: {}{}",
                stdout(&o),
                stderr(&o)
            );
            let said = format!("{}{}", stdout(&o), stderr(&o));
            assert!(
                said.contains(step.expected.reason_contains),
                "{what}: expected {:?} in: {said}",
                step.expected.reason_contains
            );
        }
    }
}
