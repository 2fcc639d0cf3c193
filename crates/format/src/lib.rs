//! The tender bundle format, version 1 (normative text: `bundle-spec/README.md`).
//!
//! A bundle is one ustar stream: the canonical-JSON bundle manifest, a
//! fixed-size signature slot, then an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/...`) whose every entry the manifest lists by
//! digest and size. This crate knows the bytes; it does not decide whom to
//! trust (that is `tender-trust`).

pub mod atomic;
pub mod canonical;
pub mod digest;
pub mod error;
mod fields;
pub mod io_error;
pub mod layout;
pub mod lock_file;
pub mod manifest;
pub mod parallel;
pub mod policy_update;
pub mod read_at;
pub mod reader;
pub mod signatures;
pub mod ustar;
mod volume_check;
pub mod volumes;
pub mod writer;

pub use digest::{Digest, Hasher};
pub use error::{Error, Rejection, Verdict};
pub use io_error::{FromIo, IoError};
pub use manifest::{
    Base, BaseBlob, BundleKind, BundleManifest, Carried, Encoding, Entry, ImageRef, PatchSource,
    Release, Targets, WholeBlob,
};
pub use reader::{BundleReader, EntrySink, ReadSummary, SinkFactory};
pub use signatures::{Signature, SignatureSlot};
pub use writer::{EntrySource, SlotEditor, write_bundle};
