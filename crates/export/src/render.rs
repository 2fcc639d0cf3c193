//! Rendering a cluster's sources to YAML text, the way Argo CD's
//! repo-server does: `helm template` for charts, `kustomize build` (or
//! `kubectl kustomize`) for kustomizations, files as they are for raw
//! manifests. The tools are run, never re-implemented.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::ExportError;
use crate::fleet::{Cluster, Fleet, HelmSource, Source, SourceKind};
use crate::substitute::substitute;

/// Which binaries to run.
#[derive(Debug, Clone)]
pub struct Tools {
    /// `helm` (from `--helm`, `$TENDER_HELM`, or PATH).
    pub helm: PathBuf,
    /// `kustomize` if on PATH (or `$TENDER_KUSTOMIZE`); otherwise `kubectl kustomize`.
    pub kustomize: Option<PathBuf>,
    pub kubectl: PathBuf,
}

impl Tools {
    /// Tools from flags and environment, falling back to PATH lookups.
    pub fn detect(helm: Option<PathBuf>) -> Self {
        let helm = helm
            .or_else(|| std::env::var_os("TENDER_HELM").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("helm"));
        let kustomize = std::env::var_os("TENDER_KUSTOMIZE")
            .map(PathBuf::from)
            .or_else(|| which("kustomize"));
        Tools {
            helm,
            kustomize,
            kubectl: PathBuf::from("kubectl"),
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// One source rendered for one cluster, after substitution.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub source: String,
    pub text: String,
}

/// Renders one source for one cluster and substitutes the cluster's
/// variables into the output.
pub fn render_source(
    fleet: &Fleet,
    cluster: &Cluster,
    source: &Source,
    tools: &Tools,
) -> Result<Rendered, ExportError> {
    let vars = cluster.variables();
    let fail = |reason: String| ExportError::Render {
        source_name: source.name.clone(),
        cluster: cluster.name.clone(),
        reason,
    };
    let kind = source.kind().map_err(fail)?;
    let raw = match kind {
        SourceKind::Helm(helm) => render_helm(fleet, cluster, source, helm, tools),
        SourceKind::Kustomize(k) => {
            let dir = fleet.path(&substitute(&k.path, &vars).map_err(|e| fail(e.to_string()))?);
            render_kustomize(&dir, tools)
        }
        SourceKind::Manifests(m) => {
            let path = fleet.path(&substitute(&m.path, &vars).map_err(|e| fail(e.to_string()))?);
            read_manifests(&path)
        }
    }
    .map_err(fail)?;
    let text = substitute(&raw, &vars).map_err(|e| fail(format!("substitution: {e}")))?;
    Ok(Rendered {
        source: source.name.clone(),
        text,
    })
}

fn render_helm(
    fleet: &Fleet,
    cluster: &Cluster,
    source: &Source,
    helm: &HelmSource,
    tools: &Tools,
) -> Result<String, String> {
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
    let mut cmd = Command::new(&tools.helm);
    cmd.arg("template").arg(&release).arg(chart);
    if let Some(ns) = &cluster.namespace {
        cmd.args(["--namespace", ns]);
    }
    if let Some(repo) = &helm.repo {
        cmd.args(["--repo", repo]);
    }
    if let Some(version) = &helm.version {
        cmd.args(["--version", version]);
    }
    if let Some(kube) = &helm.kube_version {
        cmd.args(["--kube-version", kube]);
    }
    if helm.include_crds {
        cmd.arg("--include-crds");
    }
    for values in &helm.values {
        let path = fleet.path(values);
        if !path.is_file() {
            return Err(format!("values file {} not found", path.display()));
        }
        cmd.arg("--values").arg(path);
    }
    // Inline values go last, through stdin, so nothing is left on disk.
    let inline = helm
        .inline
        .as_ref()
        .map(|v| serde_json::to_vec(v).expect("JSON values serialize"));
    if inline.is_some() {
        cmd.args(["--values", "-"]);
    }
    run(cmd, inline.as_deref(), "helm")
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
