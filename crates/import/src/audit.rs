//! The tamper-evident audit trail: one JSON line per import, refusal or
//! rollback, each carrying the hash of the line before it. Editing,
//! reordering or deleting a line breaks the chain at that point; `tender
//! audit verify` finds it. (Cutting lines off the end leaves a valid
//! shorter chain: receipts carry the last hash to the hub for that.)

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tender_format::{Digest, canonical};

use crate::error::ImportError;

/// `prev` of the first entry.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, as recorded.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: String,
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signer {
    pub key_id: String,
    pub role: String,
    pub signer: String,
}

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

/// Where the chain holds, or the first line where it breaks.
#[derive(Debug, Clone, Serialize)]
pub struct ChainReport {
    pub entries: u64,
    pub last_hash: String,
    pub broken_at: Option<u64>,
    pub reason: Option<String>,
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

    /// Appends an event, chained to the last line, and syncs it to disk.
    /// The caller holds the state lock, so appends never interleave.
    pub fn append(&self, event: AuditEvent) -> Result<String, ImportError> {
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
        let io = |e| ImportError::io("writing the audit log", &self.path, e);
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        Ok(line.hash)
    }

    /// Checks every line's hash and link.
    pub fn verify(&self) -> Result<ChainReport, ImportError> {
        let mut report = ChainReport {
            entries: 0,
            last_hash: GENESIS.to_string(),
            broken_at: None,
            reason: None,
        };
        let file = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(report),
            Err(e) => return Err(ImportError::io("reading the audit log", &self.path, e)),
        };
        for (i, text) in BufReader::new(file).lines().enumerate() {
            let number = i as u64 + 1;
            let text = text.map_err(|e| ImportError::io("reading the audit log", &self.path, e))?;
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
        Ok(report)
    }
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
                action: "import".into(),
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
}
