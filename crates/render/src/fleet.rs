//! The fleet spec (`fleet.yaml`, documented in `docs/fleet-spec.md`): which
//! clusters exist, which sources each renders, which extra images to carry
//! and where to pull each registry's images from.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use serde::Deserialize;
use tender_format::manifest::is_token;

use crate::error::RenderError;

pub const API_VERSION: &str = "tender.dev/v1alpha1";
pub const KIND: &str = "Fleet";

/// A loaded, checked fleet spec. Relative paths resolve against `base_dir`.
#[derive(Debug, Clone)]
pub struct Fleet {
    pub spec: FleetSpec,
    pub base_dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FleetSpec {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    #[serde(default)]
    pub channel: Option<String>,
    pub clusters: Vec<Cluster>,
    #[serde(default)]
    pub sources: Vec<Source>,
    /// Images no manifest names but every cluster's site should hold.
    #[serde(default)]
    pub images: Vec<String>,
    /// Registry host → where to pull it from: another registry host
    /// (`mirror.hub.example:5000`) or an OCI layout (`oci-layout:PATH`).
    #[serde(default)]
    pub mirrors: BTreeMap<String, String>,
    /// Per-registry connection options (for sources and mirrors).
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryOptions>,
    /// Rollout waves, in order; a later wave's exports are gated on the
    /// receipts of the wave before it (`waves.rs`).
    #[serde(default)]
    pub waves: Vec<Wave>,
}

/// A rollout wave: the clusters named plus those of the tiers named.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Wave {
    pub name: String,
    #[serde(default)]
    pub tiers: Vec<String>,
    #[serde(default)]
    pub clusters: Vec<String>,
    /// What the wave before must show first. Not allowed on the first
    /// wave; on a later one, left out means a soak of zero.
    #[serde(default)]
    pub gate: Option<Gate>,
}

impl Wave {
    pub fn selects(&self, cluster: &Cluster) -> bool {
        self.clusters.contains(&cluster.name) || self.tiers.contains(&cluster.tier)
    }

    /// The gate's soak in seconds (0 without a gate).
    pub fn soak_seconds(&self) -> u64 {
        self.gate
            .as_ref()
            .and_then(|g| parse_duration(&g.soak))
            .unwrap_or(0)
    }
}

/// A gate between a wave and the wave before it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Gate {
    /// How long every cluster of the wave before must have run the release
    /// (`30m`, `24h`, `2d`, `1d12h`; `0s` for "has reported it").
    pub soak: String,
}

/// `1d12h30m15s`-style durations: one or more number-unit pairs with
/// units `d`, `h`, `m`, `s`, each unit at most once, largest first.
pub fn parse_duration(text: &str) -> Option<u64> {
    let mut rest = text;
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let unit = match rest.as_bytes().get(digits)? {
            b'd' => 86_400,
            b'h' => 3_600,
            b'm' => 60,
            b's' => 1,
            _ => return None,
        };
        if unit >= last_unit {
            return None;
        }
        last_unit = unit;
        total = total.checked_add(n.checked_mul(unit)?)?;
        rest = &rest[digits + 1..];
    }
    Some(total)
}

/// `90061` → `25h1m1s`, `0` → `0s`: durations as people write them
/// (hours, not days, so a soak of `24h` reads back as written).
pub fn format_duration(seconds: u64) -> String {
    if seconds == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    let mut rest = seconds;
    for (unit, name) in [(3_600, 'h'), (60, 'm'), (1, 's')] {
        if rest >= unit {
            out.push_str(&format!("{}{name}", rest / unit));
            rest %= unit;
        }
    }
    out
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryOptions {
    #[serde(default)]
    pub plain_http: bool,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Cluster {
    pub name: String,
    pub site: String,
    pub tier: String,
    /// Default namespace for namespaced objects that do not name one.
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, Scalar>,
}

/// A variable value: YAML may write it as a string, number or boolean.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Scalar {
    String(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn as_string(&self) -> String {
        match self {
            Scalar::String(s) => s.clone(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Source {
    pub name: String,
    #[serde(default)]
    pub helm: Option<HelmSource>,
    #[serde(default)]
    pub kustomize: Option<PathSource>,
    #[serde(default)]
    pub manifests: Option<PathSource>,
    #[serde(default)]
    pub select: Select,
    /// Substitute the cluster's variables into the rendered output. Unset:
    /// the kind's default (`SourceKind::substitutes_by_default`).
    #[serde(default)]
    pub substitute: Option<bool>,
}

/// What kind of source, once checked that exactly one is given.
#[derive(Debug, Clone, Copy)]
pub enum SourceKind<'a> {
    Helm(&'a HelmSource),
    Kustomize(&'a PathSource),
    Manifests(&'a PathSource),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HelmSource {
    /// A chart directory, a `.tgz`, an `oci://` reference, or a chart name
    /// in the HTTP repository `repo`.
    pub chart: String,
    #[serde(default)]
    pub repo: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    /// Release name (default: the source name).
    #[serde(default)]
    pub release_name: Option<String>,
    /// Values files, relative to the fleet file, merged in order.
    #[serde(default)]
    pub values: Vec<String>,
    /// Values given inline, merged after the files.
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
    #[serde(default = "yes")]
    pub include_crds: bool,
    #[serde(default)]
    pub kube_version: Option<String>,
    /// Render the chart's test hooks too (tender passes `--skip-tests`
    /// otherwise, as Flux's helm-controller does).
    #[serde(default)]
    pub include_tests: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PathSource {
    /// Relative to the fleet file; `${VAR}` is substituted per cluster.
    pub path: String,
}

/// Which clusters a source goes to: those named, plus those of the tiers
/// named. An empty selector selects every cluster.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Select {
    #[serde(default)]
    pub clusters: Vec<String>,
    #[serde(default)]
    pub tiers: Vec<String>,
}

impl Select {
    pub fn matches(&self, cluster: &Cluster) -> bool {
        (self.clusters.is_empty() && self.tiers.is_empty())
            || self.clusters.contains(&cluster.name)
            || self.tiers.contains(&cluster.tier)
    }
}

impl SourceKind<'_> {
    /// Whether output is substituted when the source does not say: yes for
    /// kustomize and raw manifests (a Flux Kustomization with
    /// `postBuild.substitute`), no for Helm (Flux never substitutes a
    /// HelmRelease's output; per-cluster values go into the values instead).
    pub fn substitutes_by_default(self) -> bool {
        !matches!(self, SourceKind::Helm(_))
    }
}

impl Source {
    /// Whether the rendered output gets the cluster's variables.
    pub fn substitutes_output(&self, kind: SourceKind<'_>) -> bool {
        self.substitute
            .unwrap_or_else(|| kind.substitutes_by_default())
    }

    pub fn kind(&self) -> Result<SourceKind<'_>, String> {
        match (&self.helm, &self.kustomize, &self.manifests) {
            (Some(h), None, None) => Ok(SourceKind::Helm(h)),
            (None, Some(k), None) => Ok(SourceKind::Kustomize(k)),
            (None, None, Some(m)) => Ok(SourceKind::Manifests(m)),
            _ => Err(format!(
                "source {} needs exactly one of helm, kustomize and manifests",
                self.name
            )),
        }
    }
}

impl Cluster {
    /// The substitution variables: `vars` plus the implicit CLUSTER_NAME,
    /// SITE, TIER and NAMESPACE (which `vars` cannot override).
    pub fn variables(&self) -> BTreeMap<String, String> {
        let mut vars: BTreeMap<String, String> = self
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.as_string()))
            .collect();
        vars.insert("CLUSTER_NAME".into(), self.name.clone());
        vars.insert("SITE".into(), self.site.clone());
        vars.insert("TIER".into(), self.tier.clone());
        if let Some(ns) = &self.namespace {
            vars.insert("NAMESPACE".into(), ns.clone());
        }
        vars
    }
}

/// A YAML error as one line, `line L column C: what`, for after the file's
/// name. The parser's own display draws a source snippet headed
/// `error:` and `--> <input>` (it is never told the file's name), which
/// repeated tender's `error:` and lost the file.
///
/// A type error ("invalid boolean") does not name its field, so the
/// offending line follows, quoted: `...: invalid boolean at line 9, column
/// 17 (in `    substitute: maybe`)`.
fn yaml_error(e: &serde_saphyr::Error, text: &str) -> String {
    let message = e.render_with_options(serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    });
    let line = e
        .location()
        .and_then(|l| usize::try_from(l.line()).ok())
        .and_then(|n| text.lines().nth(n.checked_sub(1)?))
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty());
    match line {
        Some(line) => format!("{message} (in `{line}`)"),
        None => message,
    }
}

impl Fleet {
    pub fn load(path: &Path) -> Result<Self, RenderError> {
        let text = fs::read_to_string(path).map_err(|e| RenderError::io_at("reading", path, e))?;
        let bad = |reason: String| RenderError::Fleet {
            path: path.to_path_buf(),
            reason,
        };
        let spec: FleetSpec =
            serde_saphyr::from_str(&text).map_err(|e| bad(yaml_error(&e, &text)))?;
        let base_dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        let fleet = Fleet { spec, base_dir };
        fleet.validate().map_err(bad)?;
        Ok(fleet)
    }

    fn validate(&self) -> Result<(), String> {
        let s = &self.spec;
        if s.api_version != API_VERSION || s.kind != KIND {
            return Err(format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, found {} {}",
                s.api_version, s.kind
            ));
        }
        if s.clusters.is_empty() {
            return Err("no clusters".into());
        }
        let mut names = BTreeSet::new();
        for c in &s.clusters {
            for (what, value) in [
                ("cluster name", &c.name),
                ("site", &c.site),
                ("tier", &c.tier),
            ] {
                if !is_token(value) {
                    return Err(format!(
                        "{what} {value:?} must be letters, digits, '.', '_' or '-'"
                    ));
                }
            }
            if !names.insert(c.name.as_str()) {
                return Err(format!("cluster {} is listed twice", c.name));
            }
        }
        let mut sources = BTreeSet::new();
        for src in &s.sources {
            if !is_token(&src.name) {
                return Err(format!("source name {:?} is not a token", src.name));
            }
            if !sources.insert(src.name.as_str()) {
                return Err(format!("source {} is listed twice", src.name));
            }
            src.kind()?;
            for c in &src.select.clusters {
                if !names.contains(c.as_str()) {
                    return Err(format!("source {} selects unknown cluster {c}", src.name));
                }
            }
        }
        if let Some(channel) = &s.channel
            && !is_token(channel)
        {
            return Err(format!("channel {channel:?} is not a token"));
        }
        for (host, target) in &s.mirrors {
            if target.trim().is_empty() {
                return Err(format!("mirror for {host} is empty"));
            }
        }
        self.validate_waves(&names)
    }

    /// Waves: unique token names, each selecting a cluster, every cluster
    /// in exactly one wave, and no gate before the first wave.
    fn validate_waves(&self, names: &BTreeSet<&str>) -> Result<(), String> {
        let waves = &self.spec.waves;
        if waves.is_empty() {
            return Ok(());
        }
        let mut seen = BTreeSet::new();
        for (i, w) in waves.iter().enumerate() {
            if !is_token(&w.name) {
                return Err(format!("wave name {:?} is not a token", w.name));
            }
            if !seen.insert(w.name.as_str()) {
                return Err(format!("wave {} is listed twice", w.name));
            }
            if let Some(c) = w.clusters.iter().find(|c| !names.contains(c.as_str())) {
                return Err(format!("wave {} names unknown cluster {c}", w.name));
            }
            if !self.spec.clusters.iter().any(|c| w.selects(c)) {
                return Err(format!("wave {} selects no cluster", w.name));
            }
            if let Some(gate) = &w.gate {
                if i == 0 {
                    return Err(format!(
                        "wave {} is the first wave; a gate needs a wave before it",
                        w.name
                    ));
                }
                if parse_duration(&gate.soak).is_none() {
                    return Err(format!(
                        "wave {}: soak {:?} is not a duration such as 30m, 24h, 2d or 1d12h",
                        w.name, gate.soak
                    ));
                }
            }
        }
        for c in &self.spec.clusters {
            let of: Vec<&str> = waves
                .iter()
                .filter(|w| w.selects(c))
                .map(|w| w.name.as_str())
                .collect();
            match of.as_slice() {
                [_] => {}
                [] => return Err(format!("cluster {} is in no wave", c.name)),
                several => {
                    return Err(format!(
                        "cluster {} is in more than one wave: {}",
                        c.name,
                        several.join(", ")
                    ));
                }
            }
        }
        Ok(())
    }

    /// The index of the wave a cluster is in (`None` without waves).
    pub fn wave_of(&self, cluster: &Cluster) -> Option<usize> {
        self.spec.waves.iter().position(|w| w.selects(cluster))
    }

    /// The clusters of wave `index`, in spec order.
    pub fn wave_clusters(&self, index: usize) -> Vec<&Cluster> {
        let wave = &self.spec.waves[index];
        self.spec
            .clusters
            .iter()
            .filter(|c| wave.selects(c))
            .collect()
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.spec.clusters.iter().find(|c| c.name == name)
    }

    /// The sources a cluster renders, in spec order.
    pub fn sources_for<'a>(&'a self, cluster: &'a Cluster) -> impl Iterator<Item = &'a Source> {
        self.spec
            .sources
            .iter()
            .filter(|s| s.select.matches(cluster))
    }

    /// Resolves a spec-relative path.
    pub fn path(&self, relative: &str) -> PathBuf {
        self.base_dir.join(relative)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_fleet_loads_and_selects_by_tier_and_name() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/fleet/fleet.yaml");
        let fleet = Fleet::load(&path).unwrap();
        let a = fleet.cluster("plant-001-line-a").unwrap();
        let names: Vec<&str> = fleet.sources_for(a).map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["line-hmi", "historian", "plant-policies"]);
        let assembly = fleet.cluster("plant-002-assembly").unwrap();
        let names: Vec<&str> = fleet
            .sources_for(assembly)
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["line-hmi", "historian"]);
        let vars = a.variables();
        assert_eq!(vars["CLUSTER_NAME"], "plant-001-line-a");
        assert_eq!(vars["TIER"], "canary");
        assert_eq!(vars["REGION"], "eu-north");
    }

    #[test]
    fn durations_read_and_print_as_people_write_them() {
        for (text, seconds) in [
            ("0s", 0),
            ("30m", 1800),
            ("24h", 86_400),
            ("25h1m1s", 90_061),
        ] {
            assert_eq!(parse_duration(text), Some(seconds), "{text}");
            assert_eq!(format_duration(seconds), text);
        }
        assert_eq!(parse_duration("1d12h"), Some(129_600));
        assert_eq!(parse_duration("2d"), Some(172_800));
        for bad in [
            "",
            "24",
            "h",
            "1h1d",
            "1h1h",
            "1w",
            "-1h",
            "1.5h",
            "9999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.yaml");
        let head = "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: f\n";
        for (body, needle) in [
            ("clusters: []\n", "no clusters"),
            (
                "clusters:\n  - {name: a, site: s, tier: t}\n  - {name: a, site: s, tier: t}\n",
                "listed twice",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    manifests: {path: m}\n    helm: {chart: c}\n",
                "exactly one",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: t}\nsources:\n  - name: x\n    manifests: {path: m}\n    select: {clusters: [b]}\n",
                "unknown cluster b",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: t, colour: red}\n",
                "colour",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: c}\n  - {name: b, site: s, tier: p}\nwaves:\n  - {name: one, tiers: [c]}\n",
                "cluster b is in no wave",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: c}\nwaves:\n  - {name: one, tiers: [c]}\n  - {name: two, clusters: [a]}\n",
                "cluster a is in more than one wave: one, two",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: c}\nwaves:\n  - {name: one, tiers: [c], gate: {soak: 1h}}\n",
                "wave one is the first wave",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: c}\n  - {name: b, site: s, tier: p}\nwaves:\n  - {name: one, tiers: [c]}\n  - {name: two, tiers: [p], gate: {soak: 1w}}\n",
                "soak \"1w\" is not a duration",
            ),
            (
                "clusters:\n  - {name: a, site: s, tier: c}\nwaves:\n  - {name: one, tiers: [c]}\n  - {name: two, tiers: [x]}\n",
                "wave two selects no cluster",
            ),
        ] {
            fs::write(&path, format!("{head}{body}")).unwrap();
            let err = Fleet::load(&path).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
