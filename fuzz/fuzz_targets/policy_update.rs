//! The policy update document (bundle-spec §11): one update offered to a
//! site at policy 1 (the `valid-policy-update` vector's policy), or a
//! chain of them as a manifest carries, checked the way a hub checks what
//! it carries and the way a site applies it.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tender_format::canonical;
use tender_format::policy_update::{PolicyUpdate, validate_chain};
use tender_trust::TrustPolicy;
use tender_trust::update::check_carried;

fn site_policy() -> &'static TrustPolicy {
    static POLICY: OnceLock<TrustPolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        TrustPolicy::load(&tender_fuzz::vector("valid-policy-update/policy.yaml"))
            .expect("the valid-policy-update policy loads")
    })
}

fuzz_target!(
    init: tender_fuzz::seeds::write_if_asked("policy_update"),
    |data: &[u8]| {
    let origin = Path::new("fuzz-input.json");
    if let Ok(update) = PolicyUpdate::from_canonical_bytes(data) {
        let again = update
            .to_canonical_bytes()
            .expect("an accepted update re-encodes");
        assert_eq!(again, data, "accepted an update that is not its own encoding");
        let _ = TrustPolicy::from_update(&update, origin);
        let _ = check_carried(std::slice::from_ref(&update), origin);
        if let Ok((next, _)) = site_policy().accept(&update, origin) {
            assert_eq!(next.policy_version, update.policy_version());
        }
    } else if let Ok(chain) = canonical::from_slice::<Vec<PolicyUpdate>>(data) {
        let _ = validate_chain(&chain);
        let _ = check_carried(&chain, origin);
        let _ = site_policy().apply_chain(&chain, origin);
    }
});
