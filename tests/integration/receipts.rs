//! `tender hub add-site / ingest / status` end to end, with receipts made
//! by the library as a site would make them.

use std::path::{Path, PathBuf};

use tender_format::Digest;
use tender_receipt::{Action, FORMAT, Receipt, ReleaseEntry};
use tender_trust::PrivateKey;

use crate::util::{assert_exit, stderr, stdout, tender};

fn hub(args: &[&str], dir: &Path) -> std::process::Output {
    let mut all = vec!["hub"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--state-dir", "hub-state"]);
    tender(&all, dir)
}

/// A receipt for `site` at `time`, running `sequence` on cluster line-a
/// of channel stable, signed with `key` and written to `dir/name`.
fn write_receipt(
    dir: &Path,
    name: &str,
    key: &PrivateKey,
    site: &str,
    time: &str,
    sequence: u64,
) -> PathBuf {
    let mut r = Receipt {
        format: FORMAT.into(),
        site: site.into(),
        action: Action::Import,
        result: "ok".into(),
        time: time.into(),
        bundle_id: format!("fleet-{sequence}"),
        manifest_digest: Digest::of(format!("manifest {sequence}").as_bytes()),
        channel: "stable".into(),
        sequence,
        releases: vec![ReleaseEntry {
            cluster: "line-a".into(),
            channel: "stable".into(),
            sequence,
            bundle_id: format!("fleet-{sequence}"),
            manifests: Digest::of(format!("set {sequence}").as_bytes()),
        }],
        audit_last_hash: Digest::of(b"audit head"),
        audit_index: 1,
        inventory_digest: Digest::of(b""),
        inventory: None,
    };
    r.set_inventory([Digest::of(b"blob")], true);
    let path = dir.join(name);
    r.sign(key).to_file(&path).unwrap();
    path
}

#[test]
fn hub_records_receipts_and_reports_stale_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["plant-001", "plant-002", "intruder"] {
        assert_exit(&tender(&["keygen", name], d), 0);
    }
    let key = |name: &str| PrivateKey::read(&d.join(format!("{name}.key"))).unwrap();

    // add-site: registers once, never replaces a key, checks the name.
    let o = hub(&["add-site", "plant-001", "--key", "plant-001.pub"], d);
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("registered site plant-001"),
        "{}",
        stdout(&o)
    );
    let o = hub(&["add-site", "plant-001", "--key", "plant-001.pub"], d);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("already registered"), "{}", stdout(&o));
    let o = hub(&["add-site", "plant-001", "--key", "intruder.pub"], d);
    assert_exit(&o, 1);
    assert!(stderr(&o).contains("refusing to replace"), "{}", stderr(&o));
    assert_exit(&hub(&["add-site", "../x", "--key", "intruder.pub"], d), 2);
    assert_exit(
        &hub(&["add-site", "plant-002", "--key", "plant-002.pub"], d),
        0,
    );

    std::fs::create_dir_all(d.join("hub-state/sequences")).unwrap();
    std::fs::write(d.join("hub-state/sequences/stable"), "5\n").unwrap();

    let now = tender_trust::keys::now_rfc3339();
    let p1 = key("plant-001");
    write_receipt(d, "r5.json", &p1, "plant-001", &now, 5);
    write_receipt(d, "r4.json", &p1, "plant-001", "2020-01-01T00:00:00Z", 4);
    write_receipt(d, "forged.json", &key("intruder"), "plant-001", &now, 6);
    write_receipt(d, "unknown.json", &key("intruder"), "plant-009", &now, 6);
    write_receipt(
        d,
        "old.json",
        &key("plant-002"),
        "plant-002",
        "2020-01-01T00:00:00Z",
        3,
    );

    let o = hub(&["ingest", "r5.json", "old.json"], d);
    assert_exit(&o, 0);
    let recorded = stdout(&o)
        .lines()
        .filter(|l| l.starts_with("recorded"))
        .count();
    assert_eq!(recorded, 2, "{}", stdout(&o));

    // One line per receipt, all processed, then exit 3.
    let o = hub(
        &[
            "ingest",
            "r5.json",
            "r4.json",
            "forged.json",
            "unknown.json",
        ],
        d,
    );
    assert_exit(&o, 3);
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("duplicate") && lines[0].contains("r5.json"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("REFUSED") && lines[1].contains("replayed or reordered"),
        "{out}"
    );
    let intruder_id = key("intruder").public().id().to_string();
    assert!(
        lines[2].starts_with("REFUSED") && lines[2].contains(&intruder_id),
        "{out}"
    );
    assert!(
        lines[3].contains("plant-009, which is not registered"),
        "{out}"
    );
    assert!(
        stderr(&o).contains("3 of 4 receipt(s) refused"),
        "{}",
        stderr(&o)
    );

    let o = hub(&["ingest", "r5.json", "--json"], d);
    assert_exit(&o, 0);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json[0]["status"], "duplicate");
    assert_eq!(json[0]["site"], "plant-001");

    // Status: plant-001 current at 5; plant-002 silent since 2020.
    let o = hub(&["status"], d);
    assert_exit(&o, 0);
    let out = stdout(&o);
    let row = |site: &str| {
        out.lines()
            .find(|l| l.starts_with(site))
            .unwrap_or_else(|| panic!("no row for {site}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        row("plant-001")[..6],
        ["plant-001", "line-a", "stable", "5", "5", "current"]
    );
    assert!(!row("plant-001").contains(&"OVERDUE"), "{out}");
    assert_eq!(
        row("plant-002")[..6],
        ["plant-002", "line-a", "stable", "3", "5", "stale"]
    );
    assert!(row("plant-002").contains(&"OVERDUE"), "{out}");

    // The hub exports 6: plant-001 falls behind.
    std::fs::write(d.join("hub-state/sequences/stable"), "6\n").unwrap();
    let o = hub(&["status", "--json", "--stale-after-days", "100000"], d);
    assert_exit(&o, 0);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p1 = &json["sites"][0];
    assert_eq!(p1["site"], "plant-001");
    assert_eq!(p1["clusters"][0]["state"], "stale");
    assert_eq!(p1["clusters"][0]["latest"], 6);
    assert_eq!(json["sites"][1]["overdue"], false);
    assert!(d.join("hub-state/inventories/plant-001.json").is_file());
}
