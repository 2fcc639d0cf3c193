//! What the server reports while it runs: one [`LogEvent::Request`] per
//! request, [`LogEvent::Loaded`] when the store's `index.json` is (re)read,
//! [`LogEvent::Warning`] for anything an operator should look at (a damaged
//! store, a repository path shadowed by another registry's).
//!
//! The library does not print: the caller passes a [`Logger`] and decides
//! the format. `Display` is the plain one-line form; `Serialize` the JSON
//! form (`{"event":"request",...}`).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

/// Receives every event. Called on the server's threads; keep it quick.
pub type Logger = Arc<dyn Fn(&LogEvent) + Send + Sync>;

/// Something worth a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum LogEvent {
    /// `index.json` was read: at start, and again whenever it changed.
    Loaded {
        repositories: usize,
        tags: usize,
        reload: bool,
    },
    /// The store or a connection has a problem the operator should know of.
    Warning { message: String },
    /// One request, logged when its response body ended (sent, or the
    /// connection closed).
    Request(RequestLog),
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RequestLog {
    pub remote: SocketAddr,
    pub method: String,
    /// Path and query, as the client sent them.
    pub target: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    /// Whether the whole body was sent (false: the client went away).
    pub complete: bool,
    /// From the request head to the end of the response body.
    pub millis: u64,
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogEvent::Loaded {
                repositories,
                tags,
                reload,
            } => write!(
                f,
                "{} index.json: {repositories} repositories, {tags} tags",
                if *reload { "reloaded" } else { "loaded" }
            ),
            LogEvent::Warning { message } => write!(f, "warning: {message}"),
            LogEvent::Request(r) => {
                write!(
                    f,
                    "{} \"{} {}\" {} {}B {}ms",
                    r.remote, r.method, r.target, r.status, r.bytes, r.millis
                )?;
                if !r.complete {
                    write!(f, " (incomplete)")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_json_forms() {
        let event = LogEvent::Request(RequestLog {
            remote: "127.0.0.1:40000".parse().unwrap(),
            method: "GET".into(),
            target: "/v2/plant/x/blobs/sha256:ab".into(),
            status: 206,
            bytes: 10,
            complete: false,
            millis: 3,
        });
        assert_eq!(
            event.to_string(),
            "127.0.0.1:40000 \"GET /v2/plant/x/blobs/sha256:ab\" 206 10B 3ms (incomplete)"
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["event"], "request");
        assert_eq!(json["status"], 206);
        assert_eq!(json["remote"], "127.0.0.1:40000");
        let warning = LogEvent::Warning {
            message: "x".into(),
        };
        assert_eq!(serde_json::to_value(&warning).unwrap()["event"], "warning");
    }
}
