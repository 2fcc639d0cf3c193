//! Canonical JSON (bundle-spec §3) and the bundle manifest parsed from it.
//! A document the reader accepts must re-encode to exactly its bytes: one
//! meaning, one byte form, or two signatures could mean different things.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tender_format::BundleManifest;
use tender_format::canonical;

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("canonical_json"),
    |data: &[u8]| {
    if let Ok(value) = canonical::from_slice::<serde_json::Value>(data) {
        let again = canonical::to_vec(&value).expect("an accepted document re-encodes");
        assert_eq!(again, data, "accepted JSON that is not its own canonical form");
    }
    if let Ok(manifest) = BundleManifest::from_canonical_bytes(data) {
        let again = manifest
            .to_canonical_bytes()
            .expect("an accepted manifest re-encodes");
        assert_eq!(again, data, "accepted a manifest that is not its canonical form");
        // What the reader and importer ask of every accepted manifest.
        let _ = manifest.carried_blobs().count();
        let _ = manifest.release_blobs().count();
        let _ = manifest.payload_bytes();
    }
});
