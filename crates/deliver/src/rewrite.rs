//! Pointing a manifest set's container images at the site.
//!
//! [`rewrite_images`] replaces the `image` of every container, init
//! container and ephemeral container of every pod-spec-bearing object
//! (Pod, PodTemplate, Deployment, StatefulSet, DaemonSet, ReplicaSet,
//! ReplicationController, Job, CronJob, and the items of `*List` kinds)
//! with what the caller's map says, and writes the set back in the
//! manifest-set canonical form (`---\n` + serde-saphyr per document, keys
//! sorted), so an unchanged set comes back byte for byte.
//!
//! [`ImageMap`] is the usual map: the images a release carries, each with
//! its site location and digest, matched the way a container runtime would
//! (`nginx` is `docker.io/library/nginx:latest`), answering
//! `REGISTRY/PATH:TAG@sha256:...` so a node pulls exactly the signed image.
//!
//! The other way to reach the site registry is to leave images alone and
//! mirror registries on the nodes (see [`crate::mirror`]).

use serde_json::Value;

use crate::error::DeliverError;

/// Where each kind keeps its pod spec (a JSON pointer).
const POD_SPECS: &[(&str, &str)] = &[
    ("Pod", "/spec"),
    ("PodTemplate", "/template/spec"),
    ("Deployment", "/spec/template/spec"),
    ("StatefulSet", "/spec/template/spec"),
    ("DaemonSet", "/spec/template/spec"),
    ("ReplicaSet", "/spec/template/spec"),
    ("ReplicationController", "/spec/template/spec"),
    ("Job", "/spec/template/spec"),
    ("CronJob", "/spec/jobTemplate/spec/template/spec"),
];

const CONTAINER_LISTS: &[&str] = &["containers", "initContainers", "ephemeralContainers"];

/// Parses a multi-document YAML stream into its non-empty documents.
pub fn parse_documents(yaml: &str) -> Result<Vec<Value>, DeliverError> {
    let docs: Vec<Value> = serde_saphyr::from_str_multiple(yaml)
        .map_err(|e| DeliverError::Manifests(format!("not valid YAML: {e}")))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// One document in the canonical form (no leading `---`, ends in `\n`).
pub fn document_to_yaml(doc: &Value) -> String {
    let mut text = serde_saphyr::to_string(doc).expect("JSON values serialize to YAML");
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// The canonical stream, as `tender_render::manifest_set::to_yaml` writes it.
pub fn documents_to_yaml(docs: &[Value]) -> String {
    let mut out = String::new();
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&document_to_yaml(doc));
    }
    out
}

/// Replaces every container image `map` knows (see the module docs).
/// Returns the rewritten stream and each distinct `(from, to)` replacement
/// in first-seen order. An image `map` answers with itself is not counted.
pub fn rewrite_images(
    yaml: &str,
    map: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Vec<(String, String)>), DeliverError> {
    let mut docs = parse_documents(yaml)?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for doc in &mut docs {
        rewrite_object(doc, map, &mut pairs, 0);
    }
    Ok((documents_to_yaml(&docs), pairs))
}

fn rewrite_object(
    doc: &mut Value,
    map: &dyn Fn(&str) -> Option<String>,
    pairs: &mut Vec<(String, String)>,
    depth: usize,
) {
    let kind = doc["kind"].as_str().unwrap_or("").to_string();
    if kind.ends_with("List") && depth < 4 {
        if let Some(items) = doc.get_mut("items").and_then(Value::as_array_mut) {
            for item in items {
                rewrite_object(item, map, pairs, depth + 1);
            }
        }
        return;
    }
    let Some((_, pointer)) = POD_SPECS.iter().find(|(k, _)| *k == kind) else {
        return;
    };
    let Some(spec) = doc.pointer_mut(pointer) else {
        return;
    };
    for list in CONTAINER_LISTS {
        let Some(containers) = spec.get_mut(*list).and_then(Value::as_array_mut) else {
            continue;
        };
        for container in containers {
            let Some(image) = container.get_mut("image") else {
                continue;
            };
            let Some(from) = image.as_str() else {
                continue;
            };
            let Some(to) = map(from) else { continue };
            if to == from {
                continue;
            }
            let pair = (from.to_string(), to.clone());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
            *image = Value::String(to);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tender_format::Digest;
    use tender_oci::Reference;

    /// The images of a release and where they live at the site.
    #[derive(Debug, Clone, Default)]
    struct ImageMap {
        /// Exact text as the manifests name it → answer.
        exact: BTreeMap<String, String>,
        /// Normalised `registry/repository:tag` → (digest, answer).
        normalized: BTreeMap<String, (Digest, String)>,
    }

    impl ImageMap {
        fn new() -> ImageMap {
            ImageMap::default()
        }

        /// Adds an image: `reference` as the release names it
        /// (`registry.plant.example/plant/app:1.4`), `location` where the site
        /// keeps it (`harbor.plant.local/tender/registry.plant.example/plant/app:1.4`, tag optional),
        /// `digest` the signed manifest digest. The answer is `location`
        /// pinned to `digest`.
        fn insert(
            &mut self,
            reference: &str,
            location: &str,
            digest: Digest,
        ) -> Result<(), DeliverError> {
            let source = Reference::parse(reference)?;
            let answer = Reference::parse(location)?.with_digest(digest).to_string();
            self.exact.insert(reference.to_string(), answer.clone());
            self.normalized.insert(key(&source), (digest, answer));
            Ok(())
        }

        /// The site location of `image`, if it is one of the release's images.
        /// An image already pinned to another digest is not ours: `None`.
        fn lookup(&self, image: &str) -> Option<String> {
            if let Some(answer) = self.exact.get(image) {
                return Some(answer.clone());
            }
            let parsed = Reference::parse(image).ok()?;
            let (digest, answer) = self.normalized.get(&key(&parsed))?;
            match parsed.digest() {
                Some(pinned) if pinned != digest => None,
                _ => Some(answer.clone()),
            }
        }

        fn len(&self) -> usize {
            self.exact.len()
        }
    }

    /// `registry/repository:tag` (or `@digest` for digest-only references).
    fn key(reference: &Reference) -> String {
        match (reference.tag(), reference.digest()) {
            (Some(tag), _) => format!("{}:{tag}", reference.name()),
            (None, Some(digest)) => format!("{}@{digest}", reference.name()),
            (None, None) => reference.name(),
        }
    }

    const SET: &str = "---
apiVersion: v1
kind: Namespace
metadata:
  name: line-a
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gw
  namespace: line-a
spec:
  template:
    spec:
      containers:
      - image: registry.plant.example/plant/opcua-gateway:1.4.2
        name: gw
      - image: nginx
        name: proxy
      initContainers:
      - image: busybox:1.36
        name: init
---
apiVersion: batch/v1
kind: CronJob
metadata:
  name: backup
  namespace: line-a
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - image: nginx
            name: b
---
apiVersion: v1
kind: Pod
metadata:
  name: debug
  namespace: line-a
spec:
  containers:
  - image: registry.plant.example/plant/opcua-gateway:1.4.2
    name: x
  ephemeralContainers:
  - image: busybox:1.36
    name: dbg
";

    fn digest(n: u8) -> Digest {
        Digest::of(&[n])
    }

    fn map() -> ImageMap {
        let mut map = ImageMap::new();
        map.insert(
            "registry.plant.example/plant/opcua-gateway:1.4.2",
            "harbor.plant.local:8443/tender/registry.plant.example/plant/opcua-gateway:1.4.2",
            digest(1),
        )
        .unwrap();
        map.insert(
            "docker.io/library/nginx:latest",
            "harbor.plant.local:8443/tender/docker.io/library/nginx:latest",
            digest(2),
        )
        .unwrap();
        map
    }

    #[test]
    fn rewrites_every_container_list_of_every_workload_kind() {
        let map = map();
        let (out, pairs) = rewrite_images(SET, &|i| map.lookup(i)).unwrap();
        let gw = format!(
            "harbor.plant.local:8443/tender/registry.plant.example/plant/opcua-gateway:1.4.2@{}",
            digest(1)
        );
        let nginx = format!(
            "harbor.plant.local:8443/tender/docker.io/library/nginx:latest@{}",
            digest(2)
        );
        assert_eq!(
            pairs,
            [
                (
                    "registry.plant.example/plant/opcua-gateway:1.4.2".to_string(),
                    gw.clone()
                ),
                ("nginx".to_string(), nginx.clone()),
            ]
        );
        let docs = parse_documents(&out).unwrap();
        let containers = &docs[1]["spec"]["template"]["spec"]["containers"];
        assert_eq!(containers[0]["image"], gw.as_str());
        assert_eq!(containers[1]["image"], nginx.as_str());
        // Not in the map: left alone.
        assert_eq!(
            docs[1]["spec"]["template"]["spec"]["initContainers"][0]["image"],
            "busybox:1.36"
        );
        assert_eq!(
            docs[2]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"],
            nginx.as_str()
        );
        assert_eq!(docs[3]["spec"]["containers"][0]["image"], gw.as_str());
        // Everything else is as it was (long strings may be folded: compare
        // documents, not text).
        let expected = SET
            .replace("registry.plant.example/plant/opcua-gateway:1.4.2", &gw)
            .replace("image: nginx", &format!("image: {nginx}"));
        assert_eq!(docs, parse_documents(&expected).unwrap());
        assert_eq!(out, documents_to_yaml(&docs));
    }

    #[test]
    fn ephemeral_containers_and_lists_are_covered() {
        let (out, pairs) = rewrite_images(SET, &|i| {
            (i == "busybox:1.36").then(|| "site/busybox:1.36".to_string())
        })
        .unwrap();
        assert_eq!(pairs.len(), 1);
        let docs = parse_documents(&out).unwrap();
        assert_eq!(
            docs[3]["spec"]["ephemeralContainers"][0]["image"],
            "site/busybox:1.36"
        );
        let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata: {name: p}\n  spec:\n    containers: [{name: c, image: a}]\n";
        let (out, pairs) = rewrite_images(list, &|_| Some("b".into())).unwrap();
        assert_eq!(pairs, [("a".to_string(), "b".to_string())]);
        assert!(out.contains("image: b"), "{out}");
    }

    #[test]
    fn canonical_input_without_changes_comes_back_byte_for_byte() {
        let (out, pairs) = rewrite_images(SET, &|_| None).unwrap();
        assert!(pairs.is_empty());
        assert_eq!(out, SET);
        let (same, pairs) = rewrite_images(SET, &|i| Some(i.to_string())).unwrap();
        assert!(pairs.is_empty(), "identity answers are not rewrites");
        assert_eq!(same, SET);
        // Non-canonical input comes back canonical: sorted keys, `---`.
        let (out, _) = rewrite_images(
            "kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\n",
            &|_| None,
        )
        .unwrap();
        assert_eq!(
            out,
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n"
        );
        assert!(rewrite_images("a: [unclosed\n", &|_| None).is_err());
    }

    #[test]
    fn image_map_matches_like_a_runtime_and_respects_pinned_digests() {
        let map = map();
        let nginx = map.lookup("docker.io/library/nginx:latest").unwrap();
        assert_eq!(map.lookup("nginx").unwrap(), nginx);
        assert_eq!(map.lookup("nginx:latest").unwrap(), nginx);
        assert_eq!(map.lookup("index.docker.io/library/nginx").unwrap(), nginx);
        assert_eq!(
            map.lookup(&format!("nginx@{}", digest(2))),
            None,
            "no tag: other key"
        );
        assert_eq!(
            map.lookup(&format!("nginx:latest@{}", digest(2))).unwrap(),
            nginx
        );
        assert_eq!(map.lookup(&format!("nginx:latest@{}", digest(9))), None);
        assert_eq!(map.lookup("nginx:1.27"), None);
        assert_eq!(map.lookup("not a reference"), None);
        assert_eq!(map.len(), 2);
        let mut bad = ImageMap::new();
        assert!(bad.insert("plant/UPPER:1", "a/b:1", digest(1)).is_err());
        assert!(bad.insert("plant/x:1", "a/b:1:2", digest(1)).is_err());
    }
}
