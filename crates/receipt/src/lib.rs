//! Receipts: after every import, refusal or rollback a site writes a
//! receipt signed with its own key. It travels back to the hub by stick or
//! uplink, where the hub (`tender_export::hub`) checks it against the site
//! keys it knows and records which site and cluster runs which sequence.
//! This crate is the format only: both sides use it.
//!
//! Format: `docs/receipts.md`.

pub mod error;
pub mod receipt;

pub use error::ReceiptError;
pub use receipt::{
    Action, FORMAT, Receipt, ReleaseEntry, SIGNING_ROLE, SignedReceipt, inventory_digest,
    parse_time, signing_input,
};
