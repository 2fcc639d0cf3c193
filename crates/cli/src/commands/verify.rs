use indicatif::HumanBytes;
use std::cell::RefCell;
use std::io::Write;

use anyhow::Context;
use tender_format::reader::discard;
use tender_import::verify_bundle;
use tender_trust::TrustPolicy;
use tender_trust::policy::SignatureStatus;

use crate::args::VerifyArgs;
use crate::human;
use crate::progress::Progress;

pub fn run(args: VerifyArgs, show_progress: bool) -> anyhow::Result<()> {
    if args.list_missing {
        return list_missing(&args);
    }
    let policy = TrustPolicy::load(args.trust.as_deref().expect("clap requires --trust"))?;
    let input = super::open_bundle(&args.bundle)?;
    let bar = RefCell::new(Progress::Off);
    let report = verify_bundle(
        input,
        &policy,
        &discard,
        &mut |m| *bar.borrow_mut() = Progress::new(show_progress, "verify", m.payload_bytes()),
        &mut |done| bar.borrow_mut().set(done),
    )
    .with_context(|| format!("{}", args.bundle.display()))
    .map_err(|e| super::name_bad_volumes(&args.bundle, e))?;
    bar.borrow().finish();
    let mut out = std::io::stdout().lock();
    if args.json {
        return super::print_json(&report);
    }
    writeln!(out, "VERIFIED {}", args.bundle.display())?;
    writeln!(out, "  bundle    {} ({})", report.bundle_id, report.kind)?;
    writeln!(out, "  manifest  {}", report.manifest_digest)?;
    writeln!(
        out,
        "  channel   {} sequence {}",
        report.channel, report.sequence
    )?;
    writeln!(
        out,
        "  created   {} by {}",
        report.created,
        human::clean(&report.creator)
    )?;
    writeln!(out, "  sites     {}", report.targets.sites.join(", "))?;
    writeln!(out, "  clusters  {}", report.targets.clusters.join(", "))?;
    for c in &report.policy_updates.applied {
        writeln!(
            out,
            "  policy    update {} -> {} accepted by the given policy (verify stores nothing)",
            c.from_version, c.to_version
        )?;
    }
    for v in &report.policy_updates.skipped {
        writeln!(
            out,
            "  policy    update {v} skipped: the policy is already at {}",
            report.policy_updates.policy_version
        )?;
    }
    for s in &report.trust.signatures {
        let status = match (&s.status, s.ignored_because()) {
            (SignatureStatus::Valid { key_name }, _) => format!("valid ({key_name})"),
            (_, Some(why)) => format!("ignored: {}", human::clean(&why)),
            (_, None) => unreachable!("only a valid signature has no reason to be ignored"),
        };
        writeln!(
            out,
            "  signature {} as {} by {}: {status}",
            human::clean(&s.key_id),
            human::clean(&s.role),
            human::clean(&s.signer)
        )?;
    }
    writeln!(
        out,
        "  entries   {} ({}), all digests match, {} in {:.2}s",
        report.entries,
        HumanBytes(report.payload_bytes),
        human::rate(report.stream_bytes, report.seconds),
        report.seconds
    )?;
    Ok(())
}

/// `--list-missing`: every volume hashed against the index; the missing
/// and damaged ones listed on stdout, so only those are sent again.
fn list_missing(args: &VerifyArgs) -> anyhow::Result<()> {
    let set = super::naming(
        &args.bundle,
        tender_format::volumes::VolumeSet::open(&args.bundle),
        || args.bundle.display().to_string(),
    )?;
    let problems = set.check();
    if args.json {
        super::print_json(&serde_json::json!({
            "volumes": set.count(),
            "problems": problems,
        }))?;
    } else {
        let mut out = std::io::stdout().lock();
        for p in &problems {
            writeln!(out, "{}", set.dir.join(&p.file).display())?;
            eprintln!("{p}");
        }
        if problems.is_empty() {
            eprintln!("all {} volume(s) present and intact", set.count());
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(tender_format::Rejection::Volumes(problems).into())
    }
}
