//! Choosing the base layer a changed layer is patched against.
//!
//! Same image lineage first: the layer at the same position of the same
//! repository is almost always the previous build of the same thing. Failing
//! that, the layer whose files overlap most (by path, weighted by size),
//! which finds a base layer that moved to another position or repository.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use tender_format::Digest;

use crate::compression::{Compression, decoder};

/// Where a layer sits: the repository of an image that uses it, and its
/// position in that image's layer list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Place {
    pub repository: String,
    pub index: usize,
}

/// A layer that could serve as a patch source, or that needs one.
#[derive(Debug, Clone)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub path: PathBuf,
    pub places: Vec<Place>,
}

/// Why a source was chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Choice {
    /// Same repository, same position.
    Lineage,
    /// Most files in common; the score is the overlap, 0 to 1.
    Overlap(f32),
}

/// Least file overlap worth a patch.
const MIN_OVERLAP: f32 = 0.1;

/// File listings of layers, computed once per layer.
#[derive(Default)]
pub struct Listings {
    cache: HashMap<Digest, Option<Listing>>,
}

/// The regular files and links of a layer tar: path to size.
type Listing = BTreeMap<Vec<u8>, u64>;

impl Listings {
    fn get(&mut self, layer: &Layer) -> Option<&Listing> {
        self.cache
            .entry(layer.digest)
            .or_insert_with(|| list(&layer.path).ok())
            .as_ref()
    }
}

/// Picks the best source for `target` among `candidates` (the base layers
/// the site holds), or `None` when nothing is similar enough.
pub fn choose(
    target: &Layer,
    candidates: &[Layer],
    listings: &mut Listings,
) -> Option<(usize, Choice)> {
    let lineage = candidates.iter().position(|c| {
        c.digest != target.digest && c.places.iter().any(|p| target.places.contains(p))
    });
    if let Some(i) = lineage {
        return Some((i, Choice::Lineage));
    }
    let target_listing = listings.get(target)?.clone();
    let mut best: Option<(usize, f32)> = None;
    for (i, candidate) in candidates.iter().enumerate() {
        // A layer a quarter or four times the size shares little.
        if candidate.size.saturating_mul(4) < target.size
            || candidate.size > target.size.saturating_mul(4)
        {
            continue;
        }
        let Some(listing) = listings.get(candidate) else {
            continue;
        };
        let score = overlap(&target_listing, listing);
        if score >= MIN_OVERLAP && best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best.map(|(i, score)| (i, Choice::Overlap(score)))
}

/// Bytes of files with the same path in both, over the larger total.
fn overlap(a: &Listing, b: &Listing) -> f32 {
    let total = |l: &Listing| l.values().map(|s| s + 1).sum::<u64>();
    let larger = total(a).max(total(b));
    if larger == 0 {
        return 0.0;
    }
    let shared: u64 = a
        .iter()
        .filter_map(|(path, size)| b.get(path).map(|other| size.min(other) + 1))
        .sum();
    shared as f32 / larger as f32
}

/// Lists a layer's tar headers without extracting anything.
fn list(path: &Path) -> io::Result<Listing> {
    let compression = Compression::of_file(path)?;
    let mut archive = tar::Archive::new(decoder(File::open(path)?, compression)?);
    let mut listing = Listing::new();
    for entry in archive.entries()? {
        let entry = entry?;
        let size = entry.header().size().unwrap_or(0);
        listing.insert(entry.path_bytes().into_owned(), size);
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(files: &[(&str, u64)]) -> Listing {
        files
            .iter()
            .map(|(p, s)| (p.as_bytes().to_vec(), *s))
            .collect()
    }

    #[test]
    fn overlap_weighs_by_size() {
        let a = listing(&[("usr/bin/ruff", 1000), ("etc/x", 10)]);
        let b = listing(&[("usr/bin/ruff", 1100), ("etc/y", 10)]);
        let c = listing(&[("etc/x", 10), ("etc/z", 1000)]);
        assert!(overlap(&a, &b) > 0.8);
        assert!(overlap(&a, &c) < 0.05);
        assert_eq!(overlap(&Listing::new(), &Listing::new()), 0.0);
    }

    #[test]
    fn lineage_wins_without_reading_layers() {
        let place = Place {
            repository: "app".into(),
            index: 1,
        };
        let layer = |digest: &[u8], places: Vec<Place>| Layer {
            digest: Digest::of(digest),
            size: 10,
            path: PathBuf::from("/nonexistent"),
            places,
        };
        let target = layer(b"new", vec![place.clone()]);
        let candidates = vec![layer(b"other", vec![]), layer(b"old", vec![place])];
        let mut listings = Listings::default();
        assert_eq!(
            choose(&target, &candidates, &mut listings),
            Some((1, Choice::Lineage))
        );
        // Without lineage, unreadable layers give no choice.
        let target = layer(b"new", vec![]);
        assert_eq!(choose(&target, &candidates, &mut listings), None);
    }
}
