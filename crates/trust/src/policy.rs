//! The site trust policy: which keys may sign in which roles, and how many
//! distinct keys each role needs (bundle-spec §7).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tender_format::manifest::is_token;
use tender_format::signatures::SignatureSlot;

use crate::error::TrustError;
use crate::keys::{KeyId, PublicKey};

/// The policy file as written (YAML).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    version: u64,
    keys: Vec<KeyFile>,
    thresholds: BTreeMap<String, u32>,
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

/// A loaded and checked trust policy.
#[derive(Debug, Clone)]
pub struct TrustPolicy {
    pub version: u64,
    pub path: PathBuf,
    keys: BTreeMap<KeyId, TrustedKey>,
    thresholds: BTreeMap<String, u32>,
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

impl TrustPolicy {
    /// Loads a policy file and checks it can ever be satisfied. A policy
    /// that requires nothing is refused: trust must be fail-closed.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let text = fs::read_to_string(path).map_err(|e| TrustError::io(path, e))?;
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
        if file.version == 0 {
            return Err(bad("version must be 1 or more".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut keys = BTreeMap::new();
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
            if let Some(pin) = &k.key_id
                && pin != key.id().as_str()
            {
                return Err(bad(format!(
                    "key {} is pinned to id {pin} but the key's id is {}",
                    k.name,
                    key.id()
                )));
            }
            if let Some(role) = k.roles.iter().find(|r| !is_token(r)) {
                return Err(bad(format!("key {} has an invalid role {role:?}", k.name)));
            }
            let id = key.id().clone();
            let trusted = TrustedKey {
                name: k.name.clone(),
                key,
                roles: k.roles.into_iter().collect(),
            };
            if keys.insert(id.clone(), trusted).is_some() {
                return Err(bad(format!("key {id} is listed twice")));
            }
        }
        if file.thresholds.values().all(|&n| n == 0) {
            return Err(bad(
                "no role has a threshold above 0; a policy must require signatures".into(),
            ));
        }
        for (role, &needed) in &file.thresholds {
            let holders = keys.values().filter(|k| k.roles.contains(role)).count();
            if holders < needed as usize {
                return Err(bad(format!(
                    "role {role} needs {needed} distinct keys but only {holders} key(s) hold it"
                )));
            }
        }
        Ok(TrustPolicy {
            version: file.version,
            path: path.to_path_buf(),
            keys,
            thresholds: file.thresholds,
        })
    }

    pub fn key(&self, id: &str) -> Option<&TrustedKey> {
        self.keys
            .iter()
            .find(|(k, _)| k.as_str() == id)
            .map(|(_, v)| v)
    }

    /// Checks every signature in the slot against the manifest bytes.
    pub fn evaluate(&self, manifest_bytes: &[u8], slot: &SignatureSlot) -> Evaluation {
        let mut counted: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        let mut checks = Vec::new();
        for s in &slot.signatures {
            let status = match self.key(&s.key_id) {
                None => SignatureStatus::UnknownKey,
                Some(k) if !k.roles.contains(&s.role) => SignatureStatus::RoleNotAllowed {
                    key_name: k.name.clone(),
                },
                Some(k) if !k.key.verifies(&s.role, manifest_bytes, &s.sig) => {
                    SignatureStatus::BadSignature {
                        key_name: k.name.clone(),
                    }
                }
                Some(k) => {
                    if counted
                        .entry(s.role.as_str())
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
            };
            checks.push(SignatureCheck {
                key_id: s.key_id.clone(),
                role: s.role.clone(),
                signer: s.signer.clone(),
                signed_at: s.signed_at.clone(),
                status,
            });
        }
        let roles = self
            .thresholds
            .iter()
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
            policy_version: self.version,
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
        let evaluation = self.evaluate(manifest_bytes, slot);
        match evaluation.shortfall() {
            Some(reason) => Err(TrustError::Untrusted(reason)),
            None => Ok(evaluation),
        }
    }
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
