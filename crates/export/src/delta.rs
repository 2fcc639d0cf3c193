//! Delta bundles on the hub (bundle spec §8). For every blob of the new
//! release: the sites already hold it (referenced), or it is a layer that
//! can be rebuilt from a patch against a layer they hold (patched, proven
//! here before it ships), or it travels whole, with the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use tender_format::FromIo;

use serde::Serialize;
use tender_delta::{Choice, Layer, Listings, Patch, PatchOptions, PatchOutcome, Place};
use tender_format::layout::EntryPath;
use tender_format::{Carried, Digest};
use tender_oci::media::ImageIndex;
use tender_oci::{Descriptor, LayoutStore, Manifest, Reference};

use crate::error::ExportError;
use crate::hub::store::{HubStore, StoredBundle};

/// Blobs smaller than this travel whole: a patch saves nothing worth its
/// header and the site's work.
const MIN_PATCH_TARGET: u64 = 16 * 1024;

/// What a group of sites holds: the bundle they imported, which the delta
/// names, and the blobs every one of them holds.
#[derive(Debug, Clone)]
pub struct Base {
    pub bundle: StoredBundle,
    /// What may be referenced: the base release's blobs, narrowed to what
    /// the sites' inventories list when the hub has them.
    pub held: BTreeMap<Digest, u64>,
    /// The sites this base stands for (empty: every targeted site).
    pub sites: Vec<String>,
}

/// How one blob travels, for the summary and `tender inspect`.
#[derive(Debug, Clone, Serialize)]
pub struct BlobChoice {
    pub digest: Digest,
    pub size: u64,
    pub how: Carried,
    /// Bytes in the bundle for this blob.
    pub shipped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Digest>,
    /// Why a layer travels whole, or how its source was chosen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A proven patch and what it rebuilds.
#[derive(Debug)]
pub struct PlannedPatch {
    pub patch: Box<Patch>,
    pub source: Digest,
    pub source_size: u64,
    pub target_size: u64,
}

/// The decisions for one delta.
#[derive(Debug)]
pub struct DeltaPlan {
    pub base_bundle_id: String,
    pub base_manifest_digest: Digest,
    pub referenced: BTreeMap<Digest, u64>,
    pub patches: BTreeMap<Digest, PlannedPatch>,
    pub choices: Vec<BlobChoice>,
}

impl DeltaPlan {
    /// Bytes the delta saves against shipping every blob whole.
    pub fn bytes_saved(&self) -> u64 {
        self.choices
            .iter()
            .map(|c| c.size.saturating_sub(c.shipped))
            .sum()
    }
}

/// Decides how each blob of the staged release travels to sites holding
/// `base`, making and proving patches (two at a time, both cores, when
/// their memory allows).
pub fn plan(
    layout: &Path,
    hub: &HubStore,
    base: &Base,
    work_dir: &Path,
    options: &PatchOptions,
    log: &(dyn Fn(&str) + Sync),
) -> Result<DeltaPlan, ExportError> {
    let staged = LayoutStore::open(layout)?;
    let candidates = patch_sources(layout, hub, base)?;
    let sorted = sort_blobs(&staged, layout, base, &candidates)?;
    let outcomes = make_patches(&sorted.to_patch, work_dir, options, log);
    let mut choices = sorted.choices;
    let patches = record_patches(sorted.to_patch, outcomes, &mut choices)?;
    choices.sort_by_key(|c| c.digest);
    Ok(DeltaPlan {
        base_bundle_id: base.bundle.manifest.bundle_id.clone(),
        base_manifest_digest: base.bundle.manifest_digest,
        referenced: sorted.referenced,
        patches,
        choices,
    })
}

/// A new layer to patch, the base layer to patch it against, and why that one.
type PatchJob = (Layer, Layer, Choice);

/// The blobs of the new release, sorted before any patch is made.
struct Sorted {
    /// Held by the sites at this size: the bundle only names them.
    referenced: BTreeMap<Digest, u64>,
    /// Decided already: referenced, or whole (with the reason).
    choices: Vec<BlobChoice>,
    /// Layers worth a patch attempt.
    to_patch: Vec<PatchJob>,
}

/// Patch sources: the base's layers that the sites hold and the hub has
/// the bytes of.
fn patch_sources(layout: &Path, hub: &HubStore, base: &Base) -> Result<Vec<Layer>, ExportError> {
    let base_index: ImageIndex =
        serde_json::from_slice(&base.bundle.index).map_err(|e| ExportError::BadLayout {
            path: layout.to_path_buf(),
            reason: format!("base bundle's index.json: {e}"),
        })?;
    Ok(layers(hub.blobs(), &base_index)
        .into_iter()
        .filter(|(digest, _)| base.held.contains_key(digest) && hub.blobs().has_blob(digest))
        .map(|(digest, (size, places))| Layer {
            digest,
            size,
            path: hub.blobs().blob_path(&digest),
            places,
        })
        .collect())
}

/// Each staged blob: referenced if the sites hold it, whole if it is no
/// layer, small, or like nothing they hold, else a patch job against the
/// most similar candidate.
fn sort_blobs(
    staged: &LayoutStore,
    layout: &Path,
    base: &Base,
    candidates: &[Layer],
) -> Result<Sorted, ExportError> {
    let blobs = list_blobs(layout)?;
    let new_layers = layers(staged, &staged.index()?);
    let mut sorted = Sorted {
        referenced: BTreeMap::new(),
        choices: Vec::new(),
        to_patch: Vec::new(),
    };
    let mut listings = Listings::default();
    for (digest, size) in &blobs {
        if let Some(held) = base.held.get(digest)
            && held == size
        {
            sorted.referenced.insert(*digest, *size);
            sorted.choices.push(BlobChoice {
                digest: *digest,
                size: *size,
                how: Carried::Referenced,
                shipped: 0,
                source: None,
                note: None,
            });
            continue;
        }
        let whole = |note: Option<String>| BlobChoice {
            digest: *digest,
            size: *size,
            how: Carried::Whole,
            shipped: *size,
            source: None,
            note,
        };
        let Some((_, places)) = new_layers.get(digest) else {
            sorted.choices.push(whole(None));
            continue;
        };
        if *size < MIN_PATCH_TARGET {
            sorted.choices.push(whole(Some("small layer".into())));
            continue;
        }
        let target = Layer {
            digest: *digest,
            size: *size,
            path: staged.blob_path(digest),
            places: places.clone(),
        };
        match tender_delta::choose(&target, candidates, &mut listings) {
            Some((i, choice)) => sorted
                .to_patch
                .push((target, candidates[i].clone(), choice)),
            None => sorted
                .choices
                .push(whole(Some("no similar layer at the site".into()))),
        }
    }
    Ok(sorted)
}

/// Makes (and proves) every patch, in parallel within the memory budget,
/// logging each result.
fn make_patches(
    to_patch: &[PatchJob],
    work_dir: &Path,
    options: &PatchOptions,
    log: &(dyn Fn(&str) + Sync),
) -> Vec<Result<PatchOutcome, tender_delta::DeltaError>> {
    tender_format::parallel::map_within_budget(
        to_patch,
        2,
        // Two small layers side by side, two large ones one after the other
        // (one larger than the budget still gets its patch, alone).
        options.parallel_memory,
        |(target, source, _)| tender_delta::memory_estimate(&source.path, &target.path, options),
        |(target, source, choice)| {
            let outcome = tender_delta::make_patch(
                (
                    &source.path,
                    tender_delta::BlobRef {
                        digest: source.digest,
                        size: source.size,
                    },
                ),
                (
                    &target.path,
                    tender_delta::BlobRef {
                        digest: target.digest,
                        size: target.size,
                    },
                ),
                work_dir,
                options,
            );
            if let Ok(o) = &outcome {
                log(&match o {
                    PatchOutcome::Patched(p) => format!(
                        "patched {} ({} bytes) against {} ({}): {} bytes",
                        target.digest,
                        target.size,
                        source.digest,
                        describe(choice),
                        p.size
                    ),
                    PatchOutcome::Whole(reason) => {
                        format!("{} travels whole: {reason}", target.digest)
                    }
                });
            }
            outcome
        },
    )
}

/// Each job's outcome as a choice; the patches that worked, by target.
fn record_patches(
    to_patch: Vec<PatchJob>,
    outcomes: Vec<Result<PatchOutcome, tender_delta::DeltaError>>,
    choices: &mut Vec<BlobChoice>,
) -> Result<BTreeMap<Digest, PlannedPatch>, ExportError> {
    let mut patches = BTreeMap::new();
    for ((target, source, choice), outcome) in to_patch.into_iter().zip(outcomes) {
        match outcome? {
            PatchOutcome::Patched(patch) => {
                choices.push(BlobChoice {
                    digest: target.digest,
                    size: target.size,
                    how: Carried::Patched,
                    shipped: patch.size,
                    source: Some(source.digest),
                    note: Some(describe(&choice)),
                });
                patches.insert(
                    target.digest,
                    PlannedPatch {
                        patch,
                        source: source.digest,
                        source_size: source.size,
                        target_size: target.size,
                    },
                );
            }
            PatchOutcome::Whole(reason) => choices.push(BlobChoice {
                digest: target.digest,
                size: target.size,
                how: Carried::Whole,
                shipped: target.size,
                source: None,
                note: Some(reason),
            }),
        }
    }
    Ok(patches)
}

fn describe(choice: &Choice) -> String {
    match choice {
        Choice::Lineage => "same image lineage".into(),
        Choice::Overlap(score) => format!("{:.0}% file overlap", score * 100.0),
    }
}

/// Every blob file of a layout, with its size.
fn list_blobs(layout: &Path) -> Result<BTreeMap<Digest, u64>, ExportError> {
    let dir = layout.join("blobs/sha256");
    let mut out = BTreeMap::new();
    for item in fs::read_dir(&dir).map_err(|e| ExportError::io_at("listing", &dir, e))? {
        let item = item.map_err(|e| ExportError::io_at("listing", &dir, e))?;
        let name = format!("blobs/sha256/{}", item.file_name().to_string_lossy());
        if let Ok(EntryPath::Blob(digest)) = EntryPath::parse(&name) {
            let size = item
                .metadata()
                .map_err(|e| ExportError::io_at("reading", item.path(), e))?
                .len();
            out.insert(digest, size);
        }
    }
    Ok(out)
}

/// The layers of every image an index names, with where each sits. An
/// image that cannot be read (a signature artifact, a foreign index
/// entry) just contributes nothing.
fn layers(store: &LayoutStore, index: &ImageIndex) -> BTreeMap<Digest, (u64, Vec<Place>)> {
    let mut out: BTreeMap<Digest, (u64, Vec<Place>)> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for descriptor in &index.manifests {
        let Some(name) = descriptor.ref_name() else {
            continue;
        };
        let repository = Reference::parse(name)
            .map(|r| r.repository().to_string())
            .unwrap_or_else(|_| name.to_string());
        collect_layers(store, descriptor, &repository, &mut seen, &mut out, 0);
    }
    out
}

fn collect_layers(
    store: &LayoutStore,
    descriptor: &Descriptor,
    repository: &str,
    seen: &mut BTreeSet<(Digest, String)>,
    out: &mut BTreeMap<Digest, (u64, Vec<Place>)>,
    depth: usize,
) {
    if depth > 4 || !seen.insert((descriptor.digest, repository.to_string())) {
        return;
    }
    match store.read_manifest(descriptor) {
        Ok((_, Manifest::Image(image))) => {
            for (index, layer) in image.layers.iter().enumerate() {
                let place = Place {
                    repository: repository.to_string(),
                    index,
                };
                let entry = out.entry(layer.digest).or_insert((layer.size, Vec::new()));
                if !entry.1.contains(&place) {
                    entry.1.push(place);
                }
            }
        }
        Ok((_, Manifest::Index(index))) => {
            for child in &index.manifests {
                collect_layers(store, child, repository, seen, out, depth + 1);
            }
        }
        _ => {}
    }
}
