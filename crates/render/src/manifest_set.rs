//! A cluster's manifest set: every rendered document, checked, given its
//! default namespace, and written in one canonical form (a stable document
//! order, keys sorted, one YAML style), so that two clusters that render
//! the same objects share one blob, and a re-export of an unchanged fleet
//! gives the same digest.

use std::collections::BTreeMap;

use serde_json::Value;

/// Kinds that live outside namespaces. Objects of other kinds without a
/// namespace get the cluster's (as Argo CD's destination namespace does);
/// custom cluster-scoped kinds must name no namespace and be listed here to
/// be left alone, since there is no API server to ask.
const CLUSTER_SCOPED: &[&str] = &[
    "APIService",
    "CSIDriver",
    "CSINode",
    "CertificateSigningRequest",
    "ClusterIssuer",
    "ClusterRole",
    "ClusterRoleBinding",
    "ComponentStatus",
    "CustomResourceDefinition",
    "FlowSchema",
    "IngressClass",
    "MutatingWebhookConfiguration",
    "Namespace",
    "Node",
    "PersistentVolume",
    "PriorityClass",
    "PriorityLevelConfiguration",
    "RuntimeClass",
    "StorageClass",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "ValidatingWebhookConfiguration",
    "VolumeAttachment",
];

/// Apply order, as Helm's install order: what others depend on first.
const KIND_ORDER: &[&str] = &[
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// One Kubernetes object and the source that rendered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub source: String,
    pub value: Value,
}

impl Object {
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or("")
    }
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    pub fn namespace(&self) -> &str {
        self.value["metadata"]["namespace"].as_str().unwrap_or("")
    }
    /// `group/kind namespace/name`, for messages and duplicate checks.
    pub fn id(&self) -> String {
        format!(
            "{}/{} {}/{}",
            self.group(),
            self.kind(),
            self.namespace(),
            self.name()
        )
    }

    /// `group/kind name`: the object without its namespace, for messages
    /// about the same object in many clusters' namespaces.
    pub fn label(&self) -> String {
        format!("{}/{} {}", self.group(), self.kind(), self.name())
    }

    fn group(&self) -> &str {
        self.api_version().rsplit_once('/').map_or("", |(g, _)| g)
    }
}

/// Why rendered output is not a usable manifest set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestSetError {
    #[error("source {source_name}: not valid YAML: {reason}")]
    Yaml { source_name: String, reason: String },
    #[error("source {source_name}: document {index} is not a Kubernetes object: {reason}")]
    NotAnObject {
        source_name: String,
        index: usize,
        reason: String,
    },
    #[error("{id} is rendered twice, by {first} and {second}")]
    Duplicate {
        id: String,
        first: String,
        second: String,
    },
}

/// Splits rendered YAML into objects, skipping empty documents; each must
/// have apiVersion, kind and metadata.name. `List` kinds are flattened.
///
/// Scalars resolve as Kubernetes reads them (sigs.k8s.io/yaml, YAML 1.1):
/// `defaultMode: 0755` is the octal 493 that kubectl would apply, not 755,
/// and `yes`/`on` are booleans. Charts write such modes everywhere.
pub fn parse(source: &str, text: &str) -> Result<Vec<Object>, ManifestSetError> {
    let options = serde_saphyr::options! { legacy_octal_numbers: true, strict_booleans: false };
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple_with_options(text, options).map_err(|e| {
            ManifestSetError::Yaml {
                source_name: source.to_string(),
                reason: e.to_string(),
            }
        })?;
    let mut out = Vec::new();
    for (index, doc) in docs.into_iter().enumerate() {
        if doc.is_null() {
            continue;
        }
        let not_object = |reason: &str| ManifestSetError::NotAnObject {
            source_name: source.to_string(),
            index,
            reason: reason.to_string(),
        };
        if !doc.is_object() {
            return Err(not_object("not a mapping"));
        }
        let kind = doc["kind"].as_str().unwrap_or("");
        if kind.ends_with("List") && doc["items"].is_array() {
            for item in doc["items"].as_array().into_iter().flatten() {
                out.push(check(source, index, item.clone())?);
            }
            continue;
        }
        out.push(check(source, index, doc)?);
    }
    Ok(out)
}

fn check(source: &str, index: usize, value: Value) -> Result<Object, ManifestSetError> {
    let missing = |what: &str| ManifestSetError::NotAnObject {
        source_name: source.to_string(),
        index,
        reason: format!("missing {what}"),
    };
    let nonempty = |v: &Value| v.as_str().is_some_and(|s| !s.is_empty());
    if !nonempty(&value["apiVersion"]) {
        return Err(missing("apiVersion"));
    }
    if !nonempty(&value["kind"]) {
        return Err(missing("kind"));
    }
    if !nonempty(&value["metadata"]["name"]) {
        return Err(missing("metadata.name"));
    }
    Ok(Object {
        source: source.to_string(),
        value,
    })
}

/// Gives namespaced objects without a namespace the cluster's.
pub fn default_namespace(objects: &mut [Object], namespace: Option<&str>) {
    let Some(ns) = namespace else { return };
    for o in objects {
        if o.namespace().is_empty()
            && !CLUSTER_SCOPED.contains(&o.kind())
            && let Some(meta) = o.value["metadata"].as_object_mut()
        {
            meta.insert("namespace".into(), Value::String(ns.to_string()));
        }
    }
}

/// Sorts into apply order and refuses two objects with one identity.
pub fn canonical_order(objects: &mut [Object]) -> Result<(), ManifestSetError> {
    let rank = |kind: &str| {
        KIND_ORDER
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(KIND_ORDER.len())
    };
    objects.sort_by(|a, b| {
        (
            rank(a.kind()),
            a.kind(),
            a.namespace(),
            a.name(),
            a.api_version(),
        )
            .cmp(&(
                rank(b.kind()),
                b.kind(),
                b.namespace(),
                b.name(),
                b.api_version(),
            ))
    });
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for o in objects.iter() {
        if let Some(first) = seen.insert(o.id(), &o.source) {
            return Err(ManifestSetError::Duplicate {
                id: o.id(),
                first: first.to_string(),
                second: o.source.clone(),
            });
        }
    }
    Ok(())
}

/// The canonical YAML stream: each document starts with `---`, keys are
/// sorted (serde_json's map is ordered), one serializer's style throughout.
pub fn to_yaml(objects: &[Object]) -> String {
    let mut out = String::new();
    for o in objects {
        out.push_str("---\n");
        let doc = serde_saphyr::to_string(&o.value).expect("JSON values serialize to YAML");
        out.push_str(&doc);
        if !doc.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_resolve_as_kubernetes_reads_them() {
        // bitnami charts mount scripts with `defaultMode: 0755`; kubectl
        // (YAML 1.1) applies 493. Quoted values stay strings.
        let text = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n  - name: s\n    configMap: {name: s, defaultMode: 0755}\n  - name: t\n    configMap: {name: t, defaultMode: 420}\n  x: \"0755\"\n  y: on\n";
        let objects = parse("test", text).unwrap();
        let spec = &objects[0].value["spec"];
        assert_eq!(
            spec["volumes"][0]["configMap"]["defaultMode"],
            serde_json::json!(493)
        );
        assert_eq!(
            spec["volumes"][1]["configMap"]["defaultMode"],
            serde_json::json!(420)
        );
        assert_eq!(spec["x"], serde_json::json!("0755"));
        assert_eq!(spec["y"], serde_json::json!(true));
    }

    #[test]
    fn parse_skips_empty_documents_and_checks_fields() {
        let objs = parse(
            "s",
            "# only a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n",
        )
        .unwrap();
        assert_eq!(objs.len(), 1);
        let err = parse("s", "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n").unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
        assert!(parse("s", "a: [unclosed\n").is_err());
    }

    #[test]
    fn order_namespace_and_duplicates() {
        let mut objs = parse(
            "s",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n",
        )
        .unwrap();
        default_namespace(&mut objs, Some("line-a"));
        canonical_order(&mut objs).unwrap();
        let ids: Vec<String> = objs.iter().map(Object::id).collect();
        assert_eq!(
            ids,
            [
                "/Namespace /ns",
                "/ConfigMap other/c",
                "apps/Deployment line-a/d"
            ]
        );
        let mut twice = objs.clone();
        twice.push(Object {
            source: "t".into(),
            value: objs[2].value.clone(),
        });
        assert!(
            canonical_order(&mut twice)
                .unwrap_err()
                .to_string()
                .contains("rendered twice")
        );
    }

    #[test]
    fn canonical_yaml_round_trips_and_is_stable() {
        let text = "kind: ConfigMap\napiVersion: v1\nmetadata: {name: c}\ndata: {port: \"8080\", on: \"yes\", n: \"n\", y: \"Y\", off: \"off\", tilde: \"~\", float: \"1e3\", oct: \"0755\", empty: \"\", multi: \"a\\nb\\n\"}\n";
        let objs = parse("s", text).unwrap();
        let yaml = to_yaml(&objs);
        let again = parse("s", &yaml).unwrap();
        assert_eq!(again, objs);
        assert_eq!(to_yaml(&again), yaml);
        assert!(yaml.find("apiVersion").unwrap() < yaml.find("kind").unwrap());
    }
}
