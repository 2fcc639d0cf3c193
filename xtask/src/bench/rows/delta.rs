//! delta: the scenario of scripts/delta-scenario.py (Debian base layer where
//! only libssl3/openssl move 3.0.20 -> 3.0.22, the ruff binary 0.17.4 ->
//! 0.17.5, an unchanged config layer), one image per layer encoder: GNU gzip
//! -6, Go compress/gzip level 1 and default, klauspost pgzip as umoci and as
//! skopeo write it, zstd and zstd:chunked as skopeo writes them. For each:
//! export v1 whole and import it at an embedded site, then export v2 with
//! `--base` v1 and import that. Baselines in the same run: registry-pull
//! (bytes of v2 blobs not in v1: what a registry mirror moves) and
//! patch-from (`zstd -19 --long=27 --patch-from=v1.tar v2.tar` over the
//! changed layers' uncompressed tars). Targets: every blob byte-exact; delta
//! <= 0.2 x registry-pull and <= 1.0 x patch-from (stage bar 1.3); delta
//! export >= 20 MB/s of changed uncompressed layer, <= 256 MiB peak RSS. The
//! scenario (about 35 MB of downloads) is cached in target/delta-scenario;
//! `--quick` changes nothing here (one run each).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};

use crate::bench::inputs;
use crate::bench::measure::{Sample, measure};
use crate::bench::report::{human_bytes, kib_mib};
use crate::bench::{Bench, JsonRow, log};

/// The layer encoders of the scenario, in the order the table lists them.
const COMPRESSIONS: &[&str] = &[
    "gnu-gzip-6",
    "go-gzip-1",
    "go-gzip-default",
    "pgzip-umoci",
    "pgzip-skopeo",
    "zstd-skopeo",
    "zstd-chunked-skopeo",
];

/// The layers that change between v1 and v2 (config does not).
const CHANGED_LAYERS: &[&str] = &["base", "app"];

/// The encoder that also gets the fast diff level and the parallel run.
const FAST_LEVEL_FOR: &str = "pgzip-skopeo";

pub fn run(b: &mut Bench) -> Result<()> {
    let script = b.repo.join("scripts/delta-scenario.py");
    let scenario = b.repo.join("target/delta-scenario");
    // Builds what is missing; its progress goes to our stderr.
    run_to_stderr(Command::new("python3").arg(&script).arg(&scenario))?;
    b.ensure_keys()?;

    let tars = scenario.join("tars");
    let mut patch_from = 0u64;
    let mut changed = 0u64;
    for layer in CHANGED_LAYERS {
        let v1 = tars.join(format!("{layer}-v1.tar"));
        let v2 = tars.join(format!("{layer}-v2.tar"));
        patch_from += zstd_patch_from_bytes(&v1, &v2)?;
        // Changed uncompressed layer bytes: what delta export works through.
        changed += fs::metadata(&v2)
            .with_context(|| format!("reading {}", v2.display()))?
            .len();
    }

    let work = b.work().to_path_buf();
    let key = work.join("bench.key");
    for how in COMPRESSIONS {
        let hub = work.join(format!("delta-{how}"));
        if hub.exists() {
            fs::remove_dir_all(&hub)?;
        }
        fs::create_dir_all(&hub)?;
        let pull: u64 = script_output(
            Command::new("python3")
                .arg(&script)
                .arg("--registry-pull")
                .arg(&scenario)
                .arg(how),
        )?
        .parse()
        .context("--registry-pull prints a byte count")?;
        let fleet = |v: u32| scenario.join(format!("fleet-{how}-v{v}/fleet.yaml"));
        let export = |fleet: PathBuf, out: &str, extra: &[&str]| -> Vec<OsString> {
            let mut args: Vec<OsString> = vec!["export".into(), "--key".into()];
            args.push(key.clone().into());
            args.extend(["--state-dir".into(), hub.join("state").into()]);
            args.extend(["--no-progress".into(), fleet.into(), "-o".into()]);
            args.push(hub.join(out).into());
            args.extend(extra.iter().map(OsString::from));
            args
        };
        let base = hub.join("v1.tender");
        let base = base.to_str().context("work dir path is UTF-8")?;

        log(format_args!("delta ({how}): export v1 whole, import it"));
        inputs::run(Command::new(&b.tender).args(export(fleet(1), "v1.tender", &[])))?;
        let site = hub.join("site.yaml");
        fs::write(
            &site,
            format!(
                "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: plant-001\nclusters: [line-a]\ntrustPolicy: {}\nstateDir: {}\n",
                work.join("policy.yaml").display(),
                hub.join("site").display()
            ),
        )?;
        let import = |bundle: &str| -> Vec<OsString> {
            vec![
                "import".into(),
                hub.join(bundle).into(),
                "--site".into(),
                site.clone().into(),
                "--no-progress".into(),
            ]
        };
        inputs::run(Command::new(&b.tender).args(import("v1.tender")))?;

        log(format_args!("delta ({how}): export v2 against v1"));
        let e = measure(
            &work,
            &b.tender,
            export(fleet(2), "v2.tender", &["--base", base]),
        )?;
        let size = fs::metadata(hub.join("v2.tender"))?.len();
        log(format_args!("delta ({how}): import v2"));
        let i = measure(b.work(), &b.tender, import("v2.tender"))?;
        // Every v2 blob in the site store, byte for byte as in the source layout.
        let exact = script_output(
            Command::new("python3")
                .arg(&script)
                .arg("--check-store")
                .arg(&scenario)
                .arg(how)
                .arg(hub.join("site/store")),
        )?;
        let r_pull = round(size as f64 / pull as f64, 3);
        let r_patch = round(size as f64 / patch_from as f64, 3);
        let rate = mb_per_s(changed, e);
        b.table.add([
            "delta",
            &format!("{how}: bytes vs registry-pull"),
            &human_bytes(pull),
            &human_bytes(size),
            &format!("{r_pull:.3}"),
            "<= 0.2",
        ]);
        b.table.add([
            "",
            &format!("{how}: bytes vs patch-from"),
            &human_bytes(patch_from),
            &human_bytes(size),
            &format!("{r_patch:.3}"),
            "<= 1.0 (bar 1.3)",
        ]);
        b.table.add([
            "",
            &format!("{how}: export / import wall"),
            "-",
            &format!("{:.1} s / {:.1} s", e.wall_s, i.wall_s),
            &format!("{rate:.1} MB/s"),
            ">= 20 MB/s",
        ]);
        b.table.add([
            "",
            &format!("{how}: peak RSS export / import"),
            "-",
            &format!("{} / {}", kib_mib(e.rss_kib), kib_mib(i.rss_kib)),
            "",
            &format!("<= 256 MiB; byte-exact: {exact}"),
        ]);
        b.json_row(
            JsonRow::new("delta")
                .field("compression", *how)
                .field("registry_pull_bytes", pull)
                .field("patch_from_bytes", patch_from)
                .field("delta_bytes", size)
                .field("ratio_registry_pull", r_pull)
                .field("ratio_patch_from", r_patch)
                .field("export_s", e.wall_s)
                .field("import_s", i.wall_s)
                .field("export_mb_per_s", rate)
                .field("changed_plain_bytes", changed)
                .field("export_peak_rss_kib", e.rss_kib)
                .field("import_peak_rss_kib", i.rss_kib)
                .field("byte_exact", exact),
        );

        if *how == FAST_LEVEL_FOR {
            // The fast diff level, for the speed/bytes trade-off.
            log(format_args!(
                "delta ({how}): export v2 against v1 at --delta-level 12"
            ));
            let fast = ["--base", base, "--delta-level", "12"];
            let f = measure(&work, &b.tender, export(fleet(2), "v2-fast.tender", &fast))?;
            let f_size = fs::metadata(hub.join("v2-fast.tender"))?.len();
            let f_patch = round(f_size as f64 / patch_from as f64, 3);
            let f_rate = mb_per_s(changed, f);
            b.table.add([
                "",
                &format!("{how} --delta-level 12: bytes vs patch-from"),
                &human_bytes(patch_from),
                &human_bytes(f_size),
                &format!("{f_patch:.3}"),
                "",
            ]);
            b.table.add([
                "",
                &format!("{how} --delta-level 12: export wall, RSS"),
                "-",
                &format!("{:.1} s, {}", f.wall_s, kib_mib(f.rss_kib)),
                &format!("{f_rate:.1} MB/s"),
                ">= 20 MB/s",
            ]);
            b.json_row(
                JsonRow::new("delta")
                    .field("compression", *how)
                    .field("delta_level", 12)
                    .field("delta_bytes", f_size)
                    .field("ratio_patch_from", f_patch)
                    .field("export_s", f.wall_s)
                    .field("export_mb_per_s", f_rate)
                    .field("export_peak_rss_kib", f.rss_kib),
            );
            // And with memory for both layers at once (both cores).
            let parallel = [&fast[..], &["--delta-parallel-memory", "1GiB"]].concat();
            let p = measure(
                &work,
                &b.tender,
                export(fleet(2), "v2-fast.tender", &parallel),
            )?;
            let p_rate = mb_per_s(changed, p);
            b.table.add([
                "",
                &format!("{how} --delta-level 12, 1GiB parallel: export wall, RSS"),
                "-",
                &format!("{:.1} s, {}", p.wall_s, kib_mib(p.rss_kib)),
                &format!("{p_rate:.1} MB/s"),
                ">= 20 MB/s",
            ]);
            b.json_row(
                JsonRow::new("delta")
                    .field("compression", *how)
                    .field("delta_level", 12)
                    .field("parallel_memory_bytes", 1u64 << 30)
                    .field("export_s", p.wall_s)
                    .field("export_mb_per_s", p_rate)
                    .field("export_peak_rss_kib", p.rss_kib),
            );
        }
    }
    b.table.note(format!(
        "delta: per-blob choices: tender inspect {}/delta-<compression>/v2.tender (run with --keep)",
        b.work().display()
    ));
    Ok(())
}

/// Bytes of `zstd -19 --long=27 --patch-from=v1 v2`, the patch-from baseline;
/// the patch is counted as it streams out, never stored.
fn zstd_patch_from_bytes(v1: &Path, v2: &Path) -> Result<u64> {
    let mut patch_from = OsString::from("--patch-from=");
    patch_from.push(v1);
    let mut child = Command::new("zstd")
        .args(["-q", "-19", "--long=27"])
        .arg(patch_from)
        .arg(v2)
        .arg("-c")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .context("running zstd")?;
    let mut out = child.stdout.take().context("zstd stdout is piped")?;
    let bytes = std::io::copy(&mut out, &mut std::io::sink())?;
    let status = child.wait()?;
    ensure!(
        status.success(),
        "zstd --patch-from of {}: {status}",
        v2.display()
    );
    Ok(bytes)
}

/// Megabytes (10^6) of changed uncompressed layer per second of `s`'s wall time.
fn mb_per_s(changed: u64, s: Sample) -> f64 {
    round(changed as f64 / 1e6 / s.wall_s.max(1e-9), 1)
}

/// Rounded as bench.sh printed them, so the JSON stays comparable.
fn round(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// A helper script's one-line answer on stdout (its stderr passes through).
fn script_output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    ensure!(out.status.success(), "{} from: {cmd:?}", out.status);
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A setup command whose progress the user should see: stdout to our stderr,
/// as bench.sh's `>&2` did, so that stdout stays the table.
fn run_to_stderr(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .stdout(std::io::stderr())
        .status()
        .with_context(|| format!("running {cmd:?}"))?;
    ensure!(status.success(), "{status} from: {cmd:?}");
    Ok(())
}
