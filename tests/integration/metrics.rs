//! The site's Prometheus textfile (docs/site.md "Metrics"), after real
//! imports, a refused import and a rollback through the `tender` binary,
//! read back with a real exposition-format parser: `prometheus_client`'s
//! (the venv made by scripts/install-deps.sh).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::util::{
    Workspace, assert_exit, export_fleet, sample_fleet, tender, venv_python, write_site_file,
};

const LINE_A: &str = "plant-001-line-a";
const LINE_B: &str = "plant-001-line-b";

/// Parses the file with prometheus_client and prints every sample with
/// its family's type and help.
const PARSE: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        out.append({"family": fam.name, "type": fam.type, "help": fam.documentation,
                    "name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(out))
"#;

/// `name{labels}` → value, after checking every family is a documented gauge.
fn parse(file: &Path) -> BTreeMap<String, f64> {
    let o = Command::new(venv_python())
        .args(["-c", PARSE])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "prometheus_client could not parse {}: {}\n{}",
        file.display(),
        String::from_utf8_lossy(&o.stderr),
        fs::read_to_string(file).unwrap_or_default()
    );
    let samples: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!samples.is_empty());
    let mut out = BTreeMap::new();
    for s in samples {
        assert_eq!(s["type"], "gauge", "{s}");
        assert!(!s["help"].as_str().unwrap().is_empty(), "{s}");
        let labels: BTreeMap<String, String> = serde_json::from_value(s["labels"].clone()).unwrap();
        let labels: Vec<String> = labels
            .iter()
            .filter(|(k, _)| k.as_str() != "site")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            s["labels"]["site"], "plant-001",
            "every sample names the site: {s}"
        );
        let key = format!("{}{{{}}}", s["name"].as_str().unwrap(), labels.join(","));
        assert!(out.insert(key, s["value"].as_f64().unwrap()).is_none());
    }
    out
}

fn import(ws: &Workspace, bundle: &Path) -> std::process::Output {
    ws.tender()
        .arg("import")
        .arg(bundle)
        .args([
            "--site",
            "site.yaml",
            "--operator",
            "tester",
            "--no-progress",
        ])
        .output()
}

/// Blobs and bytes in the embedded store, counted here.
fn store_size(store: &Path) -> (f64, f64) {
    let mut blobs = 0.0;
    let mut bytes = 0.0;
    for entry in fs::read_dir(store.join("blobs/sha256")).unwrap() {
        blobs += 1.0;
        bytes += entry.unwrap().metadata().unwrap().len() as f64;
    }
    (blobs, bytes)
}

#[test]
fn the_site_writes_parseable_metrics_after_every_import_and_rollback() {
    let ws = Workspace::new();
    let seq1 = export_fleet(&ws, &sample_fleet(), "seq1.tender");
    let seq2 = export_fleet(&ws, &sample_fleet(), "seq2.tender");
    write_site_file(
        &ws,
        "site.yaml",
        "plant-001",
        &[LINE_A, LINE_B],
        "metricsFile: metrics/tender.prom\n",
    );
    let file = ws.join("metrics/tender.prom");

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as f64;
    assert_exit(&import(&ws, &seq1), 0);
    let m = parse(&file);
    for cluster in [LINE_A, LINE_B] {
        let key = format!(
            "tender_cluster_release_sequence{{bundle_id={},channel=stable,cluster={cluster}}}",
            crate::util::inspect_json(&seq1)["manifest"]["bundle_id"]
                .as_str()
                .unwrap()
        );
        assert_eq!(m.get(&key), Some(&1.0), "{key}: {m:#?}");
    }
    assert_eq!(m["tender_channel_sequence{channel=stable}"], 1.0);
    assert_eq!(m["tender_last_import_outcome{outcome=imported}"], 1.0);
    assert_eq!(m["tender_last_import_outcome{outcome=refused}"], 0.0);
    assert_eq!(m["tender_last_import_sequence{}"], 1.0);
    let at = m["tender_last_import_timestamp_seconds{}"];
    assert!(
        at >= before - 1.0 && at <= before + 600.0,
        "{at} vs {before}"
    );
    assert_eq!(m["tender_audit_chain_ok{}"], 1.0);
    assert_eq!(m["tender_audit_entries{}"], 1.0);
    let (blobs, bytes) = store_size(&ws.join("state/store"));
    assert!(blobs > 3.0);
    assert_eq!(m["tender_store_blobs{}"], blobs);
    assert_eq!(m["tender_store_bytes{}"], bytes);
    assert!(!m.keys().any(|k| k.starts_with("tender_last_rollback")));
    // Replaced atomically: nothing but the file in its directory (the
    // temporary file was renamed over it).
    let names: Vec<String> = fs::read_dir(ws.join("metrics"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tender.prom"]);

    // A newer release, then the older bundle again: refused, and the
    // metrics say so while the clusters keep running sequence 2.
    assert_exit(&import(&ws, &seq2), 0);
    assert_exit(&import(&ws, &seq1), 3);
    let m = parse(&file);
    assert_eq!(m["tender_last_import_outcome{outcome=refused}"], 1.0);
    assert_eq!(m["tender_last_import_outcome{outcome=imported}"], 0.0);
    assert_eq!(m["tender_last_import_sequence{}"], 1.0);
    assert_eq!(m["tender_channel_sequence{channel=stable}"], 2.0);
    assert_eq!(m["tender_audit_entries{}"], 3.0);
    let seq2_id = crate::util::inspect_json(&seq2)["manifest"]["bundle_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        m[&format!(
            "tender_cluster_release_sequence{{bundle_id={seq2_id},channel=stable,cluster={LINE_A}}}"
        )],
        2.0
    );

    // A rollback of line A: written again, line A back on sequence 1.
    let o = tender(
        &[
            "rollback",
            "--site",
            "site.yaml",
            "--cluster",
            LINE_A,
            "--to",
            "1",
            "--operator",
            "tester",
        ],
        ws.path(),
    );
    assert_exit(&o, 0);
    let m = parse(&file);
    assert_eq!(m["tender_last_rollback_success{}"], 1.0);
    assert!(m["tender_last_rollback_timestamp_seconds{}"] >= at);
    let line_a: Vec<(&String, &f64)> = m
        .iter()
        .filter(|(k, _)| k.starts_with("tender_cluster_release_sequence") && k.contains(LINE_A))
        .collect();
    assert_eq!(line_a.len(), 1, "{line_a:?}");
    assert_eq!(*line_a[0].1, 1.0);
    // A rollback to a sequence the site does not have fails: also written.
    let o = tender(
        &[
            "rollback",
            "--site",
            "site.yaml",
            "--cluster",
            LINE_A,
            "--to",
            "9",
            "--operator",
            "tester",
        ],
        ws.path(),
    );
    assert_ne!(o.status.code(), Some(0));
    assert_eq!(parse(&file)["tender_last_rollback_success{}"], 0.0);
}

#[test]
fn without_metrics_file_the_textfile_goes_to_the_state_dir() {
    let ws = Workspace::new();
    let seq1 = export_fleet(&ws, &sample_fleet(), "seq1.tender");
    write_site_file(&ws, "site.yaml", "plant-001", &[LINE_A, LINE_B], "");
    assert_exit(&import(&ws, &seq1), 0);
    let m = parse(&ws.join("state/tender.prom"));
    assert_eq!(m["tender_site_info{}"], 1.0);
}
