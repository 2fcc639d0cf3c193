//! What `--base` names, resolved to what sites hold (bundle spec §8).
//!
//! A base is a bundle file, a bundle the hub recorded (`sha256:<manifest
//! digest>`), one site (`site:NAME`: the bundle its clusters run, narrowed
//! to the blobs its last receipt listed), or `sites`: every targeted site
//! the hub has receipts from. Sites that run the same bundle share one
//! base, so a thousand sites on three releases make three deltas.

use std::collections::BTreeMap;
use std::path::Path;

use tender_format::Digest;

use crate::delta::Base;
use crate::error::ExportError;
use crate::hub_store::HubStore;

/// Resolves `--base` values into bases; sites named by several values are
/// merged into one group per base bundle.
pub fn resolve(
    values: &[String],
    hub: &HubStore,
    hub_dir: &Path,
    targeted_sites: &[String],
) -> Result<Vec<Base>, ExportError> {
    let mut by_bundle: BTreeMap<Digest, Base> = BTreeMap::new();
    let mut add = |base: Base| {
        let key = base.bundle.manifest_digest;
        match by_bundle.get_mut(&key) {
            Some(group) => {
                // Reference only what every site of the group holds.
                group.held.retain(|d, _| base.held.contains_key(d));
                group.sites.extend(base.sites);
                group.sites.sort();
                group.sites.dedup();
            }
            None => {
                by_bundle.insert(key, base);
            }
        }
    };
    for value in values {
        if value == "sites" {
            for site in targeted_sites {
                if let Some(base) = for_site(hub, hub_dir, site, value)? {
                    add(base);
                }
            }
        } else if let Some(site) = value.strip_prefix("site:") {
            match for_site(hub, hub_dir, site, value)? {
                Some(base) => add(base),
                None => {
                    return Err(ExportError::Base {
                        base: value.clone(),
                        reason: "the hub has no receipt from this site naming a bundle it exported"
                            .into(),
                    });
                }
            }
        } else if let Ok(digest) = value.parse::<Digest>() {
            let bundle = hub.bundle(&digest)?.ok_or_else(|| ExportError::Base {
                base: value.clone(),
                reason: "the hub has not recorded this bundle (pass the bundle file instead)"
                    .into(),
            })?;
            let held = bundle.release_blobs();
            add(Base {
                bundle,
                held,
                sites: Vec::new(),
            });
        } else {
            let path = Path::new(value);
            if !path.is_file() {
                return Err(ExportError::Base {
                    base: value.clone(),
                    reason: "not a bundle file, sha256:<manifest digest>, site:NAME or sites"
                        .into(),
                });
            }
            let bundle = hub.ingest(path)?;
            let held = bundle.release_blobs();
            add(Base {
                bundle,
                held,
                sites: Vec::new(),
            });
        }
    }
    Ok(by_bundle.into_values().collect())
}

/// The base of one site from the hub's receipts: the newest bundle its
/// clusters run that the hub recorded, and the blobs its inventory lists.
fn for_site(
    hub: &HubStore,
    hub_dir: &Path,
    site: &str,
    value: &str,
) -> Result<Option<Base>, ExportError> {
    let receipt_error = |e: tender_receipt::ReceiptError| ExportError::Base {
        base: value.to_string(),
        reason: e.to_string(),
    };
    // Staleness does not matter here; a century keeps the arithmetic sane.
    let status = tender_receipt::hub::status(hub_dir, 36_500).map_err(receipt_error)?;
    let Some(record) = status.sites.iter().find(|s| s.site == site) else {
        return Ok(None);
    };
    let mut runs: Vec<_> = record.clusters.iter().collect();
    runs.sort_by_key(|c| std::cmp::Reverse(c.sequence));
    let mut bundle = None;
    for cluster in runs {
        if let Some(b) = hub.bundle_by_id(&cluster.bundle_id)? {
            bundle = Some(b);
            break;
        }
    }
    let Some(bundle) = bundle else {
        return Ok(None);
    };
    let mut held = bundle.release_blobs();
    if let Some(inventory) = tender_receipt::hub::inventory(hub_dir, site).map_err(receipt_error)? {
        let listed: std::collections::BTreeSet<Digest> = inventory.blobs.into_iter().collect();
        held.retain(|d, _| listed.contains(d));
    }
    Ok(Some(Base {
        bundle,
        held,
        sites: vec![site.to_string()],
    }))
}
