use indicatif::HumanBytes;
use tender_export::{BundleOutput, SealOptions, seal_layout};
use tender_format::manifest::Targets;
use tender_trust::PrivateKey;

use crate::args::PackArgs;
use crate::progress::Progress;

pub fn run(args: PackArgs, show_progress: bool) -> anyhow::Result<()> {
    super::warn_if_too_open(&args.key);
    let key = PrivateKey::read(&args.key)?;
    let options = SealOptions {
        channel: args.channel,
        sequence: args.sequence,
        creator: args.creator.unwrap_or_else(super::whoami),
        targets: Targets {
            sites: args.sites,
            clusters: args.clusters,
        },
        releases: Vec::new(),
        bundle_id: None,
        created: None,
        policy_updates: super::policy::read_for_hub(&args.policy_updates)?,
        gate_override: None,
    };
    let mut bar = Progress::new(show_progress, "pack", 0);
    let output = super::bundle_output(&args.output, args.volume_size.as_deref())?;
    let to_stdout = matches!(output, BundleOutput::Stdout);
    let sealed = seal_layout(&args.layout, &options, &key, &output, &mut |n| bar.set(n))?;
    bar.finish();
    let summary = serde_json::json!({
        "bundle": sealed.path,
        "bundle_id": sealed.manifest.bundle_id,
        "manifest_digest": sealed.manifest_digest,
        "entries": sealed.manifest.entries.len(),
        "bytes": sealed.bytes,
        "volumes": sealed.volumes.as_ref().map(|v| v.volumes.len()),
    });
    if to_stdout {
        // The bundle itself is the data on stdout.
        eprintln!("{summary}");
        return Ok(());
    }
    if args.json {
        return super::print_json(&summary);
    }
    println!(
        "wrote {} ({} entries, {}), bundle {} manifest {}",
        sealed.path.display(),
        sealed.manifest.entries.len(),
        HumanBytes(sealed.bytes),
        sealed.manifest.bundle_id,
        sealed.manifest_digest
    );
    Ok(())
}
