//! Artifacts that refer to an image: cosign tags and the OCI 1.1
//! referrers API (with its tag fallback).

use futures_util::future;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use tender_format::Digest;

use crate::error::OciError;
use crate::media::{Descriptor, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX};
use crate::reference::Reference;

use super::Inner;
use super::auth::Op;
use super::transport::{read_limited, status_error};

/// The cosign tag suffixes [`RegistryClient::find_signatures`](super::RegistryClient::find_signatures) looks for.
pub const COSIGN_SUFFIXES: [(&str, ArtifactKind); 3] = [
    ("sig", ArtifactKind::CosignSignature),
    ("att", ArtifactKind::CosignAttestation),
    ("sbom", ArtifactKind::CosignSbom),
];

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

/// An artifact found by [`RegistryClient::find_signatures`](super::RegistryClient::find_signatures).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelatedArtifact {
    pub kind: ArtifactKind,
    /// Where to pull it from: `repo:sha256-<hex>.sig` for cosign tags,
    /// `repo@<digest>` for referrers.
    pub reference: Reference,
    pub descriptor: Descriptor,
}

impl Inner {
    pub(super) async fn find_signatures(
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

    pub(super) async fn referrers(
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
}
