//! The backends against real tools: a real registry and skopeo (OCI
//! artifacts), real git (commits), real kubectl (against a minimal fake
//! API server: there is no kube-apiserver here).

mod artifact;
mod git;
mod kubectl;

use crate::{DeliveryContext, Signer};
use tender_format::Digest;

/// The manifest set of a release, canonical form.
pub const SET_V1: &str = "---
apiVersion: v1
kind: Namespace
metadata:
  name: line-a
---
apiVersion: v1
data:
  endpoint: opc.tcp://plc-7:4840
kind: ConfigMap
metadata:
  name: gateway
  namespace: line-a
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: opcua-gateway
  namespace: line-a
spec:
  template:
    spec:
      containers:
      - image: registry.plant.example/plant/opcua-gateway:1.4.2
        name: gateway
";

pub fn context(sequence: u64) -> DeliveryContext {
    DeliveryContext {
        site: "plant-001".into(),
        cluster: "plant-001-line-a".into(),
        channel: "stable".into(),
        sequence,
        bundle_id: format!("bundle-{sequence:04}"),
        created: "2026-11-26T03:42:00Z".into(),
        imported_at: format!("2026-11-27T08:00:{:02}Z", sequence % 60),
        manifest_set_digest: Digest::of(format!("set {sequence}").as_bytes()),
        signers: vec![
            Signer {
                key_id: "hub-release-1".into(),
                role: "release".into(),
                signer: "ci@hub.example".into(),
            },
            Signer {
                key_id: "sec-2".into(),
                role: "security".into(),
                signer: "alice@hub.example".into(),
            },
        ],
    }
}
