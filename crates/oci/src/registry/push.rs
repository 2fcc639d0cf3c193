//! Pushing: blobs (mounted, monolithic or chunked), manifests children
//! first, whole images from a [`LayoutStore`].

use std::collections::BTreeMap;
use std::io::{self, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;
use tender_format::FromIo;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, LOCATION};
use reqwest::{Response, StatusCode, Url};
use tender_format::Digest;
use tokio::io::AsyncReadExt;

use crate::error::OciError;
use crate::layout::LayoutStore;
use crate::media::{Descriptor, MANIFEST_ACCEPT, Manifest};
use crate::observer::BlobOutcome;
use crate::reference::Reference;

use super::auth::{Host, Op};
use super::transport::{header_text, status_error};
use super::{DOCKER_CONTENT_DIGEST, Inner};

pub(super) const READ_BUFFER: usize = 256 * 1024;

/// What pushing one image did, blob by blob (manifests included).
#[derive(Debug, Clone)]
pub struct PushedImage {
    /// The top manifest's digest.
    pub digest: Digest,
    /// Every blob and manifest the image reaches, once each.
    pub outcomes: BTreeMap<Digest, BlobOutcome>,
}

impl Inner {
    pub(super) async fn push_blob(
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

    pub(super) async fn upload(
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
    pub(super) fn file_body(
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

    pub(super) async fn push_manifest(
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

    pub(super) async fn push_image(
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
    pub(super) async fn has_manifest(
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

/// The upload URL in `Location`, resolved against the request URL.
pub(super) fn upload_location(
    what: &str,
    request: &Url,
    response: &Response,
) -> Result<Url, OciError> {
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

pub(super) fn check_digest_header(
    what: &str,
    headers: &HeaderMap,
    digest: &Digest,
) -> Result<(), OciError> {
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
