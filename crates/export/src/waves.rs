//! Rollout waves gated on receipts (docs/fleet-spec.md, "Waves and
//! gates"). An export that targets a cluster of a later wave goes out only
//! when every cluster of the wave before it reports, in a receipt the hub
//! has ingested, that it runs **this release** (the manifest set this same
//! export renders for it, on this channel) and has run it for at least the
//! gate's soak, without being rolled back since.
//!
//! "This release" is content, not a number: the canary proves the manifest
//! set that the current inputs render for it. A chart or values change
//! after the canary's bundle makes the canary's manifests differ from what
//! it runs, and the later wave waits until the canary has run the change.

use std::collections::{BTreeMap, BTreeSet};

use crate::hub::History;
use serde::Serialize;
use tender_format::Digest;
use tender_format::manifest::GateOverride;

use crate::error::ExportError;
use tender_render::fleet::{Fleet, format_duration};

/// The gate in front of one wave: which clusters must show the release,
/// and for how long.
#[derive(Debug, Clone, Serialize)]
pub struct WaveGate {
    /// The gated wave.
    pub wave: String,
    /// The wave before it, whose clusters must report.
    pub after: String,
    pub soak_seconds: u64,
    /// The clusters of `after`, in spec order.
    pub clusters: Vec<String>,
}

/// The gates an export to `targeted` clusters must pass: one per targeted
/// wave after the first, in wave order. Empty when the fleet has no waves.
pub fn gates_for(fleet: &Fleet, targeted: &[String]) -> Vec<WaveGate> {
    let waves: BTreeSet<usize> = fleet
        .spec
        .clusters
        .iter()
        .filter(|c| targeted.contains(&c.name))
        .filter_map(|c| fleet.wave_of(c))
        .filter(|&i| i > 0)
        .collect();
    waves
        .into_iter()
        .map(|i| WaveGate {
            wave: fleet.spec.waves[i].name.clone(),
            after: fleet.spec.waves[i - 1].name.clone(),
            soak_seconds: fleet.spec.waves[i].soak_seconds(),
            clusters: fleet
                .wave_clusters(i - 1)
                .into_iter()
                .map(|c| c.name.clone())
                .collect(),
        })
        .collect()
}

/// Why one cluster does not yet open its gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pending {
    pub cluster: String,
    pub reason: String,
}

/// A gate, checked.
#[derive(Debug, Clone, Serialize)]
pub struct GateCheck {
    #[serde(flatten)]
    pub gate: WaveGate,
    /// The clusters that do not show the release yet; empty: the gate holds.
    pub pending: Vec<Pending>,
}

impl GateCheck {
    pub fn holds(&self) -> bool {
        self.pending.is_empty()
    }

    /// `wave production waits for wave canary (soak 24h): 1 of 1 cluster(s)
    /// not ready: plant-001-line-a (never reported)`.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "wave {} waits for wave {} (soak {})",
            self.gate.wave,
            self.gate.after,
            format_duration(self.gate.soak_seconds)
        );
        if self.holds() {
            text.push_str(&format!(
                ": holds, all {} cluster(s) report the release",
                self.gate.clusters.len()
            ));
        } else {
            let pending: Vec<String> = self
                .pending
                .iter()
                .map(|p| format!("{} ({})", p.cluster, p.reason))
                .collect();
            text.push_str(&format!(
                ": {} of {} cluster(s) not ready: {}",
                self.pending.len(),
                self.gate.clusters.len(),
                pending.join(", ")
            ));
        }
        text
    }
}

/// Checks a gate against the receipt history: each cluster of the wave
/// before must currently run `expected[cluster]` on `channel`, without a
/// rollback, since at least the soak before `now`.
pub fn check(
    gate: &WaveGate,
    expected: &BTreeMap<String, Digest>,
    channel: &str,
    history: &History,
    now: time::OffsetDateTime,
) -> GateCheck {
    let pending = gate
        .clusters
        .iter()
        .filter_map(|cluster| {
            let reason =
                cluster_reason(gate, expected.get(cluster), channel, history, cluster, now)?;
            Some(Pending {
                cluster: cluster.clone(),
                reason,
            })
        })
        .collect();
    GateCheck {
        gate: gate.clone(),
        pending,
    }
}

/// Why `cluster` holds its gate shut, or `None` if it does not.
fn cluster_reason(
    gate: &WaveGate,
    expected: Option<&Digest>,
    channel: &str,
    history: &History,
    cluster: &str,
    now: time::OffsetDateTime,
) -> Option<String> {
    let Some(run) = history.cluster(cluster).and_then(|h| h.current()) else {
        return Some("never reported".into());
    };
    let Some(expected) = expected else {
        return Some("no release of this channel to compare with".into());
    };
    if run.channel != channel {
        return Some(format!(
            "runs channel {} sequence {}, not channel {channel}",
            run.channel, run.sequence
        ));
    }
    if run.manifests != *expected {
        let how = if run.rolled_back {
            "rolled back to"
        } else {
            "runs"
        };
        return Some(format!(
            "{how} sequence {} (manifests {}), not this release (manifests {})",
            run.sequence,
            short(&run.manifests),
            short(expected)
        ));
    }
    let age = crate::hub::history::seconds_since(&run.manifests_since, now).unwrap_or(i64::MIN);
    let soaked = u64::try_from(age).unwrap_or(0);
    if age < 0 || soaked < gate.soak_seconds {
        let rollback = if run.rolled_back {
            format!(", rolled back to it at {}", run.since)
        } else {
            String::new()
        };
        return Some(format!(
            "runs this release since {}{rollback}: {} of the {} soak",
            run.manifests_since,
            format_duration(soaked),
            format_duration(gate.soak_seconds)
        ));
    }
    None
}

/// `sha256:0123456789ab`: enough of a digest to tell two apart in a message.
fn short(d: &Digest) -> String {
    let text = d.to_string();
    text.chars().take(19).collect()
}

/// The checks of an export's gates, and what goes into its manifest when
/// `--override-gate` let it past one that did not hold.
#[derive(Debug, Clone, Serialize)]
pub struct GateOutcome {
    pub checks: Vec<GateCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gate_override: Option<GateOverride>,
}

/// Refuses (with every pending cluster named) unless every gate holds or
/// `override_reason` is given; then the override names the pending
/// clusters. An override of gates that hold is not recorded.
pub fn decide(
    checks: Vec<GateCheck>,
    override_reason: Option<&str>,
) -> Result<GateOutcome, ExportError> {
    let pending: BTreeSet<String> = checks
        .iter()
        .flat_map(|c| c.pending.iter().map(|p| p.cluster.clone()))
        .collect();
    if pending.is_empty() {
        return Ok(GateOutcome {
            checks,
            gate_override: None,
        });
    }
    let Some(reason) = override_reason else {
        return Err(ExportError::GateClosed {
            gates: checks
                .iter()
                .filter(|c| !c.holds())
                .map(GateCheck::describe)
                .collect::<Vec<_>>()
                .join("; "),
        });
    };
    let gate_override = GateOverride {
        reason: reason.to_string(),
        pending: pending.into_iter().collect(),
    };
    gate_override.validate()?;
    Ok(GateOutcome {
        checks,
        gate_override: Some(gate_override),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn fleet() -> Fleet {
        Fleet::load(&tender_test_support_fleet()).unwrap()
    }

    fn tender_test_support_fleet() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fleet/fleet-waves.yaml")
    }

    #[test]
    fn a_later_wave_is_gated_on_the_wave_before_and_the_first_is_not() {
        let fleet = fleet();
        assert!(gates_for(&fleet, &["plant-001-line-a".into()]).is_empty());
        let gates = gates_for(&fleet, &["plant-002-assembly".into()]);
        assert_eq!(gates.len(), 1);
        assert_eq!(
            (gates[0].wave.as_str(), gates[0].after.as_str()),
            ("production", "canary")
        );
        assert_eq!(gates[0].clusters, ["plant-001-line-a"]);
        assert_eq!(gates[0].soak_seconds, 24 * 3600);
    }

    #[test]
    fn without_receipts_the_gate_names_the_cluster_and_an_override_records_it() {
        let fleet = fleet();
        let gates = gates_for(&fleet, &["plant-002-assembly".into()]);
        let d = Digest::of(b"x");
        let expected = BTreeMap::from([("plant-001-line-a".to_string(), d)]);
        let check = check(
            &gates[0],
            &expected,
            "stable",
            &History::default(),
            time::OffsetDateTime::now_utc(),
        );
        let err = decide(vec![check.clone()], None).unwrap_err().to_string();
        assert!(err.contains("plant-001-line-a (never reported)"), "{err}");
        let outcome = decide(vec![check], Some("line-a is down for maintenance")).unwrap();
        assert_eq!(outcome.gate_override.unwrap().pending, ["plant-001-line-a"]);
        assert!(
            decide(Vec::new(), Some("x"))
                .unwrap()
                .gate_override
                .is_none()
        );
    }
}
