//! The field engineer's side of tender: nothing from a bundle is used
//! before its signatures satisfy the site's trust policy and every byte
//! has matched its signed digest; nothing becomes visible before the
//! import commits.

mod admission;
pub mod audit;
pub mod check;
pub mod delta;
pub mod error;
mod failpoint;
pub mod import;
pub mod inventory;
pub mod lifecycle;
pub mod load;
pub mod metrics;
pub mod publish;
pub mod receipts;
pub mod releases;
pub mod site;
pub mod stage;
pub mod state;
pub mod verify;

pub use check::{CheckReport, check};
pub use error::ImportError;
pub use import::{ImportOptions, ImportOutcome, ImportReport, import};
pub use site::Site;
pub use verify::{VerifyReport, verify_bundle};
