//! import: `tender import` of the export bundle into a fresh loopback
//! registry against `skopeo copy` of the same images one by one from the OCI
//! layout into another fresh one (target: at most skopeo's time), then the
//! re-import of the same bundle into the same site, a no-op (target: at most
//! 5% of the import). Peak RSS at most 128 MiB.

use std::ffi::OsString;
use std::fs;
use std::path::Path;

use anyhow::Result;
use serde_json::json;
use tender_test_support::Registry;

use super::export::{IMAGES, skopeo_each};
use crate::bench::inputs;
use crate::bench::inputs::remove;
use crate::bench::measure::{Samples, measure, page_cache};
use crate::bench::report::{human_bytes, round};
use crate::bench::{Bench, Host, JsonRow, log};

/// A site file for the bench bundle; without `registry`, images go to the
/// site's embedded store.
pub fn write_site(b: &Bench, file: &Path, state: &Path, registry: Option<&str>) -> Result<()> {
    let mut text = format!(
        "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: bench\nclusters: [edge-1]\ntrustPolicy: {}\nstateDir: {}\n",
        b.work().join("policy.yaml").display(),
        state.display()
    );
    if let Some(url) = registry {
        text.push_str(&format!(
            "registry: {{ url: \"{url}\", plainHttp: true }}\n"
        ));
    }
    fs::write(file, text)?;
    Ok(())
}

/// The export row's bundle, exported here if that row did not run.
pub fn export_bundle(b: &mut Bench) -> Result<std::path::PathBuf> {
    let fleet = b.export_inputs()?.fleet.clone();
    let bundle = b.work().join("export.tender");
    if !bundle.exists() {
        log("import: exporting the bundle");
        let hub = b.work().join("hub.import");
        inputs::run(
            std::process::Command::new(&b.tender).args(b.export_args(&fleet, &hub, &bundle)),
        )?;
    }
    Ok(bundle)
}

pub fn run(b: &mut Bench) -> Result<()> {
    let bundle = export_bundle(b)?;
    let images = b.export_inputs()?.images.clone();
    let size = fs::metadata(&bundle)?.len();
    page_cache(&bundle)?;
    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    let runs = measure_runs(b, &bundle, &images)?;
    report(b, &runs, size, load_before);
    if !b.opts.keep {
        remove(&bundle)?;
    }
    Ok(())
}

/// What the runs of the import row measured.
#[derive(Default)]
struct Runs {
    skopeo: Samples,
    tender: Samples,
    reimport: Samples,
}

/// Per run: skopeo into one fresh registry, then tender import and the
/// re-import into another, with a fresh site state.
fn measure_runs(b: &Bench, bundle: &Path, images: &Path) -> Result<Runs> {
    let mut runs = Runs::default();
    let site = b.work().join("site.yaml");
    let state = b.work().join("site-state");
    let count = b.runs();
    for i in 1..=count {
        log(format_args!("import: run {i}/{count}"));
        // Fresh registries and site state each run; started outside the timing.
        let baseline = Registry::start();
        runs.skopeo.push(measure(
            b.work(),
            "bash",
            skopeo_each(
                &format!("oci:{}:img{{}}", images.display()),
                &format!("docker://{}/bench/img{{}}:1", baseline.host()),
                &["--dest-tls-verify=false"],
            ),
        )?);
        drop(baseline);

        let target = Registry::start();
        remove(&state)?;
        write_site(b, &site, &state, Some(&target.host()))?;
        let cmd: Vec<OsString> = vec![
            "import".into(),
            bundle.into(),
            "--site".into(),
            site.clone().into(),
            "--operator".into(),
            "bench".into(),
            "--no-progress".into(),
        ];
        runs.tender.push(measure(b.work(), &b.tender, &cmd)?);
        runs.reimport.push(measure(b.work(), &b.tender, &cmd)?);
        drop(target);
        remove(&state)?;
    }
    Ok(runs)
}

/// The table lines and the JSON line of the import row.
fn report(b: &mut Bench, runs: &Runs, size: u64, load_before: f64) {
    let (skopeo, tender, reimport) = (&runs.skopeo, &runs.tender, &runs.reimport);
    let sw = b.stat(&skopeo.wall());
    let tw = b.stat(&tender.wall());
    let sc = b.stat(&skopeo.cpu());
    let tc = b.stat(&tender.cpu());
    let rw = b.stat(&reimport.wall());
    let rss = tender.max_rss_kib().max(reimport.max_rss_kib());
    let ratio = round(sw / tw, 3);
    let reimport_pct = round(100.0 * rw / tw, 2);
    let how = b.how();
    b.table.add([
        "import",
        &format!("wall, {how}, {IMAGES} images"),
        &format!("{sw:.3} s"),
        &format!("{tw:.3} s"),
        &format!("{ratio:.2}"),
        ">= 1.0",
    ]);
    b.table.add([
        "",
        &format!("re-import (no-op), {how}"),
        "-",
        &format!("{rw:.3} s = {reimport_pct:.1}%"),
        "",
        "<= 5% of import",
    ]);
    b.table.add_cpu(&how, sc, tc);
    b.table.add_peak_rss(
        &format!("bundle {}", human_bytes(size)),
        Some(skopeo.max_rss_kib()),
        rss,
        "<= 128 MiB",
    );
    b.table.note("import: baseline = skopeo copy of each image, one by one, from the OCI layout into a fresh loopback registry");
    let row = JsonRow::new("import")
        .field(
            "baseline",
            "skopeo copy oci: -> docker://, one image at a time",
        )
        .field("images", IMAGES)
        .field("bundle_bytes", size)
        .field("runs", b.runs())
        .field("stat", b.stat_name())
        .field("baseline_s", sw)
        .field("tender_s", tw)
        .field("ratio", ratio)
        .field("ratio_target", 1.0)
        .field("reimport_s", rw)
        .field("reimport_pct", reimport_pct)
        .field("reimport_pct_target", 5)
        .field("baseline_cpu_s", sc)
        .field("tender_cpu_s", tc)
        .field("baseline_wall_samples_s", json!(skopeo.wall()))
        .field("tender_wall_samples_s", json!(tender.wall()))
        .field("reimport_wall_samples_s", json!(reimport.wall()))
        .field("tender_peak_rss_kib", rss)
        .field("baseline_peak_rss_kib", skopeo.max_rss_kib())
        .field("rss_target_kib", 128 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
}
