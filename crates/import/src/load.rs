//! Loading verified images into the site: the embedded OCI layout store
//! (blobs hard-linked from staging, tags last) or a registry (blobs by
//! HEAD/mount/upload, manifests by digest, tags last, through
//! `tender-oci`). Either way a tag never points at a missing blob.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use tender_format::FromIo;

use tender_format::Digest;
use tender_format::atomic;
use tender_oci::{BlobOutcome, LayoutStore, Reference, RegistryClient, site_path};

use crate::error::ImportError;
use crate::site::RegistryTarget;

/// What loading did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct LoadReport {
    /// Source reference → where it now lives.
    pub images: Vec<(String, String)>,
    pub blobs_new: usize,
    pub blobs_present: usize,
}

/// Where a source image lives in a site registry: the site repository
/// ([`tender_oci::site_path`]: `[prefix/]<registry host>/<path>`), same
/// tag and digest. `tender serve` answers for the same repositories, so
/// an embedded-store site pins to the same paths ([`crate::publish`]).
pub fn site_reference(
    source: &Reference,
    target: &RegistryTarget,
) -> Result<Reference, ImportError> {
    let repository = site_path::site_repository(source, target.prefix.as_deref())?;
    in_site_registry(source, target, &repository)
}

/// Where an older tender (before site repositories kept the registry host)
/// pushed a source image: its path without the host. Only read from, for
/// the blobs of a release such a tender imported (a delta's base).
pub fn legacy_site_reference(
    source: &Reference,
    target: &RegistryTarget,
) -> Result<Reference, ImportError> {
    let repository = match &target.prefix {
        Some(prefix) => format!("{prefix}/{}", source.repository()),
        None => source.repository().to_string(),
    };
    in_site_registry(source, target, &repository)
}

/// `source`'s tag and digest at `repository` of the site registry.
fn in_site_registry(
    source: &Reference,
    target: &RegistryTarget,
    repository: &str,
) -> Result<Reference, ImportError> {
    Ok(Reference::from_parts(
        &target.url,
        repository,
        source.tag(),
        source.digest().copied(),
    )?)
}

/// Loads every tagged image of `staging` into the embedded store at `dir`.
pub fn load_embedded(
    staging: &LayoutStore,
    blobs: &[Digest],
    dir: &Path,
) -> Result<LoadReport, ImportError> {
    let store = LayoutStore::open_or_create(dir)?;
    let mut report = LoadReport::default();
    for digest in blobs {
        // A blob already in the store is re-hashed before it is relied on;
        // a damaged one is replaced by the verified staged copy.
        if store.has_blob(digest) && store.verify_blob(digest)? {
            report.blobs_present += 1;
            continue;
        }
        let from = staging.blob_path(digest);
        let to = store.blob_path(digest);
        let tmp = to.with_extension("linking");
        let _ = fs::remove_file(&tmp);
        // A hard link keeps the staged copy intact until the import
        // commits (so a killed import resumes without the stick), and
        // costs no second copy on disk. Across filesystems: copy.
        if fs::hard_link(&from, &tmp).is_err() {
            let file = fs::File::open(&from)
                .map_err(|e| ImportError::io_at("reading staged blob", &from, e))?;
            store.write_blob_from(file, digest, None)?;
        } else {
            fs::rename(&tmp, &to).map_err(|e| ImportError::io_at("storing blob", &to, e))?;
        }
        report.blobs_new += 1;
        crate::failpoint::failpoint("mid-load");
    }
    let blobs_dir = dir.join("blobs/sha256");
    atomic::sync_dir(&blobs_dir).map_err(|e| ImportError::io_at("syncing", &blobs_dir, e))?;
    for (name, descriptor) in staging.list_tags()? {
        store.set_tag(&name, descriptor)?;
        report.images.push((name.clone(), name));
    }
    Ok(report)
}

/// Pushes every tagged image of `staging` into the site registry, and
/// keeps in the state every other blob of the release (`blobs`), so the
/// site holds all of it (see crate::inventory). `manifest_sets` are this
/// site's manifest sets, already kept, each with whether it was new;
/// other sites' sets are among the blobs kept in `blobs/sha256/`.
pub fn load_registry(
    staging: &LayoutStore,
    target: &RegistryTarget,
    client: &RegistryClient,
    blobs: &[Digest],
    manifest_sets: &BTreeMap<Digest, bool>,
    state_dir: &Path,
) -> Result<LoadReport, ImportError> {
    let mut report = LoadReport::default();
    let mut pushed: BTreeMap<Digest, bool> = BTreeMap::new();
    for (name, descriptor) in staging.list_tags()? {
        let source = Reference::parse(&name)?;
        let dest = site_reference(&source, target)?;
        let image = client.push_image_counted(staging, &descriptor, &dest)?;
        for (digest, outcome) in image.outcomes {
            let new = outcome != BlobOutcome::AlreadyPresent;
            *pushed.entry(digest).or_default() |= new;
        }
        report.images.push((name, dest.to_string()));
    }
    let unique: BTreeSet<&Digest> = blobs.iter().collect();
    for digest in unique {
        let new = match (pushed.get(digest), manifest_sets.get(digest)) {
            (Some(new), _) | (None, Some(new)) => *new,
            // Carried, but no image reaches it: kept in the state.
            (None, None) => crate::inventory::keep_staged(
                staging,
                digest,
                &crate::inventory::kept_blob_path(state_dir, digest),
            )?,
        };
        if new {
            report.blobs_new += 1;
        } else {
            report.blobs_present += 1;
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(prefix: Option<&str>) -> RegistryTarget {
        RegistryTarget {
            url: "harbor.plant.local:8443".into(),
            plain_http: false,
            insecure_skip_tls_verify: false,
            prefix: prefix.map(str::to_string),
        }
    }

    #[test]
    fn site_references_keep_host_path_tag_and_digest() {
        let src = Reference::parse("registry.plant.example/plant/opcua-gateway:1.4.2").unwrap();
        assert_eq!(
            site_reference(&src, &target(Some("tender")))
                .unwrap()
                .to_string(),
            "harbor.plant.local:8443/tender/registry.plant.example/plant/opcua-gateway:1.4.2"
        );
        let digest = Digest::of(b"podinfo");
        let src = Reference::parse(&format!("stefanprodan/podinfo:6.14.1@{digest}")).unwrap();
        assert_eq!(
            site_reference(&src, &target(None)).unwrap().to_string(),
            format!("harbor.plant.local:8443/docker.io/stefanprodan/podinfo:6.14.1@{digest}")
        );
        let src = Reference::parse("localhost:5000/x:1").unwrap();
        assert_eq!(
            site_reference(&src, &target(None)).unwrap().to_string(),
            "harbor.plant.local:8443/localhost_5000/x:1"
        );
        assert_eq!(
            legacy_site_reference(&src, &target(Some("tender")))
                .unwrap()
                .to_string(),
            "harbor.plant.local:8443/tender/x:1"
        );
    }

    #[test]
    fn an_ipv6_registry_has_no_site_reference() {
        let src = Reference::parse("[fd00::1]:5000/plant/x:1").unwrap();
        let error = site_reference(&src, &target(None)).unwrap_err().to_string();
        assert!(error.contains("IPv6"), "{error}");
    }
}
