//! The site's trust lifecycle (bundle-spec §7.3, §11.7): which policy is
//! in force, policy updates offered by a stick or a file, and whether a
//! bundle is fresh enough.
//!
//! The site's first policy is the site file's `trustPolicy`, installed out
//! of band. An accepted update is kept in `site.json` (`trust.policy`),
//! together with the high-water mark and any channel reset it made, so one
//! atomic replace commits all three; it is the site's policy while its
//! version is above the file's (an operator may still install a newer
//! policy out of band, as before).

use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::Serialize;
use tender_format::BundleManifest;
use tender_format::Digest;
use tender_format::policy_update::{MAX_UPDATE_SIZE, PolicyUpdate, unix_seconds};
use tender_trust::TrustPolicy;
use tender_trust::keys::now_rfc3339;
use tender_trust::policy::{SignatureStatus, human_duration};
use tender_trust::update::{Chain, UpdateCheck};

use crate::audit::{AuditAction, AuditEvent, AuditLog, Signer};
use crate::error::ImportError;
use crate::site::Site;
use crate::state::{ChannelReset, ChannelState, SiteState, SiteStateFile};

/// How far ahead of a trusted clock a signed `created` may be: clocks of
/// hub and site differ a little; a bundle from next week is a hub whose
/// clock is wrong or an attempt to freeze the site (§11.7).
pub const FUTURE_SLACK_SECONDS: i64 = 3600;

/// The policy in force at the site: the accepted update when it is newer
/// than the site file's policy, else the file's.
pub fn effective_policy(site: &Site, state: &SiteStateFile) -> Result<TrustPolicy, ImportError> {
    let file = TrustPolicy::load(&site.trust_policy)?;
    match &state.trust.policy {
        Some(update) if update.policy_version() > file.policy_version => {
            let origin = site.state_dir.join("site.json");
            // Accepted once, so a failure now is the state's, not a stick's.
            TrustPolicy::from_update(update, &origin).map_err(|e| {
                ImportError::io_at(
                    "reading the accepted policy in",
                    origin,
                    std::io::Error::other(e.to_string()),
                )
            })
        }
        _ => Ok(file),
    }
}

/// The site's trust policy (the accepted update or the site file's), its
/// locked state and its audit log, once the audit chain is known intact
/// (an action that could not be audited must not happen at all) and any
/// action a killed run left pending is audited.
pub(crate) fn open_site(site: &Site) -> Result<(TrustPolicy, SiteState, AuditLog), ImportError> {
    // Read once before locking, so a broken policy file is reported
    // before anything else, as it always was.
    TrustPolicy::load(&site.trust_policy)?;
    let state = SiteState::open(&site.state_dir)?;
    let audit = AuditLog::new(state.dir());
    if let Some(reason) = audit.verify()?.reason {
        return Err(ImportError::Audit(format!(
            "refusing to import onto a broken audit chain ({}: {reason})",
            audit.path().display()
        )));
    }
    let current = state.read()?;
    crate::audit::settle(&audit, &current)?;
    let policy = effective_policy(site, &current)?;
    Ok((policy, state, audit))
}

/// The time freshness is judged against, in Unix seconds: the high-water
/// mark, or the trusted clock when the site has one and it is later.
pub fn reference_time(site: &Site, state: &SiteStateFile) -> Option<i64> {
    let mark = state
        .trust
        .high_water_mark
        .as_deref()
        .and_then(unix_seconds);
    let clock = site.trusted_clock.then(now_seconds).flatten();
    mark.max(clock)
}

fn now_seconds() -> Option<i64> {
    unix_seconds(&now_rfc3339())
}

/// The bundle's age in seconds against the site's reference time (none
/// before the site accepted anything, without a trusted clock).
pub fn bundle_age(site: &Site, state: &SiteStateFile, manifest: &BundleManifest) -> Option<i64> {
    Some(reference_time(site, state)? - unix_seconds(&manifest.created)?)
}

/// Refuses a bundle that is stale by its channel's `max_age`, dated ahead
/// of a trusted clock, or older than a reset of its channel.
pub fn check_fresh(
    site: &Site,
    policy: &TrustPolicy,
    state: &SiteStateFile,
    manifest: &BundleManifest,
) -> Result<(), ImportError> {
    let created = unix_seconds(&manifest.created).ok_or_else(|| {
        ImportError::Refused(format!(
            "created {:?} is not a UTC time in seconds",
            manifest.created
        ))
    })?;
    if site.trusted_clock
        && let Some(now) = now_seconds()
        && created > now + FUTURE_SLACK_SECONDS
    {
        return Err(ImportError::Refused(format!(
            "bundle created {} is ahead of this site's trusted clock ({}): a hub clock that is wrong, or an attempt to freeze the site",
            manifest.created,
            now_rfc3339()
        )));
    }
    if let Some(reset) = state
        .channels
        .get(&manifest.channel)
        .and_then(|c| c.reset.as_ref())
        && unix_seconds(&reset.not_before).is_some_and(|t| created <= t)
    {
        return Err(ImportError::Refused(format!(
            "channel {} was reset by policy {} at {}; a bundle created {} (before the reset) is not accepted on it",
            manifest.channel, reset.policy_version, reset.not_before, manifest.created
        )));
    }
    let reference = reference_time(site, state);
    let age = bundle_age(site, state, manifest);
    if let (Some(max), Some(age)) = (policy.channel_max_age(&manifest.channel), age)
        && age > max as i64
    {
        let against = match &state.trust.high_water_mark {
            Some(h) if unix_seconds(h) == reference => {
                format!("the newest signed time this site accepted ({h})")
            }
            _ => "this site's trusted clock".to_string(),
        };
        return Err(ImportError::Refused(format!(
            "stale bundle: created {} is {} older than {against}; channel {} allows {} (max_age in policy {})",
            manifest.created,
            approximate(age as u64),
            manifest.channel,
            human_duration(max),
            policy.policy_version
        )));
    }
    Ok(())
}

/// An age for people: `40d 12h`, `3h 5m`, `4m 10s`.
fn approximate(seconds: u64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    match (d, h) {
        (0, 0) => format!("{m}m {s}s"),
        (0, _) => format!("{h}h {m}m"),
        _ if h == 0 => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// What became of the policy updates offered to a site.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdatesReport {
    /// Accepted and stored, in order.
    pub applied: Vec<UpdateCheck>,
    /// Offered but at or below the site's version: never applied again.
    pub skipped: Vec<u64>,
    /// The site's policy version afterwards.
    pub policy_version: u64,
}

impl UpdatesReport {
    pub fn of(chain: &Chain) -> Self {
        UpdatesReport {
            applied: chain.applied.iter().map(|(_, c)| c.clone()).collect(),
            skipped: chain.skipped.clone(),
            policy_version: chain.policy.policy_version,
        }
    }
}

/// Where offered updates came from, for the audit line.
pub struct Carrier<'a> {
    pub operator: &'a str,
    /// The bundle that carried them (`None`: `tender policy apply`).
    pub bundle: Option<(&'a str, Digest)>,
}

fn event(carrier: &Carrier, update: &PolicyUpdate) -> AuditEvent {
    AuditEvent {
        action: AuditAction::PolicyUpdate,
        operator: carrier.operator.to_string(),
        bundle_id: carrier.bundle.as_ref().map(|(id, _)| id.to_string()),
        manifest_digest: carrier.bundle.as_ref().map(|(_, d)| d.to_string()),
        policy_version: Some(update.policy_version()),
        detail: Some(format!(
            "policy update {} created {}, {}",
            update.policy_version(),
            update.policy.created,
            Digest::of(&update.to_canonical_bytes().unwrap_or_default())
        )),
        ..AuditEvent::default()
    }
}

/// Offers updates to the site's policy. The ones accepted are stored with
/// their resets and the raised high-water mark in one commit of
/// `site.json`, each with its audit line; a refusal stores nothing and is
/// audited (`refused: …`). Returns the chain (the policy now in force).
pub fn offer(
    state: &SiteState,
    audit: &AuditLog,
    current: &mut SiteStateFile,
    policy: &TrustPolicy,
    updates: &[PolicyUpdate],
    carrier: &Carrier,
) -> Result<Chain, ImportError> {
    let origin = state.dir().join("site.json");
    // The whole chain is judged first: a refusal anywhere stores none of it.
    let mut chain = Chain {
        policy: policy.clone(),
        applied: Vec::new(),
        skipped: Vec::new(),
    };
    for update in updates {
        if update.policy_version() <= chain.policy.policy_version {
            chain.skipped.push(update.policy_version());
            continue;
        }
        match chain.policy.accept(update, &origin) {
            Ok((next, check)) => {
                chain.policy = next;
                chain.applied.push((update.clone(), check));
            }
            Err(e) => {
                let refused: Result<Chain, ImportError> = Err(e.into());
                let mut line = event(carrier, update);
                line.result = crate::audit::result_line(&refused, |_| String::new());
                audit.append(line)?;
                return refused;
            }
        }
    }
    // Then one commit per update, noted before (a run killed in between
    // is audited by the next) and audited after.
    let now = now_rfc3339();
    for (update, check) in &chain.applied {
        let mut next = current.clone();
        record(&mut next, update, &now);
        let mut line = event(carrier, update);
        audit.begin(&line)?;
        state.commit(&next)?;
        *current = next;
        line.signers = root_signers(check);
        line.result = format!(
            "accepted: policy {} -> {}",
            check.from_version, check.to_version
        );
        audit.append(line)?;
    }
    Ok(chain)
}

/// An accepted update in the site state: the policy, the high-water mark
/// and the resets it makes.
pub(crate) fn record(state: &mut SiteStateFile, update: &PolicyUpdate, now: &str) {
    state.trust.policy = Some(update.clone());
    let resets = &update.policy.resets;
    if resets.high_water_mark {
        state.trust.high_water_mark = Some(update.policy.created.clone());
    } else {
        state.trust.raise(&update.policy.created);
    }
    for (channel, &floor) in &resets.sequences {
        let entry = state
            .channels
            .entry(channel.clone())
            .or_insert_with(|| ChannelState {
                sequence: floor,
                bundle_id: String::new(),
                manifest_digest: String::new(),
                imported_at: now.to_string(),
                reset: None,
            });
        entry.sequence = floor;
        entry.reset = Some(ChannelReset {
            policy_version: update.policy_version(),
            not_before: update.policy.created.clone(),
        });
    }
}

/// The root keys whose signatures counted, for the audit line.
fn root_signers(check: &UpdateCheck) -> Vec<Signer> {
    let mut out: Vec<Signer> = Vec::new();
    for root in &check.roots {
        for s in &root.signatures {
            if matches!(s.status, SignatureStatus::Valid { .. })
                && !out.iter().any(|o| o.key_id == s.key_id)
            {
                out.push(Signer {
                    key_id: s.key_id.clone(),
                    role: s.role.clone(),
                    signer: s.signer.clone(),
                });
            }
        }
    }
    out
}

/// Reads a policy update file (at most 1 MiB). A file that is not an
/// update is the file's fault: a rejection, exit 3.
pub fn read_update(path: &Path) -> Result<PolicyUpdate, ImportError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| ImportError::io_at("opening", path, e))?;
    let mut bytes = Vec::new();
    file.take(MAX_UPDATE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImportError::io_at("reading", path, e))?;
    if bytes.len() as u64 > MAX_UPDATE_SIZE {
        return Err(ImportError::Refused(format!(
            "{}: larger than {MAX_UPDATE_SIZE} bytes, not a policy update",
            path.display()
        )));
    }
    PolicyUpdate::from_canonical_bytes(&bytes).map_err(|e| {
        ImportError::Refused(format!(
            "{}: {}",
            path.display(),
            tender_format::error::chain_message(&e)
        ))
    })
}

/// `tender policy apply`: offers update files to the site, in version
/// order. Offering only what the site has or passed is refused as a
/// rollback, unless the newest offered is the very update in force
/// (applying the same file twice is not an attack).
pub fn apply(site: &Site, files: &[PathBuf], operator: &str) -> Result<UpdatesReport, ImportError> {
    let (policy, state, audit) = open_site(site)?;
    let carrier = Carrier {
        operator,
        bundle: None,
    };
    let mut sorted = Vec::with_capacity(files.len());
    for file in files {
        match read_update(file) {
            Ok(update) => sorted.push(update),
            // A file that is no update is a refused update too: audited.
            Err(e) => {
                let failed: Result<(), ImportError> = Err(e);
                audit.append(AuditEvent {
                    action: AuditAction::PolicyUpdate,
                    operator: operator.to_string(),
                    detail: Some(format!("file {}", file.display())),
                    result: crate::audit::result_line(&failed, |_| String::new()),
                    ..AuditEvent::default()
                })?;
                failed?;
            }
        }
    }
    let mut current = state.read()?;
    sorted.sort_by_key(PolicyUpdate::policy_version);
    let chain = offer(&state, &audit, &mut current, &policy, &sorted, &carrier)?;
    let newest = sorted.last();
    if chain.applied.is_empty()
        && let Some(newest) = newest
        && current.trust.policy.as_ref() != Some(newest)
    {
        let refused: Result<(), ImportError> = Err(ImportError::Refused(format!(
            "policy update {}: the site is at policy {}; an older or equal policy never applies again (rollback)",
            newest.policy_version(),
            policy.policy_version
        )));
        let mut line = event(&carrier, newest);
        line.result = crate::audit::result_line(&refused, |_| String::new());
        audit.append(line)?;
        refused?;
    }
    Ok(UpdatesReport::of(&chain))
}
