//! Pulling: manifests fetched and verified against their digest, blobs
//! streamed into a [`LayoutStore`], whole images with platform filters.

use std::collections::HashSet;
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use tender_format::FromIo;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{Response, StatusCode};
use tender_format::Digest;
use tokio::sync::mpsc;

use crate::arrivals::Arrivals;
use crate::error::OciError;
use crate::layout::LayoutStore;
use crate::media::{
    Descriptor, MANIFEST_ACCEPT, MAX_MANIFEST_SIZE, Manifest, Platform, declared_media_type,
    effective_media_type,
};
use crate::observer::BlobOutcome;
use crate::reference::Reference;

use super::auth::Op;
use super::transport::{header_text, read_limited, status_error, transport_error};
use super::{DOCKER_CONTENT_DIGEST, Inner};

pub(super) const CHANNEL_DEPTH: usize = 16;

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

/// What [`RegistryClient::pull_image`](super::RegistryClient::pull_image) stored.
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
/// none of them downloaded yet: what [`RegistryClient::fetch_image`](super::RegistryClient::fetch_image)
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
    /// image; [`RegistryClient::pull_image`](super::RegistryClient::pull_image) stores them first.
    pub fn store(&self, store: &LayoutStore, ref_name: &str) -> Result<(), OciError> {
        for (descriptor, bytes) in self.manifests.iter().rev() {
            let written = store.put_blob_bytes(bytes)?;
            debug_assert_eq!(written, descriptor.digest);
        }
        store.set_tag(ref_name, self.descriptor.clone())
    }
}

/// What [`RegistryClient::pull_blobs`](super::RegistryClient::pull_blobs) did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PulledBlobs {
    /// Blobs downloaded.
    pub fetched: usize,
    /// Blobs the store already had.
    pub present: usize,
    pub bytes_fetched: u64,
}

/// The blob a [`RegistryClient::pull_blobs`](super::RegistryClient::pull_blobs) batch failed on.
#[derive(Debug, thiserror::Error)]
#[error("blob {digest}")]
pub struct FailedBlob {
    pub digest: Digest,
    #[source]
    pub error: Box<OciError>,
}

impl Inner {
    /// GET a manifest by tag or digest, verified; `expected` (a child's
    /// descriptor) also fixes its size and media type.
    pub(super) async fn fetch_manifest(
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

    pub(super) async fn resolve(
        &self,
        reference: &Reference,
    ) -> Result<ResolvedManifest, OciError> {
        self.fetch_manifest(reference, None).await
    }

    /// Downloads one blob unless present. `cancel`, once set (another
    /// transfer of the same pull failed), stops this one at the next chunk;
    /// it still waits for its writer, so no temporary file outlives it.
    pub(super) async fn pull_blob(
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
    pub(super) async fn stream_into_store(
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

    pub(super) async fn pull_image(
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

    /// Fetches every manifest of an image (see [`RegistryClient::pull_image`](super::RegistryClient::pull_image)
    /// for what a platform filter keeps) and lists the blobs they name.
    pub(super) async fn fetch_image(
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
    pub(super) async fn pull_many(
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

    pub(super) async fn pull_blobs(
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
}

pub(super) fn is_cancelled(cancel: Option<&AtomicBool>) -> bool {
    cancel.is_some_and(|c| c.load(Ordering::SeqCst))
}

pub(super) fn cancelled(what: &str) -> OciError {
    OciError::io(
        what.to_string(),
        io::Error::new(
            io::ErrorKind::Interrupted,
            "cancelled: another transfer of the same image failed",
        ),
    )
}

/// Whether everything `descriptor` reaches is in `store`.
pub(super) fn image_complete(store: &LayoutStore, descriptor: &Descriptor) -> bool {
    store
        .walk_image(descriptor)
        .is_ok_and(|all| all.iter().all(|d| store.has_blob(&d.digest)))
}

pub(super) fn join_platforms<'a>(platforms: impl Iterator<Item = &'a Platform>) -> String {
    let list: Vec<String> = platforms.map(Platform::to_string).collect();
    if list.is_empty() {
        "no platforms".to_string()
    } else {
        list.join(", ")
    }
}

/// A message from the network side to the blocking writer.
pub(super) enum Chunk {
    Data(Bytes),
    End,
}

/// Reads what the network side sends; a channel closed without
/// [`Chunk::End`] is an aborted transfer, not the end of the blob.
pub(super) struct ChannelReader {
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
