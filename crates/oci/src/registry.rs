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
//! backoff and jitter ([`RetryPolicy`]); each retry is reported to the
//! [`Observer`]. A retried blob transfer starts over.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tender_format::FromIo;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, future, stream};
use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, HeaderValue,
    LOCATION, RETRY_AFTER,
};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use tender_format::Digest;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use crate::arrivals::Arrivals;
use crate::credentials::{Credential, CredentialOverrides, CredentialSource};
use crate::error::OciError;
use crate::layout::LayoutStore;
use crate::media::{
    Descriptor, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX, Platform,
    declared_media_type, effective_media_type,
};
use crate::observer::{BlobOutcome, NoopObserver, Observer};
use crate::reference::{Reference, api_host_for};
use crate::retry::RetryPolicy;

/// Sent as `User-Agent`.
pub const USER_AGENT: &str = concat!("tender/", env!("CARGO_PKG_VERSION"));
/// Header carrying the digest of what a registry served or stored.
pub const DOCKER_CONTENT_DIGEST: &str = "docker-content-digest";
/// Blobs up to this size are uploaded in one PUT; larger ones in PATCH
/// chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Blobs in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;
/// The cosign tag suffixes [`RegistryClient::find_signatures`] looks for.
pub const COSIGN_SUFFIXES: [(&str, ArtifactKind); 3] = [
    ("sig", ArtifactKind::CosignSignature),
    ("att", ArtifactKind::CosignAttestation),
    ("sbom", ArtifactKind::CosignSbom),
];

const ERROR_BODY_LIMIT: u64 = 16 * 1024;
const READ_BUFFER: usize = 256 * 1024;
const CHANNEL_DEPTH: usize = 16;

/// Per-registry connection settings, with Zarf's flag semantics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Speak plain HTTP instead of HTTPS (`--plain-http`).
    pub plain_http: bool,
    /// Use HTTPS but accept any certificate (`--insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
}

impl RegistrySettings {
    pub fn plain_http() -> Self {
        RegistrySettings {
            plain_http: true,
            insecure_skip_tls_verify: false,
        }
    }

    pub fn insecure_skip_tls_verify() -> Self {
        RegistrySettings {
            plain_http: false,
            insecure_skip_tls_verify: true,
        }
    }
}

/// Everything a [`RegistryClient`] can be told.
#[derive(Clone)]
pub struct ClientOptions {
    /// Settings for registries not in `registries`.
    pub default_settings: RegistrySettings,
    /// Settings per registry, keyed as references name it (`host[:port]`).
    pub registries: BTreeMap<String, RegistrySettings>,
    /// Where credentials come from.
    pub credentials: CredentialSource,
    /// Fixed credentials per registry, consulted first.
    pub credential_overrides: CredentialOverrides,
    pub retry: RetryPolicy,
    /// Blobs transferred at once (at least 1).
    pub concurrency: usize,
    /// See [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Re-hash a blob already in the store before skipping its download
    /// (a damaged one is fetched again).
    pub verify_existing_blobs: bool,
    pub observer: Arc<dyn Observer>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            default_settings: RegistrySettings::default(),
            registries: BTreeMap::new(),
            credentials: CredentialSource::default(),
            credential_overrides: BTreeMap::new(),
            retry: RetryPolicy::default(),
            concurrency: DEFAULT_CONCURRENCY,
            chunk_size: DEFAULT_CHUNK_SIZE,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            verify_existing_blobs: true,
            observer: Arc::new(NoopObserver),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("default_settings", &self.default_settings)
            .field("registries", &self.registries)
            .field("credentials", &self.credentials)
            .field("credential_overrides", &self.credential_overrides)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("chunk_size", &self.chunk_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("verify_existing_blobs", &self.verify_existing_blobs)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Sets the settings of one registry (`host[:port]`).
    pub fn registry(mut self, registry: &str, settings: RegistrySettings) -> Self {
        self.registries.insert(registry.to_string(), settings);
        self
    }

    /// The settings that apply to `registry`.
    pub fn settings_for(&self, registry: &str) -> RegistrySettings {
        self.registries
            .get(registry)
            .copied()
            .unwrap_or(self.default_settings)
    }
}

/// A manifest fetched from a registry and checked against its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedManifest {
    /// The reference asked for, pinned to `digest` (a tag is kept).
    pub reference: Reference,
    pub digest: Digest,
    pub media_type: String,
    /// The manifest exactly as served (its digest is `digest`).
    pub bytes: Vec<u8>,
}

impl ResolvedManifest {
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(&self.media_type, self.digest, self.bytes.len() as u64)
    }

    pub fn manifest(&self) -> Result<Manifest, OciError> {
        Manifest::parse(&self.bytes, &self.media_type)
    }
}

/// What [`RegistryClient::pull_image`] stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PulledImage {
    /// The reference asked for, pinned to the digest of `descriptor`.
    pub reference: Reference,
    /// The name in the store's `index.json` (the reference as asked for).
    pub ref_name: String,
    /// What `ref_name` points at: the manifest or index.
    pub descriptor: Descriptor,
    /// When a platform filter picked one manifest out of an index that is
    /// not kept whole: that index's digest (what the tag resolved to).
    pub source_index: Option<Digest>,
    /// Blobs downloaded (config and layers; manifests not counted).
    pub blobs_fetched: usize,
    /// Blobs the store already had.
    pub blobs_present: usize,
    /// Bytes downloaded for blobs.
    pub bytes_fetched: u64,
}

/// An image's manifests, fetched and verified, and the blobs they name,
/// none of them downloaded yet: what [`RegistryClient::fetch_image`]
/// returns, for a caller that schedules blob downloads itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifests {
    /// The reference asked for, pinned to the digest of `descriptor`.
    pub reference: Reference,
    /// What the image's name points at: the manifest or index.
    pub descriptor: Descriptor,
    /// As [`PulledImage::source_index`].
    pub source_index: Option<Digest>,
    /// Every manifest to store, with its bytes, parents before children.
    pub manifests: Vec<(Descriptor, Vec<u8>)>,
    /// Configs, layers and other plain blobs, each once.
    pub blobs: Vec<Descriptor>,
}

impl ImageManifests {
    /// Stores the manifests (children first) and names the image
    /// `ref_name`. Its blobs must be in `store` before anyone reads the
    /// image; [`RegistryClient::pull_image`] stores them first.
    pub fn store(&self, store: &LayoutStore, ref_name: &str) -> Result<(), OciError> {
        for (descriptor, bytes) in self.manifests.iter().rev() {
            let written = store.put_blob_bytes(bytes)?;
            debug_assert_eq!(written, descriptor.digest);
        }
        store.set_tag(ref_name, self.descriptor.clone())
    }
}

/// What [`RegistryClient::pull_blobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PulledBlobs {
    /// Blobs downloaded.
    pub fetched: usize,
    /// Blobs the store already had.
    pub present: usize,
    pub bytes_fetched: u64,
}

/// The blob a [`RegistryClient::pull_blobs`] batch failed on.
#[derive(Debug, thiserror::Error)]
#[error("blob {digest}")]
pub struct FailedBlob {
    pub digest: Digest,
    #[source]
    pub error: Box<OciError>,
}

/// Kinds of artifacts that refer to an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArtifactKind {
    /// Tag `sha256-<hex>.sig`.
    CosignSignature,
    /// Tag `sha256-<hex>.att`.
    CosignAttestation,
    /// Tag `sha256-<hex>.sbom`.
    CosignSbom,
    /// Listed by the OCI 1.1 referrers API (or its tag fallback).
    Referrer,
}

/// An artifact found by [`RegistryClient::find_signatures`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedArtifact {
    pub kind: ArtifactKind,
    /// Where to pull it from: `repo:sha256-<hex>.sig` for cosign tags,
    /// `repo@<digest>` for referrers.
    pub reference: Reference,
    pub descriptor: Descriptor,
}

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

/// What pushing one image did, blob by blob (manifests included).
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The top manifest's digest.
    pub digest: Digest,
    /// Every blob and manifest the image reaches, once each.
    pub outcomes: BTreeMap<Digest, BlobOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Op {
    Pull,
    Push,
}

impl From<Op> for RegistryOperation {
    fn from(op: Op) -> Self {
        match op {
            Op::Pull => RegistryOperation::Pull,
            Op::Push => RegistryOperation::Push,
        }
    }
}

/// One registry: its HTTP client, oci-client (for auth), credentials and
/// cached `Authorization` headers.
struct Host {
    registry: String,
    base: Url,
    http: reqwest::Client,
    settings: RegistrySettings,
    /// Built on first use: each client loads the system's root
    /// certificates, tens of milliseconds an anonymous pull never needs.
    oci: Mutex<Option<Arc<oci_client::Client>>>,
    auth: RegistryAuth,
    basic: Option<HeaderValue>,
    headers: Mutex<HashMap<(String, Op), HeaderValue>>,
}

impl Host {
    fn authorization(&self, repository: &str, op: Op) -> Option<HeaderValue> {
        let headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        headers
            .get(&(repository.to_string(), op))
            .or_else(|| match op {
                // A push token covers pulls too.
                Op::Pull => headers.get(&(repository.to_string(), Op::Push)),
                Op::Push => None,
            })
            .cloned()
    }

    fn set_authorization(&self, repository: &str, op: Op, value: Option<HeaderValue>) {
        let mut headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(value) => headers.insert((repository.to_string(), op), value),
            None => headers.remove(&(repository.to_string(), op)),
        };
    }
}

struct Inner {
    options: ClientOptions,
    hosts: Mutex<HashMap<String, Arc<Host>>>,
}

type Build<'a> = &'a (dyn Fn(&reqwest::Client) -> Result<RequestBuilder, OciError> + Sync);

impl Inner {
    fn observer(&self) -> &dyn Observer {
        self.options.observer.as_ref()
    }

    /// The host of `registry`, set up on first use. Built under the lock,
    /// so concurrent first requests share one host (one connection pool,
    /// one credential lookup) instead of each building their own.
    fn host(&self, registry: &str) -> Result<Arc<Host>, OciError> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(host) = hosts.get(registry) {
            return Ok(Arc::clone(host));
        }
        let host = Arc::new(self.new_host(registry)?);
        hosts.insert(registry.to_string(), Arc::clone(&host));
        Ok(host)
    }

    fn new_host(&self, registry: &str) -> Result<Host, OciError> {
        let settings = self.options.settings_for(registry);
        let api_host = api_host_for(registry);
        let scheme = if settings.plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
            OciError::InvalidReference {
                input: registry.to_string(),
                reason: format!("not usable in a URL: {e}"),
            }
        })?;
        let mut http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.read_timeout)
            .tls_danger_accept_invalid_certs(settings.insecure_skip_tls_verify);
        if settings.plain_http {
            // No TLS to verify: skip loading the system's root certificates.
            http = http.tls_certs_only([]);
        }
        let http = http.build().map_err(|e| OciError::Transport {
            what: format!("setting up an HTTP client for {registry}"),
            detail: error_chain(&e),
        })?;
        let credential = match self.options.credential_overrides.get(registry) {
            Some(credential) => credential.clone(),
            None => self.options.credentials.lookup(registry)?,
        };
        let (auth, basic) = match credential {
            Credential::Anonymous => (RegistryAuth::Anonymous, None),
            Credential::Basic { username, password } => {
                let basic = basic_header(&username, &password);
                (RegistryAuth::Basic(username, password), Some(basic))
            }
        };
        Ok(Host {
            registry: registry.to_string(),
            base,
            http,
            settings,
            oci: Mutex::new(None),
            auth,
            basic,
            headers: Mutex::new(HashMap::new()),
        })
    }

    /// The host's oci-client, for the token flow; built on the first 401.
    fn token_client(&self, host: &Host) -> Result<Arc<oci_client::Client>, OciError> {
        let mut oci = host.oci.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = oci.as_ref() {
            return Ok(Arc::clone(client));
        }
        let settings = host.settings;
        let config = ClientConfig {
            protocol: if settings.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: settings.insecure_skip_tls_verify,
            platform_resolver: None,
            connect_timeout: Some(self.options.connect_timeout),
            read_timeout: Some(self.options.read_timeout),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| OciError::Auth {
            registry: host.registry.clone(),
            reason: format!("cannot set up the token client: {e}"),
        })?;
        Ok(Arc::clone(oci.insert(Arc::new(client))))
    }

    fn url(&self, host: &Host, path: &str) -> Url {
        host.base
            .join(&format!("v2/{path}"))
            .expect("joining a validated path")
    }

    /// The token flow (oci-client), after a 401.
    async fn authenticate(&self, host: &Host, repository: &str, op: Op) -> Result<(), OciError> {
        let reference = oci_client::Reference::with_tag(
            host.registry.clone(),
            repository.to_string(),
            "latest".to_string(),
        );
        let oci = self.token_client(host)?;
        let header = match oci.auth(&reference, &host.auth, op.into()).await {
            Ok(Some(token)) => Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(
                |_| OciError::Auth {
                    registry: host.registry.clone(),
                    reason: "the token service returned a token that is not a valid header".into(),
                },
            )?),
            // No bearer challenge: HTTP Basic with the credentials, if any.
            Ok(None) => host.basic.clone(),
            Err(e) => return Err(map_oci_error(&host.registry, e)),
        };
        host.set_authorization(repository, op, header);
        Ok(())
    }

    /// Sends a request built by `build`, with the cached authorization; on
    /// 401 authenticates once and sends it again. Any status is returned.
    async fn send(
        &self,
        host: &Host,
        repository: &str,
        op: Op,
        what: &str,
        build: Build<'_>,
    ) -> Result<Response, OciError> {
        let mut authenticated = false;
        loop {
            let mut request = build(&host.http)?;
            if let Some(value) = host.authorization(repository, op) {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(what, &e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(host, repository, op).await?;
                continue;
            }
            return Ok(response);
        }
    }

    async fn retrying<T, F, Fut>(&self, what: &str, mut attempt: F) -> Result<T, OciError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciError>>,
    {
        let policy = self.options.retry;
        let attempts = policy.attempts.max(1);
        let mut tried = 1;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() => {
                    if tried >= attempts {
                        return Err(if attempts == 1 {
                            error
                        } else {
                            OciError::RetriesExhausted {
                                what: what.to_string(),
                                attempts,
                                last: Box::new(error),
                            }
                        });
                    }
                    let delay = policy.delay(tried, error.retry_after());
                    self.observer().on_retry(what, tried, &error, delay);
                    tokio::time::sleep(delay).await;
                    tried += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    // --- manifests -------------------------------------------------------------

    /// GET a manifest by tag or digest, verified; `expected` (a child's
    /// descriptor) also fixes its size and media type.
    async fn fetch_manifest(
        &self,
        reference: &Reference,
        expected: Option<&Descriptor>,
    ) -> Result<ResolvedManifest, OciError> {
        let host = self.host(reference.registry())?;
        let repository = reference.repository();
        let (manifest_ref, expected_digest) = match expected {
            Some(descriptor) => (descriptor.digest.to_string(), Some(descriptor.digest)),
            None => (reference.manifest_reference(), reference.digest().copied()),
        };
        let what = match expected {
            Some(descriptor) => format!("manifest {}@{}", reference.name(), descriptor.digest),
            None => format!("manifest {reference}"),
        };
        let url = &self.url(&host, &format!("{repository}/manifests/{manifest_ref}"));
        let accept = &MANIFEST_ACCEPT.join(", ");
        let (host, what_ref) = (&*host, what.as_str());
        let (bytes, content_type, header_digest) = self
            .retrying(what_ref, || async move {
                let what = what_ref;
                let response = self
                    .send(host, repository, Op::Pull, what, &|http| {
                        Ok(http.get(url.clone()).header(ACCEPT, accept))
                    })
                    .await?;
                if response.status() != StatusCode::OK {
                    return Err(status_error(what, response).await);
                }
                let content_type = header_text(response.headers(), CONTENT_TYPE.as_str());
                let header_digest = header_text(response.headers(), DOCKER_CONTENT_DIGEST);
                let bytes = read_limited(what, response, MAX_MANIFEST_SIZE).await?;
                Ok((bytes, content_type, header_digest))
            })
            .await?;

        let digest = Digest::of(&bytes);
        if let Some(expected) = expected_digest
            && digest != expected
        {
            return Err(OciError::DigestMismatch {
                what,
                expected,
                actual: digest,
            });
        }
        if let Some(header) = header_digest.as_deref()
            && header.starts_with("sha256:")
        {
            let claimed: Digest = header.parse().map_err(|_| OciError::Protocol {
                what: what.clone(),
                reason: format!("Docker-Content-Digest {header:?} is not a valid digest"),
            })?;
            if claimed != digest {
                return Err(OciError::DigestMismatch {
                    what: format!("{what} (the registry's Docker-Content-Digest)"),
                    expected: claimed,
                    actual: digest,
                });
            }
        }
        let media_type = match expected {
            Some(descriptor) => {
                if bytes.len() as u64 != descriptor.size {
                    return Err(OciError::SizeMismatch {
                        what,
                        expected: descriptor.size,
                        actual: bytes.len() as u64,
                    });
                }
                descriptor.media_type.clone()
            }
            None => declared_media_type(&bytes)
                .or_else(|| effective_media_type(&bytes, content_type.as_deref().unwrap_or("")))
                .unwrap_or_default(),
        };
        // Parse now: an unusable manifest fails here, naming the reference.
        Manifest::parse(&bytes, &media_type).map_err(|e| match e {
            OciError::InvalidManifest { reason, .. } => OciError::InvalidManifest {
                what: what.clone(),
                reason,
            },
            OciError::UnsupportedMediaType {
                media_type, reason, ..
            } => OciError::UnsupportedMediaType {
                what: what.clone(),
                media_type,
                reason,
            },
            other => other,
        })?;
        Ok(ResolvedManifest {
            reference: reference.with_digest(digest),
            digest,
            media_type,
            bytes,
        })
    }

    async fn resolve(&self, reference: &Reference) -> Result<ResolvedManifest, OciError> {
        self.fetch_manifest(reference, None).await
    }

    // --- blobs, pull -----------------------------------------------------------

    /// Downloads one blob unless present. `cancel`, once set (another
    /// transfer of the same pull failed), stops this one at the next chunk;
    /// it still waits for its writer, so no temporary file outlives it.
    async fn pull_blob(
        &self,
        store: &LayoutStore,
        repository: &Reference,
        descriptor: &Descriptor,
        cancel: Option<&AtomicBool>,
    ) -> Result<(BlobOutcome, u64), OciError> {
        let digest = descriptor.digest;
        let size = descriptor.size;
        let what = format!("blob {}@{digest}", repository.name());
        self.observer().on_blob_start(&digest, size);
        if store.has_blob(&digest) {
            let present = if self.options.verify_existing_blobs {
                let check = store.clone();
                let verified = tokio::task::spawn_blocking(move || check.verify_blob(&digest))
                    .await
                    .map_err(|e| OciError::io(format!("checking {what}"), io::Error::other(e)))?;
                match verified {
                    Ok(present) => present,
                    Err(e) if e.is_integrity_failure() => {
                        // Damaged on disk: fetch it again.
                        let path = store.blob_path(&digest);
                        std::fs::remove_file(&path)
                            .map_err(|e| OciError::io_at("removing damaged", &path, e))?;
                        false
                    }
                    Err(e) => return Err(e),
                }
            } else {
                true
            };
            if present {
                if store.blob_size(&digest) != Some(size) {
                    return Err(OciError::SizeMismatch {
                        what: format!("{what} (already in {})", store.root().display()),
                        expected: size,
                        actual: store.blob_size(&digest).unwrap_or(0),
                    });
                }
                self.observer()
                    .on_blob_done(&digest, size, BlobOutcome::AlreadyPresent);
                return Ok((BlobOutcome::AlreadyPresent, 0));
            }
        }
        let host = self.host(repository.registry())?;
        let url = &self.url(
            &host,
            &format!("{}/blobs/{digest}", repository.repository()),
        );
        let (host, what_ref) = (&*host, what.as_str());
        let written = self
            .retrying(what_ref, || async move {
                let what = what_ref;
                if is_cancelled(cancel) {
                    return Err(cancelled(what));
                }
                let response = self
                    .send(host, repository.repository(), Op::Pull, what, &|http| {
                        Ok(http.get(url.clone()))
                    })
                    .await?;
                if response.status() != StatusCode::OK {
                    return Err(status_error(what, response).await);
                }
                if let Some(length) = response.content_length()
                    && length != size
                {
                    return Err(OciError::SizeMismatch {
                        what: what.to_string(),
                        expected: size,
                        actual: length,
                    });
                }
                self.stream_into_store(what, response, store, descriptor, cancel)
                    .await
            })
            .await?;
        let outcome = if written.already_present {
            BlobOutcome::AlreadyPresent
        } else {
            BlobOutcome::Transferred
        };
        self.observer().on_blob_done(&digest, size, outcome);
        Ok((outcome, if written.already_present { 0 } else { size }))
    }

    /// Bridges the response body (async) to the store's hashing writer
    /// (blocking, on a blocking thread) through a bounded channel, so at
    /// most `CHANNEL_DEPTH` chunks are in memory.
    async fn stream_into_store(
        &self,
        what: &str,
        response: Response,
        store: &LayoutStore,
        descriptor: &Descriptor,
        cancel: Option<&AtomicBool>,
    ) -> Result<crate::layout::BlobWrite, OciError> {
        let (sender, receiver) = mpsc::channel::<Chunk>(CHANNEL_DEPTH);
        let writer_store = store.clone();
        let digest = descriptor.digest;
        let size = descriptor.size;
        let writer = tokio::task::spawn_blocking(move || {
            writer_store.write_blob_from(ChannelReader::new(receiver), &digest, Some(size))
        });
        let mut body = response.bytes_stream();
        let mut moved = 0u64;
        let mut network_error = None;
        while let Some(chunk) = body.next().await {
            if is_cancelled(cancel) {
                network_error = Some(cancelled(what));
                break;
            }
            match chunk {
                Ok(bytes) => {
                    moved += bytes.len() as u64;
                    if sender.send(Chunk::Data(bytes)).await.is_err() {
                        break; // the writer stopped (too many bytes, disk error)
                    }
                    self.observer().on_blob_progress(&digest, moved);
                }
                Err(e) => {
                    network_error = Some(transport_error(what, &e));
                    break;
                }
            }
        }
        if network_error.is_none() {
            let _ = sender.send(Chunk::End).await;
        }
        drop(sender);
        let written = writer
            .await
            .map_err(|e| OciError::io(format!("writing {what}"), io::Error::other(e)))?;
        if let Some(error) = network_error {
            return Err(error);
        }
        written.map_err(|e| e.with_subject(what))
    }

    async fn pull_image(
        &self,
        reference: &Reference,
        store: &LayoutStore,
        platforms: Option<&[Platform]>,
    ) -> Result<PulledImage, OciError> {
        let image = self.fetch_image(reference, store, platforms).await?;
        let cancel = AtomicBool::new(false);
        let results = self
            .pull_many(
                store,
                stream::iter(image.blobs.iter().map(|d| (reference.clone(), d.clone()))),
                &cancel,
                &|_| {},
            )
            .await
            .map_err(|(_, error)| error)?;
        let blobs_present = results
            .iter()
            .filter(|(outcome, _)| *outcome == BlobOutcome::AlreadyPresent)
            .count();
        let bytes_fetched = results.iter().map(|(_, bytes)| bytes).sum();
        // Manifests after their blobs: a named image is always complete in
        // the store.
        let ref_name = reference.to_string();
        image.store(store, &ref_name)?;
        Ok(PulledImage {
            reference: image.reference,
            ref_name,
            descriptor: image.descriptor,
            source_index: image.source_index,
            blobs_fetched: results.len() - blobs_present,
            blobs_present,
            bytes_fetched,
        })
    }

    /// Fetches every manifest of an image (see [`RegistryClient::pull_image`]
    /// for what a platform filter keeps) and lists the blobs they name.
    async fn fetch_image(
        &self,
        reference: &Reference,
        store: &LayoutStore,
        platforms: Option<&[Platform]>,
    ) -> Result<ImageManifests, OciError> {
        let top = self.fetch_manifest(reference, None).await?;
        let top_manifest = top.manifest()?;
        let top_descriptor = top.descriptor();

        // Which of the top index's manifests to pull, and what to name.
        let mut named = top_descriptor.clone();
        let mut source_index = None;
        let mut store_top = true;
        let mut top_children = top_manifest.children();
        if let (Some(filters), Manifest::Index(index)) = (platforms, &top_manifest)
            && !filters.is_empty()
        {
            let selected: Vec<&Descriptor> = index
                .manifests
                .iter()
                .filter(|d| {
                    d.platform
                        .as_ref()
                        .is_some_and(|p| filters.iter().any(|f| f.matches(p)))
                })
                .collect();
            if selected.is_empty() {
                return Err(OciError::NoMatchingPlatform {
                    what: format!("{reference} (index {})", top.digest),
                    wanted: join_platforms(filters.iter()),
                    available: join_platforms(
                        index.manifests.iter().filter_map(|d| d.platform.as_ref()),
                    ),
                });
            }
            if selected.len() < index.manifests.len() {
                let rest_complete = index
                    .manifests
                    .iter()
                    .filter(|d| !selected.iter().any(|s| s.digest == d.digest))
                    .all(|d| image_complete(store, d));
                let selected: Vec<Descriptor> = selected.into_iter().cloned().collect();
                if !rest_complete {
                    if selected.len() != 1 {
                        return Err(OciError::PartialIndex {
                            what: format!("{reference} (index {})", top.digest),
                            selected: selected.len(),
                            total: index.manifests.len(),
                        });
                    }
                    named = selected[0].clone();
                    source_index = Some(top.digest);
                    store_top = false;
                }
                top_children = selected;
                top_children.extend(index.subject.iter().cloned());
            }
        }

        // Walk the manifests (fetching each), collecting the blobs.
        let mut seen: HashSet<Digest> = HashSet::from([top.digest]);
        let mut manifests: Vec<(Descriptor, Vec<u8>)> = Vec::new();
        if store_top {
            manifests.push((top_descriptor.clone(), top.bytes.clone()));
        }
        let mut blobs: Vec<Descriptor> = Vec::new();
        let mut pending: Vec<Descriptor> = top_children;
        while let Some(child) = pending.pop() {
            if !seen.insert(child.digest) {
                continue;
            }
            if !child.is_manifest() {
                blobs.push(child);
                continue;
            }
            if manifests.len() > 10_000 {
                return Err(OciError::InvalidManifest {
                    what: format!("{reference}"),
                    reason: "refers to more than 10000 manifests".into(),
                });
            }
            let fetched = self.fetch_manifest(reference, Some(&child)).await?;
            pending.extend(fetched.manifest()?.children());
            manifests.push((child, fetched.bytes));
        }
        Ok(ImageManifests {
            reference: reference.with_digest(named.digest),
            descriptor: named,
            source_index,
            manifests,
            blobs,
        })
    }

    /// Downloads `blobs` (each from the repository paired with it),
    /// `concurrency` at a time, started in the order the stream yields
    /// them, each landed one reported to `landed`. The first failure sets
    /// `cancel`, which stops the rest at their next chunk, and is returned
    /// with the blob's digest; `cancel` set from outside stops them too,
    /// without an error. Every transfer is waited for, so no temporary file
    /// outlives the call.
    async fn pull_many(
        &self,
        store: &LayoutStore,
        blobs: impl Stream<Item = (Reference, Descriptor)>,
        cancel: &AtomicBool,
        landed: &(dyn Fn(&Digest) + Sync),
    ) -> Result<Vec<(BlobOutcome, u64)>, (Digest, OciError)> {
        let first_error = &Mutex::new(None);
        let results: Vec<(BlobOutcome, u64)> = blobs
            .map(|(repository, descriptor)| async move {
                if cancel.load(Ordering::SeqCst) {
                    return None;
                }
                match self
                    .pull_blob(store, &repository, &descriptor, Some(cancel))
                    .await
                {
                    Ok(done) => {
                        landed(&descriptor.digest);
                        Some(done)
                    }
                    Err(error) => {
                        if !cancel.swap(true, Ordering::SeqCst) {
                            *first_error.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some((descriptor.digest, error));
                        }
                        None
                    }
                }
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .filter_map(|done| async move { done })
            .collect()
            .await;
        match first_error.lock().unwrap_or_else(|p| p.into_inner()).take() {
            Some(failed) => Err(failed),
            None => Ok(results),
        }
    }

    async fn pull_blobs(
        &self,
        store: &LayoutStore,
        arrivals: &Arrivals,
    ) -> Result<PulledBlobs, FailedBlob> {
        let landed = |digest: &Digest| arrivals.landed(digest);
        let queue = stream::unfold((), |()| async {
            arrivals.next().await.map(|blob| (blob, ()))
        });
        let pulled = self
            .pull_many(store, queue, arrivals.stop_flag(), &landed)
            .await;
        match pulled {
            Ok(results) => {
                let present = results
                    .iter()
                    .filter(|(outcome, _)| *outcome == BlobOutcome::AlreadyPresent)
                    .count();
                Ok(PulledBlobs {
                    fetched: results.len() - present,
                    present,
                    bytes_fetched: results.iter().map(|(_, bytes)| bytes).sum(),
                })
            }
            Err((digest, error)) => {
                arrivals.fail(Some(digest), &tender_format::error::chain_message(&error));
                Err(FailedBlob {
                    digest,
                    error: Box::new(error),
                })
            }
        }
    }

    // --- signatures ------------------------------------------------------------

    async fn find_signatures(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<RelatedArtifact>, OciError> {
        // Mostly 404s, one round trip each: ask them all at once.
        let cosign = future::try_join_all(COSIGN_SUFFIXES.map(|(suffix, kind)| async move {
            let tagged = reference.with_tag(&format!("sha256-{}.{suffix}", digest.hex()))?;
            match self.fetch_manifest(&tagged, None).await {
                Ok(resolved) => Ok(Some(RelatedArtifact {
                    kind,
                    descriptor: resolved.descriptor(),
                    reference: tagged,
                })),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e),
            }
        }));
        let (cosign, referrers) =
            future::try_join(cosign, self.referrers(reference, digest)).await?;
        let mut found: Vec<RelatedArtifact> = cosign.into_iter().flatten().collect();
        for descriptor in referrers {
            if found
                .iter()
                .any(|f| f.descriptor.digest == descriptor.digest)
            {
                continue;
            }
            found.push(RelatedArtifact {
                kind: ArtifactKind::Referrer,
                reference: reference.by_digest(descriptor.digest),
                descriptor,
            });
        }
        Ok(found)
    }

    async fn referrers(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Vec<Descriptor>, OciError> {
        let host = self.host(reference.registry())?;
        let repository = reference.repository();
        let what = format!("referrers of {}@{digest}", reference.name());
        let url = &self.url(&host, &format!("{repository}/referrers/{digest}"));
        let (host, what_ref) = (&*host, what.as_str());
        let api = self.retrying(what_ref, || async move {
            let what = what_ref;
            let response = self
                .send(host, repository, Op::Pull, what, &|http| {
                    Ok(http.get(url.clone()).header(ACCEPT, OCI_INDEX))
                })
                .await?;
            match response.status() {
                StatusCode::OK => Ok(Some(read_limited(what, response, MAX_MANIFEST_SIZE).await?)),
                // Not supported (distribution 2.8 has no such route).
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => Ok(None),
                _ => Err(status_error(what, response).await),
            }
        });
        // The referrers tag schema, an index tagged sha256-<hex>, for
        // registries without the API: asked at the same time, so their
        // answer costs no second round trip.
        let tagged = reference.with_tag(&format!("sha256-{}", digest.hex()))?;
        let (body, by_tag) = future::join(api, self.fetch_manifest(&tagged, None)).await;
        let index = match body? {
            Some(body) => Manifest::parse(&body, OCI_INDEX).map_err(|e| OciError::Protocol {
                what: what.clone(),
                reason: format!("the referrers API did not return an image index: {e}"),
            })?,
            None => match by_tag {
                Ok(resolved) => resolved.manifest()?,
                Err(e) if e.is_not_found() => return Ok(Vec::new()),
                Err(e) => return Err(e),
            },
        };
        match index {
            Manifest::Index(index) => Ok(index.manifests),
            _ => Ok(Vec::new()),
        }
    }

    // --- push ------------------------------------------------------------------

    async fn push_blob(
        &self,
        store: &LayoutStore,
        repository: &Reference,
        descriptor: &Descriptor,
        mount_from: Option<&Reference>,
    ) -> Result<BlobOutcome, OciError> {
        let digest = descriptor.digest;
        let size = descriptor.size;
        let what = format!("blob {}@{digest}", repository.name());
        match store.blob_size(&digest) {
            None => {
                return Err(OciError::MissingBlob {
                    dir: store.root().to_path_buf(),
                    digest,
                });
            }
            Some(actual) if actual != size => {
                return Err(OciError::SizeMismatch {
                    what: format!("OCI layout {}: blob {digest}", store.root().display()),
                    expected: size,
                    actual,
                });
            }
            Some(_) => {}
        }
        self.observer().on_blob_start(&digest, size);
        let host = self.host(repository.registry())?;
        let repo = repository.repository();
        let blob_url = &self.url(&host, &format!("{repo}/blobs/{digest}"));
        let (host, what_ref) = (&*host, what.as_str());
        let present = self
            .retrying(what_ref, || async move {
                let what = what_ref;
                let response = self
                    .send(host, repo, Op::Push, what, &|http| {
                        Ok(http.head(blob_url.clone()))
                    })
                    .await?;
                match response.status() {
                    StatusCode::OK => Ok(true),
                    StatusCode::NOT_FOUND => Ok(false),
                    _ => Err(status_error(what, response).await),
                }
            })
            .await?;
        if present {
            self.observer()
                .on_blob_done(&digest, size, BlobOutcome::AlreadyPresent);
            return Ok(BlobOutcome::AlreadyPresent);
        }
        let mount_from = mount_from
            .filter(|from| from.registry() == repository.registry() && from.repository() != repo);
        let path = &store.blob_path(&digest);
        let outcome = self
            .retrying(what_ref, || {
                self.upload(host, repo, what_ref, descriptor, path, mount_from)
            })
            .await?;
        self.observer().on_blob_done(&digest, size, outcome);
        Ok(outcome)
    }

    async fn upload(
        &self,
        host: &Host,
        repo: &str,
        what: &str,
        descriptor: &Descriptor,
        path: &Path,
        mount_from: Option<&Reference>,
    ) -> Result<BlobOutcome, OciError> {
        let digest = descriptor.digest;
        let size = descriptor.size;
        let mut start = self.url(host, &format!("{repo}/blobs/uploads/"));
        if let Some(from) = mount_from {
            start
                .query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from.repository());
        }
        let response = self
            .send(host, repo, Op::Push, what, &|http| {
                Ok(http.post(start.clone()).header(CONTENT_LENGTH, 0))
            })
            .await?;
        match response.status() {
            StatusCode::CREATED if mount_from.is_some() => {
                check_digest_header(what, response.headers(), &digest)?;
                return Ok(BlobOutcome::Mounted);
            }
            StatusCode::ACCEPTED => {}
            _ => return Err(status_error(what, response).await),
        }
        let mut location = upload_location(what, &start, &response)?;

        let mut offset = 0u64;
        let chunk_size = self.options.chunk_size.max(1);
        if size > chunk_size {
            while offset < size {
                let length = chunk_size.min(size - offset);
                let at = location.clone();
                let response = self
                    .send(host, repo, Op::Push, what, &|http| {
                        let body = self.file_body(what, path, &digest, offset, length)?;
                        Ok(http
                            .patch(at.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, format!("{offset}-{}", offset + length - 1))
                            .header(CONTENT_LENGTH, length)
                            .body(body))
                    })
                    .await?;
                if response.status() != StatusCode::ACCEPTED {
                    return Err(status_error(what, response).await);
                }
                location = upload_location(what, &at, &response)?;
                offset += length;
            }
        }
        let remaining = size - offset;
        let mut finish = location;
        finish
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let response = self
            .send(host, repo, Op::Push, what, &|http| {
                let request = http
                    .put(finish.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, remaining);
                Ok(if remaining == 0 {
                    request
                } else {
                    request.body(self.file_body(what, path, &digest, offset, remaining)?)
                })
            })
            .await?;
        if response.status() != StatusCode::CREATED {
            return Err(status_error(what, response).await);
        }
        check_digest_header(what, response.headers(), &digest)?;
        Ok(BlobOutcome::Transferred)
    }

    /// A request body streaming `length` bytes of the file from `offset`,
    /// reporting progress.
    fn file_body(
        &self,
        what: &str,
        path: &Path,
        digest: &Digest,
        offset: u64,
        length: u64,
    ) -> Result<reqwest::Body, OciError> {
        let mut file = std::fs::File::open(path)
            .map_err(|e| OciError::io(format!("opening {} for {what}", path.display()), e))?;
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| OciError::io(format!("seeking in {} for {what}", path.display()), e))?;
        let file = tokio::fs::File::from_std(file);
        let observer = Arc::clone(&self.options.observer);
        let digest = *digest;
        let chunks = stream::unfold(
            (file, length, offset),
            move |(mut file, remaining, position)| {
                let observer = Arc::clone(&observer);
                async move {
                    if remaining == 0 {
                        return None;
                    }
                    let want = (remaining as usize).min(READ_BUFFER);
                    let mut buf = vec![0u8; want];
                    match file.read(&mut buf).await {
                        Ok(0) => Some((
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the blob file is shorter than its descriptor",
                            )),
                            (file, 0, position),
                        )),
                        Ok(n) => {
                            buf.truncate(n);
                            let position = position + n as u64;
                            observer.on_blob_progress(&digest, position);
                            Some((Ok(Bytes::from(buf)), (file, remaining - n as u64, position)))
                        }
                        Err(e) => Some((Err(e), (file, 0, position))),
                    }
                }
            },
        );
        Ok(reqwest::Body::wrap_stream(chunks))
    }

    async fn push_manifest(
        &self,
        repository: &Reference,
        reference: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, OciError> {
        let digest = Digest::of(bytes);
        let what = format!("manifest {}:{reference}", repository.name());
        if reference.starts_with("sha256:") {
            let named: Digest = reference.parse().map_err(|_| OciError::InvalidReference {
                input: reference.to_string(),
                reason: "not a valid digest".into(),
            })?;
            if named != digest {
                return Err(OciError::DigestMismatch {
                    what,
                    expected: named,
                    actual: digest,
                });
            }
        } else {
            repository.with_tag(reference)?;
        }
        Manifest::parse(bytes, media_type).map_err(|e| match e {
            OciError::InvalidManifest { reason, .. } => OciError::InvalidManifest {
                what: what.clone(),
                reason,
            },
            other => other,
        })?;
        let host = self.host(repository.registry())?;
        let repo = repository.repository();
        let url = &self.url(&host, &format!("{repo}/manifests/{reference}"));
        let body = &Bytes::copy_from_slice(bytes);
        let (host, what_ref, digest_ref) = (&*host, what.as_str(), &digest);
        self.retrying(what_ref, || async move {
            let what = what_ref;
            let response = self
                .send(host, repo, Op::Push, what, &|http| {
                    Ok(http
                        .put(url.clone())
                        .header(CONTENT_TYPE, media_type)
                        .body(body.clone()))
                })
                .await?;
            if !matches!(response.status(), StatusCode::CREATED | StatusCode::OK) {
                return Err(status_error(what, response).await);
            }
            check_digest_header(what, response.headers(), digest_ref)
        })
        .await?;
        Ok(digest)
    }

    async fn push_image(
        &self,
        store: &LayoutStore,
        descriptor: &Descriptor,
        target: &Reference,
    ) -> Result<PushedImage, OciError> {
        if let Some(pinned) = target.digest()
            && *pinned != descriptor.digest
        {
            return Err(OciError::DigestMismatch {
                what: format!("pushing to {target}"),
                expected: *pinned,
                actual: descriptor.digest,
            });
        }
        let walked = store.walk_image(descriptor)?;
        let (manifests, blobs): (Vec<&Descriptor>, Vec<&Descriptor>) =
            walked.iter().partition(|d| d.is_manifest());
        let mut outcomes: BTreeMap<Digest, BlobOutcome> = stream::iter(blobs)
            .map(|blob| async move {
                let outcome = self.push_blob(store, target, blob, None).await?;
                Ok::<_, OciError>((blob.digest, outcome))
            })
            .buffer_unordered(self.options.concurrency.max(1))
            .try_collect()
            .await?;
        for manifest in manifests {
            let top = manifest.digest == descriptor.digest;
            let present = self.has_manifest(target, &manifest.digest).await?;
            outcomes.insert(
                manifest.digest,
                if present {
                    BlobOutcome::AlreadyPresent
                } else {
                    BlobOutcome::Transferred
                },
            );
            if present && !top {
                continue;
            }
            let (bytes, _) = store.read_manifest(manifest)?;
            let reference = if top {
                target
                    .tag()
                    .map_or_else(|| manifest.digest.to_string(), str::to_string)
            } else {
                manifest.digest.to_string()
            };
            self.push_manifest(target, &reference, &bytes, &manifest.media_type)
                .await?;
        }
        Ok(PushedImage {
            digest: descriptor.digest,
            outcomes,
        })
    }

    /// Whether `repository` has the manifest `digest` (HEAD).
    async fn has_manifest(
        &self,
        repository: &Reference,
        digest: &Digest,
    ) -> Result<bool, OciError> {
        let what = format!("manifest {}@{digest}", repository.name());
        let host = self.host(repository.registry())?;
        let repo = repository.repository();
        let url = &self.url(&host, &format!("{repo}/manifests/{digest}"));
        let accept = &MANIFEST_ACCEPT.join(", ");
        let (host, what_ref) = (&*host, what.as_str());
        self.retrying(what_ref, || async move {
            let response = self
                .send(host, repo, Op::Push, what_ref, &|http| {
                    Ok(http.head(url.clone()).header(ACCEPT, accept.as_str()))
                })
                .await?;
            match response.status() {
                StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(status_error(what_ref, response).await),
            }
        })
        .await
    }
}

fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::SeqCst))
}

fn cancelled(what: &str) -> OciError {
    OciError::io(
        what.to_string(),
        io::Error::new(
            io::ErrorKind::Interrupted,
            "cancelled: another transfer of the same image failed",
        ),
    )
}

/// Whether everything `descriptor` reaches is in `store`.
fn image_complete(store: &LayoutStore, descriptor: &Descriptor) -> bool {
    store
        .walk_image(descriptor)
        .is_ok_and(|all| all.iter().all(|d| store.has_blob(&d.digest)))
}

fn join_platforms<'a>(platforms: impl Iterator<Item = &'a Platform>) -> String {
    let list: Vec<String> = platforms.map(Platform::to_string).collect();
    if list.is_empty() {
        "no platforms".to_string()
    } else {
        list.join(", ")
    }
}

fn basic_header(username: &str, password: &str) -> HeaderValue {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// The upload URL in `Location`, resolved against the request URL.
fn upload_location(what: &str, request: &Url, response: &Response) -> Result<Url, OciError> {
    let value =
        header_text(response.headers(), LOCATION.as_str()).ok_or_else(|| OciError::Protocol {
            what: what.to_string(),
            reason: format!(
                "answered {} without a Location header",
                response.status().as_u16()
            ),
        })?;
    request.join(&value).map_err(|e| OciError::Protocol {
        what: what.to_string(),
        reason: format!("Location {value:?} is not a URL: {e}"),
    })
}

fn check_digest_header(what: &str, headers: &HeaderMap, digest: &Digest) -> Result<(), OciError> {
    let Some(header) = header_text(headers, DOCKER_CONTENT_DIGEST) else {
        return Ok(());
    };
    let stored: Digest = header.parse().map_err(|_| OciError::Protocol {
        what: what.to_string(),
        reason: format!("Docker-Content-Digest {header:?} is not a sha256 digest"),
    })?;
    if stored != *digest {
        return Err(OciError::DigestMismatch {
            what: format!("{what} (the registry stored it as {stored})"),
            expected: *digest,
            actual: stored,
        });
    }
    Ok(())
}

/// Reads a response body, failing past `limit` bytes.
async fn read_limited(what: &str, response: Response, limit: u64) -> Result<Vec<u8>, OciError> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(OciError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| transport_error(what, &e))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(OciError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The error for a response with an unexpected status; reads (a bounded
/// part of) the body for the registry's error message.
async fn status_error(what: &str, response: Response) -> OciError {
    let status = response.status();
    let retry_after = header_text(response.headers(), RETRY_AFTER.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_limited(what, response, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_string()
    });
    match status.as_u16() {
        404 => OciError::NotFound {
            what: what.to_string(),
        },
        401 | 403 => OciError::Denied {
            what: what.to_string(),
            status: status.as_u16(),
            message,
        },
        code => OciError::Status {
            what: what.to_string(),
            status: code,
            message,
            retry_after,
        },
    }
}

/// `CODE: message` of a distribution error body, or its first line.
fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body)
        && !envelope.errors.is_empty()
    {
        let parts: Vec<String> = envelope
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect();
        return Some(parts.join("; "));
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

/// A reqwest error as [`OciError::Tls`] or [`OciError::Transport`], with
/// its whole cause chain (reqwest's own message hides the cause).
fn transport_error(what: &str, error: &reqwest::Error) -> OciError {
    let detail = error_chain(error);
    match rustls_cause(error) {
        Some(tls) => {
            let hint = match tls {
                rustls::Error::InvalidMessage(_) => {
                    " (the registry may speak plain HTTP: set plain_http for it)"
                }
                rustls::Error::InvalidCertificate(_) => {
                    " (install its CA on this machine, or set insecure_skip_tls_verify for it)"
                }
                _ => "",
            };
            OciError::Tls {
                what: what.to_string(),
                detail: format!("{tls}{hint}"),
            }
        }
        // The chain above the resolver's words is reqwest and hyper
        // restating the URL: the host and the resolver's reason say it all.
        None if is_name_resolution(error) => OciError::NameResolution {
            what: what.to_string(),
            host: error
                .url()
                .and_then(|u| u.host_str())
                .unwrap_or("the registry")
                .to_string(),
            detail: root_cause(error),
        },
        None => OciError::Transport {
            what: what.to_string(),
            detail,
        },
    }
}

/// Whether a connection failed because the host name did not resolve:
/// hyper's connector wraps every resolver failure in a `ConnectError`
/// whose message is exactly "dns error" (the type is private, so the
/// message is its only mark; the resolver's own text below it differs by
/// libc). Opened like [`rustls_cause`].
fn is_name_resolution(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.to_string() == "dns error" {
        return true;
    }
    if let Some(io) = error.downcast_ref::<io::Error>()
        && let Some(inner) = io.get_ref()
        && is_name_resolution(inner)
    {
        return true;
    }
    error.source().is_some_and(is_name_resolution)
}

/// The rustls error behind a connection failure, if any. TLS errors arrive
/// as `io::Error(Other)` around `io::Error(InvalidData)` around
/// `rustls::Error`, and `io::Error::source()` skips what it wraps, so each
/// io::Error is opened with `get_ref`.
fn rustls_cause<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(io) = error.downcast_ref::<io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(tls) = rustls_cause(inner)
    {
        return Some(tls);
    }
    error.source().and_then(rustls_cause)
}

/// The innermost error's words.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

fn map_oci_error(registry: &str, error: oci_client::errors::OciDistributionError) -> OciError {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::RequestError(e) => transport_error(&format!("{registry}: authenticating"), &e),
        E::ServerError { code, message, .. } => OciError::Status {
            what: format!("{registry}: authenticating"),
            status: code,
            message,
            retry_after: None,
        },
        other => OciError::Auth {
            registry: registry.to_string(),
            reason: other.to_string(),
        },
    }
}

/// A message from the network side to the blocking writer.
enum Chunk {
    Data(Bytes),
    End,
}

/// Reads what the network side sends; a channel closed without
/// [`Chunk::End`] is an aborted transfer, not the end of the blob.
struct ChannelReader {
    receiver: mpsc::Receiver<Chunk>,
    current: Bytes,
    ended: bool,
}

impl ChannelReader {
    fn new(receiver: mpsc::Receiver<Chunk>) -> Self {
        ChannelReader {
            receiver,
            current: Bytes::new(),
            ended: false,
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.current.is_empty() {
                let n = buf.len().min(self.current.len());
                buf[..n].copy_from_slice(&self.current.split_to(n));
                return Ok(n);
            }
            if self.ended {
                return Ok(0);
            }
            match self.receiver.blocking_recv() {
                Some(Chunk::Data(bytes)) => self.current = bytes,
                Some(Chunk::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the download was aborted",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_standard_base64() {
        assert_eq!(basic_header("user", "pass"), "Basic dXNlcjpwYXNz");
        assert!(basic_header("user", "pass").is_sensitive());
    }

    #[test]
    fn error_messages_from_distribution_bodies() {
        assert_eq!(
            error_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#)
                .unwrap(),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(
            error_message(b"\n404 page not found\n").unwrap(),
            "404 page not found"
        );
        assert_eq!(error_message(b""), None);
    }

    #[test]
    fn options_pick_per_registry_settings() {
        let options =
            ClientOptions::default().registry("127.0.0.1:5000", RegistrySettings::plain_http());
        assert!(options.settings_for("127.0.0.1:5000").plain_http);
        assert!(!options.settings_for("other:5000").plain_http);
    }

    #[test]
    fn channel_reader_needs_an_explicit_end() {
        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Chunk::Data(Bytes::from_static(b"abc")))
            .unwrap();
        sender.try_send(Chunk::End).unwrap();
        let mut out = Vec::new();
        ChannelReader::new(receiver).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"abc");

        let (sender, receiver) = mpsc::channel(4);
        sender
            .try_send(Chunk::Data(Bytes::from_static(b"ab")))
            .unwrap();
        drop(sender);
        let mut out = Vec::new();
        let err = ChannelReader::new(receiver)
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionAborted);
    }
}
