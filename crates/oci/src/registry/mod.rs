//! [`RegistryClient`]: pull images from registries into a [`LayoutStore`]
//! (export) and push them from one into a registry (import).
//!
//! # Blocking API
//!
//! Every public method blocks. The client owns a small multi-thread tokio
//! runtime (2 workers) and drives its async HTTP stack on it, so callers —
//! tender's crates are synchronous — need no runtime of their own. Do not
//! call it from inside another tokio runtime (`block_on` would panic); use a
//! plain thread there.
//!
//! # What oci-client does, and what reqwest does
//!
//! The Docker Registry token flow — `GET /v2/`, parse the
//! `WWW-Authenticate` challenge, fetch a token for
//! `repository:<name>:pull[,push]` from the realm with the user's
//! credentials, or fall back to HTTP Basic — is `oci_client::Client::auth`.
//! It runs when a registry answers 401; the token is cached per repository
//! and operation and sent as `Authorization` on every later request; a
//! second 401 refreshes it once more, then the request fails.
//!
//! Every registry request itself is a plain `reqwest` call, because
//! oci-client's API would lose what tender needs: its errors drop the HTTP
//! status of 4xx answers with an error body (so 429 could not be told from
//! 404 for retries); `pull_manifest_raw` drops the `Content-Type` (the
//! media type); `mount_blob` treats the spec's 202 fallback as an error;
//! and streaming uploads cannot choose monolithic vs chunked per blob nor
//! set `Content-Length` on each chunk.
//!
//! # Integrity
//!
//! Manifests are hashed as fetched: by digest they must match it; by tag
//! the computed digest pins the tag (and a `Docker-Content-Digest` header
//! that disagrees is an error). Blobs stream through
//! [`LayoutStore::write_blob_from`], which hashes while writing and renames
//! into place only on a match, so a corrupt blob leaves nothing behind.
//! Pushes check that the registry reports the digest that was sent.
//!
//! # Retries
//!
//! 5xx (but 501), 429 and transport errors are retried with exponential
//! backoff and jitter ([`RetryPolicy`](crate::retry::RetryPolicy)); each
//! retry is reported to the [`Observer`]. A retried blob transfer starts
//! over.
//!
//! # Layout
//!
//! [`RegistryClient`] (here) is the blocking face; the async work is split
//! by job: `options` what the client can be told, `auth` hosts and the
//! token flow, `transport` sending, retrying and error mapping, `pull`,
//! `push`, and `referrers` (cosign tags, the referrers API).

mod auth;
mod options;
mod pull;
mod push;
mod referrers;
mod transport;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use tender_format::FromIo;

use tender_format::Digest;

use crate::arrivals::Arrivals;
use crate::error::OciError;
use crate::layout::LayoutStore;
use crate::media::{Descriptor, Platform};
use crate::observer::{BlobOutcome, Observer};
use crate::reference::Reference;

use auth::Host;
pub use options::{ClientOptions, DEFAULT_CHUNK_SIZE, DEFAULT_CONCURRENCY, RegistrySettings};
pub use pull::{FailedBlob, ImageManifests, PulledBlobs, PulledImage, ResolvedManifest};
pub use push::PushedImage;
pub use referrers::{ArtifactKind, COSIGN_SUFFIXES, RelatedArtifact};

/// Sent as `User-Agent`.
pub const USER_AGENT: &str = concat!("tender/", env!("CARGO_PKG_VERSION"));
/// Header carrying the digest of what a registry served or stored.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";

/// The registry client; see the module docs.
pub struct RegistryClient {
    runtime: tokio::runtime::Runtime,
    inner: Arc<Inner>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client with `options`. Installs ring as the process's rustls
    /// crypto provider unless one is installed already.
    pub fn new(options: ClientOptions) -> Result<RegistryClient, OciError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(32)
            .thread_name("tender-oci")
            .enable_all()
            .build()
            .map_err(|e| OciError::io("starting the registry client's runtime", e))?;
        Ok(RegistryClient {
            runtime,
            inner: Arc::new(Inner {
                options,
                hosts: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Fetches the manifest or index `reference` names and pins it: by
    /// digest the bytes must hash to it; by tag their hash is the digest.
    pub fn resolve(&self, reference: &Reference) -> Result<ResolvedManifest, OciError> {
        self.runtime.block_on(self.inner.resolve(reference))
    }

    /// Downloads one blob of `repository` (its registry and repository are
    /// used, not its tag) into `store`, streaming, unless the store has it.
    pub fn pull_blob_to(
        &self,
        store: &LayoutStore,
        repository: &Reference,
        descriptor: &Descriptor,
    ) -> Result<BlobOutcome, OciError> {
        self.runtime
            .block_on(self.inner.pull_blob(store, repository, descriptor, None))
            .map(|(outcome, _)| outcome)
    }

    /// Pulls an image (manifest or index, and everything it points at) into
    /// `store`, `concurrency` blobs at a time, each blob once, then names it
    /// `reference.to_string()` in `index.json`.
    ///
    /// Without a platform filter an index is kept whole. With one, only the
    /// index's manifests whose platform matches a filter entry are pulled,
    /// and then:
    /// * if every manifest of the index is now in the store (all matched,
    ///   or the rest were there already), the index itself is stored and
    ///   named, so the digest signatures cover is kept;
    /// * else, if exactly one manifest matched, that manifest is named
    ///   ([`PulledImage::source_index`] records the index);
    /// * else it fails with [`OciError::PartialIndex`] before downloading
    ///   anything: an index that lists manifests the bundle lacks could not
    ///   be pushed to a site registry.
    ///
    /// A filter does nothing to a reference that names a single manifest.
    pub fn pull_image(
        &self,
        reference: &Reference,
        store: &LayoutStore,
        platforms: Option<&[Platform]>,
    ) -> Result<PulledImage, OciError> {
        self.runtime
            .block_on(self.inner.pull_image(reference, store, platforms))
    }

    /// The first half of [`RegistryClient::pull_image`]: fetches and checks
    /// every manifest the image keeps (same platform rules) and lists its
    /// blobs, downloading none and storing nothing. Lets a caller gather
    /// the blobs of many images and download each once, in its own order
    /// ([`RegistryClient::pull_blobs`]).
    pub fn fetch_image(
        &self,
        reference: &Reference,
        store: &LayoutStore,
        platforms: Option<&[Platform]>,
    ) -> Result<ImageManifests, OciError> {
        self.runtime
            .block_on(self.inner.fetch_image(reference, store, platforms))
    }

    /// Downloads the blobs queued in `arrivals` into `store`, smallest
    /// digest first, [`ClientOptions::concurrency`] at a time, until the
    /// queue is closed and drained, and marks each as it lands, so a reader
    /// can consume them while the rest download. The first failure stops
    /// the batch and fails `arrivals`; [`Arrivals::abandon`] stops it
    /// without an error.
    pub fn pull_blobs(
        &self,
        store: &LayoutStore,
        arrivals: &Arrivals,
    ) -> Result<PulledBlobs, FailedBlob> {
        self.runtime
            .block_on(self.inner.pull_blobs(store, arrivals))
    }

    /// Finds signatures, attestations and SBOMs of the image `digest` in
    /// `reference`'s repository: the cosign tags `sha256-<hex>.sig`,
    /// `.att`, `.sbom` (absent = none), and the OCI 1.1 referrers API
    /// (`GET /v2/<name>/referrers/<digest>`; 404 = unsupported, then the
    /// referrers tag `sha256-<hex>` counts; absent = none). All are asked
    /// at once: each is a round trip, and most answer 404.
    pub fn find_signatures(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<RelatedArtifact>, OciError> {
        self.runtime
            .block_on(self.inner.find_signatures(reference, digest))
    }

    /// Uploads one blob from `store` into `repository`: nothing if the
    /// registry has it (HEAD), a cross-repository mount if `mount_from`
    /// (a repository on the same registry) has it, else an upload streamed
    /// from the file — one PUT up to [`ClientOptions::chunk_size`], PATCH
    /// chunks above.
    pub fn push_blob_from(
        &self,
        store: &LayoutStore,
        repository: &Reference,
        descriptor: &Descriptor,
        mount_from: Option<&Reference>,
    ) -> Result<BlobOutcome, OciError> {
        self.runtime.block_on(
            self.inner
                .push_blob(store, repository, descriptor, mount_from),
        )
    }

    /// Uploads a manifest under `reference` (a tag, or the manifest's own
    /// digest) with `media_type` as `Content-Type`, and checks the registry
    /// stored it under the digest of `bytes`. Returns that digest.
    pub fn push_manifest(
        &self,
        repository: &Reference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, OciError> {
        self.runtime.block_on(
            self.inner
                .push_manifest(repository, reference, bytes, media_type),
        )
    }

    /// Pushes the image `descriptor` names in `store` (everything
    /// [`LayoutStore::walk_image`] reaches) to `target`: blobs first,
    /// `concurrency` at a time, then manifests children-first by digest,
    /// and the top one under `target`'s tag (or digest). Returns its digest.
    pub fn push_image(
        &self,
        store: &LayoutStore,
        descriptor: &Descriptor,
        target: &Reference,
    ) -> Result<Digest, OciError> {
        self.push_image_counted(store, descriptor, target)
            .map(|pushed| pushed.digest)
    }

    /// [`RegistryClient::push_image`], also saying what the registry
    /// already had: each blob's outcome, and for each manifest whether a
    /// HEAD by digest found it (a child manifest found is not sent again;
    /// the top one is always sent, since its tag may move).
    pub fn push_image_counted(
        &self,
        store: &LayoutStore,
        descriptor: &Descriptor,
        target: &Reference,
    ) -> Result<PushedImage, OciError> {
        self.runtime
            .block_on(self.inner.push_image(store, descriptor, target))
    }
}

struct Inner {
    options: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

impl Inner {
    fn observer(&self) -> &dyn Observer {
        self.options.observer.as_ref()
    }
}
