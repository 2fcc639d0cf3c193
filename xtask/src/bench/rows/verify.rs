//! verify: `tender verify` (signature check + sha256 of every blob,
//! streaming) against `openssl dgst -sha256` of the same bundle file: the
//! floor for "read the file and hash every byte" on this machine. Also peak
//! RSS of verify on the bundle and on one 4x smaller: it must stay flat
//! (target 64 MiB).

use std::ffi::{OsStr, OsString};
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::bench::measure::{Samples, measure, page_cache};
use crate::bench::report::{human_bytes, round};
use crate::bench::{Bench, Host, JsonRow, log};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BLOBS: u64 = 20;

pub fn run(b: &mut Bench) -> Result<()> {
    let total = if b.opts.quick { 200 * MIB } else { 2 * GIB };
    let small_total = total / 4;
    b.need_space(2 * total + small_total)?;

    let big = b.work().join("bench.tender");
    let small = b.work().join("small.tender");
    b.make_bundle(&big, total, BLOBS)?;
    b.make_bundle(&small, small_total, BLOBS)?;
    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    let runs = measure_runs(b, &big, &small)?;
    let sizes = (
        std::fs::metadata(&big)?.len(),
        std::fs::metadata(&small)?.len(),
    );
    report(b, &runs, sizes, load_before);

    // --keep means "let me look at the inputs afterwards".
    if !b.opts.keep {
        let _ = std::fs::remove_file(&big);
        let _ = std::fs::remove_file(&small);
    }
    Ok(())
}

/// What the runs of the verify row measured.
#[derive(Default)]
struct Runs {
    openssl: Samples,
    tender: Samples,
    tender_small: Samples,
}

/// openssl and tender on the big bundle, interleaved so that drift in
/// machine load hits both sides alike; then tender on the small one.
fn measure_runs(b: &Bench, big: &Path, small: &Path) -> Result<Runs> {
    let policy = b.work().join("policy.yaml");
    let verify = |bundle: &Path| -> Vec<OsString> {
        vec![
            "verify".into(),
            bundle.into(),
            "--trust".into(),
            policy.clone().into(),
            "--no-progress".into(),
        ]
    };
    let mut runs = Runs::default();
    page_cache(big)?;
    let count = b.runs();
    for i in 1..=count {
        log(format_args!("verify: run {i}/{count}"));
        let dgst: [&OsStr; 3] = ["dgst".as_ref(), "-sha256".as_ref(), big.as_os_str()];
        runs.openssl.push(measure(b.work(), "openssl", dgst)?);
        runs.tender.push(measure(b.work(), &b.tender, verify(big))?);
    }
    page_cache(small)?;
    for _ in 1..=count {
        let sample = measure(b.work(), &b.tender, verify(small))?;
        runs.tender_small.push(sample);
    }
    Ok(runs)
}

/// The table lines and the JSON line of the verify row.
fn report(b: &mut Bench, runs: &Runs, (size, small_size): (u64, u64), load_before: f64) {
    let (openssl, tender) = (&runs.openssl, &runs.tender);
    let ow = b.stat(&openssl.wall());
    let tw = b.stat(&tender.wall());
    let oc = b.stat(&openssl.cpu());
    let tc = b.stat(&tender.cpu());
    let ratio = round(ow / tw, 3);
    let gib = size as f64 / GIB as f64;
    let (o_gibs, t_gibs) = (round(gib / ow, 3), round(gib / tw, 3));
    let how = b.how();
    b.table.add([
        "verify",
        &format!("wall, {how}, {}", human_bytes(size)),
        &format!("{ow:.3} s"),
        &format!("{tw:.3} s"),
        &format!("{ratio:.2}"),
        ">= 1.0 (aim 1.5)",
    ]);
    b.table.add([
        "",
        "throughput",
        &format!("{o_gibs:.2} GiB/s"),
        &format!("{t_gibs:.2} GiB/s"),
        "",
        "",
    ]);
    b.table.add_cpu(&how, oc, tc);
    b.table.add_peak_rss(
        &human_bytes(size),
        Some(openssl.max_rss_kib()),
        tender.max_rss_kib(),
        "<= 64 MiB",
    );
    b.table.add_peak_rss(
        &human_bytes(small_size),
        None,
        runs.tender_small.max_rss_kib(),
        "<= 64 MiB, flat",
    );
    b.table
        .note("verify: baseline = openssl dgst -sha256 of the same page-cached bundle file");

    let row = JsonRow::new("verify")
        .field("baseline", "openssl dgst -sha256")
        .field("bundle_bytes", size)
        .field("blobs", BLOBS)
        .field("runs", b.runs())
        .field("stat", b.stat_name())
        .field("baseline_s", ow)
        .field("tender_s", tw)
        .field("ratio", ratio)
        .field("ratio_target", 1.0)
        .field("ratio_aim", 1.5)
        .field("baseline_gib_s", o_gibs)
        .field("tender_gib_s", t_gibs)
        .field("baseline_cpu_s", oc)
        .field("tender_cpu_s", tc)
        .field("baseline_wall_samples_s", json!(openssl.wall()))
        .field("tender_wall_samples_s", json!(tender.wall()))
        .field("tender_peak_rss_kib", tender.max_rss_kib())
        .field("small_bundle_bytes", small_size)
        .field("tender_peak_rss_small_kib", runs.tender_small.max_rss_kib())
        .field("baseline_peak_rss_kib", openssl.max_rss_kib())
        .field("rss_target_kib", 64 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
}
