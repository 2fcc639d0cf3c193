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
use crate::bench::report::{human_bytes, kib_mib, round};
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
    let scenario = Scenario::prepare(b)?;
    for how in COMPRESSIONS {
        let hub = b.work().join(format!("delta-{how}"));
        if hub.exists() {
            fs::remove_dir_all(&hub)?;
        }
        fs::create_dir_all(&hub)?;
        let encoder = Encoder {
            how,
            hub,
            scenario: &scenario,
            key: b.work().join("bench.key"),
        };
        encoder.run(b)?;
        if *how == FAST_LEVEL_FOR {
            encoder.fast_level(b)?;
        }
    }
    b.table.note(format!(
        "delta: per-blob choices: tender inspect {}/delta-<compression>/v2.tender (run with --keep)",
        b.work().display()
    ));
    Ok(())
}

/// The scenario on disk and the baselines common to every encoder.
struct Scenario {
    script: PathBuf,
    dir: PathBuf,
    /// Bytes of `zstd --patch-from` over the changed layers.
    patch_from: u64,
    /// Changed uncompressed layer bytes: what delta export works through.
    changed: u64,
}

impl Scenario {
    /// Builds what is missing of the scenario (its progress goes to our
    /// stderr) and measures the patch-from baseline.
    fn prepare(b: &Bench) -> Result<Scenario> {
        let script = b.repo.join("scripts/delta-scenario.py");
        let dir = b.repo.join("target/delta-scenario");
        run_to_stderr(Command::new("python3").arg(&script).arg(&dir))?;
        b.ensure_keys()?;
        let tars = dir.join("tars");
        let (mut patch_from, mut changed) = (0, 0);
        for layer in CHANGED_LAYERS {
            let v1 = tars.join(format!("{layer}-v1.tar"));
            let v2 = tars.join(format!("{layer}-v2.tar"));
            patch_from += zstd_patch_from_bytes(&v1, &v2)?;
            changed += fs::metadata(&v2)
                .with_context(|| format!("reading {}", v2.display()))?
                .len();
        }
        Ok(Scenario {
            script,
            dir,
            patch_from,
            changed,
        })
    }

    /// The scenario script's one-line answer to `FLAG how [extra]`.
    fn ask(&self, flag: &str, how: &str, extra: Option<&Path>) -> Result<String> {
        let mut cmd = Command::new("python3");
        cmd.arg(&self.script).arg(flag).arg(&self.dir).arg(how);
        if let Some(extra) = extra {
            cmd.arg(extra);
        }
        script_output(&mut cmd)
    }
}

/// One layer encoder's images, exported and imported in `hub`.
struct Encoder<'a> {
    how: &'static str,
    hub: PathBuf,
    scenario: &'a Scenario,
    key: PathBuf,
}

impl Encoder<'_> {
    fn fleet(&self, v: u32) -> PathBuf {
        self.scenario
            .dir
            .join(format!("fleet-{}-v{v}/fleet.yaml", self.how))
    }

    /// `tender export` of version `v` into `hub/out`.
    fn export(&self, v: u32, out: &str, extra: &[&str]) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["export".into(), "--key".into()];
        args.push(self.key.clone().into());
        args.extend(["--state-dir".into(), self.hub.join("state").into()]);
        args.extend(["--no-progress".into(), self.fleet(v).into(), "-o".into()]);
        args.push(self.hub.join(out).into());
        args.extend(extra.iter().map(OsString::from));
        args
    }

    /// `tender import` of `hub/bundle` at the encoder's site.
    fn import(&self, bundle: &str) -> Vec<OsString> {
        vec![
            "import".into(),
            self.hub.join(bundle).into(),
            "--site".into(),
            self.hub.join("site.yaml").into(),
            "--no-progress".into(),
        ]
    }

    fn base(&self) -> Result<String> {
        let base = self.hub.join("v1.tender");
        Ok(base.to_str().context("work dir path is UTF-8")?.to_string())
    }

    /// v1 whole and imported (not timed), then v2 against v1, exported and
    /// imported (timed), checked byte for byte, reported.
    fn run(&self, b: &mut Bench) -> Result<()> {
        let how = self.how;
        let pull: u64 = self
            .scenario
            .ask("--registry-pull", how, None)?
            .parse()
            .context("--registry-pull prints a byte count")?;
        log(format_args!("delta ({how}): export v1 whole, import it"));
        inputs::run(Command::new(&b.tender).args(self.export(1, "v1.tender", &[])))?;
        fs::write(
            self.hub.join("site.yaml"),
            format!(
                "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: plant-001\nclusters: [line-a]\ntrustPolicy: {}\nstateDir: {}\n",
                b.work().join("policy.yaml").display(),
                self.hub.join("site").display()
            ),
        )?;
        inputs::run(Command::new(&b.tender).args(self.import("v1.tender")))?;

        log(format_args!("delta ({how}): export v2 against v1"));
        let base = self.base()?;
        let export = self.export(2, "v2.tender", &["--base", &base]);
        let e = measure(b.work(), &b.tender, export)?;
        let size = fs::metadata(self.hub.join("v2.tender"))?.len();
        log(format_args!("delta ({how}): import v2"));
        let i = measure(b.work(), &b.tender, self.import("v2.tender"))?;
        // Every v2 blob in the site store, byte for byte as in the source layout.
        let store = self.hub.join("site/store");
        let exact = self.scenario.ask("--check-store", how, Some(&store))?;
        self.report(b, pull, size, (e, i), &exact);
        Ok(())
    }

    /// The table lines and the JSON line of one encoder.
    fn report(&self, b: &mut Bench, pull: u64, size: u64, (e, i): (Sample, Sample), exact: &str) {
        let (how, patch_from) = (self.how, self.scenario.patch_from);
        let r_pull = round(size as f64 / pull as f64, 3);
        let r_patch = round(size as f64 / patch_from as f64, 3);
        let rate = mb_per_s(self.scenario.changed, e);
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
                .field("compression", how)
                .field("registry_pull_bytes", pull)
                .field("patch_from_bytes", patch_from)
                .field("delta_bytes", size)
                .field("ratio_registry_pull", r_pull)
                .field("ratio_patch_from", r_patch)
                .field("export_s", e.wall_s)
                .field("import_s", i.wall_s)
                .field("export_mb_per_s", rate)
                .field("changed_plain_bytes", self.scenario.changed)
                .field("export_peak_rss_kib", e.rss_kib)
                .field("import_peak_rss_kib", i.rss_kib)
                .field("byte_exact", exact),
        );
    }

    /// The fast diff level, for the speed/bytes trade-off, once on one core
    /// and once with memory for both layers at once (both cores).
    fn fast_level(&self, b: &mut Bench) -> Result<()> {
        let (how, patch_from, changed) =
            (self.how, self.scenario.patch_from, self.scenario.changed);
        log(format_args!(
            "delta ({how}): export v2 against v1 at --delta-level 12"
        ));
        let base = self.base()?;
        let fast = ["--base", &base, "--delta-level", "12"];
        let f = measure(b.work(), &b.tender, self.export(2, "v2-fast.tender", &fast))?;
        let f_size = fs::metadata(self.hub.join("v2-fast.tender"))?.len();
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
                .field("compression", how)
                .field("delta_level", 12)
                .field("delta_bytes", f_size)
                .field("ratio_patch_from", f_patch)
                .field("export_s", f.wall_s)
                .field("export_mb_per_s", f_rate)
                .field("export_peak_rss_kib", f.rss_kib),
        );
        let parallel = [&fast[..], &["--delta-parallel-memory", "1GiB"]].concat();
        let p = measure(
            b.work(),
            &b.tender,
            self.export(2, "v2-fast.tender", &parallel),
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
                .field("compression", how)
                .field("delta_level", 12)
                .field("parallel_memory_bytes", 1u64 << 30)
                .field("export_s", p.wall_s)
                .field("export_mb_per_s", p_rate)
                .field("export_peak_rss_kib", p.rss_kib),
        );
        Ok(())
    }
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
