//! Where each image comes from: its own registry, a mirror registry, or an
//! OCI layout directory on the hub (`oci-layout:PATH`), as the fleet's
//! `mirrors` say. Whatever the source, the image lands in the staging
//! layout under its original reference, with every blob hash-checked.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use tender_format::Digest;
use tender_oci::{Descriptor, LayoutStore, Platform, Reference, RegistryClient};

use crate::error::ExportError;

/// Where one registry host's images are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// Another registry (`host[:port]`), same repository paths.
    Registry(String),
    /// An OCI image layout whose ref names are full references.
    Layout(PathBuf),
}

impl Mirror {
    pub fn parse(value: &str, base: &std::path::Path) -> Mirror {
        match value.strip_prefix("oci-layout:") {
            Some(path) => Mirror::Layout(base.join(path)),
            None => Mirror::Registry(value.to_string()),
        }
    }
}

/// An image in the staging layout.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub descriptor: Descriptor,
    /// Blobs copied or downloaded (already-present ones not counted).
    pub blobs_fetched: usize,
    pub bytes_fetched: u64,
}

/// Reads images from registries and layouts into the staging layout.
pub struct ImageSources<'a> {
    pub client: &'a RegistryClient,
    pub mirrors: BTreeMap<String, Mirror>,
    pub platforms: Option<Vec<Platform>>,
    layouts: Mutex<BTreeMap<PathBuf, LayoutStore>>,
}

impl<'a> ImageSources<'a> {
    pub fn new(
        client: &'a RegistryClient,
        mirrors: BTreeMap<String, Mirror>,
        platforms: Option<Vec<Platform>>,
    ) -> Self {
        ImageSources {
            client,
            mirrors,
            platforms,
            layouts: Mutex::new(BTreeMap::new()),
        }
    }

    fn mirror_for(&self, reference: &Reference) -> Option<&Mirror> {
        self.mirrors.get(reference.registry())
    }

    /// A mirror layout, opened once and shared (clones share its lock).
    fn layout(&self, path: &PathBuf) -> Result<LayoutStore, ExportError> {
        let mut layouts = self.layouts.lock().expect("no panics while locked");
        if !layouts.contains_key(path) {
            let store = LayoutStore::open(path)?;
            layouts.insert(path.clone(), store);
        }
        Ok(layouts[path].clone())
    }

    /// The digest a reference resolves to, without fetching layers.
    pub fn resolve(&self, reference: &Reference) -> Result<Descriptor, ExportError> {
        match self.mirror_for(reference).cloned() {
            Some(Mirror::Layout(path)) => {
                let store = &self.layout(&path)?;
                Ok(store.resolve(&reference.to_string())?)
            }
            Some(Mirror::Registry(host)) => {
                let mirrored = reference.with_registry(&host)?;
                Ok(self.client.resolve(&mirrored)?.descriptor())
            }
            None => Ok(self.client.resolve(reference)?.descriptor()),
        }
    }

    /// Fetches an image into `staging` and names it `reference`.
    pub fn fetch(
        &self,
        reference: &Reference,
        staging: &LayoutStore,
    ) -> Result<Fetched, ExportError> {
        let name = reference.to_string();
        match self.mirror_for(reference).cloned() {
            Some(Mirror::Layout(path)) => {
                let source = &self.layout(&path)?;
                let descriptor = source.resolve(&name)?;
                let (blobs_fetched, bytes_fetched) = copy_image(source, staging, &descriptor)?;
                staging.set_tag(&name, descriptor.clone())?;
                Ok(Fetched {
                    descriptor,
                    blobs_fetched,
                    bytes_fetched,
                })
            }
            Some(Mirror::Registry(host)) => {
                let mirrored = reference.with_registry(&host)?;
                let pulled =
                    self.client
                        .pull_image(&mirrored, staging, self.platforms.as_deref())?;
                staging.remove_tag(&pulled.ref_name)?;
                staging.set_tag(&name, pulled.descriptor.clone())?;
                Ok(Fetched {
                    descriptor: pulled.descriptor,
                    blobs_fetched: pulled.blobs_fetched,
                    bytes_fetched: pulled.bytes_fetched,
                })
            }
            None => {
                let pulled =
                    self.client
                        .pull_image(reference, staging, self.platforms.as_deref())?;
                if pulled.ref_name != name {
                    staging.remove_tag(&pulled.ref_name)?;
                    staging.set_tag(&name, pulled.descriptor.clone())?;
                }
                Ok(Fetched {
                    descriptor: pulled.descriptor,
                    blobs_fetched: pulled.blobs_fetched,
                    bytes_fetched: pulled.bytes_fetched,
                })
            }
        }
    }

    /// Signatures, attestations and SBOMs of `digest`, fetched into
    /// `staging` under their own tags (cosign's `sha256-<hex>.sig`) so
    /// the site's admission controller can still verify the image.
    pub fn fetch_signatures(
        &self,
        reference: &Reference,
        digest: &Digest,
        staging: &LayoutStore,
    ) -> Result<Vec<String>, ExportError> {
        let mut names = Vec::new();
        match self.mirror_for(reference).cloned() {
            Some(Mirror::Layout(path)) => {
                let source = &self.layout(&path)?;
                for suffix in ["sig", "att", "sbom"] {
                    let tag = format!("sha256-{}.{suffix}", digest.hex());
                    let name = reference.with_tag(&tag)?.to_string();
                    let name = strip_digest(&name);
                    if let Ok(descriptor) = source.resolve(&name) {
                        copy_image(source, staging, &descriptor)?;
                        staging.set_tag(&name, descriptor)?;
                        names.push(name);
                    }
                }
            }
            mirror => {
                let lookup = match &mirror {
                    Some(Mirror::Registry(host)) => reference.with_registry(host)?,
                    _ => reference.clone(),
                };
                for artifact in self.client.find_signatures(&lookup, digest)? {
                    let pulled = self.client.pull_image(&artifact.reference, staging, None)?;
                    staging.remove_tag(&pulled.ref_name)?;
                    // Name it in the original registry's terms.
                    let original = Reference::from_parts(
                        reference.registry(),
                        reference.repository(),
                        artifact.reference.tag(),
                        artifact.reference.digest().copied(),
                    )?;
                    let name = original.to_string();
                    staging.set_tag(&name, pulled.descriptor)?;
                    names.push(name);
                }
            }
        }
        Ok(names)
    }
}

/// `repo:tag@sha256:...` → `repo:tag` (signature tags are looked up by tag).
fn strip_digest(name: &str) -> String {
    match name.split_once('@') {
        Some((head, _)) => head.to_string(),
        None => name.to_string(),
    }
}

/// Copies an image's blobs between layouts, re-hashing every byte.
/// Returns (blobs copied, bytes copied).
fn copy_image(
    from: &LayoutStore,
    to: &LayoutStore,
    top: &Descriptor,
) -> Result<(usize, u64), ExportError> {
    let mut count = 0;
    let mut bytes = 0;
    for d in from.walk_image(top)? {
        if to.has_blob(&d.digest) {
            continue;
        }
        let file = from.open_blob(&d.digest)?;
        let written = to.write_blob_from(file, &d.digest, Some(d.size))?;
        if !written.already_present {
            count += 1;
            bytes += written.size;
        }
    }
    Ok((count, bytes))
}
