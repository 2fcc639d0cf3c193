use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tender_import::{ImportOptions, Site, import};
use tender_oci::ClientOptions;

use crate::args::ImportArgs;
use crate::human;
use crate::observer::CliObserver;
use crate::progress::Progress;

pub fn run(args: ImportArgs, show_progress: bool) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let reader = super::open_bundle(&args.bundle)?;
    let total = reader.manifest().payload_bytes();
    let client = ClientOptions {
        observer: Arc::new(CliObserver::new(show_progress)),
        ..ClientOptions::default()
    };
    let options = ImportOptions {
        site,
        operator: args.operator.clone().unwrap_or_else(super::os_user),
        client,
        delta_limits: tender_delta::ApplyLimits {
            window: args.delta_memory_limit,
        },
    };
    let bar = RefCell::new(Progress::new(show_progress, "import", total));
    let report = import(reader, &options, &mut |done| bar.borrow_mut().set(done))
        .with_context(|| format!("importing {}", args.bundle.display()))
        .map_err(|e| super::name_bad_volumes(&args.bundle, e))?;
    bar.borrow().finish();
    if args.json {
        return super::print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    if report.outcome == "already imported" {
        writeln!(
            out,
            "ALREADY IMPORTED: {} (channel {} sequence {}) is the site's current release; nothing to do",
            report.bundle_id, report.channel, report.sequence
        )?;
        return Ok(());
    }
    writeln!(
        out,
        "IMPORTED {} into site {}: channel {} sequence {}",
        report.bundle_id, report.site, report.channel, report.sequence
    )?;
    writeln!(out, "  clusters  {}", report.clusters.join(", "))?;
    for (from, to) in &report.images {
        writeln!(
            out,
            "  image     {} → {}",
            human::clean(from),
            human::clean(to)
        )?;
    }
    writeln!(
        out,
        "  blobs     {} new, {} already present; {} read in {:.2}s",
        report.blobs_new,
        report.blobs_present,
        human::bytes(report.bytes_read),
        report.seconds
    )?;
    for p in &report.published {
        for place in &p.published {
            writeln!(out, "  publish   {} → {}", p.cluster, human::clean(place))?;
        }
        if !p.rewritten.is_empty() {
            writeln!(
                out,
                "  pinned    {} image reference(s) in {}",
                p.rewritten.len(),
                p.cluster
            )?;
        }
        for removed in &p.removed_objects {
            writeln!(
                out,
                "  removed   {} no longer has {} (not deleted: tender never prunes)",
                p.cluster,
                human::clean(removed)
            )?;
        }
    }
    writeln!(out, "  audit     {}", report.audit_hash)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &report.receipt {
        writeln!(
            out,
            "  receipt   {} (carry it back to the hub)",
            path.display()
        )?;
    }
    Ok(())
}
