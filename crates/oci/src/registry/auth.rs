//! Who we are to a registry: one [`Host`] per registry with its HTTP
//! client and credentials, and the token flow (oci-client) after a 401.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use oci_client::RegistryOperation;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;
use reqwest::Url;
use reqwest::header::HeaderValue;

use crate::credentials::Credential;
use crate::error::OciError;
use crate::reference::api_host_for;

use super::options::RegistrySettings;
use super::transport::{error_chain, transport_error};
use super::{Inner, USER_AGENT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Op {
    Pull,
    Push,
}

impl From<Op> for RegistryOperation {
    fn from(op: Op) -> Self {
        match op {
            Op::Pull => RegistryOperation::Pull,
            Op::Push => RegistryOperation::Push,
        }
    }
}

/// One registry: its HTTP client, oci-client (for auth), credentials and
/// cached `Authorization` headers.
pub(super) struct Host {
    pub(super) registry: String,
    pub(super) base: Url,
    pub(super) http: reqwest::Client,
    pub(super) settings: RegistrySettings,
    /// Built on first use: each client loads the system's root
    /// certificates, tens of milliseconds an anonymous pull never needs.
    pub(super) oci: Mutex<Option<Arc<oci_client::Client>>>,
    pub(super) auth: RegistryAuth,
    pub(super) basic: Option<HeaderValue>,
    pub(super) headers: Mutex<HashMap<(String, Op), HeaderValue>>,
}

impl Host {
    pub(super) fn authorization(&self, repository: &str, op: Op) -> Option<HeaderValue> {
        let headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        headers
            .get(&(repository.to_string(), op))
            .or_else(|| match op {
                // A push token covers pulls too.
                Op::Pull => headers.get(&(repository.to_string(), Op::Push)),
                Op::Push => None,
            })
            .cloned()
    }

    pub(super) fn set_authorization(&self, repository: &str, op: Op, value: Option<HeaderValue>) {
        let mut headers = self.headers.lock().unwrap_or_else(|p| p.into_inner());
        match value {
            Some(value) => headers.insert((repository.to_string(), op), value),
            None => headers.remove(&(repository.to_string(), op)),
        };
    }
}

impl Inner {
    /// The host of `registry`, set up on first use. Built under the lock,
    /// so concurrent first requests share one host (one connection pool,
    /// one credential lookup) instead of each building their own.
    pub(super) fn host(&self, registry: &str) -> Result<Arc<Host>, OciError> {
        let mut hosts = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(host) = hosts.get(registry) {
            return Ok(Arc::clone(host));
        }
        let host = Arc::new(self.new_host(registry)?);
        hosts.insert(registry.to_string(), Arc::clone(&host));
        Ok(host)
    }

    pub(super) fn new_host(&self, registry: &str) -> Result<Host, OciError> {
        let settings = self.options.settings_for(registry);
        let api_host = api_host_for(registry);
        let scheme = if settings.plain_http { "http" } else { "https" };
        let base = Url::parse(&format!("{scheme}://{api_host}/")).map_err(|e| {
            OciError::InvalidReference {
                input: registry.to_string(),
                reason: format!("not usable in a URL: {e}"),
            }
        })?;
        let mut http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.read_timeout)
            .tls_danger_accept_invalid_certs(settings.insecure_skip_tls_verify);
        if settings.plain_http {
            // No TLS to verify: skip loading the system's root certificates.
            http = http.tls_certs_only([]);
        }
        let http = http.build().map_err(|e| OciError::Transport {
            what: format!("setting up an HTTP client for {registry}"),
            detail: error_chain(&e),
        })?;
        let credential = match self.options.credential_overrides.get(registry) {
            Some(credential) => credential.clone(),
            None => self.options.credentials.lookup(registry)?,
        };
        let (auth, basic) = match credential {
            Credential::Anonymous => (RegistryAuth::Anonymous, None),
            Credential::Basic { username, password } => {
                let basic = basic_header(&username, &password);
                (RegistryAuth::Basic(username, password), Some(basic))
            }
        };
        Ok(Host {
            registry: registry.to_string(),
            base,
            http,
            settings,
            oci: Mutex::new(None),
            auth,
            basic,
            headers: Mutex::new(HashMap::new()),
        })
    }

    /// The host's oci-client, for the token flow; built on the first 401.
    pub(super) fn token_client(&self, host: &Host) -> Result<Arc<oci_client::Client>, OciError> {
        let mut oci = host.oci.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = oci.as_ref() {
            return Ok(Arc::clone(client));
        }
        let settings = host.settings;
        let config = ClientConfig {
            protocol: if settings.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            accept_invalid_certificates: settings.insecure_skip_tls_verify,
            platform_resolver: None,
            connect_timeout: Some(self.options.connect_timeout),
            read_timeout: Some(self.options.read_timeout),
            user_agent: USER_AGENT,
            ..ClientConfig::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| OciError::Auth {
            registry: host.registry.clone(),
            reason: format!("cannot set up the token client: {e}"),
        })?;
        Ok(Arc::clone(oci.insert(Arc::new(client))))
    }
    /// The token flow (oci-client), after a 401.
    pub(super) async fn authenticate(
        &self,
        host: &Host,
        repository: &str,
        op: Op,
    ) -> Result<(), OciError> {
        let reference = oci_client::Reference::with_tag(
            host.registry.clone(),
            repository.to_string(),
            "latest".to_string(),
        );
        let oci = self.token_client(host)?;
        let header = match oci.auth(&reference, &host.auth, op.into()).await {
            Ok(Some(token)) => Some(HeaderValue::from_str(&format!("Bearer {token}")).map_err(
                |_| OciError::Auth {
                    registry: host.registry.clone(),
                    reason: "the token service returned a token that is not a valid header".into(),
                },
            )?),
            // No bearer challenge: HTTP Basic with the credentials, if any.
            Ok(None) => host.basic.clone(),
            Err(e) => return Err(map_oci_error(&host.registry, e)),
        };
        host.set_authorization(repository, op, header);
        Ok(())
    }
}

pub(super) fn basic_header(username: &str, password: &str) -> HeaderValue {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    let mut value =
        HeaderValue::from_str(&format!("Basic {encoded}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

pub(super) fn map_oci_error(
    registry: &str,
    error: oci_client::errors::OciDistributionError,
) -> OciError {
    use oci_client::errors::OciDistributionError as E;
    match error {
        E::RequestError(e) => transport_error(&format!("{registry}: authenticating"), &e),
        E::ServerError { code, message, .. } => OciError::Status {
            what: format!("{registry}: authenticating"),
            status: code,
            message,
            retry_after: None,
        },
        other => OciError::Auth {
            registry: registry.to_string(),
            reason: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_header_is_standard_base64() {
        assert_eq!(basic_header("user", "pass"), "Basic dXNlcjpwYXNz");
        assert!(basic_header("user", "pass").is_sensitive());
    }
}
