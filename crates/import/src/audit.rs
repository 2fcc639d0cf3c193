//! The tamper-evident audit trail: one JSON line per import, refusal or
//! rollback, each carrying the hash of the line before it. Editing,
//! reordering or deleting a line breaks the chain at that point; `tender
//! audit verify` finds it. (Cutting lines off the end leaves a valid
//! shorter chain: receipts carry the last hash to the hub for that.)
//!
//! An action's line is written when its outcome is known, after its
//! commit. So that a run killed (or a disk filled) in between cannot leave
//! a change without a line, the action is first noted in `audit.pending`
//! ([`AuditLog::begin`], before it changes anything at the site); the line
//! clears it, and the next import or rollback audits a note left behind
//! ([`settle`]): as done, if the site state shows its commit, or as
//! interrupted.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use tender_format::FromIo;
use tender_format::Verdict;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tender_format::{Digest, atomic, canonical};

use crate::error::ImportError;
use crate::state::SiteStateFile;

/// `prev` of the first entry.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What an audit line is about. Written as today's strings ("import",
/// "check", "rollback", "gc", "policy-update"): lines are hash-chained over their
/// serialized form, so these strings may never change, and a string this
/// version does not know is kept as it is, so an older or newer log still
/// verifies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditAction {
    #[default]
    Import,
    /// `import --check`: verified, nothing changed.
    Check,
    Rollback,
    Gc,
    PolicyUpdate,
    /// A string this version does not know, kept byte for byte.
    Other(String),
}

impl AuditAction {
    pub fn as_str(&self) -> &str {
        match self {
            AuditAction::Import => "import",
            AuditAction::Check => "check",
            AuditAction::Rollback => "rollback",
            AuditAction::Gc => "gc",
            AuditAction::PolicyUpdate => "policy-update",
            AuditAction::Other(s) => s,
        }
    }
}

impl From<&str> for AuditAction {
    fn from(s: &str) -> Self {
        [
            AuditAction::Import,
            AuditAction::Check,
            AuditAction::Rollback,
            AuditAction::Gc,
            AuditAction::PolicyUpdate,
        ]
        .into_iter()
        .find(|a| a.as_str() == s)
        .unwrap_or_else(|| AuditAction::Other(s.to_string()))
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AuditAction {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|s| AuditAction::from(s.as_str()))
    }
}

/// What happened, as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: AuditAction,
    pub result: String,
    pub operator: String,
    #[serde(default)]
    pub bundle_id: Option<String>,
    #[serde(default)]
    pub manifest_digest: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub sequence: Option<u64>,
    #[serde(default)]
    pub signers: Vec<Signer>,
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub images: Vec<String>,
    #[serde(default)]
    pub detail: Option<String>,
    /// A policy update's version (action `policy-update`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u64>,
}

/// One type for the audit log and delivery: the signers an import names in
/// its audit line are the ones its commits and artifacts name.
pub use tender_deliver::Signer;

/// One line: the event plus its place in the chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Line {
    index: u64,
    time: String,
    prev: String,
    #[serde(flatten)]
    event: AuditEvent,
    hash: String,
}

pub struct AuditLog {
    path: PathBuf,
}

/// The entry an append wrote: the chain's new head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Its number in the chain (the first entry is 1).
    pub index: u64,
    pub hash: String,
}

/// Where the chain holds, or the first line where it breaks.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub entries: u64,
    pub last_hash: String,
    pub broken_at: Option<u64>,
    pub reason: Option<String>,
    /// An action that began and has no line yet: its run was interrupted
    /// (the next import or rollback audits it), or is running now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending: Option<AuditEvent>,
}

/// `audit.pending`: an action under way.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    /// The chain's length when it began: a longer chain holds its line.
    entries_before: u64,
    event: AuditEvent,
}

impl AuditLog {
    pub fn new(state_dir: &Path) -> Self {
        AuditLog {
            path: state_dir.join("audit.jsonl"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn pending_path(&self) -> PathBuf {
        self.path.with_file_name("audit.pending")
    }

    /// Notes (durably) that `event` is about to change the site; its line,
    /// appended when the outcome is known, clears the note.
    pub fn begin(&self, event: &AuditEvent) -> Result<(), ImportError> {
        let pending = Pending {
            entries_before: self.verify()?.entries,
            event: event.clone(),
        };
        let path = self.pending_path();
        let bytes = serde_json::to_vec(&pending).expect("audit events serialize");
        atomic::write(&path, &bytes).map_err(|e| ImportError::io_at("writing", &path, e))
    }

    fn read_pending(&self) -> Result<Option<Pending>, ImportError> {
        let path = self.pending_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ImportError::Audit(format!("{} is not readable: {e}", path.display()))
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ImportError::io_at("reading", &path, e)),
        }
    }

    fn clear_pending(&self) -> Result<(), ImportError> {
        let path = self.pending_path();
        match fs::remove_file(&path) {
            Ok(()) => atomic::sync_dir(path.parent().expect("in the state dir"))
                .map_err(|e| ImportError::io_at("removing", &path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImportError::io_at("removing", &path, e)),
        }
    }

    /// Appends an event, chained to the last line, and syncs it to disk.
    /// The caller holds the state lock, so appends never interleave.
    pub fn append(&self, event: AuditEvent) -> Result<Appended, ImportError> {
        let report = self.verify()?;
        if let Some(reason) = report.reason {
            return Err(ImportError::Audit(format!(
                "refusing to extend a broken audit chain ({}: {reason})",
                self.path.display()
            )));
        }
        let mut line = Line {
            index: report.entries + 1,
            time: tender_trust::keys::now_rfc3339(),
            prev: report.last_hash,
            event,
            hash: String::new(),
        };
        line.hash = line_hash(&line)?;
        let mut text = serde_json::to_string(&line).expect("audit lines serialize");
        text.push('\n');
        let io = |e| ImportError::io_at("writing the audit log", &self.path, e);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        self.clear_pending()?;
        Ok(Appended {
            index: line.index,
            hash: line.hash,
        })
    }

    /// Checks every line's hash and link.
    pub fn verify(&self) -> Result<ChainReport, ImportError> {
        let mut report = ChainReport {
            entries: 0,
            last_hash: GENESIS.to_string(),
            broken_at: None,
            reason: None,
            pending: None,
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.pending = self.read_pending()?.map(|p| p.event);
                return Ok(report);
            }
            Err(e) => return Err(ImportError::io_at("reading the audit log", &self.path, e)),
        };
        for (i, text) in BufReader::new(file).lines().enumerate() {
            let number = i as u64 + 1;
            let text =
                text.map_err(|e| ImportError::io_at("reading the audit log", &self.path, e))?;
            let mut broken = |reason: String| {
                report.broken_at = Some(number);
                report.reason = Some(reason);
            };
            let line: Line = match serde_json::from_str(&text) {
                Ok(l) => l,
                Err(e) => {
                    broken(format!("line {number} is not an audit entry: {e}"));
                    return Ok(report);
                }
            };
            if line.index != number {
                broken(format!("line {number} says it is entry {}", line.index));
                return Ok(report);
            }
            if line.prev != report.last_hash {
                broken(format!("line {number} does not follow the line before it"));
                return Ok(report);
            }
            match line_hash(&line) {
                Ok(h) if h == line.hash => {}
                _ => {
                    broken(format!("line {number} was changed after it was written"));
                    return Ok(report);
                }
            }
            report.entries = number;
            report.last_hash = line.hash;
        }
        report.pending = self
            .read_pending()?
            .filter(|p| p.entries_before >= report.entries)
            .map(|p| p.event);
        Ok(report)
    }
}

/// The `result` of an audit line: `ok`'s words on success, `refused: ...`
/// when the bundle was at fault, `failed: ...` when the machine was, each
/// with its whole cause chain (the line is all an auditor will see).
pub(crate) fn result_line<T>(
    result: &Result<T, ImportError>,
    ok: impl FnOnce(&T) -> String,
) -> String {
    match result {
        Ok(r) => ok(r),
        Err(e) if e.is_rejection() => {
            format!("refused: {}", tender_format::error::chain_message(e))
        }
        Err(e) => format!("failed: {}", tender_format::error::chain_message(e)),
    }
}

/// Audits an action a killed run left noted in `audit.pending` (the caller
/// holds the state lock, so no run is under way): as done if `state` shows
/// its commit, else as interrupted. A note whose line was written after
/// all is just cleared.
pub fn settle(log: &AuditLog, state: &SiteStateFile) -> Result<Option<Appended>, ImportError> {
    let Some(pending) = log.read_pending()? else {
        return Ok(None);
    };
    if log.verify()?.entries > pending.entries_before {
        log.clear_pending()?;
        return Ok(None);
    }
    let mut event = pending.event;
    let digest = event.manifest_digest.as_deref();
    let committed = match event.action {
        AuditAction::PolicyUpdate => state
            .trust
            .policy
            .as_ref()
            .zip(event.policy_version)
            .is_some_and(|(p, v)| p.policy_version() >= v),
        AuditAction::Import => event
            .channel
            .as_ref()
            .and_then(|c| state.channels.get(c))
            .is_some_and(|c| Some(c.manifest_digest.as_str()) == digest),
        _ => event.clusters.iter().all(|cluster| {
            state.current.get(cluster).is_some_and(|r| {
                Some(r.manifest_digest.as_str()) == digest && Some(r.sequence) == event.sequence
            })
        }),
    };
    let done = match event.action {
        AuditAction::Import => "imported",
        AuditAction::PolicyUpdate => "accepted",
        _ => "rolled back",
    };
    event.result = if committed {
        format!("{done} (audited late: the run was interrupted after its commit)")
    } else if event.action == AuditAction::PolicyUpdate {
        "interrupted before its commit: the site's policy did not change".to_string()
    } else {
        "interrupted before its commit: nothing became current, though images may be loaded \
         and a delivery target may show the new release until the action is run again"
            .to_string()
    };
    log.append(event).map(Some)
}

/// sha256 of the line's canonical JSON without its `hash` field.
fn line_hash(line: &Line) -> Result<String, ImportError> {
    let mut value = serde_json::to_value(line).expect("audit lines serialize");
    if let Value::Object(map) = &mut value {
        map.remove("hash");
    }
    let bytes = canonical::to_vec(&value).map_err(|e| ImportError::Audit(e.to_string()))?;
    Ok(Digest::of(&bytes).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_detects_an_edited_line() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        for seq in 1..=3 {
            log.append(AuditEvent {
                action: AuditAction::Import,
                result: "ok".into(),
                operator: "ops".into(),
                sequence: Some(seq),
                ..AuditEvent::default()
            })
            .unwrap();
        }
        let report = log.verify().unwrap();
        assert_eq!((report.entries, report.broken_at), (3, None));

        let text = std::fs::read_to_string(log.path()).unwrap();
        std::fs::write(
            log.path(),
            text.replacen("\"sequence\":2", "\"sequence\":9", 1),
        )
        .unwrap();
        let report = log.verify().unwrap();
        assert_eq!(report.broken_at, Some(2));
        assert!(
            log.append(AuditEvent::default()).is_err(),
            "never extend a broken chain"
        );

        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(log.path(), format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        assert_eq!(
            log.verify().unwrap().broken_at,
            Some(2),
            "a deleted line breaks the chain"
        );
    }

    /// Lines as versions with a `String` action wrote them, hashed here
    /// independently of `Line`: the enum must serialize each action to the
    /// same string, or the chain of every existing site breaks. An action
    /// this version does not know verifies too.
    #[test]
    fn a_log_written_with_string_actions_verifies_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let mut prev = GENESIS.to_string();
        let mut text = String::new();
        let actions = [
            "import",
            "check",
            "rollback",
            "gc",
            "policy-update",
            "from-a-newer-version",
        ];
        for (i, action) in actions.iter().enumerate() {
            let mut line = serde_json::json!({
                "index": i + 1,
                "time": "2026-01-02T03:04:05Z",
                "prev": prev,
                "action": action,
                "result": "done",
                "operator": "ops",
                "bundle_id": null,
                "manifest_digest": null,
                "channel": "stable",
                "sequence": 7,
                "signers": [],
                "clusters": ["plant-a"],
                "images": [],
                "detail": null,
            });
            let hash = Digest::of(&canonical::to_vec(&line).unwrap()).to_string();
            line["hash"] = hash.clone().into();
            text.push_str(&serde_json::to_string(&line).unwrap());
            text.push('\n');
            prev = hash;
        }
        std::fs::write(log.path(), &text).unwrap();
        let report = log.verify().unwrap();
        assert_eq!((report.entries, report.broken_at), (6, None));
        assert_eq!(report.last_hash, prev);
        let parsed: Vec<AuditAction> = text
            .lines()
            .map(|l| serde_json::from_str::<Line>(l).unwrap().event.action)
            .collect();
        assert_eq!(parsed[0], AuditAction::Import);
        assert_eq!(parsed[4], AuditAction::PolicyUpdate);
        assert_eq!(parsed[5], AuditAction::Other("from-a-newer-version".into()));
        // And a new line still links onto the old ones.
        log.append(import_of("sha256:ab")).unwrap();
        assert_eq!(log.verify().unwrap().entries, 7);
    }

    fn import_of(digest: &str) -> AuditEvent {
        AuditEvent {
            action: AuditAction::Import,
            operator: "ops".into(),
            manifest_digest: Some(digest.into()),
            channel: Some("stable".into()),
            sequence: Some(2),
            ..AuditEvent::default()
        }
    }

    fn results(log: &AuditLog) -> Vec<String> {
        std::fs::read_to_string(log.path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Line>(l).unwrap().event.result)
            .collect()
    }

    fn state_with(digest: &str) -> SiteStateFile {
        let mut state = SiteStateFile::default();
        state.channels.insert(
            "stable".into(),
            crate::state::ChannelState {
                sequence: 2,
                bundle_id: "b-2".into(),
                manifest_digest: digest.into(),
                imported_at: "2026-11-26T10:00:00Z".into(),
                reset: None,
            },
        );
        state
    }

    #[test]
    fn an_action_is_pending_until_its_line_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let event = import_of("sha256:aa");
        log.begin(&event).unwrap();
        assert_eq!(log.verify().unwrap().pending, Some(event.clone()));
        log.append(AuditEvent {
            result: "imported".into(),
            ..event
        })
        .unwrap();
        let report = log.verify().unwrap();
        assert_eq!((report.entries, report.pending), (1, None));
        assert!(!dir.path().join("audit.pending").exists());
        // Nothing left to settle.
        assert_eq!(settle(&log, &state_with("sha256:aa")).unwrap(), None);
        assert_eq!(results(&log), ["imported"]);
    }

    #[test]
    fn a_killed_action_is_audited_by_the_next_run_as_done_or_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        // Killed after its commit: the state shows it.
        log.begin(&import_of("sha256:aa")).unwrap();
        let appended = settle(&log, &state_with("sha256:aa")).unwrap().unwrap();
        assert_eq!(appended.index, 1);
        // Killed before its commit: the state still shows the one before.
        log.begin(&import_of("sha256:bb")).unwrap();
        settle(&log, &state_with("sha256:aa")).unwrap().unwrap();
        let results = results(&log);
        assert!(
            results[0].starts_with("imported (audited late"),
            "{results:?}"
        );
        assert!(
            results[1].starts_with("interrupted before its commit"),
            "{results:?}"
        );
        let report = log.verify().unwrap();
        assert_eq!(
            (report.entries, report.reason, report.pending),
            (2, None, None)
        );
    }

    #[test]
    fn a_note_whose_line_was_written_is_only_cleared() {
        // Killed between writing the line and removing the note.
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let event = import_of("sha256:aa");
        log.begin(&event).unwrap();
        let note = std::fs::read(dir.path().join("audit.pending")).unwrap();
        log.append(AuditEvent {
            result: "imported".into(),
            ..event
        })
        .unwrap();
        std::fs::write(dir.path().join("audit.pending"), note).unwrap();
        assert_eq!(log.verify().unwrap().pending, None);
        assert_eq!(settle(&log, &state_with("sha256:aa")).unwrap(), None);
        assert_eq!(results(&log), ["imported"]);
        assert!(!dir.path().join("audit.pending").exists());
    }

    #[test]
    fn a_policy_update_killed_around_its_commit_is_audited_by_the_next_run() {
        use tender_format::policy_update::{POLICY_FORMAT_V1, PolicyBody, PolicyUpdate};
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::new(dir.path());
        let update = AuditEvent {
            action: AuditAction::PolicyUpdate,
            operator: "ops".into(),
            policy_version: Some(2),
            ..AuditEvent::default()
        };
        // Killed before the commit: the site is still at policy 1.
        log.begin(&update).unwrap();
        settle(&log, &SiteStateFile::default()).unwrap();
        // Killed after it: site.json holds policy 2.
        log.begin(&update).unwrap();
        let mut state = SiteStateFile::default();
        state.trust.policy = Some(PolicyUpdate {
            format: POLICY_FORMAT_V1.into(),
            policy: PolicyBody {
                version: 1,
                policy_version: 2,
                created: "2026-11-02T00:00:00Z".into(),
                keys: Vec::new(),
                thresholds: Default::default(),
                channels: Default::default(),
                role_max_age: Default::default(),
                resets: Default::default(),
            },
            signatures: Vec::new(),
        });
        settle(&log, &state).unwrap();
        let results = results(&log);
        assert!(
            results[0].starts_with("interrupted before its commit"),
            "{results:?}"
        );
        assert!(
            results[1].starts_with("accepted (audited late"),
            "{results:?}"
        );
    }
}
