//! verify: `tender verify` (signature check + sha256 of every blob,
//! streaming) against `openssl dgst -sha256` of the same bundle file: the
//! floor for "read the file and hash every byte" on this machine. Also peak
//! RSS of verify on the bundle and on one 4x smaller: it must stay flat
//! (target 64 MiB).

use anyhow::Result;
use serde_json::json;

use crate::bench::measure::{Samples, measure, page_cache};
use crate::bench::report::{human_bytes, kib_mib};
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
    let size = std::fs::metadata(&big)?.len();
    let small_size = std::fs::metadata(&small)?.len();
    let policy = b.work().join("policy.yaml");
    let verify = |bundle: &std::path::Path| {
        vec![
            "verify".into(),
            bundle.as_os_str().to_owned(),
            "--trust".into(),
            policy.as_os_str().to_owned(),
            "--no-progress".into(),
        ]
    };
    let verify_big: Vec<std::ffi::OsString> = verify(&big);
    let verify_small: Vec<std::ffi::OsString> = verify(&small);

    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    page_cache(&big)?;
    let runs = b.runs();
    // Interleaved, so drift in machine load hits both sides alike.
    let (mut openssl, mut tender) = (Samples::default(), Samples::default());
    for i in 1..=runs {
        log(format_args!("verify: run {i}/{runs}"));
        openssl.push(measure(
            b.work(),
            "openssl",
            [
                std::ffi::OsStr::new("dgst"),
                "-sha256".as_ref(),
                big.as_os_str(),
            ],
        )?);
        tender.push(measure(b.work(), &b.tender, &verify_big)?);
    }
    page_cache(&small)?;
    let mut tender_small = Samples::default();
    for _ in 1..=runs {
        tender_small.push(measure(b.work(), &b.tender, &verify_small)?);
    }

    let ow = b.stat(&openssl.wall());
    let tw = b.stat(&tender.wall());
    let oc = b.stat(&openssl.cpu());
    let tc = b.stat(&tender.cpu());
    let ratio = ow / tw;
    let gib = size as f64 / GIB as f64;
    let (o_gibs, t_gibs) = (gib / ow, gib / tw);
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
    b.table.add([
        "",
        &format!("CPU user+sys, {how}"),
        &format!("{oc:.2} s"),
        &format!("{tc:.2} s"),
        "",
        "",
    ]);
    b.table.add([
        "",
        &format!("peak RSS, {}", human_bytes(size)),
        &kib_mib(openssl.max_rss_kib()),
        &kib_mib(tender.max_rss_kib()),
        "",
        "<= 64 MiB",
    ]);
    b.table.add([
        "",
        &format!("peak RSS, {}", human_bytes(small_size)),
        "-",
        &kib_mib(tender_small.max_rss_kib()),
        "",
        "<= 64 MiB, flat",
    ]);
    b.table
        .note("verify: baseline = openssl dgst -sha256 of the same page-cached bundle file");

    let row = JsonRow::new("verify")
        .field("baseline", "openssl dgst -sha256")
        .field("bundle_bytes", size)
        .field("blobs", BLOBS)
        .field("runs", runs)
        .field("stat", if b.opts.quick { "min" } else { "median" })
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
        .field("tender_peak_rss_small_kib", tender_small.max_rss_kib())
        .field("baseline_peak_rss_kib", openssl.max_rss_kib())
        .field("rss_target_kib", 64 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);

    // --keep means "let me look at the inputs afterwards".
    if !b.opts.keep {
        let _ = std::fs::remove_file(&big);
        let _ = std::fs::remove_file(&small);
    }
    Ok(())
}
