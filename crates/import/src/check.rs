//! `tender import --check`: everything an import would check, every byte
//! of the bundle included, and nothing changed at the site.
//!
//! A plain re-import of the current bundle is a fast no-op that reads only
//! the manifest and signatures; a field engineer who wants to know whether
//! the stick is still sound (before carrying it to the next site) asks for
//! this instead. Like every import attempt it gets one audit line (action
//! `check`), refusals included: a damaged or tampered stick presented at
//! a site is worth a record. It writes nothing else: no staging, no store
//! or registry, no `site.json`, no receipt.

use std::io::Read;
use std::time::Instant;

use serde::Serialize;
use tender_format::BundleReader;
use tender_format::reader::discard;

use crate::admission::{Admission, admit, audit_event, require_trust, site_clusters};
use crate::error::ImportError;
use crate::import::ImportOptions;
use crate::lifecycle::open_site;

/// What `tender import --check` reports.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub site: String,
    /// `already imported` (the channel's current release) or `would import`.
    pub status: &'static str,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub clusters: Vec<String>,
    /// Entries read and verified against the signed manifest.
    pub entries: usize,
    pub payload_bytes: u64,
    pub stream_bytes: u64,
    pub seconds: f64,
    pub audit_hash: String,
}

/// Checks one bundle as an import would, reading and verifying every
/// entry, and changes nothing at the site but its audit trail.
pub fn check<R: Read>(
    reader: BundleReader<R>,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<CheckReport, ImportError> {
    let (policy, state, audit) = open_site(&options.site)?;
    let mut event = audit_event(&reader, crate::audit::AuditAction::Check, &options.operator);
    let started = Instant::now();
    let site = &options.site;
    let manifest = reader.manifest().clone();
    let digest = reader.manifest_digest();
    let result: Result<CheckReport, ImportError> = (|| {
        // The carried policy updates, judged, and their resets and
        // high-water mark applied to a copy of the state: nothing stored.
        let mut current = state.read()?;
        let chain = policy.apply_chain(&manifest.policy_updates, &state.dir().join("site.json"))?;
        let policy = &chain.policy;
        let now = tender_trust::keys::now_rfc3339();
        for (update, _) in &chain.applied {
            crate::lifecycle::record(&mut current, update, &now);
        }
        let age = crate::lifecycle::bundle_age(site, &current, &manifest);
        require_trust(&chain, &reader, &mut event, age)?;
        event.clusters = site_clusters(&manifest, site);
        let (status, releases) = match admit(&manifest, &digest, site, &current)? {
            Admission::Current(releases) => ("already imported", releases),
            Admission::New(releases) => {
                crate::lifecycle::check_fresh(site, policy, &current, &manifest)?;
                // A delta must find its base here, as the import would.
                if let Some(base) = &manifest.base {
                    let client = site.registry_client(&options.client)?;
                    crate::delta::check_base(
                        &manifest,
                        base,
                        site,
                        &state,
                        &current,
                        client.as_ref(),
                    )?;
                }
                ("would import", releases)
            }
        };
        let clusters: Vec<String> = releases.iter().map(|r| r.cluster.clone()).collect();
        let summary = reader.read_entries(&discard, progress)?;
        Ok(CheckReport {
            site: site.name.clone(),
            status,
            bundle_id: manifest.bundle_id.clone(),
            manifest_digest: digest.to_string(),
            channel: manifest.channel.clone(),
            sequence: manifest.sequence,
            clusters,
            entries: summary.entries,
            payload_bytes: summary.payload_bytes,
            stream_bytes: summary.stream_bytes,
            seconds: started.elapsed().as_secs_f64(),
            audit_hash: String::new(),
        })
    })();
    event.result = crate::audit::result_line(&result, |r| format!("checked: {}", r.status));
    let appended = audit.append(event);
    match (result, appended) {
        (Ok(mut r), Ok(appended)) => {
            r.audit_hash = appended.hash;
            Ok(r)
        }
        (Err(e), _) | (Ok(_), Err(e)) => Err(e),
    }
}
