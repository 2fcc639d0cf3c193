//! Paths into the repository and wrappers around external tools.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

/// The workspace root (where `Cargo.toml`, `scripts/` and `testdata/` live).
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize()
        .unwrap_or_else(|e| panic!("resolving repo root {}: {e}", root.display()))
}

/// `scripts/helm`: Helm v4's engine behind a `helm` CLI (see
/// `scripts/helm_shim.py`), needing the venv from `scripts/install-deps.sh`.
pub fn helm_shim() -> PathBuf {
    repo_root().join("scripts/helm")
}

/// `sha256:<hex>` of `data`, the OCI digest form.
pub fn sha256_digest(data: &[u8]) -> String {
    let mut out = String::from("sha256:");
    for byte in Sha256::digest(data) {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Runs `skopeo ARGS` and returns its output, whatever the exit status.
///
/// Panics only if skopeo cannot be started (it is not installed).
pub fn skopeo(args: &[&str]) -> Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run skopeo ({e}); run scripts/install-deps.sh to install it")
        })
}

fn skopeo_ok(args: &[&str]) -> Output {
    let output = skopeo(args);
    assert!(
        output.status.success(),
        "skopeo {} failed with {}:\n{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Whether `image_ref` is `docker://` on a loopback host: the test
/// registries speak plain HTTP there, so TLS verification must be off.
fn is_loopback_docker(image_ref: &str) -> bool {
    let Some(rest) = image_ref.strip_prefix("docker://") else {
        return false;
    };
    rest.starts_with("127.") || rest.starts_with("localhost") || rest.starts_with("[::1]")
}

/// Digest of the manifest `image_ref` points at: sha256 of
/// `skopeo inspect --raw`, so it is right for indexes too.
///
/// `extra_args` go before the reference (e.g. `--creds`); for a loopback
/// `docker://` reference `--tls-verify=false` is added unless already given.
/// Panics with skopeo's stderr on failure.
pub fn skopeo_inspect_digest(image_ref: &str, extra_args: &[&str]) -> String {
    let mut args = vec!["inspect", "--raw"];
    if is_loopback_docker(image_ref) && !extra_args.iter().any(|a| a.starts_with("--tls-verify")) {
        args.push("--tls-verify=false");
    }
    args.extend_from_slice(extra_args);
    args.push(image_ref);
    sha256_digest(&skopeo_ok(&args).stdout)
}

/// `skopeo copy SRC DST` (all tags/images of an index are kept with `--all`).
///
/// TLS verification is turned off for loopback `docker://` sides and the
/// signature policy is not consulted. Panics with skopeo's stderr on failure.
pub fn skopeo_copy(src: &str, dst: &str) -> Output {
    let mut args = vec!["--insecure-policy", "copy", "--all", "--quiet"];
    if is_loopback_docker(src) {
        args.push("--src-tls-verify=false");
    }
    if is_loopback_docker(dst) {
        args.push("--dest-tls-verify=false");
    }
    args.extend_from_slice(&[src, dst]);
    skopeo_ok(&args)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;
    use std::fs;
    use std::path::Path;

    #[test]
    fn repo_root_holds_the_workspace() {
        assert!(repo_root().join("Cargo.toml").is_file());
        assert!(helm_shim().is_file(), "scripts/helm is missing");
    }

    fn write_chart(dir: &Path) {
        let files: &[(&str, &str)] = &[
            ("Chart.yaml", "apiVersion: v2\nname: demo\nversion: 0.1.0\n"),
            ("values.yaml", "replicas: 1\nimage: nginx\n"),
            (
                "templates/deploy.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  namespace: {{ .Release.Namespace }}\nspec:\n  replicas: {{ .Values.replicas }}\n  image: {{ .Values.image }}\n  kube: {{ .Capabilities.KubeVersion.Version }}\n",
            ),
            (
                "templates/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n",
            ),
            (
                "templates/hook.yaml",
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: migrate\n  annotations:\n    helm.sh/hook: pre-install\n",
            ),
            (
                "templates/test.yaml",
                "apiVersion: v1\nkind: Pod\nmetadata:\n  name: probe\n  annotations:\n    helm.sh/hook: test\n",
            ),
            ("templates/NOTES.txt", "installed {{ .Release.Name }}\n"),
            (
                "crds/crd.yaml",
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: foos.example.com\n",
            ),
        ];
        for (name, text) in files {
            let path = dir.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
    }

    fn helm(args: &[&str]) -> Output {
        Command::new(helm_shim()).args(args).output().unwrap()
    }

    /// The shim's output must be byte-for-byte what `helm template` prints:
    /// CRDs first (with --include-crds), manifests in install order, then
    /// hooks, each under a `# Source:` header.
    #[test]
    fn helm_shim_renders_like_helm_template() {
        let chart = tempfile::tempdir().unwrap();
        write_chart(chart.path());
        let values = chart.path().join("override.yaml");
        fs::write(&values, "image: busybox\n").unwrap();
        let dir = chart.path().to_str().unwrap();
        let output = helm(&[
            "template",
            "rel",
            dir,
            "-n",
            "prod",
            "--include-crds",
            "--skip-tests",
            "--kube-version",
            "1.29.0",
            "-f",
            values.to_str().unwrap(),
            "--set",
            "replicas=3",
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = "---
# Source: demo/crds/crd.yaml
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: foos.example.com

---
# Source: demo/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: cm

---
# Source: demo/templates/deploy.yaml
apiVersion: apps/v1
kind: Deployment
metadata:
  name: rel
  namespace: prod
spec:
  replicas: 3
  image: busybox
  kube: v1.29.0
---
# Source: demo/templates/hook.yaml
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
  annotations:
    helm.sh/hook: pre-install

";
        assert_eq!(String::from_utf8_lossy(&output.stdout), expected);

        let with_tests = helm(&["template", dir]);
        let text = String::from_utf8_lossy(&with_tests.stdout);
        assert!(text.contains("name: release-name\n"), "{text}");
        assert!(text.contains("# Source: demo/templates/test.yaml\n"));
        assert!(!text.contains("CustomResourceDefinition"));
    }

    #[test]
    fn helm_shim_exit_codes() {
        let chart = tempfile::tempdir().unwrap();
        write_chart(chart.path());
        fs::write(
            chart.path().join("templates/fail.yaml"),
            "{{ fail \"boom\" }}\n",
        )
        .unwrap();
        let dir = chart.path().to_str().unwrap();

        let failed = helm(&["template", dir]);
        assert_eq!(failed.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&failed.stderr).contains("boom"));

        let unsupported = helm(&["template", dir, "--output-dir", "/tmp/x"]);
        assert_eq!(unsupported.status.code(), Some(2));
        assert_eq!(helm(&["install", "x", dir]).status.code(), Some(2));

        let version = helm(&["version"]);
        assert!(version.status.success());
        assert!(
            String::from_utf8_lossy(&version.stdout).starts_with("version.BuildInfo{Version:\"v4.")
        );
    }

    #[test]
    fn digest_of_known_input() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    /// Writes a one-layer OCI image layout under `dir` and returns the
    /// manifest bytes.
    fn write_oci_layout(dir: &Path) -> Vec<u8> {
        let blobs = dir.join("blobs/sha256");
        fs::create_dir_all(&blobs).unwrap();
        let put = |data: &[u8]| {
            let digest = sha256_digest(data);
            fs::write(blobs.join(&digest["sha256:".len()..]), data).unwrap();
            digest
        };
        // An empty tar archive: two zero blocks.
        let layer = vec![0u8; 1024];
        let layer_digest = put(&layer);
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{layer_digest}"]}}}}"#
        );
        let config_digest = put(config.as_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{layer_digest}","size":{}}}]}}"#,
            config.len(),
            layer.len()
        );
        let manifest_digest = put(manifest.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
            manifest.len()
        );
        fs::write(dir.join("index.json"), index).unwrap();
        fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        manifest.into_bytes()
    }

    #[test]
    fn skopeo_copies_into_a_registry_and_inspects_digests() {
        let layout = tempfile::tempdir().unwrap();
        let manifest = write_oci_layout(layout.path());
        let src = format!("oci:{}:v1", layout.path().display());
        assert_eq!(skopeo_inspect_digest(&src, &[]), sha256_digest(&manifest));

        let registry = Registry::start();
        let dst = format!("docker://{}/test/image:v1", registry.host());
        skopeo_copy(&src, &dst);
        let pushed = skopeo_inspect_digest(&dst, &[]);
        assert!(pushed.starts_with("sha256:") && pushed.len() == 71);
        // What the registry serves is what skopeo hashed.
        let served = crate::http::request(
            &registry.host(),
            "GET",
            "/v2/test/image/manifests/v1",
            &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
            b"",
        )
        .unwrap();
        assert_eq!(served.status, 200);
        assert_eq!(sha256_digest(&served.body), pushed);
        assert_eq!(
            served.header("docker-content-digest"),
            Some(pushed.as_str())
        );

        let missing = skopeo(&[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/test/nothing:v1", registry.host()),
        ]);
        assert!(!missing.status.success());
    }
}
