//! The trust-lifecycle vectors (bundle-spec §10): policy updates carried
//! on the stick, revocation, a rolled-back policy, and scenarios that need
//! a site's state (a fast-forwarded channel and its recovery, a stale
//! bundle, a replayed receipt). Deterministic like the rest: fixed seeds,
//! fixed times.

use std::collections::BTreeMap;

use tender_format::Digest;
use tender_format::policy_update::{
    ChannelRules, POLICY_FORMAT_V1, PolicyBody, PolicyKey, PolicyUpdate, ROOT_ROLE, Resets,
    policy_signing_input,
};
use tender_receipt::{Action, FORMAT, Receipt, ReleaseEntry};
use tender_trust::PrivateKey;

use crate::vector_parts::{CREATED, Expected, Keys, Policy, keys, signed_bundle};

/// When the vectors' policy updates were signed.
pub const UPDATE_CREATED: &str = "2026-11-02T00:00:00Z";
/// When the hub exported again after a reset.
pub const AFTER_RESET: &str = "2026-11-03T00:00:00Z";
/// A bundle 44 days newer than [`CREATED`].
pub const MID_DECEMBER: &str = "2026-12-15T00:00:00Z";
/// The sequence a runaway hub signed.
pub const FAST_FORWARD: u64 = 1 << 63;

/// The root keys and the site's receipt key, from fixed seeds.
pub struct TrustKeys {
    pub root: PrivateKey,
    pub root2: PrivateKey,
    pub site: PrivateKey,
}

pub fn trust_keys() -> TrustKeys {
    TrustKeys {
        root: PrivateKey::from_seed("root", [5; 32]),
        root2: PrivateKey::from_seed("root2", [6; 32]),
        site: PrivateKey::from_seed("site", [7; 32]),
    }
}

/// A policy update to `version`: `keys` with their roles, release and root
/// thresholds of 1, `resets`, signed as root by `signers`.
pub fn update(
    version: u64,
    keys: &[(&PrivateKey, &[&str])],
    resets: Resets,
    signers: &[&PrivateKey],
) -> PolicyUpdate {
    let mut u = PolicyUpdate {
        format: POLICY_FORMAT_V1.into(),
        policy: PolicyBody {
            version: 1,
            policy_version: version,
            created: UPDATE_CREATED.into(),
            keys: keys
                .iter()
                .map(|(k, roles)| PolicyKey {
                    name: k.name().into(),
                    public_key: k.public().to_pem(),
                    key_id: k.public().id().to_string(),
                    roles: roles.iter().map(|r| r.to_string()).collect(),
                })
                .collect(),
            thresholds: BTreeMap::from([("release".into(), 1), (ROOT_ROLE.into(), 1)]),
            channels: BTreeMap::<String, ChannelRules>::new(),
            role_max_age: BTreeMap::new(),
            resets,
        },
        signatures: Vec::new(),
    };
    let message = policy_signing_input(&u.body_bytes());
    for s in signers {
        u.signatures
            .push(s.sign_message(ROOT_ROLE, &message, s.name(), UPDATE_CREATED));
    }
    u
}

/// The bundle of a trust vector named `name`, if it is one.
pub fn bundle(name: &str) -> Option<Vec<u8>> {
    let Keys {
        hub,
        hub2,
        intruder,
        ..
    } = &keys();
    let TrustKeys { root, root2, .. } = &trust_keys();
    let rotated = |signers: &[&PrivateKey]| {
        update(
            2,
            &[(hub2, &["release"]), (root2, &[ROOT_ROLE])],
            Resets::default(),
            signers,
        )
    };
    let (updates, signer) = match name {
        "valid-policy-update" => (vec![rotated(&[root, root2])], hub2),
        "rotation-without-old-root" => (vec![rotated(&[root2])], hub2),
        "rotation-skipping-a-version" => (
            vec![update(
                3,
                &[(hub2, &["release"]), (root, &[ROOT_ROLE])],
                Resets::default(),
                &[root],
            )],
            hub2,
        ),
        "revoked-key-signature" => (
            vec![update(
                2,
                &[(hub, &["release"]), (root, &[ROOT_ROLE])],
                Resets::default(),
                &[root],
            )],
            hub2,
        ),
        "policy-rollback" => (
            vec![update(
                2,
                &[
                    (hub, &["release"]),
                    (intruder, &["release"]),
                    (root, &[ROOT_ROLE]),
                ],
                Resets::default(),
                &[root],
            )],
            intruder,
        ),
        _ => return None,
    };
    Some(signed_bundle(1, CREATED, updates, &[signer]))
}

/// What a scenario step runs (the test harness adds the site or hub).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `tender import FILE --site SITE`
    Import,
    /// `tender policy apply FILE --site SITE`
    PolicyApply,
    /// `tender hub add-site plant-001 --key FILE --state-dir HUB`
    HubAddSite,
    /// `tender hub ingest FILE --state-dir HUB`
    HubIngest,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Import => "import",
            StepKind::PolicyApply => "policy apply",
            StepKind::HubAddSite => "hub add-site",
            StepKind::HubIngest => "hub ingest",
        }
    }
}

/// One step of a scenario, on a file of the vector (relative to it).
pub struct Step {
    pub kind: StepKind,
    pub file: &'static str,
    pub expected: Expected,
}

/// A vector that needs a site's (or the hub's) state: steps run in order
/// against one fresh site; the last is the attack's outcome.
pub struct Scenario {
    pub name: &'static str,
    pub policy: Policy,
    pub describe: &'static str,
    pub steps: Vec<Step>,
}

/// Every scenario vector.
pub fn scenarios() -> Vec<Scenario> {
    use StepKind::*;
    let ok = || Expected {
        exit_code: 0,
        reason_contains: "",
    };
    let no = |reason: &'static str| Expected {
        exit_code: 3,
        reason_contains: reason,
    };
    let step = |kind, file, expected| Step {
        kind,
        file,
        expected,
    };
    vec![
        Scenario {
            name: "fast-forward-sequence",
            policy: Policy::ReleaseWithRoot,
            describe: "a runaway hub signs sequence 2^63 and locks the channel; a root-signed policy update resets the channel's floor, the next export imports, and the runaway bundle stays refused",
            steps: vec![
                step(Import, "1-sequence-2-63.tender", ok()),
                step(Import, "2-next-release.tender", no("is not newer than")),
                step(PolicyApply, "3-policy-2-resets-stable.json", ok()),
                step(Import, "4-next-release-after-reset.tender", ok()),
                step(
                    Import,
                    "1-sequence-2-63.tender",
                    no("was reset by policy 2"),
                ),
            ],
        },
        Scenario {
            name: "stale-bundle-past-max-age",
            policy: Policy::ReleaseMaxAge,
            describe: "a bundle created 44 days before the newest one the site accepted, on a channel whose max_age is 30d: held back, then replayed to freeze the site on old content",
            steps: vec![
                step(Import, "1-created-2026-12-15.tender", ok()),
                step(
                    Import,
                    "2-sequence-2-created-2026-11-01.tender",
                    no("stale bundle"),
                ),
            ],
        },
        Scenario {
            name: "receipt-replayed",
            policy: Policy::ReleaseOnly,
            describe: "an older receipt of the site, held back and handed to the hub after a newer one, to make the hub believe the site runs an older release",
            steps: vec![
                step(HubAddSite, "../keys/site.pub", ok()),
                step(HubIngest, "1-receipt-audit-entry-3.json", ok()),
                step(
                    HubIngest,
                    "2-receipt-audit-entry-2.json",
                    no("replayed or reordered"),
                ),
            ],
        },
    ]
}

/// The files of a scenario vector besides its policy and expected.json.
pub fn scenario_files(name: &str) -> Vec<(&'static str, Vec<u8>)> {
    let Keys { hub, .. } = &keys();
    let TrustKeys { root, site, .. } = &trust_keys();
    match name {
        "fast-forward-sequence" => {
            let reset = update(
                2,
                &[(hub, &["release"]), (root, &[ROOT_ROLE])],
                Resets {
                    sequences: BTreeMap::from([("stable".into(), 1)]),
                    high_water_mark: false,
                },
                &[root],
            );
            vec![
                (
                    "1-sequence-2-63.tender",
                    signed_bundle(FAST_FORWARD, CREATED, vec![], &[hub]),
                ),
                (
                    "2-next-release.tender",
                    signed_bundle(2, CREATED, vec![], &[hub]),
                ),
                (
                    "3-policy-2-resets-stable.json",
                    reset.to_canonical_bytes().expect("valid update"),
                ),
                (
                    "4-next-release-after-reset.tender",
                    signed_bundle(2, AFTER_RESET, vec![], &[hub]),
                ),
            ]
        }
        "stale-bundle-past-max-age" => vec![
            (
                "1-created-2026-12-15.tender",
                signed_bundle(1, MID_DECEMBER, vec![], &[hub]),
            ),
            (
                "2-sequence-2-created-2026-11-01.tender",
                signed_bundle(2, CREATED, vec![], &[hub]),
            ),
        ],
        "receipt-replayed" => vec![
            (
                "1-receipt-audit-entry-3.json",
                receipt(3, "2026-11-02T00:00:00Z", 2).sign(site).to_bytes(),
            ),
            (
                "2-receipt-audit-entry-2.json",
                receipt(2, "2026-11-01T12:00:00Z", 1).sign(site).to_bytes(),
            ),
        ],
        _ => Vec::new(),
    }
}

/// plant-001's receipt for audit entry `index`, running `sequence`.
fn receipt(index: u64, time: &str, sequence: u64) -> Receipt {
    let mut r = Receipt {
        format: FORMAT.into(),
        site: "plant-001".into(),
        action: Action::Import,
        result: "ok".into(),
        time: time.into(),
        bundle_id: format!("vector-{sequence}"),
        manifest_digest: Digest::of(format!("manifest {sequence}").as_bytes()),
        channel: "stable".into(),
        sequence,
        releases: vec![ReleaseEntry {
            cluster: "line-a".into(),
            channel: "stable".into(),
            sequence,
            bundle_id: format!("vector-{sequence}"),
            manifests: Digest::of(format!("set {sequence}").as_bytes()),
        }],
        audit_last_hash: Digest::of(format!("audit entry {index}").as_bytes()),
        audit_index: index,
        inventory_digest: Digest::of(b""),
        inventory: None,
    };
    r.set_inventory([Digest::of(b"blob")], true);
    r
}
