//! What the fleet page shows (`tender hub report`): the fleet's waves ×
//! sites, each cluster's current release from the hub's receipts, the
//! gates still pending, and release adoption over time. Built from the
//! fleet spec and the hub state only: no render, no network, no signature
//! check (the hub verified each receipt when it ingested it), so it stays
//! quick for a thousand clusters.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, BufRead};
use std::path::Path;
use tender_format::FromIo;

use crate::hub::{ClusterState, History, HubStatus};
use serde::Serialize;
use tender_format::{BundleManifest, Digest};

use crate::error::ExportError;
use crate::hub::ExportRecord;
use crate::waves::{self, GateCheck};
use tender_render::fleet::{Cluster, Fleet};

/// Where a cluster stands, for the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellState {
    /// Runs the latest sequence exported on the channel.
    Current,
    /// Runs an older one.
    Stale,
    /// Runs a newer one than this hub exported.
    Ahead,
    /// The hub never exported on the channel.
    Unknown,
    /// No receipt lists it.
    NeverReported,
}

impl CellState {
    pub fn as_str(self) -> &'static str {
        match self {
            CellState::Current => "current",
            CellState::Stale => "stale",
            CellState::Ahead => "ahead",
            CellState::Unknown => "unknown",
            CellState::NeverReported => "never-reported",
        }
    }
}

/// One cluster in the grid.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterCell {
    pub cluster: String,
    pub tier: String,
    pub state: CellState,
    pub channel: Option<String>,
    pub sequence: Option<u64>,
    pub bundle_id: Option<String>,
    /// Since when it runs this release (the receipt's time).
    pub since: Option<String>,
    /// Seconds from `since` to the report's `now`.
    pub age_seconds: Option<i64>,
    /// Its current release came by a rollback.
    pub rolled_back: bool,
}

/// A column: a site and how recently it reported.
#[derive(Debug, Clone, Serialize)]
pub struct SiteColumn {
    pub site: String,
    pub last_seen: Option<String>,
    /// No receipt for longer than the allowed days, or never.
    pub overdue: bool,
}

/// A row: a wave (or, for a fleet without waves, a tier).
#[derive(Debug, Clone, Serialize)]
pub struct WaveRow {
    pub wave: String,
    /// One list of clusters per site, in the order of `FleetReport::sites`.
    pub cells: Vec<Vec<ClusterCell>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FleetReport {
    pub fleet: String,
    pub channel: String,
    /// The hub's clock, RFC 3339.
    pub now: String,
    /// The last sequence exported on the channel.
    pub latest: Option<u64>,
    pub stale_after_days: u64,
    /// Whether the rows are the fleet's waves (else its tiers).
    pub has_waves: bool,
    pub sites: Vec<SiteColumn>,
    pub rows: Vec<WaveRow>,
    /// Each later wave's gate against the release the hub last exported to
    /// the wave before it.
    pub gates: Vec<GateCheck>,
    /// `(time, sequence → clusters running it)`, oldest first.
    pub adoption: Vec<(String, BTreeMap<u64, usize>)>,
    pub clusters: usize,
    pub receipts: usize,
}

/// [`build`] at the hub's clock now.
pub fn build_now(
    fleet: &Fleet,
    dir: &Path,
    channel: Option<&str>,
    stale_after_days: u64,
) -> Result<FleetReport, ExportError> {
    build(
        fleet,
        dir,
        channel,
        stale_after_days,
        time::OffsetDateTime::now_utc(),
    )
}

/// Builds the report for `fleet` from the hub state in `dir`, at `now`.
pub fn build(
    fleet: &Fleet,
    dir: &Path,
    channel: Option<&str>,
    stale_after_days: u64,
    now: time::OffsetDateTime,
) -> Result<FleetReport, ExportError> {
    let channel = channel
        .map(str::to_string)
        .or_else(|| fleet.spec.channel.clone())
        .unwrap_or_else(|| "stable".to_string());
    let status = crate::hub::status_at(dir, stale_after_days, now)?;
    let history = crate::hub::history(dir)?;

    let (site_names, sites) = site_columns(fleet, &status);
    let cluster_status: BTreeMap<&str, &crate::hub::ClusterStatus> = status
        .sites
        .iter()
        .flat_map(|s| s.clusters.iter().map(|c| (c.cluster.as_str(), c)))
        .collect();
    let exports = last_exports(dir, &channel)?;
    let latest = cluster_status
        .values()
        .find(|c| c.channel == channel)
        .and_then(|c| c.latest)
        .or_else(|| last_sequence(dir, &channel));

    let (has_waves, groups) = wave_groups(fleet);
    let rows = groups
        .into_iter()
        .map(|(wave, members)| WaveRow {
            wave,
            cells: site_names
                .iter()
                .map(|site| {
                    members
                        .iter()
                        .filter(|c| &c.site == site)
                        .map(|c| cell(c, &cluster_status, &exports, &channel, &history, now))
                        .collect()
                })
                .collect(),
        })
        .collect();

    let gates = gate_checks(fleet, dir, &exports, &channel, &history, now);

    Ok(FleetReport {
        fleet: fleet.spec.name.clone(),
        adoption: history.adoption(&channel),
        channel,
        now: status.now.clone(),
        latest,
        stale_after_days,
        has_waves,
        sites,
        rows,
        gates,
        clusters: fleet.spec.clusters.len(),
        receipts: history.receipts,
    })
}

/// The report's columns: each site of the fleet in spec order, with when
/// its last receipt arrived and whether it is overdue.
fn site_columns(fleet: &Fleet, status: &HubStatus) -> (Vec<String>, Vec<SiteColumn>) {
    let mut site_names: Vec<String> = Vec::new();
    for c in &fleet.spec.clusters {
        if !site_names.contains(&c.site) {
            site_names.push(c.site.clone());
        }
    }
    let site_status: BTreeMap<&str, &crate::hub::SiteStatus> =
        status.sites.iter().map(|s| (s.site.as_str(), s)).collect();
    let sites: Vec<SiteColumn> = site_names
        .iter()
        .map(|name| {
            let s = site_status.get(name.as_str());
            SiteColumn {
                site: name.clone(),
                last_seen: s.and_then(|s| s.last_seen.clone()),
                overdue: s.is_none_or(|s| s.overdue),
            }
        })
        .collect();
    (site_names, sites)
}

/// The report's rows: the rollout waves in spec order, or (a fleet without
/// waves) its tiers, each with its clusters; and which of the two it is.
fn wave_groups(fleet: &Fleet) -> (bool, Vec<(String, Vec<&Cluster>)>) {
    if fleet.spec.waves.is_empty() {
        let mut tiers: Vec<String> = Vec::new();
        for c in &fleet.spec.clusters {
            if !tiers.contains(&c.tier) {
                tiers.push(c.tier.clone());
            }
        }
        let groups = tiers
            .into_iter()
            .map(|t| {
                let members = fleet.spec.clusters.iter().filter(|c| c.tier == t).collect();
                (t, members)
            })
            .collect();
        (false, groups)
    } else {
        let groups = fleet
            .spec
            .waves
            .iter()
            .enumerate()
            .map(|(i, w)| (w.name.clone(), fleet.wave_clusters(i)))
            .collect();
        (true, groups)
    }
}

/// Every wave gate of the fleet, checked against what the hub last
/// exported to the gating clusters and what their receipts say.
fn gate_checks(
    fleet: &Fleet,
    dir: &Path,
    exports: &BTreeMap<String, LastExport>,
    channel: &str,
    history: &History,
    now: time::OffsetDateTime,
) -> Vec<GateCheck> {
    let all: Vec<String> = fleet.spec.clusters.iter().map(|c| c.name.clone()).collect();
    let gates = waves::gates_for(fleet, &all);
    let gating: BTreeSet<&String> = gates.iter().flat_map(|g| g.clusters.iter()).collect();
    let expected = last_exported_manifests(dir, exports, &gating);
    gates
        .iter()
        .map(|g| waves::check(g, &expected, channel, history, now))
        .collect()
}

/// A cluster's cell. With waves, a cluster is current when it runs the
/// last export that targeted *it* (a canary-only export does not make the
/// production wave stale); a cluster never exported to by this hub is
/// judged against the channel's last export, as `tender hub status` does.
fn cell(
    c: &tender_render::fleet::Cluster,
    status: &BTreeMap<&str, &crate::hub::ClusterStatus>,
    exports: &BTreeMap<String, LastExport>,
    channel: &str,
    history: &History,
    now: time::OffsetDateTime,
) -> ClusterCell {
    let s = status.get(c.name.as_str());
    let run = history.cluster(&c.name).and_then(|h| h.current());
    let state = match (s, exports.get(&c.name)) {
        (None, _) => CellState::NeverReported,
        (Some(s), Some(e)) if s.channel == channel => match s.sequence.cmp(&e.sequence) {
            std::cmp::Ordering::Equal => CellState::Current,
            std::cmp::Ordering::Less => CellState::Stale,
            std::cmp::Ordering::Greater => CellState::Ahead,
        },
        (Some(s), _) => match s.state {
            ClusterState::Current => CellState::Current,
            ClusterState::Stale => CellState::Stale,
            ClusterState::Ahead => CellState::Ahead,
            ClusterState::Unknown => CellState::Unknown,
        },
    };
    let since = run.map(|r| r.since.clone());
    ClusterCell {
        cluster: c.name.clone(),
        tier: c.tier.clone(),
        state,
        channel: s.map(|s| s.channel.clone()),
        sequence: s.map(|s| s.sequence),
        bundle_id: s.map(|s| s.bundle_id.clone()),
        age_seconds: since
            .as_deref()
            .and_then(|t| crate::hub::history::seconds_since(t, now).ok()),
        since,
        rolled_back: run.is_some_and(|r| r.rolled_back),
    }
}

/// `sequences/<channel>`, if the hub exported on it.
fn last_sequence(dir: &Path, channel: &str) -> Option<u64> {
    fs::read_to_string(dir.join("sequences").join(channel))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .filter(|&n| n > 0)
}

/// The last export on a channel that targeted a cluster.
#[derive(Debug, Clone)]
struct LastExport {
    sequence: u64,
    manifest_digest: String,
}

/// Per cluster, the last export on `channel` that targeted it
/// (`exports.jsonl`).
fn last_exports(dir: &Path, channel: &str) -> Result<BTreeMap<String, LastExport>, ExportError> {
    let log = dir.join("exports.jsonl");
    let file = match fs::File::open(&log) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(ExportError::io_at("reading hub state", &log, e)),
    };
    let mut last = BTreeMap::new();
    for line in io::BufReader::new(file).lines() {
        let line = line.map_err(|e| ExportError::io_at("reading hub state", &log, e))?;
        let Ok(record) = serde_json::from_str::<ExportRecord>(&line) else {
            continue;
        };
        if record.channel != channel {
            continue;
        }
        for c in &record.clusters {
            last.insert(
                c.clone(),
                LastExport {
                    sequence: record.sequence,
                    manifest_digest: record.manifest_digest.clone(),
                },
            );
        }
    }
    Ok(last)
}

/// For each of `clusters` that was exported to, the manifest set its last
/// export gave it, from the manifest the hub store kept of that bundle.
fn last_exported_manifests(
    dir: &Path,
    exports: &BTreeMap<String, LastExport>,
    clusters: &BTreeSet<&String>,
) -> BTreeMap<String, Digest> {
    let mut manifests: BTreeMap<&str, Option<BundleManifest>> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for cluster in clusters {
        let Some(export) = exports.get(*cluster) else {
            continue;
        };
        let digest = export.manifest_digest.as_str();
        let manifest = manifests
            .entry(digest)
            .or_insert_with(|| stored_manifest(dir, digest));
        if let Some(r) = manifest
            .as_ref()
            .and_then(|m| m.releases.iter().find(|r| &&r.cluster == cluster))
        {
            out.insert((*cluster).clone(), r.manifests);
        }
    }
    out
}

/// The manifest the hub store kept of a bundle (`bundles/<hex>/manifest.json`).
fn stored_manifest(dir: &Path, digest: &str) -> Option<BundleManifest> {
    let hex = digest.strip_prefix("sha256:")?;
    let bytes = fs::read(dir.join("bundles").join(hex).join("manifest.json")).ok()?;
    BundleManifest::from_canonical_bytes(&bytes).ok()
}
