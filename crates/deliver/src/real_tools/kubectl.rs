//! The kubectl backend with the real `kubectl` against a minimal fake API
//! server (discovery, one OpenAPI v3 document, apply PATCH): enough for
//! kubectl to run the exact command tender builds. It proves the argv and
//! what kubectl sends (server-side apply as field manager `tender`), not
//! how a real API server answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::KubectlDelivery;
use crate::kubectl::{KubectlCommand, apply_command, client_dry_run_command, run_command};
use serde_json::json;

/// One request the fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    content_type: String,
    body: String,
}

/// A fake kube-apiserver on 127.0.0.1 knowing ConfigMaps and Namespaces.
struct FakeApiServer {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeApiServer {
    fn start() -> FakeApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        let thread = thread::spawn(move || {
            // Bounded: a test never runs a minute.
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, &seen2);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakeApiServer {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Seen>>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let (mut length, mut content_type) = (0usize, String::new());
    loop {
        let mut header = String::new();
        reader.read_line(&mut header)?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            match k.to_ascii_lowercase().as_str() {
                "content-length" => length = v.trim().parse().unwrap_or(0),
                "content-type" => content_type = v.trim().to_string(),
                _ => {}
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        content_type,
        body: body.clone(),
    });
    let (status, reply) = answer(&method, &target, &body);
    let reply = reply.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
        reply.len()
    )?;
    stream.flush()
}

fn answer(method: &str, target: &str, body: &str) -> (u16, serde_json::Value) {
    let path = target.split('?').next().unwrap_or("");
    let patch_op = |kind: &str| {
        json!({"patch": {
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {}
        }})
    };
    match (method, path) {
        ("GET", "/version") => (
            200,
            json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0"}),
        ),
        ("GET", "/api") => (
            200,
            json!({"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ),
        ("GET", "/apis") => (
            200,
            json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
        ),
        ("GET", "/api/v1") => (
            200,
            json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
            {"name": "configmaps", "singularName": "configmap", "namespaced": true, "kind": "ConfigMap",
             "verbs": ["create", "get", "list", "patch", "update"]},
            {"name": "namespaces", "singularName": "namespace", "namespaced": false, "kind": "Namespace",
             "verbs": ["create", "get", "list", "patch", "update"]}]}),
        ),
        ("GET", "/openapi/v3") => (
            200,
            json!({"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=T"}}}),
        ),
        ("GET", "/openapi/v3/api/v1") => (
            200,
            json!({
            "openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1"},
            "paths": {
                "/api/v1/namespaces/{namespace}/configmaps/{name}": patch_op("ConfigMap"),
                "/api/v1/namespaces/{name}": patch_op("Namespace"),
            }}),
        ),
        ("PATCH", _) => {
            let object: serde_json::Value = serde_json::from_str(body).unwrap_or(json!({}));
            (200, object)
        }
        _ => (
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": "not found"}),
        ),
    }
}

/// A kubeconfig whose current context is a dead server and whose context
/// `line-a` is the fake one, so only `--context line-a` can succeed.
fn kubeconfig(dir: &Path, server: &str) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {{server: 'http://127.0.0.1:1'}}
- name: fake
  cluster: {{server: '{server}'}}
users:
- name: u
  user: {{}}
contexts:
- name: default
  context: {{cluster: dead, user: u}}
- name: line-a
  context: {{cluster: fake, user: u}}
current-context: default
"
        ),
    )
    .unwrap();
    path
}

const SET: &str = "---
apiVersion: v1
kind: Namespace
metadata:
  name: line-a
---
apiVersion: v1
data:
  x: '1'
kind: ConfigMap
metadata:
  name: gateway
  namespace: line-a
";

/// Panics with a hint when kubectl is missing: a test never passes by
/// skipping.
fn require_kubectl() {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "kubectl is not installed (this machine image ships one; elsewhere install \
         kubectl >= 1.27: the fake API server offers only OpenAPI v3)"
    );
}

/// Runs a built command with kubectl's caches in `home`.
fn run_isolated(cmd: &KubectlCommand, home: &Path) -> Result<String, crate::DeliverError> {
    let mut command = cmd.command();
    command
        .env("HOME", home)
        .env("KUBECACHEDIR", home.join("cache"))
        .env_remove("KUBECONFIG");
    run_command(command, cmd)
}

#[test]
fn kubectl_server_side_applies_as_tender_with_the_built_argv() {
    require_kubectl();
    let server = FakeApiServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("set.yaml");
    std::fs::write(&file, SET).unwrap();
    let config = KubectlDelivery {
        kubeconfig: Some(kubeconfig(tmp.path(), &server.url())),
        context: Some("line-a".into()),
        kubectl: None,
    };
    let out = run_isolated(&apply_command(&config, &file), tmp.path()).unwrap();
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "namespace/line-a serverside-applied",
            "configmap/gateway serverside-applied"
        ]
    );
    let patches: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.method == "PATCH")
        .collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(
        patches[0].target.starts_with("/api/v1/namespaces/line-a?"),
        "{patches:?}"
    );
    assert!(
        patches[1]
            .target
            .starts_with("/api/v1/namespaces/line-a/configmaps/gateway?")
    );
    for p in &patches {
        assert_eq!(p.content_type, "application/apply-patch+yaml");
        assert!(p.target.contains("fieldManager=tender"), "{}", p.target);
        assert!(
            p.target.contains("force=false"),
            "no --force-conflicts: {}",
            p.target
        );
    }
    assert!(
        patches[1].body.contains("\"gateway\""),
        "{}",
        patches[1].body
    );

    // Without --context the dead default context is used: a clear error.
    let no_context = KubectlDelivery {
        context: None,
        ..config
    };
    let err = run_isolated(&apply_command(&no_context, &file), tmp.path()).unwrap_err();
    assert!(err.to_string().contains("127.0.0.1:1"), "{err}");
}

#[test]
fn kubectl_client_dry_run_needs_discovery_but_changes_nothing() {
    require_kubectl();
    let server = FakeApiServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("set.yaml");
    std::fs::write(&file, SET).unwrap();
    let config = KubectlDelivery {
        kubeconfig: Some(kubeconfig(tmp.path(), &server.url())),
        context: Some("line-a".into()),
        kubectl: None,
    };
    let out = run_isolated(&client_dry_run_command(&config, &file), tmp.path()).unwrap();
    assert!(out.contains("configmap/gateway created (dry run)"), "{out}");
    let seen = server.seen();
    assert!(
        seen.iter().all(|s| s.method == "GET"),
        "a dry run only reads: {seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.target.starts_with("/api/v1")),
        "discovery was needed"
    );

    // With no server at all it cannot even start: kubectl is not offline.
    let dead = KubectlDelivery {
        context: None,
        ..config
    };
    assert!(run_isolated(&client_dry_run_command(&dead, &file), tmp.path()).is_err());
}
