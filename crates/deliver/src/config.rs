//! How one cluster gets its manifests: the `delivery` block the site file
//! carries per cluster (syntax in `docs/delivery.md`). Every backend set is
//! used; none set means the manifest set stays in the state directory only.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::DeliverError;

/// One cluster's delivery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryConfig {
    /// Point every container image at its site location
    /// (`REGISTRY/PATH:TAG@sha256:...`) before delivering. Turn off when
    /// the nodes' container runtime mirrors the original registries to the
    /// site (containerd `hosts.toml`, k3s `registries.yaml`).
    #[serde(default = "default_true")]
    pub rewrite_images: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oci: Option<OciDelivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitDelivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirDelivery>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubectl: Option<KubectlDelivery>,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            rewrite_images: true,
            oci: None,
            git: None,
            directory: None,
            kubectl: None,
        }
    }
}

fn default_true() -> bool {
    true
}

/// Publish the manifests as an OCI artifact into the site's image target
/// (the embedded store `tender serve` serves, or the site registry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OciDelivery {
    /// Repository path on the site registry, e.g. `gitops/plant-001-line-a`.
    pub repository: String,
    #[serde(default)]
    pub mode: OciMode,
}

/// Which agent reads the artifact (they accept different layer types).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OciMode {
    /// `flux push artifact`'s format, for a Flux `OCIRepository`.
    #[default]
    Flux,
    /// An ORAS-style artifact an Argo CD `oci://` source accepts without
    /// widening the repo-server's `--oci-layer-media-types`.
    Argo,
}

/// Commit the manifests to a branch of a git repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GitDelivery {
    /// A bare repository path, `file://` URL, or a git server URL.
    pub repo: String,
    pub branch: String,
    /// The directory of the branch tender owns (replaced wholesale on each
    /// delivery); `.` is the whole branch.
    #[serde(default = "default_dot")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_email: Option<String>,
}

fn default_dot() -> String {
    ".".to_string()
}

/// Write the manifests into a local directory (swapped in whole).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DirDelivery {
    pub path: PathBuf,
}

/// Apply with `kubectl apply --server-side` (only when asked to run).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubectlDelivery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubeconfig: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The `kubectl` binary (default: `kubectl` on `PATH`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubectl: Option<PathBuf>,
}

impl DeliveryConfig {
    /// Checks what serde cannot: repository paths, branch-relative paths.
    pub fn validate(&self) -> Result<(), DeliverError> {
        if let Some(oci) = &self.oci {
            validate_repository(&oci.repository)?;
        }
        if let Some(git) = &self.git {
            git.checked_subdir()?;
        }
        if let Some(dir) = &self.directory
            && dir.path.as_os_str().is_empty()
        {
            return Err(DeliverError::Config("directory path is empty".into()));
        }
        Ok(())
    }
}

impl GitDelivery {
    /// Checks the repository and branch, and returns `path` as a clean
    /// relative directory (`None` for the branch root).
    pub(crate) fn checked_subdir(&self) -> Result<Option<String>, DeliverError> {
        if self.repo.is_empty() || self.repo.starts_with('-') {
            return Err(DeliverError::Config(format!(
                "git repo {:?} must be a path or URL",
                self.repo
            )));
        }
        if self.branch.is_empty() || self.branch.starts_with('-') {
            return Err(DeliverError::Config(format!(
                "git branch {:?} is not a branch name",
                self.branch
            )));
        }
        normalize_path(&self.path)
    }
}

/// `path` as a clean relative directory (`None` for the branch root).
fn normalize_path(path: &str) -> Result<Option<String>, DeliverError> {
    let bad = || {
        DeliverError::Config(format!(
            "git path {path:?} must be a relative directory inside the repository (or \".\")"
        ))
    };
    if path.starts_with('/') || path.contains('\\') {
        return Err(bad());
    }
    let mut parts = Vec::new();
    for component in path.split('/') {
        match component {
            "" | "." => continue,
            ".." => return Err(bad()),
            c if c == ".git" || c.chars().any(|ch| ch.is_control()) => return Err(bad()),
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

/// A repository path as the distribution spec allows it: lowercase
/// components of `[a-z0-9]` separated by `.`, `_`, `__` or `-`, joined by `/`.
pub fn validate_repository(repository: &str) -> Result<(), DeliverError> {
    let bad = |why: &str| {
        DeliverError::Config(format!(
            "oci repository {repository:?} {why} (expected a path like gitops/plant-001-line-a)"
        ))
    };
    if repository.is_empty() {
        return Err(bad("is empty"));
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
            return Err(bad(
                "has an empty component or one not starting and ending alphanumeric",
            ));
        }
        if !bytes
            .iter()
            .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(bad(
                "may only have lowercase letters, digits, '.', '_', '-' and '/'",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_paths_are_clean_relative_directories() {
        assert_eq!(normalize_path(".").unwrap(), None);
        assert_eq!(normalize_path("").unwrap(), None);
        assert_eq!(
            normalize_path("./clusters//line-a/").unwrap().as_deref(),
            Some("clusters/line-a")
        );
        for bad in ["../x", "a/../../b", "/abs", ".git", "a/.git/hooks"] {
            assert!(normalize_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_every_backend_with_defaults() {
        let yaml = "
oci:
  repository: gitops/plant-001-line-a
git:
  repo: /srv/git/fleet.git
  branch: plant-001-line-a
directory:
  path: /var/lib/gitops/line-a
kubectl:
  context: line-a
";
        let config: DeliveryConfig = serde_saphyr::from_str(yaml).unwrap();
        assert!(config.rewrite_images);
        assert_eq!(config.oci.as_ref().unwrap().mode, OciMode::Flux);
        assert_eq!(config.git.as_ref().unwrap().path, ".");
        assert_eq!(
            config.kubectl.as_ref().unwrap().context.as_deref(),
            Some("line-a")
        );
        config.validate().unwrap();

        let argo: DeliveryConfig = serde_saphyr::from_str(
            "rewriteImages: false\noci: {repository: gitops/a, mode: argo}\n",
        )
        .unwrap();
        assert!(!argo.rewrite_images);
        assert_eq!(argo.oci.unwrap().mode, OciMode::Argo);
        assert_eq!(
            DeliveryConfig::default(),
            serde_saphyr::from_str("{}").unwrap()
        );
    }

    #[test]
    fn refuses_unknown_fields_and_bad_values() {
        assert!(
            serde_saphyr::from_str::<DeliveryConfig>("oci: {repository: a, tag: x}\n").is_err()
        );
        assert!(
            serde_saphyr::from_str::<DeliveryConfig>("oci: {repository: a, mode: helm}\n").is_err()
        );
        assert!(serde_saphyr::from_str::<DeliveryConfig>("gitt: {}\n").is_err());
        for repo in ["", "Gitops/a", "gitops//a", "/gitops", "gitops/a-", "a b"] {
            assert!(validate_repository(repo).is_err(), "{repo:?}");
        }
        validate_repository("gitops/plant-001.line_a").unwrap();
        let git: DeliveryConfig =
            serde_saphyr::from_str("git: {repo: /r.git, branch: main, path: ../out}\n").unwrap();
        assert!(git.validate().is_err());
        let git: DeliveryConfig =
            serde_saphyr::from_str("git: {repo: --upload-pack=x, branch: main}\n").unwrap();
        assert!(git.validate().is_err());
    }
}
