//! scale (issue #16): the sample fleet generated at 10, 100 and 1,000
//! clusters by scripts/gen-fleet.py (4 clusters per site, line a canary,
//! the rest production, per-cluster vars, the sample's Helm chart, kustomize
//! overlays and raw manifests). For each size, `tender export --dry-run` and
//! a real signed export: wall time, CPU (user + sys of tender and its helm
//! and kustomize children), peak RSS (the largest of those processes),
//! bundle size and distinct manifest sets. Then the largest fleet's bundle
//! is imported at every site with the site's own key, and `hub ingest`,
//! `hub status` and `hub report` run over those receipts. Targets: export of
//! 1,000 clusters <= 120 s, peak RSS <= 256 MiB, cost linear in clusters
//! (the CPU per cluster line), `hub status` <= 1 s. There is no baseline
//! tool: the growth from size to size is the comparison. One run per
//! measure (1,000 clusters take minutes); `--quick` stops at 100 clusters.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::bench::inputs::{self, remove};
use crate::bench::measure::{Sample, measure, measure_to};
use crate::bench::report::{kib_mib, round};
use crate::bench::{Bench, Host, JsonRow, log};

/// Fleet sizes of a full run and of `--quick`.
const SIZES: &[usize] = &[10, 100, 1000];
const QUICK_SIZES: &[usize] = &[10, 100];

/// The targets, at 1,000 clusters on the 2-core machine.
const EXPORT_TARGET_S: f64 = 120.0;
const TARGET_CLUSTERS: usize = 1000;
const RSS_TARGET_KIB: u64 = 256 * 1024;
const STATUS_TARGET_S: f64 = 1.0;

/// The gate of the generated fleet's production wave holds only after the
/// canary sites report; the bench exports every wave at once.
const OVERRIDE_GATE: &str = "scale bench: no site has reported";

pub fn run(b: &mut Bench) -> Result<()> {
    let sizes = if b.opts.quick { QUICK_SIZES } else { SIZES };
    b.ensure_keys()?;
    let dir = b.work().join("scale");
    fs::create_dir_all(&dir)?;
    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    let mut exports = Vec::new();
    for &clusters in sizes {
        let fleet = Fleet::generate(b, &dir, clusters)?;
        let measured = fleet.export(b)?;
        report_export(b, &measured, exports.is_empty(), load_before);
        exports.push((fleet, measured));
    }
    report_growth(b, &exports);
    let (largest, _) = exports.last().context("at least one fleet size")?;
    let hub = largest.hub_steps(b)?;
    report_hub(b, largest.clusters, &hub);
    b.table.note("scale: no baseline tool, one run each; TENDER = wall / CPU (user+sys of tender and its helm and kustomize children)");
    b.table.note("scale: peak RSS (dry-run / export) is the largest of those processes, the Helm shim's, not tender's own");
    b.table.note("scale: bundle / sets = bundle size / distinct manifest sets; CPU/cluster of the export is flat when cost is linear");
    if !b.opts.keep {
        remove(&dir)?;
    }
    Ok(())
}

/// One generated fleet: its spec, its export and its hub state.
struct Fleet {
    clusters: usize,
    dir: PathBuf,
    spec: PathBuf,
    hub: PathBuf,
    bundle: PathBuf,
}

/// What one fleet size measured.
struct Export {
    clusters: usize,
    dry_run: Sample,
    export: Sample,
    bundle_bytes: u64,
    manifest_sets: usize,
}

impl Fleet {
    /// `scripts/gen-fleet.py CLUSTERS DIR` (not timed).
    fn generate(b: &Bench, dir: &Path, clusters: usize) -> Result<Fleet> {
        let fleet_dir = dir.join(format!("fleet-{clusters}"));
        log(format_args!(
            "scale: generating a fleet of {clusters} clusters"
        ));
        inputs::run(
            Command::new("python3")
                .arg(b.repo.join("scripts/gen-fleet.py"))
                .arg(clusters.to_string())
                .arg(&fleet_dir),
        )?;
        Ok(Fleet {
            clusters,
            spec: fleet_dir.join("fleet.yaml"),
            hub: dir.join(format!("hub-{clusters}")),
            bundle: dir.join(format!("fleet-{clusters}.tender")),
            dir: fleet_dir,
        })
    }

    fn state_dir(&self) -> [OsString; 2] {
        ["--state-dir".into(), self.hub.clone().into()]
    }

    /// `export --dry-run --json` (its plan counts the distinct manifest
    /// sets), then a real signed export into a fresh hub state.
    fn export(&self, b: &Bench) -> Result<Export> {
        let n = self.clusters;
        remove(&self.hub)?;
        log(format_args!("scale: export --dry-run ({n} clusters)"));
        let plan_file = self.dir.join("plan.json");
        let mut dry_run_args: Vec<OsString> = vec![
            "export".into(),
            self.spec.clone().into(),
            "--dry-run".into(),
        ];
        dry_run_args.extend(["--json".into(), "--no-progress".into()]);
        dry_run_args.extend(self.state_dir());
        let plan = fs::File::create(&plan_file)
            .with_context(|| format!("creating {}", plan_file.display()))?;
        let dry_run = measure_to(b.work(), plan, &b.tender, dry_run_args)?;
        let manifest_sets = manifest_sets(&plan_file)?;

        log(format_args!("scale: export ({n} clusters)"));
        remove(&self.hub)?;
        let mut export_args: Vec<OsString> = vec![
            "export".into(),
            self.spec.clone().into(),
            "-o".into(),
            self.bundle.clone().into(),
        ];
        export_args.extend(["--key".into(), b.work().join("bench.key").into()]);
        export_args.extend(["--override-gate".into(), OVERRIDE_GATE.into()]);
        export_args.push("--no-progress".into());
        export_args.extend(self.state_dir());
        let export = measure(b.work(), &b.tender, export_args)?;
        Ok(Export {
            clusters: n,
            dry_run,
            export,
            bundle_bytes: fs::metadata(&self.bundle)?.len(),
            manifest_sets,
        })
    }

    /// Imports the bundle at every site (a site key each, registered with
    /// the hub; not timed), then times `hub ingest` of the receipts, `hub
    /// status` and `hub report`.
    fn hub_steps(&self, b: &Bench) -> Result<Hub> {
        let receipts = self.site_receipts(b)?;
        let n = self.clusters;
        log(format_args!(
            "scale: hub ingest, status, report ({} receipts)",
            receipts.len()
        ));
        let mut ingest: Vec<OsString> = vec!["hub".into(), "ingest".into()];
        ingest.extend(receipts.iter().map(OsString::from));
        ingest.extend(self.state_dir());
        let ingest = measure(b.work(), &b.tender, ingest)?;
        let mut status: Vec<OsString> = vec!["hub".into(), "status".into()];
        status.extend(self.state_dir());
        let status = measure(b.work(), &b.tender, status)?;
        let mut report: Vec<OsString> = vec!["hub".into(), "report".into(), "-o".into()];
        report.push(self.dir.join("report").into());
        report.extend(["--fleet".into(), self.spec.clone().into()]);
        report.extend(self.state_dir());
        let report = measure(b.work(), &b.tender, report)?;
        log(format_args!("scale: hub steps over {n} clusters done"));
        Ok(Hub {
            receipts: receipts.len(),
            ingest,
            status,
            report,
        })
    }

    /// One real `tender import` per site of gen-fleet.py's sites.txt, each
    /// signing its receipt with its own key; returns the receipt files. A
    /// site's state is removed once its receipt is copied out: 250 site
    /// stores would hold 2.4 GB.
    fn site_receipts(&self, b: &Bench) -> Result<Vec<PathBuf>> {
        let sites_txt = self.dir.join("sites.txt");
        let sites = fs::read_to_string(&sites_txt)
            .with_context(|| format!("reading {}", sites_txt.display()))?;
        let sites_dir = self.dir.join("sites");
        let receipts = self.dir.join("receipts");
        fs::create_dir_all(&sites_dir)?;
        fs::create_dir_all(&receipts)?;
        log(format_args!(
            "scale: importing {} at every site (receipts for the hub)",
            self.bundle.display()
        ));
        let mut files = Vec::new();
        for line in sites.lines() {
            let mut words = line.split_whitespace();
            let site = words.next().context("sites.txt: a line without a site")?;
            let clusters: Vec<&str> = words.collect();
            files.extend(self.import_at(b, &sites_dir, site, &clusters, &receipts)?);
        }
        Ok(files)
    }

    /// Keygen, `hub add-site`, the site file and the import of one site.
    fn import_at(
        &self,
        b: &Bench,
        sites_dir: &Path,
        site: &str,
        clusters: &[&str],
        receipts: &Path,
    ) -> Result<Vec<PathBuf>> {
        inputs::run(
            Command::new(&b.tender)
                .args(["keygen", site, "--no-progress", "--dir"])
                .arg(sites_dir),
        )?;
        inputs::run(
            Command::new(&b.tender)
                .args(["hub", "add-site", site, "--key"])
                .arg(sites_dir.join(format!("{site}.pub")))
                .args(self.state_dir()),
        )?;
        let state = sites_dir.join(format!("{site}-state"));
        let site_file = sites_dir.join(format!("{site}.yaml"));
        fs::write(
            &site_file,
            format!(
                "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: {site}\nclusters: [{}]\ntrustPolicy: {}\nstateDir: {}\nsiteKey: {}\n",
                clusters.join(", "),
                b.work().join("policy.yaml").display(),
                state.display(),
                sites_dir.join(format!("{site}.key")).display(),
            ),
        )?;
        inputs::run(
            Command::new(&b.tender)
                .arg("import")
                .arg(&self.bundle)
                .arg("--site")
                .arg(&site_file)
                .args(["--operator", "bench", "--no-progress"]),
        )
        .with_context(|| format!("import at site {site}"))?;
        let mut files = Vec::new();
        for entry in fs::read_dir(state.join("receipts"))? {
            let path = entry?.path();
            let name = path.file_name().context("receipt file name")?;
            if name.to_string_lossy().ends_with(".receipt.json") {
                let copy = receipts.join(name);
                fs::copy(&path, &copy)?;
                files.push(copy);
            }
        }
        remove(&state)?;
        Ok(files)
    }
}

/// Distinct `manifests` digests among the plan's clusters.
fn manifest_sets(plan_file: &Path) -> Result<usize> {
    let text = fs::read_to_string(plan_file)
        .with_context(|| format!("reading {}", plan_file.display()))?;
    let out: Value = serde_json::from_str(&text).context("export --dry-run --json output")?;
    let plan = out.get("plan").unwrap_or(&out);
    let clusters = plan["clusters"]
        .as_array()
        .context("export --dry-run --json: no clusters list")?;
    let sets: BTreeSet<&str> = clusters
        .iter()
        .filter_map(|c| c["manifests"].as_str())
        .collect();
    Ok(sets.len())
}

/// What the hub steps measured over the largest fleet's receipts.
struct Hub {
    receipts: usize,
    ingest: Sample,
    status: Sample,
    report: Sample,
}

fn wall_cpu(s: &Sample) -> String {
    format!("{:.2} s / {:.2} s", s.wall_s, s.cpu_s)
}

/// The export target: at 1,000 clusters the bar, at other sizes
/// the bar it scales to.
fn export_target(clusters: usize) -> String {
    if clusters == TARGET_CLUSTERS {
        format!("<= {EXPORT_TARGET_S:.0} s")
    } else {
        format!("(1,000: <= {EXPORT_TARGET_S:.0} s)")
    }
}

/// 1000 as "1,000", as the issue and the README write fleet sizes.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The table lines and the JSON line of one fleet size; `first` puts the
/// row's name on its first line.
fn report_export(b: &mut Bench, e: &Export, first: bool, load_before: f64) {
    let n = e.clusters;
    let size = format!("{} clusters", thousands(n));
    let target = export_target(n);
    let sets = format!("{} KiB / {}", e.bundle_bytes / 1024, e.manifest_sets);
    let rss = format!(
        "{} / {}",
        kib_mib(e.dry_run.rss_kib),
        kib_mib(e.export.rss_kib)
    );
    let name = if first { "scale" } else { "" };
    let lines = [
        [
            name,
            &format!("dry-run, {size}"),
            "-",
            &wall_cpu(&e.dry_run),
            "",
            &target,
        ],
        [
            "",
            &format!("export, {size}"),
            "-",
            &wall_cpu(&e.export),
            "",
            &target,
        ],
        ["", &format!("bundle / sets, {size}"), "-", &sets, "", ""],
        [
            "",
            &format!("peak RSS, {size}"),
            "-",
            &rss,
            "",
            "<= 256 MiB",
        ],
    ];
    for line in lines {
        b.table.add(line);
    }
    let row = JsonRow::new("scale")
        .field("step", "export")
        .field("clusters", n)
        .field("runs", 1)
        .field("dry_run_s", e.dry_run.wall_s)
        .field("dry_run_cpu_s", e.dry_run.cpu_s)
        .field("dry_run_peak_rss_kib", e.dry_run.rss_kib)
        .field("export_s", e.export.wall_s)
        .field("export_cpu_s", e.export.cpu_s)
        .field("export_peak_rss_kib", e.export.rss_kib)
        .field("cpu_per_cluster_s", round(e.export.cpu_s / n as f64, 4))
        .field("bundle_bytes", e.bundle_bytes)
        .field("manifest_sets", e.manifest_sets)
        .field("export_target_s", EXPORT_TARGET_S)
        .field("export_target_clusters", TARGET_CLUSTERS)
        .field("rss_target_kib", RSS_TARGET_KIB)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
}

/// CPU per cluster at each size: flat when the cost is linear in clusters.
fn report_growth(b: &mut Bench, exports: &[(Fleet, Export)]) {
    let sizes: Vec<String> = exports.iter().map(|(f, _)| thousands(f.clusters)).collect();
    let per_cluster: Vec<String> = exports
        .iter()
        .map(|(_, e)| format!("{:.3}", e.export.cpu_s / e.clusters as f64))
        .collect();
    b.table.add([
        "",
        &format!("CPU/cluster, {}", sizes.join(" / ")),
        "-",
        &format!("{} s", per_cluster.join(" / ")),
        "",
        "flat (linear)",
    ]);
}

/// The table lines and the JSON line of the hub steps.
fn report_hub(b: &mut Bench, clusters: usize, hub: &Hub) {
    let receipts = hub.receipts;
    let status_target = format!("<= {STATUS_TARGET_S:.0} s");
    let lines = [
        [
            &format!("hub ingest, {receipts} receipts") as &str,
            &wall_cpu(&hub.ingest),
            "",
        ],
        [
            &format!("hub status, {clusters} clusters"),
            &wall_cpu(&hub.status),
            &status_target,
        ],
        [
            &format!("hub report, {clusters} clusters"),
            &wall_cpu(&hub.report),
            "",
        ],
    ];
    for [metric, measured, target] in lines {
        b.table.add(["", metric, "-", measured, "", target]);
    }
    let rss = [hub.ingest, hub.status, hub.report].map(|s| s.rss_kib);
    let row = JsonRow::new("scale")
        .field("step", "hub")
        .field("clusters", clusters)
        .field("receipts", receipts)
        .field("ingest_s", hub.ingest.wall_s)
        .field("status_s", hub.status.wall_s)
        .field("report_s", hub.report.wall_s)
        .field("status_target_s", STATUS_TARGET_S)
        .field("peak_rss_kib", rss.into_iter().max().unwrap_or(0))
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_separates_groups_of_three() {
        assert_eq!(thousands(10), "10");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
