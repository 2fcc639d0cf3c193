//! Whether a bundle may be imported at this site, judged from its manifest
//! and signatures alone, before any entry is read: shared by `tender
//! import` and `tender import --check`, which must refuse the same bundles.

use std::io::Read;

use tender_format::manifest::Release;
use tender_format::{BundleManifest, BundleReader, Digest};
use tender_trust::policy::SignatureStatus;
use tender_trust::update::Chain;

use crate::audit::{AuditAction, AuditEvent, Signer};
use crate::error::ImportError;
use crate::site::Site;
use crate::state::SiteStateFile;

/// The audit line of `action` on the bundle `reader` opened, before its
/// outcome is known (signers as the bundle claims them).
pub(crate) fn audit_event<R: Read>(
    reader: &BundleReader<R>,
    action: AuditAction,
    operator: &str,
) -> AuditEvent {
    let manifest = reader.manifest();
    AuditEvent {
        action,
        operator: operator.to_string(),
        bundle_id: Some(manifest.bundle_id.clone()),
        manifest_digest: Some(reader.manifest_digest().to_string()),
        channel: Some(manifest.channel.clone()),
        sequence: Some(manifest.sequence),
        signers: reader
            .signatures()
            .signatures
            .iter()
            .map(|s| Signer {
                key_id: s.key_id.clone(),
                role: s.role.clone(),
                signer: s.signer.clone(),
            })
            .collect(),
        ..AuditEvent::default()
    }
}

/// Checks signatures and thresholds against the site's policy (`age`: the
/// bundle's age against the site's reference time, for role expiry), and
/// keeps in the audit line only the signers that counted.
pub(crate) fn require_trust<R: Read>(
    chain: &Chain,
    reader: &BundleReader<R>,
    event: &mut AuditEvent,
    age: Option<i64>,
) -> Result<(), ImportError> {
    let trust = chain.require_at(reader.manifest_bytes(), reader.signatures(), age)?;
    event.signers.retain(|s| {
        trust.signatures.iter().any(|c| {
            c.key_id == s.key_id
                && c.role == s.role
                && matches!(c.status, SignatureStatus::Valid { .. })
        })
    });
    Ok(())
}

/// The clusters of this site the bundle has releases for.
pub(crate) fn site_clusters(manifest: &BundleManifest, site: &Site) -> Vec<String> {
    manifest
        .releases
        .iter()
        .filter(|r| r.site == site.name && site.clusters.contains(&r.cluster))
        .map(|r| r.cluster.clone())
        .collect()
}

/// Whether a bundle may be imported here, checked before its entries are
/// read (bundle spec §11).
pub(crate) enum Admission<'a> {
    /// It is the channel's current release (these are its releases for
    /// this site's clusters): nothing to do.
    Current(Vec<&'a Release>),
    /// It may be imported: its releases for this site's clusters.
    New(Vec<&'a Release>),
}

/// Checks that the bundle targets this site and some of its clusters, and
/// is newer than what its channel has (rollback and replay protection).
pub(crate) fn admit<'a>(
    manifest: &'a BundleManifest,
    digest: &Digest,
    site: &Site,
    current: &SiteStateFile,
) -> Result<Admission<'a>, ImportError> {
    if !manifest.targets.sites.contains(&site.name) {
        return Err(ImportError::Refused(format!(
            "bundle is for site(s) {}, this is {}",
            manifest.targets.sites.join(", "),
            site.name
        )));
    }
    let releases: Vec<&Release> = manifest
        .releases
        .iter()
        .filter(|r| r.site == site.name && site.clusters.contains(&r.cluster))
        .collect();
    if let Some(last) = current.channels.get(&manifest.channel) {
        if last.manifest_digest == digest.to_string() {
            return Ok(Admission::Current(releases));
        }
        if manifest.sequence <= last.sequence {
            return Err(ImportError::Refused(format!(
                "sequence {} on channel {} is not newer than {} (imported {}): an old or replayed bundle",
                manifest.sequence, manifest.channel, last.sequence, last.imported_at
            )));
        }
    }
    if releases.is_empty() {
        return Err(ImportError::Refused(format!(
            "bundle has no release for this site's clusters ({})",
            site.clusters.join(", ")
        )));
    }
    Ok(Admission::New(releases))
}
