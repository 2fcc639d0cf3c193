//! One request → one response: the read endpoints of the distribution spec
//! (and OCI 1.1 referrers) over the store; everything else is refused.

use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use hyper::body::Incoming;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::json;
use tender_format::Digest;
use tender_oci::media::{ImageIndex, MAX_MANIFEST_SIZE, OCI_INDEX};
use tender_oci::{LayoutStore, OciError};

use crate::body::Body;
use crate::catalog::{Catalog, Content, Repo};
use crate::log::{LogEvent, Logger, RequestLog};
use crate::range::{self, ByteRange};
use crate::routes::{self, Route};

const JSON: &str = "application/json";
const OCTET_STREAM: &str = "application/octet-stream";

/// What every connection shares: the store, the catalog of its current
/// `index.json`, the logger.
pub(crate) struct State {
    store: LayoutStore,
    index_path: PathBuf,
    cache: Mutex<Cached>,
    /// Held while `index.json` is re-read, so concurrent requests that all
    /// notice a change reload it once.
    reload: tokio::sync::Mutex<()>,
    logger: Logger,
}

struct Cached {
    stamp: Option<IndexStamp>,
    catalog: Arc<Catalog>,
}

/// What tells one `index.json` from the next. The store replaces it by
/// rename, so the inode changes with every write; mtime, ctime and size
/// cover an in-place edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct IndexStamp {
    modified: Option<SystemTime>,
    len: u64,
    #[cfg(unix)]
    inode: (u64, u64),
    #[cfg(unix)]
    changed: (i64, i64),
}

impl IndexStamp {
    fn of(path: &Path) -> Option<IndexStamp> {
        let meta = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt;
        Some(IndexStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }
}

impl State {
    /// Reads the store's `index.json` the first time; fails if it cannot be.
    pub fn load(store: LayoutStore, logger: Logger) -> Result<State, OciError> {
        let index_path = store.root().join("index.json");
        let stamp = IndexStamp::of(&index_path);
        let catalog = Catalog::load(&store)?;
        let state = State {
            store,
            index_path,
            cache: Mutex::new(Cached {
                stamp,
                catalog: Arc::new(Catalog::default()),
            }),
            reload: tokio::sync::Mutex::new(()),
            logger,
        };
        state.install(stamp, catalog, false);
        Ok(state)
    }

    pub fn warn(&self, message: String) {
        (self.logger)(&LogEvent::Warning { message });
    }

    fn install(&self, stamp: Option<IndexStamp>, catalog: Catalog, reload: bool) -> Arc<Catalog> {
        for warning in &catalog.warnings {
            self.warn(warning.clone());
        }
        (self.logger)(&LogEvent::Loaded {
            repositories: catalog.repository_count(),
            tags: catalog.tag_count(),
            reload,
        });
        let catalog = Arc::new(catalog);
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        *cache = Cached {
            stamp,
            catalog: catalog.clone(),
        };
        catalog
    }

    fn cached(&self, stamp: Option<IndexStamp>) -> Option<Arc<Catalog>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        (cache.stamp == stamp).then(|| cache.catalog.clone())
    }

    /// The catalog of the current `index.json`, re-read if it changed since
    /// (an import adding images while we serve). A stat per request; the
    /// walk only when the file changed. If the new file cannot be read, the
    /// previous catalog stays (with a warning) until the file changes again.
    async fn catalog(&self) -> Arc<Catalog> {
        let stamp = IndexStamp::of(&self.index_path);
        if let Some(catalog) = self.cached(stamp) {
            return catalog;
        }
        let _reloading = self.reload.lock().await;
        // Stamped before reading: a change during the read shows up as a
        // different stamp next time, and is read again.
        let stamp = IndexStamp::of(&self.index_path);
        if let Some(catalog) = self.cached(stamp) {
            return catalog;
        }
        let store = self.store.clone();
        let loaded = match tokio::task::spawn_blocking(move || Catalog::load(&store)).await {
            Ok(loaded) => loaded.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match loaded {
            Ok(catalog) => self.install(stamp, catalog, true),
            Err(reason) => {
                self.warn(format!(
                    "re-reading {}: {reason}; still serving the images it listed before",
                    self.index_path.display()
                ));
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                cache.stamp = stamp;
                cache.catalog.clone()
            }
        }
    }
}

/// An OCI error response (`{"errors":[{"code":...,"message":...}]}`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn read_only() -> ApiError {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            "tender serve is read-only",
        )
    }

    fn internal(what: impl std::fmt::Display) -> ApiError {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN",
            format!("the store could not serve {what}; see the server's log"),
        )
    }

    fn into_response(self, head: bool) -> Response<Body> {
        let body = json!({"errors": [{"code": self.code, "message": self.message}]});
        let mut response = json_response(self.status, JSON, &body, head);
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            set(&mut response, header::ALLOW, "GET, HEAD");
        }
        response
    }
}

/// The hyper service: answers, then arranges the request's log line for
/// when the body is done.
pub(crate) async fn serve(
    state: Arc<State>,
    request: Request<Incoming>,
    remote: SocketAddr,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let head = request.method() == Method::HEAD;
    let mut response = match respond(&state, &request, head).await {
        Ok(response) => response,
        Err(error) => error.into_response(head),
    };
    set(
        &mut response,
        HeaderName::from_static("docker-distribution-api-version"),
        "registry/2.0",
    );
    let planned = if head {
        0
    } else {
        response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut record = RequestLog {
        remote,
        method: request.method().to_string(),
        target: request
            .uri()
            .path_and_query()
            .map_or_else(|| request.uri().path().to_string(), |p| p.to_string()),
        status: response.status().as_u16(),
        bytes: 0,
        complete: false,
        millis: 0,
    };
    let logger = state.logger.clone();
    response.body_mut().on_end(move |sent| {
        record.bytes = sent;
        record.complete = sent >= planned;
        record.millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        logger(&LogEvent::Request(record));
    });
    Ok(response)
}

async fn respond(
    state: &State,
    request: &Request<Incoming>,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return Err(ApiError::read_only());
    }
    let query = request.uri().query();
    let route = routes::parse(request.uri().path()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "UNSUPPORTED",
            "no such endpoint in the distribution API",
        )
    })?;
    if route == Route::Base {
        return Ok(json_response(StatusCode::OK, JSON, &json!({}), head));
    }
    let catalog = state.catalog().await;
    match route {
        Route::Base => unreachable!("answered above"),
        Route::Catalog => {
            let page = paginate(catalog.listed().iter(), query)?;
            let body = json!({ "repositories": page.items });
            let mut response = json_response(StatusCode::OK, JSON, &body, head);
            if let Some((n, last)) = page.next {
                link_next(&mut response, &format!("/v2/_catalog?n={n}&last={last}"));
            }
            Ok(response)
        }
        Route::Tags { name } => {
            let repo = find_repo(&catalog, name, query)?;
            if !repo.shared_by.is_empty() {
                return Err(shared_path(repo, name));
            }
            let page = paginate(repo.tags.keys(), query)?;
            let body = json!({ "name": name, "tags": page.items });
            let mut response = json_response(StatusCode::OK, JSON, &body, head);
            if let Some((n, last)) = page.next {
                link_next(
                    &mut response,
                    &format!("/v2/{name}/tags/list?n={n}&last={last}"),
                );
            }
            Ok(response)
        }
        Route::Manifest { name, reference } => {
            let repo = find_repo(&catalog, name, query)?;
            manifest(state, repo, name, reference, request, head).await
        }
        Route::Blob { name, digest } => {
            let digest = parse_digest(digest)?;
            let repo = find_repo(&catalog, name, query)?;
            blob(state, repo, name, digest, request, head).await
        }
        Route::Referrers { name, digest } => {
            let digest = parse_digest(digest)?;
            let repo = find_repo(&catalog, name, query)?;
            let mut manifests = repo.referrers.get(&digest).cloned().unwrap_or_default();
            let filter = routes::query_param(query, "artifactType");
            if let Some(filter) = &filter {
                manifests.retain(|d| d.artifact_type.as_deref() == Some(filter.as_str()));
            }
            let index = ImageIndex {
                manifests,
                ..ImageIndex::empty()
            };
            let mut response = json_response(StatusCode::OK, OCI_INDEX, &index, head);
            if filter.is_some() {
                set(
                    &mut response,
                    HeaderName::from_static("oci-filters-applied"),
                    "artifactType",
                );
            }
            Ok(response)
        }
    }
}

fn find_repo<'c>(
    catalog: &'c Catalog,
    name: &str,
    query: Option<&str>,
) -> Result<&'c Repo, ApiError> {
    if !routes::valid_name(name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
            "invalid repository name",
        ));
    }
    let ns = routes::query_param(query, "ns");
    catalog.lookup(name, ns.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("repository {name} is not in this registry"),
        )
    })
}

/// A tag asked for by a path that several registries' repositories share
/// (see `catalog`): which one is meant cannot be told.
fn shared_path(repo: &Repo, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NAME_UNKNOWN",
        format!(
            "repository {name} is in this registry under more than one source registry; \
             ask for one of {} (by digest, {name} serves them all)",
            repo.shared_by.join(", ")
        ),
    )
}

fn parse_digest(text: &str) -> Result<Digest, ApiError> {
    text.parse::<Digest>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
            "invalid digest: expected sha256: and 64 lowercase hex digits",
        )
    })
}

/// One page of a sorted list.
struct Page<'a> {
    items: Vec<&'a String>,
    /// `(n, last)` for the `Link` header, if more follow.
    next: Option<(usize, String)>,
}

/// The page of a sorted list that `n` and `last` ask for (the spec's
/// pagination): the items after `last`, at most `n` of them.
fn paginate<'a>(
    items: impl Iterator<Item = &'a String>,
    query: Option<&str>,
) -> Result<Page<'a>, ApiError> {
    let n = match routes::query_param(query, "n") {
        None => None,
        Some(text) => Some(text.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "PAGINATION_NUMBER_INVALID",
                "n must be a non-negative integer",
            )
        })?),
    };
    let last = routes::query_param(query, "last");
    let mut rest = items
        .filter(|item| last.as_deref().is_none_or(|last| item.as_str() > last))
        .peekable();
    let page: Vec<&String> = match n {
        Some(n) => rest.by_ref().take(n).collect(),
        None => rest.by_ref().collect(),
    };
    let next = match (n, page.last()) {
        (Some(n), Some(last)) if rest.peek().is_some() => Some((n, last.to_string())),
        _ => None,
    };
    Ok(Page { items: page, next })
}

fn link_next(response: &mut Response<Body>, target: &str) {
    set(response, header::LINK, &format!("<{target}>; rel=\"next\""));
}

/// A manifest by digest or tag: its bytes (`GET`) or headers only
/// (`HEAD`), or 304 when the client's `If-None-Match` already names it.
async fn manifest(
    state: &State,
    repo: &Repo,
    name: &str,
    reference: &str,
    request: &Request<Incoming>,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let unknown = || manifest_unknown(name, reference);
    let (digest, content) = resolve_manifest(repo, name, reference)?;
    let etag = format!("\"{digest}\"");
    let mut response = if not_modified(request, &etag) {
        status_response(StatusCode::NOT_MODIFIED, Body::empty())
    } else if head {
        manifest_head(state, digest, &content, unknown).await?
    } else {
        manifest_get(state, digest, &content, unknown).await?
    };
    set(&mut response, header::CONTENT_TYPE, &content.media_type);
    set(
        &mut response,
        HeaderName::from_static("docker-content-digest"),
        &digest.to_string(),
    );
    set(&mut response, header::ETAG, &etag);
    Ok(response)
}

/// `MANIFEST_UNKNOWN` for `reference` in repository `name`.
fn manifest_unknown(name: &str, reference: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "MANIFEST_UNKNOWN",
        format!("manifest {reference} is not in repository {name}"),
    )
}

/// The manifest `reference` names in `repo`: a digest, or a tag (refused
/// in a repository several source paths share, where a tag is ambiguous).
fn resolve_manifest(
    repo: &Repo,
    name: &str,
    reference: &str,
) -> Result<(Digest, Content), ApiError> {
    let unknown = || manifest_unknown(name, reference);
    if reference.contains(':') {
        let digest = parse_digest(reference)?;
        return Ok((digest, repo.manifest(&digest).ok_or_else(unknown)?.clone()));
    }
    if !routes::valid_tag(reference) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "TAG_INVALID",
            "invalid tag",
        ));
    }
    if !repo.shared_by.is_empty() {
        return Err(shared_path(repo, name));
    }
    let descriptor = repo.tags.get(reference).ok_or_else(unknown)?;
    Ok((
        descriptor.digest,
        Content {
            media_type: descriptor.media_type.clone(),
            size: descriptor.size,
        },
    ))
}

/// `HEAD`: the length, once the store is known to hold the manifest at
/// the size its descriptor says.
async fn manifest_head(
    state: &State,
    digest: Digest,
    content: &Content,
    unknown: impl Fn() -> ApiError,
) -> Result<Response<Body>, ApiError> {
    let store = state.store.clone();
    let size = blocking(move || store.blob_size(&digest)).await?;
    match size {
        Some(size) if size == content.size => {}
        Some(size) => {
            state.warn(format!(
                "manifest {digest} in the store is {size} bytes, its descriptor says {}",
                content.size
            ));
            return Err(ApiError::internal(digest));
        }
        None => {
            state.warn(format!("manifest {digest} is missing from the store"));
            return Err(unknown());
        }
    }
    let mut response = status_response(StatusCode::OK, Body::empty());
    set(
        &mut response,
        header::CONTENT_LENGTH,
        &content.size.to_string(),
    );
    Ok(response)
}

/// `GET`: the manifest's bytes, checked against its descriptor's size.
async fn manifest_get(
    state: &State,
    digest: Digest,
    content: &Content,
    unknown: impl Fn() -> ApiError,
) -> Result<Response<Body>, ApiError> {
    let store = state.store.clone();
    let bytes = match blocking(move || store.read_blob(&digest, MAX_MANIFEST_SIZE)).await? {
        Ok(bytes) => bytes,
        Err(OciError::MissingBlob { .. }) => {
            state.warn(format!("manifest {digest} is missing from the store"));
            return Err(unknown());
        }
        Err(e) => {
            state.warn(e.to_string());
            return Err(ApiError::internal(digest));
        }
    };
    if bytes.len() as u64 != content.size {
        state.warn(format!(
            "manifest {digest} in the store is {} bytes, its descriptor says {}",
            bytes.len(),
            content.size
        ));
        return Err(ApiError::internal(digest));
    }
    let mut response = status_response(StatusCode::OK, Body::empty());
    set(
        &mut response,
        header::CONTENT_LENGTH,
        &bytes.len().to_string(),
    );
    *response.body_mut() = Body::bytes(bytes);
    Ok(response)
}

async fn blob(
    state: &State,
    repo: &Repo,
    name: &str,
    digest: Digest,
    request: &Request<Incoming>,
    head: bool,
) -> Result<Response<Body>, ApiError> {
    let unknown = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "BLOB_UNKNOWN",
            format!("blob {digest} is not in repository {name}"),
        )
    };
    if !repo.content.contains_key(&digest) {
        return Err(unknown());
    }
    let etag = format!("\"{digest}\"");
    let mut response = if not_modified(request, &etag) {
        status_response(StatusCode::NOT_MODIFIED, Body::empty())
    } else {
        let range_header = request
            .headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A range is honoured only for this very blob (always so: its ETag
        // is its digest), as If-Range means.
        let if_range = request
            .headers()
            .get(header::IF_RANGE)
            .is_none_or(|v| v.as_bytes() == etag.as_bytes());
        let path = state.store.blob_path(&digest);
        let opened = blocking(move || open_range(&path, range_header.as_deref(), if_range)).await?;
        let (file, len, range) = match opened {
            Ok(opened) => opened,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                state.warn(format!("blob {digest} is missing from the store"));
                return Err(unknown());
            }
            Err(e) => {
                state.warn(format!("reading blob {digest} from the store: {e}"));
                return Err(ApiError::internal(digest));
            }
        };
        let (status, length, content_range) = match range {
            ByteRange::Full => (StatusCode::OK, len, None),
            ByteRange::Partial { start, end } => (
                StatusCode::PARTIAL_CONTENT,
                end - start + 1,
                Some(format!("bytes {start}-{end}/{len}")),
            ),
            ByteRange::Unsatisfiable => (
                StatusCode::RANGE_NOT_SATISFIABLE,
                0,
                Some(format!("bytes */{len}")),
            ),
        };
        let body = if head || length == 0 {
            Body::empty()
        } else {
            Body::file(tokio::fs::File::from_std(file), length)
        };
        let mut response = status_response(status, body);
        set(&mut response, header::CONTENT_LENGTH, &length.to_string());
        if let Some(content_range) = content_range {
            set(&mut response, header::CONTENT_RANGE, &content_range);
        }
        response
    };
    set(&mut response, header::CONTENT_TYPE, OCTET_STREAM);
    set(
        &mut response,
        HeaderName::from_static("docker-content-digest"),
        &digest.to_string(),
    );
    set(&mut response, header::ETAG, &etag);
    set(&mut response, header::ACCEPT_RANGES, "bytes");
    // Content-addressed: never changes.
    set(
        &mut response,
        header::CACHE_CONTROL,
        "max-age=31536000, immutable",
    );
    Ok(response)
}

/// Opens a blob file, sizes it, and seeks to the start of the range asked.
fn open_range(
    path: &Path,
    range_header: Option<&str>,
    if_range: bool,
) -> io::Result<(File, u64, ByteRange)> {
    let mut file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not a file"));
    }
    let len = meta.len();
    let range = if if_range {
        range::parse(range_header, len)
    } else {
        ByteRange::Full
    };
    if let ByteRange::Partial { start, .. } = range {
        file.seek(SeekFrom::Start(start))?;
    }
    Ok((file, len, range))
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn not_modified(request: &Request<Incoming>, etag: &str) -> bool {
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == etag || tag == "*")
}

/// Runs blocking store I/O off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format_args!("a request ({e})")))
}

fn status_response(status: StatusCode, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
}

/// A JSON document; for HEAD the same headers without the body.
fn json_response(
    status: StatusCode,
    content_type: &str,
    value: &impl Serialize,
    head: bool,
) -> Response<Body> {
    let bytes = serde_json::to_vec(value).expect("serializing JSON");
    let length = bytes.len().to_string();
    let body = if head {
        Body::empty()
    } else {
        Body::bytes(bytes)
    };
    let mut response = status_response(status, body);
    set(&mut response, header::CONTENT_TYPE, content_type);
    set(&mut response, header::CONTENT_LENGTH, &length);
    response
}

/// Sets a header. Values are ours (digests, numbers, known media types); one
/// that is not a valid header value is left out rather than panic.
fn set(response: &mut Response<Body>, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, value);
    }
}
