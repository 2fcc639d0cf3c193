//! The signature slot: entry 1 of every bundle, a fixed-size canonical JSON
//! document padded with spaces. Fixed size is what lets `tender sign` add an
//! approval on another machine by rewriting these bytes in place, without
//! touching (or re-reading) a single blob, and lets a streaming reader check
//! signatures before the first blob arrives.

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::fields::is_token;

/// Domain separation for signatures: a tender signature can never be
/// replayed as a signature over some other kind of document, and the role is
/// signed so that an approval cannot be relabelled as a release signature.
pub const SIGNING_CONTEXT: &str = "tender-bundle/v1 signature";

/// The exact bytes an ed25519 key signs: `tender-bundle/v1 signature\n`,
/// `role=<role>\n`, then the manifest bytes unchanged.
pub fn signing_input(role: &str, manifest_bytes: &[u8]) -> Vec<u8> {
    let mut input = format!("{SIGNING_CONTEXT}\nrole={role}\n").into_bytes();
    input.extend_from_slice(manifest_bytes);
    input
}

/// One signature over the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `ed25519:` and the first 16 bytes of sha256 of the raw public key, hex.
    pub key_id: String,
    /// What the signer vouches for: `release`, `approver`, ...
    pub role: String,
    /// Who signed, for people reading the audit log. Not signed.
    pub signer: String,
    /// RFC 3339 time of signing, informational. Not signed.
    pub signed_at: String,
    /// The 64-byte ed25519 signature, lowercase hex.
    pub sig: String,
}

/// The decoded slot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSlot {
    pub signatures: Vec<Signature>,
}

/// Why a slot cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("signature slot is not canonical JSON")]
    Canonical(#[from] CanonicalError),
    #[error("signature slot padding holds something other than spaces")]
    Padding,
    #[error("signature slot is full: {needed} bytes needed, {size} reserved")]
    Full { needed: usize, size: u64 },
    #[error("signature slot holds an invalid signature entry: {0}")]
    Invalid(String),
}

impl SignatureSlot {
    /// Encodes the slot, padded with spaces to exactly `size` bytes.
    pub fn encode(&self, size: u64) -> Result<Vec<u8>, SlotError> {
        self.validate()?;
        let mut bytes = canonical::to_vec(self)?;
        if bytes.len() as u64 > size {
            return Err(SlotError::Full {
                needed: bytes.len(),
                size,
            });
        }
        bytes.resize(size as usize, b' ');
        Ok(bytes)
    }

    /// Decodes a slot: canonical JSON, then spaces to the end.
    pub fn decode(bytes: &[u8]) -> Result<Self, SlotError> {
        let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
        let (json, padding) = bytes.split_at(end);
        debug_assert!(padding.iter().all(|&b| b == b' '));
        if json.contains(&0) {
            return Err(SlotError::Padding);
        }
        let slot: SignatureSlot = canonical::from_slice(json)?;
        // One slot, one encoding: serde also reads a struct from an array
        // (`[[]]`), which is canonical JSON but not the slot's form.
        if canonical::to_vec(&slot)? != json {
            return Err(CanonicalError::NotCanonical.into());
        }
        slot.validate()?;
        Ok(slot)
    }

    /// Adds a signature unless the same key already signed in that role.
    /// Returns whether the slot changed.
    pub fn add(&mut self, signature: Signature) -> bool {
        let present = self
            .signatures
            .iter()
            .any(|s| s.key_id == signature.key_id && s.role == signature.role);
        if !present {
            self.signatures.push(signature);
        }
        !present
    }

    fn validate(&self) -> Result<(), SlotError> {
        for s in &self.signatures {
            if !is_token(&s.role) {
                return Err(SlotError::Invalid(format!("role {:?}", s.role)));
            }
            let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if s.sig.len() != 128 || !s.sig.bytes().all(lower_hex) {
                return Err(SlotError::Invalid(format!("signature of key {}", s.key_id)));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `scripts/fuzz.sh` (signature_slot): serde reads a struct
    /// from an array, so `[[]]` decoded as the empty slot, a second byte
    /// form of one slot. Refused as not canonical.
    #[test]
    fn signature_slot_in_array_form() {
        let err = SignatureSlot::decode(b"[[]]   ").unwrap_err();
        assert!(
            matches!(err, SlotError::Canonical(CanonicalError::NotCanonical)),
            "{err}"
        );
        assert!(SignatureSlot::decode(b"{\"signatures\":[]}   ").is_ok());
    }

    fn sig(key: &str, role: &str) -> Signature {
        Signature {
            key_id: key.into(),
            role: role.into(),
            signer: "ops".into(),
            signed_at: "2026-11-26T00:00:00Z".into(),
            sig: "ab".repeat(64),
        }
    }

    #[test]
    fn slot_round_trips_at_fixed_size() {
        let mut slot = SignatureSlot::default();
        assert!(slot.add(sig("ed25519:aa", "release")));
        assert!(!slot.add(sig("ed25519:aa", "release")));
        assert!(slot.add(sig("ed25519:aa", "approver")));
        let bytes = slot.encode(4096).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(SignatureSlot::decode(&bytes).unwrap(), slot);
    }

    #[test]
    fn overflow_and_garbage_padding_are_refused() {
        let mut slot = SignatureSlot::default();
        slot.add(sig("ed25519:aa", "release"));
        assert!(matches!(slot.encode(64), Err(SlotError::Full { .. })));
        let mut bytes = slot.encode(1024).unwrap();
        bytes[1000] = b'x';
        assert!(SignatureSlot::decode(&bytes).is_err());
    }

    #[test]
    fn role_is_part_of_the_signed_bytes() {
        assert_ne!(
            signing_input("release", b"m"),
            signing_input("approver", b"m")
        );
        assert!(signing_input("release", b"{}").ends_with(b"\nrole=release\n{}"));
    }
}
