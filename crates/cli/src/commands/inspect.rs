use indicatif::HumanBytes;
use std::io::Write;

use tender_format::manifest::Base;
use tender_format::{BundleManifest, Carried};

use crate::args::InspectArgs;
use crate::human;

/// Reads only the manifest and the signature slot: instant on any size.
pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let reader = super::open_bundle(&args.bundle)?;
    let m = reader.manifest();
    let mut out = std::io::stdout().lock();
    let blobs = blob_rows(m);
    if args.json {
        return super::print_json(&serde_json::json!({
            "verified": false,
            "manifest_digest": reader.manifest_digest(),
            "manifest": m,
            "signatures": reader.signatures().signatures,
            "blobs": blobs,
        }));
    }
    print_bundle(&mut out, m, &reader.manifest_digest())?;
    print_releases(&mut out, m)?;
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
        HumanBytes(m.payload_bytes())
    )?;
    if let Some(base) = &m.base {
        print_delta(&mut out, base, &blobs)?;
    }
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

/// Who made the bundle, when, for which channel, sites and clusters, and
/// any gate override or policy update it carries.
fn print_bundle(
    out: &mut impl Write,
    m: &BundleManifest,
    digest: &tender_format::Digest,
) -> std::io::Result<()> {
    writeln!(
        out,
        "UNVERIFIED: nothing below has been checked against a trust policy"
    )?;
    writeln!(
        out,
        "  bundle    {} ({}, {})",
        m.bundle_id, m.kind, m.format
    )?;
    writeln!(out, "  manifest  {digest}")?;
    writeln!(out, "  channel   {} sequence {}", m.channel, m.sequence)?;
    writeln!(
        out,
        "  created   {} by {}",
        m.created,
        human::clean(&m.creator)
    )?;
    writeln!(out, "  sites     {}", m.targets.sites.join(", "))?;
    writeln!(out, "  clusters  {}", m.targets.clusters.join(", "))?;
    if let Some(o) = &m.gate_override {
        writeln!(
            out,
            "  OVERRIDE  wave gate overridden: {} (pending: {})",
            human::clean(&o.reason),
            if o.pending.is_empty() {
                "none".to_string()
            } else {
                o.pending.join(", ")
            }
        )?;
    }
    for u in &m.policy_updates {
        writeln!(
            out,
            "  policy    update {} created {}, {} root signature(s)",
            u.policy_version(),
            u.policy.created,
            u.signatures.len()
        )?;
    }
    Ok(())
}

/// Each release: its cluster and site, manifest set and pinned images.
fn print_releases(out: &mut impl Write, m: &BundleManifest) -> std::io::Result<()> {
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
    Ok(())
}

/// A delta's base, what it saves, and how each blob travels (and why a
/// layer travels whole).
fn print_delta(out: &mut impl Write, base: &Base, blobs: &[BlobRow]) -> std::io::Result<()> {
    writeln!(
        out,
        "  base      {} manifest {}",
        human::clean(&base.bundle_id),
        base.manifest_digest
    )?;
    let count = |how: Carried| blobs.iter().filter(|b| b.how == how).count();
    let size: u64 = blobs.iter().map(|b| b.size).sum();
    let saved: u64 = blobs.iter().map(|b| b.saved).sum();
    writeln!(
        out,
        "  delta     {} whole, {} referenced, {} patched; {} of {} saved",
        count(Carried::Whole),
        count(Carried::Referenced),
        count(Carried::Patched),
        HumanBytes(saved),
        HumanBytes(size)
    )?;
    for b in blobs {
        let against = b
            .source
            .map(|s| format!(" against {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            "    {:<10} {} {} → {}{against}",
            b.how,
            b.digest,
            HumanBytes(b.size),
            HumanBytes(b.shipped),
        )?;
        if let Some(reason) = &b.reason {
            writeln!(out, "               why whole: {}", human::clean(reason))?;
        }
    }
    Ok(())
}

/// How one blob of the release travels in this bundle.
#[derive(serde::Serialize)]
struct BlobRow {
    digest: tender_format::Digest,
    /// `whole`, `referenced` or `patched`.
    how: Carried,
    /// The blob's own size.
    size: u64,
    /// Bytes the bundle carries for it.
    shipped: u64,
    saved: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<tender_format::Digest>,
    /// Why a layer of a delta travels whole, as the hub recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Every blob of the release, from the manifest alone (a delta's base
/// lists what it references and what each patch is made against).
fn blob_rows(m: &tender_format::BundleManifest) -> Vec<BlobRow> {
    use tender_format::Encoding;
    use tender_format::layout::EntryPath;
    let mut rows = Vec::new();
    for e in &m.entries {
        let Ok(EntryPath::Blob(digest)) = EntryPath::parse(&e.path) else {
            continue;
        };
        let patch = m
            .base
            .iter()
            .flat_map(|b| &b.patches)
            .find(|p| p.target == digest);
        let (how, size, source) = match (e.encoding, patch) {
            (Encoding::Patch, Some(p)) => (Carried::Patched, p.target_size, Some(p.source)),
            _ => (Carried::Whole, e.size, None),
        };
        let reason = m
            .base
            .iter()
            .flat_map(|b| &b.whole)
            .find(|w| w.digest == digest)
            .map(|w| w.reason.clone());
        rows.push(BlobRow {
            digest,
            how,
            size,
            shipped: e.size,
            saved: size.saturating_sub(e.size),
            source,
            reason,
        });
    }
    for b in m.base.iter().flat_map(|b| &b.blobs) {
        rows.push(BlobRow {
            digest: b.digest,
            how: Carried::Referenced,
            size: b.size,
            shipped: 0,
            saved: b.size,
            source: None,
            reason: None,
        });
    }
    rows.sort_by_key(|r| r.digest);
    rows
}
