//! A fault-injecting HTTP/1.1 reverse proxy, for retry tests.
//!
//! Put it between a client under test and a [`crate::Registry`]: the first
//! N requests whose path matches get an injected error status, later ones
//! are forwarded unchanged, and the counters tell how often each happened.
//! Every connection carries exactly one request (`Connection: close` both
//! ways), which keeps the proxy small and the counts exact.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_HEAD: usize = 64 * 1024;

/// Which requests fail, how often, and with what response.
#[derive(Debug, Clone)]
pub struct Fault {
    status: u16,
    times: usize,
    path_contains: Vec<String>,
    method: Option<String>,
    headers: Vec<(String, String)>,
}

impl Fault {
    /// Answer the first `times` matching requests with `status` (e.g. 500,
    /// 401, 429). With no pattern added, every request matches.
    pub fn new(status: u16, times: usize) -> Fault {
        Fault {
            status,
            times,
            path_contains: Vec::new(),
            method: None,
            headers: Vec::new(),
        }
    }

    /// Also match requests whose path contains `pattern` (e.g. `"/blobs/"`).
    pub fn path_contains(mut self, pattern: &str) -> Fault {
        self.path_contains.push(pattern.to_string());
        self
    }

    /// Only match requests with this method (e.g. `"PUT"`).
    pub fn method(mut self, method: &str) -> Fault {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Add a header to injected responses (e.g. `Retry-After: 0` for 429,
    /// `WWW-Authenticate` for 401).
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    fn matches(&self, method: &str, path: &str) -> bool {
        let method_ok = self.method.as_deref().is_none_or(|m| m == method);
        let path_ok =
            self.path_contains.is_empty() || self.path_contains.iter().any(|p| path.contains(p));
        method_ok && path_ok
    }
}

/// One request the proxy saw, in arrival order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    pub path: String,
    /// The injected status, or `None` if the request was forwarded.
    pub injected: Option<u16>,
}

struct Shared {
    upstream: String,
    fault: Fault,
    remaining: AtomicUsize,
    failed: AtomicUsize,
    forwarded: AtomicUsize,
    log: Mutex<Vec<ProxiedRequest>>,
}

/// The proxy; see the module docs. Stops accepting when dropped.
pub struct FaultyProxy {
    port: u16,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultyProxy {
    /// Listens on a free 127.0.0.1 port and forwards to `upstream`
    /// (`host:port`, e.g. [`crate::Registry::host`]).
    pub fn start(upstream: &str, fault: Fault) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the proxy port");
        let port = listener.local_addr().expect("proxy address").port();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            remaining: AtomicUsize::new(fault.times),
            fault,
            failed: AtomicUsize::new(0),
            forwarded: AtomicUsize::new(0),
            log: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let shared = Arc::clone(&shared);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let shared = Arc::clone(&shared);
                    thread::spawn(move || {
                        // A broken client connection only ends that request.
                        let _ = handle(stream, &shared);
                    });
                }
            })
        };
        FaultyProxy {
            port,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `127.0.0.1:PORT`, to use in place of the upstream host.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// Requests answered with the injected status.
    pub fn failed_count(&self) -> usize {
        self.shared.failed.load(Ordering::SeqCst)
    }

    /// Requests passed on to the upstream.
    pub fn forwarded_count(&self) -> usize {
        self.shared.forwarded.load(Ordering::SeqCst)
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.shared.log.lock().expect("proxy log").clone()
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so the thread sees the stop flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

struct RequestHead {
    method: String,
    path: String,
    version: String,
    headers: Vec<(String, String)>,
}

impl RequestHead {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn read_head(reader: &mut impl BufRead) -> io::Result<RequestHead> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if line.is_empty() {
            break;
        }
        lines.push(line);
    }
    let request_line = lines.first().cloned().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "bad request line",
        ));
    };
    let headers = lines[1..]
        .iter()
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(RequestHead {
        method: method.to_string(),
        path: path.to_string(),
        version: version.to_string(),
        headers,
    })
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    extra: &[(String, String)],
    body: &str,
) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Injected",
    }
}

fn handle(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(client.try_clone()?);
    let head = read_head(&mut reader)?;

    let chunked = head
        .header("Transfer-Encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"));
    if chunked {
        return respond(
            &mut client,
            501,
            &[],
            r#"{"errors":[{"code":"UNSUPPORTED","message":"faulty proxy: chunked request bodies are not supported"}]}"#,
        );
    }
    let length: usize = match head.header("Content-Length") {
        Some(value) => value
            .parse()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?,
        None => 0,
    };
    let expects_continue = head
        .header("Expect")
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));

    let inject = shared.fault.matches(&head.method, &head.path)
        && shared
            .remaining
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
    shared.log.lock().expect("proxy log").push(ProxiedRequest {
        method: head.method.clone(),
        path: head.path.clone(),
        injected: inject.then_some(shared.fault.status),
    });

    if inject {
        shared.failed.fetch_add(1, Ordering::SeqCst);
        // Drain the body first (unless the client is still waiting for
        // 100-continue), so closing does not reset the connection before
        // the client reads the response.
        if !expects_continue {
            io::copy(&mut (&mut reader).take(length as u64), &mut io::sink())?;
        }
        let body = format!(
            r#"{{"errors":[{{"code":"UNKNOWN","message":"faulty proxy: injected {}"}}]}}"#,
            shared.fault.status
        );
        respond(
            &mut client,
            shared.fault.status,
            &shared.fault.headers,
            &body,
        )?;
        let _ = client.shutdown(Shutdown::Write);
        return Ok(());
    }

    shared.forwarded.fetch_add(1, Ordering::SeqCst);
    if expects_continue {
        client.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
    }
    let mut upstream = TcpStream::connect(&shared.upstream)?;
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut out = format!("{} {} {}\r\n", head.method, head.path, head.version);
    for (name, value) in &head.headers {
        let hop_by_hop = ["connection", "keep-alive", "proxy-connection", "expect"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h));
        if !hop_by_hop {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    upstream.write_all(out.as_bytes())?;
    io::copy(&mut (&mut reader).take(length as u64), &mut upstream)?;
    upstream.flush()?;
    // The upstream closes after its response (we asked it to), so relaying
    // bytes to EOF passes the response on unchanged, framing included.
    io::copy(&mut upstream, &mut client)?;
    client.flush()?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use crate::http::{http_get, request};

    #[test]
    fn first_n_matching_requests_fail_then_forward() {
        let registry = Registry::start();
        let proxy = FaultyProxy::start(&registry.host(), Fault::new(500, 2).path_contains("/v2/"));

        for expected in [500, 500, 200, 200] {
            let response = http_get(&proxy.host(), "/v2/").unwrap();
            assert_eq!(response.status, expected);
        }
        assert_eq!(proxy.failed_count(), 2);
        assert_eq!(proxy.forwarded_count(), 2);
        let injected: Vec<_> = proxy.requests().iter().map(|r| r.injected).collect();
        assert_eq!(injected, [Some(500), Some(500), None, None]);
    }

    #[test]
    fn non_matching_requests_pass_and_bodies_are_forwarded() {
        let registry = Registry::start();
        let proxy = FaultyProxy::start(
            &registry.host(),
            Fault::new(429, 1)
                .path_contains("/blobs/")
                .method("PUT")
                .header("Retry-After", "0"),
        );

        // Not a PUT: forwarded although the path matches.
        let started = request(&proxy.host(), "POST", "/v2/demo/blobs/uploads/", &[], b"").unwrap();
        assert_eq!(started.status, 202);
        let location = started.header("location").unwrap().to_string();
        // The registry builds Location from the Host header, so it points
        // back at the proxy.
        assert!(location.contains(&proxy.host()), "{location}");

        let blob = b"hello blob";
        let digest = crate::sha256_digest(blob);
        let upload_path = location.split_once(&proxy.host()).unwrap().1;
        let separator = if upload_path.contains('?') { '&' } else { '?' };
        let put_path = format!("{upload_path}{separator}digest={digest}");
        let headers = [("Content-Type", "application/octet-stream")];

        let refused = request(&proxy.host(), "PUT", &put_path, &headers, blob).unwrap();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.header("retry-after"), Some("0"));

        let stored = request(&proxy.host(), "PUT", &put_path, &headers, blob).unwrap();
        assert_eq!(
            stored.status,
            201,
            "{}",
            String::from_utf8_lossy(&stored.body)
        );
        let fetched = http_get(&registry.host(), &format!("/v2/demo/blobs/{digest}")).unwrap();
        assert_eq!(fetched.body, blob);

        assert_eq!(proxy.failed_count(), 1);
        assert_eq!(proxy.forwarded_count(), 2);
    }

    #[test]
    fn chunked_request_bodies_are_rejected() {
        let registry = Registry::start();
        let proxy = FaultyProxy::start(&registry.host(), Fault::new(500, 0));
        let response = request(
            &proxy.host(),
            "POST",
            "/v2/demo/blobs/uploads/",
            &[("Transfer-Encoding", "chunked")],
            b"0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(response.status, 501);
        assert_eq!(proxy.forwarded_count(), 0);
    }
}
