//! export: `tender export` of a fleet listing 20 images (1 GiB; quick 100
//! MiB) from a loopback docker-registry, against `skopeo copy` of the same
//! images one by one into one OCI layout. Target: tender at most half
//! skopeo's time, peak RSS at most 128 MiB.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::json;
use tender_test_support::Registry;

use crate::bench::inputs::{self, remove};
use crate::bench::measure::{Samples, measure};
use crate::bench::report::{human_bytes, round};
use crate::bench::{Bench, Host, JsonRow, log};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
pub const IMAGES: u64 = 20;
pub const LAYERS: u64 = 2;

/// `skopeo copy` of COUNT images one by one; "{}" in SRC and DST is replaced
/// by the image number. One `bash -c` script, so that [`measure`] times the
/// whole loop as one command (the baseline is skopeo, as a user would run it).
pub const SKOPEO_EACH: &str = r#"n=$1 src=$2 dst=$3
shift 3
for ((i = 0; i < n; i++)); do
    skopeo copy --quiet "$@" "${src//"{}"/$i}" "${dst//"{}"/$i}" || exit
done"#;

/// The export and import rows' shared inputs, made once per run: generated
/// images, a source registry holding them as 127.0.0.1:PORT/bench/imgN:1,
/// and a fleet.yaml listing them.
pub struct Inputs {
    /// Kept running until the run ends.
    pub source: Registry,
    pub layer_bytes: u64,
    pub images: PathBuf,
    pub fleet: PathBuf,
}

/// `measure`'s arguments for the skopeo baseline loop.
pub fn skopeo_each(src: &str, dst: &str, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec![
        "-c".into(),
        SKOPEO_EACH.into(),
        "_".into(),
        IMAGES.to_string().into(),
        src.into(),
        dst.into(),
    ];
    args.extend(extra.iter().map(OsString::from));
    args
}

impl Bench {
    /// The export inputs, made on first use.
    pub fn export_inputs(&mut self) -> Result<&Inputs> {
        if self.export.is_none() {
            let inputs = self.make_export_inputs()?;
            self.export = Some(inputs);
        }
        Ok(self.export.as_ref().expect("just made"))
    }

    fn make_export_inputs(&self) -> Result<Inputs> {
        let total_bytes = if self.opts.quick { 100 * MIB } else { GIB };
        let layer_bytes = total_bytes / IMAGES / LAYERS;
        let total = IMAGES * LAYERS * layer_bytes;
        // images + source registry + bundle + baseline copy + 2 target registries
        self.need_space(6 * total + total / 2)?;
        self.ensure_keys()?;
        log(format_args!(
            "generating {IMAGES} images, {LAYERS} random tar layers of {} each",
            human_bytes(layer_bytes)
        ));
        let images = self.work().join("images");
        make_images(&images, IMAGES, LAYERS, layer_bytes)?;
        let source = Registry::start();
        let host = source.host();
        log(format_args!("pushing them to the source registry {host}"));
        inputs::run(Command::new("bash").args(skopeo_each(
            &format!("oci:{}:img{{}}", images.display()),
            &format!("docker://{host}/bench/img{{}}:1"),
            &["--dest-tls-verify=false"],
        )))?;
        let dir = self.work().join("fleet");
        fs::create_dir_all(&dir)?;
        let mut yaml = String::from(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: bench\nclusters:\n  - { name: edge-1, site: bench, tier: production }\nimages:\n",
        );
        for i in 0..IMAGES {
            yaml.push_str(&format!("  - {host}/bench/img{i}:1\n"));
        }
        yaml.push_str(&format!(
            "registries:\n  \"{host}\": {{ plainHttp: true }}\n"
        ));
        let fleet = dir.join("fleet.yaml");
        fs::write(&fleet, yaml)?;
        Ok(Inputs {
            source,
            layer_bytes,
            images,
            fleet,
        })
    }

    /// The `tender export` arguments for a fresh hub state `hub` writing `out`.
    pub fn export_args(&self, fleet: &Path, hub: &Path, out: &Path) -> Vec<OsString> {
        vec![
            "export".into(),
            fleet.into(),
            "-o".into(),
            out.into(),
            "--key".into(),
            self.work().join("bench.key").into(),
            "--state-dir".into(),
            hub.into(),
            "--no-progress".into(),
        ]
    }
}

/// Generates the images with the embedded Python script (stdlib only).
fn make_images(out: &Path, count: u64, layers: u64, layer_bytes: u64) -> Result<()> {
    let mut child = Command::new("python3")
        .arg("-")
        .arg(out)
        .arg(count.to_string())
        .arg(layers.to_string())
        .arg(layer_bytes.to_string())
        .stdin(Stdio::piped())
        .spawn()
        .context("running python3")?;
    child
        .stdin
        .take()
        .context("python3 stdin is piped")?
        .write_all(include_str!("../make_images.py").as_bytes())?;
    let status = child.wait()?;
    ensure!(status.success(), "generating images: python3 {status}");
    Ok(())
}

/// `sync`: no one's writeback left over for the next command.
pub fn sync() -> Result<()> {
    inputs::run(&mut Command::new("sync"))
}

pub fn run(b: &mut Bench) -> Result<()> {
    let (fleet, layer_bytes, src) = {
        let inputs = b.export_inputs()?;
        (
            inputs.fleet.clone(),
            inputs.layer_bytes,
            inputs.source.host(),
        )
    };
    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    let runs = measure_runs(b, &fleet, &src, IMAGES * LAYERS * layer_bytes)?;
    // The last run's bundle is the import row's input.
    let out = b.work().join("export-run.tender");
    let size = fs::metadata(&out)?.len();
    fs::rename(&out, b.work().join("export.tender"))?;
    report(b, &runs, layer_bytes, size, load_before);
    Ok(())
}

/// What the runs of the export row measured.
struct Runs {
    skopeo: Samples,
    tender: Samples,
    disk_floor: Vec<f64>,
}

/// Interleaved runs of skopeo, the disk floor and tender export; `plain` is
/// the bytes the images hold, which the disk floor writes.
fn measure_runs(b: &Bench, fleet: &Path, src: &str, plain: u64) -> Result<Runs> {
    let out = b.work().join("export-run.tender");
    let oci = b.work().join("skopeo-export");
    let hub = b.work().join("hub.export");
    let floor = b.work().join("disk-floor");
    let mut runs = Runs {
        skopeo: Samples::default(),
        tender: Samples::default(),
        disk_floor: Vec::new(),
    };
    let count = b.runs();
    for i in 1..=count {
        log(format_args!("export: run {i}/{count}"));
        remove(&oci)?;
        sync()?;
        runs.skopeo.push(measure(
            b.work(),
            "bash",
            skopeo_each(
                &format!("docker://{src}/bench/img{{}}:1"),
                &format!("oci:{}:img{{}}", oci.display()),
                &["--src-tls-verify=false"],
            ),
        )?);
        // Both tools fsync what they write, so the disk bounds both: its
        // floor now is writing the bundle's bytes and syncing them.
        remove(&floor)?;
        sync()?;
        let mut of = OsString::from("of=");
        of.push(&floor);
        let dd = [
            OsString::from("if=/dev/zero"),
            of,
            "bs=1M".into(),
            format!("count={}", plain.div_ceil(MIB)).into(),
            "conv=fdatasync".into(),
            "status=none".into(),
        ];
        runs.disk_floor.push(measure(b.work(), "dd", dd)?.wall_s);
        remove(&floor)?;
        // A fresh hub state each run: every run is sequence 1 of a new hub.
        remove(&hub)?;
        remove(&out)?;
        sync()?;
        runs.tender.push(measure(
            b.work(),
            &b.tender,
            b.export_args(fleet, &hub, &out),
        )?);
    }
    remove(&oci)?;
    remove(&hub)?;
    Ok(runs)
}

/// The table lines and the JSON line of the export row.
fn report(b: &mut Bench, runs: &Runs, layer_bytes: u64, size: u64, load_before: f64) {
    let (skopeo, tender) = (&runs.skopeo, &runs.tender);
    let sw = b.stat(&skopeo.wall());
    let tw = b.stat(&tender.wall());
    let sc = b.stat(&skopeo.cpu());
    let tc = b.stat(&tender.cpu());
    let fw = b.stat(&runs.disk_floor);
    let ratio = round(sw / tw, 3);
    let how = b.how();
    b.table.add([
        "export",
        &format!("wall, {how}, {IMAGES} images"),
        &format!("{sw:.3} s"),
        &format!("{tw:.3} s"),
        &format!("{ratio:.2}"),
        ">= 2.0",
    ]);
    b.table.add([
        "",
        &format!("disk floor: dd + fdatasync of {}", human_bytes(size)),
        &format!("{fw:.3} s"),
        "",
        "",
        "",
    ]);
    b.table.add_cpu(&how, sc, tc);
    b.table.add_peak_rss(
        &format!("bundle {}", human_bytes(size)),
        Some(skopeo.max_rss_kib()),
        tender.max_rss_kib(),
        "<= 128 MiB",
    );
    b.table.note("export: baseline = skopeo copy of each image, one by one, from the loopback registry into one OCI layout");
    b.table.note("export: both fsync what they write (skopeo each blob, tender its bundle), so neither beats the disk floor for long");
    let row = JsonRow::new("export")
        .field(
            "baseline",
            "skopeo copy docker:// -> oci:, one image at a time",
        )
        .field("images", IMAGES)
        .field("layers_per_image", LAYERS)
        .field("layer_bytes", layer_bytes)
        .field("bundle_bytes", size)
        .field("runs", b.runs())
        .field("stat", b.stat_name())
        .field("baseline_s", sw)
        .field("tender_s", tw)
        .field("ratio", ratio)
        .field("ratio_target", 2.0)
        .field("baseline_cpu_s", sc)
        .field("tender_cpu_s", tc)
        .field("disk_floor_s", fw)
        .field("baseline_wall_samples_s", json!(skopeo.wall()))
        .field("tender_wall_samples_s", json!(tender.wall()))
        .field("tender_peak_rss_kib", tender.max_rss_kib())
        .field("baseline_peak_rss_kib", skopeo.max_rss_kib())
        .field("rss_target_kib", 128 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
}
