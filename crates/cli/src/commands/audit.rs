use std::io::Write;

use tender_import::Site;
use tender_import::audit::AuditLog;

use crate::args::{AuditCommand, AuditVerifyArgs};

pub fn run(command: AuditCommand) -> anyhow::Result<()> {
    match command {
        AuditCommand::Verify(args) => verify(args),
    }
}

fn verify(args: AuditVerifyArgs) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let log = AuditLog::new(&site.state_dir);
    let report = log.verify()?;
    if args.json {
        super::print_json(&report)?;
    } else {
        let mut out = std::io::stdout().lock();
        match &report.reason {
            None => writeln!(
                out,
                "audit chain intact: {} entries, last {}",
                report.entries, report.last_hash
            )?,
            Some(reason) => writeln!(out, "AUDIT CHAIN BROKEN: {reason}")?,
        }
        if let Some(event) = &report.pending {
            writeln!(
                out,
                "pending: {} of {} (sequence {}) began and has no entry yet: its run was \
                 interrupted, and the next import or rollback records how it ended",
                event.action,
                event.bundle_id.as_deref().unwrap_or("?"),
                event
                    .sequence
                    .map_or_else(|| "?".to_string(), |s| s.to_string()),
            )?;
        }
    }
    match report.reason {
        // A broken chain is evidence of tampering: the same exit code as a
        // rejected bundle.
        Some(reason) => Err(tender_import::ImportError::Audit(reason).into()),
        None => Ok(()),
    }
}
