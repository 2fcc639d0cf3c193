//! Trust: ed25519 keys, signing a bundle manifest, and the site trust
//! policy that decides whether the signatures on a bundle are enough.
//!
//! Keys are stored as PKCS#8 / SPKI PEM, the same files `openssl pkey`
//! reads, so a signature can be checked with stock tools in an emergency
//! (bundle-spec §6.3).

pub mod error;
pub mod keys;
pub mod policy;
pub mod update;

pub use error::TrustError;
pub use keys::{KeyId, PrivateKey, PublicKey};
pub use policy::{Evaluation, SignatureCheck, SignatureStatus, TrustPolicy};
