//! The hub's record of receipts, in the hub directory. Writers run under
//! the hub's lock (through [`super::Hub`]); readers read the files, each
//! replaced atomically, without it.
//!
//! ```text
//! <hub state>/
//!   sequences/<channel>      last sequence exported (written by export)
//!   sites/<site>.pub         each site's receipt key (tender hub add-site)
//!   receipts/<site>/<YYYYMMDDTHHMMSSZ>-<sequence>.json   every receipt recorded
//!   inventories/<site>.json  the last blob inventory a site sent (delta bases)
//!   status.json              per site and cluster: what runs where (the commit point)
//! ```
//!
//! A receipt is stored first, then its inventory, then `status.json` is
//! replaced atomically; a crash in between is repaired by ingesting the
//! same receipt again.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::manifest::is_token;
use tender_format::{Digest, atomic};
use tender_trust::PublicKey;

use tender_receipt::ReceiptError;
use tender_receipt::{Action, SignedReceipt, inventory_digest, parse_time};

/// `format` of `status.json`.
pub const STATUS_FORMAT: &str = "tender-hub-status/v1";
/// `format` of `inventories/<site>.json`.
pub const INVENTORY_FORMAT: &str = "tender-hub-inventory/v1";
/// A site with no receipt for longer than this is flagged.
pub const DEFAULT_STALE_AFTER_DAYS: u64 = 7;

/// What `add_site` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddSite {
    Added,
    /// The same key was already registered for the site: nothing changed.
    AlreadyRegistered,
}

/// Registers a site's receipt key as `sites/<site>.pub`. Refuses to replace
/// a different key, and refuses a key another site already has (one site
/// could then speak for the other).
pub(crate) fn add_site(dir: &Path, site: &str, key: &PublicKey) -> Result<AddSite, ReceiptError> {
    if !is_token(site) {
        return Err(ReceiptError::Invalid(format!(
            "site name {:?} must be letters, digits, '.', '_' or '-'",
            site
        )));
    }
    let keys = site_keys(dir)?;
    if let Some(registered) = keys.get(site) {
        if registered.id() == key.id() {
            return Ok(AddSite::AlreadyRegistered);
        }
        return Err(ReceiptError::SiteKeyConflict {
            site: site.to_string(),
            registered: registered.id().to_string(),
            offered: key.id().to_string(),
            path: key_path(dir, site),
        });
    }
    if let Some((other, _)) = keys.iter().find(|(_, k)| k.id() == key.id()) {
        return Err(ReceiptError::KeyInUse {
            key_id: key.id().to_string(),
            site: other.clone(),
        });
    }
    let sites = dir.join("sites");
    atomic::create_dir_all(&sites)
        .map_err(|e| ReceiptError::io_at("registering site", &sites, e))?;
    let path = key_path(dir, site);
    atomic::write(&path, key.to_pem().as_bytes())
        .map_err(|e| ReceiptError::io_at("registering site", &path, e))?;
    Ok(AddSite::Added)
}

/// The registered sites and their keys.
pub fn site_keys(dir: &Path) -> Result<BTreeMap<String, PublicKey>, ReceiptError> {
    let sites = dir.join("sites");
    let mut out = BTreeMap::new();
    let entries = match fs::read_dir(&sites) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ReceiptError::io_at("listing sites", &sites, e)),
    };
    for entry in entries {
        let path = entry
            .map_err(|e| ReceiptError::io_at("listing sites", &sites, e))?
            .path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".pub"))
        else {
            continue;
        };
        if is_token(name) {
            out.insert(name.to_string(), PublicKey::read(&path)?);
        }
    }
    Ok(out)
}

fn key_path(dir: &Path, site: &str) -> PathBuf {
    dir.join("sites").join(format!("{site}.pub"))
}

/// `status.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusFile {
    format: String,
    sites: BTreeMap<String, SiteRecord>,
}

/// What the hub knows of a site: from its latest receipt, and per cluster
/// from the latest receipt that listed the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SiteRecord {
    last_time: String,
    /// 0 in a status file written before receipts carried it.
    #[serde(default)]
    last_audit_index: u64,
    last_sequence: u64,
    last_action: Action,
    last_result: String,
    last_bundle_id: String,
    last_channel: String,
    /// Relative to the hub state directory.
    receipt_file: String,
    /// The hub's clock when it recorded the receipt.
    ingested_at: String,
    audit_last_hash: Digest,
    inventory_digest: Digest,
    clusters: BTreeMap<String, ClusterRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterRecord {
    channel: String,
    sequence: u64,
    bundle_id: String,
    manifests: Digest,
    /// `time` of the receipt this comes from.
    reported_at: String,
}

impl StatusFile {
    fn path(dir: &Path) -> PathBuf {
        dir.join("status.json")
    }

    fn read(dir: &Path) -> Result<Self, ReceiptError> {
        let path = Self::path(dir);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(StatusFile {
                    format: STATUS_FORMAT.into(),
                    sites: BTreeMap::new(),
                });
            }
            Err(e) => return Err(ReceiptError::io_at("reading hub status", &path, e)),
        };
        let bad = |reason: String| ReceiptError::BadHubState {
            path: path.clone(),
            reason,
        };
        let file: StatusFile = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
        if file.format != STATUS_FORMAT {
            return Err(bad(format!(
                "format {:?}, expected {STATUS_FORMAT:?}",
                file.format
            )));
        }
        Ok(file)
    }

    fn write(&self, dir: &Path) -> Result<(), ReceiptError> {
        let path = Self::path(dir);
        let mut text = serde_json::to_vec_pretty(self).expect("status serializes");
        text.push(b'\n');
        atomic::write(&path, &text).map_err(|e| ReceiptError::io_at("writing hub status", &path, e))
    }
}

/// What became of one receipt file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IngestStatus {
    /// Verified and recorded; the status reflects it.
    Recorded,
    /// Already recorded, byte for byte: nothing changed.
    Duplicate,
    /// Not recorded: the receipt is not genuine, not from a registered
    /// site, or older than what the hub has for the site.
    Refused,
    /// Not recorded: the file could not be read (not the receipt's fault).
    Failed,
}

/// One line of `tender hub ingest`. `site`, `action`, `time` and
/// `sequence` are set only once the receipt's signature was verified.
#[derive(Debug, Clone, Serialize)]
pub struct IngestOutcome {
    pub file: PathBuf,
    pub status: IngestStatus,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// Where the hub keeps it (recorded or duplicate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stored: Option<PathBuf>,
}

impl IngestOutcome {
    fn not_recorded(file: &Path, status: IngestStatus, message: String) -> Self {
        IngestOutcome {
            file: file.to_path_buf(),
            status,
            message,
            site: None,
            action: None,
            time: None,
            sequence: None,
            stored: None,
        }
    }
}

/// Verifies each receipt file against its site's registered key and
/// records the genuine ones. Receipts are applied oldest first whatever
/// the order of `files`; the outcomes come back in the order of `files`.
/// An `Err` is a problem with the hub state, not with a receipt.
pub(crate) fn ingest(dir: &Path, files: &[PathBuf]) -> Result<Vec<IngestOutcome>, ReceiptError> {
    let keys = site_keys(dir)?;
    let mut status = StatusFile::read(dir)?;
    let mut outcomes = Vec::with_capacity(files.len());
    let mut genuine = Vec::new();
    for (i, file) in files.iter().enumerate() {
        match load_verified(&keys, file) {
            Ok(signed) => {
                genuine.push((i, signed));
                outcomes.push(IngestOutcome::not_recorded(
                    file,
                    IngestStatus::Failed,
                    String::new(),
                ));
            }
            Err((status, message)) => {
                outcomes.push(IngestOutcome::not_recorded(file, status, message));
            }
        }
    }
    // Per site in audit order (the site's own count of its actions).
    genuine.sort_by(|(_, a), (_, b)| {
        let key = |s: &SignedReceipt| {
            let r = s.unverified();
            (r.site.clone(), r.audit_index, r.time.clone(), r.sequence)
        };
        key(a).cmp(&key(b))
    });
    // status.json is replaced once, after the last receipt: replacing it per
    // receipt made an ingest of a whole fleet's receipts quadratic. A crash
    // before then leaves receipts stored ahead of the status, which ingesting
    // them again completes (`record`).
    let mut changed = false;
    for (i, signed) in genuine {
        let r = signed.unverified();
        let Recorded {
            status: state,
            message,
            stored,
        } = match record(dir, &mut status, &signed) {
            Ok(recorded) => recorded,
            Err(e) => {
                // Keep what was recorded before the failure; the failure is
                // the error to report.
                if changed {
                    let _ = status.write(dir);
                }
                return Err(e);
            }
        };
        changed |= state == IngestStatus::Recorded;
        outcomes[i] = IngestOutcome {
            file: files[i].clone(),
            status: state,
            message,
            site: Some(r.site.clone()),
            action: Some(r.action),
            time: Some(r.time.clone()),
            sequence: Some(r.sequence),
            stored,
        };
    }
    if changed {
        status.write(dir)?;
    }
    Ok(outcomes)
}

/// Reads a receipt and verifies it with its site's key.
fn load_verified(
    keys: &BTreeMap<String, PublicKey>,
    file: &Path,
) -> Result<SignedReceipt, (IngestStatus, String)> {
    let refused = |m: String| (IngestStatus::Refused, m);
    let signed = SignedReceipt::read(file).map_err(|e| match e {
        ReceiptError::Io(_) => (IngestStatus::Failed, chain(&e)),
        e => refused(e.to_string()),
    })?;
    let site = &signed.unverified().site;
    if !is_token(site) {
        return Err(refused(format!(
            "receipt names site \"{}\", which is not a valid site name",
            site.escape_debug()
        )));
    }
    let Some(key) = keys.get(site) else {
        return Err(refused(format!(
            "receipt is from site {site}, which is not registered at this hub (tender hub add-site {site} --key {site}.pub)"
        )));
    };
    if signed.key_id() != key.id().as_str() {
        return Err(refused(format!(
            "receipt for site {site} is signed by key {}, not by the site's registered key {}",
            signed.key_id().escape_debug(),
            key.id()
        )));
    }
    signed
        .verify(std::slice::from_ref(key))
        .map_err(|e| refused(e.to_string()))?;
    Ok(signed)
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Whether a receipt comes after what the hub recorded for its site. The
/// site's audit index is monotonic, so it decides: a receipt at or below
/// the recorded entry is a replay or arrived out of order, whatever its
/// time says. Time decides only where the hub has no index (a status file
/// from before receipts carried one, or after `--new-audit-trail`).
fn is_after(r: &tender_receipt::Receipt, l: &SiteRecord) -> bool {
    if l.last_audit_index == 0 {
        r.order_key() > (l.last_time.as_str(), 0, l.last_sequence)
    } else {
        r.audit_index > l.last_audit_index
    }
}

/// Starts a new audit trail for a site whose state was rebuilt (its audit
/// index starts again at 1): the next receipt is judged by its time, and
/// from then on by its index again. Returns whether the site had a record.
pub(crate) fn new_audit_trail(dir: &Path, site: &str) -> Result<bool, ReceiptError> {
    let mut status = StatusFile::read(dir)?;
    let Some(record) = status.sites.get_mut(site) else {
        return Ok(false);
    };
    record.last_audit_index = 0;
    status.write(dir)?;
    Ok(true)
}

/// What [`record`] did with one verified receipt.
struct Recorded {
    status: IngestStatus,
    message: String,
    /// Relative to the hub state directory (recorded or duplicate).
    stored: Option<PathBuf>,
}

/// Records one verified receipt: decides whether it is new, then stores
/// the file and its inventory, and last its record in `status`, which the
/// caller writes out once per run (the commit point).
fn record(
    dir: &Path,
    status: &mut StatusFile,
    signed: &SignedReceipt,
) -> Result<Recorded, ReceiptError> {
    let r = signed.unverified();
    let relative = receipt_file(r);
    let bytes = signed.to_bytes();
    let last = status.sites.get(&r.site);
    let what = format!(
        "{} {} sequence {} at {}",
        r.site,
        r.action.as_str(),
        r.sequence,
        r.time
    );
    if let Some(done) = admit(dir, &relative, &bytes, r, last, &what)? {
        return Ok(done);
    }
    store_receipt(dir, &relative, &bytes)?;
    if let Some(blobs) = &r.inventory {
        store_inventory(dir, r, blobs)?;
    }
    let record = site_record(r, last, &relative);
    status.sites.insert(r.site.clone(), record);
    Ok(Recorded {
        status: IngestStatus::Recorded,
        message: format!("{what}: stored as {}", relative.display()),
        stored: Some(relative),
    })
}

/// Where a receipt is kept, relative to the hub state directory: its time,
/// audit entry and sequence name it, so a re-sent receipt lands on itself.
fn receipt_file(r: &tender_receipt::Receipt) -> PathBuf {
    PathBuf::from("receipts").join(&r.site).join(format!(
        "{}-{:020}-{:020}.json",
        r.compact_time(),
        r.audit_index,
        r.sequence
    ))
}

/// Whether a receipt is to be recorded (`None`) or has its answer already:
/// refused (a different receipt under its name, or not after what the
/// site last reported) or a duplicate. A receipt stored before a crash,
/// whose status never caught up, is recorded again.
fn admit(
    dir: &Path,
    relative: &Path,
    bytes: &[u8],
    r: &tender_receipt::Receipt,
    last: Option<&SiteRecord>,
    what: &str,
) -> Result<Option<Recorded>, ReceiptError> {
    let path = dir.join(relative);
    let newer = last.is_none_or(|l| is_after(r, l));
    let refused = |message| {
        Ok(Some(Recorded {
            status: IngestStatus::Refused,
            message,
            stored: None,
        }))
    };
    match fs::read(&path) {
        Ok(existing) if existing != bytes => refused(format!(
            "{what}: a different receipt for the same time, audit entry and sequence is already recorded as {}",
            relative.display()
        )),
        Ok(_) if !newer => Ok(Some(Recorded {
            status: IngestStatus::Duplicate,
            message: format!(
                "{what}: already recorded as {}, nothing changed",
                relative.display()
            ),
            stored: Some(relative.to_path_buf()),
        })),
        // Stored before a crash, but the status never caught up: go on.
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match last.filter(|_| !newer) {
            Some(l) => refused(format!(
                "{what}: {} for {} ({} sequence {} at {})",
                not_after(r, l),
                r.site,
                l.last_action.as_str(),
                l.last_sequence,
                l.last_time
            )),
            None => Ok(None),
        },
        Err(e) => Err(ReceiptError::io_at("reading recorded receipt", &path, e)),
    }
}

/// Why a receipt that is not after the site's last one is refused.
fn not_after(r: &tender_receipt::Receipt, l: &SiteRecord) -> String {
    if l.last_audit_index == 0 {
        "older than the receipt already recorded".to_string()
    } else {
        format!(
            "audit entry {} is not after entry {} already recorded: a replayed or \
             reordered receipt (a site whose state was rebuilt starts a new audit \
             trail: tender hub add-site {} --key KEY --new-audit-trail)",
            r.audit_index, l.last_audit_index, r.site
        )
    }
}

/// Writes the receipt's bytes under `receipts/<site>/`.
fn store_receipt(dir: &Path, relative: &Path, bytes: &[u8]) -> Result<(), ReceiptError> {
    let path = dir.join(relative);
    let site_dir = parent(&path);
    atomic::create_dir_all(site_dir)
        .map_err(|e| ReceiptError::io_at("recording receipt", site_dir, e))?;
    atomic::write(&path, bytes).map_err(|e| ReceiptError::io_at("recording receipt", &path, e))
}

fn parent(path: &Path) -> &Path {
    path.parent()
        .expect("a receipt file is inside receipts/<site>")
}

/// Replaces the site's inventory with the one this receipt carries.
fn store_inventory(
    dir: &Path,
    r: &tender_receipt::Receipt,
    blobs: &[Digest],
) -> Result<(), ReceiptError> {
    let inventories = dir.join("inventories");
    atomic::create_dir_all(&inventories)
        .map_err(|e| ReceiptError::io_at("recording inventory", &inventories, e))?;
    let inv = SiteInventory {
        format: INVENTORY_FORMAT.into(),
        site: r.site.clone(),
        time: r.time.clone(),
        sequence: r.sequence,
        inventory_digest: r.inventory_digest,
        blobs: blobs.to_vec(),
        current: true,
    };
    let path = inventory_path(dir, &r.site);
    let mut text = serde_json::to_vec_pretty(&inv).expect("inventories serialize");
    text.push(b'\n');
    atomic::write(&path, &text).map_err(|e| ReceiptError::io_at("recording inventory", &path, e))
}

/// The site's status after this receipt: its latest action, and each
/// cluster it lists updated (clusters it does not list keep their record).
fn site_record(
    r: &tender_receipt::Receipt,
    last: Option<&SiteRecord>,
    relative: &Path,
) -> SiteRecord {
    let mut clusters = last.map(|l| l.clusters.clone()).unwrap_or_default();
    for release in &r.releases {
        clusters.insert(
            release.cluster.clone(),
            ClusterRecord {
                channel: release.channel.clone(),
                sequence: release.sequence,
                bundle_id: release.bundle_id.clone(),
                manifests: release.manifests,
                reported_at: r.time.clone(),
            },
        );
    }
    SiteRecord {
        last_time: r.time.clone(),
        last_audit_index: r.audit_index,
        last_sequence: r.sequence,
        last_action: r.action,
        last_result: r.result.clone(),
        last_bundle_id: r.bundle_id.clone(),
        last_channel: r.channel.clone(),
        receipt_file: relative.to_string_lossy().into_owned(),
        ingested_at: tender_trust::keys::now_rfc3339(),
        audit_last_hash: r.audit_last_hash,
        inventory_digest: r.inventory_digest,
        clusters,
    }
}

/// The blobs a site said it holds, as its last receipt with a list gave
/// them: a base for delta bundles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteInventory {
    pub format: String,
    pub site: String,
    /// `time` and `sequence` of the receipt that carried it.
    pub time: String,
    pub sequence: u64,
    pub inventory_digest: Digest,
    pub blobs: Vec<Digest>,
    /// Whether the site's latest receipt reports this same inventory (it
    /// may have sent only a digest since, after gaining or losing blobs).
    /// Not stored: computed by [`inventory`].
    #[serde(skip)]
    pub current: bool,
}

fn inventory_path(dir: &Path, site: &str) -> PathBuf {
    dir.join("inventories").join(format!("{site}.json"))
}

/// The last inventory a site sent, if any.
pub fn inventory(dir: &Path, site: &str) -> Result<Option<SiteInventory>, ReceiptError> {
    let Some(mut inv) = read_inventory(dir, site)? else {
        return Ok(None);
    };
    let status = StatusFile::read(dir)?;
    inv.current = status
        .sites
        .get(site)
        .is_some_and(|s| s.inventory_digest == inv.inventory_digest);
    Ok(Some(inv))
}

/// `inventories/<site>.json`, checked against its digest; `current` is
/// left false (the caller knows the status, so `status_at` does not read
/// `status.json` once per site).
fn read_inventory(dir: &Path, site: &str) -> Result<Option<SiteInventory>, ReceiptError> {
    if !is_token(site) {
        return Ok(None);
    }
    let path = inventory_path(dir, site);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ReceiptError::io_at("reading inventory", &path, e)),
    };
    let bad = |reason: String| ReceiptError::BadHubState {
        path: path.clone(),
        reason,
    };
    let inv: SiteInventory = serde_json::from_slice(&bytes).map_err(|e| bad(e.to_string()))?;
    if inv.format != INVENTORY_FORMAT || inv.site != site {
        return Err(bad(format!(
            "expected format {INVENTORY_FORMAT:?} for site {site}"
        )));
    }
    if inventory_digest(inv.blobs.iter().copied()) != inv.inventory_digest {
        return Err(bad("the blob list does not match its digest".into()));
    }
    Ok(Some(inv))
}

/// Where a cluster stands against the hub's exports on its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClusterState {
    /// Runs the latest sequence exported on its channel.
    Current,
    /// Runs an older one (not yet imported, or rolled back).
    Stale,
    /// Runs a newer sequence than this hub says it exported: the hub state
    /// is not the one that exported it, and this hub's next exports on the
    /// channel will be refused by the site until they pass that sequence.
    Ahead,
    /// The hub has exported nothing on the channel.
    Unknown,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::Current => "current",
            ClusterState::Stale => "stale",
            ClusterState::Ahead => "ahead",
            ClusterState::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterStatus {
    pub cluster: String,
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    pub manifests: Digest,
    /// The last sequence exported on the channel (`sequences/<channel>`).
    pub latest: Option<u64>,
    pub state: ClusterState,
    /// `time` of the receipt this comes from.
    pub reported_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteStatus {
    pub site: String,
    /// Whether `sites/<site>.pub` exists.
    pub registered: bool,
    /// `time` of the site's latest receipt; `None`: never reported.
    pub last_seen: Option<String>,
    /// Whole days since `last_seen`.
    pub age_days: Option<i64>,
    /// No receipt for more than the allowed days, or never.
    pub overdue: bool,
    pub last_action: Option<Action>,
    pub last_result: Option<String>,
    pub last_sequence: Option<u64>,
    pub audit_last_hash: Option<Digest>,
    pub inventory_digest: Option<Digest>,
    /// Whether `inventories/<site>.json` holds the inventory the latest
    /// receipt reports.
    pub inventory_on_file: bool,
    pub clusters: Vec<ClusterStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HubStatus {
    pub now: String,
    pub stale_after_days: u64,
    pub sites: Vec<SiteStatus>,
}

impl HubStatus {
    /// Clusters behind the latest export on their channel.
    pub fn stale(&self) -> impl Iterator<Item = (&SiteStatus, &ClusterStatus)> {
        self.sites.iter().flat_map(|s| {
            s.clusters
                .iter()
                .filter(|c| c.state == ClusterState::Stale)
                .map(move |c| (s, c))
        })
    }

    pub fn overdue(&self) -> impl Iterator<Item = &SiteStatus> {
        self.sites.iter().filter(|s| s.overdue)
    }
}

/// What each registered or reporting site runs, against the latest
/// exports, now.
pub fn status(dir: &Path, stale_after_days: u64) -> Result<HubStatus, ReceiptError> {
    status_at(dir, stale_after_days, time::OffsetDateTime::now_utc())
}

/// [`status`] at a given time (for tests).
pub fn status_at(
    dir: &Path,
    stale_after_days: u64,
    now: time::OffsetDateTime,
) -> Result<HubStatus, ReceiptError> {
    let keys = site_keys(dir)?;
    let file = StatusFile::read(dir)?;
    let names: BTreeSet<&String> = keys.keys().chain(file.sites.keys()).collect();
    let mut latest: BTreeMap<String, Option<u64>> = BTreeMap::new();
    let mut sites = Vec::new();
    let limit = time::Duration::days(i64::try_from(stale_after_days).unwrap_or(i64::MAX / 86_400));
    for name in names {
        let record = file.sites.get(name);
        let mut clusters = Vec::new();
        for (cluster, c) in record.map(|r| &r.clusters).into_iter().flatten() {
            let last = match latest.get(&c.channel) {
                Some(l) => *l,
                None => {
                    let l = latest_sequence(dir, &c.channel)?;
                    latest.insert(c.channel.clone(), l);
                    l
                }
            };
            let state = match last {
                None => ClusterState::Unknown,
                Some(l) if c.sequence == l => ClusterState::Current,
                Some(l) if c.sequence < l => ClusterState::Stale,
                Some(_) => ClusterState::Ahead,
            };
            clusters.push(ClusterStatus {
                cluster: cluster.clone(),
                channel: c.channel.clone(),
                sequence: c.sequence,
                bundle_id: c.bundle_id.clone(),
                manifests: c.manifests,
                latest: last,
                state,
                reported_at: c.reported_at.clone(),
            });
        }
        let age = match record {
            Some(r) => Some(now - parse_time(&r.last_time)?),
            None => None,
        };
        let inventory_on_file = match record {
            Some(r) => {
                read_inventory(dir, name)?.is_some_and(|i| i.inventory_digest == r.inventory_digest)
            }
            None => false,
        };
        sites.push(SiteStatus {
            site: name.clone(),
            registered: keys.contains_key(name),
            last_seen: record.map(|r| r.last_time.clone()),
            age_days: age.map(|a| a.whole_days()),
            overdue: age.is_none_or(|a| a > limit),
            last_action: record.map(|r| r.last_action),
            last_result: record.map(|r| r.last_result.clone()),
            last_sequence: record.map(|r| r.last_sequence),
            audit_last_hash: record.map(|r| r.audit_last_hash),
            inventory_digest: record.map(|r| r.inventory_digest),
            inventory_on_file,
            clusters,
        });
    }
    let now = now
        .replace_nanosecond(0)
        .expect("zero nanoseconds is valid")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format");
    Ok(HubStatus {
        now,
        stale_after_days,
        sites,
    })
}

/// `sequences/<channel>` as `tender export` writes it; `None` if the hub
/// never exported on the channel.
fn latest_sequence(dir: &Path, channel: &str) -> Result<Option<u64>, ReceiptError> {
    if !is_token(channel) {
        return Ok(None);
    }
    let path = dir.join("sequences").join(channel);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => Err(ReceiptError::BadHubState {
                path,
                reason: "not a sequence number".into(),
            }),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ReceiptError::io_at("reading hub state", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::tests::sample;
    use tender_trust::PrivateKey;

    #[test]
    fn a_crash_between_storing_and_status_is_repaired_by_ingesting_again() {
        let hub = tempfile::tempdir().unwrap();
        let key = PrivateKey::from_seed("plant-001", [3; 32]);
        add_site(hub.path(), "plant-001", &key.public()).unwrap();
        let signed = sample("plant-001", "2026-11-26T10:15:00Z", 5).sign(&key);
        let file = hub.path().join("in.json");
        signed.to_file(&file).unwrap();
        // As if the process died after storing the receipt.
        let stored = hub
            .path()
            .join("receipts/plant-001/20261126T101500Z-00000000000000000005.json");
        fs::create_dir_all(stored.parent().unwrap()).unwrap();
        fs::write(&stored, signed.to_bytes()).unwrap();
        let out = ingest(hub.path(), std::slice::from_ref(&file)).unwrap();
        assert_eq!(out[0].status, IngestStatus::Recorded, "{}", out[0].message);
        let out = ingest(hub.path(), &[file]).unwrap();
        assert_eq!(out[0].status, IngestStatus::Duplicate, "{}", out[0].message);
    }

    #[test]
    fn a_second_site_cannot_share_a_key_and_a_key_is_never_replaced() {
        let hub = tempfile::tempdir().unwrap();
        let a = PrivateKey::from_seed("a", [4; 32]).public();
        let b = PrivateKey::from_seed("b", [5; 32]).public();
        assert_eq!(add_site(hub.path(), "a", &a).unwrap(), AddSite::Added);
        assert_eq!(
            add_site(hub.path(), "a", &a).unwrap(),
            AddSite::AlreadyRegistered
        );
        let err = add_site(hub.path(), "a", &b).unwrap_err().to_string();
        assert!(
            err.contains(a.id().as_str()) && err.contains(b.id().as_str()),
            "{err}"
        );
        assert!(matches!(
            add_site(hub.path(), "c", &a),
            Err(ReceiptError::KeyInUse { .. })
        ));
        assert!(add_site(hub.path(), "../x", &b).is_err());
        assert_eq!(site_keys(hub.path()).unwrap()[&"a".to_string()], a);
    }
}
