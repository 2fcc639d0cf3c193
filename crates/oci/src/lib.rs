//! OCI images for tender: what export (hub) and import (site) share.
//!
//! * [`reference`](mod@reference) — image references parsed and normalised as Docker and
//!   containerd do (`nginx` is `docker.io/library/nginx:latest`).
//! * [`media`] — media types, [`Descriptor`]s, and manifest/index parsing
//!   enough to list what a manifest points at ([`media::children`]).
//! * [`layout`] — [`LayoutStore`], an OCI image layout directory with
//!   verified, crash-safe blob writes and tags in `index.json`.
//! * [`arrivals`] — [`Arrivals`], blobs a store still waits for, so a
//!   reader can consume them in its own order while they download.
//! * [`site_path`] — the repository an image lives in at a site
//!   (`[prefix/]<registry host>/<path>`), the same for every site part.
//! * [`registry`] — [`RegistryClient`], a blocking client that pulls
//!   images into a layout store (streaming, concurrent, verified, retried)
//!   and pushes them from one, finds cosign signatures and OCI referrers.
//! * [`credentials`] — docker `config.json` credentials and helpers.
//! * [`retry`], [`observer`] — backoff policy; progress and retry hooks.
//! * [`error`] — [`OciError`].
//!
//! Digests are [`tender_format::Digest`] (sha256 only): anything this crate
//! stores is named by a digest a bundle can carry.

pub mod arrivals;
pub mod credentials;
pub mod error;
pub mod layout;
pub mod media;
pub mod observer;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod site_path;

pub use arrivals::Arrivals;
pub use credentials::{Credential, CredentialSource};
pub use error::OciError;
pub use layout::{BlobWrite, LayoutStore};
pub use media::{Descriptor, Manifest, Platform, children};
pub use observer::{BlobOutcome, NoopObserver, Observer};
pub use reference::Reference;
pub use registry::{
    ArtifactKind, ClientOptions, FailedBlob, ImageManifests, PulledBlobs, PulledImage, PushedImage,
    RegistryClient, RegistrySettings, RelatedArtifact, ResolvedManifest,
};
pub use retry::RetryPolicy;
pub use tender_format::Digest;
