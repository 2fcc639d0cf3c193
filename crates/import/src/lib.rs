//! The field engineer's side of tender: nothing from a bundle is used
//! before its signatures satisfy the site's trust policy and every byte
//! has matched its signed digest.

pub mod error;
pub mod verify;

pub use error::ImportError;
pub use verify::{VerifyReport, verify_bundle};
