use std::io::Write;

use crate::args::InspectArgs;
use crate::human;

/// Reads only the manifest and the signature slot: instant on any size.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let reader = super::open_bundle(&args.bundle)?;
    let m = reader.manifest();
    let mut out = std::io::stdout().lock();
    if args.json {
        return super::print_json(&serde_json::json!({
            "verified": false,
            "manifest_digest": reader.manifest_digest(),
            "manifest": m,
            "signatures": reader.signatures().signatures,
        }));
    }
    writeln!(
        out,
        "UNVERIFIED: nothing below has been checked against a trust policy"
    )?;
    writeln!(
        out,
        "  bundle    {} ({:?}, {})",
        m.bundle_id, m.kind, m.format
    )?;
    writeln!(out, "  manifest  {}", reader.manifest_digest())?;
    writeln!(out, "  channel   {} sequence {}", m.channel, m.sequence)?;
    writeln!(
        out,
        "  created   {} by {}",
        m.created,
        human::clean(&m.creator)
    )?;
    writeln!(out, "  sites     {}", m.targets.sites.join(", "))?;
    writeln!(out, "  clusters  {}", m.targets.clusters.join(", "))?;
    for r in &m.releases {
        writeln!(
            out,
            "  release   {} at {}: manifests {}, {} image(s)",
            human::clean(&r.cluster),
            human::clean(&r.site),
            r.manifests,
            r.images.len()
        )?;
        for i in &r.images {
            writeln!(
                out,
                "              {}@{}",
                human::clean(&i.reference),
                i.digest
            )?;
        }
    }
    for s in &reader.signatures().signatures {
        writeln!(
            out,
            "  signature {} as {} by {} at {}",
            human::clean(&s.key_id),
            human::clean(&s.role),
            human::clean(&s.signer),
            human::clean(&s.signed_at)
        )?;
    }
    writeln!(
        out,
        "  entries   {} ({})",
        m.entries.len(),
        human::bytes(m.payload_bytes())
    )?;
    if args.entries {
        for e in &m.entries {
            writeln!(
                out,
                "    {:>12}  {}  {}",
                e.size,
                e.digest,
                human::clean(&e.path)
            )?;
        }
    }
    Ok(())
}
