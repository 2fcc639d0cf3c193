//! What a [`RegistryClient`](super::RegistryClient) can be told: per-registry TLS settings,
//! credentials, retries, concurrency, timeouts.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::credentials::{CredentialOverrides, CredentialSource};
use crate::observer::{NoopObserver, Observer};
use crate::retry::RetryPolicy;

/// Blobs up to this size are uploaded in one PUT; larger ones in PATCH
/// chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// Blobs in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Per-registry connection settings, with Zarf's flag semantics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RegistrySettings {
    /// Speak plain HTTP instead of HTTPS (`--plain-http`).
    pub plain_http: bool,
    /// Use HTTPS but accept any certificate (`--insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
}

impl RegistrySettings {
    pub fn plain_http() -> Self {
        RegistrySettings {
            plain_http: true,
            insecure_skip_tls_verify: false,
        }
    }

    pub fn insecure_skip_tls_verify() -> Self {
        RegistrySettings {
            plain_http: false,
            insecure_skip_tls_verify: true,
        }
    }
}

/// Everything a [`RegistryClient`](super::RegistryClient) can be told.
#[derive(Clone)]
pub struct ClientOptions {
    /// Settings for registries not in `registries`.
    pub default_settings: RegistrySettings,
    /// Settings per registry, keyed as references name it (`host[:port]`).
    pub registries: BTreeMap<String, RegistrySettings>,
    /// Where credentials come from.
    pub credentials: CredentialSource,
    /// Fixed credentials per registry, consulted first.
    pub credential_overrides: CredentialOverrides,
    pub retry: RetryPolicy,
    /// Blobs transferred at once (at least 1).
    pub concurrency: usize,
    /// See [`DEFAULT_CHUNK_SIZE`].
    pub chunk_size: u64,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    /// Re-hash a blob already in the store before skipping its download
    /// (a damaged one is fetched again).
    pub verify_existing_blobs: bool,
    pub observer: Arc<dyn Observer>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            default_settings: RegistrySettings::default(),
            registries: BTreeMap::new(),
            credentials: CredentialSource::default(),
            credential_overrides: BTreeMap::new(),
            retry: RetryPolicy::default(),
            concurrency: DEFAULT_CONCURRENCY,
            chunk_size: DEFAULT_CHUNK_SIZE,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            verify_existing_blobs: true,
            observer: Arc::new(NoopObserver),
        }
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("default_settings", &self.default_settings)
            .field("registries", &self.registries)
            .field("credentials", &self.credentials)
            .field("credential_overrides", &self.credential_overrides)
            .field("retry", &self.retry)
            .field("concurrency", &self.concurrency)
            .field("chunk_size", &self.chunk_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .field("verify_existing_blobs", &self.verify_existing_blobs)
            .finish_non_exhaustive()
    }
}

impl ClientOptions {
    /// Sets the settings of one registry (`host[:port]`).
    pub fn registry(mut self, registry: &str, settings: RegistrySettings) -> Self {
        self.registries.insert(registry.to_string(), settings);
        self
    }

    /// The settings that apply to `registry`.
    pub fn settings_for(&self, registry: &str) -> RegistrySettings {
        self.registries
            .get(registry)
            .copied()
            .unwrap_or(self.default_settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_pick_per_registry_settings() {
        let options =
            ClientOptions::default().registry("127.0.0.1:5000", RegistrySettings::plain_http());
        assert!(options.settings_for("127.0.0.1:5000").plain_http);
        assert!(!options.settings_for("other:5000").plain_http);
    }
}
