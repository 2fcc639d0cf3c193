//! `tender import`: verify, stage, load, record — in that order, and
//! nothing becomes visible before the last step.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;
use tender_format::Verdict;
use tender_format::manifest::Release;
use tender_format::reader::ReadSummary;
use tender_format::{BundleManifest, BundleReader, Digest};
use tender_oci::{ClientOptions, LayoutStore, RegistryClient};
use tender_trust::TrustPolicy;
use tender_trust::keys::now_rfc3339;
use tender_trust::update::Chain;

use crate::admission::{Admission, admit, audit_event, require_trust, site_clusters};
use crate::audit::{AuditAction, AuditEvent, AuditLog, Signer};
use crate::error::ImportError;
use crate::failpoint::failpoint;
use crate::lifecycle::open_site;
use crate::load::{LoadReport, load_embedded, load_registry};
use crate::publish::{Published, publish};
use crate::site::{ImageTarget, Site};
use crate::stage::stage;
use crate::state::{ChannelState, ReleaseRecord, SiteState, SiteStateFile};

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

/// Steps 0 to 6 of one import, in the order bundle-spec §11 checks them;
/// [`import`] audits whatever this returns.
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
    let (chain, applied) = offer_carried_updates(
        options,
        policy,
        state,
        audit,
        &mut current,
        &manifest,
        &digest,
    )?;
    let policy = &chain.policy;

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

    let client = site.registry_client(&options.client)?;
    let importing = Importing {
        site,
        state,
        manifest: &manifest,
        digest: &digest,
        client: client.as_ref(),
    };

    // 4. Copy off the stick, verifying every byte.
    let (staging_dir, summary) =
        importing.stage(reader, &current, options.delta_limits, progress)?;
    let staging = LayoutStore::open(&staging_dir)?;
    failpoint("staged");
    // Verified: from here on the site changes, so the action is noted
    // first (see crate::audit).
    audit.begin(event)?;

    // 5. This site's manifest sets into the state, images into the site.
    let load = importing.load(&staging, &releases)?;
    event.images = load.images.iter().map(|(_, to)| to.clone()).collect();
    failpoint("loaded");

    // 6. Publish to each cluster, record the history, then the one atomic
    // commit.
    let publications =
        importing.publish_and_commit(&mut current, &releases, &load, &event.signers)?;
    let _ = fs::remove_dir_all(&staging_dir);
    let bytes_read = summary.map_or(0, |s| s.stream_bytes);
    let mut done = report_for(
        site,
        &manifest,
        &digest,
        &releases,
        ImportOutcome::Imported,
        load,
        bytes_read,
        started,
    );
    done.published = publications;
    done.policy_updates = applied;
    Ok(done)
}

/// Step 0: the policy updates the bundle carries, offered to the site in
/// order (each applied one audited and recorded in `current`); returns
/// the chain of policies the bundle is judged by and the versions applied.
fn offer_carried_updates(
    options: &ImportOptions,
    policy: &TrustPolicy,
    state: &SiteState,
    audit: &AuditLog,
    current: &mut SiteStateFile,
    manifest: &BundleManifest,
    digest: &Digest,
) -> Result<(Chain, Vec<u64>), ImportError> {
    let chain = crate::lifecycle::offer(
        state,
        audit,
        current,
        policy,
        &manifest.policy_updates,
        &crate::lifecycle::Carrier {
            operator: &options.operator,
            bundle: Some((&manifest.bundle_id, *digest)),
        },
    )?;
    let applied = chain
        .applied
        .iter()
        .map(|(u, _)| u.policy_version())
        .collect();
    Ok((chain, applied))
}

/// An admitted bundle on its way into the site: what the phases from
/// staging to the commit share.
struct Importing<'a> {
    site: &'a Site,
    state: &'a SiteState,
    manifest: &'a BundleManifest,
    digest: &'a Digest,
    /// The site registry's client, when images go to one.
    client: Option<&'a RegistryClient>,
}

impl Importing<'_> {
    /// Step 4: the bundle copied off the stick into its staging directory,
    /// every byte verified, and a delta's patched and referenced blobs
    /// rebuilt there from its base, which is checked first: intact and
    /// here, before anything is written. Returns the staging directory
    /// and what was read (none when a complete staging was reused).
    fn stage<R: Read>(
        &self,
        reader: BundleReader<R>,
        current: &SiteStateFile,
        delta_limits: tender_delta::ApplyLimits,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(PathBuf, Option<ReadSummary>), ImportError> {
        let base_blobs = match &self.manifest.base {
            Some(base) => Some(crate::delta::check_base(
                self.manifest,
                base,
                self.site,
                self.state,
                current,
                self.client,
            )?),
            None => None,
        };
        let staging_dir = self.state.staging_dir(self.digest);
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
        if let (Some(base), Some(blobs)) = (&self.manifest.base, &base_blobs) {
            crate::delta::materialize(base, blobs, &staging_dir, delta_limits)?;
        }
        Ok((staging_dir, summary))
    }

    /// Step 5: this site's manifest sets kept in the state and every blob
    /// of the release (carried, rebuilt from patches, or for a delta
    /// referenced from the base) loaded into the site's store or registry
    /// (a registry site keeps any other blob in the state: `load_registry`),
    /// then added to the site's inventory.
    fn load(
        &self,
        staging: &LayoutStore,
        releases: &[&Release],
    ) -> Result<LoadReport, ImportError> {
        let mut manifest_sets = BTreeMap::new();
        for set in releases.iter().map(|r| r.manifests) {
            let new =
                crate::inventory::keep_staged(staging, &set, &self.state.manifests_path(&set))?;
            manifest_sets.insert(set, new);
        }
        let blobs: Vec<Digest> = self.manifest.release_blobs().collect();
        let load = match (&self.site.target, self.client) {
            (ImageTarget::Registry(target), Some(client)) => load_registry(
                staging,
                target,
                client,
                &blobs,
                &manifest_sets,
                self.state.dir(),
            )?,
            _ => load_embedded(staging, &blobs, &self.site.store_dir())?,
        };
        crate::inventory::add(self.state.dir(), &blobs)?;
        Ok(load)
    }

    /// Step 6: every cluster's release published and recorded, the
    /// channel's new release, the mirror configs, the high-water mark,
    /// then the one atomic commit of `site.json`. Returns what publishing
    /// did, per cluster.
    fn publish_and_commit(
        &self,
        current: &mut SiteStateFile,
        releases: &[&Release],
        load: &LoadReport,
        signers: &[Signer],
    ) -> Result<Vec<Published>, ImportError> {
        let now = now_rfc3339();
        let publications = self.publish(current, releases, load, signers, &now)?;
        self.record_channel(current, now);
        let references: Vec<String> = releases
            .iter()
            .flat_map(|r| r.images.iter().map(|i| i.reference.clone()))
            .collect();
        crate::publish::write_mirror_configs(self.site, self.state, &references)?;
        current.trust.raise(&self.manifest.created);
        failpoint("recorded");
        self.state.commit(current)?;
        failpoint("committed");
        Ok(publications)
    }

    /// Step 6, per cluster: the release published to the cluster (against
    /// the one it replaces) and recorded in the history and in `current`.
    fn publish(
        &self,
        current: &mut SiteStateFile,
        releases: &[&Release],
        load: &LoadReport,
        signers: &[Signer],
        now: &str,
    ) -> Result<Vec<Published>, ImportError> {
        let locations: BTreeMap<String, String> = load.images.iter().cloned().collect();
        let mut publications = Vec::new();
        for r in releases {
            let mut record = self.release_record(r, &locations, now);
            let previous = current.current.get(&r.cluster);
            let published = publish(
                self.site,
                self.state,
                &record,
                previous,
                signers,
                &self.manifest.created,
                self.client,
            )?;
            record.delivered = published.delivered;
            record.published = published.published.clone();
            publications.push(published);
            self.state.record_release(&record)?;
            current.current.insert(r.cluster.clone(), record);
        }
        Ok(publications)
    }

    /// One cluster's release as the site records it, before publishing:
    /// each image pinned where loading put it (`locations`, by canonical
    /// source reference).
    fn release_record(
        &self,
        release: &Release,
        locations: &BTreeMap<String, String>,
        now: &str,
    ) -> ReleaseRecord {
        ReleaseRecord {
            cluster: release.cluster.clone(),
            channel: self.manifest.channel.clone(),
            sequence: self.manifest.sequence,
            bundle_id: self.manifest.bundle_id.clone(),
            manifest_digest: self.digest.to_string(),
            manifests: release.manifests,
            images: release.images.clone(),
            locations: release
                .images
                .iter()
                .filter_map(|i| {
                    let canonical = tender_oci::Reference::parse(&i.reference).ok()?.to_string();
                    Some((i.reference.clone(), locations.get(&canonical)?.clone()))
                })
                .collect(),
            imported_at: now.to_string(),
            created: Some(self.manifest.created.clone()),
            delivered: None,
            published: Vec::new(),
        }
    }

    /// Step 6, the channel: this bundle becomes its current release.
    fn record_channel(&self, current: &mut SiteStateFile, now: String) {
        let channel = &self.manifest.channel;
        // A reset's floor outlives the next import: the bundle that
        // locked the channel stays refused (bundle-spec §7.3).
        let reset = current.channels.get(channel).and_then(|c| c.reset.clone());
        current.channels.insert(
            channel.clone(),
            ChannelState {
                sequence: self.manifest.sequence,
                bundle_id: self.manifest.bundle_id.clone(),
                manifest_digest: self.digest.to_string(),
                imported_at: now,
                reset,
            },
        );
    }
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
