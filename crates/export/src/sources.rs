//! Where each image comes from: its own registry, a mirror registry, or an
//! OCI layout directory on the hub (`oci-layout:PATH`), as the fleet's
//! `mirrors` say. Whatever the source, the image lands in the staging
//! layout under its original reference, with every blob hash-checked.
//!
//! Registry images are staged in two steps: their manifests at once
//! ([`ImageSources::stage`]), their other blobs later, those of all images
//! together, each once, in the order the bundle lists them
//! ([`Downloads`]), so the bundle can be written while they land.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread;

use tender_oci::{
    Arrivals, Descriptor, FailedBlob, LayoutStore, Platform, PulledBlobs, Reference, RegistryClient,
};

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

/// An image in the staging layout: its manifests, and its signature
/// artifacts', stored and named; its other blobs there too, or pending.
#[derive(Debug, Clone)]
pub struct Staged {
    pub descriptor: Descriptor,
    /// The names the signature artifacts were staged under.
    pub signatures: Vec<String>,
    /// Blobs still to download, each with the repository to ask.
    pub pending: Vec<(Reference, Descriptor)>,
    /// Blobs copied from a mirror layout (already-present ones not counted).
    pub blobs_copied: usize,
    pub bytes_copied: u64,
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

    /// Stages an image and its signatures, attestations and SBOMs (under
    /// their own tags, cosign's `sha256-<hex>.sig`, so the site's admission
    /// controller can still verify it), named by `reference`. From a layout
    /// everything is copied; from a registry the blobs are left pending.
    pub fn stage(
        &self,
        reference: &Reference,
        staging: &LayoutStore,
    ) -> Result<Staged, ExportError> {
        let name = reference.to_string();
        let from = match self.mirror_for(reference).cloned() {
            Some(Mirror::Layout(path)) => {
                return self.copy(reference, &self.layout(&path)?, staging);
            }
            Some(Mirror::Registry(host)) => reference.with_registry(&host)?,
            None => reference.clone(),
        };
        let image = self
            .client
            .fetch_image(&from, staging, self.platforms.as_deref())?;
        image.store(staging, &name)?;
        let mut pending = with_repository(&from, &image.blobs);
        let mut signatures = Vec::new();
        for artifact in self
            .client
            .find_signatures(&from, &image.descriptor.digest)?
        {
            let related = self
                .client
                .fetch_image(&artifact.reference, staging, None)?;
            // Name it in the original registry's terms.
            let original = Reference::from_parts(
                reference.registry(),
                reference.repository(),
                artifact.reference.tag(),
                artifact.reference.digest().copied(),
            )?;
            let name = original.to_string();
            related.store(staging, &name)?;
            pending.extend(with_repository(&artifact.reference, &related.blobs));
            signatures.push(name);
        }
        Ok(Staged {
            descriptor: image.descriptor,
            signatures,
            pending,
            blobs_copied: 0,
            bytes_copied: 0,
        })
    }

    /// Stages an image, and its cosign tags, from a mirror layout.
    fn copy(
        &self,
        reference: &Reference,
        source: &LayoutStore,
        staging: &LayoutStore,
    ) -> Result<Staged, ExportError> {
        let name = reference.to_string();
        let descriptor = source.resolve(&name)?;
        let (mut blobs_copied, mut bytes_copied) = copy_image(source, staging, &descriptor)?;
        staging.set_tag(&name, descriptor.clone())?;
        let mut signatures = Vec::new();
        for suffix in ["sig", "att", "sbom"] {
            let tag = format!("sha256-{}.{suffix}", descriptor.digest.hex());
            let name = strip_digest(&reference.with_tag(&tag)?.to_string());
            if let Ok(related) = source.resolve(&name) {
                let (blobs, bytes) = copy_image(source, staging, &related)?;
                blobs_copied += blobs;
                bytes_copied += bytes;
                staging.set_tag(&name, related)?;
                signatures.push(name);
            }
        }
        Ok(Staged {
            descriptor,
            signatures,
            pending: Vec::new(),
            blobs_copied,
            bytes_copied,
        })
    }
}

fn with_repository(repository: &Reference, blobs: &[Descriptor]) -> Vec<(Reference, Descriptor)> {
    blobs
        .iter()
        .map(|d| (repository.clone(), d.clone()))
        .collect()
}

/// Pending blobs downloading into staging on a thread of their own, so the
/// bundle can be written from staging meanwhile, each blob as it lands.
pub struct Downloads {
    arrivals: Arc<Arrivals>,
    thread: Option<thread::JoinHandle<Result<PulledBlobs, FailedBlob>>>,
}

impl Downloads {
    /// Starts downloading `blobs`, each from its repository and each once,
    /// smallest digest first: the order the bundle needs them in.
    pub fn start(
        client: Arc<RegistryClient>,
        staging: LayoutStore,
        blobs: &[(Reference, Descriptor)],
    ) -> Downloads {
        let arrivals = Arc::new(Arrivals::new());
        for (repository, descriptor) in blobs {
            arrivals.expect(repository, descriptor);
        }
        arrivals.close();
        let thread = {
            let arrivals = Arc::clone(&arrivals);
            thread::spawn(move || client.pull_blobs(&staging, &arrivals))
        };
        Downloads {
            arrivals,
            thread: Some(thread),
        }
    }

    /// Which blobs have landed; wait on it before reading one.
    pub fn arrivals(&self) -> &Arrivals {
        &self.arrivals
    }

    /// Waits for the downloads to end: what they did, or the blob that
    /// failed first. (Dropped unfinished, they are stopped.)
    pub fn finish(mut self) -> Result<PulledBlobs, FailedBlob> {
        match self.thread.take() {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            None => Ok(PulledBlobs::default()),
        }
    }
}

impl Drop for Downloads {
    /// An export that returns early stops its downloads before its staging
    /// directory goes.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.arrivals.abandon();
            let _ = thread.join();
        }
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
