//! The site trust policy: which keys may sign in which roles, and how many
//! distinct keys each role needs (bundle-spec §7).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::{Deserialize, Serialize};
use tender_format::manifest::is_token;
use tender_format::policy_update::{ChannelRules, ROOT_ROLE, parse_duration};
use tender_format::signatures::{Signature, SignatureSlot};

use crate::error::TrustError;
use crate::keys::{KeyId, PublicKey};

/// The policy file as written (YAML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u64,
    /// Which policy this is (§7.3); a file without it is policy 1.
    #[serde(default = "first_policy")]
    policy_version: u64,
    keys: Vec<KeyFile>,
    thresholds: BTreeMap<String, u32>,
    #[serde(default)]
    channels: BTreeMap<String, ChannelRules>,
    #[serde(default)]
    role_max_age: BTreeMap<String, String>,
}

fn first_policy() -> u64 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    name: String,
    /// Inline SPKI PEM.
    #[serde(default)]
    public_key: Option<String>,
    /// Path to a `.pub` file, relative to the policy file.
    #[serde(default)]
    public_key_file: Option<PathBuf>,
    /// Optional pin: must equal the id derived from the key.
    #[serde(default)]
    key_id: Option<String>,
    roles: Vec<String>,
}

/// A trusted key and the roles it may sign in.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub name: String,
    pub key: PublicKey,
    pub roles: BTreeSet<String>,
}

/// A loaded and checked trust policy: the site's first, installed out of
/// band as YAML, or one it accepted as a signed update (§7.3).
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    /// Schema version (1).
    pub version: u64,
    /// Which policy this is: 1 for a file without `policy_version`.
    pub policy_version: u64,
    /// Where it came from: the YAML file, or the state holding the update.
    pub path: PathBuf,
    /// When an update was signed; `None` for a YAML policy.
    pub created: Option<String>,
    keys: BTreeMap<KeyId, TrustedKey>,
    /// Per role, including `root` (which applies to updates only).
    thresholds: BTreeMap<String, u32>,
    /// Channel → max age in seconds.
    channel_max_age: BTreeMap<String, u64>,
    /// Role → max age in seconds of a bundle its signatures count for.
    role_max_age: BTreeMap<String, u64>,
}

/// What became of one signature in the slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignatureStatus {
    /// Valid, and counted towards its role's threshold.
    Valid { key_name: String },
    /// The key is not in the policy.
    UnknownKey,
    /// The key is trusted, but not for this role.
    RoleNotAllowed { key_name: String },
    /// The bytes do not verify: tampered manifest or forged signature.
    BadSignature { key_name: String },
    /// The same key already counted for this role.
    SameKeyAgain { key_name: String },
    /// Valid, but the policy's `role_max_age` for this role has passed
    /// since the bundle was created.
    Expired { key_name: String, max_age: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct SignatureCheck {
    pub key_id: String,
    pub role: String,
    pub signer: String,
    pub signed_at: String,
    #[serde(flatten)]
    pub status: SignatureStatus,
}

impl SignatureCheck {
    /// Why the policy did not count this signature, as a sentence naming
    /// the key and the role (for people: `verify`'s listing, a rejection);
    /// `None` when it counted.
    pub fn ignored_because(&self) -> Option<String> {
        let (id, role) = (&self.key_id, &self.role);
        Some(match &self.status {
            SignatureStatus::Valid { .. } => return None,
            SignatureStatus::UnknownKey => format!("key {id} is not trusted"),
            SignatureStatus::RoleNotAllowed { key_name } => {
                format!("key {key_name} ({id}) may not sign as {role}")
            }
            SignatureStatus::BadSignature { key_name } => {
                format!("signature by {key_name} ({id}) as {role} does not match the manifest")
            }
            SignatureStatus::SameKeyAgain { key_name } => {
                format!("key {key_name} ({id}) signed as {role} more than once and counts once")
            }
            SignatureStatus::Expired { key_name, max_age } => format!(
                "signature by {key_name} ({id}) as {role} has expired: the bundle is older than {max_age}"
            ),
        })
    }
}

/// One role's tally.
#[derive(Debug, Clone, Serialize)]
pub struct RoleTally {
    pub role: String,
    pub required: u32,
    pub valid_keys: Vec<String>,
}

/// The outcome of checking a slot against the policy.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub policy_version: u64,
    pub signatures: Vec<SignatureCheck>,
    pub roles: Vec<RoleTally>,
}

impl Evaluation {
    pub fn satisfied(&self) -> bool {
        self.roles
            .iter()
            .all(|r| r.valid_keys.len() as u32 >= r.required)
    }

    /// One line saying which role falls short and what was ignored.
    pub fn shortfall(&self) -> Option<String> {
        let short: Vec<String> = self
            .roles
            .iter()
            .filter(|r| (r.valid_keys.len() as u32) < r.required)
            .map(|r| {
                format!(
                    "role {} needs {} valid signature(s) from distinct trusted keys, found {}",
                    r.role,
                    r.required,
                    r.valid_keys.len()
                )
            })
            .collect();
        if short.is_empty() {
            return None;
        }
        let ignored: Vec<String> = self
            .signatures
            .iter()
            .filter_map(SignatureCheck::ignored_because)
            .collect();
        let mut line = short.join("; ");
        if !ignored.is_empty() {
            line.push_str(" (");
            line.push_str(&ignored.join("; "));
            line.push(')');
        }
        Some(line)
    }
}

/// A key as a policy source names it, before the policy is checked.
pub(crate) struct KeySpec {
    pub name: String,
    pub key: PublicKey,
    pub pin: Option<String>,
    pub roles: Vec<String>,
}

/// The parts of a policy, from YAML or from an update, checked the same way.
pub(crate) struct PolicySpec {
    pub version: u64,
    pub policy_version: u64,
    pub created: Option<String>,
    pub keys: Vec<KeySpec>,
    pub thresholds: BTreeMap<String, u32>,
    pub channels: BTreeMap<String, ChannelRules>,
    pub role_max_age: BTreeMap<String, String>,
}

impl TrustPolicy {
    /// Loads a policy file and checks it can ever be satisfied. A policy
    /// that requires nothing is refused: trust must be fail-closed.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = fs::read_to_string(path)
            .map_err(|e| TrustError::io_at("reading trust policy", path, e))?;
        let bad = |reason: String| TrustError::BadPolicy {
            path: path.to_path_buf(),
            reason,
        };
        let file: PolicyFile = serde_saphyr::from_str(&text).map_err(|e| {
            // One line, no `error:` snippet naming `<input>`: the
            // message follows the file's name.
            let plain = e.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
            });
            bad(format!("not a valid policy: {plain}"))
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut keys = Vec::new();
        for k in file.keys {
            let key = match (&k.public_key, &k.public_key_file) {
                (Some(pem), None) => PublicKey::from_pem(pem, path)?,
                (None, Some(file)) => PublicKey::read(&base.join(file))?,
                _ => {
                    return Err(bad(format!(
                        "key {} needs exactly one of public_key and public_key_file",
                        k.name
                    )));
                }
            };
            keys.push(KeySpec {
                name: k.name,
                key,
                pin: k.key_id,
                roles: k.roles,
            });
        }
        Self::build(
            path,
            PolicySpec {
                version: file.version,
                policy_version: file.policy_version,
                created: None,
                keys,
                thresholds: file.thresholds,
                channels: file.channels,
                role_max_age: file.role_max_age,
            },
        )
        .map_err(bad)
    }

    /// Checks a policy's parts (§7.1) and builds it; the error is the
    /// reason, for the caller to name its source.
    pub(crate) fn build(origin: &Path, spec: PolicySpec) -> Result<Self, String> {
        // The spec says 1; tender 0.1 took any positive number, and a
        // site may have counted its edits in it. `policy_version` counts
        // policies now.
        if spec.version == 0 {
            return Err("version must be 1 or more".into());
        }
        if spec.policy_version == 0 {
            return Err("policy_version must be 1 or more".into());
        }
        let mut keys = BTreeMap::new();
        for k in spec.keys {
            if let Some(pin) = &k.pin
                && pin != k.key.id().as_str()
            {
                return Err(format!(
                    "key {} is pinned to id {pin} but the key's id is {}",
                    k.name,
                    k.key.id()
                ));
            }
            if let Some(role) = k.roles.iter().find(|r| !is_token(r)) {
                return Err(format!("key {} has an invalid role {role:?}", k.name));
            }
            let id = k.key.id().clone();
            let trusted = TrustedKey {
                name: k.name.clone(),
                key: k.key,
                roles: k.roles.into_iter().collect(),
            };
            if keys.insert(id.clone(), trusted).is_some() {
                return Err(format!("key {id} is listed twice"));
            }
        }
        if spec
            .thresholds
            .iter()
            .all(|(role, &n)| role == ROOT_ROLE || n == 0)
        {
            return Err(
                "no role but root has a threshold above 0; a policy must require signatures on bundles"
                    .into(),
            );
        }
        for (role, &needed) in &spec.thresholds {
            if !is_token(role) {
                return Err(format!("role {role:?} is not a token"));
            }
            let holders = keys.values().filter(|k| k.roles.contains(role)).count();
            if holders < needed as usize {
                return Err(format!(
                    "role {role} needs {needed} distinct keys but only {holders} key(s) hold it"
                ));
            }
        }
        let mut channel_max_age = BTreeMap::new();
        for (channel, rules) in spec.channels {
            if !is_token(&channel) {
                return Err(format!("channel {channel:?} is not a token"));
            }
            if let Some(age) = rules.max_age {
                let seconds = parse_duration(&age).ok_or_else(|| {
                    format!(
                        "channel {channel}: max_age {age:?} is not a duration such as 30d or 12h"
                    )
                })?;
                channel_max_age.insert(channel, seconds);
            }
        }
        let mut role_max_age = BTreeMap::new();
        for (role, age) in spec.role_max_age {
            if role == ROOT_ROLE || !is_token(&role) {
                return Err(format!(
                    "role_max_age names role {role:?}, which cannot expire"
                ));
            }
            let seconds = parse_duration(&age).ok_or_else(|| {
                format!("role_max_age of {role}: {age:?} is not a duration such as 14d or 12h")
            })?;
            role_max_age.insert(role, seconds);
        }
        Ok(TrustPolicy {
            version: spec.version,
            policy_version: spec.policy_version,
            path: origin.to_path_buf(),
            created: spec.created,
            keys,
            thresholds: spec.thresholds,
            channel_max_age,
            role_max_age,
        })
    }

    pub fn key(&self, id: &str) -> Option<&TrustedKey> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// Every trusted key, by id.
    pub fn keys(&self) -> impl Iterator<Item = (&KeyId, &TrustedKey)> {
        self.keys.iter()
    }

    /// Every role's threshold, `root` included.
    pub fn thresholds(&self) -> &BTreeMap<String, u32> {
        &self.thresholds
    }

    /// How many distinct root keys must sign the next policy; 0 when the
    /// policy names no root role and so accepts no updates.
    pub fn root_threshold(&self) -> u32 {
        self.thresholds.get(ROOT_ROLE).copied().unwrap_or(0)
    }

    /// The channel's max age in seconds, if it has one.
    pub fn channel_max_age(&self, channel: &str) -> Option<u64> {
        self.channel_max_age.get(channel).copied()
    }

    pub fn channel_max_ages(&self) -> &BTreeMap<String, u64> {
        &self.channel_max_age
    }

    pub fn role_max_ages(&self) -> &BTreeMap<String, u64> {
        &self.role_max_age
    }

    /// Checks signatures: each gets one status (§7.2), and each valid
    /// one counts once for its role. `verifies` checks the bytes;
    /// `expired` says whether a role's signatures no longer count.
    pub(crate) fn check_signatures(
        &self,
        signatures: &[Signature],
        verifies: impl Fn(&PublicKey, &Signature) -> bool,
        role_allowed: impl Fn(&str) -> bool,
        expired: impl Fn(&str) -> Option<String>,
    ) -> (Vec<SignatureCheck>, BTreeMap<String, BTreeSet<String>>) {
        let mut counted: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut checks = Vec::new();
        for s in signatures {
            let status = match self.key(&s.key_id) {
                None => SignatureStatus::UnknownKey,
                Some(k) if !k.roles.contains(&s.role) || !role_allowed(&s.role) => {
                    SignatureStatus::RoleNotAllowed {
                        key_name: k.name.clone(),
                    }
                }
                Some(k) if !verifies(&k.key, s) => SignatureStatus::BadSignature {
                    key_name: k.name.clone(),
                },
                Some(k) => match expired(&s.role) {
                    Some(max_age) => SignatureStatus::Expired {
                        key_name: k.name.clone(),
                        max_age,
                    },
                    None => {
                        if counted
                            .entry(s.role.clone())
                            .or_default()
                            .insert(s.key_id.clone())
                        {
                            SignatureStatus::Valid {
                                key_name: k.name.clone(),
                            }
                        } else {
                            SignatureStatus::SameKeyAgain {
                                key_name: k.name.clone(),
                            }
                        }
                    }
                },
            };
            checks.push(SignatureCheck {
                key_id: s.key_id.clone(),
                role: s.role.clone(),
                signer: s.signer.clone(),
                signed_at: s.signed_at.clone(),
                status,
            });
        }
        (checks, counted)
    }

    /// Checks every signature in the slot against the manifest bytes.
    pub fn evaluate(&self, manifest_bytes: &[u8], slot: &SignatureSlot) -> Evaluation {
        self.evaluate_at(manifest_bytes, slot, None)
    }

    /// Like [`evaluate`](Self::evaluate), knowing the bundle's age in
    /// seconds (its `created` against the site's reference time), so that
    /// signatures in a role with a `role_max_age` expire. `root` never
    /// counts for a bundle: it signs policies.
    pub fn evaluate_at(
        &self,
        manifest_bytes: &[u8],
        slot: &SignatureSlot,
        age: Option<i64>,
    ) -> Evaluation {
        let (checks, counted) = self.check_signatures(
            &slot.signatures,
            |key, s| key.verifies(&s.role, manifest_bytes, &s.sig),
            |role| role != ROOT_ROLE,
            |role| {
                let max = *self.role_max_age.get(role)?;
                (age? > max as i64).then(|| human_duration(max))
            },
        );
        let roles = self
            .thresholds
            .iter()
            .filter(|(role, _)| role.as_str() != ROOT_ROLE)
            .map(|(role, &required)| RoleTally {
                role: role.clone(),
                required,
                valid_keys: counted
                    .get(role.as_str())
                    .map(|set| set.iter().cloned().collect())
                    .unwrap_or_default(),
            })
            .collect();
        Evaluation {
            policy_version: self.policy_version,
            signatures: checks,
            roles,
        }
    }

    /// Like [`evaluate`](Self::evaluate), but an unmet threshold is an error.
    pub fn require(
        &self,
        manifest_bytes: &[u8],
        slot: &SignatureSlot,
    ) -> Result<Evaluation, TrustError> {
        self.require_at(manifest_bytes, slot, None)
    }

    /// Like [`evaluate_at`](Self::evaluate_at), but an unmet threshold is
    /// an error.
    pub fn require_at(
        &self,
        manifest_bytes: &[u8],
        slot: &SignatureSlot,
        age: Option<i64>,
    ) -> Result<Evaluation, TrustError> {
        let evaluation = self.evaluate_at(manifest_bytes, slot, age);
        match evaluation.shortfall() {
            Some(reason) => Err(TrustError::Untrusted(reason)),
            None => Ok(evaluation),
        }
    }
}

/// Seconds as the policy would spell them: `30d`, `12h`, `90m`, `7s`.
pub fn human_duration(seconds: u64) -> String {
    for (unit, scale) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds >= scale && seconds.is_multiple_of(scale) {
            return format!("{}{unit}", seconds / scale);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;

    fn policy(dir: &Path, body: &str) -> Result<TrustPolicy, TrustError> {
        let path = dir.join("policy.yaml");
        fs::write(&path, body).unwrap();
        TrustPolicy::load(&path)
    }

    #[test]
    fn thresholds_count_distinct_keys_in_allowed_roles() {
        let dir = tempfile::tempdir().unwrap();
        let hub = PrivateKey::generate("hub").unwrap();
        let qa = PrivateKey::generate("qa").unwrap();
        hub.write_pair(dir.path()).unwrap();
        qa.write_pair(dir.path()).unwrap();
        let p = policy(
            dir.path(),
            "version: 1\nkeys:\n  - name: hub\n    public_key_file: hub.pub\n    roles: [release]\n  - name: qa\n    public_key_file: qa.pub\n    roles: [approver]\nthresholds:\n  release: 1\n  approver: 1\n",
        )
        .unwrap();
        let m = b"manifest";
        let mut slot = SignatureSlot::default();
        slot.add(hub.sign("release", m, "hub"));
        assert!(
            p.require(m, &slot)
                .unwrap_err()
                .to_string()
                .contains("role approver needs 1")
        );
        slot.add(hub.sign("approver", m, "hub"));
        let e = p.evaluate(m, &slot);
        assert!(!e.satisfied());
        assert!(e.shortfall().unwrap().contains("may not sign as approver"));
        slot.add(qa.sign("approver", m, "qa"));
        assert!(p.require(m, &slot).is_ok());
        assert!(p.require(b"other manifest", &slot).is_err());
    }

    #[test]
    fn policies_that_require_nothing_or_the_impossible_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        PrivateKey::generate("hub")
            .unwrap()
            .write_pair(dir.path())
            .unwrap();
        let keys = "keys:\n  - name: hub\n    public_key_file: hub.pub\n    roles: [release]\n";
        assert!(
            policy(
                dir.path(),
                &format!("version: 1\n{keys}thresholds:\n  release: 0\n")
            )
            .is_err()
        );
        assert!(
            policy(
                dir.path(),
                &format!("version: 1\n{keys}thresholds:\n  release: 2\n")
            )
            .is_err()
        );
        assert!(
            policy(
                dir.path(),
                &format!("version: 1\n{keys}thresholds:\n  release: 1\n")
            )
            .is_ok()
        );
        let pinned = "version: 1\nkeys:\n  - name: hub\n    public_key_file: hub.pub\n    key_id: ed25519:00\n    roles: [release]\nthresholds:\n  release: 1\n";
        assert!(
            policy(dir.path(), pinned)
                .unwrap_err()
                .to_string()
                .contains("pinned")
        );
    }
}
