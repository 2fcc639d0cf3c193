use indicatif::HumanBytes;
use std::io::Write;
use std::time::Instant;

use tender_import::Site;
use tender_import::releases;
use tender_import::state::read_state;

use crate::args::{GcArgs, ReleasesArgs, RollbackArgs};
use crate::human;

pub fn list(args: ReleasesArgs) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let all = releases::list(&site.state_dir)?;
    let current = read_state(&site.state_dir)?;
    if args.json {
        return super::print_json(&serde_json::json!({
            "releases": all,
            "current": current.current,
        }));
    }
    let mut out = std::io::stdout().lock();
    for (cluster, records) in &all {
        writeln!(out, "{cluster}")?;
        for r in records {
            let is_current = current
                .current
                .get(cluster)
                .is_some_and(|c| c.sequence == r.sequence && c.bundle_id == r.bundle_id);
            writeln!(
                out,
                "  {} {:>6}  {}  bundle {}  manifests {}  imported {}",
                if is_current { "*" } else { " " },
                r.sequence,
                human::clean(&r.channel),
                human::clean(&r.bundle_id),
                r.manifests,
                r.imported_at
            )?;
        }
    }
    Ok(())
}

pub fn rollback(args: RollbackArgs) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let started = Instant::now();
    let operator = args.operator.unwrap_or_else(super::os_user);
    let (record, receipt, warnings) = releases::rollback(
        &site,
        &args.cluster,
        args.to,
        &operator,
        &crate::environment::client_options(),
    )?;
    if let Some(path) = receipt {
        eprintln!("receipt for the hub: {}", path.display());
    }
    for w in &warnings {
        eprintln!("tender: warning: {}", human::clean(w));
    }
    writeln!(
        std::io::stdout().lock(),
        "ROLLED BACK {} to sequence {} (bundle {}, manifests {}) in {:.2}s",
        args.cluster,
        record.sequence,
        human::clean(&record.bundle_id),
        record.manifests,
        started.elapsed().as_secs_f64()
    )?;
    Ok(())
}

pub fn gc(args: GcArgs) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let operator = args.operator.unwrap_or_else(super::os_user);
    let report = releases::gc(&site, args.keep, &operator)?;
    if args.json {
        return super::print_json(&report);
    }
    writeln!(
        std::io::stdout().lock(),
        "kept {} release(s); removed {} tag(s), {} blob(s) ({}), {} manifest set(s)",
        report.kept_releases,
        report.removed_tags.len(),
        report.removed_blobs,
        HumanBytes(report.removed_bytes),
        report.removed_manifest_sets
    )?;
    Ok(())
}
