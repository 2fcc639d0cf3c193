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

use super::export::{IMAGES, LAYERS, remove, round3};
use super::import::write_site;
use crate::bench::inputs::{self, make_layout};
use crate::bench::measure::{Samples, measure, page_cache};
use crate::bench::report::{human_bytes, kib_mib};
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
    let (total, runs, import_vsize) = if b.opts.quick {
        (200 * MIB, 3, "16M")
    } else {
        (2 * GIB, 5, "64M")
    };
    let (fleet, layer_bytes) = {
        let inputs = b.export_inputs()?;
        (inputs.fleet.clone(), inputs.layer_bytes)
    };
    // The layout, the single file and the volumes side by side, then the
    // import bundle, its volumes and two site stores.
    b.need_space(3 * total + 64 * MIB + 4 * IMAGES * LAYERS * layer_bytes)?;

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
    let pack_single = pack(&single, &[]);
    let pack_volumes = pack(&vdir.join("bench.tender"), &["--volume-size", VOLUME_SIZE]);
    let verify = |what: &Path| args(&[&"verify", &what, &"--trust", &policy, &"--no-progress"]);
    let verify_single = verify(&single);
    let verify_volumes = verify(&vdir);

    // The import bundle: exported once, then split (the same bytes).
    let ibundle = work.join("volumes-import.tender");
    let idir = work.join("volumes-import");
    log(format_args!(
        "volumes: exporting the import bundle, splitting it into {import_vsize} volumes"
    ));
    let hub = work.join("hub.volumes");
    inputs::run(Command::new(&b.tender).args(b.export_args(&fleet, &hub, &ibundle)))?;
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
    let import_single = import(&ibundle, &site_single);
    let import_volumes = import(&idir, &site_volumes);

    b.host.warn_if_busy();
    let load_before = Host::loadavg();
    for blob in fs::read_dir(layout.join("blobs/sha256"))? {
        page_cache(&blob?.path())?;
    }
    // Interleaved, so drift in machine load hits both sides alike.
    let (mut ps, mut pv) = (Samples::default(), Samples::default());
    for i in 1..=runs {
        log(format_args!("volumes: pack run {i}/{runs}"));
        ps.push(measure(&work, &b.tender, &pack_single)?);
        pv.push(measure(&work, &b.tender, &pack_volumes)?);
    }
    let size = fs::metadata(&single)?.len();
    let volumes = volume_files(&vdir)?;
    let isize = fs::metadata(&ibundle)?.len();
    let ivolumes = volume_files(&idir)?;
    page_cache(&single)?;
    for v in &volumes {
        page_cache(v)?;
    }
    let (mut vs, mut vv) = (Samples::default(), Samples::default());
    for i in 1..=runs {
        log(format_args!("volumes: verify run {i}/{runs}"));
        vs.push(measure(&work, &b.tender, &verify_single)?);
        vv.push(measure(&work, &b.tender, &verify_volumes)?);
    }
    page_cache(&ibundle)?;
    for v in &ivolumes {
        page_cache(v)?;
    }
    let (mut is, mut iv) = (Samples::default(), Samples::default());
    for i in 1..=runs {
        log(format_args!("volumes: import run {i}/{runs}"));
        // A fresh site each run, cleared outside the timing.
        remove(&state_single)?;
        remove(&state_volumes)?;
        is.push(measure(&work, &b.tender, &import_single)?);
        iv.push(measure(&work, &b.tender, &import_volumes)?);
    }
    remove(&state_single)?;
    remove(&state_volumes)?;

    let (ps_s, pv_s) = (b.stat(&ps.wall()), b.stat(&pv.wall()));
    let (vs_s, vv_s) = (b.stat(&vs.wall()), b.stat(&vv.wall()));
    let (is_s, iv_s) = (b.stat(&is.wall()), b.stat(&iv.wall()));
    let pack_ratio = round3(ps_s / pv_s);
    let verify_ratio = round3(vs_s / vv_s);
    let import_ratio = round3(is_s / iv_s);
    let (rss, irss) = (vv.max_rss_kib(), iv.max_rss_kib());
    let how = b.how();
    let (count, icount) = (volumes.len(), ivolumes.len());
    b.table.add([
        "volumes",
        &format!("pack wall, {how}, {}", human_bytes(size)),
        &format!("{ps_s:.3} s"),
        &format!("{pv_s:.3} s"),
        &format!("{pack_ratio:.2}"),
        ">= 0.91 (1.1x)",
    ]);
    b.table.add([
        "",
        &format!("verify wall, {how}, {count} x {VOLUME_SIZE}"),
        &format!("{vs_s:.3} s"),
        &format!("{vv_s:.3} s"),
        &format!("{verify_ratio:.2}"),
        ">= 0.91 (1.1x)",
    ]);
    b.table.add([
        "",
        &format!("import wall, {how}, {icount} x {import_vsize}"),
        &format!("{is_s:.3} s"),
        &format!("{iv_s:.3} s"),
        &format!("{import_ratio:.2}"),
        ">= 0.91 (1.1x)",
    ]);
    b.table.add([
        "",
        "verify peak RSS, volumes",
        "-",
        &kib_mib(rss),
        "",
        "<= 64 MiB",
    ]);
    b.table.add([
        "",
        "import peak RSS, volumes",
        "-",
        &kib_mib(irss),
        "",
        "<= 128 MiB",
    ]);
    b.table
        .note("volumes: baseline = tender on one file; TENDER column = the same bundle as volumes");
    b.table.note(format!(
        "volumes: import = the export row's {IMAGES} images ({} bundle) into a fresh embedded-store site",
        human_bytes(isize)
    ));
    let row = JsonRow::new("volumes")
        .field("baseline", "tender, single file")
        .field("bundle_bytes", size)
        .field("blobs", BLOBS)
        .field("volume_size", VOLUME_SIZE)
        .field("volumes", count)
        .field("runs", runs)
        .field("stat", if b.opts.quick { "min" } else { "median" })
        .field("pack_single_s", ps_s)
        .field("pack_volumes_s", pv_s)
        .field("pack_ratio", pack_ratio)
        .field("verify_single_s", vs_s)
        .field("verify_volumes_s", vv_s)
        .field("verify_ratio", verify_ratio)
        .field("import_bundle_bytes", isize)
        .field("import_volume_size", import_vsize)
        .field("import_volumes", icount)
        .field("import_single_s", is_s)
        .field("import_volumes_s", iv_s)
        .field("import_ratio", import_ratio)
        .field("ratio_target", 0.91)
        .field("pack_single_samples_s", json!(ps.wall()))
        .field("pack_volumes_samples_s", json!(pv.wall()))
        .field("verify_single_samples_s", json!(vs.wall()))
        .field("verify_volumes_samples_s", json!(vv.wall()))
        .field("import_single_samples_s", json!(is.wall()))
        .field("import_volumes_samples_s", json!(iv.wall()))
        .field("verify_volumes_peak_rss_kib", rss)
        .field("rss_target_kib", 64 * 1024)
        .field("import_volumes_peak_rss_kib", irss)
        .field("import_rss_target_kib", 128 * 1024)
        .field("loadavg_before", load_before)
        .field("loadavg_after", Host::loadavg());
    b.json_row(row);

    if !b.opts.keep {
        for path in [&layout, &single, &vdir, &ibundle, &idir] {
            remove(path)?;
        }
    }
    Ok(())
}
