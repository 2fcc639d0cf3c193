//! `tender import`: verify, stage, load, record — in that order, and
//! nothing becomes visible before the last step.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::time::Instant;
use tender_format::Verdict;

use serde::Serialize;
use tender_format::manifest::Release;
use tender_format::{BundleReader, Digest};
use tender_oci::{ClientOptions, LayoutStore, RegistryClient, RegistrySettings};
use tender_trust::TrustPolicy;
use tender_trust::keys::now_rfc3339;
use tender_trust::policy::SignatureStatus;
use tender_trust::update::Chain;

use crate::audit::{AuditAction, AuditEvent, AuditLog, Signer};
use crate::error::ImportError;
use crate::load::{LoadReport, load_embedded, load_registry};
use crate::publish::{Published, publish};
use crate::site::{ImageTarget, Site};
use crate::stage::stage;
use crate::state::{ChannelState, ReleaseRecord, SiteState};

/// A registry client for the site registry, when images go to one.
pub(crate) fn registry_client(
    site: &Site,
    options: &ImportOptions,
) -> Result<Option<RegistryClient>, ImportError> {
    let ImageTarget::Registry(target) = &site.target else {
        return Ok(None);
    };
    let mut client = options.client.clone();
    client.registries.insert(
        target.url.clone(),
        RegistrySettings {
            plain_http: target.plain_http,
            insecure_skip_tls_verify: target.insecure_skip_tls_verify,
        },
    );
    Ok(Some(RegistryClient::new(client)?))
}

pub(crate) use crate::failpoint::failpoint;

/// What became of an import that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ImportOutcome {
    /// The release is now current at the site.
    #[serde(rename = "imported")]
    Imported,
    /// The site already runs this bundle; nothing changed.
    #[serde(rename = "already imported")]
    AlreadyImported,
}

/// As the report and the audit line spell it.
impl std::fmt::Display for ImportOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            ImportOutcome::Imported => "imported",
            ImportOutcome::AlreadyImported => "already imported",
        })
    }
}

/// What `tender import` reports.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    pub site: String,
    pub outcome: ImportOutcome,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub clusters: Vec<String>,
    pub images: Vec<(String, String)>,
    pub blobs_new: usize,
    pub blobs_present: usize,
    /// Whether every entry of the bundle was verified by this run (or, on
    /// a resumed import, its staged copy re-hashed). False when it was
    /// already imported: only its manifest and signatures were checked.
    pub contents_verified: bool,
    pub bytes_read: u64,
    pub seconds: f64,
    pub audit_hash: String,
    pub published: Vec<Published>,
    /// The signed receipt for the hub, when the site has a key.
    pub receipt: Option<std::path::PathBuf>,
    /// Problems after the commit that did not undo the import.
    pub warnings: Vec<String>,
    /// The policy updates the bundle carried that this import applied
    /// (their versions, in order; each has its own audit line).
    pub policy_updates: Vec<u64>,
}

pub struct ImportOptions {
    pub site: Site,
    pub operator: String,
    /// Registry client settings (credentials, retries, observer); the
    /// site file's registry flags are applied on top.
    pub client: ClientOptions,
    /// Memory one patched blob may take to rebuild (delta bundles).
    pub delta_limits: tender_delta::ApplyLimits,
}

/// The site's trust policy (the accepted update or the site file's), its
/// locked state and its audit log, once the audit chain is known intact
/// (an action that could not be audited must not happen at all) and any
/// action a killed run left pending is audited.
pub(crate) fn open_site(site: &Site) -> Result<(TrustPolicy, SiteState, AuditLog), ImportError> {
    // Read once before locking, so a broken policy file is reported
    // before anything else, as it always was.
    TrustPolicy::load(&site.trust_policy)?;
    let state = SiteState::open(&site.state_dir)?;
    let audit = AuditLog::new(state.dir());
    if let Some(reason) = audit.verify()?.reason {
        return Err(ImportError::Audit(format!(
            "refusing to import onto a broken audit chain ({}: {reason})",
            audit.path().display()
        )));
    }
    let current = state.read()?;
    crate::audit::settle(&audit, &current)?;
    let policy = crate::lifecycle::effective_policy(site, &current)?;
    Ok((policy, state, audit))
}

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

/// Imports one bundle. Every outcome, refusals included, is audited.
pub fn import<R: Read>(
    reader: BundleReader<R>,
    options: &ImportOptions,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let site = &options.site;
    site.check_site_key()?;
    let (policy, state, audit) = open_site(site)?;
    let mut event = audit_event(&reader, AuditAction::Import, &options.operator);
    let digest = reader.manifest_digest();
    let result = run(
        reader, options, &policy, &state, &audit, &mut event, progress,
    );
    event.result = crate::audit::result_line(&result, |r| r.outcome.to_string());
    let appended = audit.append(event);
    match (result, appended) {
        (Ok(mut r), Ok(appended)) => {
            // The import is committed and audited: a receipt that cannot be
            // written (say, an unreadable site key) is a warning, and
            // the next import or rollback writes a receipt with the full state.
            if r.outcome == ImportOutcome::Imported {
                match crate::receipts::write(
                    site,
                    tender_receipt::Action::Import,
                    &r.bundle_id,
                    &digest,
                    &r.channel,
                    r.sequence,
                    &appended,
                ) {
                    Ok(path) => r.receipt = path,
                    Err(e) => r.warnings.push(format!(
                        "no receipt written: {}",
                        tender_format::error::chain_message(&e)
                    )),
                }
            }
            r.audit_hash = appended.hash;
            if let Err(e) = crate::metrics::write(site) {
                r.warnings.push(format!(
                    "metrics file not written: {}",
                    tender_format::error::chain_message(&e)
                ));
            }
            Ok(r)
        }
        // The import's own failure says more than the failure to record
        // it (a full disk causes both). The metrics still tell monitoring
        // that an import failed, if they can be written.
        (Err(e), _) | (Ok(_), Err(e)) => {
            let _ = crate::metrics::write(site);
            Err(e)
        }
    }
}

fn run<R: Read>(
    reader: BundleReader<R>,
    options: &ImportOptions,
    policy: &TrustPolicy,
    state: &SiteState,
    audit: &AuditLog,
    event: &mut AuditEvent,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, ImportError> {
    let started = Instant::now();
    let site = &options.site;
    let manifest = reader.manifest().clone();
    let digest = reader.manifest_digest();

    // 0. The policy updates the stick carries, in order, before the
    // bundle's own signatures are judged (bundle-spec §7.3).
    let mut current = state.read()?;
    let chain = crate::lifecycle::offer(
        state,
        audit,
        &mut current,
        policy,
        &manifest.policy_updates,
        &crate::lifecycle::Carrier {
            operator: &options.operator,
            bundle: Some((&manifest.bundle_id, digest)),
        },
    )?;
    let policy = &chain.policy;
    let applied: Vec<u64> = chain
        .applied
        .iter()
        .map(|(u, _)| u.policy_version())
        .collect();

    // 1. Signatures and thresholds, before anything else.
    let age = crate::lifecycle::bundle_age(site, &current, &manifest);
    require_trust(&chain, &reader, event, age)?;

    // 2. For this site, and for some of its clusters; 3. newer than what
    // the channel has, and fresh (§11.7).
    // The audit line names this site's clusters, refused or not.
    event.clusters = site_clusters(&manifest, site);
    let releases = match admit(&manifest, &digest, site, &current)? {
        Admission::Current(releases) => {
            let mut r = report_for(
                site,
                &manifest,
                &digest,
                &releases,
                ImportOutcome::AlreadyImported,
                LoadReport::default(),
                0,
                started,
            );
            r.policy_updates = applied;
            return Ok(r);
        }
        Admission::New(releases) => releases,
    };
    crate::lifecycle::check_fresh(site, policy, &current, &manifest)?;
    let report = |outcome: ImportOutcome, load: LoadReport, bytes_read: u64| {
        report_for(
            site, &manifest, &digest, &releases, outcome, load, bytes_read, started,
        )
    };

    // A delta needs its base here, intact, before anything is written.
    let client = registry_client(site, options)?;
    let base_blobs = match &manifest.base {
        Some(base) => Some(crate::delta::check_base(
            &manifest,
            base,
            site,
            state,
            &current,
            client.as_ref(),
        )?),
        None => None,
    };

    // 4. Copy off the stick, verifying every byte.
    let staging_dir = state.staging_dir(&digest);
    let summary = match stage(reader, &staging_dir, progress) {
        Ok(summary) => summary,
        Err(e) => {
            // A bad bundle leaves nothing behind; a machine problem (disk
            // full, stick pulled) keeps what was verified, for the rerun.
            if e.is_rejection() {
                let _ = fs::remove_dir_all(&staging_dir);
            }
            return Err(e);
        }
    };
    if let (Some(base), Some(blobs)) = (&manifest.base, &base_blobs) {
        crate::delta::materialize(base, blobs, &staging_dir, options.delta_limits)?;
    }
    let staging = LayoutStore::open(&staging_dir)?;
    failpoint("staged");
    // Verified: from here on the site changes, so the action is noted
    // first (see crate::audit).
    audit.begin(event)?;

    // 5. This site's manifest sets into the state, images into the site
    // (a registry site keeps any other blob in the state: load_registry).
    let mut manifest_sets = BTreeMap::new();
    for set in releases.iter().map(|r| r.manifests) {
        let new = crate::inventory::keep_staged(&staging, &set, &state.manifests_path(&set))?;
        manifest_sets.insert(set, new);
    }
    // Every blob of the release: carried, rebuilt from patches, or (for a
    // delta) referenced from the base.
    let blobs: Vec<Digest> = manifest.release_blobs().collect();
    let load = match (&site.target, &client) {
        (ImageTarget::Registry(target), Some(client)) => load_registry(
            &staging,
            target,
            client,
            &blobs,
            &manifest_sets,
            state.dir(),
        )?,
        _ => load_embedded(&staging, &blobs, &site.store_dir())?,
    };
    crate::inventory::add(state.dir(), &blobs)?;
    event.images = load.images.iter().map(|(_, to)| to.clone()).collect();
    failpoint("loaded");

    // 6. Publish to each cluster, record the history, then the one atomic
    // commit.
    let now = now_rfc3339();
    let locations: BTreeMap<String, String> = load.images.iter().cloned().collect();
    let mut publications = Vec::new();
    for r in &releases {
        let record = ReleaseRecord {
            cluster: r.cluster.clone(),
            channel: manifest.channel.clone(),
            sequence: manifest.sequence,
            bundle_id: manifest.bundle_id.clone(),
            manifest_digest: digest.to_string(),
            manifests: r.manifests,
            images: r.images.clone(),
            locations: r
                .images
                .iter()
                .filter_map(|i| {
                    let canonical = tender_oci::Reference::parse(&i.reference).ok()?.to_string();
                    Some((i.reference.clone(), locations.get(&canonical)?.clone()))
                })
                .collect(),
            imported_at: now.clone(),
            created: Some(manifest.created.clone()),
            delivered: None,
            published: Vec::new(),
        };
        let mut record = record;
        let previous = current.current.get(&r.cluster);
        let published = publish(
            site,
            state,
            &record,
            previous,
            &event.signers,
            &manifest.created,
            client.as_ref(),
        )?;
        record.delivered = published.delivered;
        record.published = published.published.clone();
        publications.push(published);
        state.record_release(&record)?;
        current.current.insert(r.cluster.clone(), record);
    }
    current.channels.insert(
        manifest.channel.clone(),
        ChannelState {
            sequence: manifest.sequence,
            bundle_id: manifest.bundle_id.clone(),
            manifest_digest: digest.to_string(),
            imported_at: now,
            // A reset's floor outlives the next import: the bundle that
            // locked the channel stays refused (bundle-spec §7.3).
            reset: current
                .channels
                .get(&manifest.channel)
                .and_then(|c| c.reset.clone()),
        },
    );
    let references: Vec<String> = releases
        .iter()
        .flat_map(|r| r.images.iter().map(|i| i.reference.clone()))
        .collect();
    crate::publish::write_mirror_configs(site, state, &references)?;
    current.trust.raise(&manifest.created);
    failpoint("recorded");
    state.commit(&current)?;
    failpoint("committed");
    let _ = fs::remove_dir_all(&staging_dir);
    let bytes_read = summary.map_or(0, |s| s.stream_bytes);
    let mut done = report(ImportOutcome::Imported, load, bytes_read);
    done.published = publications;
    done.policy_updates = applied;
    Ok(done)
}

/// The clusters of this site the bundle has releases for.
pub(crate) fn site_clusters(manifest: &tender_format::BundleManifest, site: &Site) -> Vec<String> {
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
    manifest: &'a tender_format::BundleManifest,
    digest: &Digest,
    site: &Site,
    current: &crate::state::SiteStateFile,
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

#[allow(clippy::too_many_arguments)]
fn report_for(
    site: &Site,
    manifest: &tender_format::BundleManifest,
    digest: &Digest,
    releases: &[&Release],
    outcome: ImportOutcome,
    load: LoadReport,
    bytes_read: u64,
    started: Instant,
) -> ImportReport {
    ImportReport {
        site: site.name.clone(),
        outcome,
        bundle_id: manifest.bundle_id.clone(),
        manifest_digest: digest.to_string(),
        channel: manifest.channel.clone(),
        sequence: manifest.sequence,
        clusters: releases.iter().map(|r| r.cluster.clone()).collect(),
        images: load.images,
        blobs_new: load.blobs_new,
        blobs_present: load.blobs_present,
        contents_verified: outcome == ImportOutcome::Imported,
        bytes_read,
        seconds: started.elapsed().as_secs_f64(),
        audit_hash: String::new(),
        published: Vec::new(),
        receipt: None,
        warnings: Vec::new(),
        policy_updates: Vec::new(),
    }
}
