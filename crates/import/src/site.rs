//! The site file (`site.yaml`, documented in `docs/site.md`): who this site
//! is, whom it trusts, where its state lives and where images go.

use std::fs;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use serde::Deserialize;
use tender_deliver::DeliveryConfig;
use tender_format::manifest::is_token;
use tender_oci::{ClientOptions, RegistryClient, RegistrySettings};

use crate::error::ImportError;

pub const API_VERSION: &str = "tender.dev/v1alpha1";
pub const KIND: &str = "Site";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SiteFile {
    api_version: String,
    kind: String,
    name: String,
    clusters: Vec<String>,
    trust_policy: PathBuf,
    #[serde(default)]
    state_dir: Option<PathBuf>,
    #[serde(default)]
    registry: Option<RegistryTarget>,
    /// How cluster nodes reach the embedded store (`tender serve`), e.g.
    /// `registry.plant.local:5000`: images are rewritten to it.
    #[serde(default)]
    registry_host: Option<String>,
    /// The site's own key, for signing receipts to the hub.
    #[serde(default)]
    site_key: Option<PathBuf>,
    /// Where the Prometheus textfile goes (default `<stateDir>/tender.prom`).
    #[serde(default)]
    metrics_file: Option<PathBuf>,
    /// Per-cluster delivery of manifests (`docs/delivery.md`).
    #[serde(default)]
    delivery: BTreeMap<String, DeliveryConfig>,
    /// The machine's clock is trustworthy: also judge freshness by it
    /// (bundle-spec §11.7). Off by default: air-gapped clocks drift.
    #[serde(default)]
    trusted_clock: bool,
}

/// A registry images are pushed into (Harbor, distribution, ...).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryTarget {
    /// `host[:port]`.
    pub url: String,
    #[serde(default)]
    pub plain_http: bool,
    #[serde(default)]
    pub insecure_skip_tls_verify: bool,
    /// Put every repository under this path (`mirror` → `host/mirror/plant/app`).
    #[serde(default)]
    pub prefix: Option<String>,
}

/// Where images go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageTarget {
    /// The embedded OCI layout store under the state directory.
    Embedded,
    Registry(RegistryTarget),
}

/// A loaded, checked site file. Paths are resolved against its directory.
#[derive(Debug, Clone)]
pub struct Site {
    pub name: String,
    pub registry_host: Option<String>,
    pub site_key: Option<PathBuf>,
    /// The Prometheus textfile written after every import and rollback
    /// (`metrics.rs`).
    pub metrics_file: PathBuf,
    pub delivery: BTreeMap<String, DeliveryConfig>,
    pub clusters: Vec<String>,
    pub trust_policy: PathBuf,
    pub state_dir: PathBuf,
    pub target: ImageTarget,
    /// Whether freshness is also judged by this machine's clock.
    pub trusted_clock: bool,
}

impl Site {
    pub fn load(path: &Path) -> Result<Self, ImportError> {
        let bad = |reason: String| ImportError::Site {
            path: path.to_path_buf(),
            reason,
        };
        let text = fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: SiteFile = serde_saphyr::from_str(&text).map_err(|e| {
            // One line, no `error:` snippet naming `<input>`: the message
            // follows the file's name.
            bad(e.render_with_options(serde_saphyr::render_options! {
                snippets: serde_saphyr::SnippetMode::Off,
            }))
        })?;
        if file.api_version != API_VERSION || file.kind != KIND {
            return Err(bad(format!(
                "expected apiVersion {API_VERSION} and kind {KIND}, found {} {}",
                file.api_version, file.kind
            )));
        }
        for name in std::iter::once(&file.name).chain(&file.clusters) {
            if !is_token(name) {
                return Err(bad(format!(
                    "{name:?} must be letters, digits, '.', '_' or '-'"
                )));
            }
        }
        if file.clusters.is_empty() {
            return Err(bad("a site has at least one cluster".into()));
        }
        if let Some(r) = &file.registry {
            if r.url.contains('/') || r.url.is_empty() {
                return Err(bad(format!("registry url {:?} must be host[:port]", r.url)));
            }
            if let Some(prefix) = &r.prefix
                && (prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains(".."))
            {
                return Err(bad(format!(
                    "registry prefix {prefix:?} must be a relative path"
                )));
            }
        }
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut delivery = file.delivery;
        for (cluster, config) in &mut delivery {
            if !file.clusters.contains(cluster) {
                return Err(bad(format!("delivery for unknown cluster {cluster}")));
            }
            config
                .validate()
                .map_err(|e| bad(format!("delivery for {cluster}: {e}")))?;
            // Paths in the site file are relative to it, like every other.
            // A local path (not `scheme://…` nor scp-style `user@host:path`).
            if let Some(git) = &mut config.git
                && !git.repo.contains(':')
            {
                git.repo = base.join(&git.repo).to_string_lossy().into_owned();
            }
            if let Some(dir) = &mut config.directory {
                dir.path = base.join(&dir.path);
            }
            if let Some(kubectl) = &mut config.kubectl
                && let Some(kubeconfig) = &mut kubectl.kubeconfig
            {
                *kubeconfig = base.join(&*kubeconfig);
            }
        }
        let state_dir = base.join(file.state_dir.unwrap_or_else(|| PathBuf::from("state")));
        if let Some(m) = &file.metrics_file
            && (m.as_os_str().is_empty() || m.file_name().is_none())
        {
            return Err(bad(format!("metricsFile {m:?} must name a file")));
        }
        Ok(Site {
            trusted_clock: file.trusted_clock,
            metrics_file: match file.metrics_file {
                Some(m) => base.join(m),
                None => state_dir.join("tender.prom"),
            },
            registry_host: file
                .registry_host
                .or_else(|| file.registry.as_ref().map(|r| r.url.clone())),
            site_key: file.site_key.map(|k| base.join(k)),
            delivery,
            name: file.name,
            clusters: file.clusters,
            trust_policy: base.join(file.trust_policy),
            state_dir,
            target: match file.registry {
                Some(r) => ImageTarget::Registry(r),
                None => ImageTarget::Embedded,
            },
        })
    }

    /// Refuses a site key that others on this machine may read or write,
    /// before anything at the site changes: an import that commits and
    /// then cannot sign its receipt leaves the hub without word of it.
    /// A missing key is left to the receipt (a warning after the import).
    pub fn check_site_key(&self) -> Result<(), crate::ImportError> {
        match self
            .site_key
            .as_deref()
            .and_then(tender_trust::keys::too_open)
        {
            Some(open) => Err(tender_trust::TrustError::KeyTooOpen(open).into()),
            None => Ok(()),
        }
    }

    /// The embedded store's directory.
    pub fn store_dir(&self) -> PathBuf {
        self.state_dir.join("store")
    }

    /// A client for the site registry, when images go to one: `client`'s
    /// settings (credentials, retries, observer) with the site file's
    /// `plainHttp` and `insecureSkipTlsVerify` for the registry on top.
    pub fn registry_client(
        &self,
        client: &ClientOptions,
    ) -> Result<Option<RegistryClient>, ImportError> {
        let ImageTarget::Registry(target) = &self.target else {
            return Ok(None);
        };
        let mut client = client.clone();
        client.registries.insert(
            target.url.clone(),
            RegistrySettings {
                plain_http: target.plain_http,
                insecure_skip_tls_verify: target.insecure_skip_tls_verify,
            },
        );
        Ok(Some(RegistryClient::new(client)?))
    }
}
