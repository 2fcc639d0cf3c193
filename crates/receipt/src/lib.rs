//! Receipts: after every import, refusal or rollback a site writes a
//! receipt signed with its own key (`receipt`); it travels back to the hub
//! by stick or uplink, where `hub` checks it against the site keys the hub
//! knows and records which site and cluster runs which sequence.
//!
//! Format and hub layout: `docs/receipts.md`.

pub mod error;
pub mod history;
pub mod hub;
pub mod receipt;

pub use error::ReceiptError;
pub use history::{ClusterHistory, History, Run, history};
pub use hub::{
    AddSite, ClusterState, ClusterStatus, HubStatus, IngestOutcome, IngestStatus, SiteInventory,
    SiteStatus, add_site, ingest, inventory, new_audit_trail, status, status_at,
};
pub use receipt::{
    Action, FORMAT, Receipt, ReleaseEntry, SIGNING_ROLE, SignedReceipt, inventory_digest,
    signing_input,
};
