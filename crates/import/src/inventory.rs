//! The site's inventory: every blob it holds, as the hub needs to know for
//! delta bundles. The embedded store is its own inventory; for a registry
//! target tender keeps the list of what it pushed (`inventory.json`).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use tender_format::{Digest, atomic};

use crate::error::ImportError;
use crate::site::{ImageTarget, Site};

const FILE: &str = "inventory.json";

/// Adds blobs to the recorded inventory.
pub fn add(state_dir: &Path, blobs: &[Digest]) -> Result<(), ImportError> {
    let mut all = recorded(state_dir)?;
    let before = all.len();
    all.extend(blobs.iter().copied());
    if all.len() == before {
        return Ok(());
    }
    let path = state_dir.join(FILE);
    let text = serde_json::to_vec(&all).expect("digests serialize");
    atomic::write(&path, &text).map_err(|e| ImportError::io("writing inventory", &path, e))
}

fn recorded(state_dir: &Path) -> Result<BTreeSet<Digest>, ImportError> {
    let path = state_dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            ImportError::io(
                "reading inventory",
                &path,
                std::io::Error::other(e.to_string()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
        Err(e) => Err(ImportError::io("reading inventory", &path, e)),
    }
}

/// What the site holds now.
pub fn current(site: &Site) -> Result<BTreeSet<Digest>, ImportError> {
    match &site.target {
        ImageTarget::Registry(_) => recorded(&site.state_dir),
        ImageTarget::Embedded => {
            let dir = site.store_dir().join("blobs/sha256");
            let mut out = BTreeSet::new();
            let entries = match fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(ImportError::io("listing", &dir, e)),
            };
            for e in entries {
                let e = e.map_err(|err| ImportError::io("listing", &dir, err))?;
                if let Ok(d) = Digest::from_hex(&e.file_name().to_string_lossy()) {
                    out.insert(d);
                }
            }
            Ok(out)
        }
    }
}
