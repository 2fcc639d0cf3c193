//! `tender verify`: signatures and thresholds first, then every entry's
//! digest, in one streaming pass.

use std::io::Read;
use std::time::Instant;

use serde::Serialize;
use tender_format::manifest::{BundleKind, Targets};
use tender_format::{BundleReader, SinkFactory};
use tender_trust::TrustPolicy;
use tender_trust::policy::Evaluation;

use crate::error::ImportError;

/// What a successful verification established.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub bundle_id: String,
    pub manifest_digest: String,
    pub kind: BundleKind,
    pub channel: String,
    pub sequence: u64,
    pub created: String,
    pub creator: String,
    pub targets: Targets,
    pub trust: Evaluation,
    /// The policy updates the bundle carries, judged against the policy
    /// given (nothing is stored: `tender verify` keeps no state).
    pub policy_updates: crate::lifecycle::UpdatesReport,
    pub entries: usize,
    pub payload_bytes: u64,
    pub stream_bytes: u64,
    pub seconds: f64,
}

/// Verifies a bundle stream. Signatures are checked as soon as the
/// manifest and slot are read, before a single blob byte; `factory` then
/// receives each entry's bytes, committed only once their digest matched.
/// `on_start` learns the payload size before streaming begins (for progress).
pub fn verify_bundle<R: Read>(
    reader: BundleReader<R>,
    policy: &TrustPolicy,
    factory: &dyn SinkFactory,
    on_start: &mut dyn FnMut(&tender_format::BundleManifest),
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport, ImportError> {
    let started = Instant::now();
    let manifest = reader.manifest().clone();
    let chain = policy.apply_chain(&manifest.policy_updates, &policy.path)?;
    let trust = chain.require_at(reader.manifest_bytes(), reader.signatures(), None)?;
    let manifest_digest = reader.manifest_digest().to_string();
    on_start(&manifest);
    let summary = reader.read_entries(factory, progress)?;
    Ok(VerifyReport {
        bundle_id: manifest.bundle_id,
        manifest_digest,
        kind: manifest.kind,
        channel: manifest.channel,
        sequence: manifest.sequence,
        created: manifest.created,
        creator: manifest.creator,
        targets: manifest.targets,
        trust,
        policy_updates: crate::lifecycle::UpdatesReport::of(&chain),
        entries: summary.entries,
        payload_bytes: summary.payload_bytes,
        stream_bytes: summary.stream_bytes,
        seconds: started.elapsed().as_secs_f64(),
    })
}
