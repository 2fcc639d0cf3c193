//! Image discovery: every container image a pod-spec-bearing object names.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::manifest_set::Object;

/// Where each kind keeps its pod spec.
fn pod_spec(object: &Object) -> Option<&Value> {
    let spec = &object.value["spec"];
    let pod = match object.kind() {
        "Pod" => spec,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => &spec["template"]["spec"],
        "CronJob" => &spec["jobTemplate"]["spec"]["template"]["spec"],
        _ => return None,
    };
    pod.is_object().then_some(pod)
}

/// One image use: which object, which container list, which image.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ImageUse {
    pub image: String,
    pub object: String,
    pub container: String,
}

/// Every image used by the objects, with where it is used.
pub fn discover(objects: &[Object]) -> Vec<ImageUse> {
    let mut uses = BTreeSet::new();
    for o in objects {
        let Some(pod) = pod_spec(o) else { continue };
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            for c in pod[list].as_array().into_iter().flatten() {
                if let Some(image) = c["image"].as_str().filter(|i| !i.is_empty()) {
                    uses.insert(ImageUse {
                        image: image.to_string(),
                        object: o.id(),
                        container: format!("{list}/{}", c["name"].as_str().unwrap_or("?")),
                    });
                }
            }
        }
    }
    uses.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest_set::parse;

    #[test]
    fn finds_images_in_every_pod_spec_kind_and_container_list() {
        let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      initContainers: [{name: init, image: "r.example/init:1"}]
      containers: [{name: app, image: "r.example/app:1"}]
      ephemeralContainers: [{name: dbg, image: "r.example/dbg:1"}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: j, image: "r.example/job:2"}]}}}}}
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec: {containers: [{name: p, image: "r.example/app:1"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-a-pod}
data: {image: "r.example/ignored:1"}
"#;
        let uses = discover(&parse("s", text).unwrap());
        let images: BTreeSet<&str> = uses.iter().map(|u| u.image.as_str()).collect();
        assert_eq!(
            images.into_iter().collect::<Vec<_>>(),
            [
                "r.example/app:1",
                "r.example/dbg:1",
                "r.example/init:1",
                "r.example/job:2"
            ]
        );
        assert_eq!(uses.len(), 5, "app:1 is used by two objects");
    }
}
