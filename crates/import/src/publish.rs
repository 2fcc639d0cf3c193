//! Publishing a release to its cluster: the site's side of delivery. What
//! the release is, where its images live and where its manifests are kept
//! come from the site file and state; choosing the backends and handing
//! the manifests over is `tender_deliver::deliver`'s job. Runs only after
//! every image is loaded, so a cluster never sees manifests whose images
//! are not all present.

use std::collections::BTreeMap;
use std::fs;
use tender_format::FromIo;

use tender_deliver::{DeliverError, DeliveryContext, Release, Signer, SiteImages, SiteRegistry};
use tender_format::{Digest, atomic};
use tender_oci::{Reference, RegistryClient, site_path};

use crate::error::ImportError;
use crate::load::site_reference;
use crate::site::{ImageTarget, Site};
use crate::state::{ReleaseRecord, SiteState};

/// What publishing one cluster did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    pub cluster: String,
    pub delivered: Option<Digest>,
    pub rewritten: Vec<(String, String)>,
    pub published: Vec<String>,
    /// Objects in the previous release and not in this one. Never deleted
    /// by tender (no auto-prune); reported so an operator can decide.
    pub removed_objects: Vec<String>,
}

/// Where an image is pulled from at the site, pinned by digest:
/// `HOST/<site repository>:TAG@sha256:...` (the site repository keeps the
/// source registry: `tender_oci::site_path`). `None` when the site has no
/// address for its embedded store (then nodes mirror the original names
/// instead), or the reference has no site repository (export refuses
/// those).
pub fn pinned_location(site: &Site, reference: &str, digest: &Digest) -> Option<String> {
    let source = Reference::parse(reference).ok()?;
    let placed = match &site.target {
        ImageTarget::Registry(target) => site_reference(&source, target).ok()?,
        ImageTarget::Embedded => {
            let host = site.registry_host.as_ref()?;
            let repository = site_path::site_repository(&source, None).ok()?;
            Reference::from_parts(host, &repository, source.tag(), None).ok()?
        }
    };
    Some(placed.with_digest(*digest).to_string())
}

/// The site's images as delivery sees them.
pub fn site_images(site: &Site) -> SiteImages {
    SiteImages {
        registry: match &site.target {
            ImageTarget::Registry(t) => Some(SiteRegistry {
                url: t.url.clone(),
                prefix: t.prefix.clone(),
                plain_http: t.plain_http,
                insecure_skip_tls_verify: t.insecure_skip_tls_verify,
            }),
            ImageTarget::Embedded => None,
        },
        registry_host: site.registry_host.clone(),
        store_dir: site.store_dir(),
    }
}

/// Publishes one cluster's release. `previous` is the release it replaces.
pub fn publish(
    site: &Site,
    state: &SiteState,
    record: &ReleaseRecord,
    previous: Option<&ReleaseRecord>,
    signers: &[Signer],
    created: &str,
    client: Option<&RegistryClient>,
) -> Result<Published, ImportError> {
    let config = site
        .delivery
        .get(&record.cluster)
        .cloned()
        .unwrap_or_default();
    let read = |d: &Digest| {
        let path = state.manifests_path(d);
        fs::read_to_string(&path).map_err(|e| ImportError::io_at("reading manifest set", path, e))
    };
    let manifests = read(&record.manifests)?;
    let previous = previous
        .map(|prev| read(&prev.delivered.unwrap_or(prev.manifests)))
        .transpose()?;
    // The first of the release's images with a reference wins, as the
    // manifests name it.
    let mut locations = BTreeMap::new();
    for image in &record.images {
        if !locations.contains_key(&image.reference)
            && let Some(location) = pinned_location(site, &image.reference, &image.digest)
        {
            locations.insert(image.reference.clone(), location);
        }
    }
    let release = Release {
        context: DeliveryContext {
            site: site.name.clone(),
            cluster: record.cluster.clone(),
            channel: record.channel.clone(),
            sequence: record.sequence,
            bundle_id: record.bundle_id.clone(),
            created: created.to_string(),
            imported_at: record.imported_at.clone(),
            manifest_set_digest: record.manifests,
            signers: signers.to_vec(),
        },
        manifests: &manifests,
        locations: &locations,
        previous: previous.as_deref(),
    };
    let delivered = tender_deliver::deliver(&config, &site_images(site), client, &release)
        .map_err(|source| ImportError::Deliver {
            cluster: record.cluster.clone(),
            source,
        })?;
    let digest = Digest::of(delivered.manifests.as_bytes());
    let kept = (digest != record.manifests).then_some(digest);
    if kept.is_some() {
        let path = state.manifests_path(&digest);
        atomic::write(&path, delivered.manifests.as_bytes())
            .map_err(|e| ImportError::io_at("keeping delivered manifests", &path, e))?;
    }
    Ok(Published {
        cluster: record.cluster.clone(),
        delivered: kept,
        rewritten: delivered.rewritten,
        published: delivered.published,
        removed_objects: delivered.removed_objects,
    })
}

/// Writes node mirror configuration to `<stateDir>/mirrors` for sites that
/// prefer mirrors to rewriting (`tender_deliver::write_mirror_configs`).
/// Returns the directory, or `None` when the site has no address for its
/// images.
pub fn write_mirror_configs(
    site: &Site,
    state: &SiteState,
    references: &[String],
) -> Result<Option<std::path::PathBuf>, ImportError> {
    let dir = state.dir().join("mirrors");
    match tender_deliver::write_mirror_configs(&dir, &site_images(site), references) {
        Ok(written) => Ok(written.then_some(dir)),
        // Not a cluster's delivery: the causes as they are.
        Err(DeliverError::Io(e)) => Err(ImportError::Io(e)),
        Err(DeliverError::Oci(e)) => Err(ImportError::Oci(e)),
        Err(source) => Err(ImportError::Deliver {
            cluster: "(node mirrors)".into(),
            source,
        }),
    }
}
