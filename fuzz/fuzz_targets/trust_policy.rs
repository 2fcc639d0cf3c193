//! The site's trust policy file (bundle-spec §7, YAML). It is loaded from
//! a scratch directory laid out like `bundle-spec/vectors/` (the vectors'
//! keys in `../keys/`), so the seeds' `public_key_file`s resolve; an
//! accepted policy then judges the `valid-approved` vector's signatures.
#![no_main]

use std::fs;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tender_format::{BundleReader, SignatureSlot};
use tender_trust::TrustPolicy;

struct Signed {
    manifest: Vec<u8>,
    slot: SignatureSlot,
}

fn signed() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| {
        let keys = tender_fuzz::scratch().join("keys");
        fs::create_dir_all(&keys).expect("scratch keys directory");
        for entry in fs::read_dir(tender_fuzz::vector("keys")).expect("the vectors' keys") {
            let entry = entry.expect("a key file");
            fs::copy(entry.path(), keys.join(entry.file_name())).expect("copying a key");
        }
        let bundle = BundleReader::open_file(&tender_fuzz::vector("valid-approved/bundle.tender"))
            .expect("the valid-approved vector opens");
        Signed {
            manifest: bundle.manifest_bytes().to_vec(),
            slot: bundle.signatures().clone(),
        }
    })
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("trust_policy"),
    |data: &[u8]| {
    let signed = signed();
    let path = tender_fuzz::scratch_file("policy/policy.yaml", data);
    let Ok(policy) = TrustPolicy::load(&path) else {
        return;
    };
    assert!(
        policy.thresholds().iter().any(|(role, &n)| role != "root" && n > 0),
        "accepted a policy that requires no signature on bundles"
    );
    let evaluation = policy.evaluate(&signed.manifest, &signed.slot);
    let _ = evaluation.shortfall();
    let _ = policy.require_at(&signed.manifest, &signed.slot, Some(0));
});
