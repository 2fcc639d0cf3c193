//! The site's Prometheus textfile (node_exporter's textfile collector
//! format, docs/site.md "Metrics"): what each cluster runs, the last import
//! and rollback and how they ended, the audit chain's health and the
//! embedded store's size. Written after every import and rollback,
//! atomically (a temporary file in the same directory, renamed over the
//! old one: the collector reads `*.prom` only, so it never sees half a
//! file).
//!
//! Everything comes from the site's own files (`site.json`, `audit.jsonl`,
//! the store), so the file says the same whichever run wrote it last.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::Deserialize;

use crate::audit::{AuditLog, ChainReport};
use crate::error::ImportError;
use crate::site::{ImageTarget, Site};
use crate::state::{SiteStateFile, read_state};

/// What an audit line says of an import or rollback.
#[derive(Debug, Clone, Deserialize)]
struct AuditEntry {
    time: String,
    action: String,
    result: String,
    #[serde(default)]
    sequence: Option<u64>,
}

/// The last audited line of one action.
#[derive(Debug, Clone)]
struct LastAction {
    seconds: i64,
    outcome: &'static str,
    sequence: Option<u64>,
}

/// The outcomes an import is reported with; one series each, the last
/// import's at 1.
pub const IMPORT_OUTCOMES: [&str; 4] = ["imported", "already_imported", "refused", "failed"];

/// `imported`, `already_imported`, `refused` or `failed`, from an audit
/// line's `result` (`audit::result_line`).
fn outcome(result: &str) -> &'static str {
    if result.starts_with("imported") {
        "imported"
    } else if result.starts_with("already imported") {
        "already_imported"
    } else if result.starts_with("refused") {
        "refused"
    } else if result.starts_with("rolled back") {
        "rolled_back"
    } else {
        "failed"
    }
}

/// Writes the site's metrics to its `metricsFile`; returns the path.
pub fn write(site: &Site) -> Result<PathBuf, ImportError> {
    let text = render(site)?;
    let path = &site.metrics_file;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tender_format::atomic::create_dir_all(dir)
            .map_err(|e| ImportError::io_at("creating", dir, e))?;
    }
    tender_format::atomic::write(path, text.as_bytes())
        .map_err(|e| ImportError::io_at("writing the metrics file", path, e))?;
    Ok(path.clone())
}

/// The textfile's contents.
pub fn render(site: &Site) -> Result<String, ImportError> {
    let state = read_state(&site.state_dir)?;
    let audit = AuditLog::new(&site.state_dir);
    let chain = audit.verify()?;
    let (last_import, last_rollback) = last_actions(audit.path())?;
    let s = label(&site.name);
    let mut out = String::new();
    render_releases(&mut out, &s, &state);
    if let Some(last) = &last_import {
        render_last_import(&mut out, &s, last);
    }
    if let Some(last) = &last_rollback {
        render_last_rollback(&mut out, &s, last);
    }
    render_audit_chain(&mut out, &s, &chain);
    if site.target == ImageTarget::Embedded {
        let (blobs, bytes) = store_size(&site.store_dir())?;
        render_store(&mut out, &s, blobs, bytes);
    }
    Ok(out)
}

/// The site, what each of its clusters runs and each channel's sequence
/// (`s`: the site's name as a label value).
fn render_releases(out: &mut String, s: &str, state: &SiteStateFile) {
    family(
        out,
        "tender_site_info",
        "The site this file describes (always 1).",
    );
    let _ = writeln!(out, "tender_site_info{{site=\"{s}\"}} 1");

    family(
        out,
        "tender_cluster_release_sequence",
        "Sequence of the release each cluster of the site runs now, with its channel and bundle id.",
    );
    for r in state.current.values() {
        let _ = writeln!(
            out,
            "tender_cluster_release_sequence{{site=\"{s}\",cluster=\"{}\",channel=\"{}\",bundle_id=\"{}\"}} {}",
            label(&r.cluster),
            label(&r.channel),
            label(&r.bundle_id),
            r.sequence
        );
    }
    family(
        out,
        "tender_channel_sequence",
        "Highest sequence the site has imported on each channel (a bundle must be above it).",
    );
    for (channel, c) in &state.channels {
        let _ = writeln!(
            out,
            "tender_channel_sequence{{site=\"{s}\",channel=\"{}\"}} {}",
            label(channel),
            c.sequence
        );
    }
}

/// When the last import was attempted, how it ended and which bundle it
/// was about.
fn render_last_import(out: &mut String, s: &str, last: &LastAction) {
    family(
        out,
        "tender_last_import_timestamp_seconds",
        "When the last import was attempted (Unix time, the audit line's).",
    );
    let _ = writeln!(
        out,
        "tender_last_import_timestamp_seconds{{site=\"{s}\"}} {}",
        last.seconds
    );
    family(
        out,
        "tender_last_import_outcome",
        "How the last import ended: 1 for its outcome, 0 for the others.",
    );
    for o in IMPORT_OUTCOMES {
        let _ = writeln!(
            out,
            "tender_last_import_outcome{{site=\"{s}\",outcome=\"{o}\"}} {}",
            u8::from(last.outcome == o)
        );
    }
    if let Some(seq) = last.sequence {
        family(
            out,
            "tender_last_import_sequence",
            "Sequence of the bundle the last import was about.",
        );
        let _ = writeln!(out, "tender_last_import_sequence{{site=\"{s}\"}} {seq}");
    }
}

/// When the last rollback was attempted and whether it succeeded.
fn render_last_rollback(out: &mut String, s: &str, last: &LastAction) {
    family(
        out,
        "tender_last_rollback_timestamp_seconds",
        "When the last rollback was attempted (Unix time).",
    );
    let _ = writeln!(
        out,
        "tender_last_rollback_timestamp_seconds{{site=\"{s}\"}} {}",
        last.seconds
    );
    family(
        out,
        "tender_last_rollback_success",
        "1 if the last rollback succeeded, 0 if it was refused or failed.",
    );
    let _ = writeln!(
        out,
        "tender_last_rollback_success{{site=\"{s}\"}} {}",
        u8::from(last.outcome == "rolled_back")
    );
}

/// Whether the audit chain verifies, and how many of its lines do.
fn render_audit_chain(out: &mut String, s: &str, chain: &ChainReport) {
    family(
        out,
        "tender_audit_chain_ok",
        "1 if every line of the audit log hashes and links correctly (tender audit verify), 0 if not.",
    );
    let _ = writeln!(
        out,
        "tender_audit_chain_ok{{site=\"{s}\"}} {}",
        u8::from(chain.broken_at.is_none())
    );
    family(
        out,
        "tender_audit_entries",
        "Audit log lines that verify (up to the first broken one).",
    );
    let _ = writeln!(
        out,
        "tender_audit_entries{{site=\"{s}\"}} {}",
        chain.entries
    );
}

/// The embedded store's blobs and bytes.
fn render_store(out: &mut String, s: &str, blobs: u64, bytes: u64) {
    family(
        out,
        "tender_store_blobs",
        "Blobs in the embedded image store.",
    );
    let _ = writeln!(out, "tender_store_blobs{{site=\"{s}\"}} {blobs}");
    family(
        out,
        "tender_store_bytes",
        "Bytes of the blobs in the embedded image store.",
    );
    let _ = writeln!(out, "tender_store_bytes{{site=\"{s}\"}} {bytes}");
}

/// `# HELP` and `# TYPE` lines; every tender metric is a gauge.
fn family(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
}

/// A label value, escaped as the exposition format requires.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The last `import` and the last `rollback` line of the audit log.
fn last_actions(path: &Path) -> Result<(Option<LastAction>, Option<LastAction>), ImportError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((None, None)),
        Err(e) => return Err(ImportError::io_at("reading the audit log", path, e)),
    };
    let mut last: BTreeMap<&'static str, LastAction> = BTreeMap::new();
    for line in BufReader::new(file).lines() {
        let line = line.map_err(|e| ImportError::io_at("reading the audit log", path, e))?;
        let Ok(entry) = serde_json::from_str::<AuditEntry>(&line) else {
            continue;
        };
        let action = match entry.action.as_str() {
            "import" => "import",
            "rollback" => "rollback",
            _ => continue,
        };
        let Some(seconds) = unix_seconds(&entry.time) else {
            continue;
        };
        last.insert(
            action,
            LastAction {
                seconds,
                outcome: outcome(&entry.result),
                sequence: entry.sequence,
            },
        );
    }
    Ok((last.remove("import"), last.remove("rollback")))
}

fn unix_seconds(rfc3339: &str) -> Option<i64> {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Blobs and bytes under the store's `blobs/`.
fn store_size(store: &Path) -> Result<(u64, u64), ImportError> {
    let (mut blobs, mut bytes) = (0, 0);
    let root = store.join("blobs");
    let algorithms = match fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(ImportError::io_at("reading the store", &root, e)),
    };
    for algorithm in algorithms {
        let dir = algorithm
            .map_err(|e| ImportError::io_at("reading the store", &root, e))?
            .path();
        if !dir.is_dir() {
            continue;
        }
        for blob in
            fs::read_dir(&dir).map_err(|e| ImportError::io_at("reading the store", &dir, e))?
        {
            let meta = blob
                .and_then(|b| b.metadata())
                .map_err(|e| ImportError::io_at("reading the store", &dir, e))?;
            if meta.is_file() {
                blobs += 1;
                bytes += meta.len();
            }
        }
    }
    Ok((blobs, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_results_map_to_outcomes() {
        assert_eq!(outcome("imported"), "imported");
        assert_eq!(outcome("already imported"), "already_imported");
        assert_eq!(outcome("refused: sequence 3 is not above 4"), "refused");
        assert_eq!(outcome("failed: writing /x: disk full"), "failed");
        assert_eq!(outcome("rolled back"), "rolled_back");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
