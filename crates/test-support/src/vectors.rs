//! The bundle-spec test vectors: small bundles, each paired with the
//! outcome a verifier must report. Hostile ones are named after the attack
//! they model. Everything is deterministic (fixed keys, ids and times), so
//! the committed files in `bundle-spec/vectors/` can be checked against a
//! fresh generation byte for byte.

use std::fs;
use std::io;
use std::path::Path;

use serde_json::json;
use tender_format::layout::{MANIFEST_FILE, OCI_INDEX_FILE, SIGNATURES_FILE};
use tender_format::ustar::{self, BLOCK};
use tender_format::{Digest, SignatureSlot, layout::EntryPath};
use tender_trust::PrivateKey;

pub use crate::vector_parts::{CREATED, Expected, IMAGE_REF, Keys, Policy, keys, signed_bundle};
use crate::vector_parts::{
    Member, contents, member, pax_record, raw_member, reseal_checksum, serialize,
};

/// One vector: a name, a policy and the expected outcome.
pub struct Vector {
    pub name: &'static str,
    pub policy: Policy,
    pub expected: Expected,
    pub describe: &'static str,
}

/// Every vector, valid ones first.
pub fn all() -> Vec<Vector> {
    let mut all = valid();
    all.extend(tar_attacks());
    all.extend(signature_attacks());
    all.extend(policy_updates());
    all
}

/// A verifier's verdict on a good bundle.
fn accept() -> Expected {
    Expected {
        exit_code: 0,
        reason_contains: "",
    }
}

/// A rejection (exit 3) whose reason contains `reason`.
fn reject(reason: &'static str) -> Expected {
    Expected {
        exit_code: 3,
        reason_contains: reason,
    }
}

/// One row of the tables below.
fn v(name: &'static str, policy: Policy, expected: Expected, describe: &'static str) -> Vector {
    Vector {
        name,
        policy,
        expected,
        describe,
    }
}

/// The bundles a verifier must accept.
fn valid() -> Vec<Vector> {
    use Policy::*;
    vec![
        v(
            "valid-minimal",
            ReleaseOnly,
            accept(),
            "one image, one release signature",
        ),
        v(
            "valid-approved",
            ReleaseAndApprover,
            accept(),
            "release signature plus an approval added later",
        ),
        v(
            "valid-gate-override",
            ReleaseOnly,
            Expected {
                exit_code: 0,
                reason_contains: "",
            },
            "exported past a rollout-wave gate: the manifest's optional gate_override (reason, pending clusters) is signed with the rest and accepted",
        ),
    ]
}

/// Hostile or damaged tar streams: entries that climb out, links, special
/// modes, duplicates, smuggled or missing entries, flipped bits, a cut.
fn tar_attacks() -> Vec<Vector> {
    use Policy::*;
    vec![
        v(
            "tar-slip-dotdot",
            ReleaseOnly,
            reject("climbs out with '..'"),
            "an extra entry named ../../etc/cron.d/tender",
        ),
        v(
            "absolute-path",
            ReleaseOnly,
            reject("absolute path"),
            "an extra entry named /etc/cron.d/tender",
        ),
        v(
            "symlink-entry",
            ReleaseOnly,
            reject("symlink entries are not allowed"),
            "a blob replaced by a symlink to /etc/shadow",
        ),
        v(
            "setuid-entry",
            ReleaseOnly,
            reject("mode 4755"),
            "a blob entry with mode 4755 and owner 1750, for a tar run as root",
        ),
        v(
            "hardlink-entry",
            ReleaseOnly,
            reject("hardlink entries are not allowed"),
            "a blob replaced by a hardlink to another entry",
        ),
        v(
            "duplicate-entry",
            ReleaseOnly,
            reject("appears twice"),
            "a blob entry repeated, so a second copy could overwrite the first",
        ),
        v(
            "unlisted-entry",
            ReleaseOnly,
            reject("not listed in the signed manifest"),
            "an extra, well-formed blob smuggled in",
        ),
        v(
            "missing-entry",
            ReleaseOnly,
            reject("is missing"),
            "a listed blob left out",
        ),
        v(
            "pax-size-mismatch",
            ReleaseOnly,
            reject("PAX extended header entries are not allowed"),
            "a PAX header that overrides a blob's size",
        ),
        v(
            "bit-flipped-blob",
            ReleaseOnly,
            reject("content digest is"),
            "one bit of a blob flipped",
        ),
        v(
            "truncated-bundle",
            ReleaseOnly,
            reject("truncated"),
            "the stream cut inside a blob",
        ),
    ]
}

/// Signatures that must not count: an unknown key, one key twice, a
/// wrong role, a manifest swapped under its signature.
fn signature_attacks() -> Vec<Vector> {
    use Policy::*;
    vec![
        v(
            "unknown-key",
            ReleaseOnly,
            reject("is not trusted"),
            "signed by a key the site does not trust",
        ),
        v(
            "same-key-twice-for-threshold",
            TwoReleaseKeys,
            reject("more than once and counts once"),
            "one key signs twice to meet a threshold of two",
        ),
        v(
            "wrong-role",
            ReleaseAndApprover,
            reject("may not sign as approver"),
            "the release key also signs as approver",
        ),
        v(
            "manifest-swapped-after-signing",
            ReleaseOnly,
            reject("does not match the manifest"),
            "a different manifest (sequence raised) under the old signature",
        ),
    ]
}

/// Carried policy updates (bundle-spec §7.3): one a site accepts, and
/// rotations, skips, revocations and rollbacks it must refuse.
fn policy_updates() -> Vec<Vector> {
    use Policy::*;
    vec![
        v(
            "valid-policy-update",
            ReleaseWithRoot,
            Expected {
                exit_code: 0,
                reason_contains: "",
            },
            "carries policy 2, which rotates the release key hub -> hub2 and the root key root -> root2, signed by both roots; the bundle is signed by hub2",
        ),
        v(
            "rotation-without-old-root",
            ReleaseWithRoot,
            reject("root role of policy 1 needs 1"),
            "carries policy 2 rotating to keys the attacker holds, signed only by the new root: the site's root never agreed",
        ),
        v(
            "rotation-skipping-a-version",
            ReleaseWithRoot,
            reject("never skip a version"),
            "carries policy 3 without policy 2: a site must see every version, so no update it never saw can be bypassed",
        ),
        v(
            "revoked-key-signature",
            TwoReleaseKeysWithRoot,
            reject("is not trusted"),
            "signed by hub2 only, carrying the root-signed policy 2 that revokes hub2: revocation applies before the bundle's signatures are judged",
        ),
        v(
            "policy-rollback",
            AtPolicyThree,
            reject("never goes back"),
            "a site at policy 3 given the genuine, older policy 2 that still trusts the intruder key, and a bundle signed by that key",
        ),
    ]
}

/// Builds one vector's bundle bytes.
pub fn bundle(name: &str) -> Vec<u8> {
    if let Some(bytes) = crate::trust_vectors::bundle(name) {
        return bytes;
    }
    let mut c = contents(1);
    if name == "valid-gate-override" {
        c.manifest.gate_override = Some(tender_format::manifest::GateOverride {
            reason: "canary line down for maintenance; production needs the fix".into(),
            pending: vec!["plant-001-line-a".into()],
        });
    }
    let manifest_bytes = c.manifest.to_canonical_bytes().expect("valid manifest");
    let slot = signatures(name, &manifest_bytes);
    let shown_manifest = if name == "manifest-swapped-after-signing" {
        let mut m = c.manifest.clone();
        m.sequence = 99;
        m.to_canonical_bytes().expect("valid manifest")
    } else {
        manifest_bytes.clone()
    };
    let slot_bytes = slot
        .encode(c.manifest.signature_slot_size)
        .expect("slot fits");
    let mut members = vec![
        member(MANIFEST_FILE, shown_manifest),
        member(SIGNATURES_FILE, slot_bytes),
    ];
    members.extend(c.files.iter().map(|(p, d)| member(p, d.clone())));
    tamper(name, &mut members, &c.files);
    let mut bytes = serialize(&members);
    if name == "truncated-bundle" {
        // Cut in the middle of the last blob's data.
        let cut = bytes.len()
            - 2 * BLOCK
            - ustar::padding(c.files.last().expect("blobs").1.len() as u64)
            - 10;
        bytes.truncate(cut);
    }
    bytes
}

/// The signature slot of vector `name`: hub's release signature, or the
/// signatures the vector is about.
fn signatures(name: &str, manifest_bytes: &[u8]) -> SignatureSlot {
    let k = keys();
    let mut slot = SignatureSlot::default();
    let sign =
        |key: &PrivateKey, role: &str| key.sign_at(role, manifest_bytes, key.name(), CREATED);
    match name {
        "unknown-key" => slot.signatures.push(sign(&k.intruder, "release")),
        "same-key-twice-for-threshold" => {
            slot.signatures.push(sign(&k.hub, "release"));
            let mut again = sign(&k.hub, "release");
            again.signer = "hub-on-another-laptop".into();
            slot.signatures.push(again);
        }
        "wrong-role" => {
            slot.signatures.push(sign(&k.hub, "release"));
            slot.signatures.push(sign(&k.hub, "approver"));
        }
        "valid-approved" => {
            slot.signatures.push(sign(&k.hub, "release"));
            slot.signatures.push(sign(&k.qa, "approver"));
        }
        _ => slot.signatures.push(sign(&k.hub, "release")),
    }
    slot
}

/// Vector `name`'s tampering with the tar members, if it is a tar attack:
/// `files` are the bundle's layout files, as the members carry them.
fn tamper(name: &str, members: &mut Vec<Member>, files: &[(String, Vec<u8>)]) {
    // Index of the first blob member (after manifest, slot, oci-layout, index.json).
    let first_blob = 4;
    let blob_name = files[2].0.clone();
    match name {
        "tar-slip-dotdot" => members.insert(
            2,
            raw_member(
                "../../etc/cron.d/tender",
                b'0',
                "",
                b"* * * * * root sh\n".to_vec(),
            ),
        ),
        "absolute-path" => members.insert(
            2,
            raw_member(
                "/etc/cron.d/tender",
                b'0',
                "",
                b"* * * * * root sh\n".to_vec(),
            ),
        ),
        "symlink-entry" => {
            members[first_blob] = raw_member(&blob_name, b'2', "/etc/shadow", Vec::new())
        }
        "hardlink-entry" => {
            members[first_blob] = raw_member(&blob_name, b'1', OCI_INDEX_FILE, Vec::new())
        }
        "duplicate-entry" => {
            let again = member(&blob_name, files[2].1.clone());
            members.insert(first_blob + 1, again);
        }
        "unlisted-entry" => {
            let extra = b"not in the manifest".to_vec();
            members.insert(
                first_blob,
                member(&EntryPath::blob(&Digest::of(&extra)), extra),
            );
        }
        "missing-entry" => {
            members.remove(first_blob + 1);
        }
        "pax-size-mismatch" => {
            let size = files[2].1.len() + 512;
            let record = pax_record("size", &size.to_string());
            members.insert(
                first_blob,
                raw_member("PaxHeaders/blob", b'x', "", record.into_bytes()),
            );
        }
        "bit-flipped-blob" => members[first_blob + 1].data[0] ^= 0x01,
        "setuid-entry" => {
            let h = &mut members[first_blob].header;
            h[100..108].copy_from_slice(b"0004755\0");
            h[108..116].copy_from_slice(b"0001750\0");
            reseal_checksum(h);
        }
        _ => {}
    }
}

fn policy_yaml(policy: Policy) -> String {
    let key = |name: &str, role: &str| {
        format!("  - name: {name}\n    public_key_file: ../keys/{name}.pub\n    roles: [{role}]\n")
    };
    match policy {
        Policy::ReleaseOnly => format!(
            "version: 1\nkeys:\n{}thresholds:\n  release: 1\n",
            key("hub", "release")
        ),
        Policy::ReleaseAndApprover => format!(
            "version: 1\nkeys:\n{}{}thresholds:\n  release: 1\n  approver: 1\n",
            key("hub", "release"),
            key("qa", "approver")
        ),
        Policy::TwoReleaseKeys => format!(
            "version: 1\nkeys:\n{}{}thresholds:\n  release: 2\n",
            key("hub", "release"),
            key("hub2", "release")
        ),
        Policy::ReleaseWithRoot => format!(
            "version: 1\npolicy_version: 1\nkeys:\n{}{}thresholds:\n  release: 1\n  root: 1\n",
            key("hub", "release"),
            key("root", "root")
        ),
        Policy::TwoReleaseKeysWithRoot => format!(
            "version: 1\npolicy_version: 1\nkeys:\n{}{}{}thresholds:\n  release: 1\n  root: 1\n",
            key("hub", "release"),
            key("hub2", "release"),
            key("root", "root")
        ),
        Policy::AtPolicyThree => format!(
            "version: 1\npolicy_version: 3\nkeys:\n{}{}thresholds:\n  release: 1\n  root: 1\n",
            key("hub", "release"),
            key("root", "root")
        ),
        Policy::ReleaseMaxAge => format!(
            "version: 1\nkeys:\n{}thresholds:\n  release: 1\nchannels:\n  stable:\n    max_age: 30d\n",
            key("hub", "release")
        ),
    }
}

/// Writes every vector under `dir`: `keys/*.pub`, and per vector
/// `bundle.tender`, `policy.yaml`, `expected.json`.
pub fn write_all(dir: &Path) -> io::Result<()> {
    let k = keys();
    fs::create_dir_all(dir.join("keys"))?;
    let t = crate::trust_vectors::trust_keys();
    for key in [
        &k.hub,
        &k.hub2,
        &k.qa,
        &k.intruder,
        &t.root,
        &t.root2,
        &t.site,
    ] {
        fs::write(
            dir.join("keys").join(format!("{}.pub", key.name())),
            key.public().to_pem(),
        )?;
    }
    for v in all() {
        let d = dir.join(v.name);
        fs::create_dir_all(&d)?;
        fs::write(d.join("bundle.tender"), bundle(v.name))?;
        fs::write(d.join("policy.yaml"), policy_yaml(v.policy))?;
        let expected = json!({
            "vector": v.name,
            "models": v.describe,
            "outcome": if v.expected.exit_code == 0 { "accept" } else { "reject" },
            "exit_code": v.expected.exit_code,
            "reason_contains": v.expected.reason_contains,
        });
        let mut text = serde_json::to_string_pretty(&expected).expect("json");
        text.push('\n');
        fs::write(d.join("expected.json"), text)?;
    }
    for scenario in crate::trust_vectors::scenarios() {
        let d = dir.join(scenario.name);
        fs::create_dir_all(&d)?;
        for (file, bytes) in crate::trust_vectors::scenario_files(scenario.name) {
            fs::write(d.join(file), bytes)?;
        }
        fs::write(d.join("policy.yaml"), policy_yaml(scenario.policy))?;
        let outcome = |e: &Expected| if e.exit_code == 0 { "accept" } else { "reject" };
        let steps: Vec<serde_json::Value> = scenario
            .steps
            .iter()
            .map(|s| {
                json!({
                    "step": s.kind.as_str(),
                    "file": s.file,
                    "outcome": outcome(&s.expected),
                    "exit_code": s.expected.exit_code,
                    "reason_contains": s.expected.reason_contains,
                })
            })
            .collect();
        let last = &scenario
            .steps
            .last()
            .expect("a scenario has steps")
            .expected;
        let expected = json!({
            "vector": scenario.name,
            "models": scenario.describe,
            "steps": steps,
            "outcome": outcome(last),
            "exit_code": last.exit_code,
            "reason_contains": last.reason_contains,
        });
        let mut text = serde_json::to_string_pretty(&expected).expect("json");
        text.push('\n');
        fs::write(d.join("expected.json"), text)?;
    }
    Ok(())
}
