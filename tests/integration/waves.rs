//! Rollout waves gated on receipts, end to end through the `tender`
//! binary: the sample fleet with waves (`testdata/fleet/fleet-waves.yaml`:
//! canary line A first, production after a 24h soak). A production export
//! is refused until the canary site's own import receipt is ingested at the
//! hub and the soak has passed, and goes out with `--override-gate`,
//! recorded in the signed manifest and the hub's export log.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tender_test_support::repo_root;

use crate::util::{
    Workspace, assert_exit, copy_tree, inspect_json, stderr, stdout, tender, write_site_file,
};

const CANARY: &str = "plant-001-line-a";

/// A copy of `testdata/fleet` in the workspace, with the waves fleet file
/// as `fleet.yaml`, its soak replaced by `soak`.
fn waves_fleet(ws: &Workspace, name: &str, soak: &str) -> PathBuf {
    let dir = ws.join(name);
    copy_tree(&repo_root().join("testdata/fleet"), &dir);
    let text = fs::read_to_string(dir.join("fleet-waves.yaml")).unwrap();
    assert_eq!(text.matches("soak: 24h").count(), 1);
    let file = dir.join("fleet.yaml");
    fs::write(&file, text.replace("soak: 24h", &format!("soak: {soak}"))).unwrap();
    file
}

/// `tender export FLEET -o OUT` in the workspace, OUT relative to it.
fn export(ws: &Workspace, fleet: &Path, out: &str, extra: &[&str]) -> std::process::Output {
    ws.export(fleet)
        .arg("-o")
        .arg(ws.join(out))
        .args(extra)
        .output()
}

/// `tender hub ARGS --state-dir hub-state` in the workspace.
fn hub(ws: &Workspace, args: &[&str]) -> std::process::Output {
    ws.tender()
        .arg("hub")
        .args(args)
        .arg("--state-dir")
        .arg(ws.join("hub-state"))
        .output()
}

fn export_log(ws: &Workspace) -> Vec<Value> {
    fs::read_to_string(ws.join("hub-state/exports.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn production_waits_for_the_canary_receipt_and_its_soak_unless_overridden() {
    let ws = Workspace::new();
    let fleet = waves_fleet(&ws, "fleet", "24h");
    let fleet_no_soak = waves_fleet(&ws, "fleet-no-soak", "0s");

    // Nothing reported yet: production is refused, naming the canary line,
    // and nothing is written or numbered.
    let o = export(&ws, &fleet, "prod.tender", &["--wave", "production"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("wave production waits for wave canary (soak 24h)")
            && err.contains(&format!("{CANARY} (never reported)"))
            && err.contains("--override-gate"),
        "{err}"
    );
    assert!(!ws.join("prod.tender").exists());
    assert!(!ws.join("hub-state/exports.jsonl").exists());
    // An export of every cluster includes production: refused the same.
    assert_exit(&export(&ws, &fleet, "all.tender", &[]), 1);

    // The canary wave has no gate.
    let o = export(&ws, &fleet, "canary.tender", &["--wave", "canary"]);
    assert_exit(&o, 0);
    assert_eq!(
        inspect_json(&ws.join("canary.tender"))["manifest"]["targets"]["clusters"],
        serde_json::json!([CANARY])
    );

    // The canary site imports it and writes its receipt; the hub ingests it.
    assert_exit(&tender(&["keygen", "site"], ws.path()), 0);
    let site = write_site_file(
        &ws,
        "site.yaml",
        "plant-001",
        &[CANARY],
        "siteKey: site.key\n",
    );
    let o = ws
        .tender()
        .arg("import")
        .arg(ws.join("canary.tender"))
        .arg("--site")
        .arg(&site)
        .args(["--operator", "tester", "--no-progress", "--json"])
        .output();
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let receipt = report["receipt"].as_str().expect("a receipt").to_string();
    assert_exit(
        &hub(&ws, &["add-site", "plant-001", "--key", "site.pub"]),
        0,
    );
    assert_exit(&hub(&ws, &["ingest", &receipt]), 0);

    // Reported, but not for 24h yet: still refused, saying how long.
    let o = export(&ws, &fleet, "prod.tender", &["--wave", "production"]);
    assert_exit(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains(&format!("{CANARY} (runs this release since "))
            && err.contains("of the 24h soak"),
        "{err}"
    );

    // A release that changes the canary's manifests is not "this release":
    // the canary runs replicaCount 2, the edited inputs render 3.
    let edited = ws.join("fleet-no-soak/fleet.yaml");
    let text = fs::read_to_string(&edited).unwrap();
    fs::write(
        &edited,
        text.replace("inline: { replicaCount: 2,", "inline: { replicaCount: 3,"),
    )
    .unwrap();
    let o = export(
        &ws,
        &fleet_no_soak,
        "prod.tender",
        &["--wave", "production"],
    );
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains(&format!("{CANARY} (runs sequence 1 (manifests sha256:")),
        "{}",
        stderr(&o)
    );
    fs::write(&edited, text).unwrap();

    // With the soak met (0s: has reported), production goes out.
    let o = export(
        &ws,
        &fleet_no_soak,
        "prod.tender",
        &["--wave", "production"],
    );
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("gate      wave production waits for wave canary (soak 0s): holds"),
        "{}",
        stdout(&o)
    );
    let manifest = &inspect_json(&ws.join("prod.tender"))["manifest"];
    assert_eq!(
        manifest["targets"]["clusters"],
        serde_json::json!(["plant-001-line-b", "plant-002-assembly"])
    );
    assert!(manifest.get("gate_override").is_none(), "{manifest}");

    // With the 24h soak still running, an override sends it, and says why
    // in the signed manifest, in `tender inspect` and in the hub's log.
    let reason = "line A is down for a week; production needs the fix";
    let o = export(
        &ws,
        &fleet,
        "prod-override.tender",
        &["--wave", "production", "--override-gate", reason],
    );
    assert_exit(&o, 0);
    assert!(
        stderr(&o).contains("wave gate overridden"),
        "{}",
        stderr(&o)
    );
    let bundle = ws.join("prod-override.tender");
    let manifest = &inspect_json(&bundle)["manifest"];
    assert_eq!(
        manifest["gate_override"],
        serde_json::json!({ "reason": reason, "pending": [CANARY] })
    );
    let o = ws.tender().arg("inspect").arg(&bundle).ok();
    assert!(
        stdout(&o).contains(&format!(
            "OVERRIDE  wave gate overridden: {reason} (pending: {CANARY})"
        )),
        "{}",
        stdout(&o)
    );
    // `tender verify` accepts the bundle: the field is part of format v1.
    ws.tender()
        .arg("verify")
        .arg(&bundle)
        .args(["--trust", "policy.yaml", "--no-progress"])
        .ok();
    let log = export_log(&ws);
    assert_eq!(log.len(), 3, "{log:?}");
    assert!(log[1].get("gate_override").is_none());
    assert_eq!(log[2]["gate_override"]["reason"], reason);
    assert_eq!(log[2]["sequence"], 3);
}

#[test]
fn an_unknown_wave_and_a_blank_override_are_usage_errors() {
    let ws = Workspace::new();
    let fleet = waves_fleet(&ws, "fleet", "24h");
    let o = export(&ws, &fleet, "x.tender", &["--wave", "pilot"]);
    assert_exit(&o, 2);
    assert!(
        stderr(&o)
            .contains("--wave pilot: the fleet has no such wave (its waves: canary, production)"),
        "{}",
        stderr(&o)
    );
    let o = export(
        &ws,
        &fleet,
        "x.tender",
        &["--wave", "production", "--override-gate", " "],
    );
    assert_exit(&o, 2);
}
