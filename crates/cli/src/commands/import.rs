use indicatif::HumanBytes;
use std::cell::RefCell;
use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use tender_import::publish::Published;
use tender_import::{
    ImportOptions, ImportOutcome, ImportReport, Site, check as check_bundle, import,
};
use tender_oci::ClientOptions;

use crate::args::ImportArgs;
use crate::human;
use crate::observer::CliObserver;
use crate::progress::Progress;

/// `tender import`: the bundle imported (or, with `--check`, only
/// checked) and what was done reported.
pub fn run(args: ImportArgs, show_progress: bool) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let reader = super::open_bundle(&args.bundle)?;
    let total = reader.manifest().payload_bytes();
    let client = ClientOptions {
        observer: Arc::new(CliObserver::new(show_progress)),
        ..crate::environment::client_options()
    };
    let options = ImportOptions {
        site,
        operator: args.operator.clone().unwrap_or_else(super::os_user),
        client,
        delta_limits: tender_delta::ApplyLimits {
            window: args.delta_memory_limit,
        },
    };
    if args.check {
        return check(&args, reader, &options, show_progress, total);
    }
    let bar = RefCell::new(Progress::new(show_progress, "import", total));
    let report = import(reader, &options, &mut |done| bar.borrow_mut().set(done))
        .with_context(|| format!("importing {}", args.bundle.display()))
        .map_err(|e| super::name_bad_volumes(&args.bundle, e))?;
    bar.borrow().finish();
    if args.json {
        return super::print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    if report.outcome == ImportOutcome::AlreadyImported {
        return print_already_imported(&mut out, &args, &report);
    }
    print_imported(&mut out, &report)
}

/// A re-import of the current bundle: nothing done, and said how little
/// was checked.
fn print_already_imported(
    out: &mut impl Write,
    args: &ImportArgs,
    report: &ImportReport,
) -> anyhow::Result<()> {
    writeln!(
        out,
        "ALREADY IMPORTED: {} (channel {} sequence {}) is the site's current release; nothing to do",
        report.bundle_id, report.channel, report.sequence
    )?;
    // Honest about what this run did: a damaged or tampered copy of
    // the bundle says the same, so say how to check the stick.
    writeln!(
        out,
        "  not re-read: only the bundle's manifest and signatures were checked, not its contents;\n  \
         to check every byte: tender import --check {} --site {}",
        args.bundle.display(),
        args.site.display()
    )?;
    Ok(())
}

/// What an import did: clusters, policy, images, blobs, publications,
/// audit line and receipt (warnings on stderr).
fn print_imported(out: &mut impl Write, report: &ImportReport) -> anyhow::Result<()> {
    writeln!(
        out,
        "IMPORTED {} into site {}: channel {} sequence {}",
        report.bundle_id, report.site, report.channel, report.sequence
    )?;
    writeln!(out, "  clusters  {}", report.clusters.join(", "))?;
    if let Some(last) = report.policy_updates.last() {
        writeln!(
            out,
            "  policy    updated to {last} from the bundle (audited per update)"
        )?;
    }
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
        HumanBytes(report.bytes_read),
        report.seconds
    )?;
    print_published(out, &report.published)?;
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

/// What publishing did, cluster by cluster: where manifests went, the
/// image references pinned, the objects the release no longer has.
fn print_published(out: &mut impl Write, published: &[Published]) -> anyhow::Result<()> {
    for p in published {
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
    Ok(())
}

/// `--check`: every byte verified, nothing changed but one audit line.
fn check<R: std::io::Read>(
    args: &ImportArgs,
    reader: tender_format::BundleReader<R>,
    options: &ImportOptions,
    show_progress: bool,
    total: u64,
) -> anyhow::Result<()> {
    let bar = RefCell::new(Progress::new(show_progress, "check", total));
    let report = check_bundle(reader, options, &mut |done| bar.borrow_mut().set(done))
        .with_context(|| format!("checking {}", args.bundle.display()))
        .map_err(|e| super::name_bad_volumes(&args.bundle, e))?;
    bar.borrow().finish();
    if args.json {
        return super::print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "CHECKED {}: every entry verified; nothing changed at site {}",
        args.bundle.display(),
        report.site
    )?;
    writeln!(
        out,
        "  bundle    {} (channel {} sequence {})",
        report.bundle_id, report.channel, report.sequence
    )?;
    writeln!(out, "  manifest  {}", report.manifest_digest)?;
    writeln!(out, "  clusters  {}", report.clusters.join(", "))?;
    writeln!(out, "  status    {}", report.status)?;
    writeln!(
        out,
        "  entries   {} ({}), all digests match, {} in {:.2}s",
        report.entries,
        HumanBytes(report.payload_bytes),
        human::rate(report.stream_bytes, report.seconds),
        report.seconds
    )?;
    writeln!(out, "  audit     {}", report.audit_hash)?;
    Ok(())
}
