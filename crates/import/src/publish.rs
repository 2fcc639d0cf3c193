//! Publishing a release to its cluster: images pinned to where they live at
//! the site, then the manifests handed over as the site file says (an OCI
//! artifact Flux or Argo CD reads, a git commit, a directory, or a
//! delegated `kubectl apply`). Runs only after every image is loaded, so a
//! cluster never sees manifests whose images are not all present.

use std::fs;
use tender_format::FromIo;

use tender_deliver::artifact::{
    ArtifactMeta, artifact_tags, build_artifact, publish_to_registry, publish_to_store,
};
use tender_deliver::files::one_file_per_object;
use tender_deliver::{DeliveryConfig, DeliveryContext, Signer};
use tender_format::{Digest, atomic};
use tender_oci::{LayoutStore, Reference, RegistryClient, site_path};

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
    let original = read(&record.manifests)?;
    let mut out = Published {
        cluster: record.cluster.clone(),
        ..Published::default()
    };
    let deliver_err = |e: tender_deliver::DeliverError| ImportError::Deliver {
        cluster: record.cluster.clone(),
        source: e,
    };

    // 1. Pin images to their site location.
    let yaml = if config.rewrite_images {
        let map = |image: &str| {
            let pinned = record.images.iter().find(|i| i.reference == image)?;
            pinned_location(site, &pinned.reference, &pinned.digest)
        };
        let (text, pairs) =
            tender_deliver::rewrite::rewrite_images(&original, &map).map_err(deliver_err)?;
        out.rewritten = pairs;
        text
    } else {
        original.clone()
    };
    let delivered = Digest::of(yaml.as_bytes());
    if delivered != record.manifests {
        let path = state.manifests_path(&delivered);
        atomic::write(&path, yaml.as_bytes())
            .map_err(|e| ImportError::io_at("keeping delivered manifests", &path, e))?;
        out.delivered = Some(delivered);
    }
    let files = one_file_per_object(&yaml).map_err(deliver_err)?;
    let ctx = DeliveryContext {
        site: site.name.clone(),
        cluster: record.cluster.clone(),
        channel: record.channel.clone(),
        sequence: record.sequence,
        bundle_id: record.bundle_id.clone(),
        created: created.to_string(),
        imported_at: record.imported_at.clone(),
        manifest_set_digest: record.manifests,
        signers: signers.to_vec(),
    };

    // 2. Hand the manifests over.
    publish_backends(site, &config, &ctx, &files, &yaml, client, &mut out).map_err(deliver_err)?;
    if let Some(prev) = previous {
        let before = read(&prev.delivered.unwrap_or(prev.manifests))?;
        out.removed_objects =
            tender_deliver::kubectl::removed_objects(&before, &yaml).map_err(deliver_err)?;
    }
    Ok(out)
}

fn publish_backends(
    site: &Site,
    config: &DeliveryConfig,
    ctx: &DeliveryContext,
    files: &[(String, Vec<u8>)],
    yaml: &str,
    client: Option<&RegistryClient>,
    out: &mut Published,
) -> Result<(), tender_deliver::DeliverError> {
    if let Some(oci) = &config.oci {
        let artifact = build_artifact(files, &ArtifactMeta::for_delivery(ctx), oci.mode)?;
        let tags = artifact_tags(ctx);
        match (&site.target, client) {
            (ImageTarget::Registry(target), Some(client)) => {
                let repo =
                    Reference::parse(&format!("{}/{}:{}", target.url, oci.repository, tags[0]))?;
                let digest = publish_to_registry(client, &repo, &artifact, &tags)?;
                out.published
                    .push(format!("oci://{}/{}@{digest}", target.url, oci.repository));
            }
            _ => {
                let store = LayoutStore::open_or_create(site.store_dir())?;
                let host = site
                    .registry_host
                    .clone()
                    .unwrap_or_else(|| "tender.local".into());
                let names: Vec<String> = tags
                    .iter()
                    .map(|t| format!("{host}/{}:{t}", oci.repository))
                    .collect();
                let d = publish_to_store(&store, &artifact, &names)?;
                out.published
                    .push(format!("oci://{host}/{}@{}", oci.repository, d.digest));
            }
        }
    }
    if let Some(git) = &config.git {
        let outcome = tender_deliver::git::deliver_git(git, ctx, files)?;
        let commit = outcome.commit.unwrap_or_default();
        out.published
            .push(format!("git:{}#{}@{commit}", git.repo, git.branch));
    }
    if let Some(dir) = &config.directory {
        let outcome = tender_deliver::directory::deliver_directory(dir, files)?;
        out.published
            .push(format!("dir:{}", outcome.path.display()));
    }
    if let Some(kubectl) = &config.kubectl {
        tender_deliver::kubectl::apply_manifests(kubectl, yaml)?;
        out.published
            .push("kubectl:apply --server-side --field-manager=tender".into());
    }
    Ok(())
}

/// Writes registry mirror configuration for the nodes, for sites that
/// prefer mirrors to rewriting: `<stateDir>/mirrors/containerd/<host>/hosts.toml`
/// and `<stateDir>/mirrors/k3s-registries.yaml`, one entry per source
/// registry the site's images come from. Each sends its registry's pulls
/// to that registry's site repositories (`[prefix/]<host component>/...`):
/// containerd by a path with `override_path`, k3s by a `rewrite` rule.
/// Returns the directory, or `None` when the site has no address for its
/// images.
pub fn write_mirror_configs(
    site: &Site,
    state: &SiteState,
    references: &[String],
) -> Result<Option<std::path::PathBuf>, ImportError> {
    let (base, prefix, plain_http, insecure) = match &site.target {
        ImageTarget::Registry(t) => (
            t.url.clone(),
            t.prefix.clone(),
            t.plain_http,
            t.insecure_skip_tls_verify,
        ),
        // `tender serve` answers for the same site repositories.
        ImageTarget::Embedded => match &site.registry_host {
            Some(host) => (host.clone(), None, false, false),
            None => return Ok(None),
        },
    };
    let hosts: std::collections::BTreeSet<String> = references
        .iter()
        .filter_map(|r| Reference::parse(r).ok())
        .map(|r| r.registry().to_string())
        .collect();
    let dir = state.dir().join("mirrors");
    let io = |e| ImportError::io_at("writing mirror configuration", &dir, e);
    let mut mirrors = Vec::new();
    for host in &hosts {
        let component = site_path::host_component(host)?;
        let url = match &prefix {
            Some(prefix) => format!("{base}/{prefix}/{component}"),
            None => format!("{base}/{component}"),
        };
        let path = dir
            .join("containerd")
            .join(tender_deliver::mirror::containerd_hosts_path(host));
        atomic::create_dir_all(path.parent().expect("has a parent")).map_err(io)?;
        let text = tender_deliver::mirror::containerd_hosts_toml(host, &url, plain_http, insecure);
        atomic::write(&path, text.as_bytes()).map_err(io)?;
        let url = if plain_http {
            format!("http://{url}")
        } else {
            url
        };
        mirrors.push((host.clone(), url));
    }
    let text = tender_deliver::mirror::k3s_registries_yaml(&mirrors, insecure);
    atomic::write(&dir.join("k3s-registries.yaml"), text.as_bytes()).map_err(io)?;
    Ok(Some(dir))
}
