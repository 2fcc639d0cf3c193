//! One repository path on two registries (issue #12 part 3): two real
//! registries serve `stefanprodan/podinfo:6.14.1` with different images,
//! a pod uses each. Exported, then imported at an embedded-store site
//! (read back through `tender serve`) and at a registry-backed site with a
//! prefix; every pinned reference names its own image, and containerd,
//! given the `hosts.toml` import wrote, pulls each by tag through the site
//! with `?ns=`. Export refuses images that would meet at a site.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tender_test_support::{Registry, skopeo_copy, skopeo_inspect_digest};

use crate::util::*;

const SITE: &str = "plant-001";
const CLUSTER: &str = "plant-001-line-a";
const PATH: &str = "stefanprodan/podinfo:6.14.1";

/// The two registries and the digest each serves for [`PATH`].
struct Upstreams {
    a: Registry,
    b: Registry,
    a_digest: String,
    b_digest: String,
}

impl Upstreams {
    /// Two sample images, one per registry, under the same path; `a` also
    /// holds `b`'s image under another tag (for the collision test).
    fn start() -> Upstreams {
        let layout = tender_test_support::repo_root().join("testdata/fleet/images");
        let image = |name: &str| format!("oci:{}:registry.plant.example/{name}", layout.display());
        let (a, b) = (Registry::start(), Registry::start());
        let gateway = image("plant/opcua-gateway:1.4.2");
        let historian = image("plant/historian:2.1.0");
        skopeo_copy(&gateway, &format!("docker://{}/{PATH}", a.host()));
        skopeo_copy(&historian, &format!("docker://{}/{PATH}", b.host()));
        skopeo_copy(
            &historian,
            &format!("docker://{}/stefanprodan/podinfo:other", a.host()),
        );
        let a_digest = skopeo_inspect_digest(&format!("docker://{}/{PATH}", a.host()), &[]);
        let b_digest = skopeo_inspect_digest(&format!("docker://{}/{PATH}", b.host()), &[]);
        assert_ne!(a_digest, b_digest);
        Upstreams {
            a,
            b,
            a_digest,
            b_digest,
        }
    }

    fn image_a(&self) -> String {
        format!("{}/{PATH}", self.a.host())
    }

    fn image_b(&self) -> String {
        format!("{}/{PATH}", self.b.host())
    }
}

/// A fleet of one cluster whose two Deployments run `images`, pulled over
/// plain HTTP from `registries`.
fn write_fleet(hub: &Workspace, name: &str, images: &[String], registries: &[String]) -> PathBuf {
    let dir = hub.join(name);
    fs::create_dir_all(dir.join("manifests")).unwrap();
    let deployments: Vec<String> = images
        .iter()
        .enumerate()
        .map(|(n, image)| {
            format!(
                "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{n}\n  namespace: line\nspec:\n  selector:\n    matchLabels: {{app: app-{n}}}\n  template:\n    metadata:\n      labels: {{app: app-{n}}}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
            )
        })
        .collect();
    fs::write(dir.join("manifests/app.yaml"), deployments.concat()).unwrap();
    let registries: String = registries
        .iter()
        .map(|host| format!("  \"{host}\": {{ plainHttp: true }}\n"))
        .collect();
    fs::write(
        dir.join("fleet.yaml"),
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Fleet\nname: podinfo\nchannel: stable\nclusters:\n  - name: {CLUSTER}\n    site: {SITE}\n    tier: production\nsources:\n  - name: app\n    manifests: {{ path: manifests }}\nregistries:\n{registries}"
        ),
    )
    .unwrap();
    dir.join("fleet.yaml")
}

fn import(ws: &Workspace, bundle: &Path, site: &Path) {
    let o = TestCommand::new(ws.path())
        .arg("import")
        .arg(bundle)
        .arg("--site")
        .arg(site)
        .arg("--no-progress")
        .output();
    assert_exit(&o, 0);
}

/// The images of the delivered Deployments, in order (`app-0`, `app-1`).
fn delivered_images(dir: &Path) -> Vec<String> {
    (0..2)
        .map(|n| {
            let text = fs::read_to_string(dir.join(format!("deployment-line-app-{n}.yaml")))
                .unwrap_or_else(|e| panic!("app-{n} delivered to {}: {e}", dir.display()));
            // Long values are folded (`image: >-` and the value below).
            let lines: Vec<&str> = text.lines().map(str::trim).collect();
            let at = lines
                .iter()
                .position(|l| l.trim_start_matches("- ").starts_with("image:"))
                .unwrap_or_else(|| panic!("no image in {text}"));
            let value = lines[at].trim_start_matches("- ")["image:".len()..].trim();
            let value = if value.starts_with('>') {
                lines[at + 1]
            } else {
                value
            };
            value.trim_matches(['"', '\'']).to_string()
        })
        .collect()
}

/// `HOST/REPO:TAG@DIGEST` read back by digest and by tag (skopeo takes
/// one or the other).
#[track_caller]
fn assert_resolves(pinned: &str, digest: &str, extra: &[&str]) {
    let (named, pinned_digest) = pinned.split_once('@').unwrap();
    assert_eq!(pinned_digest, digest, "{pinned}");
    let (repository, _tag) = named.rsplit_once(':').unwrap();
    let by_digest = format!("docker://{repository}@{digest}");
    assert_eq!(
        skopeo_inspect_digest(&by_digest, extra),
        digest,
        "{by_digest}"
    );
    let by_tag = format!("docker://{named}");
    assert_eq!(skopeo_inspect_digest(&by_tag, extra), digest, "{by_tag}");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `tender serve` over HTTPS (a self-signed certificate: the embedded
/// store's mirror configuration names `https://`), killed on drop.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(ws: &Workspace, store: &Path, port: u16) -> Serve {
        let cert = ws.join("serve-cert.pem");
        let key = ws.join("serve-key.pem");
        let openssl = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
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
            .expect("run openssl (scripts/install-deps.sh installs it)");
        assert!(openssl.status.success(), "{}", stderr(&openssl));
        let log = ws.join("serve.log");
        let listen = format!("127.0.0.1:{port}");
        let mut serve = ws.tender();
        serve
            .arg("serve")
            .arg("--store")
            .arg(store)
            .args(["--listen", &listen])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key);
        let child = serve
            .into_command()
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("start tender serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&listen).is_err() {
            assert!(Instant::now() < deadline, "tender serve did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Serve { child, log }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn one_path_on_two_registries_at_an_embedded_and_a_registry_site() {
    let up = Upstreams::start();
    let ws = Workspace::new();
    let hosts = [up.a.host(), up.b.host()];
    let fleet = write_fleet(&ws, "fleet", &[up.image_a(), up.image_b()], &hosts);
    let bundle = export_fleet(&ws, &fleet, "podinfo.tender");

    // (a) The embedded store, served by `tender serve`.
    let port = free_port();
    let serve_host = format!("127.0.0.1:{port}");
    let embedded = write_site_file(
        &ws,
        "embedded.yaml",
        SITE,
        &[CLUSTER],
        &format!(
            "stateDir: embedded\nregistryHost: \"{serve_host}\"\ndelivery:\n  {CLUSTER}:\n    directory: {{path: out-embedded}}\n"
        ),
    );
    import(&ws, &bundle, &embedded);
    let pinned = delivered_images(&ws.join("out-embedded"));
    // Each keeps its registry (port as `_`) as the first path component.
    assert_eq!(
        pinned,
        [
            format!(
                "{serve_host}/127.0.0.1_{}/{PATH}@{}",
                up.a.port(),
                up.a_digest
            ),
            format!(
                "{serve_host}/127.0.0.1_{}/{PATH}@{}",
                up.b.port(),
                up.b_digest
            ),
        ]
    );
    let serve = Serve::start(&ws, &ws.join("embedded/store"), port);
    for (image, digest) in pinned.iter().zip([&up.a_digest, &up.b_digest]) {
        assert_resolves(image, digest, &["--tls-verify=false"]);
    }

    // (b) A registry-backed site with a prefix.
    let site_registry = Registry::start();
    let registry_site = write_site_file(
        &ws,
        "registry.yaml",
        SITE,
        &[CLUSTER],
        &format!(
            "stateDir: registry-site\nregistry: {{url: \"{}\", plainHttp: true, prefix: tender}}\ndelivery:\n  {CLUSTER}:\n    directory: {{path: out-registry}}\n",
            site_registry.host()
        ),
    );
    import(&ws, &bundle, &registry_site);
    let pinned_at_registry = delivered_images(&ws.join("out-registry"));
    let site_host = site_registry.host();
    assert_eq!(
        pinned_at_registry,
        [
            format!(
                "{site_host}/tender/127.0.0.1_{}/{PATH}@{}",
                up.a.port(),
                up.a_digest
            ),
            format!(
                "{site_host}/tender/127.0.0.1_{}/{PATH}@{}",
                up.b.port(),
                up.b_digest
            ),
        ]
    );
    for (image, digest) in pinned_at_registry.iter().zip([&up.a_digest, &up.b_digest]) {
        assert_resolves(image, digest, &[]);
    }

    // The mirror configuration names each upstream's site repositories.
    let embedded_toml = ws.join(&format!(
        "embedded/mirrors/containerd/{}/hosts.toml",
        up.a.host()
    ));
    let text = fs::read_to_string(&embedded_toml).unwrap();
    assert!(
        text.contains(&format!(
            "[host.\"https://{serve_host}/v2/127.0.0.1_{}\"]",
            up.a.port()
        )) && text.contains("override_path = true"),
        "{text}"
    );
    let k3s = fs::read_to_string(ws.join("registry-site/mirrors/k3s-registries.yaml")).unwrap();
    // (The k3s file's structure is checked in tender-deliver's tests.)
    for expected in [
        format!("tender/127.0.0.1_{}/$1", up.b.port()),
        format!("http://{site_host}"),
    ] {
        assert!(k3s.contains(&expected), "{expected} not in:\n{k3s}");
    }

    // The path alone (how an older tender pinned) serves both by digest,
    // and refuses a tag it cannot attribute.
    for digest in [&up.a_digest, &up.b_digest] {
        let old = format!("docker://{serve_host}/stefanprodan/podinfo@{digest}");
        assert_eq!(
            skopeo_inspect_digest(&old, &["--tls-verify=false"]),
            *digest
        );
    }
    let by_tag = tender_test_support::skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{serve_host}/{PATH}"),
    ]);
    assert!(!by_tag.status.success());

    // containerd pulls each by tag through the site, upstreams gone.
    let (a_host, b_host) = (up.a.host(), up.b.host());
    let (a_digest, b_digest) = (up.a_digest.clone(), up.b_digest.clone());
    drop(up);
    let Some(containerd) = Containerd::start(&ws) else {
        return;
    };
    let embedded_hosts = ws.join("embedded/mirrors/containerd");
    let registry_hosts = ws.join("registry-site/mirrors/containerd");
    for (hosts_dir, upstream, digest) in [
        (&embedded_hosts, &a_host, &a_digest),
        (&embedded_hosts, &b_host, &b_digest),
        (&registry_hosts, &a_host, &a_digest),
        (&registry_hosts, &b_host, &b_digest),
    ] {
        let image = format!("{upstream}/{PATH}");
        assert_eq!(&containerd.fetch(hosts_dir, &image), digest, "{image}");
        containerd.remove(&image);
    }
    let log = serve.log();
    for upstream in [&a_host, &b_host] {
        let component = upstream.replace(':', "_");
        let asked = format!("/v2/{component}/stefanprodan/podinfo/manifests/6.14.1?ns=");
        let encoded = upstream.replace(':', "%3A");
        assert!(
            log.contains(&format!("{asked}{upstream}"))
                || log.contains(&format!("{asked}{encoded}")),
            "{asked}{upstream} not in the serve log:\n{log}"
        );
    }
}

/// A private containerd (root, state and socket in the workspace), when
/// this machine can run one; killed on drop.
struct Containerd {
    child: Child,
    socket: PathBuf,
}

impl Containerd {
    /// `None` (with the reason printed) where containerd cannot run: not
    /// installed, not root, or it does not come up.
    fn start(ws: &Workspace) -> Option<Containerd> {
        let skip = |why: String| {
            eprintln!("SKIPPED the containerd pull through the site: {why}");
            None
        };
        if !Path::new("/usr/bin/containerd").exists() {
            return skip("containerd is not installed (scripts/install-deps.sh)".into());
        }
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .ok()
            .map(|o| stdout(&o));
        if uid.as_deref().map(str::trim) != Some("0") {
            return skip("containerd needs root".into());
        }
        let dir = ws.join("containerd");
        fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("containerd.sock");
        let config = dir.join("config.toml");
        fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{0}/root\"\nstate = \"{0}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{1}\"\n[ttrpc]\n  address = \"{1}.ttrpc\"\n",
                dir.display(),
                socket.display()
            ),
        )
        .unwrap();
        let log = dir.join("containerd.log");
        let child = Command::new("/usr/bin/containerd")
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn();
        let child = match child {
            Ok(child) => child,
            Err(e) => return skip(format!("containerd did not start: {e}")),
        };
        let containerd = Containerd { child, socket };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let version = containerd.ctr(&["version"]);
            if version.status.success() {
                return Some(containerd);
            }
            if Instant::now() > deadline {
                let log = fs::read_to_string(&log).unwrap_or_default();
                return skip(format!("containerd did not answer: {log}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ctr --address SOCKET`: add the arguments.
    fn ctr_command(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(&self.socket);
        cmd
    }

    fn ctr(&self, args: &[&str]) -> std::process::Output {
        self.ctr_command().args(args).output().expect("run ctr")
    }

    /// Fetches `image` by tag with `hosts_dir` as containerd's
    /// `config_path` (TLS not verified: tender serve's certificate is
    /// self-signed); returns the digest containerd recorded.
    fn fetch(&self, hosts_dir: &Path, image: &str) -> String {
        let o = self
            .ctr_command()
            .args(["content", "fetch", "--skip-verify", "--all-platforms"])
            .arg("--hosts-dir")
            .arg(hosts_dir)
            .arg(image)
            .output()
            .expect("run ctr");
        assert!(
            o.status.success(),
            "ctr content fetch {image}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let listed = self.ctr(&["images", "ls"]);
        stdout(&listed)
            .lines()
            .find_map(|l| {
                let mut fields = l.split_whitespace();
                (fields.next() == Some(image)).then(|| fields.nth(1).unwrap().to_string())
            })
            .unwrap_or_else(|| panic!("{image} not in ctr images ls:\n{}", stdout(&listed)))
    }

    fn remove(&self, image: &str) {
        let o = self.ctr(&["images", "rm", image]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn export_refuses_images_that_would_meet_at_a_site() {
    let up = Upstreams::start();
    let ws = Workspace::new();
    // One site tag, two digests: the tag and a pin to the other image.
    let pinned_other = format!("{}@{}", up.image_a(), up.b_digest);
    let images = [up.image_a(), pinned_other.clone()];
    let fleet = write_fleet(&ws, "tags", &images, &[up.a.host()]);
    let o = ws.export(&fleet).args(["-o", "x.tender"]).expect_exit(1);
    let err = stderr(&o);
    for image in &images {
        assert!(err.contains(image.as_str()), "{image} not in {err}");
    }
    assert!(err.contains("would meet at a site"), "{err}");
    assert!(!ws.join("x.tender").exists());

    // One site repository for two source repositories (hosts that differ
    // only in case), found before anything is pulled.
    let port = up.a.port();
    let images = [
        format!("LOCALHOST:{port}/{PATH}"),
        format!("localhost:{port}/{PATH}"),
    ];
    let fleet = write_fleet(
        &ws,
        "case",
        &images,
        &images
            .clone()
            .map(|i| i[..i.find('/').unwrap()].to_string()),
    );
    let o = ws
        .export(&fleet)
        .args(["-o", "y.tender", "--dry-run"])
        .expect_exit(1);
    let err = stderr(&o);
    for image in &images {
        assert!(err.contains(image.as_str()), "{image} not in {err}");
    }
    assert!(
        err.contains(&format!("localhost_{port}/stefanprodan/podinfo")),
        "{err}"
    );
}
