//! `tender export`: plan, fetch every image and its signatures into a
//! staging OCI layout, add each cluster's manifest set, seal, sign, and
//! record the sequence in the hub state.
//!
//! Writing overlaps the pull: once every manifest is in, the other blobs
//! download in the order the bundle lists them and the bundle is written
//! as they land (sources.rs, seal.rs), so an export takes about as long
//! as its downloads.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tender_format::FromIo;

use serde::Serialize;
use tender_format::error::chain_message;
use tender_format::manifest::{ImageRef, Release, Targets};
use tender_format::{BundleKind, Carried, Digest, atomic};
use tender_oci::{
    ClientOptions, Descriptor, LayoutStore, Observer, Platform, Reference, RegistryClient,
    RegistrySettings,
};
use tender_trust::PrivateKey;

use crate::bases;
use crate::delta::{self, Base, BlobChoice};
use crate::error::ExportError;
use crate::hub::{ExportRecord, Hub, HubStore};
use crate::seal::{BundleOutput, SealOptions, SealedBundle, seal_arriving, seal_delta};
use crate::site_paths::{self, PlannedImage};
use crate::sources::{Downloads, ImageSources, Mirror};
use crate::waves::{self, GateCheck, GateOutcome};
use tender_render::fleet::Fleet;
use tender_render::plan::{Plan, Warning, plan};
use tender_render::render::Tools;

/// Progress and log hooks for the CLI; the library never prints.
pub trait ExportObserver: Observer {
    /// A new phase starts; `total` bytes if known (0 otherwise).
    fn phase(&self, name: &str, total: u64) {
        let _ = (name, total);
    }
    /// Bytes done in the current phase.
    fn advance(&self, done: u64) {
        let _ = done;
    }
    /// A line for the log (stderr).
    fn log(&self, line: &str) {
        let _ = line;
    }
    /// Something the user must see even without progress output: a render
    /// warning (`Plan::warnings`).
    fn warn(&self, line: &str) {
        let _ = line;
    }
}

/// Everything `tender export` is told.
pub struct ExportOptions {
    pub fleet: PathBuf,
    /// Only these clusters (all if empty).
    pub clusters: Vec<String>,
    pub channel: Option<String>,
    pub sequence: Option<u64>,
    pub output: BundleOutput,
    pub key: Option<PathBuf>,
    pub creator: String,
    pub state_dir: PathBuf,
    pub tools: Tools,
    pub platforms: Option<Vec<Platform>>,
    /// Registry settings from flags; the fleet's `registries` add to them.
    pub client: ClientOptions,
    pub plain_http: bool,
    pub insecure_skip_tls_verify: bool,
    /// `--base` values: write delta bundles against these (bases.rs).
    pub bases: Vec<String>,
    /// How delta patches are made.
    pub patch: tender_delta::PatchOptions,
    /// Policy updates every bundle of this export carries (bundle-spec §7.3).
    pub policy_updates: Vec<tender_format::policy_update::PolicyUpdate>,
    /// `--override-gate REASON`: export past wave gates that do not hold,
    /// recorded in the manifest and the hub's log (waves.rs).
    pub override_gate: Option<String>,
}

/// One bundle an export wrote (a delta export writes one per base).
#[derive(Debug, Clone, Serialize)]
pub struct WrittenBundle {
    pub path: PathBuf,
    pub volumes: Option<usize>,
    pub kind: BundleKind,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub sites: Vec<String>,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<DeltaStats>,
}

/// What a delta bundle carries instead of whole blobs.
#[derive(Debug, Clone, Serialize)]
pub struct DeltaStats {
    pub base_bundle_id: String,
    pub base_manifest_digest: Digest,
    pub referenced: usize,
    pub patched: usize,
    pub whole: usize,
    /// Bytes of the release's blobs against bytes the delta ships for them.
    pub release_bytes: u64,
    pub bytes_saved: u64,
    pub blobs: Vec<BlobChoice>,
}

/// What an export did.
#[derive(Debug, Clone, Serialize)]
pub struct ExportSummary {
    pub bundle: PathBuf,
    pub volumes: Option<usize>,
    pub bundle_id: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub clusters: usize,
    pub manifest_sets: usize,
    pub objects: usize,
    pub images: usize,
    pub signatures: usize,
    pub blobs: usize,
    pub bytes: u64,
    pub fetched_bytes: u64,
    /// Every bundle written; the fields above describe the first.
    pub bundles: Vec<WrittenBundle>,
    /// What rendering warned about (also given to `ExportObserver::warn`).
    pub warnings: Vec<Warning>,
    /// The wave gates this export was checked against, and the override
    /// that let it past any that did not hold.
    pub gates: GateOutcome,
}

/// An image pinned to its digest, as a dry run or an export found it.
#[derive(Debug, Clone, Serialize)]
pub struct PinnedImage {
    pub reference: String,
    pub canonical: String,
    pub digest: Digest,
    pub media_type: String,
}

/// Loads the fleet and builds the client settings from flags and spec.
pub fn prepare(options: &ExportOptions) -> Result<(Fleet, ClientOptions), ExportError> {
    let fleet = Fleet::load(&options.fleet)?;
    let mut client = options.client.clone();
    client.default_settings = RegistrySettings {
        plain_http: options.plain_http,
        insecure_skip_tls_verify: options.insecure_skip_tls_verify,
    };
    for (host, r) in &fleet.spec.registries {
        client.registries.insert(
            host.clone(),
            RegistrySettings {
                plain_http: r.plain_http || options.plain_http,
                insecure_skip_tls_verify: r.insecure_skip_tls_verify
                    || options.insecure_skip_tls_verify,
            },
        );
    }
    Ok((fleet, client))
}

fn mirrors(fleet: &Fleet) -> BTreeMap<String, Mirror> {
    fleet
        .spec
        .mirrors
        .iter()
        .map(|(host, target)| (host.clone(), Mirror::parse(target, &fleet.base_dir)))
        .collect()
}

fn parse_reference(image: &str, plan: &Plan) -> Result<Reference, ExportError> {
    Reference::parse(image).map_err(|e| image_error(image, plan, chain_message(&e)))
}

/// Every image's result, or one error naming every image that failed and
/// why: the engineer fixes them all before the next try, not one per try.
fn every_image<T>(
    results: impl IntoIterator<Item = Result<T, ExportError>>,
) -> Result<Vec<T>, ExportError> {
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for result in results {
        match result {
            Ok(value) => done.push(value),
            Err(e) => failed.push(e),
        }
    }
    match failed.len() {
        0 => Ok(done),
        1 => Err(failed.remove(0)),
        _ => Err(ExportError::Images(failed)),
    }
}

/// An error while fetching `image`, naming what uses it.
fn image_error(image: &str, plan: &Plan, reason: impl ToString) -> ExportError {
    ExportError::Image {
        image: image.to_string(),
        used_by: used_by(image, plan),
        reason: reason.to_string(),
    }
}

/// Which clusters and objects name an image, for error messages.
fn used_by(image: &str, plan: &Plan) -> String {
    let mut users: BTreeSet<String> = BTreeSet::new();
    for c in &plan.clusters {
        for u in c.image_uses.iter().filter(|u| u.image == image) {
            users.insert(format!("{} {}", c.cluster, u.object));
        }
        if c.images.iter().any(|i| i == image) && !c.image_uses.iter().any(|u| u.image == image) {
            users.insert(format!("{} (extra image)", c.cluster));
        }
    }
    users.into_iter().collect::<Vec<_>>().join(", ")
}

/// The plan's images, parsed, each with what uses it (for the site path
/// checks and their messages).
fn parsed_images(plan: &Plan) -> Result<Vec<(String, Reference, String)>, ExportError> {
    plan.images()
        .into_iter()
        .map(|image| {
            let reference = parse_reference(&image, plan)?;
            let users = used_by(&image, plan);
            Ok((image, reference, users))
        })
        .collect()
}

fn planned_images(parsed: &[(String, Reference, String)]) -> Vec<PlannedImage<'_>> {
    parsed
        .iter()
        .map(|(image, reference, used_by)| PlannedImage {
            image,
            reference,
            used_by: used_by.clone(),
        })
        .collect()
}

/// Renders and resolves every image to its digest, pulling nothing else.
pub fn dry_run(
    options: &ExportOptions,
    observer: Arc<dyn ExportObserver>,
) -> Result<(Plan, Vec<PinnedImage>), ExportError> {
    let (fleet, mut client_options) = prepare(options)?;
    observer.phase("render", 0);
    let plan = plan(&fleet, &options.clusters, &options.tools)?;
    warn_all(&plan, observer.as_ref());
    let parsed = parsed_images(&plan)?;
    let planned = planned_images(&parsed);
    site_paths::check_repositories(&planned)?;
    client_options.observer = observer.clone();
    let client = RegistryClient::new(client_options)?;
    let sources = ImageSources::new(&client, mirrors(&fleet), options.platforms.clone());
    let pinned = every_image(plan.images().into_iter().map(|image| {
        let reference = parse_reference(&image, &plan)?;
        let d = sources
            .resolve(&reference)
            .map_err(|e| image_error(&image, &plan, chain_message(&e)))?;
        Ok(PinnedImage {
            reference: image,
            canonical: reference.to_string(),
            digest: d.digest,
            media_type: d.media_type,
        })
    }))?;
    let digests = pinned
        .iter()
        .map(|p| (p.reference.clone(), p.digest))
        .collect();
    site_paths::check_tags(&planned, &digests)?;
    Ok((plan, pinned))
}

/// The whole export: render and check, stage every image's manifests,
/// then write each bundle job while the other blobs download.
pub fn export(
    options: &ExportOptions,
    observer: Arc<dyn ExportObserver>,
) -> Result<ExportSummary, ExportError> {
    let (fleet, mut client_options) = prepare(options)?;
    let key = match &options.key {
        Some(path) => PrivateKey::read(path)?,
        None => return Err(ExportError::NoKey),
    };
    // Lock the hub state before any work, so the sequence is ours.
    let state = Hub::open(&options.state_dir)?;
    let channel = options
        .channel
        .clone()
        .or_else(|| fleet.spec.channel.clone())
        .unwrap_or_else(|| "stable".to_string());
    let sequence = state.next_sequence(&channel, options.sequence)?;

    let plan = render(&fleet, options, observer.as_ref())?;
    // Before anything is pulled: the wave gates, and images that would
    // meet at a site.
    let gates = check_gates(
        &fleet,
        &plan,
        options,
        &channel,
        state.dir(),
        observer.as_ref(),
    )?;
    let parsed = parsed_images(&plan)?;
    let planned = planned_images(&parsed);
    site_paths::check_repositories(&planned)?;

    let staging_dir = staging_dir(&options.output)?;
    // Scratch: the bundle is the durable copy (fsynced as a whole), and an
    // fsync per staged blob held each download up on the disk, a fifth of
    // the export's time. What keeps staged blobs (the hub store's links)
    // syncs them itself if it needs them to outlive a crash.
    let staging = LayoutStore::create_scratch(staging_dir.path())?;

    client_options.observer = observer.clone();
    let client = Arc::new(RegistryClient::new(client_options)?);
    let sources = ImageSources::new(&client, mirrors(&fleet), options.platforms.clone());

    let (manifests, downloads) = pull(
        &plan,
        &planned,
        &sources,
        &client,
        &staging,
        observer.as_ref(),
    )?;

    let seal_options = seal_options(
        &plan,
        &manifests.pinned,
        options,
        &channel,
        sequence,
        &gates,
    );
    observer.phase("write", 0);
    let hub = open_store(&state, observer.as_ref())?;
    let sites = &seal_options.targets.sites;
    let bases = bases::resolve(&options.bases, &hub, state.dir(), sites)?;
    let jobs = bundle_jobs(&bases, &options.bases, sites)?;
    let writing = Writing {
        options,
        observer: observer.as_ref(),
        plan: &plan,
        staging_dir: staging_dir.path(),
        downloads: &downloads,
        owners: &manifests.owners,
        state: &state,
        hub: &hub,
        key: &key,
        seal_options: &seal_options,
    };
    let written = writing.write_jobs(&jobs)?;
    // Every blob has landed: each was waited for.
    let pulled = downloads.finish().map_err(|failed| {
        image_error(
            &manifests.owners[&failed.digest],
            &plan,
            chain_message(&*failed.error),
        )
    })?;
    Ok(summary(
        &plan,
        &manifests,
        &seal_options,
        pulled.bytes_fetched,
        staging_dir.path(),
        written,
        gates,
    ))
}

/// What the export did, the first bundle written standing for all (every
/// one is in `bundles`).
fn summary(
    plan: &Plan,
    manifests: &Manifests,
    seal_options: &SealOptions,
    pulled_bytes: u64,
    staging_dir: &Path,
    written: Vec<WrittenBundle>,
    gates: GateOutcome,
) -> ExportSummary {
    let first = written.first().cloned().expect("at least one bundle job");
    ExportSummary {
        volumes: first.volumes,
        bundle: first.path.clone(),
        bundle_id: first.bundle_id.clone(),
        manifest_digest: first.manifest_digest.clone(),
        channel: seal_options.channel.clone(),
        sequence: seal_options.sequence,
        clusters: plan.clusters.len(),
        manifest_sets: plan.manifest_sets().len(),
        objects: plan.clusters.iter().map(|c| c.objects).sum(),
        images: manifests.pinned.len(),
        signatures: manifests.signatures,
        blobs: fs::read_dir(staging_dir.join("blobs/sha256"))
            .map(|d| d.count())
            .unwrap_or(0),
        bytes: first.bytes,
        fetched_bytes: manifests.fetched_bytes + pulled_bytes,
        bundles: written,
        warnings: plan.warnings.clone(),
        gates,
    }
}

/// The pull phase: every image's manifests staged and its tags checked,
/// then the other blobs, each once (images share layers), downloading in
/// the order the bundle lists them on a thread of their own: the bundle is
/// written as they land, and the disk takes it as the downloads go. The
/// manifest sets are staged meanwhile.
fn pull(
    plan: &Plan,
    planned: &[PlannedImage<'_>],
    sources: &ImageSources,
    client: &Arc<RegistryClient>,
    staging: &LayoutStore,
    observer: &dyn ExportObserver,
) -> Result<(Manifests, Downloads), ExportError> {
    observer.phase("pull", 0);
    let manifests = stage_manifests(plan, sources, staging, observer)?;
    site_paths::check_tags(planned, &manifests.pinned)?;
    let downloads = Downloads::start(Arc::clone(client), staging.clone(), &manifests.missing);
    for (digest, yaml) in plan.manifest_sets() {
        let stored = staging.put_blob_bytes(yaml.as_bytes())?;
        debug_assert_eq!(stored, digest);
    }
    Ok((manifests, downloads))
}

/// What every bundle of this export is sealed with: its channel and
/// sequence, every targeted site and cluster and their releases (each job
/// keeps its own sites' share), the policy updates and any gate override.
fn seal_options(
    plan: &Plan,
    pinned: &BTreeMap<String, Digest>,
    options: &ExportOptions,
    channel: &str,
    sequence: u64,
    gates: &GateOutcome,
) -> SealOptions {
    SealOptions {
        channel: channel.to_string(),
        sequence,
        creator: options.creator.clone(),
        targets: Targets {
            sites: plan.sites().into_iter().collect(),
            clusters: plan.clusters.iter().map(|c| c.cluster.clone()).collect(),
        },
        releases: releases(plan, pinned),
        bundle_id: None,
        created: None,
        policy_updates: options.policy_updates.clone(),
        gate_override: gates.gate_override.clone(),
    }
}

/// The hub's content store, where bundles are recorded and delta bases
/// read from, after saying what settling it after a reboot did.
fn open_store(state: &Hub, observer: &dyn ExportObserver) -> Result<HubStore, ExportError> {
    let hub = state.store()?;
    let settled = hub.settled();
    if settled.rehashed > 0 {
        observer.log(&format!(
            "hub store: the machine rebooted since the last export; re-hashed the {} blob(s) it \
             had not yet made durable, removed {} damaged",
            settled.rehashed, settled.removed
        ));
    }
    Ok(hub)
}

/// What writing each bundle job shares: the staged release and the
/// downloads still landing in it, the hub, the key and the seal options
/// the job narrows to its sites.
struct Writing<'a> {
    options: &'a ExportOptions,
    observer: &'a dyn ExportObserver,
    plan: &'a Plan,
    staging_dir: &'a Path,
    downloads: &'a Downloads,
    /// The image to name when a blob fails.
    owners: &'a BTreeMap<Digest, String>,
    state: &'a Hub,
    hub: &'a HubStore,
    key: &'a PrivateKey,
    seal_options: &'a SealOptions,
}

impl Writing<'_> {
    /// Every job's bundle: at `-o` for a lone one, else each named after
    /// the channel, the sequence and its number inside the `-o` directory.
    fn write_jobs(&self, jobs: &[BundleJob]) -> Result<Vec<WrittenBundle>, ExportError> {
        let (channel, sequence) = (&self.seal_options.channel, self.seal_options.sequence);
        let several = jobs.len() > 1;
        let mut written = Vec::new();
        for (n, job) in jobs.iter().enumerate() {
            let output = job_output(
                self.options,
                several.then(|| format!("{channel}-{sequence}-{}.tender", n + 1)),
            )?;
            written.push(self.write(job, &output)?);
        }
        Ok(written)
    }

    /// One bundle for `job`'s sites, full or a delta, written to `output`
    /// and recorded in the hub (its blobs in the store, the export in the
    /// sequence log).
    fn write(&self, job: &BundleJob, output: &BundleOutput) -> Result<WrittenBundle, ExportError> {
        let mut job_options = self.seal_options.clone();
        job_options.releases.retain(|r| job.sites.contains(&r.site));
        job_options.targets = Targets {
            sites: job.sites.clone(),
            clusters: job_options
                .releases
                .iter()
                .map(|r| r.cluster.clone())
                .collect(),
        };
        let (sealed, delta) = match job.base {
            None => (self.seal_full(&job_options, output)?, None),
            Some(base) => {
                let (sealed, stats) = self.seal_delta(job, base, &job_options, output)?;
                (sealed, Some(stats))
            }
        };
        let manifest_bytes = sealed.manifest.to_canonical_bytes()?;
        self.hub
            .record(self.staging_dir, &manifest_bytes, sealed.manifest_digest)?;
        self.state.record_export(&ExportRecord {
            bundle_id: sealed.manifest.bundle_id.clone(),
            manifest_digest: sealed.manifest_digest.to_string(),
            channel: job_options.channel.clone(),
            sequence: job_options.sequence,
            created: sealed.manifest.created.clone(),
            path: sealed.path.display().to_string(),
            clusters: job_options.targets.clusters.clone(),
            gate_override: job_options.gate_override.clone(),
        })?;
        Ok(WrittenBundle {
            path: sealed.path.clone(),
            volumes: sealed.volumes.as_ref().map(|v| v.volumes.len()),
            kind: sealed.manifest.kind,
            bundle_id: sealed.manifest.bundle_id.clone(),
            manifest_digest: sealed.manifest_digest.to_string(),
            sites: job.sites.clone(),
            bytes: sealed.bytes,
            delta,
        })
    }

    /// A full bundle, written as the blobs arrive.
    fn seal_full(
        &self,
        job_options: &SealOptions,
        output: &BundleOutput,
    ) -> Result<SealedBundle, ExportError> {
        seal_arriving(
            self.staging_dir,
            self.downloads.arrivals(),
            job_options,
            self.key,
            output,
            &mut |n| self.observer.advance(n),
        )
        .map_err(|e| self.blame(e))
    }

    /// A delta bundle against `base`: every blob must have landed before
    /// the patches against the base's blobs are planned and made.
    fn seal_delta(
        &self,
        job: &BundleJob,
        base: &Base,
        job_options: &SealOptions,
        output: &BundleOutput,
    ) -> Result<(SealedBundle, DeltaStats), ExportError> {
        self.observer.log(&format!(
            "delta for site(s) {} against bundle {}",
            job.sites.join(", "),
            base.bundle.manifest.bundle_id
        ));
        self.downloads
            .arrivals()
            .wait_all()
            .map_err(|e| self.blame(ExportError::io_at("downloading into", self.staging_dir, e)))?;
        let work = self.staging_dir.join("patches");
        atomic::create_dir_all(&work).map_err(|e| ExportError::io_at("creating", &work, e))?;
        let log = |line: &str| self.observer.log(line);
        let plan = delta::plan(
            self.staging_dir,
            self.hub,
            base,
            &work,
            &self.options.patch,
            &log,
        )?;
        let sealed = seal_delta(
            self.staging_dir,
            job_options,
            &plan,
            self.key,
            output,
            &mut |n| self.observer.advance(n),
        )?;
        Ok((sealed, delta_stats(&plan)))
    }

    /// A download that fails fails the writing too: the download's failure,
    /// naming its image, is the one reported, as the cause.
    fn blame(&self, error: ExportError) -> ExportError {
        match self.downloads.arrivals().failure() {
            Some((Some(digest), reason)) => image_error(&self.owners[&digest], self.plan, reason),
            _ => error,
        }
    }
}

/// The staging directory. It lives beside the output, so the final rename
/// stays on one filesystem, and is removed however the export ends.
fn staging_dir(output: &BundleOutput) -> Result<tempfile::TempDir, ExportError> {
    let out_dir = match output {
        BundleOutput::File { path, .. } | BundleOutput::Volumes { path, .. } => {
            parent(path).to_path_buf()
        }
        BundleOutput::Stdout => std::env::temp_dir(),
    };
    atomic::create_dir_all(&out_dir).map_err(|e| ExportError::io_at("creating", &out_dir, e))?;
    tempfile::Builder::new()
        .prefix(".tender-staging-")
        .tempdir_in(&out_dir)
        .map_err(|e| ExportError::io_at("creating staging in", &out_dir, e))
}

/// Every image's manifests and signatures, staged; its blobs not yet.
struct Manifests {
    /// Each image reference to the digest it was pulled at.
    pinned: BTreeMap<String, Digest>,
    /// Bytes copied from mirror layouts.
    fetched_bytes: u64,
    /// Signature artifacts staged.
    signatures: usize,
    /// The blobs still to download, each with the repository to ask.
    missing: Vec<(Reference, Descriptor)>,
    /// The image to name when a blob fails: the first that uses it.
    owners: BTreeMap<Digest, String>,
}

/// Stages every image's manifests, several images at once: each is mostly
/// waiting on the network, and the store and the client are shared safely
/// between threads.
fn stage_manifests(
    plan: &Plan,
    sources: &ImageSources,
    staging: &LayoutStore,
    observer: &dyn ExportObserver,
) -> Result<Manifests, ExportError> {
    let images: Vec<String> = plan.images().into_iter().collect();
    let results = tender_format::parallel::map_waiting(&images, STAGING_WORKERS, |image| {
        let reference = parse_reference(image, plan)?;
        let staged = sources
            .stage(&reference, staging)
            .map_err(|e| image_error(image, plan, chain_message(&e)))?;
        observer.log(&format!(
            "{image} → {} ({} blob(s), {} signature artifact(s))",
            staged.descriptor.digest,
            staged.pending.len() + staged.blobs_copied,
            staged.signatures.len()
        ));
        Ok::<_, ExportError>(staged)
    });
    let mut out = Manifests {
        pinned: BTreeMap::new(),
        fetched_bytes: 0,
        signatures: 0,
        missing: Vec::new(),
        owners: BTreeMap::new(),
    };
    for (image, staged) in images.iter().zip(every_image(results)?) {
        out.fetched_bytes += staged.bytes_copied;
        out.signatures += staged.signatures.len();
        out.pinned.insert(image.clone(), staged.descriptor.digest);
        for (repository, descriptor) in staged.pending {
            out.owners
                .entry(descriptor.digest)
                .or_insert_with(|| image.clone());
            if !staging.has_blob(&descriptor.digest) {
                out.missing.push((repository, descriptor));
            }
        }
    }
    Ok(out)
}

/// The render phase: every targeted cluster's manifest set and images,
/// with the render's warnings and a one-line count logged.
fn render(
    fleet: &Fleet,
    options: &ExportOptions,
    observer: &dyn ExportObserver,
) -> Result<Plan, ExportError> {
    observer.phase("render", 0);
    let plan = plan(fleet, &options.clusters, &options.tools)?;
    warn_all(&plan, observer);
    observer.log(&format!(
        "rendered {} cluster(s): {} object(s), {} distinct manifest set(s), {} image(s)",
        plan.clusters.len(),
        plan.clusters.iter().map(|c| c.objects).sum::<usize>(),
        plan.manifest_sets().len(),
        plan.images().len()
    ));
    Ok(plan)
}

/// Each cluster's release: its manifest set and its images pinned to the
/// digests just pulled.
fn releases(plan: &Plan, pinned: &BTreeMap<String, Digest>) -> Vec<Release> {
    plan.clusters
        .iter()
        .map(|c| Release {
            cluster: c.cluster.clone(),
            site: c.site.clone(),
            manifests: c.manifests,
            images: c
                .images
                .iter()
                .map(|i| ImageRef {
                    reference: i.clone(),
                    digest: pinned[i],
                })
                .collect(),
        })
        .collect()
}

/// Where one bundle job writes: `-o` itself for a lone bundle, or `name`
/// inside the `-o` directory when the export makes several (stdout cannot
/// take several).
fn job_output(options: &ExportOptions, name: Option<String>) -> Result<BundleOutput, ExportError> {
    let Some(name) = name else {
        return Ok(options.output.clone());
    };
    Ok(match &options.output {
        BundleOutput::Stdout => {
            return Err(ExportError::Base {
                base: options.bases.join(", "),
                reason: "this export makes several bundles; -o must name a directory".into(),
            });
        }
        BundleOutput::File { path, split_above } => {
            atomic::create_dir_all(path).map_err(|e| ExportError::io_at("creating", path, e))?;
            BundleOutput::File {
                path: path.join(name),
                split_above: *split_above,
            }
        }
        BundleOutput::Volumes { path, size } => {
            atomic::create_dir_all(path).map_err(|e| ExportError::io_at("creating", path, e))?;
            BundleOutput::Volumes {
                path: path.join(name),
                size: *size,
            }
        }
    })
}

/// What a delta bundle carried, blob by blob, for the summary.
fn delta_stats(plan: &delta::DeltaPlan) -> DeltaStats {
    let count = |how: Carried| plan.choices.iter().filter(|c| c.how == how).count();
    DeltaStats {
        base_bundle_id: plan.base_bundle_id.clone(),
        base_manifest_digest: plan.base_manifest_digest,
        referenced: count(Carried::Referenced),
        patched: count(Carried::Patched),
        whole: count(Carried::Whole),
        release_bytes: plan.choices.iter().map(|c| c.size).sum(),
        bytes_saved: plan.bytes_saved(),
        blobs: plan.choices.clone(),
    }
}

/// Checks the gates of the waves this export targets against the receipts
/// the hub holds. The gating waves' clusters that the export does not
/// target are rendered too: their manifest sets are "this release".
fn check_gates(
    fleet: &Fleet,
    plan: &Plan,
    options: &ExportOptions,
    channel: &str,
    state_dir: &Path,
    observer: &dyn ExportObserver,
) -> Result<GateOutcome, ExportError> {
    let targeted: Vec<String> = plan.clusters.iter().map(|c| c.cluster.clone()).collect();
    let gates = waves::gates_for(fleet, &targeted);
    if gates.is_empty() {
        if options.override_gate.is_some() {
            observer.warn("--override-gate: no wave gate applies to this export; nothing recorded");
        }
        return Ok(GateOutcome {
            checks: Vec::new(),
            gate_override: None,
        });
    }
    let mut expected: BTreeMap<String, Digest> = plan
        .clusters
        .iter()
        .map(|c| (c.cluster.clone(), c.manifests))
        .collect();
    let others: Vec<String> = gates
        .iter()
        .flat_map(|g| g.clusters.iter())
        .filter(|c| !expected.contains_key(*c))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !others.is_empty() {
        let gating = tender_render::plan::plan(fleet, &others, &options.tools)?;
        expected.extend(
            gating
                .clusters
                .iter()
                .map(|c| (c.cluster.clone(), c.manifests)),
        );
    }
    let history = crate::hub::history(state_dir)?;
    let now = time::OffsetDateTime::now_utc();
    let checks: Vec<GateCheck> = gates
        .iter()
        .map(|g| waves::check(g, &expected, channel, &history, now))
        .collect();
    let outcome = waves::decide(checks, options.override_gate.as_deref())?;
    for c in &outcome.checks {
        observer.log(&c.describe());
    }
    if let Some(o) = &outcome.gate_override {
        observer.warn(&format!(
            "wave gate overridden ({}): pending {}; recorded in the bundle manifest and exports.jsonl",
            o.reason,
            o.pending.join(", ")
        ));
    }
    Ok(outcome)
}

/// Gives every render warning to the observer.
fn warn_all(plan: &Plan, observer: &dyn ExportObserver) {
    for w in &plan.warnings {
        observer.warn(&w.message());
    }
}

/// One bundle to write: for these sites, full or as a delta against a base.
struct BundleJob<'a> {
    sites: Vec<String>,
    base: Option<&'a Base>,
}

/// Without `--base`, one full bundle for every targeted site. With it, one
/// delta per distinct base, and (for `--base sites`) a full bundle for the
/// targeted sites the hub knows no base of.
fn bundle_jobs<'a>(
    bases: &'a [Base],
    base_values: &[String],
    targeted: &[String],
) -> Result<Vec<BundleJob<'a>>, ExportError> {
    if base_values.is_empty() {
        return Ok(vec![BundleJob {
            sites: targeted.to_vec(),
            base: None,
        }]);
    }
    let mut jobs = Vec::new();
    let mut covered = BTreeSet::new();
    for base in bases {
        let sites: Vec<String> = if base.sites.is_empty() {
            targeted.to_vec()
        } else {
            base.sites
                .iter()
                .filter(|s| targeted.contains(s))
                .cloned()
                .collect()
        };
        if sites.is_empty() {
            continue;
        }
        covered.extend(sites.iter().cloned());
        jobs.push(BundleJob {
            sites,
            base: Some(base),
        });
    }
    let rest: Vec<String> = targeted
        .iter()
        .filter(|s| !covered.contains(*s))
        .cloned()
        .collect();
    if !rest.is_empty() && base_values.iter().any(|v| v == "sites") {
        jobs.push(BundleJob {
            sites: rest,
            base: None,
        });
    }
    if jobs.is_empty() {
        return Err(ExportError::Base {
            base: base_values.join(", "),
            reason: format!(
                "none of the targeted sites ({}) has this base",
                targeted.join(", ")
            ),
        });
    }
    Ok(jobs)
}

/// Images staged at once. Staging is round trips for small manifests, so
/// this many keep a registry busy without crowding a small hub.
const STAGING_WORKERS: usize = 8;

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}
