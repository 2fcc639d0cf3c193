//! Policy updates (bundle-spec §7.3): a site's next trust policy as a
//! canonical-JSON document, signed in role `root`. This module knows the
//! bytes; whether the signatures are enough is `tender-trust`'s job.
//!
//! An update travels alone (`policy-<N>.json`) or inside a bundle
//! manifest's `policy_updates`, so that it is covered by the manifest
//! digest and read before the bundle's own signatures are evaluated.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical::{self, CanonicalError};
use crate::fields::{is_token, is_utc_seconds};
use crate::signatures::Signature;

/// `format` of a policy update document.
pub const POLICY_FORMAT_V1: &str = "tender-policy/v1";
/// Domain separation: a policy signature is never a bundle signature.
pub const POLICY_SIGNING_CONTEXT: &str = "tender-policy/v1 signature";
/// The role that authorises the next policy. Reserved: it never counts
/// for a bundle.
pub const ROOT_ROLE: &str = "root";
/// The most updates one bundle may carry.
pub const MAX_CARRIED_UPDATES: usize = 64;
/// The largest policy update file `tender policy apply` reads.
pub const MAX_UPDATE_SIZE: u64 = 1 << 20;

/// The bytes a root key signs: the context line, `role=root`, then the
/// canonical bytes of the `policy` object.
pub fn policy_signing_input(body_bytes: &[u8]) -> Vec<u8> {
    let mut input = format!("{POLICY_SIGNING_CONTEXT}\nrole={ROOT_ROLE}\n").into_bytes();
    input.extend_from_slice(body_bytes);
    input
}

/// A signed policy update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyUpdate {
    pub format: String,
    pub policy: PolicyBody,
    /// Signatures over the canonical bytes of `policy`, in role `root`.
    pub signatures: Vec<Signature>,
}

/// The policy itself: the same fields as the YAML policy (§7.1), with every
/// key inline, plus what only an update can say (`created`, `resets`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    /// Schema version: 1.
    pub version: u64,
    /// Which policy this is; an update is the site's policy_version + 1.
    pub policy_version: u64,
    /// When the update was signed (RFC 3339 UTC seconds). Raises the site's
    /// high-water mark (§11.7).
    pub created: String,
    pub keys: Vec<PolicyKey>,
    pub thresholds: BTreeMap<String, u32>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, ChannelRules>,
    /// Per role: a signature in it counts only for a bundle no older than
    /// this (approval expiry).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub role_max_age: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Resets::is_empty")]
    pub resets: Resets,
}

/// A trusted key, inline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyKey {
    pub name: String,
    /// SPKI PEM.
    pub public_key: String,
    /// The id derived from `public_key`; the update is refused otherwise.
    pub key_id: String,
    pub roles: Vec<String>,
}

/// Rules for one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelRules {
    /// A bundle whose `created` is older than the site's high-water mark
    /// (or trusted clock) by more than this is stale (`30d`, `12h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
}

/// One-time actions taken when the update is accepted (never again).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resets {
    /// Channel → the sequence the channel counts as having imported: the
    /// next bundle must be above it and created after this update.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sequences: BTreeMap<String, u64>,
    /// Set the site's high-water mark back to this update's `created`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub high_water_mark: bool,
}

impl Resets {
    pub fn is_empty(&self) -> bool {
        self.sequences.is_empty() && !self.high_water_mark
    }
}

/// Why bytes are not a policy update.
#[derive(Debug, thiserror::Error)]
pub enum PolicyUpdateError {
    #[error("policy update is not canonical JSON")]
    Canonical(#[from] CanonicalError),
    #[error("unsupported policy update format {0:?} (this tender reads {POLICY_FORMAT_V1})")]
    Format(String),
    #[error("policy update is invalid: {0}")]
    Invalid(String),
}

impl PolicyUpdate {
    /// Parses and checks an update's bytes (a file, or one element of a
    /// manifest's `policy_updates`).
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self, PolicyUpdateError> {
        #[derive(Deserialize)]
        struct Probe {
            format: String,
        }
        if let Ok(probe) = serde_json::from_slice::<Probe>(bytes)
            && probe.format != POLICY_FORMAT_V1
        {
            return Err(PolicyUpdateError::Format(probe.format));
        }
        let update: PolicyUpdate = canonical::from_slice(bytes)?;
        if update.to_canonical_bytes()? != bytes {
            return Err(CanonicalError::NotCanonical.into());
        }
        Ok(update)
    }

    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, PolicyUpdateError> {
        self.validate()?;
        Ok(canonical::to_vec(self)?)
    }

    /// The bytes the root signatures cover.
    pub fn body_bytes(&self) -> Vec<u8> {
        canonical::to_vec(&self.policy).expect("a policy body has no floats")
    }

    pub fn policy_version(&self) -> u64 {
        self.policy.policy_version
    }

    /// The rules of the format (not of trust: see `tender-trust`).
    pub fn validate(&self) -> Result<(), PolicyUpdateError> {
        let invalid = |msg: String| Err(PolicyUpdateError::Invalid(msg));
        if self.format != POLICY_FORMAT_V1 {
            return Err(PolicyUpdateError::Format(self.format.clone()));
        }
        let p = &self.policy;
        if p.version != 1 {
            return invalid(format!(
                "schema version {} (this tender reads 1)",
                p.version
            ));
        }
        if p.policy_version < 2 {
            return invalid(format!(
                "policy_version {} (an update is version 2 or more; the first policy is installed out of band)",
                p.policy_version
            ));
        }
        if !is_utc_seconds(&p.created) {
            return invalid(format!(
                "created {:?} is not an RFC 3339 UTC time in seconds",
                p.created
            ));
        }
        for k in &p.keys {
            if let Some(role) = k.roles.iter().find(|r| !is_token(r)) {
                return invalid(format!("key {} has an invalid role {role:?}", k.name));
            }
        }
        for role in p.thresholds.keys().chain(p.role_max_age.keys()) {
            if !is_token(role) {
                return invalid(format!("role {role:?} is not a token"));
            }
        }
        for (channel, rules) in &p.channels {
            if !is_token(channel) {
                return invalid(format!("channel {channel:?} is not a token"));
            }
            if let Some(age) = &rules.max_age
                && parse_duration(age).is_none()
            {
                return invalid(format!(
                    "channel {channel}: max_age {age:?} is not a duration"
                ));
            }
        }
        for (role, age) in &p.role_max_age {
            if parse_duration(age).is_none() {
                return invalid(format!("role_max_age of {role}: {age:?} is not a duration"));
            }
        }
        if let Some(channel) = p.resets.sequences.keys().find(|c| !is_token(c)) {
            return invalid(format!("reset of channel {channel:?}: not a token"));
        }
        for s in &self.signatures {
            let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
            if s.role != ROOT_ROLE {
                return invalid(format!(
                    "signature by {} is in role {:?}; policy updates are signed as {ROOT_ROLE}",
                    s.key_id, s.role
                ));
            }
            if s.sig.len() != 128 || !s.sig.bytes().all(lower_hex) {
                return invalid(format!(
                    "signature of key {} is not 128 hex digits",
                    s.key_id
                ));
            }
        }
        Ok(())
    }
}

/// Checks a manifest's `policy_updates`: at most [`MAX_CARRIED_UPDATES`],
/// each valid, versions consecutive and ascending (a chain, never a gap).
pub fn validate_chain(updates: &[PolicyUpdate]) -> Result<(), PolicyUpdateError> {
    if updates.len() > MAX_CARRIED_UPDATES {
        return Err(PolicyUpdateError::Invalid(format!(
            "{} policy updates carried, at most {MAX_CARRIED_UPDATES}",
            updates.len()
        )));
    }
    for (i, u) in updates.iter().enumerate() {
        u.validate()?;
        if i > 0 && u.policy_version() != updates[i - 1].policy_version() + 1 {
            return Err(PolicyUpdateError::Invalid(format!(
                "policy updates must be consecutive versions in order, found {} after {}",
                u.policy_version(),
                updates[i - 1].policy_version()
            )));
        }
    }
    Ok(())
}

/// A duration such as `30d`, `12h`, `90m` or `3600s`, in seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 12 {
        return None;
    }
    let n: u64 = number.parse().ok()?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Seconds since the Unix epoch of an RFC 3339 UTC time in seconds
/// (`2026-11-26T03:42:00Z`), the form of every signed time.
pub fn unix_seconds(text: &str) -> Option<i64> {
    if !is_utc_seconds(text) {
        return None;
    }
    let t = time::PrimitiveDateTime::parse(
        &text[..19],
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .ok()?;
    Some(t.assume_utc().unix_timestamp())
}

/// The RFC 3339 UTC form, in seconds, of a Unix time: the inverse of
/// [`unix_seconds`].
pub fn utc_text(seconds: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).ok()?;
    t.format(time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u64) -> PolicyUpdate {
        PolicyUpdate {
            format: POLICY_FORMAT_V1.into(),
            policy: PolicyBody {
                version: 1,
                policy_version: version,
                created: "2026-11-01T00:00:00Z".into(),
                keys: vec![],
                thresholds: BTreeMap::from([("release".into(), 1)]),
                channels: BTreeMap::new(),
                role_max_age: BTreeMap::new(),
                resets: Resets::default(),
            },
            signatures: vec![],
        }
    }

    #[test]
    fn updates_round_trip_and_only_their_canonical_form_reads() {
        let u = sample(2);
        let bytes = u.to_canonical_bytes().unwrap();
        assert_eq!(PolicyUpdate::from_canonical_bytes(&bytes).unwrap(), u);
        // An explicit empty `resets` is a second encoding of the same update.
        let text = String::from_utf8(bytes).unwrap();
        let padded = text.replace("\"policy_version\"", "\"resets\":{},\"policy_version\"");
        assert!(PolicyUpdate::from_canonical_bytes(padded.as_bytes()).is_err());
        let other = text.replace(POLICY_FORMAT_V1, "tender-policy/v2");
        assert!(matches!(
            PolicyUpdate::from_canonical_bytes(other.as_bytes()),
            Err(PolicyUpdateError::Format(_))
        ));
    }

    #[test]
    fn a_carried_chain_has_no_gap_and_no_first_policy() {
        assert!(validate_chain(&[sample(2), sample(3)]).is_ok());
        assert!(validate_chain(&[sample(2), sample(4)]).is_err());
        assert!(validate_chain(&[sample(3), sample(2)]).is_err());
        assert!(validate_chain(&[sample(1)]).is_err());
    }

    #[test]
    fn durations_and_times() {
        assert_eq!(parse_duration("30d"), Some(30 * 86_400));
        assert_eq!(parse_duration("12h"), Some(43_200));
        assert_eq!(parse_duration("90m"), Some(5_400));
        assert_eq!(parse_duration("7s"), Some(7));
        for bad in ["", "d", "3", "-1d", "1.5d", "1w", " 1d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(unix_seconds("1970-01-02T00:00:00Z"), Some(86_400));
        assert_eq!(unix_seconds("1970-01-02T00:00:00+01:00"), None);
        assert_eq!(utc_text(86_400).as_deref(), Some("1970-01-02T00:00:00Z"));
    }
}
