//! Delivery by `kubectl apply`, for a cluster without a GitOps agent.
//!
//! The command is built, shown, and run only when asked:
//!
//! ```text
//! kubectl [--kubeconfig FILE] [--context NAME] apply --server-side --field-manager=tender -f FILE
//! ```
//!
//! Server-side apply, so tender owns exactly the fields it sets and a
//! field another manager owns is a conflict that fails the apply (no
//! `--force-conflicts`: a person decides). The file is the canonical
//! manifest set, whose document order is apply order (namespaces and CRDs
//! before what lives in them).
//!
//! tender never prunes: an object the previous release had and this one
//! lacks stays in the cluster. [`removed_objects`] lists them so the caller
//! can say so.
//!
//! [`client_dry_run_command`] (`apply --dry-run=client --validate=false`)
//! checks a set against a cluster without changing it; it still needs the
//! API server's discovery, so it does not work offline.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tender_format::FromIo;

use crate::config::KubectlDelivery;
use crate::error::DeliverError;
use crate::rewrite::parse_documents;

/// A built `kubectl` invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubectlCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl KubectlCommand {
    /// A [`Command`] for it (stdin closed); add environment as needed.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args).stdin(Stdio::null());
        cmd
    }

    /// The command line, for showing to an operator.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_os_str())
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Runs it; kubectl's stdout on success (one line per object).
    pub fn run(&self) -> Result<String, DeliverError> {
        run_command(self.command(), self)
    }
}

/// Runs `cmd` (built from `shown`), failing with kubectl's stderr.
pub fn run_command(mut cmd: Command, shown: &KubectlCommand) -> Result<String, DeliverError> {
    let output = cmd.output().map_err(|source| DeliverError::Spawn {
        program: shown.program.display().to_string(),
        source,
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        return Err(DeliverError::Tool {
            program: shown.program.display().to_string(),
            args: shown.display(),
            status: output.status.to_string(),
            stderr: lines[lines.len().saturating_sub(10)..].join(" | "),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn base(config: &KubectlDelivery) -> KubectlCommand {
    let mut args: Vec<OsString> = Vec::new();
    if let Some(kubeconfig) = &config.kubeconfig {
        args.push("--kubeconfig".into());
        args.push(kubeconfig.clone().into_os_string());
    }
    if let Some(context) = &config.context {
        args.push("--context".into());
        args.push(context.into());
    }
    KubectlCommand {
        program: config
            .kubectl
            .clone()
            .unwrap_or_else(|| PathBuf::from("kubectl")),
        args,
    }
}

/// `kubectl ... apply --server-side --field-manager=tender -f FILE`.
pub fn apply_command(config: &KubectlDelivery, file: &Path) -> KubectlCommand {
    let mut cmd = base(config);
    cmd.args.extend(
        ["apply", "--server-side", "--field-manager=tender", "-f"]
            .into_iter()
            .map(OsString::from),
    );
    cmd.args.push(file.as_os_str().to_owned());
    cmd
}

/// `kubectl ... apply --dry-run=client --validate=false -f FILE`.
#[cfg(test)]
pub fn client_dry_run_command(config: &KubectlDelivery, file: &Path) -> KubectlCommand {
    let mut cmd = base(config);
    cmd.args.extend(
        ["apply", "--dry-run=client", "--validate=false", "-f"]
            .into_iter()
            .map(OsString::from),
    );
    cmd.args.push(file.as_os_str().to_owned());
    cmd
}

/// Writes `yaml` to a private temporary file and applies it. An empty set
/// applies nothing (kubectl would refuse it) and returns an empty string.
pub fn apply_manifests(config: &KubectlDelivery, yaml: &str) -> Result<String, DeliverError> {
    if parse_documents(yaml)?.is_empty() {
        return Ok(String::new());
    }
    let mut file = tempfile::Builder::new()
        .prefix("tender-apply-")
        .suffix(".yaml")
        .tempfile()
        .map_err(|e| {
            DeliverError::io_at("creating a temporary file in", std::env::temp_dir(), e)
        })?;
    file.write_all(yaml.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| DeliverError::io_at("writing", file.path(), e))?;
    apply_command(config, file.path()).run()
}

/// Objects (`group/Kind namespace/name`, core group empty) of `previous`
/// that `current` no longer has, in `previous`'s order. tender does not
/// delete them.
pub fn removed_objects(previous: &str, current: &str) -> Result<Vec<String>, DeliverError> {
    let now: BTreeSet<String> = parse_documents(current)?.iter().map(object_id).collect();
    let mut seen = BTreeSet::new();
    Ok(parse_documents(previous)?
        .iter()
        .map(object_id)
        .filter(|id| !now.contains(id) && seen.insert(id.clone()))
        .collect())
}

/// `group/Kind namespace/name`, as manifest sets name objects.
pub fn object_id(doc: &serde_json::Value) -> String {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("").to_string();
    let api_version = text(&doc["apiVersion"]);
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    format!(
        "{group}/{} {}/{}",
        text(&doc["kind"]),
        text(&doc["metadata"]["namespace"]),
        text(&doc["metadata"]["name"])
    )
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@,+%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(cmd: &KubectlCommand) -> Vec<String> {
        std::iter::once(cmd.program.to_string_lossy().into_owned())
            .chain(cmd.args.iter().map(|a| a.to_string_lossy().into_owned()))
            .collect()
    }

    #[test]
    fn builds_the_exact_argv() {
        let file = Path::new("/var/lib/tender/apply/line-a.yaml");
        assert_eq!(
            argv(&apply_command(&KubectlDelivery::default(), file)),
            [
                "kubectl",
                "apply",
                "--server-side",
                "--field-manager=tender",
                "-f",
                "/var/lib/tender/apply/line-a.yaml"
            ]
        );
        let config = KubectlDelivery {
            kubeconfig: Some("/etc/tender/line a.kubeconfig".into()),
            context: Some("line-a".into()),
            kubectl: Some("/opt/bin/kubectl".into()),
        };
        let cmd = apply_command(&config, file);
        assert_eq!(
            argv(&cmd),
            [
                "/opt/bin/kubectl",
                "--kubeconfig",
                "/etc/tender/line a.kubeconfig",
                "--context",
                "line-a",
                "apply",
                "--server-side",
                "--field-manager=tender",
                "-f",
                "/var/lib/tender/apply/line-a.yaml"
            ]
        );
        assert_eq!(
            cmd.display(),
            "/opt/bin/kubectl --kubeconfig '/etc/tender/line a.kubeconfig' --context line-a \
             apply --server-side --field-manager=tender -f /var/lib/tender/apply/line-a.yaml"
        );
        assert_eq!(
            argv(&client_dry_run_command(&config, file))[5..],
            [
                "apply",
                "--dry-run=client",
                "--validate=false",
                "-f",
                "/var/lib/tender/apply/line-a.yaml"
            ]
        );
    }

    #[test]
    fn a_missing_binary_is_a_spawn_error() {
        let config = KubectlDelivery {
            kubectl: Some("/nonexistent/kubectl".into()),
            ..KubectlDelivery::default()
        };
        let err = apply_manifests(&config, "kind: ConfigMap\n").unwrap_err();
        assert!(matches!(err, DeliverError::Spawn { .. }), "{err}");
        assert_eq!(
            apply_manifests(&config, "---\n").unwrap(),
            "",
            "nothing to apply"
        );
    }

    #[test]
    fn removed_objects_lists_what_is_gone() {
        let previous = "---
apiVersion: v1
kind: Namespace
metadata: {name: line-a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gw, namespace: line-a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: old, namespace: line-a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: legacy, namespace: line-a}
";
        let current = "---
apiVersion: v1
kind: Namespace
metadata: {name: line-a}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: gw, namespace: line-a}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: new, namespace: line-a}
";
        assert_eq!(
            removed_objects(previous, current).unwrap(),
            ["/ConfigMap line-a/old", "apps/Deployment line-a/legacy"]
        );
        assert!(removed_objects(current, previous).unwrap() == ["/ConfigMap line-a/new"]);
        assert!(removed_objects(previous, previous).unwrap().is_empty());
        assert!(removed_objects("a: [", current).is_err());
    }
}
