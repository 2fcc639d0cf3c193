//! Receipts end to end in the library: a site signs, the hub verifies,
//! records and reports.

use std::fs;
use std::path::{Path, PathBuf};
use tender_format::Verdict;

use tender_export::hub::{
    AddSite, ClusterState, Hub as HubDir, IngestOutcome, IngestStatus, inventory, status_at,
};
use tender_format::Digest;
use tender_receipt::{Action, FORMAT, Receipt, ReceiptError, ReleaseEntry, SignedReceipt};
use tender_trust::{PrivateKey, PublicKey};

/// Each writer opens the hub (and its lock), as each `tender hub` command does.
fn add_site(hub: &Path, site: &str, key: &PublicKey) -> Result<AddSite, ReceiptError> {
    HubDir::open(hub).unwrap().add_site(site, key)
}

fn ingest(hub: &Path, files: &[PathBuf]) -> Result<Vec<IngestOutcome>, ReceiptError> {
    HubDir::open(hub).unwrap().ingest(files)
}
use time::macros::datetime;

fn receipt(site: &str, time: &str, sequence: u64) -> Receipt {
    let mut r = Receipt {
        format: FORMAT.into(),
        site: site.into(),
        action: Action::Import,
        result: "ok".into(),
        time: time.into(),
        bundle_id: format!("fleet-{sequence}"),
        manifest_digest: Digest::of(format!("manifest {sequence}").as_bytes()),
        channel: "stable".into(),
        sequence,
        releases: ["line-a", "line-b"]
            .iter()
            .map(|c| ReleaseEntry {
                cluster: format!("{site}-{c}"),
                channel: "stable".into(),
                sequence,
                bundle_id: format!("fleet-{sequence}"),
                manifests: Digest::of(format!("{c} {sequence}").as_bytes()),
            })
            .collect(),
        audit_last_hash: Digest::of(format!("audit {sequence}").as_bytes()),
        audit_index: sequence,
        inventory_digest: Digest::of(b""),
        inventory: None,
    };
    r.set_inventory(
        (0..sequence).map(|i| Digest::of(format!("blob {i}").as_bytes())),
        true,
    );
    r
}

struct Hub {
    dir: tempfile::TempDir,
    n: std::cell::Cell<u32>,
}

impl Hub {
    fn new() -> Self {
        Hub {
            dir: tempfile::tempdir().unwrap(),
            n: 0.into(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a signed receipt where a stick would bring it.
    fn drop_off(&self, signed: &SignedReceipt) -> PathBuf {
        let n = self.n.get() + 1;
        self.n.set(n);
        let path = self.path().join(format!("incoming-{n}.json"));
        signed.to_file(&path).unwrap();
        path
    }

    fn ingest_one(&self, signed: &SignedReceipt) -> (IngestStatus, String) {
        let file = self.drop_off(signed);
        let out = ingest(self.path(), &[file]).unwrap();
        (out[0].status, out[0].message.clone())
    }

    fn exported(&self, channel: &str, sequence: u64) {
        fs::create_dir_all(self.path().join("sequences")).unwrap();
        fs::write(
            self.path().join("sequences").join(channel),
            format!("{sequence}\n"),
        )
        .unwrap();
    }
}

fn site_key(name: &str, seed: u8) -> PrivateKey {
    PrivateKey::from_seed(name, [seed; 32])
}

#[test]
fn signed_receipts_verify_with_the_site_key_and_only_with_it() {
    let key = site_key("plant-001", 1);
    let other = site_key("plant-002", 2);
    let signed = receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    signed.to_file(&path).unwrap();
    let back = SignedReceipt::read(&path).unwrap();
    assert_eq!(
        back.verify(&[other.public(), key.public()])
            .unwrap()
            .sequence,
        5
    );

    // Signed by a key the verifier does not know: named in the error.
    let err = back.verify(&[other.public()]).unwrap_err();
    assert!(matches!(err, ReceiptError::UnknownKey { .. }));
    assert!(
        err.to_string().contains(key.public().id().as_str()),
        "{err}"
    );
    assert!(err.is_rejection());
}

#[test]
fn a_tampered_field_breaks_the_signature() {
    let key = site_key("plant-001", 1);
    let signed = receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key);
    let text = String::from_utf8(signed.to_bytes()).unwrap();
    for (from, to) in [
        ("\"sequence\":5", "\"sequence\":6"),
        ("\"result\":\"ok\"", "\"result\":\"OK\""),
        ("\"action\":\"import\"", "\"action\":\"refused\""),
    ] {
        assert!(text.contains(from), "{from}");
        let tampered = SignedReceipt::from_bytes(text.replacen(from, to, 1).as_bytes()).unwrap();
        let err = tampered.verify(&[key.public()]).unwrap_err();
        assert!(matches!(err, ReceiptError::BadSignature { .. }), "{err}");
    }
}

#[test]
fn receipts_from_unknown_sites_or_keys_are_refused() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    let intruder = site_key("intruder", 9);
    // Not registered at all.
    let (status, message) =
        hub.ingest_one(&receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key));
    assert_eq!(status, IngestStatus::Refused);
    assert!(
        message.contains("plant-001, which is not registered"),
        "{message}"
    );

    // Registered, but signed by someone else's key: names that key.
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    let (status, message) =
        hub.ingest_one(&receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&intruder));
    assert_eq!(status, IngestStatus::Refused);
    assert!(
        message.contains(intruder.public().id().as_str()),
        "{message}"
    );

    // A garbled file is refused too; a missing one failed (not its fault).
    let garbage = hub.path().join("garbage.json");
    fs::write(&garbage, b"{\"receipt\":{}}").unwrap();
    let out = ingest(hub.path(), &[garbage, hub.path().join("missing.json")]).unwrap();
    assert_eq!(out[0].status, IngestStatus::Refused);
    assert_eq!(out[1].status, IngestStatus::Failed);
    assert!(!hub.path().join("status.json").exists());
}

#[test]
fn ingest_then_status_shows_what_runs_where_and_what_is_stale() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    add_site(hub.path(), "plant-002", &site_key("plant-002", 2).public()).unwrap();
    hub.exported("stable", 5);
    let (status, message) =
        hub.ingest_one(&receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key));
    assert_eq!(status, IngestStatus::Recorded, "{message}");
    assert!(
        hub.path()
            .join(
                "receipts/plant-001/20261126T101500Z-00000000000000000005-00000000000000000005.json"
            )
            .is_file()
    );

    let now = datetime!(2026-11-27 12:00 UTC);
    let s = status_at(hub.path(), 7, now).unwrap();
    assert_eq!(s.sites.len(), 2);
    let p1 = &s.sites[0];
    assert_eq!(p1.site, "plant-001");
    assert_eq!(p1.last_seen.as_deref(), Some("2026-11-26T10:15:00Z"));
    assert!(!p1.overdue && p1.inventory_on_file);
    assert_eq!(p1.clusters.len(), 2);
    for c in &p1.clusters {
        assert_eq!(
            (c.sequence, c.latest, c.state),
            (5, Some(5), ClusterState::Current)
        );
    }
    // Registered but silent: flagged.
    assert!(s.sites[1].overdue && s.sites[1].last_seen.is_none());

    // The hub exports 6: plant-001 is now behind.
    hub.exported("stable", 6);
    let s = status_at(hub.path(), 7, now).unwrap();
    assert!(
        s.sites[0]
            .clusters
            .iter()
            .all(|c| c.state == ClusterState::Stale)
    );
    assert_eq!(s.stale().count(), 2);

    // Ten days later without a receipt: overdue.
    let s = status_at(hub.path(), 7, datetime!(2026-12-06 12:00 UTC)).unwrap();
    assert!(s.sites[0].overdue);
    assert_eq!(s.sites[0].age_days, Some(10));
    assert!(
        !status_at(hub.path(), 30, datetime!(2026-12-06 12:00 UTC))
            .unwrap()
            .sites[0]
            .overdue
    );
}

#[test]
fn older_receipts_are_refused_and_duplicates_change_nothing() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    let r5 = receipt("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key);
    let r4 = receipt("plant-001", "2026-11-20T08:00:00Z", 4).sign(&key);
    assert_eq!(hub.ingest_one(&r5).0, IngestStatus::Recorded);
    let status_before = fs::read(hub.path().join("status.json")).unwrap();

    let (status, message) = hub.ingest_one(&r5);
    assert_eq!(status, IngestStatus::Duplicate, "{message}");
    assert!(message.contains("already recorded"), "{message}");

    let (status, message) = hub.ingest_one(&r4);
    assert_eq!(status, IngestStatus::Refused);
    assert!(
        message.contains("audit entry 4 is not after entry 5"),
        "{message}"
    );

    // Same time and sequence, different content: a conflict, refused.
    let mut other = receipt("plant-001", "2026-11-26T10:15:00Z", 5);
    other.result = "already imported".into();
    let (status, message) = hub.ingest_one(&other.sign(&key));
    assert_eq!(status, IngestStatus::Refused);
    assert!(message.contains("different receipt"), "{message}");

    let status_after = fs::read(hub.path().join("status.json")).unwrap();
    assert_eq!(status_before, status_after);
}

#[test]
fn a_batch_is_applied_oldest_first_whatever_the_argument_order() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    hub.exported("stable", 6);
    let files = vec![
        hub.drop_off(&receipt("plant-001", "2026-11-27T00:00:00Z", 6).sign(&key)),
        hub.drop_off(&receipt("plant-001", "2026-11-26T00:00:00Z", 5).sign(&key)),
    ];
    let out = ingest(hub.path(), &files).unwrap();
    assert_eq!(out[0].file, files[0], "outcomes keep the argument order");
    assert!(
        out.iter().all(|o| o.status == IngestStatus::Recorded),
        "{out:?}"
    );
    let s = status_at(hub.path(), 7, datetime!(2026-11-27 12:00 UTC)).unwrap();
    assert_eq!(s.sites[0].last_sequence, Some(6));
    assert_eq!(s.sites[0].clusters[0].state, ClusterState::Current);
}

#[test]
fn a_rollback_receipt_moves_a_cluster_back_and_inventories_are_kept() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    hub.exported("stable", 6);
    assert_eq!(
        hub.ingest_one(&receipt("plant-001", "2026-11-26T00:00:00Z", 6).sign(&key))
            .0,
        IngestStatus::Recorded
    );
    let inv = inventory(hub.path(), "plant-001").unwrap().unwrap();
    assert!(inv.current);
    assert_eq!(inv.blobs.len(), 6);

    // Later, line-a rolls back to 5; this receipt sends only the digest.
    let mut rb = receipt("plant-001", "2026-11-28T00:00:00Z", 5);
    rb.action = Action::Rollback;
    rb.audit_index = 7;
    rb.releases[1].sequence = 6;
    rb.releases[1].bundle_id = "fleet-6".into();
    rb.set_inventory(
        (0..7).map(|i| Digest::of(format!("blob {i}").as_bytes())),
        false,
    );
    let (status, message) = hub.ingest_one(&rb.sign(&key));
    assert_eq!(status, IngestStatus::Recorded, "{message}");
    let s = status_at(hub.path(), 7, datetime!(2026-11-28 12:00 UTC)).unwrap();
    let states: Vec<_> = s.sites[0]
        .clusters
        .iter()
        .map(|c| (c.sequence, c.state))
        .collect();
    assert_eq!(
        states,
        [(5, ClusterState::Stale), (6, ClusterState::Current)]
    );
    assert_eq!(s.sites[0].last_action, Some(Action::Rollback));
    // The stored inventory is the old one, and says so.
    assert!(!s.sites[0].inventory_on_file);
    assert!(!inventory(hub.path(), "plant-001").unwrap().unwrap().current);
}

#[test]
fn receipts_made_within_one_second_are_ordered_by_their_audit_entries() {
    // An import of 6 and, in the same second, a rollback to 5: the audit
    // index, not the sequence, says which came last.
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    hub.exported("stable", 6);
    let time = "2026-11-26T10:15:00Z";
    let mut import = receipt("plant-001", time, 6);
    import.audit_index = 10;
    let mut rollback = receipt("plant-001", time, 5);
    rollback.action = Action::Rollback;
    rollback.audit_index = 11;
    let (import, rollback) = (import.sign(&key), rollback.sign(&key));
    let files = vec![hub.drop_off(&rollback), hub.drop_off(&import)];
    let out = ingest(hub.path(), &files).unwrap();
    assert!(
        out.iter().all(|o| o.status == IngestStatus::Recorded),
        "{out:?}"
    );
    let s = status_at(hub.path(), 7, datetime!(2026-11-26 12:00 UTC)).unwrap();
    assert_eq!(s.sites[0].last_action, Some(Action::Rollback));
    assert_eq!(s.sites[0].last_sequence, Some(5));
    assert!(
        s.sites[0]
            .clusters
            .iter()
            .all(|c| (c.sequence, c.state) == (5, ClusterState::Stale)),
        "{:?}",
        s.sites[0].clusters
    );
    // Each is stored under its own name, and a second copy is a duplicate.
    assert_eq!(
        fs::read_dir(hub.path().join("receipts/plant-001"))
            .unwrap()
            .count(),
        2
    );
    assert_eq!(hub.ingest_one(&import).0, IngestStatus::Duplicate);
}

#[test]
fn site_time_from_trust_clock_is_a_valid_receipt_time() {
    let mut r = receipt("plant-001", &tender_trust::keys::now_rfc3339(), 1);
    r.validate().unwrap();
    r.time = "2026-11-26T10:15:00.5Z".into();
    assert!(r.validate().is_err());
}

/// The site's audit index orders its receipts, not its clock: a receipt
/// replayed or delivered out of order is refused even when its time is
/// later (a site clock set back, or a receipt held back and re-sent), and
/// a receipt claiming an entry already recorded differently is a fork.
#[test]
fn replayed_or_reordered_receipts_are_refused_by_audit_index() {
    let hub = Hub::new();
    let key = site_key("plant-001", 1);
    add_site(hub.path(), "plant-001", &key.public()).unwrap();
    let r = |time: &str, sequence: u64, index: u64| {
        let mut r = receipt("plant-001", time, sequence);
        r.audit_index = index;
        r.sign(&key)
    };
    assert_eq!(
        hub.ingest_one(&r("2026-11-26T00:00:00Z", 5, 9)).0,
        IngestStatus::Recorded
    );
    let status_before = fs::read(hub.path().join("status.json")).unwrap();
    // Later by the clock, earlier by the audit trail.
    let (status, message) = hub.ingest_one(&r("2026-11-27T00:00:00Z", 6, 8));
    assert_eq!(status, IngestStatus::Refused, "{message}");
    assert!(message.contains("replayed or reordered"), "{message}");
    // The same entry again, with other content.
    let (status, message) = hub.ingest_one(&r("2026-11-27T00:00:00Z", 6, 9));
    assert_eq!(status, IngestStatus::Refused, "{message}");
    assert!(
        message.contains("entry 9 is not after entry 9"),
        "{message}"
    );
    assert_eq!(
        status_before,
        fs::read(hub.path().join("status.json")).unwrap()
    );
    // A clock set back does not stop a site whose audit trail moves on.
    assert_eq!(
        hub.ingest_one(&r("2026-11-25T00:00:00Z", 6, 10)).0,
        IngestStatus::Recorded
    );
    // A rebuilt site starts again at entry 1, once the hub is told.
    let rebuilt = r("2026-11-29T00:00:00Z", 7, 1);
    assert_eq!(hub.ingest_one(&rebuilt).0, IngestStatus::Refused);
    assert!(
        HubDir::open(hub.path())
            .unwrap()
            .new_audit_trail("plant-001")
            .unwrap()
    );
    assert_eq!(hub.ingest_one(&rebuilt).0, IngestStatus::Recorded);
    assert_eq!(
        hub.ingest_one(&r("2026-11-30T00:00:00Z", 7, 1)).0,
        IngestStatus::Refused
    );
}
