//! Rendering a cluster's sources to YAML text, the way Argo CD's
//! repo-server does: `helm template` for charts, `kustomize build` (or
//! `kubectl kustomize`) for kustomizations, files as they are for raw
//! manifests. The tools are run, never re-implemented.
//!
//! Variables go where a Flux user expects them (docs/fleet-spec.md, "Where
//! substitution happens"): into Helm values before `helm template`, into
//! kustomize and manifest output object by object, into Helm output only
//! when the source opts in. Helm runs twice per distinct invocation, so
//! that a chart that renders differently each time is named; kustomize
//! runs once per directory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use tender_format::Digest;

use crate::error::RenderError;
use crate::fleet::{Cluster, Fleet, HelmSource, Source, SourceKind};
use crate::manifest_set;
use crate::substitute::{SubstituteError, substitute, substitute_documents};

/// Which binaries to run. The caller finds them (the CLI reads `--helm`,
/// `$TENDER_HELM`, `$TENDER_KUSTOMIZE` and PATH); this crate reads no
/// environment, so a library user or a test says exactly what runs.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `helm`.
    pub helm: PathBuf,
    /// A standalone `kustomize`; `None` runs `kubectl kustomize`.
    pub kustomize: Option<PathBuf>,
    /// `kubectl`, for `kubectl kustomize`.
    pub kubectl: PathBuf,
}

/// One source rendered for one cluster, after substitution where the
/// source asks for it.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub source: String,
    pub text: String,
    /// Helm output left unsubstituted because the source did not say
    /// `substitute`: any `${...}` left in it is worth a warning, since
    /// tender used to substitute there.
    pub unsubstituted_by_default: bool,
    /// Objects (`Object::label`, namespace) that differ between two renders
    /// of the same inputs: the chart is not reproducible.
    pub unstable: Vec<(String, String)>,
}

/// Renders sources, remembering each distinct Helm invocation: a fleet of
/// many clusters with the same chart and values runs Helm twice in all
/// (the second run checks that the output is reproducible), not twice per
/// cluster. Shared between the threads that render clusters.
pub struct Renderer {
    tools: Tools,
    helm_renders: Mutex<HashMap<Digest, Arc<HelmSlot>>>,
    /// `kustomize build` output per directory: kustomize is given nothing
    /// but the directory (variables go into its output, afterwards), so
    /// one export builds each directory once.
    kustomize_builds: Mutex<HashMap<PathBuf, Arc<KustomizeSlot>>>,
}

/// One directory's `kustomize build` output, filled by the first thread
/// that needs it while the others wait.
type KustomizeSlot = OnceLock<Result<String, String>>;

/// One Helm invocation's result, filled by the first thread that needs it
/// while the others wait.
type HelmSlot = OnceLock<Result<HelmRender, String>>;

/// A Helm invocation's output and the objects that came out differently
/// on a second run.
#[derive(Debug, Clone)]
struct HelmRender {
    text: String,
    unstable: Vec<(String, String)>,
}

impl Renderer {
    pub fn new(tools: Tools) -> Self {
        Renderer {
            tools,
            helm_renders: Mutex::new(HashMap::new()),
            kustomize_builds: Mutex::new(HashMap::new()),
        }
    }

    /// Renders one source for one cluster and substitutes the cluster's
    /// variables into the output if the source substitutes
    /// (`Source::substitutes_output`).
    pub fn render_source(
        &self,
        fleet: &Fleet,
        cluster: &Cluster,
        source: &Source,
    ) -> Result<Rendered, RenderError> {
        let vars = cluster.variables();
        let fail = |reason: String| RenderError::Render {
            source_name: source.name.clone(),
            cluster: cluster.name.clone(),
            reason,
        };
        let kind = source.kind().map_err(fail)?;
        let mut unstable = Vec::new();
        let raw = match kind {
            SourceKind::Helm(helm) => {
                self.render_helm(fleet, cluster, source, helm, &vars)
                    .map(|r| {
                        unstable = r.unstable;
                        r.text
                    })
            }
            SourceKind::Kustomize(k) => {
                let dir = fleet.path(&substitute(&k.path, &vars).map_err(|e| fail(e.to_string()))?);
                self.kustomize(dir)
            }
            SourceKind::Manifests(m) => {
                let path =
                    fleet.path(&substitute(&m.path, &vars).map_err(|e| fail(e.to_string()))?);
                read_manifests(&path)
            }
        }
        .map_err(fail)?;
        let substitutes = source.substitutes_output(kind);
        let text = if substitutes {
            substitute_documents(&raw, &vars).map_err(|e| fail(format!("substitution: {e}")))?
        } else {
            raw
        };
        Ok(Rendered {
            source: source.name.clone(),
            text,
            unsubstituted_by_default: !substitutes && source.substitute.is_none(),
            unstable,
        })
    }

    /// `kustomize build` of a directory, once per directory.
    fn kustomize(&self, dir: PathBuf) -> Result<String, String> {
        let slot = {
            let mut builds = self
                .kustomize_builds
                .lock()
                .expect("no panics while locked");
            builds.entry(dir.clone()).or_default().clone()
        };
        slot.get_or_init(|| render_kustomize(&dir, &self.tools))
            .clone()
    }

    /// `helm template` with the cluster's variables substituted into the
    /// values files and inline values first, as a Flux user's
    /// HelmRelease values are; run twice per distinct invocation.
    fn render_helm(
        &self,
        fleet: &Fleet,
        cluster: &Cluster,
        source: &Source,
        helm: &HelmSource,
        vars: &BTreeMap<String, String>,
    ) -> Result<HelmRender, String> {
        let invocation = HelmInvocation::new(fleet, cluster, source, helm, vars)?;
        let slot = {
            let mut renders = self.helm_renders.lock().expect("no panics while locked");
            renders.entry(invocation.key()).or_default().clone()
        };
        slot.get_or_init(|| invocation.render_twice(&self.tools, cluster))
            .clone()
    }
}

/// Everything one `helm template` run is given, values already
/// substituted.
struct HelmInvocation {
    args: Vec<OsString>,
    /// Each values file: its path, and its substituted text if substitution
    /// changed it (then Helm reads a private copy instead).
    values: Vec<(PathBuf, Option<String>)>,
    /// Inline values as JSON, for stdin.
    inline: Option<Vec<u8>>,
    /// The files' texts as Helm will see them, for the cache key.
    values_texts: Vec<String>,
}

impl HelmInvocation {
    fn new(
        fleet: &Fleet,
        cluster: &Cluster,
        source: &Source,
        helm: &HelmSource,
        vars: &BTreeMap<String, String>,
    ) -> Result<Self, String> {
        let release = helm
            .release_name
            .clone()
            .unwrap_or_else(|| source.name.clone());
        let chart = if helm.chart.starts_with("oci://") || helm.repo.is_some() {
            OsString::from(&helm.chart)
        } else {
            let local = fleet.path(&helm.chart);
            if !local.exists() {
                return Err(format!("chart {} not found", local.display()));
            }
            local.into_os_string()
        };
        let mut args: Vec<OsString> = vec!["template".into(), release.into(), chart];
        let mut flag = |name: &str, value: &Option<String>| {
            if let Some(v) = value {
                args.push(name.into());
                args.push(v.into());
            }
        };
        flag("--namespace", &cluster.namespace);
        flag("--repo", &helm.repo);
        flag("--version", &helm.version);
        flag("--kube-version", &helm.kube_version);
        if helm.include_crds {
            args.push("--include-crds".into());
        }
        if !helm.include_tests {
            args.push("--skip-tests".into());
        }
        let mut values = Vec::new();
        let mut values_texts = Vec::new();
        for file in &helm.values {
            let path = fleet.path(file);
            if !path.is_file() {
                return Err(format!("values file {} not found", path.display()));
            }
            let text = fs::read_to_string(&path)
                .map_err(|e| format!("reading values file {}: {e}", path.display()))?;
            let substituted = substitute(&text, vars)
                .map_err(|e| format!("values file {}: {e}", path.display()))?;
            let changed = (substituted != text).then(|| substituted.clone());
            values.push((path, changed));
            values_texts.push(substituted);
        }
        let inline = match &helm.inline {
            Some(v) => {
                let v = substitute_json(v, vars).map_err(|e| format!("inline values: {e}"))?;
                Some(serde_json::to_vec(&v).expect("JSON values serialize"))
            }
            None => None,
        };
        Ok(HelmInvocation {
            args,
            values,
            inline,
            values_texts,
        })
    }

    /// Identifies the invocation by what Helm is given, not where from.
    fn key(&self) -> Digest {
        let mut all = Vec::new();
        for part in self
            .args
            .iter()
            .map(|a| a.as_encoded_bytes())
            .chain(self.values_texts.iter().map(|t| t.as_bytes()))
            .chain(self.inline.as_deref())
        {
            all.extend_from_slice(&(part.len() as u64).to_le_bytes());
            all.extend_from_slice(part);
        }
        Digest::of(&all)
    }

    /// Runs Helm twice at once and compares the outputs object by object.
    fn render_twice(&self, tools: &Tools, cluster: &Cluster) -> Result<HelmRender, String> {
        // Substituted values files go to a private directory (mode 0700)
        // that is removed when this returns, whatever happens.
        let scratch = if self.values.iter().any(|(_, text)| text.is_some()) {
            Some(
                tempfile::Builder::new()
                    .prefix("tender-values-")
                    .tempdir()
                    .map_err(|e| format!("creating a private directory for values: {e}"))?,
            )
        } else {
            None
        };
        let mut args = self.args.clone();
        for (i, (path, text)) in self.values.iter().enumerate() {
            args.push("--values".into());
            match (text, &scratch) {
                (Some(text), Some(dir)) => {
                    // Named after the original, so Helm's errors point at it.
                    let name = path
                        .file_name()
                        .map_or_else(|| OsString::from("values.yaml"), |n| n.to_os_string());
                    let mut copy = OsString::from(format!("{i}-"));
                    copy.push(name);
                    let copy = dir.path().join(copy);
                    fs::write(&copy, text)
                        .map_err(|e| format!("writing {}: {e}", copy.display()))?;
                    args.push(copy.into_os_string());
                }
                _ => args.push(path.clone().into_os_string()),
            }
        }
        // Inline values go last, through stdin, so nothing is left on disk.
        if self.inline.is_some() {
            args.push("--values".into());
            args.push("-".into());
        }
        let once = || {
            let mut cmd = Command::new(&tools.helm);
            cmd.args(&args);
            run(cmd, self.inline.as_deref(), "helm")
        };
        let (first, second) = std::thread::scope(|s| {
            let other = s.spawn(once);
            let first = once();
            (first, other.join().expect("helm runner does not panic"))
        });
        let text = first?;
        let again = second?;
        let unstable = if text == again {
            Vec::new()
        } else {
            differing_objects(&text, &again, cluster.namespace.as_deref())
        };
        Ok(HelmRender { text, unstable })
    }
}

/// The objects (`Object::label`, namespace) that two renders of one input
/// do not agree on: changed, or present in only one of them.
fn differing_objects(a: &str, b: &str, namespace: Option<&str>) -> Vec<(String, String)> {
    let by_id = |text: &str| {
        manifest_set::parse("helm", text).map(|mut objects| {
            manifest_set::default_namespace(&mut objects, namespace);
            objects
                .into_iter()
                .map(|o| (o.id(), o))
                .collect::<BTreeMap<String, manifest_set::Object>>()
        })
    };
    match (by_id(a), by_id(b)) {
        (Ok(a), Ok(b)) => {
            let ids: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            ids.into_iter()
                .filter(|id| a.get(*id).map(|o| &o.value) != b.get(*id).map(|o| &o.value))
                .filter_map(|id| a.get(id).or_else(|| b.get(id)))
                .map(|o| (o.label(), o.namespace().to_string()))
                .collect()
        }
        _ => vec![(
            "(the output, which does not parse)".to_string(),
            String::new(),
        )],
    }
}

/// Substitutes into every string of a JSON value (keys too), as Flux
/// substitutes the text of a HelmRelease's inline values.
fn substitute_json(
    value: &serde_json::Value,
    vars: &BTreeMap<String, String>,
) -> Result<serde_json::Value, SubstituteError> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) => Value::String(substitute(s, vars)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| substitute_json(v, vars))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((substitute(k, vars)?, substitute_json(v, vars)?)))
                .collect::<Result<_, SubstituteError>>()?,
        ),
        other => other.clone(),
    })
}

fn render_kustomize(dir: &Path, tools: &Tools) -> Result<String, String> {
    if !dir.is_dir() {
        return Err(format!(
            "kustomization directory {} not found",
            dir.display()
        ));
    }
    let mut cmd;
    let tool;
    match &tools.kustomize {
        Some(k) => {
            cmd = Command::new(k);
            cmd.arg("build").arg(dir);
            tool = "kustomize";
        }
        None => {
            cmd = Command::new(&tools.kubectl);
            cmd.arg("kustomize").arg(dir);
            tool = "kubectl kustomize";
        }
    }
    run(cmd, None, tool)
}

/// A file, or every `.yaml`/`.yml`/`.json` file in a directory tree in name
/// order, joined as one YAML stream.
fn read_manifests(path: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    if path.is_file() {
        files.push(path.to_path_buf());
    } else if path.is_dir() {
        for entry in walkdir::WalkDir::new(path).sort_by_file_name() {
            let entry = entry.map_err(|e| e.to_string())?;
            let p = entry.path();
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
            if entry.file_type().is_file() && matches!(ext, "yaml" | "yml" | "json") {
                files.push(p.to_path_buf());
            }
        }
    } else {
        return Err(format!("manifests path {} not found", path.display()));
    }
    let mut out = String::new();
    for f in files {
        let text = fs::read_to_string(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        out.push_str("---\n");
        out.push_str(&text);
        if !text.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn run(mut cmd: Command, stdin: Option<&[u8]>, tool: &str) -> Result<String, String> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "{tool} not found ({}): install it, or point tender at it (--helm, TENDER_HELM, TENDER_KUSTOMIZE)",
                cmd.get_program().to_string_lossy()
            )
        } else {
            format!("running {tool}: {e}")
        }
    })?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(data)
            .map_err(|e| format!("writing to {tool}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running {tool}: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.trim().lines().last().unwrap_or("").to_string();
        return Err(format!("{tool} failed ({}): {last}", out.status));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{tool} printed output that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differing_objects_names_changed_and_one_sided_objects() {
        let a = "kind: Pod\napiVersion: v1\nmetadata: {name: t-abc}\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: same}\n---\nkind: Secret\napiVersion: v1\nmetadata: {name: s}\ndata: {k: YQ==}\n";
        let b = "kind: Pod\napiVersion: v1\nmetadata: {name: t-xyz}\n---\nkind: ConfigMap\napiVersion: v1\nmetadata: {name: same}\n---\nkind: Secret\napiVersion: v1\nmetadata: {name: s}\ndata: {k: Yg==}\n";
        let mut found = differing_objects(a, b, Some("apps"));
        found.sort();
        let apps = |l: &str| (l.to_string(), "apps".to_string());
        assert_eq!(
            found,
            [apps("/Pod t-abc"), apps("/Pod t-xyz"), apps("/Secret s")]
        );
        assert!(differing_objects(a, a, None).is_empty());
    }

    #[test]
    fn inline_values_get_variables_in_strings_and_keys() {
        let vars: BTreeMap<String, String> =
            [("EP".to_string(), "opc.tcp://x:1".to_string())].into();
        let v = serde_json::json!({"endpoint": "${EP}", "n": 2, "list": ["${EP}", true], "${EP:-k}": "$${KEEP}"});
        assert_eq!(
            substitute_json(&v, &vars).unwrap(),
            serde_json::json!({"endpoint": "opc.tcp://x:1", "n": 2, "list": ["opc.tcp://x:1", true], "opc.tcp://x:1": "${KEEP}"})
        );
        assert!(substitute_json(&serde_json::json!(["${NOPE}"]), &vars).is_err());
    }
}
