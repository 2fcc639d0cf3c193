//! What each cluster has run over time, from the receipts the hub recorded
//! (`receipts/<site>/*.json`): the evidence behind wave gates ("runs this
//! release, for at least this long, no rollback since") and the adoption
//! plot of the fleet page.
//!
//! The receipts were verified against their site's key when `tender hub
//! ingest` recorded them, and the hub state directory is the hub's own, so
//! they are parsed here, not verified again: the history of 1,000 sites
//! costs a directory walk and a JSON parse per receipt (of the fields it
//! needs), no signature check.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::Digest;
use tender_format::manifest::is_token;

use tender_receipt::ReceiptError;
use tender_receipt::{Action, ReleaseEntry, parse_time};

/// A stretch of time during which a cluster ran one release: it starts
/// with the first receipt that lists the cluster with that release, which
/// is a rollback receipt when the cluster was rolled back to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub channel: String,
    pub sequence: u64,
    pub bundle_id: String,
    pub manifests: Digest,
    /// `time` of the receipt that started the run (the site's clock).
    pub since: String,
    /// The run started with a rollback receipt.
    pub rolled_back: bool,
    /// Since when the cluster has run these manifests on this channel
    /// without being rolled back: `since`, or earlier when the run before this one
    /// (a later sequence carrying the same manifest set, say) had them too.
    /// A gate soaks from here, so re-sending a proven release does not
    /// restart its soak.
    pub manifests_since: String,
}

/// One cluster's runs, oldest first; the last is what it runs now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterHistory {
    pub site: String,
    pub cluster: String,
    pub runs: Vec<Run>,
}

impl ClusterHistory {
    pub fn current(&self) -> Option<&Run> {
        self.runs.last()
    }
}

/// Every cluster any recorded receipt lists, by cluster name.
#[derive(Debug, Clone, Default, Serialize)]
pub struct History {
    pub clusters: BTreeMap<String, ClusterHistory>,
    /// Receipts read.
    pub receipts: usize,
}

impl History {
    pub fn cluster(&self, name: &str) -> Option<&ClusterHistory> {
        self.clusters.get(name)
    }

    /// How many of `clusters` ran each sequence of `channel`, at every time
    /// a run started: `(time, sequence → clusters)`, oldest first. A cluster
    /// counts from the start of its first run on the channel.
    pub fn adoption(&self, channel: &str) -> Vec<(String, BTreeMap<u64, usize>)> {
        let mut starts: Vec<(&str, &str, u64)> = self
            .clusters
            .values()
            .flat_map(|c| {
                c.runs
                    .iter()
                    .filter(|r| r.channel == channel)
                    .map(move |r| (r.since.as_str(), c.cluster.as_str(), r.sequence))
            })
            .collect();
        starts.sort();
        let mut running: BTreeMap<&str, u64> = BTreeMap::new();
        let mut out: Vec<(String, BTreeMap<u64, usize>)> = Vec::new();
        for (time, cluster, sequence) in starts {
            running.insert(cluster, sequence);
            let mut counts = BTreeMap::new();
            for s in running.values() {
                *counts.entry(*s).or_insert(0) += 1;
            }
            match out.last_mut() {
                Some((t, c)) if t == time => *c = counts,
                _ => out.push((time.to_string(), counts)),
            }
        }
        out
    }
}

/// Reads every receipt recorded under `<dir>/receipts/` into each cluster's
/// runs. Each site's receipts are taken in the order the hub applied them
/// (time, then audit index, then sequence).
pub fn history(dir: &Path) -> Result<History, ReceiptError> {
    let root = dir.join("receipts");
    let mut out = History::default();
    let sites = match fs::read_dir(&root) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(ReceiptError::io_at("listing receipts", &root, e)),
    };
    let mut site_dirs = Vec::new();
    for entry in sites {
        let entry = entry.map_err(|e| ReceiptError::io_at("listing receipts", &root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_token(&name) && entry.path().is_dir() {
            site_dirs.push((name, entry.path()));
        }
    }
    site_dirs.sort();
    for (site, path) in site_dirs {
        let mut receipts = Vec::new();
        let listing =
            fs::read_dir(&path).map_err(|e| ReceiptError::io_at("listing receipts", &path, e))?;
        for entry in listing {
            let file = entry
                .map_err(|e| ReceiptError::io_at("listing receipts", &path, e))?
                .path();
            if file.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let stored = read_stored(&file)?;
            if stored.site != site {
                return Err(ReceiptError::BadHubState {
                    path: file,
                    reason: format!("a receipt of site {} in {site}'s folder", stored.site),
                });
            }
            receipts.push(stored);
        }
        receipts.sort_by(|a, b| {
            (&a.time, a.audit_index, a.sequence).cmp(&(&b.time, b.audit_index, b.sequence))
        });
        out.receipts += receipts.len();
        for r in &receipts {
            apply(&mut out, &site, r);
        }
    }
    Ok(out)
}

/// The fields of a recorded receipt that its history needs. The hub
/// verified the file when it recorded it; here it is only read, and its
/// inventory (most of its bytes) is skipped, not decoded.
#[derive(Debug, Deserialize)]
struct StoredReceipt {
    site: String,
    action: Action,
    time: String,
    sequence: u64,
    audit_index: u64,
    releases: Vec<ReleaseEntry>,
}

#[derive(Debug, Deserialize)]
struct StoredFile {
    receipt: StoredReceipt,
}

fn read_stored(file: &Path) -> Result<StoredReceipt, ReceiptError> {
    let bytes =
        fs::read(file).map_err(|e| ReceiptError::io_at("reading recorded receipt", file, e))?;
    let stored: StoredFile =
        serde_json::from_slice(&bytes).map_err(|e| ReceiptError::BadHubState {
            path: file.to_path_buf(),
            reason: format!("not a receipt: {e}"),
        })?;
    parse_time(&stored.receipt.time).map_err(|e| ReceiptError::BadHubState {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    Ok(stored.receipt)
}

fn apply(out: &mut History, site: &str, r: &StoredReceipt) {
    for release in &r.releases {
        let history = out
            .clusters
            .entry(release.cluster.clone())
            .or_insert_with(|| ClusterHistory {
                site: site.to_string(),
                cluster: release.cluster.clone(),
                runs: Vec::new(),
            });
        let same = history.current().is_some_and(|run| {
            run.channel == release.channel
                && run.sequence == release.sequence
                && run.manifests == release.manifests
        });
        // A rollback receipt lists every cluster of the site; only those
        // whose release it changed were rolled back.
        if same {
            continue;
        }
        let rolled_back = r.action == Action::Rollback;
        let manifests_since = match history.current() {
            Some(run)
                if !rolled_back
                    && run.channel == release.channel
                    && run.manifests == release.manifests =>
            {
                run.manifests_since.clone()
            }
            _ => r.time.clone(),
        };
        history.runs.push(Run {
            channel: release.channel.clone(),
            sequence: release.sequence,
            bundle_id: release.bundle_id.clone(),
            manifests: release.manifests,
            since: r.time.clone(),
            rolled_back,
            manifests_since,
        });
    }
}

/// Seconds from `since` (a receipt time) to `now`; negative when the
/// site's clock is ahead of the hub's.
pub fn seconds_since(since: &str, now: time::OffsetDateTime) -> Result<i64, ReceiptError> {
    Ok((now - parse_time(since)?).whole_seconds())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::receipts::{IngestStatus, add_site, ingest};
    use crate::hub::tests::sample;
    use tender_trust::PrivateKey;

    /// Ingests receipts of plant-001 (audit index = position + 1), each
    /// `(action, time, sequence, manifest set)` for its one cluster.
    fn hub_with(receipts: &[(Action, &str, u64, &[u8])]) -> tempfile::TempDir {
        let hub = tempfile::tempdir().unwrap();
        let key = PrivateKey::from_seed("plant-001", [7; 32]);
        add_site(hub.path(), "plant-001", &key.public()).unwrap();
        let mut files = Vec::new();
        for (i, (action, time, sequence, set)) in receipts.iter().enumerate() {
            let mut r = sample("plant-001", time, *sequence);
            r.action = *action;
            r.audit_index = i as u64 + 1;
            r.releases[0].manifests = Digest::of(set);
            let file = hub.path().join(format!("in-{i}.json"));
            r.sign(&key).to_file(&file).unwrap();
            files.push(file);
        }
        for o in ingest(hub.path(), &files).unwrap() {
            assert_eq!(o.status, IngestStatus::Recorded, "{}", o.message);
        }
        hub
    }

    #[test]
    fn a_resent_release_keeps_its_soak_and_a_rollback_restarts_it() {
        let hub = hub_with(&[
            (Action::Import, "2026-11-20T10:00:00Z", 1, b"v1"),
            // Sequence 2 carries line-a's manifests unchanged.
            (Action::Import, "2026-11-21T10:00:00Z", 2, b"v1"),
            (Action::Refused, "2026-11-21T11:00:00Z", 2, b"v1"),
            (Action::Import, "2026-11-22T10:00:00Z", 3, b"v2"),
            (Action::Rollback, "2026-11-23T10:00:00Z", 2, b"v1"),
        ]);
        let h = history(hub.path()).unwrap();
        assert_eq!(h.receipts, 5);
        let line_a = h.cluster("plant-001-line-a").unwrap();
        let runs: Vec<(u64, &str, &str, bool)> = line_a
            .runs
            .iter()
            .map(|r| {
                (
                    r.sequence,
                    r.since.as_str(),
                    r.manifests_since.as_str(),
                    r.rolled_back,
                )
            })
            .collect();
        assert_eq!(
            runs,
            [
                (1, "2026-11-20T10:00:00Z", "2026-11-20T10:00:00Z", false),
                (2, "2026-11-21T10:00:00Z", "2026-11-20T10:00:00Z", false),
                (3, "2026-11-22T10:00:00Z", "2026-11-22T10:00:00Z", false),
                (2, "2026-11-23T10:00:00Z", "2026-11-23T10:00:00Z", true),
            ]
        );
        let now = parse_time("2026-11-24T10:00:00Z").unwrap();
        assert_eq!(
            seconds_since(&line_a.current().unwrap().manifests_since, now).unwrap(),
            86_400
        );
        let adoption = h.adoption("stable");
        assert_eq!(adoption.len(), 4);
        assert_eq!(adoption[3].0, "2026-11-23T10:00:00Z");
        assert_eq!(adoption[3].1, BTreeMap::from([(2, 1)]));
        assert!(h.adoption("edge").is_empty());
    }

    #[test]
    fn a_hub_without_receipts_has_an_empty_history() {
        let hub = tempfile::tempdir().unwrap();
        let h = history(hub.path()).unwrap();
        assert!(h.clusters.is_empty() && h.receipts == 0);
    }
}
