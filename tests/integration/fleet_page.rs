//! The fleet page (`tender hub report`) rendered by a real browser:
//! headless Chromium (Debian `chromium`, installed by
//! scripts/install-deps.sh) loads the page beside a small probe page that
//! reads what the browser made of it (the grid cells, their computed
//! highlight colours, the adoption plot's drawn lines) into its own DOM,
//! which `--dump-dom` prints.
//!
//! The hub state is the sample fleet with waves, exported for real (canary
//! line, production by override, canary again), and signed receipts from
//! its two sites spread over the past week, ending in a rollback of the
//! canary line.
//!
//! With `TENDER_FLEET_PAGE_SCREENSHOT=FILE.png` the test also saves a
//! screenshot of the page (docs/fleet-page.png is made this way).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tender_format::Digest;
use tender_receipt::{Action, FORMAT, Receipt, ReleaseEntry};
use tender_test_support::repo_root;
use tender_trust::PrivateKey;

use crate::util::{TestCommand, Workspace, copy_tree, inspect_json, stderr};

const LINE_A: &str = "plant-001-line-a";
const LINE_B: &str = "plant-001-line-b";
const ASSEMBLY: &str = "plant-002-assembly";

/// A bundle exported for real: its id, manifest digest, sequence and the
/// manifest set of each cluster.
struct Exported {
    bundle_id: String,
    manifest_digest: Digest,
    sequence: u64,
    sets: Vec<(String, Digest)>,
}

fn export(ws: &Workspace, fleet: &Path, name: &str, extra: &[&str]) -> Exported {
    let out = ws.join(name);
    ws.export(fleet).arg("-o").arg(&out).args(extra).ok();
    let json = inspect_json(&out);
    let m = &json["manifest"];
    Exported {
        bundle_id: m["bundle_id"].as_str().unwrap().into(),
        manifest_digest: json["manifest_digest"].as_str().unwrap().parse().unwrap(),
        sequence: m["sequence"].as_u64().unwrap(),
        sets: m["releases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["cluster"].as_str().unwrap().to_string(),
                    r["manifests"].as_str().unwrap().parse().unwrap(),
                )
            })
            .collect(),
    }
}

/// The release `b` gave `cluster`, as a receipt lists it.
fn release(b: &Exported, cluster: &str) -> ReleaseEntry {
    ReleaseEntry {
        cluster: cluster.into(),
        channel: "stable".into(),
        sequence: b.sequence,
        bundle_id: b.bundle_id.clone(),
        manifests: b.sets.iter().find(|(c, _)| c == cluster).unwrap().1,
    }
}

/// A receipt of `site` about bundle `b`, `hours_ago` hours before now.
fn receipt(
    ws: &Workspace,
    key: &PrivateKey,
    action: Action,
    audit_index: u64,
    hours_ago: i64,
    b: &Exported,
    releases: Vec<ReleaseEntry>,
) -> PathBuf {
    let time = (time::OffsetDateTime::now_utc() - time::Duration::hours(hours_ago))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let mut r = Receipt {
        format: FORMAT.into(),
        site: key.name().into(),
        action,
        result: "ok".into(),
        time,
        bundle_id: b.bundle_id.clone(),
        manifest_digest: b.manifest_digest,
        channel: "stable".into(),
        sequence: b.sequence,
        releases,
        audit_last_hash: Digest::of(format!("audit {audit_index}").as_bytes()),
        audit_index,
        inventory_digest: Digest::of(b""),
        inventory: None,
    };
    r.set_inventory(std::iter::empty(), false);
    let signed = r.sign(key);
    let path = ws.join(&signed.file_name());
    signed.to_file(&path).unwrap();
    path
}

/// `tender hub SUBCOMMAND --state-dir hub-state` in the workspace; add the
/// subcommand's arguments.
fn hub(ws: &Workspace, subcommand: &str) -> TestCommand {
    let mut cmd = ws.tender();
    cmd.args(["hub", subcommand])
        .arg("--state-dir")
        .arg(ws.join("hub-state"));
    cmd
}

/// The sample fleet with waves, in `ws/name/fleet.yaml`, `from` → `to`.
fn fleet(ws: &Workspace, name: &str, from: &str, to: &str) -> PathBuf {
    let dir = ws.join(name);
    copy_tree(&repo_root().join("testdata/fleet"), &dir);
    let text = fs::read_to_string(dir.join("fleet-waves.yaml")).unwrap();
    assert_eq!(text.matches(from).count(), 1);
    let file = dir.join("fleet.yaml");
    fs::write(&file, text.replace(from, to)).unwrap();
    file
}

/// Reads, in the browser, what it made of the page: one line per cluster
/// cell, site header, gate and plot line, with computed colours and sizes.
const PROBE: &str = r#"<!DOCTYPE html><html><body><pre id="out"></pre>
<iframe id="page" src="index.html" width="1400" height="1000"></iframe>
<script>
document.getElementById('page').addEventListener('load', () => {
  const d = document.getElementById('page').contentDocument;
  const lines = [];
  for (const c of d.querySelectorAll('#grid .cluster')) {
    const r = c.getBoundingClientRect();
    lines.push(['cell', c.dataset.cluster, c.className, getComputedStyle(c).backgroundColor,
                c.closest('tr').dataset.wave, r.width > 0 && r.height > 0, c.innerText.replace(/\n/g, ' | ')].join(' ; '));
  }
  for (const th of d.querySelectorAll('#grid th[data-site]')) {
    lines.push(['site', th.dataset.site, th.className, getComputedStyle(th).backgroundColor].join(' ; '));
  }
  for (const g of d.querySelectorAll('#gates .gate')) {
    lines.push(['gate', g.dataset.gate, g.className, g.innerText].join(' ; '));
  }
  for (const p of d.querySelectorAll('svg#adoption path.sequence')) {
    const b = p.getBBox();
    lines.push(['plot', p.dataset.sequence, p.dataset.now, Math.round(b.width) > 0].join(' ; '));
  }
  lines.push(['scripts', d.scripts.length, 'external', d.querySelectorAll('link,img,[src]').length].join(' ; '));
  document.getElementById('out').textContent = lines.join('\n');
});
</script></body></html>
"#;

fn chromium(args: &[&str], cwd: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--allow-file-access-from-files",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .current_dir(cwd);
    let o = cmd
        .output()
        .expect("run chromium (scripts/install-deps.sh installs it)");
    assert!(
        o.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

#[test]
fn the_fleet_page_shows_waves_sites_highlights_gates_and_adoption_in_a_browser() {
    let ws = Workspace::new();
    let sample = fleet(&ws, "fleet", "soak: 24h", "soak: 24h");
    let replicas = fleet(
        &ws,
        "fleet-replicas",
        "inline: { replicaCount: 2,",
        "inline: { replicaCount: 3,",
    );
    let why = [
        "--override-gate",
        "first production rollout, canary checked by hand",
    ];
    let seq1 = export(&ws, &sample, "seq1.tender", &["--wave", "canary"]);
    let seq2 = export(
        &ws,
        &sample,
        "seq2.tender",
        &[&["--wave", "production"][..], &why[..]].concat(),
    );
    let seq3 = export(&ws, &replicas, "seq3.tender", &["--wave", "canary"]);
    assert_eq!((seq1.sequence, seq2.sequence, seq3.sequence), (1, 2, 3));

    let p1 = PrivateKey::from_seed("plant-001", [11; 32]);
    let p2 = PrivateKey::from_seed("plant-002", [12; 32]);
    for key in [&p1, &p2] {
        let pem = ws.join(&format!("{}.pub", key.name()));
        fs::write(&pem, key.public().to_pem()).unwrap();
        hub(&ws, "add-site")
            .args([key.name(), "--key"])
            .arg(&pem)
            .ok();
    }
    let receipts = [
        receipt(
            &ws,
            &p1,
            Action::Import,
            1,
            6 * 24,
            &seq1,
            vec![release(&seq1, LINE_A)],
        ),
        receipt(
            &ws,
            &p1,
            Action::Import,
            2,
            4 * 24,
            &seq2,
            vec![release(&seq1, LINE_A), release(&seq2, LINE_B)],
        ),
        receipt(
            &ws,
            &p2,
            Action::Import,
            1,
            4 * 24 - 5,
            &seq2,
            vec![release(&seq2, ASSEMBLY)],
        ),
        receipt(
            &ws,
            &p1,
            Action::Import,
            3,
            30,
            &seq3,
            vec![release(&seq3, LINE_A), release(&seq2, LINE_B)],
        ),
        // Line A's replicas change misbehaves: rolled back to sequence 1.
        receipt(
            &ws,
            &p1,
            Action::Rollback,
            4,
            3,
            &seq1,
            vec![release(&seq1, LINE_A), release(&seq2, LINE_B)],
        ),
    ];
    hub(&ws, "ingest").args(&receipts).ok();

    let page_dir = ws.join("page");
    let o = hub(&ws, "report")
        .arg("-o")
        .arg(&page_dir)
        .arg("--fleet")
        .arg(&sample)
        .args(["--stale-after-days", "2", "--json"])
        .ok();
    assert!(
        stderr(&o).contains("index.html (3 cluster(s), 5 receipt(s))"),
        "{}",
        stderr(&o)
    );
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["latest"], 3);
    assert_eq!(report["receipts"], 5);

    // The browser's view of the page.
    fs::write(page_dir.join("probe.html"), PROBE).unwrap();
    let o = chromium(
        &["--virtual-time-budget=10000", "--dump-dom", "probe.html"],
        &page_dir,
    );
    let dom = String::from_utf8_lossy(&o.stdout).into_owned();
    let lines: Vec<&str> = dom
        .lines()
        .map(|l| {
            l.rsplit("<pre id=\"out\">")
                .next()
                .unwrap()
                .trim_end_matches("</pre>")
        })
        .filter(|l| {
            ["cell ;", "site ;", "gate ;", "plot ;", "scripts ;"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .collect();
    let find = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(prefix))
            .collect()
    };
    let one = |prefix: &str| -> String {
        let found = find(prefix);
        assert_eq!(found.len(), 1, "{prefix}: {lines:#?}\n{dom}");
        html_unescape(found[0])
    };
    // Line A: the canary wave, rolled back to sequence 1 below the last
    // export to it (3): stale, in the rollback red.
    let a = one(&format!("cell ; {LINE_A} ;"));
    assert!(
        a.contains("cluster stale rolled-back ; rgb(253, 232, 232) ; canary ; true ;")
            && a.contains("sequence 1")
            && a.contains(&seq1.bundle_id)
            && a.contains("ROLLED BACK"),
        "{a}"
    );
    // Line B and the assembly hall run the last export to them: current, green.
    for cluster in [LINE_B, ASSEMBLY] {
        let c = one(&format!("cell ; {cluster} ;"));
        assert!(
            c.contains("cluster current ; rgb(236, 248, 239) ; production ; true ;")
                && c.contains("sequence 2")
                && c.contains(&seq2.bundle_id)
                && c.contains("d ")
                && c.contains(" ago"),
            "{c}"
        );
    }
    // plant-002's last receipt is 4 days old: overdue at 2 days.
    assert!(
        one("site ; plant-002 ;").contains("overdue ; rgb(253, 226, 200)"),
        "{lines:#?}"
    );
    assert!(!one("site ; plant-001 ;").contains("overdue"), "{lines:#?}");
    // The production gate is pending: line A was rolled back off sequence 3.
    let gate = one("gate ; production ;");
    assert!(
        gate.contains("gate pending ; PENDING: wave production waits for wave canary (soak 24h)")
            && gate.contains(&format!("{LINE_A} (rolled back to sequence 1")),
        "{gate}"
    );
    // One drawn line per sequence; now: line A on 1, two clusters on 2.
    let plot = find("plot ;");
    assert_eq!(
        plot,
        [
            "plot ; 3 ; 0 ; true",
            "plot ; 2 ; 2 ; true",
            "plot ; 1 ; 1 ; true"
        ],
        "{lines:#?}"
    );
    // Self-contained: no script, nothing loaded from elsewhere.
    assert_eq!(one("scripts ;"), "scripts ; 0 ; external ; 0");

    if let Some(png) = std::env::var_os("TENDER_FLEET_PAGE_SCREENSHOT") {
        let png = std::path::absolute(PathBuf::from(png)).unwrap();
        chromium(
            &[
                &format!("--screenshot={}", png.display()),
                "--window-size=1100,820",
                "index.html",
            ],
            &page_dir,
        );
    }
}

fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn text_from_files_cannot_inject_markup_into_the_page() {
    let ws = Workspace::new();
    let file = fleet(
        &ws,
        "fleet",
        "name: acme-plants",
        "name: \"acme <script>alert(1)</script><img src=x onerror=alert(2)>\"",
    );
    let page_dir = ws.join("page");
    hub(&ws, "report")
        .arg("-o")
        .arg(&page_dir)
        .arg("--fleet")
        .arg(&file)
        .ok();
    let html = fs::read_to_string(page_dir.join("index.html")).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(
        html.contains(
            "acme &lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;"
        )
    );
    // Nothing reported yet: every cluster says so, and the plot is empty.
    assert_eq!(html.matches("data-state=\"never-reported\"").count(), 3);
    assert!(html.contains("id=\"adoption-empty\""));
    assert!(html.contains("data-gate=\"production\""));

    // A fleet without waves: a row per tier, no gates.
    let plain = repo_root().join("testdata/fleet/fleet.yaml");
    hub(&ws, "report")
        .arg("-o")
        .arg(&page_dir)
        .arg("--fleet")
        .arg(&plain)
        .ok();
    let html = fs::read_to_string(page_dir.join("index.html")).unwrap();
    assert!(html.contains("Releases by tier and site"));
    assert!(
        html.contains("<tr data-wave=\"canary\">")
            && html.contains("<tr data-wave=\"production\">")
    );
    assert!(!html.contains("data-gate="));
}
