//! What the bundle-spec vectors (`vectors`) and the trust lifecycle
//! vectors (`trust_vectors`) are both made of: the fixed time and keys,
//! the policies, the standard contents and the tar members they are
//! written as. Both build on this, so `trust_vectors` needs nothing of
//! `vectors`, which lists and writes them all.

use serde_json::json;
use tender_format::layout::{MANIFEST_FILE, OCI_INDEX_FILE, OCI_LAYOUT_FILE, SIGNATURES_FILE};
use tender_format::manifest::{
    BundleKind, BundleManifest, DEFAULT_SIGNATURE_SLOT_SIZE, Encoding, Entry, FORMAT_V1, ImageRef,
    Release, Targets,
};
use tender_format::policy_update::PolicyUpdate;
use tender_format::ustar::{self, BLOCK};
use tender_format::{Digest, SignatureSlot, layout::EntryPath};
use tender_trust::PrivateKey;

/// The fixed creation time of every vector.
pub const CREATED: &str = "2026-11-01T00:00:00Z";
/// The image the vector bundles carry.
pub const IMAGE_REF: &str = "registry.plant.example/vectors/hello:1.0";

/// What a verifier must report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub exit_code: i32,
    /// A fragment of the one-line reason (empty for accepted bundles).
    pub reason_contains: &'static str,
}

/// Which trust policy a vector is checked against.
#[derive(Clone, Copy)]
pub enum Policy {
    /// hub may sign as release (1 needed).
    ReleaseOnly,
    /// hub as release, qa as approver, one of each needed.
    ReleaseAndApprover,
    /// hub and hub2 as release, two distinct keys needed.
    TwoReleaseKeys,
    /// hub as release, root as root (policy 1 accepts updates).
    ReleaseWithRoot,
    /// hub and hub2 as release (1 needed), root as root.
    TwoReleaseKeysWithRoot,
    /// Policy 3: hub as release, root as root.
    AtPolicyThree,
    /// hub as release; channel stable has a max_age of 30d.
    ReleaseMaxAge,
}

/// The test keys, from fixed seeds. Only public halves are committed.
pub struct Keys {
    pub hub: PrivateKey,
    pub hub2: PrivateKey,
    pub qa: PrivateKey,
    pub intruder: PrivateKey,
}

pub fn keys() -> Keys {
    Keys {
        hub: PrivateKey::from_seed("hub", [1; 32]),
        hub2: PrivateKey::from_seed("hub2", [2; 32]),
        qa: PrivateKey::from_seed("qa", [3; 32]),
        intruder: PrivateKey::from_seed("intruder", [4; 32]),
    }
}

/// The unsigned contents: a one-layer image and one cluster's manifest set.
pub(crate) struct Contents {
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) manifest: BundleManifest,
}

pub(crate) fn contents(sequence: u64) -> Contents {
    contents_at(sequence, CREATED, Vec::new())
}

/// [`contents`] with a creation time and carried policy updates.
pub(crate) fn contents_at(
    sequence: u64,
    created: &str,
    policy_updates: Vec<PolicyUpdate>,
) -> Contents {
    let layer = {
        let mut b = tar::Builder::new(Vec::new());
        let data = b"hello from the hub\n";
        let mut h = tar::Header::new_ustar();
        h.set_path("hello.txt").expect("valid name");
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        b.append(&h, &data[..]).expect("in memory");
        b.into_inner().expect("in memory")
    };
    let layer_d = Digest::of(&layer);
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_d.to_string()]},
    }))
    .expect("json");
    let config_d = Digest::of(&config);
    let image = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_d.to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_d.to_string(), "size": layer.len()}],
    }))
    .expect("json");
    let image_d = Digest::of(&image);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": image_d.to_string(),
            "size": image.len(),
            "annotations": {"org.opencontainers.image.ref.name": IMAGE_REF},
        }],
    }))
    .expect("json");
    let manifests =
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n  namespace: line-a\n"
            .to_vec();
    let manifests_d = Digest::of(&manifests);

    let mut blobs = vec![layer, config, image, manifests];
    blobs.sort_by_key(|b| Digest::of(b));
    let mut files = vec![
        (
            OCI_LAYOUT_FILE.to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (OCI_INDEX_FILE.to_string(), index),
    ];
    files.extend(
        blobs
            .into_iter()
            .map(|b| (EntryPath::blob(&Digest::of(&b)), b)),
    );
    let entries = files
        .iter()
        .map(|(path, data)| Entry {
            path: path.clone(),
            size: data.len() as u64,
            digest: Digest::of(data),
            encoding: Encoding::Identity,
        })
        .collect();
    let manifest = BundleManifest {
        format: FORMAT_V1.into(),
        bundle_id: format!("vector-{sequence}"),
        kind: BundleKind::Full,
        channel: "stable".into(),
        sequence,
        created: created.into(),
        creator: "vectors@hub".into(),
        targets: Targets {
            sites: vec!["plant-001".into()],
            clusters: vec!["line-a".into()],
        },
        releases: vec![Release {
            cluster: "line-a".into(),
            site: "plant-001".into(),
            manifests: manifests_d,
            images: vec![ImageRef {
                reference: IMAGE_REF.into(),
                digest: image_d,
            }],
        }],
        base: None,
        signature_slot_size: DEFAULT_SIGNATURE_SLOT_SIZE,
        entries,
        policy_updates,
        gate_override: None,
    };
    Contents { files, manifest }
}

/// A tar member as it will be written, hostile or not.
pub(crate) struct Member {
    pub(crate) header: [u8; BLOCK],
    pub(crate) data: Vec<u8>,
}

pub(crate) fn member(path: &str, data: Vec<u8>) -> Member {
    Member {
        header: ustar::encode_header(path, data.len() as u64, 0).expect("valid entry"),
        data,
    }
}

/// A header with any name and type: the library refuses to make these.
pub(crate) fn raw_member(name: &str, typeflag: u8, link: &str, data: Vec<u8>) -> Member {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::new(typeflag));
    let mut header = [0u8; BLOCK];
    header.copy_from_slice(h.as_bytes());
    header[..name.len()].copy_from_slice(name.as_bytes());
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    reseal_checksum(&mut header);
    Member { header, data }
}

/// Recomputes a header's checksum after a field was changed by hand, so
/// the attack is in the field, not in a broken checksum.
pub(crate) fn reseal_checksum(header: &mut [u8; BLOCK]) {
    let sum: u32 = header[..148]
        .iter()
        .chain([b' '; 8].iter())
        .chain(header[156..].iter())
        .map(|&b| u32::from(b))
        .sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// One PAX record, `"<len> <key>=<value>\n"`, where len counts itself.
pub(crate) fn pax_record(key: &str, value: &str) -> String {
    let body = format!(" {key}={value}\n");
    let mut len = body.len() + 1;
    while len != body.len() + len.to_string().len() {
        len = body.len() + len.to_string().len();
    }
    format!("{len}{body}")
}

pub(crate) fn serialize(members: &[Member]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in members {
        out.extend_from_slice(&m.header);
        out.extend_from_slice(&m.data);
        out.resize(out.len() + ustar::padding(m.data.len() as u64), 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

/// A well-formed bundle of the standard contents at `sequence`, created
/// at `created`, carrying `policy_updates`, signed as release by `signers`.
pub fn signed_bundle(
    sequence: u64,
    created: &str,
    policy_updates: Vec<PolicyUpdate>,
    signers: &[&PrivateKey],
) -> Vec<u8> {
    let c = contents_at(sequence, created, policy_updates);
    let manifest_bytes = c.manifest.to_canonical_bytes().expect("valid manifest");
    let mut slot = SignatureSlot::default();
    for key in signers {
        slot.signatures
            .push(key.sign_at("release", &manifest_bytes, key.name(), created));
    }
    let slot_bytes = slot
        .encode(c.manifest.signature_slot_size)
        .expect("slot fits");
    let mut members = vec![
        member(MANIFEST_FILE, manifest_bytes),
        member(SIGNATURES_FILE, slot_bytes),
    ];
    members.extend(c.files.iter().map(|(p, d)| member(p, d.clone())));
    serialize(&members)
}
