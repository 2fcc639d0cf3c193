//! Policy updates (bundle-spec §7.3): a site at policy N accepts N+1 only
//! when it is signed by the threshold of N's root role **and** of N+1's
//! own root role (TUF's rule: a rotation needs the old and the new key
//! holders). Updates chain, in order, never skipping, never going back.

use std::path::Path;

use serde::Serialize;
use tender_format::policy_update::{
    POLICY_FORMAT_V1, PolicyBody, PolicyKey, PolicyUpdate, ROOT_ROLE, Resets, policy_signing_input,
};

use crate::error::TrustError;
use crate::keys::{PrivateKey, PublicKey};
use crate::policy::{KeySpec, PolicySpec, RoleTally, SignatureCheck, TrustPolicy, human_duration};

/// How one update's root signatures counted.
#[derive(Debug, Clone, Serialize)]
pub struct UpdateCheck {
    pub from_version: u64,
    pub to_version: u64,
    pub created: String,
    /// N's root role, then N+1's.
    pub roots: Vec<RootTally>,
}

/// One policy's root role, tallied over an update's signatures.
#[derive(Debug, Clone, Serialize)]
pub struct RootTally {
    /// Whose root: the current policy's or the next one's.
    pub policy_version: u64,
    #[serde(flatten)]
    pub tally: RoleTally,
    pub signatures: Vec<SignatureCheck>,
}

impl RootTally {
    fn shortfall(&self) -> Option<String> {
        let found = self.tally.valid_keys.len() as u32;
        if found >= self.tally.required {
            return None;
        }
        let mut line = format!(
            "root role of policy {} needs {} valid signature(s) from distinct root keys, found {found}",
            self.policy_version, self.tally.required
        );
        let ignored: Vec<String> = self
            .signatures
            .iter()
            .filter_map(SignatureCheck::ignored_because)
            .collect();
        if !ignored.is_empty() {
            line.push_str(&format!(" ({})", ignored.join("; ")));
        }
        Some(line)
    }
}

/// The outcome of offering a site updates: the policy it ends at.
#[derive(Debug, Clone)]
pub struct Chain {
    pub policy: TrustPolicy,
    /// Applied, in order.
    pub applied: Vec<(PolicyUpdate, UpdateCheck)>,
    /// Versions offered that the site already has or passed (never applied again).
    pub skipped: Vec<u64>,
}

impl Chain {
    /// Judges a bundle's signatures by the policy the chain ends at (see
    /// [`TrustPolicy::require_at`]). A refusal also names the updates
    /// skipped as older than the site's policy: a stick carrying an old
    /// policy that still trusted a revoked key gets nowhere, and says so.
    pub fn require_at(
        &self,
        manifest_bytes: &[u8],
        slot: &tender_format::SignatureSlot,
        age: Option<i64>,
    ) -> Result<crate::Evaluation, TrustError> {
        self.policy
            .require_at(manifest_bytes, slot, age)
            .map_err(|e| match e {
                TrustError::Untrusted(reason) if !self.skipped.is_empty() => {
                    let skipped: Vec<String> = self.skipped.iter().map(u64::to_string).collect();
                    TrustError::Untrusted(format!(
                        "{reason}; policy update(s) {} carried but not applied: the site is at policy {} and never goes back",
                        skipped.join(", "),
                        self.policy.policy_version
                    ))
                }
                e => e,
            })
    }
}

impl TrustPolicy {
    /// The policy an update describes (its keys are inline). `origin`
    /// names where it is kept, for messages.
    pub fn from_update(update: &PolicyUpdate, origin: &Path) -> Result<Self, TrustError> {
        let refused = |reason: String| {
            TrustError::Untrusted(format!(
                "policy update {}: {reason}",
                update.policy.policy_version
            ))
        };
        update.validate().map_err(|e| refused(e.to_string()))?;
        let p = &update.policy;
        let mut keys = Vec::new();
        for k in &p.keys {
            let key = PublicKey::from_pem(&k.public_key, origin)
                .map_err(|e| refused(format!("key {}: {e}", k.name)))?;
            keys.push(KeySpec {
                name: k.name.clone(),
                key,
                pin: Some(k.key_id.clone()),
                roles: k.roles.clone(),
            });
        }
        Self::build(
            origin,
            PolicySpec {
                version: p.version,
                policy_version: p.policy_version,
                created: Some(p.created.clone()),
                keys,
                thresholds: p.thresholds.clone(),
                channels: p.channels.clone(),
                role_max_age: p.role_max_age.clone(),
            },
        )
        .map_err(refused)
    }

    /// This policy as the body of an update to `policy_version`, signed
    /// later: every key inline and pinned.
    pub fn to_body(&self, created: &str, resets: Resets) -> PolicyBody {
        PolicyBody {
            version: 1,
            policy_version: self.policy_version,
            created: created.to_string(),
            keys: self
                .keys()
                .map(|(id, k)| PolicyKey {
                    name: k.name.clone(),
                    public_key: k.key.to_pem(),
                    key_id: id.to_string(),
                    roles: k.roles.iter().cloned().collect(),
                })
                .collect(),
            thresholds: self.thresholds().clone(),
            channels: self
                .channel_max_ages()
                .iter()
                .map(|(c, &s)| {
                    (
                        c.clone(),
                        tender_format::policy_update::ChannelRules {
                            max_age: Some(human_duration(s)),
                        },
                    )
                })
                .collect(),
            role_max_age: self
                .role_max_ages()
                .iter()
                .map(|(r, &s)| (r.clone(), human_duration(s)))
                .collect(),
            resets,
        }
    }

    /// Tallies the root signatures of an update against this policy's root.
    fn root_tally(&self, update: &PolicyUpdate, message: &[u8]) -> RootTally {
        let (signatures, counted) = self.check_signatures(
            &update.signatures,
            |key, s| key.verifies_message(message, &s.sig),
            |role| role == ROOT_ROLE,
            |_| None,
        );
        RootTally {
            policy_version: self.policy_version,
            tally: RoleTally {
                role: ROOT_ROLE.into(),
                required: self.root_threshold(),
                valid_keys: counted
                    .get(ROOT_ROLE)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default(),
            },
            signatures,
        }
    }

    /// Accepts the next policy: exactly version N+1, signed by the root
    /// thresholds of both this policy and the next.
    pub fn accept(
        &self,
        update: &PolicyUpdate,
        origin: &Path,
    ) -> Result<(TrustPolicy, UpdateCheck), TrustError> {
        let (n, next_version) = (self.policy_version, update.policy.policy_version);
        let refused = |reason: String| {
            TrustError::Untrusted(format!("policy update {next_version}: {reason}"))
        };
        if next_version <= n {
            return Err(refused(format!(
                "the site is at policy {n}; an older or equal policy never applies again (rollback)"
            )));
        }
        if next_version != n + 1 {
            return Err(refused(format!(
                "the site is at policy {n} and accepts only {}: updates never skip a version",
                n + 1
            )));
        }
        if self.root_threshold() == 0 {
            return Err(refused(format!(
                "policy {n} names no root role, so it accepts no updates (install a new policy out of band)"
            )));
        }
        let next = TrustPolicy::from_update(update, origin)?;
        if next.root_threshold() == 0 {
            return Err(refused(
                "it names no root role; the site could never be updated again".into(),
            ));
        }
        let message = policy_signing_input(&update.body_bytes());
        let roots = vec![
            self.root_tally(update, &message),
            next.root_tally(update, &message),
        ];
        let short: Vec<String> = roots.iter().filter_map(RootTally::shortfall).collect();
        if !short.is_empty() {
            return Err(refused(short.join("; ")));
        }
        let check = UpdateCheck {
            from_version: n,
            to_version: next_version,
            created: update.policy.created.clone(),
            roots,
        };
        Ok((next, check))
    }

    /// Offers updates in order: those at or below this policy's version
    /// are skipped (the site has or passed them), the rest must follow on
    /// without a gap, each accepted by the policy before it. Fails at the
    /// first refusal, having changed nothing (the caller stores the end).
    pub fn apply_chain(
        &self,
        updates: &[PolicyUpdate],
        origin: &Path,
    ) -> Result<Chain, TrustError> {
        let mut chain = Chain {
            policy: self.clone(),
            applied: Vec::new(),
            skipped: Vec::new(),
        };
        for update in updates {
            if update.policy.policy_version <= chain.policy.policy_version {
                chain.skipped.push(update.policy.policy_version);
                continue;
            }
            let (next, check) = chain.policy.accept(update, origin)?;
            chain.policy = next;
            chain.applied.push((update.clone(), check));
        }
        Ok(chain)
    }
}

/// Checks updates a hub is about to carry, as far as it can without the
/// sites' policies: each describes a valid policy signed up to its own root
/// threshold, and each after the first is accepted by the one before. A
/// half-signed update on a stick would make every site refuse the bundle.
pub fn check_carried(updates: &[PolicyUpdate], origin: &Path) -> Result<(), TrustError> {
    let mut previous: Option<TrustPolicy> = None;
    for update in updates {
        let next = match &previous {
            Some(p) => p.accept(update, origin)?.0,
            None => {
                let next = TrustPolicy::from_update(update, origin)?;
                let message = policy_signing_input(&update.body_bytes());
                if let Some(short) = next.root_tally(update, &message).shortfall() {
                    return Err(TrustError::Untrusted(format!(
                        "policy update {}: {short}",
                        update.policy.policy_version
                    )));
                }
                next
            }
        };
        previous = Some(next);
    }
    Ok(())
}

/// A new, unsigned update carrying `policy`'s contents.
pub fn unsigned_update(policy: &TrustPolicy, created: &str, resets: Resets) -> PolicyUpdate {
    PolicyUpdate {
        format: POLICY_FORMAT_V1.into(),
        policy: policy.to_body(created, resets),
        signatures: Vec::new(),
    }
}

/// Adds `key`'s root signature to an update, unless it already signed.
/// Returns whether the update changed.
pub fn sign_update(update: &mut PolicyUpdate, key: &PrivateKey, signer: &str, at: &str) -> bool {
    let id = key.public().id().to_string();
    if update.signatures.iter().any(|s| s.key_id == id) {
        return false;
    }
    let message = policy_signing_input(&update.body_bytes());
    update
        .signatures
        .push(key.sign_message(ROOT_ROLE, &message, signer, at));
    true
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const T1: &str = "2026-11-01T00:00:00Z";

    struct Keys {
        root_a: PrivateKey,
        root_b: PrivateKey,
        hub: PrivateKey,
    }

    fn setup(dir: &Path) -> (Keys, TrustPolicy) {
        let k = Keys {
            root_a: PrivateKey::from_seed("root-a", [11; 32]),
            root_b: PrivateKey::from_seed("root-b", [12; 32]),
            hub: PrivateKey::from_seed("hub", [1; 32]),
        };
        for key in [&k.root_a, &k.root_b, &k.hub] {
            key.write_pair(dir).unwrap();
        }
        let path = dir.join("policy.yaml");
        fs::write(
            &path,
            "version: 1\nkeys:\n  - {name: root-a, public_key_file: root-a.pub, roles: [root]}\n  - {name: hub, public_key_file: hub.pub, roles: [release]}\nthresholds:\n  release: 1\n  root: 1\n",
        )
        .unwrap();
        (k, TrustPolicy::load(&path).unwrap())
    }

    /// Policy 1 with its root key moved from root-a to root-b, as version 2.
    fn rotated(dir: &Path, version: u64) -> TrustPolicy {
        let path = dir.join(format!("policy-{version}.yaml"));
        fs::write(
            &path,
            format!("version: 1\npolicy_version: {version}\nkeys:\n  - {{name: root-b, public_key_file: root-b.pub, roles: [root]}}\n  - {{name: hub, public_key_file: hub.pub, roles: [release]}}\nthresholds:\n  release: 1\n  root: 1\n"),
        )
        .unwrap();
        TrustPolicy::load(&path).unwrap()
    }

    #[test]
    fn a_rotation_needs_the_old_and_the_new_root() {
        let dir = tempfile::tempdir().unwrap();
        let (k, one) = setup(dir.path());
        let mut update = unsigned_update(&rotated(dir.path(), 2), T1, Resets::default());
        sign_update(&mut update, &k.root_b, "b", T1);
        let err = one.accept(&update, dir.path()).unwrap_err().to_string();
        assert!(err.contains("root role of policy 1 needs 1"), "{err}");
        assert!(err.contains("is not trusted"), "{err}");
        sign_update(&mut update, &k.root_a, "a", T1);
        let (two, check) = one.accept(&update, dir.path()).unwrap();
        assert_eq!((two.policy_version, check.from_version), (2, 1));

        // Only the old root: the new root holders did not agree.
        let mut only_old = unsigned_update(&rotated(dir.path(), 2), T1, Resets::default());
        sign_update(&mut only_old, &k.root_a, "a", T1);
        let err = one.accept(&only_old, dir.path()).unwrap_err().to_string();
        assert!(err.contains("root role of policy 2 needs 1"), "{err}");

        // A changed body after signing verifies for neither.
        let mut swapped = update.clone();
        swapped.policy.thresholds.insert("release".into(), 0);
        swapped.policy.thresholds.insert("approver".into(), 0);
        assert!(one.accept(&swapped, dir.path()).is_err());
        // A bundle signature is not a root signature (other context).
        let mut relabelled = unsigned_update(&rotated(dir.path(), 2), T1, Resets::default());
        let body = relabelled.body_bytes();
        relabelled.signatures = vec![
            k.root_a.sign("root", &body, "a"),
            k.root_b.sign("root", &body, "b"),
        ];
        let err = one.accept(&relabelled, dir.path()).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn chains_go_forward_one_version_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (k, one) = setup(dir.path());
        let sign_both = |policy: &TrustPolicy| {
            let mut u = unsigned_update(policy, T1, Resets::default());
            sign_update(&mut u, &k.root_a, "a", T1);
            sign_update(&mut u, &k.root_b, "b", T1);
            u
        };
        let two = sign_both(&rotated(dir.path(), 2));
        let three = sign_both(&rotated(dir.path(), 3));
        let err = one.accept(&three, dir.path()).unwrap_err().to_string();
        assert!(err.contains("never skip"), "{err}");
        let chain = one
            .apply_chain(&[two.clone(), three.clone()], dir.path())
            .unwrap();
        assert_eq!(chain.policy.policy_version, 3);
        assert_eq!(chain.applied.len(), 2);
        // At 3, both are history: skipped, never applied again.
        let again = chain
            .policy
            .apply_chain(std::slice::from_ref(&two), dir.path())
            .unwrap();
        assert_eq!((again.skipped, again.applied.len()), (vec![2], 0));
        let err = chain
            .policy
            .accept(&two, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("rollback"), "{err}");
    }

    #[test]
    fn a_hub_carries_only_updates_signed_by_their_own_root() {
        let dir = tempfile::tempdir().unwrap();
        let (k, _) = setup(dir.path());
        let mut two = unsigned_update(&rotated(dir.path(), 2), T1, Resets::default());
        sign_update(&mut two, &k.root_a, "a", T1);
        let err = check_carried(std::slice::from_ref(&two), dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("root role of policy 2 needs 1"), "{err}");
        sign_update(&mut two, &k.root_b, "b", T1);
        let mut three = unsigned_update(&rotated(dir.path(), 3), T1, Resets::default());
        sign_update(&mut three, &k.root_a, "a", T1);
        // Policy 2's root is root-b alone: root-a no longer counts.
        assert!(check_carried(&[two.clone(), three.clone()], dir.path()).is_err());
        sign_update(&mut three, &k.root_b, "b", T1);
        check_carried(&[two, three], dir.path()).unwrap();
    }

    #[test]
    fn a_policy_without_root_accepts_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let (k, _) = setup(dir.path());
        let path = dir.path().join("plain.yaml");
        fs::write(
            &path,
            "version: 1\nkeys:\n  - {name: hub, public_key_file: hub.pub, roles: [release]}\nthresholds:\n  release: 1\n",
        )
        .unwrap();
        let plain = TrustPolicy::load(&path).unwrap();
        assert_eq!((plain.policy_version, plain.root_threshold()), (1, 0));
        let mut u = unsigned_update(&rotated(dir.path(), 2), T1, Resets::default());
        sign_update(&mut u, &k.root_b, "b", T1);
        let err = plain.accept(&u, dir.path()).unwrap_err().to_string();
        assert!(err.contains("names no root role"), "{err}");
    }
}
