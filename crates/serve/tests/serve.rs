//! `tender serve` against real clients: skopeo (inspect, copy) and raw
//! HTTP/1.1 requests, over a copy of the repository's sample OCI layout
//! (`testdata/fleet/images`).

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tender_oci::media::{OCI_EMPTY, OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST};
use tender_oci::{Descriptor, Digest, LayoutStore};
use tender_serve::{Handle, LogEvent, ServeOptions, Server, TlsFiles};
use tender_test_support::{repo_root, skopeo, skopeo_inspect_digest};

const GATEWAY: &str = "sha256:a672c2eaad1779c73f7c2a26147b907a1f9d52f2b3252d16d0ec8d1592d4d11e";
const GATEWAY_SIG_TAG: &str =
    "sha256-a672c2eaad1779c73f7c2a26147b907a1f9d52f2b3252d16d0ec8d1592d4d11e.sig";
const HISTORIAN: &str = "sha256:341bda9b6304861742ebdfaf5c94417541863e3029ecca81cb7cf488a6cafde0";
/// The base layer both images share (392 bytes).
const SHARED_LAYER: &str =
    "sha256:893236064c8ebb884e048770f1b8d0e13ff91a89341f168e6cf6b02a003d20d8";
/// A layer of historian only.
const HISTORIAN_LAYER: &str =
    "sha256:ef98da0ea3505d3de321814a54e22e987255c0153c83f4a12fe0f76ccc766702";

// --- fixtures -----------------------------------------------------------------

struct Fixture {
    _dir: tempfile::TempDir,
    store_dir: PathBuf,
    handle: Handle,
    events: Arc<Mutex<Vec<LogEvent>>>,
}

impl Fixture {
    fn start() -> Fixture {
        Fixture::start_with(None)
    }

    fn start_with(tls: Option<TlsFiles>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        copy_dir(&repo_root().join("testdata/fleet/images"), &store_dir);
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let options = ServeOptions {
            tls,
            logger: Some(Arc::new(move |e: &LogEvent| {
                sink.lock().unwrap().push(e.clone())
            })),
            shutdown_grace: Duration::from_secs(2),
        };
        let handle = Server::bind(&store_dir, "127.0.0.1:0".parse().unwrap(), options).unwrap();
        Fixture {
            _dir: dir,
            store_dir,
            handle,
            events,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    fn host(&self) -> String {
        self.addr().to_string()
    }

    fn store(&self) -> LayoutStore {
        LayoutStore::open(&self.store_dir).unwrap()
    }

    fn get(&self, path: &str) -> Response {
        request(self.addr(), "GET", path, &[])
    }

    fn events(&self) -> Vec<LogEvent> {
        self.events.lock().unwrap().clone()
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn blob_bytes(digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    fs::read(
        repo_root()
            .join("testdata/fleet/images/blobs/sha256")
            .join(hex),
    )
    .unwrap()
}

// --- a raw HTTP/1.1 client ----------------------------------------------------

#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    fn error_code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// One request with `Connection: close`, read to EOF. The server always
/// sends a Content-Length (never chunked), which is checked.
fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if matches!(method, "PUT" | "POST" | "PATCH") {
        head.push_str("Content-Length: 2\r\n\r\n{}");
    } else {
        head.push_str("\r\n");
    }
    stream.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of response head");
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = raw[end + 4..].to_vec();
    let response = Response {
        status,
        headers,
        body,
    };
    assert_eq!(response.header("transfer-encoding"), None);
    if method != "HEAD" && status != 304 {
        assert_eq!(
            response.header("content-length"),
            Some(response.body.len().to_string().as_str()),
            "{method} {path}"
        );
    }
    assert_eq!(
        response.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    response
}

// --- tests ----------------------------------------------------------------------

#[test]
fn skopeo_inspects_and_copies_by_short_and_full_name() {
    let server = Fixture::start();
    let host = server.host();
    let short = format!("docker://{host}/plant/opcua-gateway:1.4.2");
    assert_eq!(skopeo_inspect_digest(&short, &[]), GATEWAY);
    let full = format!("docker://{host}/registry.plant.example/plant/opcua-gateway:1.4.2");
    assert_eq!(skopeo_inspect_digest(&full, &[]), GATEWAY);
    let by_digest = format!("docker://{host}/plant/opcua-gateway@{GATEWAY}");
    assert_eq!(skopeo_inspect_digest(&by_digest, &[]), GATEWAY);

    let out = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", out.path().display());
    let copied = skopeo(&[
        "--insecure-policy",
        "copy",
        "--all",
        "--quiet",
        "--src-tls-verify=false",
        &format!("docker://{host}/plant/historian:2.1.0"),
        &dest,
    ]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    assert_eq!(skopeo_inspect_digest(&dest, &[]), HISTORIAN);
    // Every blob skopeo wrote is the one in the store, byte for byte.
    let copied_blobs = out.path().join("blobs/sha256");
    let mut count = 0;
    for entry in fs::read_dir(&copied_blobs).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert_eq!(
            fs::read(entry.path()).unwrap(),
            blob_bytes(&format!("sha256:{name}")),
            "{name}"
        );
        count += 1;
    }
    assert_eq!(count, 4, "manifest, config, two layers");

    // One log line per request, with what was sent.
    let blob_get = server.events().into_iter().find_map(|e| match e {
        LogEvent::Request(r) if r.method == "GET" && r.target.contains(HISTORIAN_LAYER) => Some(r),
        _ => None,
    });
    let blob_get = blob_get.expect("the layer GET was logged");
    assert_eq!((blob_get.status, blob_get.bytes), (200, 329));
    assert!(blob_get.complete);
    server.handle.shutdown();
}

#[test]
fn base_manifests_head_and_etag() {
    let server = Fixture::start();
    let base = server.get("/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(base.json(), serde_json::json!({}));
    let head = request(server.addr(), "HEAD", "/v2/", &[]);
    assert_eq!(head.status, 200);

    let head = request(
        server.addr(),
        "HEAD",
        "/v2/plant/opcua-gateway/manifests/1.4.2",
        &[],
    );
    assert_eq!(head.status, 200);
    assert_eq!(head.header("docker-content-digest"), Some(GATEWAY));
    assert_eq!(head.header("content-type"), Some(OCI_MANIFEST));
    assert_eq!(head.header("content-length"), Some("875"));
    assert_eq!(head.header("etag"), Some(format!("\"{GATEWAY}\"").as_str()));
    assert!(head.body.is_empty());

    let get = server.get(&format!("/v2/plant/opcua-gateway/manifests/{GATEWAY}"));
    assert_eq!(get.status, 200);
    assert_eq!(get.body, blob_bytes(GATEWAY));
    assert_eq!(get.header("content-type"), Some(OCI_MANIFEST));

    let etag = format!("\"{GATEWAY}\"");
    let cached = request(
        server.addr(),
        "GET",
        "/v2/plant/opcua-gateway/manifests/1.4.2",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(cached.status, 304);
    assert!(cached.body.is_empty());

    // A manifest of another repository is not served here, by tag or digest.
    let other = server.get(&format!("/v2/plant/opcua-gateway/manifests/{HISTORIAN}"));
    assert_eq!(
        (other.status, other.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    let missing = server.get("/v2/plant/opcua-gateway/manifests/9.9.9");
    assert_eq!(
        (missing.status, missing.error_code().as_str()),
        (404, "MANIFEST_UNKNOWN")
    );
    // A layer is a blob, not a manifest.
    let layer = server.get(&format!("/v2/plant/opcua-gateway/manifests/{SHARED_LAYER}"));
    assert_eq!(layer.status, 404);
    let unknown = server.get("/v2/plant/nothing/manifests/1");
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );
}

#[test]
fn blobs_ranges_and_repository_scoping() {
    let server = Fixture::start();
    let layer = blob_bytes(SHARED_LAYER);
    let path = format!("/v2/plant/opcua-gateway/blobs/{SHARED_LAYER}");
    let whole = server.get(&path);
    assert_eq!(whole.status, 200);
    assert_eq!(whole.body, layer);
    assert_eq!(whole.header("accept-ranges"), Some("bytes"));
    assert_eq!(whole.header("docker-content-digest"), Some(SHARED_LAYER));
    assert_eq!(
        whole.header("content-type"),
        Some("application/octet-stream")
    );

    let range = |value: &str| request(server.addr(), "GET", &path, &[("Range", value)]);
    let part = range("bytes=10-19");
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &layer[10..20]);
    assert_eq!(part.header("content-range"), Some("bytes 10-19/392"));
    let tail = range("bytes=-8");
    assert_eq!((tail.status, &tail.body[..]), (206, &layer[384..]));
    let open = range("bytes=380-");
    assert_eq!((open.status, &open.body[..]), (206, &layer[380..]));
    let past = range("bytes=392-");
    assert_eq!(past.status, 416);
    assert_eq!(past.header("content-range"), Some("bytes */392"));
    assert!(past.body.is_empty());
    // Several ranges: the whole blob, as RFC 9110 allows.
    assert_eq!(range("bytes=0-1,5-6").status, 200);
    // If-Range with another validator: the whole blob.
    let stale = request(
        server.addr(),
        "GET",
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"sha256:other\"")],
    );
    assert_eq!((stale.status, stale.body.len()), (200, 392));

    let head = request(server.addr(), "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("392"));
    assert!(head.body.is_empty());

    // The same layer is shared: historian serves it too; historian's own
    // layer is not opcua-gateway's to serve, though it is in the store.
    assert_eq!(
        server
            .get(&format!("/v2/plant/historian/blobs/{SHARED_LAYER}"))
            .status,
        200
    );
    let foreign = server.get(&format!("/v2/plant/opcua-gateway/blobs/{HISTORIAN_LAYER}"));
    assert_eq!(
        (foreign.status, foreign.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
    let absent = server.get(&format!(
        "/v2/plant/opcua-gateway/blobs/{}",
        Digest::of(b"not in the store")
    ));
    assert_eq!(
        (absent.status, absent.error_code().as_str()),
        (404, "BLOB_UNKNOWN")
    );
    // Manifests are blobs too.
    assert_eq!(
        server
            .get(&format!("/v2/plant/opcua-gateway/blobs/{GATEWAY}"))
            .body,
        blob_bytes(GATEWAY)
    );
}

#[test]
fn large_blob_streams_in_chunks_and_ranges_cross_them() {
    let server = Fixture::start();
    let store = server.store();
    // 3 MiB + 17 of non-repeating bytes: several 256 KiB chunks.
    let layer: Vec<u8> = (0..(3u32 << 20) + 17)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let layer_d = store.put_blob_bytes(&layer).unwrap();
    let config_d = store.put_blob_bytes(b"{}").unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_EMPTY}","digest":"{config_d}","size":2}},"layers":[{{"mediaType":"{OCI_LAYER_TAR}","digest":"{layer_d}","size":{}}}]}}"#,
        layer.len()
    );
    store.put_blob_bytes(manifest.as_bytes()).unwrap();
    store
        .set_tag(
            "registry.plant.example/plant/big:1",
            Descriptor::of_bytes(OCI_MANIFEST, manifest.as_bytes()),
        )
        .unwrap();
    let path = format!("/v2/plant/big/blobs/{layer_d}");
    let whole = server.get(&path);
    assert_eq!(whole.status, 200);
    assert!(whole.body == layer, "whole body differs");
    let part = request(
        server.addr(),
        "GET",
        &path,
        &[("Range", "bytes=262000-800000")],
    );
    assert_eq!(part.status, 206);
    assert!(part.body == layer[262000..=800000], "range body differs");
}

#[test]
fn writes_are_refused() {
    let server = Fixture::start();
    for (method, path) in [
        ("PUT", "/v2/plant/opcua-gateway/manifests/1.4.2"),
        ("POST", "/v2/plant/opcua-gateway/blobs/uploads/"),
        ("PATCH", "/v2/plant/opcua-gateway/blobs/uploads/x"),
        (
            "DELETE",
            &format!("/v2/plant/opcua-gateway/manifests/{GATEWAY}"),
        ),
        ("PUT", "/v2/new/repo/manifests/1"),
        ("OPTIONS", "/v2/"),
    ] {
        let response = request(server.addr(), method, path, &[]);
        assert_eq!(response.status, 405, "{method} {path}");
        assert_eq!(
            response.json(),
            serde_json::json!({"errors":[{"code":"UNSUPPORTED","message":"tender serve is read-only"}]}),
            "{method} {path}"
        );
        assert_eq!(response.header("allow"), Some("GET, HEAD"));
    }
    // Nothing changed.
    assert_eq!(
        fs::read(server.store_dir.join("index.json")).unwrap(),
        fs::read(repo_root().join("testdata/fleet/images/index.json")).unwrap()
    );
}

#[test]
fn tags_and_catalog_with_pagination() {
    let server = Fixture::start();
    let tags = server.get("/v2/plant/opcua-gateway/tags/list");
    assert_eq!(tags.status, 200);
    assert_eq!(
        tags.json(),
        serde_json::json!({"name": "plant/opcua-gateway", "tags": ["1.4.2", GATEWAY_SIG_TAG]})
    );
    assert_eq!(tags.header("link"), None);
    let full = server.get("/v2/registry.plant.example/plant/opcua-gateway/tags/list");
    assert_eq!(full.json()["tags"], tags.json()["tags"]);

    let first = server.get("/v2/plant/opcua-gateway/tags/list?n=1");
    assert_eq!(first.json()["tags"], serde_json::json!(["1.4.2"]));
    assert_eq!(
        first.header("link"),
        Some("</v2/plant/opcua-gateway/tags/list?n=1&last=1.4.2>; rel=\"next\"")
    );
    let second = server.get("/v2/plant/opcua-gateway/tags/list?n=1&last=1.4.2");
    assert_eq!(second.json()["tags"], serde_json::json!([GATEWAY_SIG_TAG]));
    assert_eq!(second.header("link"), None);
    let bad_n = server.get("/v2/plant/opcua-gateway/tags/list?n=x");
    assert_eq!(
        (bad_n.status, bad_n.error_code().as_str()),
        (400, "PAGINATION_NUMBER_INVALID")
    );
    let unknown = server.get("/v2/plant/nothing/tags/list");
    assert_eq!(
        (unknown.status, unknown.error_code().as_str()),
        (404, "NAME_UNKNOWN")
    );

    // The site repositories, which pinned references and mirrors use.
    let catalog = server.get("/v2/_catalog");
    assert_eq!(
        catalog.json(),
        serde_json::json!({"repositories": [
            "registry.plant.example/plant/diag-tools",
            "registry.plant.example/plant/historian",
            "registry.plant.example/plant/opcua-gateway",
        ]})
    );
    let page = server.get("/v2/_catalog?n=2");
    assert_eq!(
        page.json()["repositories"],
        serde_json::json!([
            "registry.plant.example/plant/diag-tools",
            "registry.plant.example/plant/historian"
        ])
    );
    assert_eq!(
        page.header("link"),
        Some("</v2/_catalog?n=2&last=registry.plant.example/plant/historian>; rel=\"next\"")
    );
    let rest = server.get("/v2/_catalog?n=2&last=registry.plant.example%2Fplant%2Fhistorian");
    assert_eq!(
        rest.json()["repositories"],
        serde_json::json!(["registry.plant.example/plant/opcua-gateway"])
    );
}

#[test]
fn containerd_mirror_namespace_parameter() {
    let server = Fixture::start();
    // A mirror configured without a path (as tender wrote them before
    // site repositories kept the registry host).
    let response = server.get("/v2/plant/opcua-gateway/manifests/1.4.2?ns=registry.plant.example");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("docker-content-digest"), Some(GATEWAY));
    // The hosts.toml import writes now: the site repository as the path.
    let response = server.get(
        "/v2/registry.plant.example/plant/opcua-gateway/manifests/1.4.2?ns=registry.plant.example",
    );
    assert_eq!(response.status, 200);
    assert_eq!(response.header("docker-content-digest"), Some(GATEWAY));
}

#[test]
fn hostile_digests_and_names_never_reach_the_filesystem() {
    let server = Fixture::start();
    // A file a traversal would reach.
    fs::write(server.store_dir.join("blobs/secret"), b"secret").unwrap();
    for (path, status, code) in [
        (
            "/v2/plant/opcua-gateway/blobs/sha256:../../etc/passwd",
            404,
            "UNSUPPORTED",
        ),
        (
            "/v2/plant/opcua-gateway/blobs/sha256:..%2F..%2Fetc%2Fpasswd",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/blobs/sha256:..%2Fsecret",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/blobs/..%2Fsecret",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/blobs/sha256:893236064C8EBB884E048770F1B8D0E13FF91A89341F168E6CF6B02A003D20D8",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/blobs/sha512:893236064c8ebb884e048770f1b8d0e13ff91a89341f168e6cf6b02a003d20d8",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/manifests/sha256:../../index.json",
            404,
            "UNSUPPORTED",
        ),
        (
            "/v2/plant/opcua-gateway/manifests/sha256:..%2Findex.json",
            400,
            "DIGEST_INVALID",
        ),
        (
            "/v2/plant/opcua-gateway/manifests/..%2Findex.json",
            400,
            "TAG_INVALID",
        ),
        ("/v2/../../etc/passwd", 404, "UNSUPPORTED"),
        (
            "/v2/plant/../plant/opcua-gateway/manifests/1.4.2",
            400,
            "NAME_INVALID",
        ),
        (
            "/v2/plant%2Fopcua-gateway/manifests/1.4.2",
            400,
            "NAME_INVALID",
        ),
        ("/etc/passwd", 404, "UNSUPPORTED"),
    ] {
        let response = server.get(path);
        assert_eq!(
            (response.status, response.error_code().as_str()),
            (status, code),
            "{path}"
        );
        assert!(!String::from_utf8_lossy(&response.body).contains("secret"));
    }
}

#[test]
fn referrers_lists_manifests_whose_subject_is_the_digest() {
    let server = Fixture::start();
    let store = server.store();
    let empty = store.put_blob_bytes(b"{}").unwrap();
    let sbom = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.example.sbom","config":{{"mediaType":"{OCI_EMPTY}","digest":"{empty}","size":2}},"layers":[],"subject":{{"mediaType":"{OCI_MANIFEST}","digest":"{GATEWAY}","size":875}},"annotations":{{"org.example":"yes"}}}}"#
    );
    let sbom_d = store.put_blob_bytes(sbom.as_bytes()).unwrap();
    // Named by digest in the repository, as export stores the referrers it
    // pulls (`repo@sha256:...`); index.json changes while the server runs.
    store
        .set_tag(
            &format!("registry.plant.example/plant/opcua-gateway@{sbom_d}"),
            Descriptor::of_bytes(OCI_MANIFEST, sbom.as_bytes()),
        )
        .unwrap();

    let path = format!("/v2/plant/opcua-gateway/referrers/{GATEWAY}");
    let response = server.get(&path);
    assert_eq!(response.status, 200);
    assert_eq!(response.header("content-type"), Some(OCI_INDEX));
    let index = response.json();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert_eq!(manifests[0]["digest"], sbom_d.to_string());
    assert_eq!(manifests[0]["artifactType"], "application/vnd.example.sbom");
    assert_eq!(manifests[0]["annotations"]["org.example"], "yes");
    assert_eq!(manifests[0]["size"], sbom.len());

    let filtered = server.get(&format!("{path}?artifactType=application%2Fvnd.other"));
    assert_eq!(filtered.json()["manifests"], serde_json::json!([]));
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    let kept = server.get(&format!("{path}?artifactType=application/vnd.example.sbom"));
    assert_eq!(kept.json()["manifests"].as_array().unwrap().len(), 1);
    // None for other digests; other repositories do not see it.
    let none = server.get(&format!("/v2/plant/opcua-gateway/referrers/{HISTORIAN}"));
    assert_eq!(
        (none.status, none.json()["manifests"].clone()),
        (200, serde_json::json!([]))
    );
    let elsewhere = server.get(&format!("/v2/plant/historian/referrers/{GATEWAY}"));
    assert_eq!(elsewhere.json()["manifests"], serde_json::json!([]));
    let bad = server.get("/v2/plant/opcua-gateway/referrers/sha256:x");
    assert_eq!(bad.status, 400);
    // A digest-only name adds no tag, but the manifest is served by digest.
    assert_eq!(
        server.get("/v2/plant/opcua-gateway/tags/list").json()["tags"],
        serde_json::json!(["1.4.2", GATEWAY_SIG_TAG])
    );
    let by_digest = server.get(&format!("/v2/plant/opcua-gateway/manifests/{sbom_d}"));
    assert_eq!(by_digest.body, sbom.as_bytes());
}

#[test]
fn index_json_changes_are_picked_up_while_serving() {
    let server = Fixture::start();
    assert_eq!(
        server.get("/v2/plant/historian/manifests/2.2.0").status,
        404
    );
    assert_eq!(server.get("/v2/plant/newcomer/tags/list").status, 404);
    let store = server.store();
    let historian = store
        .resolve("registry.plant.example/plant/historian:2.1.0")
        .unwrap();
    store
        .set_tag(
            "registry.plant.example/plant/historian:2.2.0",
            historian.clone(),
        )
        .unwrap();
    store
        .set_tag("registry.plant.example/plant/newcomer:1", historian)
        .unwrap();

    let tagged = server.get("/v2/plant/historian/manifests/2.2.0");
    assert_eq!(tagged.status, 200);
    assert_eq!(tagged.header("docker-content-digest"), Some(HISTORIAN));
    assert_eq!(
        server.get("/v2/plant/historian/tags/list").json()["tags"],
        serde_json::json!(["2.1.0", "2.2.0"])
    );
    // The new repository's blobs are its own now.
    assert_eq!(
        server
            .get(&format!("/v2/plant/newcomer/blobs/{HISTORIAN_LAYER}"))
            .status,
        200
    );
    assert_eq!(
        skopeo_inspect_digest(&format!("docker://{}/plant/newcomer:1", server.host()), &[]),
        HISTORIAN
    );

    assert!(
        store
            .remove_tag("registry.plant.example/plant/historian:2.1.0")
            .unwrap()
    );
    assert_eq!(
        server.get("/v2/plant/historian/manifests/2.1.0").status,
        404
    );
    let reloads = server
        .events()
        .iter()
        .filter(|e| matches!(e, LogEvent::Loaded { reload: true, .. }))
        .count();
    assert_eq!(reloads, 2, "{:?}", server.events());

    // A damaged index.json: the previous catalog stays, with a warning.
    fs::write(server.store_dir.join("index.json"), b"{not json").unwrap();
    assert_eq!(
        server.get("/v2/plant/historian/manifests/2.2.0").status,
        200
    );
    assert!(server.events().iter().any(|e| matches!(
        e,
        LogEvent::Warning { message } if message.contains("index.json")
    )));
}

#[test]
fn serves_https_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    let openssl = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ed25519", "-nodes", "-days", "1"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("running openssl (scripts/install-deps.sh installs it)");
    assert!(
        openssl.status.success(),
        "{}",
        String::from_utf8_lossy(&openssl.stderr)
    );
    let server = Fixture::start_with(Some(TlsFiles {
        cert: cert.clone(),
        key,
    }));
    assert!(server.handle.is_tls());
    assert!(server.handle.url().starts_with("https://127.0.0.1:"));
    let image = format!("docker://{}/plant/opcua-gateway:1.4.2", server.host());
    assert_eq!(
        skopeo_inspect_digest(&image, &["--tls-verify=false"]),
        GATEWAY
    );
    // With verification, trusting the certificate.
    let certs = tempfile::tempdir().unwrap();
    fs::copy(&cert, certs.path().join("ca.crt")).unwrap();
    let cert_dir = format!("--cert-dir={}", certs.path().display());
    assert_eq!(
        skopeo_inspect_digest(&image, &["--tls-verify=true", &cert_dir]),
        GATEWAY
    );
    // And without it, refused: the certificate is nobody's.
    let untrusted = skopeo(&["inspect", "--raw", "--tls-verify=true", &image]);
    assert!(!untrusted.status.success());

    // Plain HTTP to the TLS port gets no HTTP answer.
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    assert!(!raw.starts_with(b"HTTP/1.1 200"));
}

#[test]
fn bad_tls_files_and_stores_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    copy_dir(&repo_root().join("testdata/fleet/images"), &store_dir);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let garbage = dir.path().join("garbage.pem");
    fs::write(&garbage, "not a certificate").unwrap();
    let options = ServeOptions {
        tls: Some(TlsFiles {
            cert: garbage.clone(),
            key: garbage.clone(),
        }),
        ..ServeOptions::default()
    };
    let err = Server::bind(&store_dir, addr, options)
        .err()
        .expect("garbage is no certificate");
    assert!(err.to_string().starts_with("TLS certificate"), "{err}");

    let err = Server::bind(dir.path(), addr, ServeOptions::default())
        .err()
        .expect("not a layout");
    assert!(err.to_string().contains("oci-layout"), "{err}");

    let taken = Server::bind(&store_dir, addr, ServeOptions::default()).unwrap();
    let err = Server::bind(&store_dir, taken.local_addr(), ServeOptions::default())
        .err()
        .expect("the port is taken");
    assert!(err.to_string().starts_with("listening on"), "{err}");
}

#[test]
fn shutdown_closes_the_listener() {
    let server = Fixture::start();
    let addr = server.addr();
    assert_eq!(server.get("/v2/").status, 200);
    let started = Instant::now();
    server.handle.shutdown();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect(addr).is_err());
}
