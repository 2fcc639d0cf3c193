//! The last sequence exported per channel and a log of every export, in
//! the hub directory. Sites refuse a sequence that is not above the last
//! they imported, so the hub must never hand out one twice.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::atomic;

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

/// The last sequence exported on a channel (0 if none).
pub(crate) fn last(dir: &Path, channel: &str) -> Result<u64, ExportError> {
    let path = dir.join("sequences").join(channel);
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
pub(crate) fn next(dir: &Path, channel: &str, requested: Option<u64>) -> Result<u64, ExportError> {
    let last = last(dir, channel)?;
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
pub(crate) fn record(dir: &Path, record: &ExportRecord) -> Result<(), ExportError> {
    let log = dir.join("exports.jsonl");
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
    let seq = dir.join("sequences").join(&record.channel);
    atomic::write(&seq, format!("{}\n", record.sequence).as_bytes())
        .map_err(|e| ExportError::io_at("writing hub state", &seq, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_only_go_up() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::hub::Hub::open(dir.path()).unwrap();
        assert_eq!(state.next_sequence("stable", None).unwrap(), 1);
        state
            .record_export(&ExportRecord {
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
