//! The last mile: after `tender import` has loaded a bundle's images into
//! the site, each cluster's manifest set is handed to its GitOps agent in a
//! form the agent reads (full guide: `docs/delivery.md`).
//!
//! [`deliver`] is the one way in: it pins images, picks the backends a
//! cluster's `delivery` block names and hands the manifests to each;
//! [`write_mirror_configs`] writes node mirror files instead of rewriting.
//! The parts, private to this crate:
//!
//! * `config` — the per-cluster `delivery` block of the site file.
//! * `rewrite` — point container images at their site location
//!   (`REGISTRY/PATH:TAG@sha256:...`), keeping the canonical YAML form.
//! * `mirror` — or leave images alone and configure node mirrors:
//!   containerd `hosts.toml`, k3s `registries.yaml`.
//! * `files` — a manifest set as one file per object.
//! * `artifact` — a reproducible OCI artifact as `flux push artifact`
//!   makes it (or the ORAS-style one Argo CD reads), published into the
//!   embedded store or a registry: blobs, then manifest, then tags.
//! * `git` — a commit on a branch of a git repository, via the `git` CLI.
//! * `directory` — a directory swapped in whole.
//! * `kubectl` — `kubectl apply --server-side`, built and only run when
//!   asked; tender never prunes, it reports the objects a release
//!   removed ([`Delivered::removed_objects`]).
//!
//! Every backend takes a [`DeliveryContext`]: what is delivered, from which
//! bundle, signed by whom. It ends up in commit messages and artifact
//! annotations, so an operator looking at a cluster can trace what runs
//! back to the signed bundle.

mod artifact;
mod config;
mod delivery;
mod directory;
mod error;
mod files;
mod git;
mod kubectl;
mod mirror;
mod rewrite;

pub use config::{DeliveryConfig, DirDelivery, GitDelivery, KubectlDelivery, OciDelivery, OciMode};
pub use delivery::{Delivered, Release, SiteImages, SiteRegistry, deliver};
pub use error::DeliverError;
pub use mirror::write_mirror_configs;

use serde::{Deserialize, Serialize};
use tender_format::Digest;

/// A signature the bundle carried that the trust policy accepted: named in
/// commit messages and artifact annotations, and in the site's audit log
/// (`tender_import::audit`), which uses this type too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    pub key_id: String,
    pub role: String,
    pub signer: String,
}

/// What is being delivered to one cluster, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryContext {
    pub site: String,
    pub cluster: String,
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    /// The bundle's `created` (RFC 3339 UTC): the artifact's creation
    /// time, so the same bundle always gives the same artifact digest.
    pub created: String,
    /// When the import committed (RFC 3339): the git commit date.
    pub imported_at: String,
    /// Digest of the cluster's signed manifest set (before any image
    /// rewriting).
    pub manifest_set_digest: Digest,
    pub signers: Vec<Signer>,
}

/// A context for unit tests.
#[cfg(test)]
pub(crate) fn test_context() -> DeliveryContext {
    DeliveryContext {
        site: "plant-001".into(),
        cluster: "plant-001-line-a".into(),
        channel: "stable".into(),
        sequence: 42,
        bundle_id: "b-0042".into(),
        created: "2026-11-26T03:42:00Z".into(),
        imported_at: "2026-11-27T08:00:00Z".into(),
        manifest_set_digest: Digest::of(b"set"),
        signers: vec![Signer {
            key_id: "k1".into(),
            role: "release".into(),
            signer: "ci@hub".into(),
        }],
    }
}

/// The backends against real tools (a registry, skopeo, git, kubectl).
#[cfg(test)]
mod real_tools;
