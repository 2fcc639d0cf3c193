//! The hub's state directory: the last sequence exported per channel and a
//! log of every export. Sites refuse a sequence that is not above the last
//! they imported, so the hub must never hand out one twice.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::atomic;
use tender_format::lock_file::LockFile;

use crate::error::ExportError;

/// One line of `exports.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExportRecord {
    pub bundle_id: String,
    pub manifest_digest: String,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub path: String,
    pub clusters: Vec<String>,
    /// Set when `--override-gate` sent the bundle past a wave gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_override: Option<tender_format::manifest::GateOverride>,
}

/// The hub state directory, locked for the life of this value so two
/// exports cannot take the same sequence number.
pub struct HubState {
    dir: PathBuf,
    _lock: LockFile,
}

impl HubState {
    pub fn open(dir: &Path) -> Result<Self, ExportError> {
        let io = |e| ExportError::io_at("opening hub state", dir, e);
        atomic::create_dir_all(&dir.join("sequences")).map_err(io)?;
        let lock = LockFile::acquire(&dir.join("lock")).map_err(io)?;
        Ok(HubState {
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    /// The last sequence exported on a channel (0 if none).
    pub fn last_sequence(&self, channel: &str) -> Result<u64, ExportError> {
        let path = self.dir.join("sequences").join(channel);
        match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                ExportError::io_at(
                    "reading hub state",
                    &path,
                    std::io::Error::other("not a sequence number"),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(ExportError::io_at("reading hub state", path, e)),
        }
    }

    /// Picks the sequence for a new export: `requested`, which must be
    /// above the last one, or the last one plus one.
    pub fn next_sequence(&self, channel: &str, requested: Option<u64>) -> Result<u64, ExportError> {
        let last = self.last_sequence(channel)?;
        match requested {
            Some(n) if n <= last => Err(ExportError::Sequence {
                channel: channel.to_string(),
                requested: n,
                last,
            }),
            Some(n) => Ok(n),
            None => Ok(last + 1),
        }
    }

    /// Records a finished export: the log line first, then the sequence.
    pub fn record(&self, record: &ExportRecord) -> Result<(), ExportError> {
        let log = self.dir.join("exports.jsonl");
        let io = |e| ExportError::io_at("writing hub state", &log, e);
        let mut line = serde_json::to_string(record).expect("records serialize");
        line.push('\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        let seq = self.dir.join("sequences").join(&record.channel);
        atomic::write(&seq, format!("{}\n", record.sequence).as_bytes())
            .map_err(|e| ExportError::io_at("writing hub state", &seq, e))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_only_go_up() {
        let dir = tempfile::tempdir().unwrap();
        let state = HubState::open(dir.path()).unwrap();
        assert_eq!(state.next_sequence("stable", None).unwrap(), 1);
        state
            .record(&ExportRecord {
                bundle_id: "b".into(),
                manifest_digest: "sha256:00".into(),
                channel: "stable".into(),
                sequence: 7,
                created: "2026-11-26T00:00:00Z".into(),
                path: "x".into(),
                clusters: vec![],
                gate_override: None,
            })
            .unwrap();
        assert_eq!(state.next_sequence("stable", None).unwrap(), 8);
        assert_eq!(state.next_sequence("edge", None).unwrap(), 1);
        assert!(state.next_sequence("stable", Some(7)).is_err());
        assert_eq!(state.next_sequence("stable", Some(10)).unwrap(), 10);
    }
}
