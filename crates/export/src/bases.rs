//! What `--base` names, resolved to what sites hold (bundle spec §8).
//!
//! A base is a bundle file, a bundle the hub recorded (`sha256:<manifest
//! digest>`), one site (`site:NAME`: the bundle its clusters run, narrowed
//! to the blobs its last receipt listed), or `sites`: every targeted site
//! the hub has receipts from. Sites that run the same bundle share one
//! base, so a thousand sites on three releases make three deltas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use tender_format::Digest;

use crate::delta::Base;
use crate::error::ExportError;
use crate::hub::store::{HubStore, StoredBundle};

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
    let mut receipts: Option<Receipts> = None;
    for value in values {
        let site_names: Vec<&str> = if value == "sites" {
            targeted_sites.iter().map(String::as_str).collect()
        } else if let Some(site) = value.strip_prefix("site:") {
            vec![site]
        } else {
            let bundle = if let Ok(digest) = value.parse::<Digest>() {
                hub.bundle(&digest)?.ok_or_else(|| ExportError::Base {
                    base: value.clone(),
                    reason: "the hub has not recorded this bundle (pass the bundle file instead)"
                        .into(),
                })?
            } else if Path::new(value).is_file() {
                hub.ingest(Path::new(value))?
            } else {
                return Err(ExportError::Base {
                    base: value.clone(),
                    reason: "not a bundle file, sha256:<manifest digest>, site:NAME or sites"
                        .into(),
                });
            };
            let held = bundle.release_blobs();
            add(Base {
                bundle,
                held,
                sites: Vec::new(),
            });
            continue;
        };
        if receipts.is_none() {
            receipts = Some(Receipts::read(hub, hub_dir, value)?);
        }
        let receipts = receipts.as_ref().expect("read above");
        for site in site_names {
            match receipts.base_of(hub_dir, site, value)? {
                Some(base) => add(base),
                None if value == "sites" => {}
                None => {
                    return Err(ExportError::Base {
                        base: value.clone(),
                        reason: "the hub has no receipt from this site naming a bundle it exported"
                            .into(),
                    });
                }
            }
        }
    }
    Ok(by_bundle.into_values().collect())
}

/// What the hub's receipts say each site runs, read once for all sites,
/// with the hub's recorded bundles by id.
struct Receipts {
    status: crate::hub::HubStatus,
    bundles: BTreeMap<String, StoredBundle>,
}

impl Receipts {
    fn read(hub: &HubStore, hub_dir: &Path, value: &str) -> Result<Self, ExportError> {
        // Staleness does not matter here; a century keeps the arithmetic sane.
        let status = crate::hub::status(hub_dir, 36_500).map_err(|e| ExportError::Base {
            base: value.to_string(),
            reason: tender_format::error::chain_message(&e),
        })?;
        let bundles = hub
            .bundles()?
            .into_iter()
            .map(|b| (b.manifest.bundle_id.clone(), b))
            .collect();
        Ok(Receipts { status, bundles })
    }

    /// The base of one site: the newest bundle its clusters run that the
    /// hub recorded, narrowed to the blobs its inventory lists.
    fn base_of(
        &self,
        hub_dir: &Path,
        site: &str,
        value: &str,
    ) -> Result<Option<Base>, ExportError> {
        let Some(record) = self.status.sites.iter().find(|s| s.site == site) else {
            return Ok(None);
        };
        let mut runs: Vec<_> = record.clusters.iter().collect();
        runs.sort_by_key(|c| std::cmp::Reverse(c.sequence));
        let Some(bundle) = runs.iter().find_map(|c| self.bundles.get(&c.bundle_id)) else {
            return Ok(None);
        };
        let mut held = bundle.release_blobs();
        let inventory = crate::hub::inventory(hub_dir, site).map_err(|e| ExportError::Base {
            base: value.to_string(),
            reason: tender_format::error::chain_message(&e),
        })?;
        if let Some(inventory) = inventory {
            let listed: BTreeSet<Digest> = inventory.blobs.into_iter().collect();
            held.retain(|d, _| listed.contains(d));
        }
        Ok(Some(Base {
            bundle: bundle.clone(),
            held,
            sites: vec![site.to_string()],
        }))
    }
}
