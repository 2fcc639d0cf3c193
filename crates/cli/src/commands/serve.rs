//! `tender serve`: the embedded store as a read-only OCI registry, until
//! SIGINT or SIGTERM. One log line per request on stderr (plain, or JSON
//! with --json-log); nothing on stdout.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tender_serve::{LogEvent, Logger, ServeOptions, Server, Signal, TlsFiles};

use crate::args::ServeArgs;

pub fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    let json = args.json_log;
    let store = match args.store.take() {
        Some(store) => store,
        None => tender_import::Site::load(&args.site)?.store_dir(),
    };
    let logger: Logger = Arc::new(move |event: &LogEvent| log(json, event));
    // clap makes --tls-cert and --tls-key go together.
    let tls = match (args.tls_cert, args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        _ => None,
    };
    let options = ServeOptions {
        tls,
        logger: Some(logger),
        ..ServeOptions::default()
    };
    let handle = Server::bind(&store, args.listen, options)?;
    note(
        json,
        "listening",
        &format!("serving {} read-only on {}", store.display(), handle.url()),
        serde_json::json!({ "url": handle.url(), "store": store }),
    );
    let signal = match handle.wait_for_signal()? {
        Signal::Interrupt => "SIGINT",
        Signal::Terminate => "SIGTERM",
    };
    note(
        json,
        "stopping",
        &format!("{signal}: finishing requests in flight, then stopping"),
        serde_json::json!({ "signal": signal }),
    );
    handle.shutdown();
    Ok(())
}

fn log(json: bool, event: &LogEvent) {
    if json {
        let mut value = serde_json::to_value(event).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("ts".into(), timestamp());
        }
        eprintln!("{value}");
    } else {
        eprintln!("tender serve: {event}");
    }
}

/// A line of the command's own (not the library's).
fn note(json: bool, event: &str, text: &str, mut fields: serde_json::Value) {
    if json {
        if let Some(object) = fields.as_object_mut() {
            object.insert("event".into(), event.into());
            object.insert("ts".into(), timestamp());
        }
        eprintln!("{fields}");
    } else {
        eprintln!("tender serve: {text}");
    }
}

/// Seconds since the epoch, with milliseconds.
fn timestamp() -> serde_json::Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    serde_json::json!((now.as_millis() as f64) / 1000.0)
}
