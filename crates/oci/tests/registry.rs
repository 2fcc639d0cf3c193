//! RegistryClient and LayoutStore against real registries (distribution 2.8,
//! `docker-registry`) and real skopeo; no mocks. Sample images come from
//! `testdata/fleet/images`.

use std::collections::HashMap;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tender_oci::media::{self, OCI_CONFIG, OCI_INDEX, OCI_LAYER_TAR_GZIP, OCI_MANIFEST};
use tender_oci::{
    Arrivals, ArtifactKind, BlobOutcome, ClientOptions, CredentialSource, Descriptor, Digest,
    LayoutStore, Observer, OciError, Platform, Reference, RegistryClient, RegistrySettings,
    RetryPolicy,
};
use tender_test_support::{
    Fault, FaultyProxy, Registry, http_get, repo_root, skopeo, skopeo_copy, skopeo_inspect_digest,
};

const GATEWAY: &str = "registry.plant.example/plant/opcua-gateway:1.4.2";
const HISTORIAN: &str = "registry.plant.example/plant/historian:2.1.0";
const GATEWAY_DIGEST: &str =
    "sha256:a672c2eaad1779c73f7c2a26147b907a1f9d52f2b3252d16d0ec8d1592d4d11e";
const HISTORIAN_DIGEST: &str =
    "sha256:341bda9b6304861742ebdfaf5c94417541863e3029ecca81cb7cf488a6cafde0";
const SIGNATURE_DIGEST: &str =
    "sha256:5473b33bee4ba9222754f4033f048d7c6d40164595352f885fd54b120df9faf4";
/// The base layer opcua-gateway and historian share.
const SHARED_LAYER: &str =
    "sha256:893236064c8ebb884e048770f1b8d0e13ff91a89341f168e6cf6b02a003d20d8";

fn sample_layout() -> PathBuf {
    repo_root().join("testdata/fleet/images")
}

fn signature_tag() -> String {
    format!("sha256-{}.sig", &GATEWAY_DIGEST["sha256:".len()..])
}

/// Copies an image of the sample layout into `host` as `repo_tag`.
fn seed(host: &str, layout_name: &str, repo_tag: &str) {
    skopeo_copy(
        &format!("oci:{}:{layout_name}", sample_layout().display()),
        &format!("docker://{host}/{repo_tag}"),
    );
}

fn seed_gateway_and_historian(host: &str) {
    seed(host, GATEWAY, "plant/opcua-gateway:1.4.2");
    seed(host, HISTORIAN, "plant/historian:2.1.0");
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        attempts: 5,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(100),
    }
}

fn options(plain_http: &[&str]) -> ClientOptions {
    let mut options = ClientOptions {
        credentials: CredentialSource::Anonymous,
        retry: fast_retry(),
        ..ClientOptions::default()
    };
    for host in plain_http {
        options = options.registry(host, RegistrySettings::plain_http());
    }
    options
}

fn client(plain_http: &[&str]) -> RegistryClient {
    RegistryClient::new(options(plain_http)).unwrap()
}

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

fn digest(text: &str) -> Digest {
    text.parse().unwrap()
}

fn temp_files(store: &LayoutStore) -> Vec<String> {
    fs::read_dir(store.root().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".tmp-"))
        .collect()
}

/// Records what the client reports.
#[derive(Default)]
struct Recorder {
    retries: Mutex<Vec<(String, u32, String)>>,
    done: Mutex<Vec<(Digest, BlobOutcome)>>,
    progress: Mutex<HashMap<Digest, u64>>,
}

impl Observer for Recorder {
    fn on_retry(&self, what: &str, attempt: u32, error: &OciError, _delay: Duration) {
        self.retries
            .lock()
            .unwrap()
            .push((what.to_string(), attempt, error.to_string()));
    }

    fn on_blob_progress(&self, digest: &Digest, bytes: u64) {
        let mut progress = self.progress.lock().unwrap();
        let seen = progress.entry(*digest).or_default();
        *seen = (*seen).max(bytes);
    }

    fn on_blob_done(&self, digest: &Digest, _size: u64, outcome: BlobOutcome) {
        self.done.lock().unwrap().push((*digest, outcome));
    }
}

fn observed_client(plain_http: &[&str]) -> (RegistryClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let client = RegistryClient::new(ClientOptions {
        observer: recorder.clone(),
        ..options(plain_http)
    })
    .unwrap();
    (client, recorder)
}

/// Every blob of every tagged image is present and hashes right.
fn assert_store_complete(store: &LayoutStore) {
    for (name, descriptor) in store.list_tags().unwrap() {
        for reachable in store.walk_image(&descriptor).unwrap() {
            assert!(
                store.verify_blob(&reachable.digest).unwrap(),
                "{name}: {} missing",
                reachable.digest
            );
        }
    }
    assert!(temp_files(store).is_empty(), "{:?}", temp_files(store));
}

#[test]
fn pull_matches_skopeo_and_stores_a_shared_layer_once() {
    let registry = Registry::start();
    let host = registry.host();
    seed_gateway_and_historian(&host);
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let (client, recorder) = observed_client(&[&host]);

    let gateway = reference(&format!("{host}/plant/opcua-gateway:1.4.2"));
    let historian = reference(&format!("{host}/plant/historian:2.1.0"));
    let pulled_gateway = client.pull_image(&gateway, &store, None).unwrap();
    let pulled_historian = client.pull_image(&historian, &store, None).unwrap();

    for (pulled, expected) in [
        (&pulled_gateway, GATEWAY_DIGEST),
        (&pulled_historian, HISTORIAN_DIGEST),
    ] {
        let by_skopeo = skopeo_inspect_digest(&format!("docker://{}", pulled.ref_name), &[]);
        assert_eq!(pulled.descriptor.digest.to_string(), by_skopeo);
        assert_eq!(by_skopeo, expected, "skopeo kept the manifest bytes");
        assert_eq!(pulled.reference.digest(), Some(&pulled.descriptor.digest));
        assert_eq!(pulled.descriptor.media_type, OCI_MANIFEST);
        // The layout is readable by skopeo under the full reference name.
        let from_layout = skopeo_inspect_digest(
            &format!("oci:{}:{}", dir.path().display(), pulled.ref_name),
            &[],
        );
        assert_eq!(from_layout, expected);
        // Every blob skopeo sees in the registry is in the store.
        let manifest = store.read_manifest(&pulled.descriptor).unwrap().1;
        for child in manifest.children() {
            assert!(
                store.verify_blob(&child.digest).unwrap(),
                "{}",
                child.digest
            );
        }
    }
    assert_eq!(pulled_gateway.blobs_fetched, 4);
    assert_eq!(pulled_gateway.blobs_present, 0);
    // historian: config + 2 layers, one of them the shared base layer.
    assert_eq!(pulled_historian.blobs_fetched, 2);
    assert_eq!(pulled_historian.blobs_present, 1);
    let shared = digest(SHARED_LAYER);
    let transfers = recorder
        .done
        .lock()
        .unwrap()
        .iter()
        .filter(|(d, outcome)| *d == shared && *outcome == BlobOutcome::Transferred)
        .count();
    assert_eq!(transfers, 1, "the shared layer is downloaded once");
    assert_eq!(recorder.progress.lock().unwrap()[&shared], 392);

    let tags: Vec<String> = store
        .list_tags()
        .unwrap()
        .into_iter()
        .map(|t| t.0)
        .collect();
    assert_eq!(
        tags,
        [
            format!("{host}/plant/opcua-gateway:1.4.2"),
            format!("{host}/plant/historian:2.1.0")
        ]
    );
    assert_store_complete(&store);

    // Pulling again downloads nothing.
    let again = client.pull_image(&gateway, &store, None).unwrap();
    assert_eq!(again.blobs_fetched, 0);
    assert_eq!(again.bytes_fetched, 0);

    // A blob damaged on disk is noticed (re-hashed) and fetched again.
    fs::write(store.blob_path(&shared), vec![0u8; 392]).unwrap();
    let repaired = client.pull_image(&gateway, &store, None).unwrap();
    assert_eq!(repaired.blobs_fetched, 1);
    assert_eq!(repaired.bytes_fetched, 392);
    assert_store_complete(&store);
}

#[test]
fn manifests_first_then_every_queued_blob_once_smallest_digest_first() {
    let registry = Registry::start();
    seed_gateway_and_historian(&registry.host());
    // Records every request, fails none.
    let proxy = FaultyProxy::start(&registry.host(), Fault::new(500, 0));
    let host = proxy.host();
    let one_at_a_time = RegistryClient::new(ClientOptions {
        concurrency: 1,
        ..options(&[&host])
    })
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();

    let arrivals = Arrivals::new();
    let mut queued = Vec::new();
    for name in ["plant/opcua-gateway:1.4.2", "plant/historian:2.1.0"] {
        let reference = reference(&format!("{host}/{name}"));
        let image = one_at_a_time.fetch_image(&reference, &store, None).unwrap();
        assert!(
            image.blobs.iter().all(|b| !store.has_blob(&b.digest)),
            "nothing downloaded yet"
        );
        image.store(&store, &reference.to_string()).unwrap();
        for blob in &image.blobs {
            arrivals.expect(&reference, blob);
            queued.push(blob.digest);
        }
    }
    arrivals.close();
    let pulled = one_at_a_time.pull_blobs(&store, &arrivals).unwrap();
    // gateway: config + 3 layers; historian: config + 2 layers, one shared.
    assert_eq!(queued.len(), 7);
    assert_eq!(pulled.fetched, 6);
    assert!(arrivals.pending().is_empty());
    assert_store_complete(&store);
    let blob_gets: Vec<Digest> = proxy
        .requests()
        .iter()
        .filter_map(|r| r.path.split("/blobs/").nth(1).map(digest))
        .collect();
    let mut expected = queued.clone();
    expected.sort();
    expected.dedup();
    assert_eq!(blob_gets, expected, "each once, in digest order");

    // A blob that fails stops the batch and is named, to the caller and to
    // whoever waits for it.
    let layer = digest(SHARED_LAYER);
    let failing = FaultyProxy::start(
        &registry.host(),
        Fault::new(404, 1).path_contains(&format!("/blobs/{layer}")),
    );
    let failing_client = client(&[&failing.host()]);
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = LayoutStore::open_or_create(fresh_dir.path()).unwrap();
    let reference = reference(&format!("{}/plant/historian:2.1.0", failing.host()));
    let image = failing_client
        .fetch_image(&reference, &fresh, None)
        .unwrap();
    let arrivals = Arrivals::new();
    for blob in &image.blobs {
        arrivals.expect(&reference, blob);
    }
    arrivals.close();
    let failed = failing_client.pull_blobs(&fresh, &arrivals).unwrap_err();
    assert_eq!(failed.digest, layer);
    assert!(failed.error.is_not_found(), "{}", failed.error);
    assert_eq!(arrivals.failure().unwrap().0, Some(layer));
    assert!(arrivals.wait(&layer).is_err());
    assert!(!fresh.has_blob(&layer));
    assert!(temp_files(&fresh).is_empty());
}

#[test]
fn resolve_pins_tags_and_checks_digests() {
    let registry = Registry::start();
    let host = registry.host();
    seed(&host, GATEWAY, "plant/opcua-gateway:1.4.2");
    let client = client(&[&host]);

    let by_tag = client
        .resolve(&reference(&format!("{host}/plant/opcua-gateway:1.4.2")))
        .unwrap();
    assert_eq!(by_tag.digest, digest(GATEWAY_DIGEST));
    assert_eq!(Digest::of(&by_tag.bytes), by_tag.digest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST);
    assert_eq!(
        by_tag.reference.to_string(),
        format!("{host}/plant/opcua-gateway:1.4.2@{GATEWAY_DIGEST}")
    );
    let children = media::children(&by_tag.bytes, &by_tag.media_type).unwrap();
    assert_eq!(children.len(), 4);

    let by_digest = client
        .resolve(&reference(&format!(
            "{host}/plant/opcua-gateway@{GATEWAY_DIGEST}"
        )))
        .unwrap();
    assert_eq!(by_digest.bytes, by_tag.bytes);

    let missing = client
        .resolve(&reference(&format!("{host}/plant/opcua-gateway:9.9.9")))
        .unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(
        missing.to_string().contains("opcua-gateway:9.9.9"),
        "{missing}"
    );
}

#[test]
fn blob_gets_failing_with_500_are_retried() {
    let registry = Registry::start();
    seed(&registry.host(), GATEWAY, "plant/opcua-gateway:1.4.2");
    let proxy = FaultyProxy::start(
        &registry.host(),
        Fault::new(500, 3)
            .path_contains("/blobs/sha256:")
            .method("GET"),
    );
    let (client, recorder) = observed_client(&[&proxy.host()]);
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();

    let pulled = client
        .pull_image(
            &reference(&format!("{}/plant/opcua-gateway:1.4.2", proxy.host())),
            &store,
            None,
        )
        .unwrap();
    assert_eq!(pulled.descriptor.digest, digest(GATEWAY_DIGEST));
    assert_eq!(proxy.failed_count(), 3);
    let retries = recorder.retries.lock().unwrap().clone();
    assert_eq!(retries.len(), 3, "{retries:?}");
    for (what, attempt, error) in &retries {
        assert!(what.starts_with("blob "), "{what}");
        // Usually three blobs fail once each; under load one blob may
        // meet two of the injected faults.
        assert!(*attempt <= 3, "{attempt}");
        assert!(error.contains("HTTP 500"), "{error}");
    }
    assert_store_complete(&store);
}

#[test]
fn rate_limits_and_a_stray_401_are_handled() {
    let registry = Registry::start();
    seed(&registry.host(), GATEWAY, "plant/opcua-gateway:1.4.2");

    let limited = FaultyProxy::start(
        &registry.host(),
        Fault::new(429, 2)
            .path_contains("/manifests/")
            .header("Retry-After", "0"),
    );
    let resolved = client(&[&limited.host()])
        .resolve(&reference(&format!(
            "{}/plant/opcua-gateway:1.4.2",
            limited.host()
        )))
        .unwrap();
    assert_eq!(resolved.digest, digest(GATEWAY_DIGEST));
    assert_eq!(limited.failed_count(), 2);

    // A 401 runs the auth flow (GET /v2/: no challenge, so anonymous) and
    // the request is sent again; it is not a "retry".
    let unauthorized = FaultyProxy::start(
        &registry.host(),
        Fault::new(401, 1).path_contains("/manifests/"),
    );
    let (client, recorder) = observed_client(&[&unauthorized.host()]);
    let resolved = client
        .resolve(&reference(&format!(
            "{}/plant/opcua-gateway:1.4.2",
            unauthorized.host()
        )))
        .unwrap();
    assert_eq!(resolved.digest, digest(GATEWAY_DIGEST));
    assert_eq!(unauthorized.failed_count(), 1);
    assert!(recorder.retries.lock().unwrap().is_empty());
    let paths: Vec<String> = unauthorized
        .requests()
        .into_iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /v2/plant/opcua-gateway/manifests/1.4.2",
            "GET /v2/",
            "GET /v2/plant/opcua-gateway/manifests/1.4.2"
        ]
    );
}

#[test]
fn retries_stop_at_the_limit_and_4xx_is_not_retried() {
    let registry = Registry::start();
    seed(&registry.host(), GATEWAY, "plant/opcua-gateway:1.4.2");

    let unavailable = FaultyProxy::start(
        &registry.host(),
        Fault::new(503, 100).path_contains("/manifests/"),
    );
    let client = RegistryClient::new(ClientOptions {
        retry: RetryPolicy {
            attempts: 3,
            ..fast_retry()
        },
        ..options(&[&unavailable.host()])
    })
    .unwrap();
    let err = client
        .resolve(&reference(&format!(
            "{}/plant/opcua-gateway:1.4.2",
            unavailable.host()
        )))
        .unwrap_err();
    assert!(
        matches!(&err, OciError::RetriesExhausted { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(err.http_status(), Some(503));
    assert!(
        err.to_string().contains("gave up after 3 attempts"),
        "{err}"
    );
    assert_eq!(unavailable.failed_count(), 3);

    let bad_request = FaultyProxy::start(
        &registry.host(),
        Fault::new(400, 100).path_contains("/manifests/"),
    );
    let err = RegistryClient::new(options(&[&bad_request.host()]))
        .unwrap()
        .resolve(&reference(&format!(
            "{}/plant/opcua-gateway:1.4.2",
            bad_request.host()
        )))
        .unwrap_err();
    assert_eq!(err.http_status(), Some(400), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(bad_request.failed_count(), 1, "a 400 is not retried");
}

#[test]
fn a_corrupted_blob_is_rejected_and_nothing_is_written() {
    let registry = Registry::start();
    let host = registry.host();
    seed(&host, GATEWAY, "plant/opcua-gateway:1.4.2");
    // Same size, different bytes: only the digest can catch it.
    let layer = digest("sha256:34d18344bd082be6eda45bf8b67780f8edd07fe7e2cf0a9d6dde445a1ab5ef92");
    let data = registry
        .storage_dir()
        .join("docker/registry/v2/blobs/sha256")
        .join(&layer.hex()[..2])
        .join(layer.hex())
        .join("data");
    let original = fs::read(&data).unwrap();
    fs::write(&data, vec![b'x'; original.len()]).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let (client, recorder) = observed_client(&[&host]);
    let name = format!("{host}/plant/opcua-gateway:1.4.2");
    let err = client
        .pull_image(&reference(&name), &store, None)
        .unwrap_err();
    assert!(err.is_integrity_failure(), "{err}");
    match &err {
        OciError::DigestMismatch { what, expected, .. } => {
            assert_eq!(*expected, layer);
            assert!(what.contains("plant/opcua-gateway"), "{what}");
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    assert!(recorder.retries.lock().unwrap().is_empty(), "not retried");
    assert!(!store.has_blob(&layer));
    assert!(temp_files(&store).is_empty());
    assert!(store.resolve(&name).unwrap_err().is_not_found());
    assert!(
        !store.has_blob(&digest(GATEWAY_DIGEST)),
        "no manifest without its blobs"
    );

    // The single-blob API says the same.
    let descriptor = Descriptor::new(OCI_LAYER_TAR_GZIP, layer, original.len() as u64);
    let err = client
        .pull_blob_to(&store, &reference(&name), &descriptor)
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&layer));
    assert!(temp_files(&store).is_empty());
}

#[test]
fn push_from_the_store_to_a_second_registry_keeps_every_digest() {
    let source = Registry::start();
    let target = Registry::start();
    seed_gateway_and_historian(&source.host());
    seed(
        &source.host(),
        &format!(
            "registry.plant.example/plant/opcua-gateway:{}",
            signature_tag()
        ),
        &format!("plant/opcua-gateway:{}", signature_tag()),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    // Tiny chunks, so layers above 100 bytes go up in PATCH chunks.
    let (client, recorder) = {
        let recorder = Arc::new(Recorder::default());
        let client = RegistryClient::new(ClientOptions {
            chunk_size: 100,
            observer: recorder.clone(),
            ..options(&[&source.host(), &target.host()])
        })
        .unwrap();
        (client, recorder)
    };

    let mut pushed = Vec::new();
    for repo_tag in [
        "plant/opcua-gateway:1.4.2".to_string(),
        "plant/historian:2.1.0".to_string(),
        format!("plant/opcua-gateway:{}", signature_tag()),
    ] {
        let pulled = client
            .pull_image(
                &reference(&format!("{}/{repo_tag}", source.host())),
                &store,
                None,
            )
            .unwrap();
        let destination = reference(&format!("{}/{repo_tag}", target.host()));
        let digest = client
            .push_image(&store, &pulled.descriptor, &destination)
            .unwrap();
        assert_eq!(digest, pulled.descriptor.digest);
        pushed.push((repo_tag, digest));
    }
    for (repo_tag, digest) in &pushed {
        let at_target =
            skopeo_inspect_digest(&format!("docker://{}/{repo_tag}", target.host()), &[]);
        let at_source =
            skopeo_inspect_digest(&format!("docker://{}/{repo_tag}", source.host()), &[]);
        assert_eq!(at_target, digest.to_string(), "{repo_tag}");
        assert_eq!(at_target, at_source, "{repo_tag}");
    }
    assert_eq!(pushed[2].1, digest(SIGNATURE_DIGEST));
    // The image must be whole at the target: skopeo copies it back out.
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy(
        &format!("docker://{}/plant/historian:2.1.0", target.host()),
        &format!("oci:{}:h", copy.path().display()),
    );

    // Pushing again uploads nothing (HEAD finds every blob).
    recorder.done.lock().unwrap().clear();
    let gateway = store
        .resolve(&format!("{}/plant/opcua-gateway:1.4.2", source.host()))
        .unwrap();
    client
        .push_image(
            &store,
            &gateway,
            &reference(&format!("{}/plant/opcua-gateway:again", target.host())),
        )
        .unwrap();
    let done = recorder.done.lock().unwrap().clone();
    assert_eq!(done.len(), 4);
    assert!(done.iter().all(|(_, o)| *o == BlobOutcome::AlreadyPresent));
}

/// Deterministic, incompressible-looking bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes a one-layer image for `platform` into `store`.
fn put_image(store: &LayoutStore, platform: &str, layer: &[u8]) -> Descriptor {
    let layer_digest = store.put_blob_bytes(layer).unwrap();
    let platform: Platform = platform.parse().unwrap();
    let config = format!(
        r#"{{"architecture":"{}","os":"{}","rootfs":{{"type":"layers","diff_ids":[]}}}}"#,
        platform.architecture, platform.os
    );
    let config_digest = store.put_blob_bytes(config.as_bytes()).unwrap();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"{OCI_CONFIG}","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"{OCI_LAYER_TAR_GZIP}","digest":"{layer_digest}","size":{}}}]}}"#,
        config.len(),
        layer.len()
    );
    store.put_blob_bytes(manifest.as_bytes()).unwrap();
    let mut descriptor = Descriptor::of_bytes(OCI_MANIFEST, manifest.as_bytes());
    descriptor.platform = Some(platform);
    descriptor
}

fn put_index(store: &LayoutStore, manifests: &[Descriptor]) -> Descriptor {
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    store.put_blob_bytes(&bytes).unwrap();
    Descriptor::of_bytes(OCI_INDEX, &bytes)
}

#[test]
fn large_blobs_stream_in_chunks_with_content_length_and_retried_patches() {
    let registry = Registry::start();
    // The proxy refuses chunked transfer-encoding (501), so this also proves
    // every upload request carries a Content-Length; two PATCHes fail.
    let proxy = FaultyProxy::start(&registry.host(), Fault::new(500, 2).method("PATCH"));
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let layer = noise(5 * 1024 * 1024 + 17, 7);
    let image = put_image(&store, "linux/amd64", &layer);
    let (client, recorder) = {
        let recorder = Arc::new(Recorder::default());
        let client = RegistryClient::new(ClientOptions {
            chunk_size: 1024 * 1024,
            observer: recorder.clone(),
            ..options(&[&proxy.host(), &registry.host()])
        })
        .unwrap();
        (client, recorder)
    };

    let target = reference(&format!("{}/big/image:1", proxy.host()));
    client.push_image(&store, &image, &target).unwrap();
    assert_eq!(proxy.failed_count(), 2);
    let patches = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.injected.is_none())
        .count();
    assert!(
        patches >= 6,
        "5 MiB + 17 bytes in 1 MiB chunks: {patches} PATCHes"
    );
    let layer_digest = Digest::of(&layer);
    assert_eq!(
        recorder.progress.lock().unwrap()[&layer_digest],
        layer.len() as u64
    );
    assert_eq!(
        skopeo_inspect_digest(&format!("docker://{}/big/image:1", registry.host()), &[]),
        image.digest.to_string()
    );

    // And back: a fresh store pulls the same bytes.
    let back_dir = tempfile::tempdir().unwrap();
    let back = LayoutStore::open_or_create(back_dir.path()).unwrap();
    let pulled = client
        .pull_image(
            &reference(&format!("{}/big/image:1", registry.host())),
            &back,
            None,
        )
        .unwrap();
    assert_eq!(pulled.descriptor.digest, image.digest);
    assert_eq!(
        pulled.bytes_fetched,
        layer.len() as u64 + pulled_config_size(&back, &pulled.descriptor)
    );
    assert_eq!(fs::read(back.blob_path(&layer_digest)).unwrap(), layer);
}

fn pulled_config_size(store: &LayoutStore, manifest: &Descriptor) -> u64 {
    match store.read_manifest(manifest).unwrap().1 {
        tender_oci::Manifest::Image(m) => m.config.size,
        other => panic!("not an image: {other:?}"),
    }
}

#[test]
fn blobs_are_mounted_from_another_repository() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let image = put_image(&store, "linux/amd64", &noise(4096, 3));
    let client = client(&[&host]);
    client
        .push_image(&store, &image, &reference(&format!("{host}/team-a/app:1")))
        .unwrap();

    let layer = match store.read_manifest(&image).unwrap().1 {
        tender_oci::Manifest::Image(m) => m.layers[0].clone(),
        other => panic!("{other:?}"),
    };
    let b = reference(&format!("{host}/team-b/app:1"));
    let from = reference(&format!("{host}/team-a/app:1"));
    assert_eq!(
        client
            .push_blob_from(&store, &b, &layer, Some(&from))
            .unwrap(),
        BlobOutcome::Mounted
    );
    assert_eq!(
        client
            .push_blob_from(&store, &b, &layer, Some(&from))
            .unwrap(),
        BlobOutcome::AlreadyPresent
    );
    // A hint that does not have the blob falls back to an upload.
    let other = put_image(&store, "linux/arm64", &noise(4096, 4));
    let other_layer = match store.read_manifest(&other).unwrap().1 {
        tender_oci::Manifest::Image(m) => m.layers[0].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        client
            .push_blob_from(&store, &b, &other_layer, Some(&from))
            .unwrap(),
        BlobOutcome::Transferred
    );
    let response = http_get(&host, &format!("/v2/team-b/app/blobs/{}", layer.digest)).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(Digest::of(&response.body), layer.digest);
}

#[test]
fn push_manifest_checks_content_type_and_digest() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let image = put_image(&store, "linux/amd64", b"layer");
    let client = client(&[&host]);
    let repo = reference(&format!("{host}/m/x:1"));
    // Blobs first, then the manifest by tag and by digest.
    for d in store.walk_image(&image).unwrap() {
        if !d.is_manifest() {
            client.push_blob_from(&store, &repo, &d, None).unwrap();
        }
    }
    let (bytes, _) = store.read_manifest(&image).unwrap();
    let pushed = client
        .push_manifest(&repo, "1", &bytes, OCI_MANIFEST)
        .unwrap();
    assert_eq!(pushed, image.digest);
    client
        .push_manifest(&repo, &image.digest.to_string(), &bytes, OCI_MANIFEST)
        .unwrap();
    let served = client.resolve(&repo).unwrap();
    assert_eq!(served.media_type, OCI_MANIFEST);
    assert_eq!(served.bytes, bytes);

    let wrong = Digest::of(b"other");
    let err = client
        .push_manifest(&repo, &wrong.to_string(), &bytes, OCI_MANIFEST)
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    let err = client
        .push_manifest(&repo, "2", &bytes, OCI_INDEX)
        .unwrap_err();
    assert!(err.to_string().contains("mediaType"), "{err}");
}

#[test]
fn cosign_signature_tags_are_found() {
    let registry = Registry::start();
    let host = registry.host();
    seed_gateway_and_historian(&host);
    seed(
        &host,
        &format!(
            "registry.plant.example/plant/opcua-gateway:{}",
            signature_tag()
        ),
        &format!("plant/opcua-gateway:{}", signature_tag()),
    );
    let client = client(&[&host]);

    let gateway = reference(&format!("{host}/plant/opcua-gateway:1.4.2"));
    let found = client
        .find_signatures(&gateway, &digest(GATEWAY_DIGEST))
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, ArtifactKind::CosignSignature);
    assert_eq!(found[0].descriptor.digest, digest(SIGNATURE_DIGEST));
    assert_eq!(
        found[0].reference.to_string(),
        format!("{host}/plant/opcua-gateway:{}", signature_tag())
    );
    // The signature is an image like any other: pull it, its layer is the
    // cosign simplesigning payload.
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let pulled = client
        .pull_image(&found[0].reference, &store, None)
        .unwrap();
    let layers = match store.read_manifest(&pulled.descriptor).unwrap().1 {
        tender_oci::Manifest::Image(m) => m.layers,
        other => panic!("{other:?}"),
    };
    assert_eq!(layers[0].media_type, media::COSIGN_SIMPLESIGNING);

    let historian = reference(&format!("{host}/plant/historian:2.1.0"));
    assert!(
        client
            .find_signatures(&historian, &digest(HISTORIAN_DIGEST))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn referrers_tag_schema_is_found() {
    // distribution 2.8 has no referrers API (404): the fallback tag
    // sha256-<hex> holding an index of referrers is read instead.
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let image = put_image(&store, "linux/amd64", b"subject layer");
    let client = client(&[&host]);
    let repo = reference(&format!("{host}/ref/app:1"));
    client.push_image(&store, &image, &repo).unwrap();

    let empty = store.put_blob_bytes(b"{}").unwrap();
    let payload = store.put_blob_bytes(b"sbom").unwrap();
    let mut subject = image.clone();
    subject.platform = None;
    let sbom = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/spdx+json",
        "config": {"mediaType": media::OCI_EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/spdx+json", "digest": payload, "size": 4}],
        "subject": subject,
    }))
    .unwrap();
    store.put_blob_bytes(&sbom).unwrap();
    let mut sbom_descriptor = Descriptor::of_bytes(OCI_MANIFEST, &sbom);
    client
        .push_image(
            &store,
            &sbom_descriptor,
            &repo.by_digest(sbom_descriptor.digest),
        )
        .unwrap();
    sbom_descriptor.artifact_type = Some("application/spdx+json".into());
    let referrers = put_index(&store, std::slice::from_ref(&sbom_descriptor));
    let (bytes, _) = store.read_manifest(&referrers).unwrap();
    client
        .push_manifest(
            &repo,
            &format!("sha256-{}", image.digest.hex()),
            &bytes,
            OCI_INDEX,
        )
        .unwrap();

    let found = client.find_signatures(&repo, &image.digest).unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].kind, ArtifactKind::Referrer);
    assert_eq!(found[0].descriptor.digest, sbom_descriptor.digest);
    assert_eq!(
        found[0].reference.to_string(),
        format!("{host}/ref/app@{}", sbom_descriptor.digest)
    );
    // Pulling a referrer brings its subject along (children include it).
    let fresh_dir = tempfile::tempdir().unwrap();
    let fresh = LayoutStore::open_or_create(fresh_dir.path()).unwrap();
    client
        .pull_image(&found[0].reference, &fresh, None)
        .unwrap();
    assert!(fresh.has_blob(&image.digest));
    assert_store_complete(&fresh);
}

#[test]
fn platform_filters_on_a_multi_arch_index() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let amd64 = put_image(&store, "linux/amd64", &noise(1000, 1));
    let arm64 = put_image(&store, "linux/arm64/v8", &noise(1000, 2));
    let arm = put_image(&store, "linux/arm/v7", &noise(1000, 3));
    let index = put_index(&store, &[amd64.clone(), arm64.clone(), arm.clone()]);
    let client = client(&[&host]);
    let multi = reference(&format!("{host}/multi/app:1"));
    client.push_image(&store, &index, &multi).unwrap();
    assert_eq!(
        skopeo_inspect_digest(&format!("docker://{multi}"), &[]),
        index.digest.to_string()
    );

    // No filter: the index whole.
    let whole_dir = tempfile::tempdir().unwrap();
    let whole = LayoutStore::open_or_create(whole_dir.path()).unwrap();
    let pulled = client.pull_image(&multi, &whole, None).unwrap();
    assert_eq!(pulled.descriptor.digest, index.digest);
    assert_eq!(pulled.blobs_fetched, 6);
    assert_store_complete(&whole);

    // One platform: that manifest alone, named, the index recorded.
    let one_dir = tempfile::tempdir().unwrap();
    let one = LayoutStore::open_or_create(one_dir.path()).unwrap();
    let arm64_filter: Vec<Platform> = vec!["linux/arm64".parse().unwrap()];
    let pulled = client
        .pull_image(&multi, &one, Some(&arm64_filter))
        .unwrap();
    assert_eq!(pulled.descriptor.digest, arm64.digest);
    assert_eq!(pulled.source_index, Some(index.digest));
    assert_eq!(pulled.blobs_fetched, 2);
    assert!(!one.has_blob(&index.digest));
    assert!(!one.has_blob(&amd64.digest));
    assert_eq!(
        one.resolve(&multi.to_string()).unwrap().digest,
        arm64.digest
    );
    assert_store_complete(&one);

    // Two of three: refused before downloading anything.
    let two: Vec<Platform> = vec![
        "linux/arm64".parse().unwrap(),
        "linux/amd64".parse().unwrap(),
    ];
    let empty_dir = tempfile::tempdir().unwrap();
    let empty = LayoutStore::open_or_create(empty_dir.path()).unwrap();
    let err = client.pull_image(&multi, &empty, Some(&two)).unwrap_err();
    assert!(
        matches!(
            err,
            OciError::PartialIndex {
                selected: 2,
                total: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(empty.list_tags().unwrap().is_empty());

    // ... unless the rest is in the store already: then the index is kept.
    let all_but_arm: Vec<Platform> = vec![
        "linux/amd64".parse().unwrap(),
        "linux/arm/v7".parse().unwrap(),
    ];
    let pulled = client.pull_image(&multi, &one, Some(&all_but_arm)).unwrap();
    assert_eq!(pulled.descriptor.digest, index.digest);
    assert_eq!(pulled.source_index, None);
    assert_store_complete(&one);

    // Nothing matches: the message lists what there is.
    let s390x: Vec<Platform> = vec!["linux/s390x".parse().unwrap()];
    let err = client.pull_image(&multi, &empty, Some(&s390x)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, OciError::NoMatchingPlatform { .. }), "{text}");
    assert!(
        text.contains("linux/s390x") && text.contains("linux/arm64/v8"),
        "{text}"
    );
}

#[test]
fn plain_http_must_be_set_for_a_plain_http_registry() {
    let registry = Registry::start();
    let host = registry.host();
    seed(&host, GATEWAY, "plant/opcua-gateway:1.4.2");
    let (client, recorder) = observed_client(&[]);
    let started = Instant::now();
    let err = client
        .resolve(&reference(&format!("{host}/plant/opcua-gateway:1.4.2")))
        .unwrap_err();
    assert!(matches!(err, OciError::Tls { .. }), "{err}");
    assert!(err.to_string().contains("plain_http"), "{err}");
    assert!(
        recorder.retries.lock().unwrap().is_empty(),
        "TLS errors are final"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // With the flag it works.
    client_ok(&host);
}

fn client_ok(host: &str) {
    let resolved = client(&[host])
        .resolve(&reference(&format!("{host}/plant/opcua-gateway:1.4.2")))
        .unwrap();
    assert_eq!(resolved.digest, digest(GATEWAY_DIGEST));
}

#[test]
fn connection_refused_is_retried_then_reported() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let (client, recorder) = observed_client(&[&host]);
    let err = client
        .resolve(&reference(&format!("{host}/nobody/home:1")))
        .unwrap_err();
    assert!(
        matches!(&err, OciError::RetriesExhausted { attempts: 5, last, .. } if matches!(**last, OciError::Transport { .. })),
        "{err}"
    );
    assert_eq!(recorder.retries.lock().unwrap().len(), 4);
    assert!(err.to_string().contains(&host), "{err}");
}

#[test]
fn layout_write_blob_from_rejects_mismatching_content_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let data = noise(2 * 1024 * 1024, 9);
    let claimed = Digest::of(b"not this");
    let err = store
        .write_blob_from(&data[..], &claimed, Some(data.len() as u64))
        .unwrap_err();
    assert!(matches!(err, OciError::DigestMismatch { .. }), "{err}");
    assert!(!store.has_blob(&claimed));
    assert_eq!(
        fs::read_dir(dir.path().join("blobs/sha256"))
            .unwrap()
            .count(),
        0,
        "no temp file, no blob"
    );
    // The sample layout opens read-only and walks completely.
    let sample = LayoutStore::open(sample_layout()).unwrap();
    let gateway = sample.resolve(GATEWAY).unwrap();
    assert_eq!(gateway.digest, digest(GATEWAY_DIGEST));
    assert_eq!(sample.walk_image(&gateway).unwrap().len(), 5);
}

// --- a registry with HTTP Basic auth (htpasswd) -------------------------------

/// bcrypt of "s3cret" (cost 4), for user "tender".
const HTPASSWD: &str = "tender:$2y$04$cPncpY8zDWzZuWiMKxIctetbetBUlSnJdRxnQ8vJJkADOSWmWD2rm\n";

struct AuthRegistry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    fn start() -> AuthRegistry {
        let dir = tempfile::tempdir().unwrap();
        let htpasswd = dir.path().join("htpasswd");
        fs::write(&htpasswd, HTPASSWD).unwrap();
        let storage = dir.path().join("storage");
        fs::create_dir(&storage).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 auth:\n  htpasswd:\n    realm: tender-test\n    path: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: tender-test\n",
                storage.display(),
                htpasswd.display()
            ),
        )
        .unwrap();
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (run scripts/install-deps.sh)");
        let registry = AuthRegistry {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !http_get(&registry.host(), "/v2/").is_ok_and(|r| r.status == 401) {
            assert!(Instant::now() < deadline, "auth registry did not start");
            std::thread::sleep(Duration::from_millis(25));
        }
        registry
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn docker_config(dir: &Path, host: &str, user_password: &str) -> PathBuf {
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(user_password);
    let path = dir.join("config.json");
    fs::write(
        &path,
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    path
}

#[test]
fn credentials_from_docker_config_authenticate_with_basic_auth() {
    let registry = AuthRegistry::start();
    let host = registry.host();
    let copied = skopeo(&[
        "--insecure-policy",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        "--dest-creds",
        "tender:s3cret",
        &format!("oci:{}:{GATEWAY}", sample_layout().display()),
        &format!("docker://{host}/plant/opcua-gateway:1.4.2"),
    ]);
    assert!(
        copied.status.success(),
        "{}",
        String::from_utf8_lossy(&copied.stderr)
    );
    let gateway = reference(&format!("{host}/plant/opcua-gateway:1.4.2"));

    // Anonymous: refused, naming the manifest, not retried.
    let err = client(&[&host]).resolve(&gateway).unwrap_err();
    assert!(matches!(err, OciError::Denied { status: 401, .. }), "{err}");
    assert!(err.to_string().contains("opcua-gateway:1.4.2"), "{err}");

    // Wrong password: refused too.
    let dir = tempfile::tempdir().unwrap();
    let wrong = docker_config(dir.path(), &host, "tender:wrong");
    let err = RegistryClient::new(ClientOptions {
        credentials: CredentialSource::DockerConfigFile(wrong),
        ..options(&[&host])
    })
    .unwrap()
    .resolve(&gateway)
    .unwrap_err();
    assert!(matches!(err, OciError::Denied { status: 401, .. }), "{err}");

    // From config.json: pull and push work.
    let good_dir = tempfile::tempdir().unwrap();
    let good = docker_config(good_dir.path(), &host, "tender:s3cret");
    let client = RegistryClient::new(ClientOptions {
        credentials: CredentialSource::DockerConfigFile(good),
        ..options(&[&host])
    })
    .unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(store_dir.path()).unwrap();
    let pulled = client.pull_image(&gateway, &store, None).unwrap();
    assert_eq!(pulled.descriptor.digest, digest(GATEWAY_DIGEST));
    let image = put_image(&store, "linux/amd64", b"pushed with basic auth");
    client
        .push_image(&store, &image, &reference(&format!("{host}/pushed/app:1")))
        .unwrap();
    assert_eq!(
        skopeo_inspect_digest(
            &format!("docker://{host}/pushed/app:1"),
            &["--creds", "tender:s3cret"]
        ),
        image.digest.to_string()
    );
}

/// `push_image_counted` says what the registry already had, manifests
/// included; a second push under a new tag finds everything present, sends
/// no child manifest again, and still sets the new tag.
#[test]
fn a_counted_push_reports_what_the_registry_already_had() {
    let registry = Registry::start();
    let host = registry.host();
    let dir = tempfile::tempdir().unwrap();
    let store = LayoutStore::open_or_create(dir.path()).unwrap();
    let amd64 = put_image(&store, "linux/amd64", &noise(1000, 11));
    let arm64 = put_image(&store, "linux/arm64/v8", &noise(1000, 12));
    let index = put_index(&store, &[amd64, arm64]);
    let client = client(&[&host]);
    let all = store.walk_image(&index).unwrap().len();

    let first = reference(&format!("{host}/counted/app:1"));
    let pushed = client.push_image_counted(&store, &index, &first).unwrap();
    assert_eq!(pushed.digest, index.digest);
    assert_eq!(pushed.outcomes.len(), all, "{:?}", pushed.outcomes);
    assert!(
        pushed
            .outcomes
            .values()
            .all(|o| *o == BlobOutcome::Transferred),
        "{:?}",
        pushed.outcomes
    );

    let second = reference(&format!("{host}/counted/app:2"));
    let pushed = client.push_image_counted(&store, &index, &second).unwrap();
    assert_eq!(pushed.outcomes.len(), all);
    assert!(
        pushed
            .outcomes
            .values()
            .all(|o| *o == BlobOutcome::AlreadyPresent),
        "{:?}",
        pushed.outcomes
    );
    assert_eq!(
        skopeo_inspect_digest(&format!("docker://{second}"), &[]),
        index.digest.to_string()
    );
}
