//! The export plan: every cluster rendered, its manifest set in canonical
//! form, and every image it needs. Computing the plan pulls nothing, so
//! `tender export --dry-run` and `--list-images` stop here.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tender_format::Digest;

use crate::error::ExportError;
use crate::fleet::{Cluster, Fleet};
use crate::images::{ImageUse, discover};
use crate::manifest_set::{self, Object};
use crate::render::{Tools, render_source};

/// One cluster's rendered release.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterPlan {
    pub cluster: String,
    pub site: String,
    pub tier: String,
    pub sources: Vec<String>,
    pub objects: usize,
    /// Digest of the canonical manifest set.
    pub manifests: Digest,
    #[serde(skip)]
    pub yaml: String,
    /// Images the manifests name, plus the fleet's extra images.
    pub images: Vec<String>,
    #[serde(skip)]
    pub image_uses: Vec<ImageUse>,
}

/// The whole fleet, rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub fleet: String,
    pub clusters: Vec<ClusterPlan>,
}

impl Plan {
    /// Every image of every cluster, once.
    pub fn images(&self) -> BTreeSet<String> {
        self.clusters
            .iter()
            .flat_map(|c| c.images.iter().cloned())
            .collect()
    }

    /// Distinct manifest-set blobs (identical renders share one).
    pub fn manifest_sets(&self) -> BTreeMap<Digest, &str> {
        self.clusters
            .iter()
            .map(|c| (c.manifests, c.yaml.as_str()))
            .collect()
    }

    pub fn sites(&self) -> BTreeSet<String> {
        self.clusters.iter().map(|c| c.site.clone()).collect()
    }
}

/// Renders the selected clusters (all if `only` is empty), two at a time.
pub fn plan(fleet: &Fleet, only: &[String], tools: &Tools) -> Result<Plan, ExportError> {
    for name in only {
        if fleet.cluster(name).is_none() {
            return Err(ExportError::Fleet {
                path: fleet.base_dir.join("fleet.yaml"),
                reason: format!("no cluster named {name}"),
            });
        }
    }
    let clusters: Vec<&Cluster> = fleet
        .spec
        .clusters
        .iter()
        .filter(|c| only.is_empty() || only.contains(&c.name))
        .collect();
    // Two clusters at a time: helm and kustomize are separate processes.
    let clusters = tender_format::parallel::map(&clusters, 4, |c| render_cluster(fleet, c, tools))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Plan {
        fleet: fleet.spec.name.clone(),
        clusters,
    })
}

/// Renders every source selected for one cluster into one manifest set.
pub fn render_cluster(
    fleet: &Fleet,
    cluster: &Cluster,
    tools: &Tools,
) -> Result<ClusterPlan, ExportError> {
    let mut objects: Vec<Object> = Vec::new();
    let mut sources = Vec::new();
    let set_error = |error| ExportError::ManifestSet {
        cluster: cluster.name.clone(),
        error,
    };
    for source in fleet.sources_for(cluster) {
        let rendered = render_source(fleet, cluster, source, tools)?;
        objects.extend(manifest_set::parse(&rendered.source, &rendered.text).map_err(set_error)?);
        sources.push(source.name.clone());
    }
    manifest_set::default_namespace(&mut objects, cluster.namespace.as_deref());
    manifest_set::canonical_order(&mut objects).map_err(set_error)?;
    let yaml = manifest_set::to_yaml(&objects);
    let image_uses = discover(&objects);
    let mut images: BTreeSet<String> = image_uses.iter().map(|u| u.image.clone()).collect();
    images.extend(fleet.spec.images.iter().cloned());
    Ok(ClusterPlan {
        cluster: cluster.name.clone(),
        site: cluster.site.clone(),
        tier: cluster.tier.clone(),
        sources,
        objects: objects.len(),
        manifests: Digest::of(yaml.as_bytes()),
        yaml,
        images: images.into_iter().collect(),
        image_uses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn tools() -> Tools {
        Tools::detect(Some(repo().join("scripts/helm")))
    }

    #[test]
    fn sample_fleet_renders_per_cluster() {
        let fleet = Fleet::load(&repo().join("testdata/fleet/fleet.yaml")).unwrap();
        let plan = plan(&fleet, &[], &tools()).unwrap();
        assert_eq!(plan.clusters.len(), 3);
        let a = &plan.clusters[0];
        assert_eq!(a.cluster, "plant-001-line-a");
        assert_eq!(a.sources, ["line-hmi", "historian", "plant-policies"]);
        assert!(
            a.yaml.contains("plant-001-line-a"),
            "CLUSTER_NAME substituted"
        );
        assert!(!a.yaml.contains("${CLUSTER_NAME"), "no placeholders left");
        assert!(
            a.images
                .contains(&"registry.plant.example/plant/opcua-gateway:1.4.2".to_string())
        );
        assert!(
            a.images
                .contains(&"registry.plant.example/plant/diag-tools:1.0.0".to_string())
        );
        assert_ne!(plan.clusters[0].manifests, plan.clusters[1].manifests);
        // Rendering again gives byte-identical sets.
        let again =
            render_cluster(&fleet, fleet.cluster("plant-001-line-a").unwrap(), &tools()).unwrap();
        assert_eq!(again.manifests, a.manifests);
    }
}
