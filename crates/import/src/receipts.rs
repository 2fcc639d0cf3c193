//! Receipts for the hub: after each import or rollback, what the site now
//! runs, signed with the site's own key (`siteKey` in the site file) and
//! written to `<stateDir>/receipts/` to travel back by stick or uplink.

use std::path::PathBuf;
use tender_format::FromIo;

use tender_format::Digest;
use tender_receipt::{Action, FORMAT, Receipt, ReleaseEntry};
use tender_trust::PrivateKey;
use tender_trust::keys::now_rfc3339;

use crate::audit::Appended;
use crate::error::ImportError;
use crate::site::Site;
use crate::state::read_state;

/// Writes a signed receipt; `None` when the site has no key configured.
#[allow(clippy::too_many_arguments)]
pub fn write(
    site: &Site,
    action: Action,
    bundle_id: &str,
    manifest_digest: &Digest,
    channel: &str,
    sequence: u64,
    audit: &Appended,
) -> Result<Option<PathBuf>, ImportError> {
    let Some(key_path) = &site.site_key else {
        return Ok(None);
    };
    let key = PrivateKey::read_owner_only(key_path)?;
    let state = read_state(&site.state_dir)?;
    let releases = state
        .current
        .values()
        .map(|r| ReleaseEntry {
            cluster: r.cluster.clone(),
            channel: r.channel.clone(),
            sequence: r.sequence,
            bundle_id: r.bundle_id.clone(),
            manifests: r.manifests,
        })
        .collect();
    let audit_last_hash = audit
        .hash
        .parse()
        .map_err(|_| ImportError::Audit(format!("audit hash {} is not a digest", audit.hash)))?;
    let mut receipt = Receipt {
        format: FORMAT.to_string(),
        site: site.name.clone(),
        action,
        result: "ok".into(),
        time: now_rfc3339(),
        bundle_id: bundle_id.to_string(),
        manifest_digest: *manifest_digest,
        channel: channel.to_string(),
        sequence,
        releases,
        audit_last_hash,
        audit_index: audit.index,
        inventory_digest: Digest::of(b""),
        inventory: None,
    };
    receipt.set_inventory(crate::inventory::current(site)?, true);
    receipt.validate()?;
    let signed = receipt.sign(&key);
    let dir = site.state_dir.join("receipts");
    tender_format::atomic::create_dir_all(&dir)
        .map_err(|e| ImportError::io_at("creating", &dir, e))?;
    let path = dir.join(signed.file_name());
    signed.to_file(&path)?;
    Ok(Some(path))
}
