//! The export plan: every cluster rendered, its manifest set in canonical
//! form, and every image it needs. Computing the plan pulls nothing, so
//! `tender export --dry-run` and `--list-images` stop here.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use tender_format::Digest;

use crate::error::RenderError;
use crate::fleet::{Cluster, Fleet};
use crate::images::{ImageUse, discover};
use crate::manifest_set::{self, Object};
use crate::render::{Renderer, Tools};
use crate::substitute::placeholders;

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
    /// What this cluster's render warns about (gathered into `Plan::warnings`).
    #[serde(skip)]
    pub warnings: Vec<Warning>,
}

/// Something the user should know about a render that is not an error:
/// output that tender no longer substitutes, or a chart that renders
/// differently each time. One warning covers every cluster it applies to,
/// whatever namespace the object has there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Warning {
    /// `unsubstituted` or `unreproducible`.
    pub kind: &'static str,
    pub source: String,
    /// `group/kind name` of each object concerned.
    pub objects: Vec<String>,
    /// The namespaces those objects have, in the clusters concerned.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// The `${...}` left in the objects (`unsubstituted` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub placeholders: Vec<String>,
    pub clusters: Vec<String>,
}

/// `a`, `a, b`, `a, b and 3 more`.
fn few(items: &[String]) -> String {
    match items {
        [] | [_] | [_, _] => items.join(", "),
        [first, second, rest @ ..] => format!("{first}, {second} and {} more", rest.len()),
    }
}

/// The first few placeholders, so a chart full of shell scripts still
/// gets a readable line (`--json` lists them all).
fn some_placeholders(items: &[String]) -> String {
    const SHOWN: usize = 6;
    if items.len() <= SHOWN {
        return items.join(" ");
    }
    format!(
        "{} and {} more",
        items[..SHOWN].join(" "),
        items.len() - SHOWN
    )
}

impl Warning {
    /// One line for the log.
    pub fn message(&self) -> String {
        let plural = |n: usize, word: &str| {
            if n == 1 {
                word.to_string()
            } else {
                format!("{word}s")
            }
        };
        let clusters = format!(
            "{} {}",
            plural(self.clusters.len(), "cluster"),
            few(&self.clusters)
        );
        let namespaces = if self.namespaces.is_empty() {
            String::new()
        } else {
            format!(
                " in {} {}",
                plural(self.namespaces.len(), "namespace"),
                few(&self.namespaces)
            )
        };
        let objects = self.objects.join(", ");
        match self.kind {
            "unsubstituted" => format!(
                "source {} ({clusters}): {objects}{namespaces} keeps {} as Helm rendered it: \
                 tender no longer substitutes Helm output. Pass per-cluster values through the \
                 values files, set `substitute: true` on the source to substitute the output \
                 as before, or `substitute: false` to keep it and silence this warning",
                self.source,
                some_placeholders(&self.placeholders)
            ),
            _ => format!(
                "source {} ({clusters}): two Helm renders of the same inputs differ in \
                 {objects}{namespaces} (random names or values in the chart?), so every export \
                 gets new manifest digests",
                self.source
            ),
        }
    }
}

/// The whole fleet, rendered.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub fleet: String,
    pub clusters: Vec<ClusterPlan>,
    /// Every cluster's warnings, each once with the clusters it concerns.
    pub warnings: Vec<Warning>,
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
pub fn plan(fleet: &Fleet, only: &[String], tools: &Tools) -> Result<Plan, RenderError> {
    for name in only {
        if fleet.cluster(name).is_none() {
            return Err(RenderError::Fleet {
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
    let renderer = Renderer::new(tools.clone());
    // Two clusters at a time: helm and kustomize are separate processes.
    let clusters =
        tender_format::parallel::map(&clusters, 4, |c| render_cluster(fleet, c, &renderer))
            .into_iter()
            .collect::<Result<Vec<_>, _>>()?;
    let warnings = gather(&clusters);
    Ok(Plan {
        fleet: fleet.spec.name.clone(),
        clusters,
        warnings,
    })
}

/// The clusters' warnings, those alike merged into one naming all their
/// clusters and namespaces, so a thousand clusters do not print a
/// thousand lines.
fn gather(clusters: &[ClusterPlan]) -> Vec<Warning> {
    let mut merged: BTreeMap<Warning, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for c in clusters {
        for w in &c.warnings {
            let key = Warning {
                namespaces: Vec::new(),
                clusters: Vec::new(),
                ..w.clone()
            };
            let (namespaces, names) = merged.entry(key).or_default();
            namespaces.extend(w.namespaces.iter().cloned());
            names.push(c.cluster.clone());
        }
    }
    merged
        .into_iter()
        .map(|(w, (namespaces, clusters))| Warning {
            namespaces: namespaces.into_iter().collect(),
            clusters,
            ..w
        })
        .collect()
}

/// Renders every source selected for one cluster into one manifest set.
pub fn render_cluster(
    fleet: &Fleet,
    cluster: &Cluster,
    renderer: &Renderer,
) -> Result<ClusterPlan, RenderError> {
    let mut objects: Vec<Object> = Vec::new();
    let mut sources = Vec::new();
    let mut warnings = Vec::new();
    let set_error = |error| RenderError::ManifestSet {
        cluster: cluster.name.clone(),
        error,
    };
    for source in fleet.sources_for(cluster) {
        let rendered = renderer.render_source(fleet, cluster, source)?;
        let mut parsed =
            manifest_set::parse(&rendered.source, &rendered.text).map_err(set_error)?;
        manifest_set::default_namespace(&mut parsed, cluster.namespace.as_deref());
        if rendered.unsubstituted_by_default {
            warnings.extend(leftover_placeholders(&source.name, cluster, &parsed));
        }
        if !rendered.unstable.is_empty() {
            let namespaces: BTreeSet<String> = rendered
                .unstable
                .iter()
                .map(|(_, ns)| ns.clone())
                .filter(|ns| !ns.is_empty())
                .collect();
            warnings.push(Warning {
                kind: "unreproducible",
                source: source.name.clone(),
                objects: rendered.unstable.iter().map(|(o, _)| o.clone()).collect(),
                namespaces: namespaces.into_iter().collect(),
                placeholders: Vec::new(),
                clusters: vec![cluster.name.clone()],
            });
        }
        objects.extend(parsed);
        sources.push(source.name.clone());
    }
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
        warnings,
    })
}

/// One warning per object whose strings still hold `${...}` that tender
/// would once have substituted.
fn leftover_placeholders(source: &str, cluster: &Cluster, objects: &[Object]) -> Vec<Warning> {
    fn strings<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(items) => items.iter().for_each(|i| strings(i, out)),
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.push(k);
                    strings(v, out);
                }
            }
            _ => {}
        }
    }
    let mut warnings = Vec::new();
    for o in objects {
        let mut texts = Vec::new();
        strings(&o.value, &mut texts);
        let mut found: Vec<String> = Vec::new();
        for p in texts.into_iter().flat_map(placeholders) {
            if !found.contains(&p) {
                found.push(p);
            }
        }
        if !found.is_empty() {
            warnings.push(Warning {
                kind: "unsubstituted",
                source: source.to_string(),
                objects: vec![o.label()],
                namespaces: [o.namespace()]
                    .into_iter()
                    .filter(|ns| !ns.is_empty())
                    .map(str::to_string)
                    .collect(),
                placeholders: found,
                clusters: vec![cluster.name.clone()],
            });
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    #[test]
    fn a_long_list_of_placeholders_is_cut_to_a_readable_line() {
        let few: Vec<String> = (0..6).map(|i| format!("${{V{i}}}")).collect();
        assert_eq!(some_placeholders(&few), few.join(" "));
        let many: Vec<String> = (0..31).map(|i| format!("${{V{i}}}")).collect();
        assert_eq!(
            some_placeholders(&many),
            "${V0} ${V1} ${V2} ${V3} ${V4} ${V5} and 25 more"
        );
    }

    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    fn tools() -> Tools {
        Tools {
            helm: repo().join("scripts/helm"),
            kustomize: None,
            kubectl: PathBuf::from("kubectl"),
        }
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
        let renderer = Renderer::new(tools());
        let again = render_cluster(
            &fleet,
            fleet.cluster("plant-001-line-a").unwrap(),
            &renderer,
        )
        .unwrap();
        assert_eq!(again.manifests, a.manifests);
    }

    /// The sample's three clusters name two overlays (canary, production):
    /// kustomize runs twice, not three times, and each cluster still gets
    /// its own variables in the shared build's output.
    #[test]
    fn each_kustomize_directory_is_built_once() {
        use std::os::unix::fs::PermissionsExt;
        let scratch = tempfile::tempdir().unwrap();
        let log = scratch.path().join("builds.log");
        let wrapper = scratch.path().join("kustomize");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\necho \"$2\" >> '{}'\nexec kubectl kustomize \"$2\"\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let tools = Tools {
            kustomize: Some(wrapper),
            ..tools()
        };
        let fleet = Fleet::load(&repo().join("testdata/fleet/fleet.yaml")).unwrap();
        let plan = plan(&fleet, &[], &tools).unwrap();
        let mut built: Vec<String> = std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .map(|l| l.rsplit('/').next().unwrap().to_string())
            .collect();
        built.sort();
        assert_eq!(built, ["canary", "production"]);
        let b = &plan.clusters[1];
        let assembly = &plan.clusters[2];
        assert_eq!(
            (b.cluster.as_str(), assembly.cluster.as_str()),
            ("plant-001-line-b", "plant-002-assembly")
        );
        assert!(b.yaml.contains("historian") && assembly.yaml.contains("historian"));
        assert_ne!(b.manifests, assembly.manifests);
    }
}
