//! Sending requests: URLs, the one re-authentication on 401, retries
//! with backoff, and turning HTTP and connection failures into
//! [`OciError`]s that name the cause.

use std::future::Future;
use std::io;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode, Url};

use crate::error::OciError;

use super::Inner;
use super::auth::{Host, Op};

pub(super) const ERROR_BODY_LIMIT: u64 = 16 * 1024;

pub(super) type Build<'a> =
    &'a (dyn Fn(&reqwest::Client) -> Result<RequestBuilder, OciError> + Sync);

impl Inner {
    pub(super) fn url(&self, host: &Host, path: &str) -> Url {
        host.base
            .join(&format!("v2/{path}"))
            .expect("joining a validated path")
    }
    /// Sends a request built by `build`, with the cached authorization; on
    /// 401 authenticates once and sends it again. Any status is returned.
    pub(super) async fn send(
        &self,
        host: &Host,
        repository: &str,
        op: Op,
        what: &str,
        build: Build<'_>,
    ) -> Result<Response, OciError> {
        let mut authenticated = false;
        loop {
            let mut request = build(&host.http)?;
            if let Some(value) = host.authorization(repository, op) {
                request = request.header(AUTHORIZATION, value);
            }
            let response = request
                .send()
                .await
                .map_err(|e| transport_error(what, &e))?;
            if response.status() == StatusCode::UNAUTHORIZED && !authenticated {
                authenticated = true;
                self.authenticate(host, repository, op).await?;
                continue;
            }
            return Ok(response);
        }
    }

    pub(super) async fn retrying<T, F, Fut>(
        &self,
        what: &str,
        mut attempt: F,
    ) -> Result<T, OciError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OciError>>,
    {
        let policy = self.options.retry;
        let attempts = policy.attempts.max(1);
        let mut tried = 1;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() => {
                    if tried >= attempts {
                        return Err(if attempts == 1 {
                            error
                        } else {
                            OciError::RetriesExhausted {
                                what: what.to_string(),
                                attempts,
                                last: Box::new(error),
                            }
                        });
                    }
                    let delay = policy.delay(tried, error.retry_after());
                    self.observer().on_retry(what, tried, &error, delay);
                    tokio::time::sleep(delay).await;
                    tried += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

pub(super) fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
}

/// Reads a response body, failing past `limit` bytes.
pub(super) async fn read_limited(
    what: &str,
    response: Response,
    limit: u64,
) -> Result<Vec<u8>, OciError> {
    if let Some(length) = response.content_length()
        && length > limit
    {
        return Err(OciError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let mut body = response.bytes_stream();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| transport_error(what, &e))?;
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(OciError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The error for a response with an unexpected status; reads (a bounded
/// part of) the body for the registry's error message.
pub(super) async fn status_error(what: &str, response: Response) -> OciError {
    let status = response.status();
    let retry_after = header_text(response.headers(), RETRY_AFTER.as_str())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = read_limited(what, response, ERROR_BODY_LIMIT)
        .await
        .unwrap_or_default();
    let message = error_message(&body).unwrap_or_else(|| {
        status
            .canonical_reason()
            .unwrap_or("unexpected status")
            .to_string()
    });
    match status.as_u16() {
        404 => OciError::NotFound {
            what: what.to_string(),
        },
        401 | 403 => OciError::Denied {
            what: what.to_string(),
            status: status.as_u16(),
            message,
        },
        code => OciError::Status {
            what: what.to_string(),
            status: code,
            message,
            retry_after,
        },
    }
}

/// `CODE: message` of a distribution error body, or its first line.
pub(super) fn error_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body)
        && !envelope.errors.is_empty()
    {
        let parts: Vec<String> = envelope
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect();
        return Some(parts.join("; "));
    }
    let text = String::from_utf8_lossy(body);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    Some(line.chars().take(200).collect())
}

/// A reqwest error as [`OciError::Tls`] or [`OciError::Transport`], with
/// its whole cause chain (reqwest's own message hides the cause).
pub(super) fn transport_error(what: &str, error: &reqwest::Error) -> OciError {
    let detail = error_chain(error);
    match rustls_cause(error) {
        Some(tls) => {
            let hint = match tls {
                rustls::Error::InvalidMessage(_) => {
                    " (the registry may speak plain HTTP: set plain_http for it)"
                }
                rustls::Error::InvalidCertificate(_) => {
                    " (install its CA on this machine, or set insecure_skip_tls_verify for it)"
                }
                _ => "",
            };
            OciError::Tls {
                what: what.to_string(),
                detail: format!("{tls}{hint}"),
            }
        }
        // The chain above the resolver's words is reqwest and hyper
        // restating the URL: the host and the resolver's reason say it all.
        None if is_name_resolution(error) => OciError::NameResolution {
            what: what.to_string(),
            host: error
                .url()
                .and_then(|u| u.host_str())
                .unwrap_or("the registry")
                .to_string(),
            detail: root_cause(error),
        },
        None => OciError::Transport {
            what: what.to_string(),
            detail,
        },
    }
}

/// Whether a connection failed because the host name did not resolve:
/// hyper's connector wraps every resolver failure in a `ConnectError`
/// whose message is exactly "dns error" (the type is private, so the
/// message is its only mark; the resolver's own text below it differs by
/// libc). Opened like [`rustls_cause`].
pub(super) fn is_name_resolution(error: &(dyn std::error::Error + 'static)) -> bool {
    if error.to_string() == "dns error" {
        return true;
    }
    if let Some(io) = error.downcast_ref::<io::Error>()
        && let Some(inner) = io.get_ref()
        && is_name_resolution(inner)
    {
        return true;
    }
    error.source().is_some_and(is_name_resolution)
}

/// The rustls error behind a connection failure, if any. TLS errors arrive
/// as `io::Error(Other)` around `io::Error(InvalidData)` around
/// `rustls::Error`, and `io::Error::source()` skips what it wraps, so each
/// io::Error is opened with `get_ref`.
pub(super) fn rustls_cause<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    if let Some(tls) = error.downcast_ref::<rustls::Error>() {
        return Some(tls);
    }
    if let Some(io) = error.downcast_ref::<io::Error>()
        && let Some(inner) = io.get_ref()
        && let Some(tls) = rustls_cause(inner)
    {
        return Some(tls);
    }
    error.source().and_then(rustls_cause)
}

/// The innermost error's words.
pub(super) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

pub(super) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        let text = e.to_string();
        if parts.last().is_none_or(|last| !last.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_from_distribution_bodies() {
        assert_eq!(
            error_message(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#)
                .unwrap(),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(
            error_message(b"\n404 page not found\n").unwrap(),
            "404 page not found"
        );
        assert_eq!(error_message(b""), None);
    }
}
