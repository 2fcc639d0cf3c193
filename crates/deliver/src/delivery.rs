//! The one way in: deliver a release to one cluster. Images are pinned to
//! their site location (when the cluster's `delivery` block asks for it),
//! then the manifests go to every backend the block names, in a fixed
//! order: OCI artifact, git, directory, kubectl.

use std::collections::BTreeMap;
use std::path::PathBuf;

use tender_oci::{LayoutStore, Reference, RegistryClient};

use crate::artifact::{
    ArtifactMeta, artifact_tags, build_artifact, publish_to_registry, publish_to_store,
};
use crate::config::DeliveryConfig;
use crate::error::DeliverError;
use crate::files::one_file_per_object;
use crate::{DeliveryContext, directory, git, kubectl, rewrite};

/// Where the site keeps its images: what artifacts are published into and
/// what node mirrors point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteImages {
    /// The site registry, or `None` for the embedded store.
    pub registry: Option<SiteRegistry>,
    /// The address `tender serve` answers as, if the site has one.
    pub registry_host: Option<String>,
    /// The embedded OCI layout store.
    pub store_dir: PathBuf,
}

/// A site registry, as the site file names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteRegistry {
    /// `host[:port]`.
    pub url: String,
    /// Every repository lives under this path.
    pub prefix: Option<String>,
    pub plain_http: bool,
    pub insecure_skip_tls_verify: bool,
}

/// One cluster's release, as delivery needs it.
#[derive(Debug, Clone)]
pub struct Release<'a> {
    pub context: DeliveryContext,
    /// The signed manifest set.
    pub manifests: &'a str,
    /// Each image reference as the manifests write it, and where it is
    /// pulled from at the site (pinned by digest); used when the cluster
    /// rewrites images.
    pub locations: &'a BTreeMap<String, String>,
    /// The manifests delivered by the release this one replaces.
    pub previous: Option<&'a str>,
}

/// What delivering one release did.
#[derive(Debug, Clone, Default)]
pub struct Delivered {
    /// The manifests as delivered (images rewritten or not).
    pub manifests: String,
    /// `(image as written, site location)` for every image rewritten.
    pub rewritten: Vec<(String, String)>,
    /// Where each backend put the manifests (`oci://…@sha256:…`,
    /// `git:repo#branch@commit`, `dir:…`, `kubectl:…`).
    pub published: Vec<String>,
    /// Objects in the previous release and not in this one. Never deleted
    /// (no auto-prune); reported so an operator can decide.
    pub removed_objects: Vec<String>,
}

/// Delivers `release` to its cluster as `config` says. `client` reaches the
/// site registry; without one an OCI artifact goes into the embedded store.
pub fn deliver(
    config: &DeliveryConfig,
    site: &SiteImages,
    client: Option<&RegistryClient>,
    release: &Release<'_>,
) -> Result<Delivered, DeliverError> {
    let mut out = Delivered::default();
    out.manifests = if config.rewrite_images {
        let map = |image: &str| release.locations.get(image).cloned();
        let (text, pairs) = rewrite::rewrite_images(release.manifests, &map)?;
        out.rewritten = pairs;
        text
    } else {
        release.manifests.to_string()
    };
    let files = one_file_per_object(&out.manifests)?;
    let ctx = &release.context;
    if let Some(oci) = &config.oci {
        let artifact = build_artifact(&files, &ArtifactMeta::for_delivery(ctx), oci.mode)?;
        let tags = artifact_tags(ctx);
        match (&site.registry, client) {
            (Some(target), Some(client)) => {
                let repo =
                    Reference::parse(&format!("{}/{}:{}", target.url, oci.repository, tags[0]))?;
                let digest = publish_to_registry(client, &repo, &artifact, &tags)?;
                out.published
                    .push(format!("oci://{}/{}@{digest}", target.url, oci.repository));
            }
            _ => {
                let store = LayoutStore::open_or_create(&site.store_dir)?;
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
        let outcome = git::deliver_git(git, ctx, &files)?;
        let commit = outcome.commit.unwrap_or_default();
        out.published
            .push(format!("git:{}#{}@{commit}", git.repo, git.branch));
    }
    if let Some(dir) = &config.directory {
        let outcome = directory::deliver_directory(dir, &files)?;
        out.published
            .push(format!("dir:{}", outcome.path.display()));
    }
    if let Some(kubectl) = &config.kubectl {
        kubectl::apply_manifests(kubectl, &out.manifests)?;
        out.published
            .push("kubectl:apply --server-side --field-manager=tender".into());
    }
    if let Some(previous) = release.previous {
        out.removed_objects = kubectl::removed_objects(previous, &out.manifests)?;
    }
    Ok(out)
}
