//! A manifest set as files, the shape the git and directory backends
//! write: one file per object, `<kind>-<namespace>-<name>.yaml` (kind in
//! lowercase; cluster-scoped objects have no namespace part), each holding
//! the object's canonical YAML. One object per file gives readable `git
//! diff`s and lets an operator see at a glance what a cluster runs. Flux
//! (a generated kustomization) and Argo CD (a directory source) read every
//! `.yaml` file of the directory, so no index file is needed.
//!
//! Names are made of `[A-Za-z0-9._-]` (anything else, such as the `:` of
//! `system:controller`, becomes `_`). Two objects that would share a name
//! (the same kind and name in two API groups) are told apart by the group,
//! then by a counter, so no object is ever lost.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::DeliverError;
use crate::rewrite::{document_to_yaml, parse_documents};

/// The one file of the OCI artifact's layer.
#[cfg(test)]
pub const SINGLE_FILE: &str = "manifests.yaml";

/// Relative path → content.
pub type Files = Vec<(String, Vec<u8>)>;

/// One file per object (see the module docs), in document order.
pub fn one_file_per_object(yaml: &str) -> Result<Files, DeliverError> {
    let docs = parse_documents(yaml)?;
    let mut taken = BTreeSet::new();
    let mut out = Vec::with_capacity(docs.len());
    for (index, doc) in docs.iter().enumerate() {
        if !doc.is_object() {
            return Err(DeliverError::Manifests(format!(
                "document {index} is not a mapping"
            )));
        }
        let name = unique_name(doc, &mut taken);
        out.push((name, document_to_yaml(doc).into_bytes()));
    }
    Ok(out)
}

/// The whole stream as one `manifests.yaml`.
#[cfg(test)]
pub fn single_file(yaml: &str) -> Files {
    vec![(SINGLE_FILE.to_string(), yaml.as_bytes().to_vec())]
}

fn unique_name(doc: &Value, taken: &mut BTreeSet<String>) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let kind = text(&doc["kind"]).to_ascii_lowercase();
    let namespace = text(&doc["metadata"]["namespace"]);
    let name = text(&doc["metadata"]["name"]);
    let group = text(&doc["apiVersion"])
        .rsplit_once('/')
        .map_or(String::new(), |(g, _)| g.to_string());
    let mut parts = vec![sanitize(&kind)];
    if !namespace.is_empty() {
        parts.push(sanitize(&namespace));
    }
    parts.push(sanitize(&name));
    let base = parts.join("-");
    let mut candidates = vec![base.clone()];
    if !group.is_empty() {
        candidates.push(format!("{base}-{}", sanitize(&group)));
    }
    for candidate in candidates {
        let file = format!("{candidate}.yaml");
        if taken.insert(file.clone()) {
            return file;
        }
    }
    (2..)
        .map(|n| format!("{base}-{n}.yaml"))
        .find(|file| taken.insert(file.clone()))
        .expect("some counter is free")
}

fn sanitize(part: &str) -> String {
    let cleaned: String = part
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" => "_".to_string(),
        // Never a hidden file or a relative directory name.
        s if s.starts_with('.') => format!("_{s}"),
        s => s.to_string(),
    }
}

/// Checks a file list is safe to write below a directory: relative,
/// normalised (`a/b.yaml`, no `.`, `..`, empty or hidden components), each
/// path once, and no path both a file and a directory.
pub fn check_files(files: &[(String, Vec<u8>)]) -> Result<(), DeliverError> {
    let mut seen = BTreeSet::new();
    for (path, _) in files {
        let bad = |why: &str| DeliverError::Manifests(format!("file name {path:?} {why}"));
        if path.is_empty() || path.starts_with('/') || path.contains('\\') {
            return Err(bad("must be a relative path"));
        }
        for component in path.split('/') {
            if component.is_empty() || component.starts_with('.') {
                return Err(bad("has an empty, '.', '..' or hidden component"));
            }
            if component.chars().any(|c| c.is_control()) {
                return Err(bad("has control characters"));
            }
        }
        if !seen.insert(path.as_str()) {
            return Err(bad("appears twice"));
        }
    }
    for (path, _) in files {
        let mut prefix = String::new();
        for component in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            prefix.push_str(component);
            if seen.contains(prefix.as_str()) {
                return Err(DeliverError::Manifests(format!(
                    "{prefix:?} is both a file and the directory of {path:?}"
                )));
            }
            prefix.push('/');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_objects_by_kind_namespace_and_name() {
        let yaml = "---
apiVersion: v1
kind: Namespace
metadata:
  name: line-a
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:tender
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: gw
  namespace: line-a
---
apiVersion: example.com/v1
kind: Deployment
metadata:
  name: gw
  namespace: line-a
---
apiVersion: other.example.com/v1
kind: Deployment
metadata:
  name: gw
  namespace: line-a
";
        let files = one_file_per_object(yaml).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "namespace-line-a.yaml",
                "clusterrole-system_tender.yaml",
                "deployment-line-a-gw.yaml",
                "deployment-line-a-gw-example.com.yaml",
                "deployment-line-a-gw-other.example.com.yaml",
            ]
        );
        assert_eq!(
            String::from_utf8(files[0].1.clone()).unwrap(),
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: line-a\n"
        );
        check_files(&files).unwrap();
    }

    #[test]
    fn counters_break_remaining_ties_and_odd_names_stay_inside() {
        let doc = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n";
        let files = one_file_per_object(&doc.repeat(3)).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "configmap-a.yaml",
                "configmap-a-2.yaml",
                "configmap-a-3.yaml"
            ]
        );
        let odd = one_file_per_object("kind: ../x\nmetadata: {name: ../../etc/passwd}\n").unwrap();
        assert_eq!(odd[0].0, "_.._x-_.._.._etc_passwd.yaml");
        check_files(&odd).unwrap();
        assert!(one_file_per_object("- a\n").is_err());
    }

    #[test]
    fn check_files_refuses_escapes_duplicates_and_clashes() {
        let f = |names: &[&str]| -> Files {
            names.iter().map(|n| (n.to_string(), Vec::new())).collect()
        };
        check_files(&f(&["a.yaml", "apps/b.yaml", "apps/c/d.yaml"])).unwrap();
        for bad in [
            &["../a"][..],
            &["/etc/a"],
            &["a//b"],
            &["./a"],
            &[".git/config"],
            &["a", "a"],
            &["a", "a/b"],
            &[""],
        ] {
            assert!(check_files(&f(bad)).is_err(), "{bad:?}");
        }
    }
}
