//! The receipt a site signs after an import, a refusal or a rollback, and
//! its file form:
//!
//! ```text
//! {"receipt":<canonical receipt>,"signature":{"key_id":"ed25519:…","sig":"<128 hex>"}}
//! ```
//!
//! The whole file is canonical JSON (one line, then a newline), so the
//! receipt's bytes inside it are exactly the bytes that were signed.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tender_format::manifest::is_token;
use tender_format::{Digest, atomic, canonical};
use tender_trust::{PrivateKey, PublicKey};

use crate::error::ReceiptError;

/// `format` of every v1 receipt, and the domain separation line of its
/// signature.
pub const FORMAT: &str = "tender-receipt/v1";

/// The role a receipt signature is made in (see [`signing_input`]).
pub const SIGNING_ROLE: &str = "receipt";

/// A receipt file is refused above this size (an inventory of 100 000
/// blobs is about 7.5 MB).
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// A `result` longer than this is refused: it is a reason, not a log.
pub const MAX_RESULT_BYTES: usize = 4096;

/// What the site did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// A bundle was imported (or was already there: see `result`).
    Import,
    /// A cluster was switched back to an earlier release.
    Rollback,
    /// A bundle was refused (signatures, target, sequence, ...).
    Refused,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Import => "import",
            Action::Rollback => "rollback",
            Action::Refused => "refused",
        }
    }
}

/// One cluster's release, current at the site when the receipt was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseEntry {
    pub cluster: String,
    /// The channel the release came on (a site's clusters may follow
    /// different channels).
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    /// The cluster's manifest set.
    pub manifests: Digest,
}

/// A site's signed statement of what it did and what it now runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// Always [`FORMAT`].
    pub format: String,
    pub site: String,
    pub action: Action,
    /// `ok`, or why not (for `refused`: the reason the site gave).
    pub result: String,
    /// `YYYY-MM-DDTHH:MM:SSZ`, the site's clock.
    pub time: String,
    /// The bundle the action was about (for a rollback: the release's).
    pub bundle_id: String,
    pub manifest_digest: Digest,
    pub channel: String,
    pub sequence: u64,
    /// Every cluster's current release, sorted by cluster, after the action.
    pub releases: Vec<ReleaseEntry>,
    /// The head of the site's audit chain after the action was audited.
    pub audit_last_hash: Digest,
    /// The `index` of that audit entry (the first is 1): it only goes up
    /// at a site, so it orders two receipts made within one second.
    pub audit_index: u64,
    /// [`inventory_digest`] of the blobs the site holds.
    pub inventory_digest: Digest,
    /// The blobs themselves, sorted, when the site sends them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<Digest>>,
}

/// sha256 of the canonical JSON array of the blob digests, sorted and
/// without duplicates: `sha256(["sha256:…","sha256:…"])`.
pub fn inventory_digest(digests: impl Iterator<Item = Digest>) -> Digest {
    let mut all: Vec<Digest> = digests.collect();
    all.sort();
    all.dedup();
    digest_of_sorted(&all)
}

fn digest_of_sorted(sorted: &[Digest]) -> Digest {
    Digest::of(&canonical::to_vec(&sorted).expect("digests encode"))
}

/// The receipt-specific bytes signed: `tender-receipt/v1\n` then the
/// canonical receipt. The site key signs them in role [`SIGNING_ROLE`]
/// through `tender_trust`, so the ed25519 message is
/// `tender_format::signatures::signing_input("receipt", signing_input(r))`:
///
/// ```text
/// tender-bundle/v1 signature\nrole=receipt\ntender-receipt/v1\n{"action":…}
/// ```
///
/// Neither layer can be confused with a bundle signature: a manifest is
/// canonical JSON and never starts with `tender-receipt/v1`.
pub fn signing_input(receipt_bytes: &[u8]) -> Vec<u8> {
    let mut input = format!("{FORMAT}\n").into_bytes();
    input.extend_from_slice(receipt_bytes);
    input
}

impl Receipt {
    /// Sets `inventory_digest` from the blobs the site holds and, when
    /// `include_list`, the sorted list itself (the hub keeps it as a base
    /// for delta bundles).
    pub fn set_inventory(&mut self, blobs: impl IntoIterator<Item = Digest>, include_list: bool) {
        let mut all: Vec<Digest> = blobs.into_iter().collect();
        all.sort();
        all.dedup();
        self.inventory_digest = digest_of_sorted(&all);
        self.inventory = include_list.then_some(all);
    }

    /// Checks every rule a hub checks (`docs/receipts.md`). A site should
    /// call it before signing: the hub refuses what fails it.
    pub fn validate(&self) -> Result<(), ReceiptError> {
        let bad = |reason: String| Err(ReceiptError::Invalid(reason));
        if self.format != FORMAT {
            return bad(format!("format is {:?}, expected {FORMAT:?}", self.format));
        }
        for (what, value) in [
            ("site", &self.site),
            ("channel", &self.channel),
            ("bundle_id", &self.bundle_id),
        ] {
            if !is_token(value) {
                return bad(format!(
                    "{what} {value:?} must be letters, digits, '.', '_' or '-'"
                ));
            }
        }
        if self.result.is_empty() || self.result.len() > MAX_RESULT_BYTES {
            return bad(format!(
                "result must be 1 to {MAX_RESULT_BYTES} bytes, it is {}",
                self.result.len()
            ));
        }
        parse_time(&self.time)?;
        if self.audit_index == 0 {
            return bad("audit_index must be at least 1 (audit entries count from 1)".into());
        }
        let mut previous: Option<&str> = None;
        for r in &self.releases {
            for (what, value) in [
                ("cluster", &r.cluster),
                ("channel", &r.channel),
                ("bundle_id", &r.bundle_id),
            ] {
                if !is_token(value) {
                    return bad(format!(
                        "release {what} {value:?} must be letters, digits, '.', '_' or '-'"
                    ));
                }
            }
            if previous.is_some_and(|p| p >= r.cluster.as_str()) {
                return bad(format!(
                    "releases must be sorted by cluster, each cluster once ({:?} is out of place)",
                    r.cluster
                ));
            }
            previous = Some(&r.cluster);
        }
        if let Some(list) = &self.inventory {
            if list.windows(2).any(|w| w[0] >= w[1]) {
                return bad("inventory must be sorted, each digest once".into());
            }
            let actual = digest_of_sorted(list);
            if actual != self.inventory_digest {
                return bad(format!(
                    "inventory digest is {}, but the listed inventory's is {actual}",
                    self.inventory_digest
                ));
            }
        }
        Ok(())
    }

    /// Signs the canonical receipt with the site key.
    pub fn sign(&self, key: &PrivateKey) -> SignedReceipt {
        let bytes = canonical::to_vec(self).expect("receipts hold no floats");
        let signature = key.sign_at(SIGNING_ROLE, &signing_input(&bytes), &self.site, &self.time);
        SignedReceipt {
            receipt: self.clone(),
            bytes,
            key_id: signature.key_id,
            sig: signature.sig,
        }
    }

    /// `(time, audit_index, sequence)`: the order of a site's receipts
    /// where the hub knows no audit index for it (a status file from
    /// before receipts carried one, or a site starting a new audit trail
    /// after its state was rebuilt). Otherwise the audit index alone
    /// orders them (`hub::ingest`).
    pub fn order_key(&self) -> (&str, u64, u64) {
        (&self.time, self.audit_index, self.sequence)
    }

    /// `time` without separators (`20261126T101500Z`), for file names
    /// that must also work on FAT sticks (no `:`).
    pub fn compact_time(&self) -> String {
        self.time.replace(['-', ':'], "")
    }
}

/// Parses a receipt time; exactly `YYYY-MM-DDTHH:MM:SSZ`.
pub fn parse_time(text: &str) -> Result<time::OffsetDateTime, ReceiptError> {
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::PrimitiveDateTime::parse(text, &format)
        .ok()
        .filter(|_| text.len() == 20)
        .map(|t| t.assume_utc())
        .ok_or_else(|| {
            ReceiptError::Invalid(format!(
                "time {text:?} is not of the form YYYY-MM-DDTHH:MM:SSZ"
            ))
        })
}

/// A receipt with its signature, as read from or written to a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReceipt {
    receipt: Receipt,
    /// The canonical receipt: the signed bytes.
    bytes: Vec<u8>,
    key_id: String,
    sig: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureForm {
    key_id: String,
    sig: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileForm {
    receipt: Value,
    signature: SignatureForm,
}

impl SignedReceipt {
    /// The receipt, NOT YET VERIFIED: only to pick the key to verify with.
    pub fn unverified(&self) -> &Receipt {
        &self.receipt
    }

    /// The canonical receipt bytes (what was signed, after [`FORMAT`]).
    pub fn receipt_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Hex ed25519 signature.
    pub fn sig(&self) -> &str {
        &self.sig
    }

    /// Checks the signature with the key it names, which must be one of
    /// `keys`, then the receipt's rules. Receipt bytes are canonical by
    /// construction (`from_bytes` refuses any other form).
    pub fn verify(&self, keys: &[PublicKey]) -> Result<&Receipt, ReceiptError> {
        let key = keys
            .iter()
            .find(|k| k.id().as_str() == self.key_id)
            .ok_or_else(|| ReceiptError::UnknownKey {
                key_id: self.key_id.escape_debug().to_string(),
            })?;
        if !key.verifies(SIGNING_ROLE, &signing_input(&self.bytes), &self.sig) {
            return Err(ReceiptError::BadSignature {
                key_id: self.key_id.escape_debug().to_string(),
            });
        }
        self.receipt.validate()?;
        Ok(&self.receipt)
    }

    /// The file form: canonical JSON and a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let signature = canonical::to_vec(&SignatureForm {
            key_id: self.key_id.clone(),
            sig: self.sig.clone(),
        })
        .expect("signatures encode");
        // Keys in byte order: "receipt" < "signature".
        let mut out = Vec::with_capacity(self.bytes.len() + signature.len() + 32);
        out.extend_from_slice(b"{\"receipt\":");
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(b",\"signature\":");
        out.extend_from_slice(&signature);
        out.extend_from_slice(b"}\n");
        out
    }

    /// Parses the file form: canonical JSON (one trailing newline allowed),
    /// a receipt with no unknown fields that re-encodes to the same bytes,
    /// and a 64-byte signature in lowercase hex. Does not verify.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ReceiptError> {
        let json = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let file: FileForm = canonical::from_slice(json)
            .map_err(|e| ReceiptError::Malformed(tender_format::error::chain_message(&e)))?;
        let receipt_bytes =
            canonical::to_vec(&file.receipt).map_err(|e| ReceiptError::Malformed(e.to_string()))?;
        let receipt: Receipt = serde_json::from_value(file.receipt)
            .map_err(|e| ReceiptError::Malformed(format!("receipt: {e}")))?;
        if canonical::to_vec(&receipt).expect("receipts encode") != receipt_bytes {
            return Err(ReceiptError::Malformed(
                "receipt does not re-encode to the bytes it was read from".into(),
            ));
        }
        let SignatureForm { key_id, sig } = file.signature;
        let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if sig.len() != 128 || !sig.bytes().all(lower_hex) {
            return Err(ReceiptError::Malformed(
                "signature must be 128 lowercase hex digits".into(),
            ));
        }
        Ok(SignedReceipt {
            receipt,
            bytes: receipt_bytes,
            key_id,
            sig,
        })
    }

    /// Reads a receipt file (at most [`MAX_FILE_BYTES`]). Does not verify.
    pub fn read(path: &Path) -> Result<Self, ReceiptError> {
        let io = |e| ReceiptError::io_at("reading receipt", path, e);
        let mut bytes = Vec::new();
        File::open(path)
            .map_err(io)?
            .take(MAX_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > MAX_FILE_BYTES {
            return Err(ReceiptError::Malformed(format!(
                "{} is larger than {MAX_FILE_BYTES} bytes",
                path.display()
            )));
        }
        Self::from_bytes(&bytes)
    }

    /// Writes the file form atomically.
    pub fn to_file(&self, path: &Path) -> Result<(), ReceiptError> {
        atomic::write(path, &self.to_bytes())
            .map_err(|e| ReceiptError::io_at("writing receipt", path, e))
    }

    /// A file name for the site's outbox, without `:` (FAT sticks), one
    /// per receipt (the audit index tells two in one second apart):
    /// `<site>-<YYYYMMDDTHHMMSSZ>-<audit index>-<action>-<sequence>.receipt.json`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}-{}-{}.receipt.json",
            self.receipt.site,
            self.receipt.compact_time(),
            self.receipt.audit_index,
            self.receipt.action.as_str(),
            self.receipt.sequence
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

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

    #[test]
    fn inventory_digest_is_over_the_sorted_set() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let d = inventory_digest([b, a, b].into_iter());
        let mut sorted = [a, b];
        sorted.sort();
        let expected = Digest::of(format!("[\"{}\",\"{}\"]", sorted[0], sorted[1]).as_bytes());
        assert_eq!(d, expected);
        assert_eq!(inventory_digest(std::iter::empty()), Digest::of(b"[]"));
    }

    #[test]
    fn signing_input_is_domain_separated() {
        assert_eq!(signing_input(b"{}"), b"tender-receipt/v1\n{}");
        assert_ne!(
            tender_format::signatures::signing_input(SIGNING_ROLE, &signing_input(b"{}")),
            tender_format::signatures::signing_input(SIGNING_ROLE, b"{}"),
        );
    }

    #[test]
    fn file_form_is_canonical_and_round_trips() {
        let key = PrivateKey::from_seed("plant-001", [1; 32]);
        let signed = sample("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key);
        let bytes = signed.to_bytes();
        assert!(bytes.ends_with(b"}\n") && !bytes[..bytes.len() - 1].contains(&b'\n'));
        let value: Value = canonical::from_slice(&bytes[..bytes.len() - 1]).unwrap();
        assert!(value["receipt"]["inventory"].is_array());
        let back = SignedReceipt::from_bytes(&bytes).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.verify(&[key.public()]).unwrap(), signed.unverified());
        assert_eq!(
            signed.file_name(),
            "plant-001-20261126T101500Z-3-import-5.receipt.json"
        );
    }

    #[test]
    fn non_canonical_files_and_null_options_are_refused() {
        let key = PrivateKey::from_seed("plant-001", [1; 32]);
        let mut r = sample("plant-001", "2026-11-26T10:15:00Z", 5);
        r.inventory = None;
        let text = String::from_utf8(r.sign(&key).to_bytes()).unwrap();
        for bad in [
            text.replace("{\"receipt\":", "{ \"receipt\":"),
            text.replace(
                "\"audit_last_hash\"",
                "\"inventory\":null,\"audit_last_hash\"",
            ),
            text.replace("\"format\"", "\"extra\":1,\"format\""),
            text.replace("}\n", "}\n\n"),
        ] {
            assert!(
                matches!(
                    SignedReceipt::from_bytes(bad.as_bytes()),
                    Err(ReceiptError::Malformed(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn validation_catches_bad_fields() {
        let ok = sample("plant-001", "2026-11-26T10:15:00Z", 5);
        ok.validate().unwrap();
        let mut cases: Vec<(Receipt, &str)> = Vec::new();
        let mut r = ok.clone();
        r.time = "2026-11-26T10:15:00+00:00".into();
        cases.push((r, "time"));
        let mut r = ok.clone();
        r.time = "2026-13-26T10:15:00Z".into();
        cases.push((r, "time"));
        let mut r = ok.clone();
        r.site = "../etc".into();
        cases.push((r, "site"));
        let mut r = ok.clone();
        r.audit_index = 0;
        cases.push((r, "audit_index"));
        let mut r = ok.clone();
        r.format = "tender-receipt/v2".into();
        cases.push((r, "format"));
        let mut r = ok.clone();
        r.inventory.as_mut().unwrap().reverse();
        cases.push((r, "sorted"));
        let mut r = ok.clone();
        r.inventory.as_mut().unwrap().pop();
        cases.push((r, "inventory digest"));
        let mut r = ok.clone();
        r.releases.push(r.releases[0].clone());
        cases.push((r, "each cluster once"));
        let mut r = ok;
        r.result = String::new();
        cases.push((r, "result"));
        for (r, needle) in cases {
            let err = r.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
    }
}
