//! The store's `index.json` seen as repositories of a registry.
//!
//! Every `index.json` entry is named by a full reference
//! (`registry.plant.example/plant/opcua-gateway:1.4.2`). Its repository is
//! served under:
//!
//! * its site repository (`tender_oci::site_path`: the registry host, `:`
//!   written `_`, then the path: `registry.plant.example/plant/opcua-gateway`,
//!   `localhost_5000/tools/probe`), which is what import pins manifests to
//!   and what the mirror configuration it writes asks for;
//! * its full name (`localhost:5000/tools/probe`), and the path under
//!   containerd's `?ns=<registry>` (a mirror configured without a path);
//! * the path alone (`plant/opcua-gateway`), as releases imported by an
//!   older tender were pinned and as delivery artifacts are named
//!   (`oci://<registryHost>/<repository>`), when one registry holds that
//!   path. When several do, the path alone serves by digest only (any
//!   manifest or blob one of them reaches: a digest names one content,
//!   so old pinned references keep pulling), and a tag asked for by the
//!   path alone is refused with the site repositories to ask instead.
//!
//! `_catalog` lists the site repositories.
//!
//! Access: a repository serves only the manifests and blobs reachable from
//! its own tags ([`LayoutStore::walk_image`]), as a registry with per-repo
//! blob access does, though the store holds every repository's blobs in one
//! directory.

use std::collections::{BTreeMap, HashMap};

use tender_format::Digest;
use tender_oci::media::is_manifest;
use tender_oci::{Descriptor, LayoutStore, Manifest, OciError, Reference, site_path};

/// A manifest or blob a repository may serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Content {
    pub media_type: String,
    pub size: u64,
}

/// One repository: its tags, what they reach, and who refers to what.
#[derive(Debug, Default)]
pub(crate) struct Repo {
    /// `plant/opcua-gateway` (without the registry).
    pub path: String,
    /// `registry.plant.example/plant/opcua-gateway`: the site repository.
    pub site: String,
    /// Tag → the `index.json` descriptor (media type, digest, size).
    pub tags: BTreeMap<String, Descriptor>,
    /// Everything reachable from the tags (and from digest-only entries).
    pub content: HashMap<Digest, Content>,
    /// Subject digest → descriptors of this repository's manifests whose
    /// `subject` it is, sorted by digest (the OCI 1.1 referrers API).
    pub referrers: HashMap<Digest, Vec<Descriptor>>,
    /// For a path held under several registries, asked for by the path
    /// alone: their site repositories. Such a view has no tags.
    pub shared_by: Vec<String>,
}

impl Repo {
    /// The manifest or index `digest`, if this repository reaches it.
    pub fn manifest(&self, digest: &Digest) -> Option<&Content> {
        self.content
            .get(digest)
            .filter(|c| is_manifest(&c.media_type))
    }
}

/// The repositories of one version of `index.json`.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    /// Full name (`registry/path`) → repository.
    repos: BTreeMap<String, Repo>,
    /// Site repository → the full name it serves.
    site: HashMap<String, String>,
    /// Path → the full name it serves, where one registry holds the path.
    short: HashMap<String, String>,
    /// Path held under several registries → all of them, by digest only.
    shared: HashMap<String, Repo>,
    /// What `_catalog` lists, sorted.
    listed: Vec<String>,
    /// Entries not served and names shadowed, for the log.
    pub warnings: Vec<String>,
}

impl Catalog {
    /// Reads `index.json` and walks every image. Fails only if `index.json`
    /// itself cannot be read; an entry that cannot be served (not a full
    /// reference, a missing or damaged manifest) is left out with a warning.
    pub fn load(store: &LayoutStore) -> Result<Catalog, OciError> {
        let entries = store.list_tags()?;
        let mut catalog = Catalog::default();
        // Images shared by several names are walked once.
        let mut walked: HashMap<Digest, Result<Vec<Descriptor>, String>> = HashMap::new();
        for (ref_name, descriptor) in entries {
            let reference = match full_reference(&ref_name) {
                Ok(reference) => reference,
                Err(reason) => {
                    catalog.warn(format!(
                        "index.json entry {ref_name:?} is not served: {reason}"
                    ));
                    continue;
                }
            };
            if let Some(pinned) = reference.digest()
                && *pinned != descriptor.digest
            {
                catalog.warn(format!(
                    "index.json entry {ref_name:?} is not served: it points at {}",
                    descriptor.digest
                ));
                continue;
            }
            let reachable = walked
                .entry(descriptor.digest)
                .or_insert_with(|| store.walk_image(&descriptor).map_err(|e| e.to_string()));
            let reachable = match reachable {
                Ok(reachable) => reachable,
                Err(reason) => {
                    let reason = reason.clone();
                    catalog.warn(format!(
                        "index.json entry {ref_name:?} is not served: {reason}"
                    ));
                    continue;
                }
            };
            let site = match site_path::site_repository(&reference, None) {
                Ok(site) => site,
                Err(e) => {
                    catalog.warn(format!("index.json entry {ref_name:?} is not served: {e}"));
                    continue;
                }
            };
            let repo = catalog
                .repos
                .entry(reference.name())
                .or_insert_with(|| Repo {
                    path: reference.repository().to_string(),
                    site,
                    ..Repo::default()
                });
            if let Some(tag) = reference.tag() {
                // Like LayoutStore::resolve: the first entry of a name wins.
                repo.tags
                    .entry(tag.to_string())
                    .or_insert_with(|| descriptor.clone());
            }
            for d in reachable.iter() {
                repo.content.entry(d.digest).or_insert_with(|| Content {
                    media_type: d.media_type.clone(),
                    size: d.size,
                });
            }
        }
        catalog.find_referrers(store);
        catalog.name_repositories();
        Ok(catalog)
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// Fills every repository's referrers from its manifests' `subject`s.
    fn find_referrers(&mut self, store: &LayoutStore) {
        // digest → (subject, the descriptor a referrers list shows).
        let mut parsed: HashMap<Digest, Option<(Digest, Descriptor)>> = HashMap::new();
        let mut warnings = Vec::new();
        for repo in self.repos.values_mut() {
            for (digest, content) in &repo.content {
                if !is_manifest(&content.media_type) {
                    continue;
                }
                let entry = parsed.entry(*digest).or_insert_with(|| {
                    let descriptor = Descriptor::new(&content.media_type, *digest, content.size);
                    match store.read_manifest(&descriptor) {
                        Ok((_, manifest)) => referrer_entry(descriptor, &manifest),
                        Err(e) => {
                            warnings.push(format!("manifest {digest}: {e}"));
                            None
                        }
                    }
                });
                if let Some((subject, referrer)) = entry {
                    repo.referrers
                        .entry(*subject)
                        .or_default()
                        .push(referrer.clone());
                }
            }
            for list in repo.referrers.values_mut() {
                list.sort_by_key(|d| d.digest);
            }
        }
        self.warnings.extend(warnings);
    }

    /// Site repositories, short names, and the `_catalog` listing.
    fn name_repositories(&mut self) {
        let mut warnings = Vec::new();
        let mut by_path: BTreeMap<&str, Vec<(&String, &Repo)>> = BTreeMap::new();
        for (full, repo) in &self.repos {
            match self.site.get(&repo.site) {
                None => {
                    self.site.insert(repo.site.clone(), full.clone());
                    self.listed.push(repo.site.clone());
                }
                // Only registry hosts that differ in case meet here.
                Some(first) => warnings.push(format!(
                    "{full:?} and {first:?} have one site repository {:?}, served as {first:?} \
                     (first in sorted order); use the full name {full:?} for the other",
                    repo.site
                )),
            }
            by_path.entry(&repo.path).or_default().push((full, repo));
        }
        for (path, repos) in by_path {
            if let [(full, _)] = repos.as_slice() {
                self.short.insert(path.to_string(), full.to_string());
                continue;
            }
            let shared_by: Vec<String> = repos.iter().map(|(_, r)| r.site.clone()).collect();
            warnings.push(format!(
                "repository path {path:?} is in the store under more than one registry; \
                 {path:?} alone serves their manifests and blobs by digest only, tags by \
                 {}",
                shared_by.join(", ")
            ));
            let mut view = Repo {
                path: path.to_string(),
                shared_by,
                ..Repo::default()
            };
            for (_, repo) in repos {
                for (digest, content) in &repo.content {
                    view.content
                        .entry(*digest)
                        .or_insert_with(|| content.clone());
                }
                for (subject, list) in &repo.referrers {
                    let merged = view.referrers.entry(*subject).or_default();
                    merged.extend(list.iter().cloned());
                }
            }
            for list in view.referrers.values_mut() {
                list.sort_by_key(|d| d.digest);
                list.dedup_by_key(|d| d.digest);
            }
            self.shared.insert(path.to_string(), view);
        }
        self.listed.sort();
        self.warnings.extend(warnings);
    }

    /// The repository a request names: a site repository or full name,
    /// else `ns/name` when containerd says which registry it mirrors
    /// (`?ns=`), else a path alone.
    pub fn lookup(&self, name: &str, ns: Option<&str>) -> Option<&Repo> {
        let full = self.site.get(name).map_or(name, String::as_str);
        if let Some(repo) = self.repos.get(full) {
            return Some(repo);
        }
        if let Some(ns) = ns {
            let ns = match ns {
                "index.docker.io" | "registry-1.docker.io" => "docker.io",
                other => other,
            };
            if let Some(repo) = self.repos.get(&format!("{ns}/{name}")) {
                return Some(repo);
            }
        }
        match self.short.get(name) {
            Some(full) => self.repos.get(full),
            None => self.shared.get(name),
        }
    }

    /// The names `_catalog` lists, sorted.
    pub fn listed(&self) -> &[String] {
        &self.listed
    }

    pub fn repository_count(&self) -> usize {
        self.repos.len()
    }

    pub fn tag_count(&self) -> usize {
        self.repos.values().map(|r| r.tags.len()).sum()
    }
}

/// Parses an `index.json` name that must be a full reference: it names its
/// registry (so `v1` or `nginx:1`, which Docker would read as
/// `docker.io/library/...`, are refused rather than guessed).
fn full_reference(ref_name: &str) -> Result<Reference, String> {
    let reference = Reference::parse(ref_name).map_err(|e| e.to_string())?;
    let explicit = ref_name
        .strip_prefix(reference.registry())
        .is_some_and(|rest| rest.starts_with('/'));
    if !explicit {
        return Err(
            "not a full image reference (registry/repository:tag), as tender's store names images"
                .into(),
        );
    }
    Ok(reference)
}

/// For a manifest with a `subject`: the subject's digest and the descriptor
/// a referrers list shows (artifactType: the manifest's, else an image
/// manifest's config media type, as the distribution spec says; the
/// manifest's annotations).
fn referrer_entry(mut descriptor: Descriptor, manifest: &Manifest) -> Option<(Digest, Descriptor)> {
    let subject = manifest.subject()?.digest;
    let (artifact_type, annotations) = match manifest {
        Manifest::Image(m) => (
            m.artifact_type
                .clone()
                .or_else(|| Some(m.config.media_type.clone())),
            m.annotations.clone(),
        ),
        Manifest::Index(m) => (m.artifact_type.clone(), m.annotations.clone()),
        Manifest::Artifact(m) => (m.artifact_type.clone(), Default::default()),
    };
    descriptor.artifact_type = artifact_type;
    descriptor.annotations = annotations;
    Some((subject, descriptor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tender_oci::media::{OCI_CONFIG, OCI_EMPTY, OCI_LAYER_TAR, OCI_MANIFEST};

    fn image(store: &LayoutStore, layer: &[u8]) -> Descriptor {
        let layer_d = store.put_blob_bytes(layer).unwrap();
        let config = br#"{"architecture":"amd64","os":"linux"}"#;
        let config_d = store.put_blob_bytes(config).unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_d}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_TAR}","digest":"{layer_d}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        store.put_blob_bytes(manifest.as_bytes()).unwrap();
        Descriptor::of_bytes(OCI_MANIFEST, manifest.as_bytes())
    }

    fn referrer(store: &LayoutStore, subject: &Descriptor) -> Descriptor {
        let empty = store.put_blob_bytes(b"{}").unwrap();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"{OCI_EMPTY}","digest":"{empty}","size":2}},"layers":[],"subject":{},"annotations":{{"a":"b"}}}}"#,
            serde_json::to_string(subject).unwrap()
        );
        store.put_blob_bytes(manifest.as_bytes()).unwrap();
        Descriptor::of_bytes(OCI_MANIFEST, manifest.as_bytes())
    }

    #[test]
    fn repositories_tags_reachability_and_referrers() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let one = image(&store, b"one");
        let two = image(&store, b"two");
        let sbom = referrer(&store, &one);
        store
            .set_tag("reg.example/plant/one:1.0", one.clone())
            .unwrap();
        store
            .set_tag("reg.example/plant/one:sbom", sbom.clone())
            .unwrap();
        store
            .set_tag("reg.example/plant/two:2.0", two.clone())
            .unwrap();
        store.set_tag("v1", two.clone()).unwrap();
        let catalog = Catalog::load(&store).unwrap();
        assert_eq!(
            catalog.listed(),
            ["reg.example/plant/one", "reg.example/plant/two"]
        );
        assert_eq!(catalog.repository_count(), 2);
        assert_eq!(catalog.tag_count(), 3);
        assert_eq!(catalog.warnings.len(), 1, "{:?}", catalog.warnings);
        assert!(catalog.warnings[0].contains("\"v1\""));

        let repo = catalog.lookup("plant/one", None).unwrap();
        assert!(std::ptr::eq(
            repo,
            catalog.lookup("reg.example/plant/one", None).unwrap()
        ));
        assert_eq!(repo.tags["1.0"].digest, one.digest);
        assert!(repo.manifest(&one.digest).is_some());
        assert!(repo.content.contains_key(&Digest::of(b"one")));
        // Not another repository's layer, and a layer is not a manifest.
        assert!(!repo.content.contains_key(&Digest::of(b"two")));
        assert!(repo.manifest(&Digest::of(b"one")).is_none());
        let refs = &repo.referrers[&one.digest];
        assert_eq!(refs.len(), 1);
        assert_eq!(refs[0].digest, sbom.digest);
        assert_eq!(
            refs[0].artifact_type.as_deref(),
            Some("application/vnd.example.sbom")
        );
        assert_eq!(refs[0].annotations["a"], "b");
        assert!(catalog.lookup("plant/three", None).is_none());
        assert!(catalog.lookup("library/v1", None).is_none());
    }

    #[test]
    fn same_path_under_two_registries() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let a = image(&store, b"a");
        let b = image(&store, b"b");
        let sbom = referrer(&store, &b);
        store
            .set_tag("b.example:5000/plant/x:1", b.clone())
            .unwrap();
        store
            .set_tag("b.example:5000/plant/x:sbom", sbom.clone())
            .unwrap();
        store.set_tag("a.example/plant/x:1", a.clone()).unwrap();
        let catalog = Catalog::load(&store).unwrap();
        assert_eq!(
            catalog.listed(),
            ["a.example/plant/x", "b.example_5000/plant/x"]
        );
        assert_eq!(catalog.warnings.len(), 1, "{:?}", catalog.warnings);
        assert!(
            catalog.warnings[0].contains("a.example/plant/x, b.example_5000/plant/x"),
            "{}",
            catalog.warnings[0]
        );
        let tag = |repo: &Repo| repo.tags["1"].digest;
        // Each site repository, full name and ?ns= is its own image.
        for (name, ns, expected) in [
            ("a.example/plant/x", None, a.digest),
            ("b.example_5000/plant/x", None, b.digest),
            ("b.example:5000/plant/x", None, b.digest),
            ("b.example_5000/plant/x", Some("b.example:5000"), b.digest),
            ("plant/x", Some("b.example:5000"), b.digest),
            ("plant/x", Some("a.example"), a.digest),
        ] {
            let repo = catalog.lookup(name, ns).unwrap();
            assert_eq!(tag(repo), expected, "{name} ns={ns:?}");
            assert!(repo.shared_by.is_empty());
        }
        // The path alone: both, by digest only.
        for ns in [None, Some("elsewhere.example")] {
            let shared = catalog.lookup("plant/x", ns).unwrap();
            assert!(shared.tags.is_empty());
            assert_eq!(
                shared.shared_by,
                ["a.example/plant/x", "b.example_5000/plant/x"]
            );
            assert!(shared.manifest(&a.digest).is_some());
            assert!(shared.manifest(&b.digest).is_some());
            assert!(shared.content.contains_key(&Digest::of(b"a")));
            assert!(shared.content.contains_key(&Digest::of(b"b")));
            assert_eq!(shared.referrers[&b.digest][0].digest, sbom.digest);
        }
        // A site repository does not reach the other registry's image.
        let only_a = catalog.lookup("a.example/plant/x", None).unwrap();
        assert!(only_a.manifest(&b.digest).is_none());
        assert!(!only_a.content.contains_key(&Digest::of(b"b")));
    }

    #[test]
    fn a_path_one_registry_holds_is_served_alone_too() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let hub = image(&store, b"hub");
        let local = image(&store, b"local");
        store
            .set_tag("docker.io/library/nginx:1", hub.clone())
            .unwrap();
        store
            .set_tag("localhost:5000/tools/probe:2", local.clone())
            .unwrap();
        store
            .set_tag("[fd00::1]:5000/plant/x:1", local.clone())
            .unwrap();
        let catalog = Catalog::load(&store).unwrap();
        assert_eq!(
            catalog.listed(),
            ["docker.io/library/nginx", "localhost_5000/tools/probe"]
        );
        assert_eq!(catalog.warnings.len(), 1, "{:?}", catalog.warnings);
        assert!(
            catalog.warnings[0].contains("IPv6"),
            "{:?}",
            catalog.warnings
        );
        for name in ["library/nginx", "docker.io/library/nginx"] {
            assert_eq!(
                catalog.lookup(name, None).unwrap().tags["1"].digest,
                hub.digest
            );
        }
        for name in [
            "tools/probe",
            "localhost_5000/tools/probe",
            "localhost:5000/tools/probe",
        ] {
            assert_eq!(
                catalog.lookup(name, None).unwrap().tags["2"].digest,
                local.digest
            );
        }
        assert_eq!(
            catalog
                .lookup("library/nginx", Some("registry-1.docker.io"))
                .unwrap()
                .tags["1"]
                .digest,
            hub.digest
        );
        assert!(catalog.lookup("plant/x", None).is_none());
    }

    #[test]
    fn a_damaged_image_is_left_out_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::open_or_create(dir.path()).unwrap();
        let good = image(&store, b"good");
        let bad = image(&store, b"bad");
        store.set_tag("reg.example/x/good:1", good).unwrap();
        store.set_tag("reg.example/x/bad:1", bad.clone()).unwrap();
        std::fs::remove_file(store.blob_path(&bad.digest)).unwrap();
        let catalog = Catalog::load(&store).unwrap();
        assert_eq!(catalog.listed(), ["reg.example/x/good"]);
        assert_eq!(catalog.warnings.len(), 1);
        assert!(catalog.warnings[0].contains("reg.example/x/bad:1"));
    }
}
