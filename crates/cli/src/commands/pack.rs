use tender_export::{SealOptions, seal_layout};
use tender_format::manifest::Targets;
use tender_trust::PrivateKey;

use crate::args::PackArgs;
use crate::human;
use crate::progress::Progress;

pub fn run(args: PackArgs, show_progress: bool) -> anyhow::Result<()> {
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
    };
    let mut bar = Progress::new(show_progress, "pack", 0);
    let sealed = seal_layout(&args.layout, &options, &key, &args.output, &mut |n| {
        bar.set(n)
    })?;
    bar.finish();
    let summary = serde_json::json!({
        "bundle": sealed.path,
        "bundle_id": sealed.manifest.bundle_id,
        "manifest_digest": sealed.manifest_digest,
        "entries": sealed.manifest.entries.len(),
        "bytes": sealed.bytes,
    });
    if args.json {
        return super::print_json(&summary);
    }
    println!(
        "wrote {} ({} entries, {}), bundle {} manifest {}",
        sealed.path.display(),
        sealed.manifest.entries.len(),
        human::bytes(sealed.bytes),
        sealed.manifest.bundle_id,
        sealed.manifest_digest
    );
    Ok(())
}
