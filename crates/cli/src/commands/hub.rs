//! `tender hub`: the hub's record of site receipts (docs/receipts.md).

use std::io::Write;
use std::path::PathBuf;

use tender_export::hub::{AddSite, Hub, HubStatus, IngestStatus};
use tender_trust::{PublicKey, TrustError};

use crate::args::{HubAddSiteArgs, HubCommand, HubIngestArgs, HubReportArgs, HubStatusArgs};
use crate::exit::UsageError;
use crate::human::clean;

pub fn run(command: HubCommand) -> anyhow::Result<()> {
    match command {
        HubCommand::AddSite(a) => add_site(a),
        HubCommand::Ingest(a) => ingest(a),
        HubCommand::Status(a) => status(a),
        HubCommand::Report(a) => report(a),
    }
}

fn state_dir(arg: Option<PathBuf>) -> PathBuf {
    crate::environment::hub_state_dir(arg)
}

fn add_site(args: HubAddSiteArgs) -> anyhow::Result<()> {
    if !tender_format::manifest::is_token(&args.name) {
        return Err(UsageError(format!(
            "site name {:?} must be letters, digits, '.', '_' or '-'",
            args.name
        ))
        .into());
    }
    let dir = state_dir(args.state_dir);
    let key = PublicKey::read(&args.key)?;
    let hub = Hub::open(&dir)?;
    let outcome = super::naming(&dir, hub.add_site(&args.name, &key), || {
        format!("hub state {}", dir.display())
    })?;
    match outcome {
        AddSite::Added => println!("registered site {} with key {}", args.name, key.id()),
        AddSite::AlreadyRegistered => println!(
            "site {} is already registered with key {} (nothing changed)",
            args.name,
            key.id()
        ),
    }
    if args.new_audit_trail {
        let had = super::naming(&dir, hub.new_audit_trail(&args.name), || {
            format!("hub state {}", dir.display())
        })?;
        if had {
            println!(
                "site {}: a new audit trail; its next receipt is judged by its time, then by its audit index",
                args.name
            );
        }
    }
    Ok(())
}

fn ingest(args: HubIngestArgs) -> anyhow::Result<()> {
    let dir = state_dir(args.state_dir);
    let hub = Hub::open(&dir)?;
    let outcomes = super::naming(&dir, hub.ingest(&args.receipts), || {
        format!("hub state {}", dir.display())
    })?;
    if args.json {
        super::print_json(&outcomes)?;
    } else {
        let mut out = std::io::stdout().lock();
        for o in &outcomes {
            let label = match o.status {
                IngestStatus::Recorded => "recorded ",
                IngestStatus::Duplicate => "duplicate",
                IngestStatus::Refused => "REFUSED  ",
                IngestStatus::Failed => "FAILED   ",
            };
            writeln!(
                out,
                "{label} {}: {}",
                clean(&o.file.display().to_string()),
                clean(&o.message)
            )?;
        }
    }
    let count = |s: IngestStatus| outcomes.iter().filter(|o| o.status == s).count();
    let (refused, failed) = (count(IngestStatus::Refused), count(IngestStatus::Failed));
    if refused > 0 {
        // A refused receipt is a rejection (exit 3), like a refused bundle.
        return Err(TrustError::Untrusted(format!(
            "{refused} of {} receipt(s) refused",
            outcomes.len()
        ))
        .into());
    }
    if failed > 0 {
        anyhow::bail!(
            "{failed} of {} receipt(s) could not be read",
            outcomes.len()
        );
    }
    Ok(())
}

fn status(args: HubStatusArgs) -> anyhow::Result<()> {
    let dir = state_dir(args.state_dir);
    let status = super::naming(
        &dir,
        tender_export::hub::status(&dir, args.stale_after_days),
        || format!("hub state {}", dir.display()),
    )?;
    if args.json {
        return super::print_json(&status);
    }
    print_table(&status)
}

fn report(args: HubReportArgs) -> anyhow::Result<()> {
    let dir = state_dir(args.state_dir);
    let fleet = tender_render::fleet::Fleet::load(&args.fleet)?;
    let report = super::naming(
        &dir,
        tender_export::fleet_report::build_now(
            &fleet,
            &dir,
            args.channel.as_deref(),
            args.stale_after_days,
        ),
        || format!("hub state {}", dir.display()),
    )?;
    let page = tender_export::fleet_page::write(&args.output, &report)?;
    eprintln!(
        "wrote {} ({} cluster(s), {} receipt(s))",
        page.display(),
        report.clusters,
        report.receipts
    );
    if args.json {
        return super::print_json(&report);
    }
    println!("{}", page.display());
    Ok(())
}

fn print_table(status: &HubStatus) -> anyhow::Result<()> {
    let mut rows: Vec<[String; 7]> = vec![
        [
            "SITE",
            "CLUSTER",
            "CHANNEL",
            "SEQUENCE",
            "LATEST",
            "STATE",
            "LAST SEEN",
        ]
        .map(String::from),
    ];
    for site in &status.sites {
        let mut seen = match (&site.last_seen, site.age_days) {
            (Some(t), Some(d)) if d < 0 => format!("{t} (site clock {}d ahead)", -d),
            (Some(t), Some(d)) => format!("{t} ({d}d ago)"),
            _ => "never".to_string(),
        };
        if site.overdue {
            seen.push_str(" OVERDUE");
        }
        if !site.registered {
            seen.push_str(" (key not registered)");
        }
        if site.clusters.is_empty() {
            rows.push([
                site.site.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "unknown".into(),
                seen.clone(),
            ]);
        }
        for c in &site.clusters {
            rows.push([
                site.site.clone(),
                c.cluster.clone(),
                c.channel.clone(),
                c.sequence.to_string(),
                c.latest.map_or("-".into(), |l| l.to_string()),
                c.state.as_str().into(),
                seen.clone(),
            ]);
        }
    }
    let mut widths = [0usize; 7];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{:<w$}", clean(cell)))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    let stale = status.stale().count();
    let overdue = status.overdue().count();
    if stale > 0 || overdue > 0 {
        writeln!(
            out,
            "{stale} cluster(s) behind the latest export; {overdue} site(s) without a receipt for more than {} day(s)",
            status.stale_after_days
        )?;
    }
    Ok(())
}
