//! Applying a delta bundle (bundle spec §8).
//!
//! Before anything is written: the site must have imported the bundle the
//! delta was computed against, and must hold every blob the delta relies on
//! (referenced blobs and patch sources), intact, re-hashed now. After
//! staging: the referenced blobs are linked beside the staged ones and each
//! patched blob is rebuilt and its digest checked, so that staging holds
//! the complete release exactly as a full bundle would have left it, and
//! the rest of the import cannot tell the difference.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use tender_delta::ApplyLimits;
use tender_format::manifest::{Base, BundleManifest, PatchSource};
use tender_format::{Digest, atomic};
use tender_oci::{LayoutStore, Reference, RegistryClient};

use crate::error::ImportError;
use crate::inventory::{self, Held, RegistryPlace};
use crate::load::{legacy_site_reference, site_reference};
use crate::site::{ImageTarget, Site};
use crate::state::{SiteState, SiteStateFile};

/// Where each blob a delta relies on can be read at this site (found by
/// [`inventory::find`], which asks every place the site keeps blobs).
pub struct BaseBlobs {
    paths: BTreeMap<Digest, PathBuf>,
    /// Blobs fetched from a site registry live here until the import ends.
    scratch: Option<PathBuf>,
}

impl Drop for BaseBlobs {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

/// Checks that this site can apply the delta, before anything changes.
pub fn check_base(
    manifest: &BundleManifest,
    base: &Base,
    site: &Site,
    state: &SiteState,
    current: &SiteStateFile,
    client: Option<&RegistryClient>,
) -> Result<BaseBlobs, ImportError> {
    let imported = imported_bundles(state, current)?;
    if !imported.contains(&base.manifest_digest.to_string()) {
        return Err(ImportError::Refused(format!(
            "delta bundle was made against bundle {} ({}), which this site has not imported; \
             import that bundle first, or ask the hub for a full bundle",
            base.bundle_id, base.manifest_digest
        )));
    }
    let required = base.required();
    // A registry site keeps images' blobs in the registry; they are pulled
    // (and re-hashed) into a scratch store for the rest of the import.
    let (registry, scratch) = match (&site.target, client) {
        (ImageTarget::Registry(target), Some(client)) => {
            let dir = state
                .dir()
                .join("delta-base")
                .join(Digest::of(base.manifest_digest.to_string().as_bytes()).hex());
            let place = RegistryPlace {
                client,
                repositories: repositories(manifest, target)?,
                scratch: LayoutStore::create_scratch(&dir)?,
            };
            (Some(place), Some(dir))
        }
        _ => (None, None),
    };
    // Owns the scratch directory from here on, so that every return
    // removes it.
    let mut blobs = BaseBlobs {
        paths: BTreeMap::new(),
        scratch,
    };
    let mut missing = Vec::new();
    for (digest, held) in inventory::find(site, &required, registry.as_ref())? {
        match held {
            Held::Intact(path) => {
                blobs.paths.insert(digest, path);
            }
            Held::Not(why) => missing.push(format!("{digest} ({why})")),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        let more = missing.len().saturating_sub(shown.len());
        return Err(ImportError::Refused(format!(
            "delta bundle needs {} blob(s) of base bundle {} that this site does not hold intact: {}{}; \
             nothing was changed (import a full bundle to repair the store)",
            missing.len(),
            base.bundle_id,
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )));
    }
    Ok(blobs)
}

/// Completes a staged delta: links the referenced blobs in and rebuilds
/// every patched blob, two at a time (both cores) while the memory they
/// hold together (each its reference and window, from its patch header)
/// stays within the site's delta memory limit, else one after the other.
pub fn materialize(
    base: &Base,
    blobs: &BaseBlobs,
    staging_dir: &Path,
    limits: ApplyLimits,
) -> Result<(), ImportError> {
    let blob_dir = staging_dir.join("blobs/sha256");
    for b in &base.blobs {
        let to = blob_dir.join(b.digest.hex());
        if to.exists() {
            continue;
        }
        place(&blobs.paths[&b.digest], &to)?;
    }
    let patch_of = |p: &PatchSource| {
        staging_dir
            .join("patches/blobs/sha256")
            .join(p.target.hex())
    };
    let to_rebuild: Vec<&PatchSource> = base
        .patches
        .iter()
        .filter(|p| {
            // Rebuilt by an earlier, interrupted run.
            !File::open(blob_dir.join(p.target.hex()))
                .and_then(Digest::of_reader)
                .is_ok_and(|(d, _)| d == p.target)
        })
        .collect();
    let rebuilt = tender_format::parallel::map_within_budget(
        &to_rebuild,
        2,
        limits.window,
        // A header that cannot be read weighs nothing here; apply refuses it.
        |p| tender_delta::read_header(&patch_of(p)).map_or(0, |h| h.window_bytes()),
        |p| rebuild(&patch_of(p), p, &blobs.paths[&p.source], &blob_dir, limits),
    );
    rebuilt.into_iter().collect::<Result<(), _>>()?;
    atomic::sync_dir(&blob_dir).map_err(|e| ImportError::io_at("staging", &blob_dir, e))
}

/// Rebuilds one patched blob into `blob_dir`, through a partial file that
/// only a rebuild with the right digest renames into place.
fn rebuild(
    patch: &Path,
    p: &PatchSource,
    source: &Path,
    blob_dir: &Path,
    limits: ApplyLimits,
) -> Result<(), ImportError> {
    let to = blob_dir.join(p.target.hex());
    let partial = to.with_extension("rebuilding");
    let io = |e| ImportError::io_at("rebuilding a patched blob", &partial, e);
    let file = File::create(&partial).map_err(io)?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let applied = tender_delta::apply(patch, p.target, source, &mut out, limits);
    let finished = applied.map_err(ImportError::from).and_then(|_| {
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)
    });
    if let Err(e) = finished {
        let _ = fs::remove_file(&partial);
        return Err(e);
    }
    fs::rename(&partial, &to).map_err(|e| ImportError::io_at("rebuilding a patched blob", &to, e))
}

/// Hard-links a verified blob into staging (copies across file systems).
fn place(from: &Path, to: &Path) -> Result<(), ImportError> {
    let tmp = to.with_extension("linking");
    let _ = fs::remove_file(&tmp);
    if fs::hard_link(from, &tmp).is_err() {
        let mut src =
            File::open(from).map_err(|e| ImportError::io_at("reading a base blob", from, e))?;
        let mut dst = File::create(&tmp).map_err(|e| ImportError::io_at("staging", &tmp, e))?;
        std::io::copy(&mut src, &mut dst).map_err(|e| ImportError::io_at("staging", &tmp, e))?;
        dst.flush()
            .map_err(|e| ImportError::io_at("staging", &tmp, e))?;
        dst.sync_all()
            .map_err(|e| ImportError::io_at("staging", &tmp, e))?;
    }
    fs::rename(&tmp, to).map_err(|e| ImportError::io_at("staging", to, e))
}

/// Every bundle this site has imported: the channels' last ones and the
/// release history.
fn imported_bundles(
    state: &SiteState,
    current: &SiteStateFile,
) -> Result<BTreeSet<String>, ImportError> {
    let mut out: BTreeSet<String> = current
        .channels
        .values()
        .map(|c| c.manifest_digest.clone())
        .chain(current.current.values().map(|r| r.manifest_digest.clone()))
        .collect();
    for (_, records) in crate::releases::list(state.dir())? {
        out.extend(records.into_iter().map(|r| r.manifest_digest));
    }
    Ok(out)
}

/// The site repositories of the release's images, where a registry site
/// keeps the base blobs; then where an older tender put them (a base it
/// imported), so the first delta after an upgrade finds them too.
fn repositories(
    manifest: &BundleManifest,
    target: &crate::site::RegistryTarget,
) -> Result<Vec<Reference>, ImportError> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let sources: Vec<Reference> = manifest
        .releases
        .iter()
        .flat_map(|r| &r.images)
        .filter_map(|image| Reference::parse(&image.reference).ok())
        .collect();
    for source in &sources {
        let at_site = site_reference(source, target)?;
        if seen.insert(at_site.repository().to_string()) {
            out.push(at_site);
        }
    }
    for source in &sources {
        let legacy = legacy_site_reference(source, target)?;
        if seen.insert(legacy.repository().to_string()) {
            out.push(legacy);
        }
    }
    Ok(out)
}
