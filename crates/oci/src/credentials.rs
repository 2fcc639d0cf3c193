//! Registry credentials from docker's `config.json`, as `docker login`
//! writes it: `auths.<server>.auth` (base64 `user:password`), or
//! `username`/`password`, or a credential helper (`credHelpers.<server>`,
//! else `credsStore`) run as `docker-credential-<helper> get` with the
//! server on stdin. The `docker_credential` crate does the reading and the
//! helper protocol; this module picks the file, maps Docker Hub to the key
//! docker uses for it, and turns "nothing configured" into anonymous access.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use docker_credential::{CredentialRetrievalError, DockerCredential};

use crate::error::OciError;
use crate::reference::DEFAULT_REGISTRY;

/// The key docker stores Docker Hub credentials under.
pub const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// How to authenticate to one registry.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Credential {
    /// No credentials: anonymous access (tokens are still fetched where a
    /// registry asks for them, without a user).
    #[default]
    Anonymous,
    /// User and password (or a robot account's name and secret), sent to
    /// the token service or as HTTP Basic.
    Basic { username: String, password: String },
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Anonymous => write!(f, "Anonymous"),
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
        }
    }
}

/// Where a [`crate::RegistryClient`] looks credentials up. The caller
/// finds the user's docker config (the CLI from `$DOCKER_CONFIG` or
/// `$HOME`): a library reads no environment.
#[derive(Debug, Clone, Default)]
pub enum CredentialSource {
    /// This docker-style `config.json`; no file means anonymous.
    DockerConfigFile(PathBuf),
    /// Always anonymous.
    #[default]
    Anonymous,
}

/// Fixed credentials per registry, consulted before the [`CredentialSource`]
/// (e.g. from command-line flags).
pub type CredentialOverrides = BTreeMap<String, Credential>;

impl CredentialSource {
    /// The credential for `registry` (a reference's registry,
    /// e.g. `docker.io`, `harbor.site.local:8443`).
    pub fn lookup(&self, registry: &str) -> Result<Credential, OciError> {
        match self {
            CredentialSource::Anonymous => Ok(Credential::Anonymous),
            CredentialSource::DockerConfigFile(path) => lookup_in_docker_config(path, registry),
        }
    }
}

/// The server name docker's config uses for `registry`.
pub fn docker_config_key(registry: &str) -> &str {
    if registry == DEFAULT_REGISTRY {
        DOCKER_HUB_CONFIG_KEY
    } else {
        registry
    }
}

/// Looks `registry` up in the docker config at `path`. A missing file, or
/// nothing configured for the registry, is anonymous; so is a helper that
/// answers "credentials not found". An unreadable file or a failing helper
/// is an error (silently going anonymous would turn it into a confusing 401
/// later).
pub fn lookup_in_docker_config(path: &Path, registry: &str) -> Result<Credential, OciError> {
    let error = |reason: String| OciError::Credentials {
        registry: registry.to_string(),
        reason,
    };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Credential::Anonymous),
        Err(e) => return Err(error(format!("cannot open {}: {e}", path.display()))),
    };
    let server = docker_config_key(registry);
    match docker_credential::get_credential_from_reader(BufReader::new(file), server) {
        Ok(DockerCredential::UsernamePassword(username, password)) => {
            Ok(Credential::Basic { username, password })
        }
        Ok(DockerCredential::IdentityToken(_)) => Err(error(format!(
            "{} holds an identity token (OAuth refresh token) for {server}; tender supports \
             user/password and robot-account credentials only (docker login -u ... -p ...)",
            path.display()
        ))),
        Err(CredentialRetrievalError::NoCredentialConfigured) => Ok(Credential::Anonymous),
        Err(CredentialRetrievalError::HelperFailure {
            helper,
            stdout,
            stderr,
        }) => {
            let said = format!("{} {}", stdout.trim(), stderr.trim());
            if said.to_ascii_lowercase().contains("credentials not found") {
                Ok(Credential::Anonymous)
            } else {
                Err(error(format!(
                    "credential helper {helper} failed for {server}: {}",
                    said.trim()
                )))
            }
        }
        Err(CredentialRetrievalError::HelperCommunicationError) => Err(error(format!(
            "cannot run the credential helper that {} names for {server} \
             (is docker-credential-<helper> on PATH?)",
            path.display()
        ))),
        Err(CredentialRetrievalError::ConfigReadError) => Err(error(format!(
            "{} is not a valid docker config file",
            path.display()
        ))),
        Err(other) => Err(error(format!("{} for {server}: {other}", path.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn config(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn auths_base64_and_plain_fields() {
        // "robot$site:s3cret:with:colons"
        let (_dir, path) = config(
            r#"{"auths":{
                "harbor.site.local":{"auth":"cm9ib3Qkc2l0ZTpzM2NyZXQ6d2l0aDpjb2xvbnM="},
                "https://index.docker.io/v1/":{"auth":"aHViOnB3"},
                "plain.example":{"username":"u","password":"p"}}}"#,
        );
        assert_eq!(
            lookup_in_docker_config(&path, "harbor.site.local").unwrap(),
            Credential::Basic {
                username: "robot$site".into(),
                password: "s3cret:with:colons".into()
            }
        );
        assert_eq!(
            lookup_in_docker_config(&path, "docker.io").unwrap(),
            Credential::Basic {
                username: "hub".into(),
                password: "pw".into()
            }
        );
        assert_eq!(
            lookup_in_docker_config(&path, "plain.example").unwrap(),
            Credential::Basic {
                username: "u".into(),
                password: "p".into()
            }
        );
        assert_eq!(
            lookup_in_docker_config(&path, "other.example").unwrap(),
            Credential::Anonymous
        );
    }

    #[test]
    fn missing_file_is_anonymous_broken_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            lookup_in_docker_config(&dir.path().join("none.json"), "r.example").unwrap(),
            Credential::Anonymous
        );
        let (_dir, path) = config("{not json");
        let err = lookup_in_docker_config(&path, "r.example").unwrap_err();
        assert!(
            err.to_string().contains("not a valid docker config"),
            "{err}"
        );
    }

    #[test]
    fn missing_helper_is_an_error_naming_the_registry() {
        let (_dir, path) = config(r#"{"credHelpers":{"r.example":"tender-test-no-such-helper"}}"#);
        let err = lookup_in_docker_config(&path, "r.example").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("credentials for r.example:"), "{text}");
        // Other registries do not touch the helper.
        assert_eq!(
            lookup_in_docker_config(&path, "other.example").unwrap(),
            Credential::Anonymous
        );
    }

    #[test]
    fn identity_tokens_are_refused_clearly() {
        let (_dir, path) = config(r#"{"auths":{"acr.example":{"identitytoken":"tok"}}}"#);
        let err = lookup_in_docker_config(&path, "acr.example").unwrap_err();
        assert!(err.to_string().contains("identity token"), "{err}");
    }

    #[test]
    fn debug_redacts_the_password() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{c:?}").contains("secret"));
    }
}
