//! `tender policy show|sign|verify|apply`: the site trust policy's
//! lifecycle (bundle-spec §7.3, docs/trust-policy.md).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::{Value, json};
use tender_format::atomic;
use tender_format::manifest::is_utc_seconds;
use tender_format::policy_update::{PolicyUpdate, Resets};
use tender_import::Site;
use tender_import::lifecycle::{self, UpdatesReport};
use tender_import::state::{SiteStateFile, read_state};
use tender_trust::keys::now_rfc3339;
use tender_trust::policy::human_duration;
use tender_trust::update::{sign_update, unsigned_update};
use tender_trust::{PrivateKey, TrustPolicy};

use crate::args::{
    PolicyApplyArgs, PolicyCommand, PolicyShowArgs, PolicySignArgs, PolicyVerifyArgs,
};
use crate::exit::UsageError;
use crate::human;

pub fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Show(a) => show(a),
        PolicyCommand::Sign(a) => sign(a),
        PolicyCommand::Verify(a) => verify(a),
        PolicyCommand::Apply(a) => apply(a),
    }
}

/// Update files for a bundle at the hub. A bad one is the hub's problem
/// (exit 1), not a rejected stick.
pub(crate) fn read_for_hub(paths: &[PathBuf]) -> anyhow::Result<Vec<PolicyUpdate>> {
    let updates = paths
        .iter()
        .map(|p| {
            lifecycle::read_update(p)
                .map_err(|e| anyhow::anyhow!(tender_format::error::chain_message(&e)))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let origin = paths
        .first()
        .map(PathBuf::as_path)
        .unwrap_or(Path::new("."));
    tender_trust::update::check_carried(&updates, origin).map_err(|e| {
        anyhow::anyhow!("not carrying the policy updates, the sites would refuse the bundle: {e}")
    })?;
    Ok(updates)
}

/// Whether a file holds JSON (an update) rather than YAML (a policy).
fn is_update(path: &Path) -> anyhow::Result<bool> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'))
}

fn policy_json(policy: &TrustPolicy) -> Value {
    json!({
        "policy_version": policy.policy_version,
        "source": policy.path,
        "created": policy.created,
        "keys": policy.keys().map(|(id, k)| json!({
            "name": k.name,
            "key_id": id.to_string(),
            "roles": k.roles,
        })).collect::<Vec<_>>(),
        "thresholds": policy.thresholds(),
        "channels": policy.channel_max_ages().iter()
            .map(|(c, &s)| (c.clone(), json!({"max_age": human_duration(s)})))
            .collect::<serde_json::Map<_, _>>(),
        "role_max_age": policy.role_max_ages().iter()
            .map(|(r, &s)| (r.clone(), Value::from(human_duration(s))))
            .collect::<serde_json::Map<_, _>>(),
    })
}

fn print_policy(out: &mut impl Write, policy: &TrustPolicy) -> std::io::Result<()> {
    writeln!(
        out,
        "POLICY {} from {}",
        policy.policy_version,
        policy.path.display()
    )?;
    if let Some(created) = &policy.created {
        writeln!(out, "  created   {created}")?;
    }
    for (id, k) in policy.keys() {
        let roles: Vec<&str> = k.roles.iter().map(String::as_str).collect();
        writeln!(
            out,
            "  key       {} {id} roles {}",
            human::clean(&k.name),
            roles.join(", ")
        )?;
    }
    for (role, n) in policy.thresholds() {
        let note = if role == "root" {
            " (signs policy updates)"
        } else {
            ""
        };
        writeln!(out, "  threshold {role} {n}{note}")?;
    }
    if policy.root_threshold() == 0 {
        writeln!(
            out,
            "  root      none: this policy accepts no updates (a new one is installed out of band)"
        )?;
    }
    for (channel, &s) in policy.channel_max_ages() {
        writeln!(out, "  channel   {channel} max_age {}", human_duration(s))?;
    }
    for (role, &s) in policy.role_max_ages() {
        writeln!(
            out,
            "  expiry    {role} signatures count for {}",
            human_duration(s)
        )?;
    }
    Ok(())
}

fn show(args: PolicyShowArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if let Some(file) = &args.file {
        if is_update(file)? {
            let update = lifecycle::read_update(file)?;
            let origin = file.clone();
            let policy = TrustPolicy::from_update(&update, &origin)?;
            let signers: Vec<Value> = update
                .signatures
                .iter()
                .map(|s| json!({"key_id": s.key_id, "role": s.role, "signer": s.signer}))
                .collect();
            if args.json {
                let mut v = policy_json(&policy);
                v["resets"] = serde_json::to_value(&update.policy.resets)?;
                v["signatures"] = Value::from(signers);
                v["verified"] = Value::from(false);
                return super::print_json(&v);
            }
            writeln!(
                out,
                "UNVERIFIED update (tender policy verify checks its signatures)"
            )?;
            print_policy(&mut out, &policy)?;
            for (channel, floor) in &update.policy.resets.sequences {
                writeln!(out, "  reset     channel {channel} sequence to {floor}")?;
            }
            if update.policy.resets.high_water_mark {
                writeln!(
                    out,
                    "  reset     high-water mark to {}",
                    update.policy.created
                )?;
            }
            for s in &update.signatures {
                writeln!(
                    out,
                    "  signature {} as {} by {}",
                    human::clean(&s.key_id),
                    human::clean(&s.role),
                    human::clean(&s.signer)
                )?;
            }
            return Ok(());
        }
        let policy = TrustPolicy::load(file)?;
        if args.json {
            return super::print_json(&policy_json(&policy));
        }
        return Ok(print_policy(&mut out, &policy)?);
    }
    let site = Site::load(&args.site)?;
    let state = read_state(&site.state_dir)?;
    let policy = lifecycle::effective_policy(&site, &state)?;
    let resets: serde_json::Map<String, Value> = state
        .channels
        .iter()
        .filter_map(|(c, s)| {
            let r = s.reset.as_ref()?;
            Some((
                c.clone(),
                json!({"sequence": s.sequence, "policy_version": r.policy_version, "not_before": r.not_before}),
            ))
        })
        .collect();
    if args.json {
        let mut v = policy_json(&policy);
        v["site"] = Value::from(site.name.clone());
        v["high_water_mark"] = json!(state.trust.high_water_mark);
        v["trusted_clock"] = Value::from(site.trusted_clock);
        v["channel_resets"] = Value::from(resets);
        return super::print_json(&v);
    }
    print_policy(&mut out, &policy)?;
    writeln!(
        out,
        "  site      {} high-water mark {}{}",
        site.name,
        state.trust.high_water_mark.as_deref().unwrap_or("none yet"),
        if site.trusted_clock {
            ", trusted clock"
        } else {
            ""
        }
    )?;
    for (channel, r) in &resets {
        writeln!(
            out,
            "  reset     channel {channel} to sequence {} by policy {}: bundles created after {}",
            r["sequence"],
            r["policy_version"],
            r["not_before"].as_str().unwrap_or_default()
        )?;
    }
    Ok(())
}

fn sign(args: PolicySignArgs) -> anyhow::Result<()> {
    super::warn_if_too_open(&args.key);
    let key = PrivateKey::read(&args.key)?;
    let signer = args
        .signer
        .clone()
        .unwrap_or_else(|| key.name().to_string());
    let from_yaml = !is_update(&args.input)?;
    let (mut update, output) = if from_yaml {
        let Some(output) = args.output.clone() else {
            return Err(UsageError("signing a policy YAML needs --output FILE".into()).into());
        };
        // A new update has a new `created`: it would void the signatures
        // already collected in an existing file.
        if output.exists() {
            return Err(UsageError(format!(
                "{} exists; add a signature to it with `tender policy sign {} --key KEY`",
                output.display(),
                output.display()
            ))
            .into());
        }
        let created = args.created.clone().unwrap_or_else(now_rfc3339);
        if !is_utc_seconds(&created) {
            return Err(UsageError(format!(
                "--created {created:?} is not an RFC 3339 UTC time in seconds"
            ))
            .into());
        }
        let mut resets = Resets {
            high_water_mark: args.reset_high_water_mark,
            ..Resets::default()
        };
        for r in &args.reset_sequences {
            let parsed = r
                .split_once('=')
                .and_then(|(c, n)| Some((c.to_string(), n.parse::<u64>().ok()?)));
            let Some((channel, floor)) = parsed else {
                return Err(
                    UsageError(format!("--reset-sequence {r:?} is not CHANNEL=SEQUENCE")).into(),
                );
            };
            resets.sequences.insert(channel, floor);
        }
        let policy = TrustPolicy::load(&args.input)?;
        if policy.policy_version < 2 {
            return Err(UsageError(format!(
                "{} is policy_version {}; an update is version 2 or more (set policy_version)",
                args.input.display(),
                policy.policy_version
            ))
            .into());
        }
        (unsigned_update(&policy, &created, resets), output)
    } else {
        if !args.reset_sequences.is_empty() || args.reset_high_water_mark || args.created.is_some()
        {
            return Err(UsageError(
                "resets and --created are set when the update is made from YAML; they are signed"
                    .into(),
            )
            .into());
        }
        let update = lifecycle::read_update(&args.input)?;
        (update, args.output.clone().unwrap_or(args.input.clone()))
    };
    // The body must describe a valid policy before anyone vouches for it.
    TrustPolicy::from_update(&update, &output)?;
    let changed = sign_update(&mut update, &key, &signer, &now_rfc3339());
    let bytes = update.to_canonical_bytes()?;
    atomic::write(&output, &bytes).with_context(|| format!("writing {}", output.display()))?;
    eprintln!(
        "{} policy update {} as root by {} ({}): {} signature(s)",
        if changed { "signed" } else { "already signed" },
        update.policy_version(),
        human::clean(&signer),
        key.public().id(),
        update.signatures.len()
    );
    println!("{}", output.display());
    Ok(())
}

/// Reads update files, in version order.
fn read_sorted(paths: &[PathBuf]) -> anyhow::Result<Vec<PolicyUpdate>> {
    let mut updates = paths
        .iter()
        .map(|p| lifecycle::read_update(p))
        .collect::<Result<Vec<_>, _>>()?;
    updates.sort_by_key(PolicyUpdate::policy_version);
    Ok(updates)
}

fn print_report(report: &UpdatesReport, verb: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for c in &report.applied {
        writeln!(
            out,
            "{verb} policy {} -> {} (created {})",
            c.from_version, c.to_version, c.created
        )?;
        for root in &c.roots {
            writeln!(
                out,
                "  root of policy {}: {} of {} needed ({})",
                root.policy_version,
                root.tally.valid_keys.len(),
                root.tally.required,
                root.tally.valid_keys.join(", ")
            )?;
        }
    }
    for v in &report.skipped {
        writeln!(
            out,
            "skipped policy {v}: the site already has it or a later one"
        )?;
    }
    let what = if verb == "APPLIED" {
        "policy in force"
    } else {
        "policy after these updates"
    };
    writeln!(out, "{what}: {}", report.policy_version)
}

fn verify(args: PolicyVerifyArgs) -> anyhow::Result<()> {
    let updates = read_sorted(&args.updates)?;
    let (policy, state) = match &args.trust {
        Some(path) => (TrustPolicy::load(path)?, SiteStateFile::default()),
        None => {
            let site = Site::load(&args.site)?;
            let state = read_state(&site.state_dir)?;
            (lifecycle::effective_policy(&site, &state)?, state)
        }
    };
    let chain = policy.apply_chain(&updates, &policy.path)?;
    if chain.applied.is_empty()
        && let Some(newest) = updates.last()
        && state.trust.policy.as_ref() != Some(newest)
    {
        return Err(tender_import::ImportError::Refused(format!(
            "policy update {}: the policy is at version {}; an older or equal policy never applies again (rollback)",
            newest.policy_version(),
            policy.policy_version
        ))
        .into());
    }
    let report = UpdatesReport::of(&chain);
    if args.json {
        return super::print_json(&report);
    }
    Ok(print_report(&report, "VERIFIED")?)
}

fn apply(args: PolicyApplyArgs) -> anyhow::Result<()> {
    let site = Site::load(&args.site)?;
    let operator = args.operator.clone().unwrap_or_else(super::os_user);
    let report = lifecycle::apply(&site, &args.updates, &operator)?;
    if args.json {
        return super::print_json(&report);
    }
    Ok(print_report(&report, "APPLIED")?)
}
