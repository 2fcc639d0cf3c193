//! The hub directory and its one owner, [`Hub`]. Everything the hub keeps
//! lives here, and every write to it goes through a `Hub`, which holds the
//! directory's one lock for its whole life:
//!
//! ```text
//! <hub>/
//!   lock                     held by the one Hub writing (an export, an ingest, add-site)
//!   sequences/<channel>      last sequence exported per channel   (sequences)
//!   exports.jsonl            one line per export                  (sequences)
//!   store/, bundles/         content store and sealed bundles     (store)
//!   sites/<site>.pub         each site's receipt key              (receipts)
//!   receipts/<site>/*.json   every receipt recorded               (receipts)
//!   inventories/<site>.json  the last blob inventory of a site    (receipts)
//!   status.json              what runs where: the commit point    (receipts)
//! ```
//!
//! Readers (`tender hub status`, the fleet page, an export's gates and
//! delta bases) read without the lock: every file is replaced atomically,
//! so they see one state or the next, never a torn one. Where the hub
//! directory is (`$TENDER_HUB_STATE`, ...) is the CLI's business: this
//! crate is given the path.

pub mod history;
pub mod receipts;
pub mod sequences;
pub mod store;

use std::path::{Path, PathBuf};

use tender_format::FromIo;
use tender_format::atomic;
use tender_format::lock_file::LockFile;
use tender_receipt::ReceiptError;
use tender_trust::PublicKey;

use crate::error::ExportError;
pub use history::{ClusterHistory, History, Run, history};
pub use receipts::{
    AddSite, ClusterState, ClusterStatus, HubStatus, IngestOutcome, IngestStatus, SiteInventory,
    SiteStatus, inventory, site_keys, status, status_at,
};
pub use sequences::ExportRecord;
pub use store::HubStore;

/// The hub directory, locked for the life of this value: two exports never
/// take the same sequence, and a receipt is never recorded while an export
/// (or another ingest) is writing.
pub struct Hub {
    dir: PathBuf,
    _lock: LockFile,
}

impl Hub {
    /// Opens the hub directory, creating it if needed, and waits for its
    /// lock.
    pub fn open(dir: &Path) -> Result<Self, ExportError> {
        let io = |e| ExportError::io_at("opening hub state", dir, e);
        atomic::create_dir_all(&dir.join("sequences")).map_err(io)?;
        let lock = LockFile::acquire(&dir.join("lock")).map_err(io)?;
        Ok(Hub {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last sequence exported on a channel (0 if none).
    pub fn last_sequence(&self, channel: &str) -> Result<u64, ExportError> {
        sequences::last(&self.dir, channel)
    }

    /// Picks the sequence for a new export: `requested`, which must be
    /// above the last one, or the last one plus one.
    pub fn next_sequence(&self, channel: &str, requested: Option<u64>) -> Result<u64, ExportError> {
        sequences::next(&self.dir, channel, requested)
    }

    /// Records a finished export: the log line first, then the sequence.
    pub fn record_export(&self, record: &ExportRecord) -> Result<(), ExportError> {
        sequences::record(&self.dir, record)
    }

    /// The content store and the bundles sealed from it, settled after the
    /// last export.
    pub fn store(&self) -> Result<HubStore, ExportError> {
        HubStore::open(&self.dir)
    }

    /// Registers a site's receipt key (see [`receipts::add_site`]).
    pub fn add_site(&self, site: &str, key: &PublicKey) -> Result<AddSite, ReceiptError> {
        receipts::add_site(&self.dir, site, key)
    }

    /// Verifies receipt files and records the genuine ones (see
    /// [`receipts::ingest`]).
    pub fn ingest(&self, files: &[PathBuf]) -> Result<Vec<IngestOutcome>, ReceiptError> {
        receipts::ingest(&self.dir, files)
    }

    /// Starts a new audit trail for a rebuilt site (see
    /// [`receipts::new_audit_trail`]).
    pub fn new_audit_trail(&self, site: &str) -> Result<bool, ReceiptError> {
        receipts::new_audit_trail(&self.dir, site)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use tender_format::Digest;
    use tender_receipt::{Action, FORMAT, Receipt, ReleaseEntry};

    /// A receipt of one import at `site`, with a small inventory.
    pub(crate) fn sample(site: &str, time: &str, sequence: u64) -> Receipt {
        let mut r = Receipt {
            format: FORMAT.into(),
            site: site.into(),
            action: Action::Import,
            result: "ok".into(),
            time: time.into(),
            bundle_id: format!("b-{sequence}"),
            manifest_digest: Digest::of(format!("manifest {sequence}").as_bytes()),
            channel: "stable".into(),
            sequence,
            releases: vec![ReleaseEntry {
                cluster: format!("{site}-line-a"),
                channel: "stable".into(),
                sequence,
                bundle_id: format!("b-{sequence}"),
                manifests: Digest::of(b"set"),
            }],
            audit_last_hash: Digest::of(b"audit"),
            audit_index: 3,
            inventory_digest: Digest::of(b""),
            inventory: None,
        };
        r.set_inventory([Digest::of(b"b"), Digest::of(b"a"), Digest::of(b"a")], true);
        r
    }
}
