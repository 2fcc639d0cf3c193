//! volumes: what it costs to carry a bundle as volumes rather than one file.
//! The baseline is tender's own single-file path; volumes should cost at
//! most 10% more (ratio >= 0.91). Three measures: `tender pack` of one
//! layout into a file and into 64 MiB volumes (`--volume-size 64M`); `tender
//! verify` of that file and of the volume directory; `tender import` into a
//! fresh embedded-store site of the export row's bundle (20 images) as one
//! file and cut by `tender split` (16 MiB volumes in quick mode, 64 MiB in
//! full). Also peak RSS of verify and import over the volumes.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::json;

use super::export::{IMAGES, LAYERS};
use super::import::write_site;
use crate::bench::inputs::remove;
use crate::bench::inputs::{self, make_layout};
use crate::bench::measure::{Samples, measure, page_cache};
use crate::bench::report::{human_bytes, kib_mib, round};
use crate::bench::{Bench, Host, JsonRow, log};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BLOBS: u64 = 20;
const VOLUME_SIZE: &str = "64M";

/// The numbered volume files in `dir` (`NAME.tender.NNN`), sorted.
fn volume_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let is_volume = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.rsplit_once(".tender."))
            .is_some_and(|(_, nnn)| nnn.len() == 3 && nnn.bytes().all(|c| c.is_ascii_digit()));
        if is_volume {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn args(parts: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    parts.iter().map(|p| p.as_ref().to_owned()).collect()
}

pub fn run(b: &mut Bench) -> Result<()> {
    let (total, import_vsize) = if b.opts.quick {
        (200 * MIB, "16M")
    } else {
        (2 * GIB, "64M")
    };
    let (fleet, layer_bytes) = {
        let inputs = b.export_inputs()?;
        (inputs.fleet.clone(), inputs.layer_bytes)
    };
    // The layout, the single file and the volumes side by side, then the
    // import bundle, its volumes and two site stores.
    b.need_space(3 * total + 64 * MIB + 4 * IMAGES * LAYERS * layer_bytes)?;
    let plan = prepare(b, &fleet, total, import_vsize)?;
    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    let runs = measure_runs(b, &plan)?;
    report(b, &plan, &runs, load_before)?;
    if !b.opts.keep {
        for path in [
            &plan.layout,
            &plan.single,
            &plan.vdir,
            &plan.ibundle,
            &plan.idir,
        ] {
            remove(path)?;
        }
    }
    Ok(())
}

/// The row's inputs on disk and the six command lines it times.
struct Plan {
    layout: PathBuf,
    /// The pack row's bundle as one file and the directory of its volumes.
    single: PathBuf,
    vdir: PathBuf,
    /// The import bundle as one file and cut into volumes.
    ibundle: PathBuf,
    idir: PathBuf,
    import_vsize: &'static str,
    state_single: PathBuf,
    state_volumes: PathBuf,
    pack_single: Vec<OsString>,
    pack_volumes: Vec<OsString>,
    verify_single: Vec<OsString>,
    verify_volumes: Vec<OsString>,
    import_single: Vec<OsString>,
    import_volumes: Vec<OsString>,
}

/// Generates the pack layout, exports and splits the import bundle, writes
/// the two site files, and spells out the timed commands.
fn prepare(b: &Bench, fleet: &Path, total: u64, import_vsize: &'static str) -> Result<Plan> {
    let work = b.work().to_path_buf();
    let layout = work.join("layout.volumes");
    let single = work.join("single.tender");
    let vdir = work.join("volumes");
    log(format_args!(
        "generating {} in {BLOBS} random blobs",
        human_bytes(total)
    ));
    make_layout(&layout, total, BLOBS)?;
    b.ensure_keys()?;
    fs::create_dir_all(&vdir)?;
    let key = work.join("bench.key");
    let policy = work.join("policy.yaml");
    let pack = |out: &Path, extra: &[&str]| {
        let mut a = args(&[&"pack", &layout, &"--key", &key]);
        a.extend(args(&[
            &"--sequence",
            &"1",
            &"--site",
            &"bench",
            &"--no-progress",
        ]));
        a.extend(args(&[&"-o", &out]));
        a.extend(extra.iter().map(OsString::from));
        a
    };
    let verify = |what: &Path| args(&[&"verify", &what, &"--trust", &policy, &"--no-progress"]);

    // The import bundle: exported once, then split (the same bytes).
    let ibundle = work.join("volumes-import.tender");
    let idir = work.join("volumes-import");
    log(format_args!(
        "volumes: exporting the import bundle, splitting it into {import_vsize} volumes"
    ));
    let hub = work.join("hub.volumes");
    inputs::run(Command::new(&b.tender).args(b.export_args(fleet, &hub, &ibundle)))?;
    remove(&hub)?;
    remove(&idir)?;
    inputs::run(
        Command::new(&b.tender)
            .arg("split")
            .arg(&ibundle)
            .args(["--volume-size", import_vsize, "-o"])
            .arg(&idir),
    )?;
    let site_single = work.join("site-single.yaml");
    let site_volumes = work.join("site-volumes.yaml");
    let state_single = work.join("site-state-single");
    let state_volumes = work.join("site-state-volumes");
    write_site(b, &site_single, &state_single, None)?;
    write_site(b, &site_volumes, &state_volumes, None)?;
    let import = |what: &Path, site: &Path| {
        args(&[
            &"import",
            &what,
            &"--site",
            &site,
            &"--operator",
            &"bench",
            &"--no-progress",
        ])
    };
    Ok(Plan {
        pack_single: pack(&single, &[]),
        pack_volumes: pack(&vdir.join("bench.tender"), &["--volume-size", VOLUME_SIZE]),
        verify_single: verify(&single),
        verify_volumes: verify(&vdir),
        import_single: import(&ibundle, &site_single),
        import_volumes: import(&idir, &site_volumes),
        layout,
        single,
        vdir,
        ibundle,
        idir,
        import_vsize,
        state_single,
        state_volumes,
    })
}

/// What the runs measured, single file against volumes.
#[derive(Default)]
struct Runs {
    pack_single: Samples,
    pack_volumes: Samples,
    verify_single: Samples,
    verify_volumes: Samples,
    import_single: Samples,
    import_volumes: Samples,
}

/// Pack, then verify, then import, each from the page cache, the single
/// file and the volumes interleaved so that drift in machine load hits both
/// sides alike.
fn measure_runs(b: &Bench, plan: &Plan) -> Result<Runs> {
    let work = b.work();
    let count = b.runs();
    let mut runs = Runs::default();
    for blob in fs::read_dir(plan.layout.join("blobs/sha256"))? {
        page_cache(&blob?.path())?;
    }
    for i in 1..=count {
        log(format_args!("volumes: pack run {i}/{count}"));
        let single = measure(work, &b.tender, &plan.pack_single)?;
        runs.pack_single.push(single);
        let volumes = measure(work, &b.tender, &plan.pack_volumes)?;
        runs.pack_volumes.push(volumes);
    }
    page_cache(&plan.single)?;
    for v in volume_files(&plan.vdir)? {
        page_cache(&v)?;
    }
    for i in 1..=count {
        log(format_args!("volumes: verify run {i}/{count}"));
        let single = measure(work, &b.tender, &plan.verify_single)?;
        runs.verify_single.push(single);
        let volumes = measure(work, &b.tender, &plan.verify_volumes)?;
        runs.verify_volumes.push(volumes);
    }
    page_cache(&plan.ibundle)?;
    for v in volume_files(&plan.idir)? {
        page_cache(&v)?;
    }
    for i in 1..=count {
        log(format_args!("volumes: import run {i}/{count}"));
        // A fresh site each run, cleared outside the timing.
        remove(&plan.state_single)?;
        remove(&plan.state_volumes)?;
        let single = measure(work, &b.tender, &plan.import_single)?;
        runs.import_single.push(single);
        let volumes = measure(work, &b.tender, &plan.import_volumes)?;
        runs.import_volumes.push(volumes);
    }
    remove(&plan.state_single)?;
    remove(&plan.state_volumes)?;
    Ok(runs)
}

/// The row's numbers: sizes, and (single file, volumes, ratio) per measure.
struct Summary {
    size: u64,
    count: usize,
    isize: u64,
    icount: usize,
    pack: (f64, f64, f64),
    verify: (f64, f64, f64),
    import: (f64, f64, f64),
    verify_rss: u64,
    import_rss: u64,
}

fn summarize(b: &Bench, plan: &Plan, runs: &Runs) -> Result<Summary> {
    Ok(Summary {
        size: fs::metadata(&plan.single)?.len(),
        count: volume_files(&plan.vdir)?.len(),
        isize: fs::metadata(&plan.ibundle)?.len(),
        icount: volume_files(&plan.idir)?.len(),
        pack: compare(b, &runs.pack_single, &runs.pack_volumes),
        verify: compare(b, &runs.verify_single, &runs.verify_volumes),
        import: compare(b, &runs.import_single, &runs.import_volumes),
        verify_rss: runs.verify_volumes.max_rss_kib(),
        import_rss: runs.import_volumes.max_rss_kib(),
    })
}

/// The table lines and the JSON line of the volumes row.
fn report(b: &mut Bench, plan: &Plan, runs: &Runs, load_before: f64) -> Result<()> {
    let sum = summarize(b, plan, runs)?;
    let (how, import_vsize) = (b.how(), plan.import_vsize);
    let lines = [
        (
            "volumes",
            format!("pack wall, {how}, {}", human_bytes(sum.size)),
            sum.pack,
        ),
        (
            "",
            format!("verify wall, {how}, {} x {VOLUME_SIZE}", sum.count),
            sum.verify,
        ),
        (
            "",
            format!("import wall, {how}, {} x {import_vsize}", sum.icount),
            sum.import,
        ),
    ];
    for (row, metric, (single, volumes, ratio)) in lines {
        b.table.add([
            row,
            &metric,
            &format!("{single:.3} s"),
            &format!("{volumes:.3} s"),
            &format!("{ratio:.2}"),
            ">= 0.91 (1.1x)",
        ]);
    }
    let verify_rss = kib_mib(sum.verify_rss);
    let import_rss = kib_mib(sum.import_rss);
    b.table.add([
        "",
        "verify peak RSS, volumes",
        "-",
        &verify_rss,
        "",
        "<= 64 MiB",
    ]);
    b.table.add([
        "",
        "import peak RSS, volumes",
        "-",
        &import_rss,
        "",
        "<= 128 MiB",
    ]);
    b.table
        .note("volumes: baseline = tender on one file; TENDER column = the same bundle as volumes");
    b.table.note(format!(
        "volumes: import = the export row's {IMAGES} images ({} bundle) into a fresh embedded-store site",
        human_bytes(sum.isize)
    ));
    let row = JsonRow::new("volumes")
        .field("baseline", "tender, single file")
        .field("bundle_bytes", sum.size)
        .field("blobs", BLOBS)
        .field("volume_size", VOLUME_SIZE)
        .field("volumes", sum.count)
        .field("runs", b.runs())
        .field("stat", b.stat_name())
        .field("pack_single_s", sum.pack.0)
        .field("pack_volumes_s", sum.pack.1)
        .field("pack_ratio", sum.pack.2)
        .field("verify_single_s", sum.verify.0)
        .field("verify_volumes_s", sum.verify.1)
        .field("verify_ratio", sum.verify.2)
        .field("import_bundle_bytes", sum.isize)
        .field("import_volume_size", import_vsize)
        .field("import_volumes", sum.icount)
        .field("import_single_s", sum.import.0)
        .field("import_volumes_s", sum.import.1)
        .field("import_ratio", sum.import.2)
        .field("ratio_target", 0.91)
        .field("pack_single_samples_s", json!(runs.pack_single.wall()))
        .field("pack_volumes_samples_s", json!(runs.pack_volumes.wall()))
        .field("verify_single_samples_s", json!(runs.verify_single.wall()))
        .field(
            "verify_volumes_samples_s",
            json!(runs.verify_volumes.wall()),
        )
        .field("import_single_samples_s", json!(runs.import_single.wall()))
        .field(
            "import_volumes_samples_s",
            json!(runs.import_volumes.wall()),
        )
        .field("verify_volumes_peak_rss_kib", sum.verify_rss)
        .field("rss_target_kib", 64 * 1024)
        .field("import_volumes_peak_rss_kib", sum.import_rss)
        .field("import_rss_target_kib", 128 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);
    Ok(())
}

/// The summary of the single-file and the volume samples and their ratio.
fn compare(b: &Bench, single: &Samples, volumes: &Samples) -> (f64, f64, f64) {
    let (single, volumes) = (b.stat(&single.wall()), b.stat(&volumes.wall()));
    (single, volumes, round(single / volumes, 3))
}
