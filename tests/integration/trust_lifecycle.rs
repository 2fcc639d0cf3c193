//! The trust lifecycle through the real binary (bundle-spec §7.3, §11.7,
//! docs/trust-policy.md): root holders sign policy updates at the hub,
//! sites apply them from a file or from the stick, a runaway sequence is
//! recovered without touching a state file, stale bundles and expired
//! approvals are refused. Every refusal leaves the site's policy and
//! state as they were and gets an audit line.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tender_test_support::vectors::signed_bundle;
use tender_trust::PrivateKey;

use crate::util::{Workspace, assert_exit, sample_fleet, stderr, stdout, tender, write_site_file};

const CLUSTERS: [&str; 2] = ["plant-001-line-a", "plant-001-line-b"];

/// A site file for plant-001 (the vector bundles' site, cluster line-a)
/// trusting `policy.yaml` of the workspace; `extra` goes in as is.
fn vector_site(ws: &Workspace, extra: &str) -> PathBuf {
    write_site_file(ws, "site.yaml", "plant-001", &["line-a"], extra)
}

fn site_json(ws: &Workspace) -> Option<Value> {
    let text = fs::read_to_string(ws.join("state/site.json")).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

/// The `action`/`result` of each audit line.
fn audit_lines(ws: &Workspace) -> Vec<(String, String)> {
    fs::read_to_string(ws.join("state/audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["action"].as_str().unwrap().to_string(),
                v["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn policy(ws: &Workspace, file: &str, version: u64, keys: &[(&str, &str)], extra: &str) {
    let mut text = format!("version: 1\npolicy_version: {version}\nkeys:\n");
    for (name, roles) in keys {
        text.push_str(&format!(
            "  - {{name: {name}, public_key_file: {name}.pub, roles: [{roles}]}}\n"
        ));
    }
    text.push_str("thresholds:\n  release: 1\n  root: 2\n");
    text.push_str(extra);
    fs::write(ws.join(file), text).unwrap();
}

fn run(ws: &Workspace, args: &[&str]) -> std::process::Output {
    tender(args, ws.path())
}

/// `tender ARGS --site SITE` in the workspace.
fn at_site(ws: &Workspace, site: &Path, args: &[&str]) -> std::process::Output {
    ws.tender().args(args).arg("--site").arg(site).output()
}

/// Add a key, rotate the hub key, revoke a leaked key: the walkthrough of
/// docs/trust-policy.md, at the hub and at the site, with two of two root
/// holders (root-a, root-b) and the refusals an operator can meet.
#[test]
fn root_holders_rotate_and_revoke_keys_with_signed_updates() {
    let ws = Workspace::new();
    for name in ["root-a", "root-b", "root-c", "hub2"] {
        assert_exit(&run(&ws, &["keygen", name]), 0);
    }
    let roots = [("root-a", "root"), ("root-b", "root")];
    policy(
        &ws,
        "policy.yaml",
        1,
        &[roots[0], roots[1], ("hub", "release")],
        "",
    );
    let site = write_site_file(&ws, "site.yaml", "plant-001", &CLUSTERS, "");

    // Policy 2 adds hub2 (rotation, step one) and a third root key.
    policy(
        &ws,
        "policy-2.yaml",
        2,
        &[
            roots[0],
            roots[1],
            ("root-c", "root"),
            ("hub", "release"),
            ("hub2", "release"),
        ],
        "",
    );
    let o = run(
        &ws,
        &[
            "policy",
            "sign",
            "policy-2.yaml",
            "--key",
            "root-a.key",
            "-o",
            "policy-2.json",
        ],
    );
    assert_exit(&o, 0);
    // Made again from YAML it would void the signatures collected so far.
    let again = [
        "policy",
        "sign",
        "policy-2.yaml",
        "--key",
        "root-b.key",
        "-o",
        "policy-2.json",
    ];
    let o = run(&ws, &again);
    assert_exit(&o, 2);
    assert!(
        stderr(&o).contains("policy-2.json exists"),
        "{}",
        stderr(&o)
    );
    // One root of two: verify and apply refuse, and change nothing.
    let o = at_site(&ws, &site, &["policy", "verify", "policy-2.json"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains(
            "root role of policy 1 needs 2 valid signature(s) from distinct root keys, found 1"
        ),
        "{}",
        stderr(&o)
    );
    let o = at_site(&ws, &site, &["policy", "apply", "policy-2.json"]);
    assert_exit(&o, 3);
    assert!(site_json(&ws).is_none(), "a refused update stores nothing");
    assert_eq!(
        audit_lines(&ws).last().unwrap().0,
        "policy-update",
        "refusals are audited"
    );
    assert!(
        audit_lines(&ws)
            .last()
            .unwrap()
            .1
            .starts_with("refused: policy update 2")
    );
    // The same key again counts once.
    assert_exit(
        &run(
            &ws,
            &["policy", "sign", "policy-2.json", "--key", "root-a.key"],
        ),
        0,
    );
    assert_exit(
        &at_site(&ws, &site, &["policy", "verify", "policy-2.json"]),
        3,
    );
    assert_exit(
        &run(
            &ws,
            &["policy", "sign", "policy-2.json", "--key", "root-b.key"],
        ),
        0,
    );
    let o = at_site(&ws, &site, &["policy", "verify", "policy-2.json", "--json"]);
    assert_exit(&o, 0);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["policy_version"], 2);
    assert!(site_json(&ws).is_none(), "verify stores nothing");

    let o = at_site(&ws, &site, &["policy", "apply", "policy-2.json"]);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("APPLIED policy 1 -> 2"),
        "{}",
        stdout(&o)
    );
    let o = at_site(&ws, &site, &["policy", "show", "--json"]);
    assert_exit(&o, 0);
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["policy_version"], 2);
    assert_eq!(shown["keys"].as_array().unwrap().len(), 5);
    // Applying the same file again changes nothing; an older one is a rollback.
    assert_exit(
        &at_site(&ws, &site, &["policy", "apply", "policy-2.json"]),
        0,
    );

    // Policy 3 revokes the leaked hub key and root-a (root-b and root-c
    // now hold root; both policies' thresholds are 2).
    policy(
        &ws,
        "policy-3.yaml",
        3,
        &[("root-b", "root"), ("root-c", "root"), ("hub2", "release")],
        "",
    );
    for key in ["root-a", "root-b"] {
        let mut args = vec!["policy", "sign"];
        if key == "root-a" {
            args.extend([
                "policy-3.yaml",
                "--key",
                "root-a.key",
                "-o",
                "policy-3.json",
            ]);
        } else {
            args.extend(["policy-3.json", "--key", "root-b.key"]);
        }
        assert_exit(&run(&ws, &args), 0);
    }
    // root-a and root-b are two of policy 2's roots, but policy 3 has only
    // root-b of them: the new root holders must agree too.
    let o = at_site(&ws, &site, &["policy", "apply", "policy-3.json"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("root role of policy 3 needs 2"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        site_json(&ws).unwrap()["trust"]["policy"]["policy"]["policy_version"],
        2
    );
    assert_exit(
        &run(
            &ws,
            &["policy", "sign", "policy-3.json", "--key", "root-c.key"],
        ),
        0,
    );
    assert_exit(
        &at_site(&ws, &site, &["policy", "apply", "policy-3.json"]),
        0,
    );
    let o = at_site(&ws, &site, &["policy", "apply", "policy-2.json"]);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("rollback"), "{}", stderr(&o));
    // A file that is no update: refused, audited, nothing changed.
    let before = fs::read(ws.join("state/site.json")).unwrap();
    fs::write(ws.join("junk.json"), "{\"format\":\"tender-policy/v1\"}").unwrap();
    let o = at_site(&ws, &site, &["policy", "apply", "junk.json"]);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("junk.json: policy update is not canonical JSON"),
        "{}",
        stderr(&o)
    );
    assert_eq!(before, fs::read(ws.join("state/site.json")).unwrap());

    let o = at_site(&ws, &site, &["policy", "show"]);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("POLICY 3"), "{}", stdout(&o));
    assert!(
        !stdout(&o).contains(" hub "),
        "hub is revoked: {}",
        stdout(&o)
    );
    let results: Vec<String> = audit_lines(&ws)
        .into_iter()
        .filter(|(a, _)| a == "policy-update")
        .map(|(_, r)| r.split(':').next().unwrap().to_string())
        .collect();
    assert_eq!(
        results,
        [
            "refused", "accepted", "refused", "accepted", "refused", "refused"
        ],
        "{results:?}"
    );
    let o = at_site(&ws, &site, &["audit", "verify"]);
    assert_exit(&o, 0);
}

/// The fast-forward attack and its recovery with real exports: a stolen
/// hub key signs sequence 2^63 and the channel locks; the root holders
/// sign policy 2, which revokes that key, trusts hub2 and resets the
/// channel's floor; the hub carries it on the next stick (`export
/// --policy-update`), and one import applies it and the release. No state
/// file is edited.
#[test]
fn a_channel_locked_by_a_runaway_sequence_recovers_from_one_stick() {
    let hub = Workspace::new();
    for name in ["root-a", "root-b", "hub2"] {
        assert_exit(&run(&hub, &["keygen", name]), 0);
    }
    let site_ws = Workspace::new();
    for file in ["root-a.pub", "root-b.pub", "hub.pub"] {
        fs::copy(hub.join(file), site_ws.join(file)).unwrap();
    }
    let roots = [("root-a", "root"), ("root-b", "root")];
    policy(
        &site_ws,
        "policy.yaml",
        1,
        &[roots[0], roots[1], ("hub", "release")],
        "",
    );
    let site = write_site_file(&site_ws, "site.yaml", "plant-001", &CLUSTERS, "");
    let import = |bundle: &Path| {
        site_ws
            .tender()
            .arg("import")
            .arg(bundle)
            .arg("--site")
            .arg(&site)
            .arg("--no-progress")
            .output()
    };
    let export = |ws: &Workspace, out: &str, extra: &[&str]| {
        ws.export(sample_fleet()).args(["-o", out]).args(extra).ok();
        ws.join(out)
    };

    assert_exit(&import(&export(&hub, "seq1.tender", &[])), 0);
    // The thief exports from its own hub state with the stolen key.
    let thief = Workspace::new();
    fs::copy(hub.join("hub.key"), thief.join("hub.key")).unwrap();
    let runaway = export(
        &thief,
        "runaway.tender",
        &["--sequence", "9223372036854775808"],
    );
    assert_exit(&import(&runaway), 0);
    let locked = export(&hub, "seq2.tender", &[]);
    let o = import(&locked);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("is not newer than 9223372036854775808"),
        "{}",
        stderr(&o)
    );

    // Recovery, at the hub.
    policy(
        &hub,
        "policy-2.yaml",
        2,
        &[roots[0], roots[1], ("hub2", "release")],
        "",
    );
    // Signed as of an hour ago: the recovery export is newer.
    let an_hour_ago = {
        let now =
            tender_format::policy_update::unix_seconds(&tender_trust::keys::now_rfc3339()).unwrap();
        time_text(now - 3600)
    };
    let o = run(
        &hub,
        &[
            "policy",
            "sign",
            "policy-2.yaml",
            "--key",
            "root-a.key",
            "-o",
            "policy-2.json",
            "--reset-sequence",
            "stable=2",
            "--created",
            &an_hour_ago,
        ],
    );
    assert_exit(&o, 0);
    // Half signed, it would make every site refuse the stick: export says so.
    let o = hub
        .export(sample_fleet())
        .args(["-o", "x.tender", "--policy-update", "policy-2.json"])
        .expect_exit(1);
    assert!(
        stderr(&o).contains("not carrying the policy updates")
            && stderr(&o).contains("root role of policy 2 needs 2"),
        "{}",
        stderr(&o)
    );
    assert!(!hub.join("x.tender").exists());
    assert_exit(
        &run(
            &hub,
            &["policy", "sign", "policy-2.json", "--key", "root-b.key"],
        ),
        0,
    );
    let o = run(&hub, &["policy", "show", "policy-2.json"]);
    assert!(
        stdout(&o).contains("reset     channel stable sequence to 2"),
        "{}",
        stdout(&o)
    );
    // The hub signs with hub2 from now on.
    fs::copy(hub.join("hub2.key"), hub.join("hub.key")).unwrap();
    let recovery = export(&hub, "seq3.tender", &["--policy-update", "policy-2.json"]);
    assert_eq!(
        crate::util::inspect_json(&recovery)["manifest"]["policy_updates"][0]["policy"]["policy_version"],
        2
    );
    // --check judges the carried update and its reset without storing it.
    let before = fs::read(site_ws.join("state/site.json")).unwrap();
    let o = site_ws
        .tender()
        .arg("import")
        .arg(&recovery)
        .arg("--site")
        .arg(&site)
        .args(["--check", "--no-progress"])
        .ok();
    assert!(stdout(&o).contains("would import"), "{}", stdout(&o));
    assert_eq!(before, fs::read(site_ws.join("state/site.json")).unwrap());
    let o = import(&recovery);
    assert_exit(&o, 0);
    let state = site_json(&site_ws).unwrap();
    assert_eq!(state["channels"]["stable"]["sequence"], 3);
    assert_eq!(state["channels"]["stable"]["reset"]["policy_version"], 2);
    // The runaway bundle: its key is revoked, and it predates the reset.
    let o = import(&runaway);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("is not trusted"), "{}", stderr(&o));
    let audit: Vec<String> = audit_lines(&site_ws)
        .into_iter()
        .map(|(a, r)| format!("{a}: {r}"))
        .collect();
    assert!(
        audit
            .iter()
            .any(|l| l == "policy-update: accepted: policy 1 -> 2"),
        "{audit:?}"
    );
    assert_exit(&at_site(&site_ws, &site, &["audit", "verify"]), 0);
}

fn time_text(seconds: i64) -> String {
    tender_format::policy_update::utc_text(seconds).unwrap()
}

/// Freshness: the high-water mark refuses a bundle older than the
/// channel's max_age, a trusted clock refuses one from the future, and an
/// approval older than its role_max_age no longer counts.
#[test]
fn stale_bundles_and_expired_approvals_are_refused() {
    let now =
        tender_format::policy_update::unix_seconds(&tender_trust::keys::now_rfc3339()).unwrap();
    let day = 86_400;
    let hub = PrivateKey::from_seed("hub", [1; 32]);
    let qa = PrivateKey::from_seed("qa", [3; 32]);
    let ws = Workspace::new();
    for k in [&hub, &qa] {
        fs::remove_file(ws.join(&format!("{}.pub", k.name()))).unwrap();
        fs::remove_file(ws.join(&format!("{}.key", k.name()))).unwrap();
        k.write_pair(ws.path()).unwrap();
    }
    let write = |name: &str, sequence: u64, created: i64| {
        let path = ws.join(name);
        fs::write(
            &path,
            signed_bundle(sequence, &time_text(created), vec![], &[&hub]),
        )
        .unwrap();
        path
    };
    let import = |site: &Path, bundle: &Path| {
        ws.tender()
            .arg("import")
            .arg(bundle)
            .arg("--site")
            .arg(site)
            .arg("--no-progress")
            .output()
    };

    // Without a trusted clock: only the high-water mark.
    let policy = "version: 1\nkeys:\n  - {name: hub, public_key_file: hub.pub, roles: [release]}\n  - {name: qa, public_key_file: qa.pub, roles: [approver]}\nthresholds:\n  release: 1\n  approver: 1\nchannels:\n  stable: {max_age: 30d}\n";
    fs::write(ws.join("policy.yaml"), policy).unwrap();
    let site = vector_site(&ws, "");
    let approve = |bundle: &Path| {
        ws.tender()
            .arg("sign")
            .arg(bundle)
            .args(["--key", "qa.key", "--role", "approver"])
            .ok();
    };
    let old = write("old.tender", 1, now - 100 * day);
    approve(&old);
    // First bundle ever: nothing to compare with, so it imports.
    assert_exit(&import(&site, &old), 0);
    let newer = write("newer.tender", 2, now - 60 * day);
    approve(&newer);
    assert_exit(&import(&site, &newer), 0);
    // 40 days older than the newest accepted, and max_age is 30d.
    let stale = write("stale.tender", 3, now - 100 * day);
    approve(&stale);
    let before = fs::read(ws.join("state/site.json")).unwrap();
    let o = import(&site, &stale);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("stale bundle: created"),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains("channel stable allows 30d"),
        "{}",
        stderr(&o)
    );
    assert_eq!(before, fs::read(ws.join("state/site.json")).unwrap());

    // With a trusted clock: now is the reference, and the future is refused.
    fs::remove_dir_all(ws.join("state")).unwrap();
    let site = vector_site(&ws, "trustedClock: true\n");
    let o = import(&site, &newer);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("this site's trusted clock"),
        "{}",
        stderr(&o)
    );
    let future = write("future.tender", 5, now + 2 * day);
    approve(&future);
    let o = import(&site, &future);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("ahead of this site's trusted clock"),
        "{}",
        stderr(&o)
    );
    let fresh = write("fresh.tender", 6, now - day);
    approve(&fresh);
    assert_exit(&import(&site, &fresh), 0);

    // Approvals expire after 7 days: 10 days is fresh for the channel,
    // but the approval no longer counts.
    fs::write(
        ws.join("policy.yaml"),
        format!("{policy}role_max_age:\n  approver: 7d\n"),
    )
    .unwrap();
    let before = fs::read(ws.join("state/site.json")).unwrap();
    let approval_expired = write("expired.tender", 7, now - 10 * day);
    approve(&approval_expired);
    let o = import(&site, &approval_expired);
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("has expired: the bundle is older than 7d"),
        "{}",
        stderr(&o)
    );
    assert_eq!(before, fs::read(ws.join("state/site.json")).unwrap());
}
