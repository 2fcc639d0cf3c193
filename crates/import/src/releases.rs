//! Releases kept at the site: listing them, rolling a cluster back to one
//! without new media, and collecting garbage only when asked.
//!
//! Nothing is ever deleted automatically: regulators want every release the
//! site ran to stay available until someone decides otherwise.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use tender_format::FromIo;

use serde::Serialize;
use tender_format::Digest;
use tender_oci::LayoutStore;

use crate::audit::{AuditAction, AuditEvent, AuditLog};
use crate::error::ImportError;
use crate::site::{ImageTarget, Site};
use crate::state::{ReleaseRecord, SiteState, read_state};

/// Every release recorded for each cluster, oldest first.
pub fn list(state_dir: &Path) -> Result<BTreeMap<String, Vec<ReleaseRecord>>, ImportError> {
    let mut out = BTreeMap::new();
    let dir = state_dir.join("releases");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ImportError::io_at("listing releases", &dir, e)),
    };
    for cluster in entries {
        let cluster = cluster.map_err(|e| ImportError::io_at("listing releases", &dir, e))?;
        let mut records = Vec::new();
        for file in fs::read_dir(cluster.path())
            .map_err(|e| ImportError::io_at("listing releases", cluster.path(), e))?
        {
            let path = file
                .map_err(|e| ImportError::io_at("listing releases", cluster.path(), e))?
                .path();
            if path.extension().is_some_and(|e| e == "json") {
                let bytes =
                    fs::read(&path).map_err(|e| ImportError::io_at("reading release", &path, e))?;
                let record: ReleaseRecord = serde_json::from_slice(&bytes).map_err(|e| {
                    ImportError::io_at(
                        "reading release",
                        &path,
                        std::io::Error::other(e.to_string()),
                    )
                })?;
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.sequence);
        out.insert(cluster.file_name().to_string_lossy().into_owned(), records);
    }
    Ok(out)
}

/// Makes an earlier release current again for one cluster. Its images and
/// manifest set are still at the site (nothing is auto-deleted); both are
/// checked before the switch. Returns the release now current, the
/// receipt written (if the site has a key) and warnings (a metrics file
/// that could not be written).
pub fn rollback(
    site: &Site,
    cluster: &str,
    to: u64,
    operator: &str,
    client: &tender_oci::ClientOptions,
) -> Result<(ReleaseRecord, Option<std::path::PathBuf>, Vec<String>), ImportError> {
    site.check_site_key()?;
    let state = SiteState::open(&site.state_dir)?;
    let audit = AuditLog::new(state.dir());
    crate::audit::settle(&audit, &state.read()?)?;
    let mut event = AuditEvent {
        action: AuditAction::Rollback,
        operator: operator.to_string(),
        sequence: Some(to),
        clusters: vec![cluster.to_string()],
        ..AuditEvent::default()
    };
    let result = (|| -> Result<ReleaseRecord, ImportError> {
        let releases = list(state.dir())?;
        let record = releases
            .get(cluster)
            .and_then(|rs| rs.iter().find(|r| r.sequence == to))
            .cloned()
            .ok_or_else(|| {
                ImportError::NotFound(format!(
                    "cluster {cluster} has no release with sequence {to}"
                ))
            })?;
        event.bundle_id = Some(record.bundle_id.clone());
        event.manifest_digest = Some(record.manifest_digest.clone());
        event.channel = Some(record.channel.clone());
        check_present(site, &state, &record)?;
        let mut current = state.read()?;
        audit.begin(&event)?;
        let registry = site.registry_client(client)?;
        // The original signers are in the audit trail of the import; the
        // republication names the rollback itself. The artifact's created
        // time is the bundle's, as at import, so the channel tag points at
        // the same digest `seq-<N>` always had (records from before
        // `created` was kept fall back to the import time).
        crate::publish::publish(
            site,
            &state,
            &record,
            current.current.get(cluster),
            &[],
            record.created.as_deref().unwrap_or(&record.imported_at),
            registry.as_ref(),
        )?;
        current.current.insert(cluster.to_string(), record.clone());
        state.commit(&current)?;
        Ok(record)
    })();
    event.result = crate::audit::result_line(&result, |_| "rolled back".into());
    let appended = audit.append(event)?;
    // Monitoring learns of a refused or failed rollback too; a metrics file
    // that cannot be written does not undo a rollback that happened.
    let metrics = crate::metrics::write(site);
    let record = result?;
    let warnings = match metrics {
        Ok(_) => Vec::new(),
        Err(e) => vec![format!(
            "metrics file not written: {}",
            tender_format::error::chain_message(&e)
        )],
    };
    let digest = record.manifest_digest.parse().map_err(|_| {
        ImportError::Audit(format!(
            "bad manifest digest in release {}",
            record.sequence
        ))
    })?;
    let receipt = crate::receipts::write(
        site,
        tender_receipt::Action::Rollback,
        &record.bundle_id,
        &digest,
        &record.channel,
        record.sequence,
        &appended,
    )?;
    Ok((record, receipt, warnings))
}

/// The manifest set must re-hash to its digest and, in the embedded store,
/// every image must be there.
fn check_present(
    site: &Site,
    state: &SiteState,
    record: &ReleaseRecord,
) -> Result<(), ImportError> {
    let path = state.manifests_path(&record.manifests);
    let ok = fs::File::open(&path)
        .and_then(Digest::of_reader)
        .is_ok_and(|(d, _)| d == record.manifests);
    if !ok {
        return Err(ImportError::Refused(format!(
            "manifest set {} of sequence {} is missing or damaged",
            record.manifests, record.sequence
        )));
    }
    if site.target == ImageTarget::Embedded {
        let store = LayoutStore::open(site.store_dir())?;
        for image in &record.images {
            if !store.has_blob(&image.digest) {
                return Err(ImportError::Refused(format!(
                    "image {}@{} is no longer in the store",
                    image.reference, image.digest
                )));
            }
        }
    }
    Ok(())
}

/// What `tender gc` removed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    pub kept_releases: usize,
    pub removed_tags: Vec<String>,
    pub removed_blobs: usize,
    pub removed_bytes: u64,
    pub removed_manifest_sets: usize,
}

/// Removes what no retained release references: the `keep` newest
/// releases of each cluster and every current release are retained.
pub fn gc(site: &Site, keep: usize, operator: &str) -> Result<GcReport, ImportError> {
    let state = SiteState::open(&site.state_dir)?;
    let current = read_state(state.dir())?;
    let mut retained: Vec<ReleaseRecord> = current.current.values().cloned().collect();
    for records in list(state.dir())?.into_values() {
        retained.extend(records.into_iter().rev().take(keep));
    }
    let mut report = GcReport {
        kept_releases: retained.len(),
        ..GcReport::default()
    };
    let sets: BTreeSet<Digest> = retained.iter().map(|r| r.manifests).collect();
    let images: BTreeSet<Digest> = retained
        .iter()
        .flat_map(|r| r.images.iter().map(|i| i.digest))
        .collect();

    if site.target == ImageTarget::Embedded && site.store_dir().join("index.json").exists() {
        collect_store(site, &images, &sets, &mut report)?;
    }
    let forgotten = collect_state(&state, &sets, &mut report)?;
    if site.target != ImageTarget::Embedded {
        crate::inventory::forget(state.dir(), &forgotten)?;
    }
    AuditLog::new(state.dir()).append(AuditEvent {
        action: AuditAction::Gc,
        result: "ok".into(),
        operator: operator.to_string(),
        detail: Some(format!(
            "kept {} release(s); removed {} tag(s), {} blob(s) ({} bytes), {} manifest set(s)",
            report.kept_releases,
            report.removed_tags.len(),
            report.removed_blobs,
            report.removed_bytes,
            report.removed_manifest_sets
        )),
        ..AuditEvent::default()
    })?;
    Ok(report)
}

/// The embedded store: tags of images no retained release names (and
/// signatures of none of them) removed, then every blob that no kept image
/// or manifest set reaches.
fn collect_store(
    site: &Site,
    images: &BTreeSet<Digest>,
    sets: &BTreeSet<Digest>,
    report: &mut GcReport,
) -> Result<(), ImportError> {
    let store = LayoutStore::open(site.store_dir())?;
    let mut keep_blobs: BTreeSet<Digest> = BTreeSet::new();
    for (name, descriptor) in store.list_tags()? {
        // Signature artifacts are tagged after the image they sign.
        let signs_kept = images
            .iter()
            .any(|d| name.contains(&format!("sha256-{}", d.hex())));
        if images.contains(&descriptor.digest) || signs_kept {
            for d in store.walk_image(&descriptor)? {
                keep_blobs.insert(d.digest);
            }
        } else {
            store.remove_tag(&name)?;
            report.removed_tags.push(name);
        }
    }
    keep_blobs.extend(sets.iter().copied());
    let blobs = site.store_dir().join("blobs/sha256");
    for file in fs::read_dir(&blobs).map_err(|e| ImportError::io_at("listing", &blobs, e))? {
        let file = file.map_err(|e| ImportError::io_at("listing", &blobs, e))?;
        let name = file.file_name().to_string_lossy().into_owned();
        let Ok(digest) = Digest::from_hex(&name) else {
            continue;
        };
        if !keep_blobs.contains(&digest) {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            fs::remove_file(file.path())
                .map_err(|e| ImportError::io_at("removing", file.path(), e))?;
            report.removed_blobs += 1;
            report.removed_bytes += size;
        }
    }
    Ok(())
}

/// The blobs kept in the state removed where no retained release needs
/// them: manifest sets no retained release names, and (registry site)
/// every carried blob no image reaches, which no release names. Returns
/// what was removed, for the caller to take out of the recorded inventory
/// too, so the hub never references it in a delta.
fn collect_state(
    state: &SiteState,
    sets: &BTreeSet<Digest>,
    report: &mut GcReport,
) -> Result<BTreeSet<Digest>, ImportError> {
    let mut forgotten = BTreeSet::new();
    let none = BTreeSet::new();
    for (dir, keep, are_sets) in [
        ("manifests/sha256", sets, true),
        ("blobs/sha256", &none, false),
    ] {
        let dir = state.dir().join(dir);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(ImportError::io_at("listing", &dir, e)),
        };
        for file in entries {
            let file = file.map_err(|e| ImportError::io_at("listing", &dir, e))?;
            let name = file.file_name().to_string_lossy().into_owned();
            let Ok(digest) = Digest::from_hex(&name) else {
                continue;
            };
            if !keep.contains(&digest) {
                fs::remove_file(file.path())
                    .map_err(|e| ImportError::io_at("removing", file.path(), e))?;
                if are_sets {
                    report.removed_manifest_sets += 1;
                } else {
                    report.removed_blobs += 1;
                }
                forgotten.insert(digest);
            }
        }
    }
    Ok(forgotten)
}
