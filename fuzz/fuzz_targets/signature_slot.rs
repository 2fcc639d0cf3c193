//! The signature slot (bundle-spec §6): canonical JSON padded with spaces
//! to its reserved size. An accepted slot must re-encode to exactly its
//! bytes at the same size; its signatures are then judged by a real policy
//! over a real manifest (the `valid-approved` vector), as `verify` does.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tender_format::{BundleReader, SignatureSlot};
use tender_trust::TrustPolicy;

struct Judge {
    policy: TrustPolicy,
    manifest: Vec<u8>,
}

fn judge() -> &'static Judge {
    static JUDGE: OnceLock<Judge> = OnceLock::new();
    JUDGE.get_or_init(|| {
        let bundle = BundleReader::open_file(&tender_fuzz::vector("valid-approved/bundle.tender"))
            .expect("the valid-approved vector opens");
        Judge {
            policy: TrustPolicy::load(&tender_fuzz::vector("valid-approved/policy.yaml"))
                .expect("the valid-approved policy loads"),
            manifest: bundle.manifest_bytes().to_vec(),
        }
    })
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("signature_slot"),
    |data: &[u8]| {
    let Ok(slot) = SignatureSlot::decode(data) else {
        return;
    };
    let again = slot
        .encode(data.len() as u64)
        .expect("an accepted slot re-encodes at its size");
    assert_eq!(again, data, "accepted a slot that is not its own encoding");
    let judge = judge();
    let evaluation = judge.policy.evaluate(&judge.manifest, &slot);
    let _ = evaluation.satisfied();
    let _ = evaluation.shortfall();
});
