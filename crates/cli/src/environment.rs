//! Every environment variable tender's behaviour depends on, resolved in
//! one place. The library crates take paths and options and never read the
//! environment, so they behave the same inside tests, threads and other
//! programs; the command line decides here what a user's environment means.

use std::path::{Path, PathBuf};

use tender_oci::{ClientOptions, CredentialSource};
use tender_render::render::Tools;

/// The hub state directory: `--state-dir`, else `$TENDER_HUB_STATE`, else
/// `$XDG_STATE_HOME/tender/hub`, else `~/.local/state/tender/hub`.
pub fn hub_state_dir(flag: Option<PathBuf>) -> PathBuf {
    if let Some(dir) = flag.or_else(|| std::env::var_os("TENDER_HUB_STATE").map(PathBuf::from)) {
        return dir;
    }
    let base = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/state")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("tender/hub")
}

/// Registry credentials from docker's `config.json`:
/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json` (a
/// missing file means anonymous), as `docker login` writes them.
pub fn credentials() -> CredentialSource {
    let path = match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker").join("config.json"),
            None => return CredentialSource::Anonymous,
        },
    };
    CredentialSource::DockerConfigFile(path)
}

/// Registry client options with the user's credentials.
pub fn client_options() -> ClientOptions {
    ClientOptions {
        credentials: credentials(),
        ..ClientOptions::default()
    }
}

/// The rendering tools: `helm` from `--helm`, `$TENDER_HELM` or PATH;
/// `kustomize` from `$TENDER_KUSTOMIZE` or PATH, else `kubectl kustomize`.
pub fn tools(helm_flag: Option<PathBuf>) -> Tools {
    let helm = helm_flag
        .or_else(|| std::env::var_os("TENDER_HELM").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("helm"));
    let kustomize = std::env::var_os("TENDER_KUSTOMIZE")
        .map(PathBuf::from)
        .or_else(|| on_path("kustomize"));
    Tools {
        helm,
        kustomize,
        kubectl: PathBuf::from("kubectl"),
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
