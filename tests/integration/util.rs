//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use crate::command::{TestCommand, assert_exit, stderr, stdout};

/// Runs the built `tender` binary (a shorthand kept for `&str` arguments).
pub fn tender(args: &[&str], cwd: &Path) -> Output {
    TestCommand::new(cwd).args(args).output()
}

/// The venv's Python (`$TENDER_VENV`, else `<repo>/.venv`, made by
/// `scripts/install-deps.sh`), for the tests that compare with Python
/// tools (PyYAML, prometheus-client).
pub fn venv_python() -> PathBuf {
    let venv = std::env::var_os("TENDER_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| tender_test_support::repo_root().join(".venv"));
    let python = venv.join("bin/python");
    assert!(
        python.is_file(),
        "no venv Python at {}; run scripts/install-deps.sh",
        python.display()
    );
    python
}

/// A work directory with a release key, an approver key and a policy
/// requiring one release signature.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in ["hub", "qa"] {
            assert_exit(&tender(&["keygen", name], dir.path()), 0);
        }
        std::fs::write(
            dir.path().join("policy.yaml"),
            "version: 1\nkeys:\n  - name: hub\n    public_key_file: hub.pub\n    roles: [release]\n  - name: qa\n    public_key_file: qa.pub\n    roles: [approver]\nthresholds:\n  release: 1\n",
        )
        .unwrap();
        Workspace { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `tender` run in the workspace.
    pub fn tender(&self) -> TestCommand {
        TestCommand::new(self.path())
    }

    /// `tender export FLEET --key hub.key --no-progress` in the workspace,
    /// with the repository's helm shim and a hub state directory private
    /// to the workspace (so sequences count 1, 2, ... per workspace); add
    /// `-o` and any other arguments.
    pub fn export(&self, fleet: impl AsRef<Path>) -> TestCommand {
        let mut cmd = self.tender();
        cmd.arg("export")
            .arg(fleet.as_ref())
            .args(["--key", "hub.key", "--no-progress"])
            .env("TENDER_HELM", tender_test_support::helm_shim())
            .env("TENDER_HUB_STATE", self.join("hub-state"));
        cmd
    }

    /// Packs the sample fleet's OCI layout into `name` (sequence 1).
    pub fn pack_sample(&self, name: &str) -> PathBuf {
        let layout = tender_test_support::repo_root().join("testdata/fleet/images");
        let out = self.join(name);
        self.tender()
            .arg("pack")
            .arg(layout)
            .arg("-o")
            .arg(&out)
            .args(["--key", "hub.key", "--sequence", "1", "--site", "plant-001"])
            .arg("--no-progress")
            .ok();
        out
    }
}

/// Every file under a directory, relative, sorted: to prove nothing was
/// written where it should not be.
pub fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            out.push(p.strip_prefix(base).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                walk(base, &p, out);
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

// Helpers for exporting the sample fleet and importing it at a site
// (used by `import.rs`).

/// `tender export FLEET -o NAME` in the workspace ([`Workspace::export`]).
pub fn export_fleet(ws: &Workspace, fleet: &Path, name: &str) -> PathBuf {
    let out = ws.join(name);
    ws.export(fleet).arg("-o").arg(&out).ok();
    out
}

/// `testdata/fleet/fleet.yaml`.
pub fn sample_fleet() -> PathBuf {
    tender_test_support::repo_root().join("testdata/fleet/fleet.yaml")
}

/// Writes a site file `file` into the workspace trusting its
/// `policy.yaml`; `extra` is appended as is (e.g. `stateDir: ...`).
pub fn write_site_file(
    ws: &Workspace,
    file: &str,
    name: &str,
    clusters: &[&str],
    extra: &str,
) -> PathBuf {
    let path = ws.join(file);
    std::fs::write(
        &path,
        format!(
            "apiVersion: tender.dev/v1alpha1\nkind: Site\nname: {name}\nclusters: [{}]\ntrustPolicy: policy.yaml\n{extra}",
            clusters.join(", ")
        ),
    )
    .unwrap();
    path
}

/// `tender inspect BUNDLE --json`.
pub fn inspect_json(bundle: &Path) -> serde_json::Value {
    let o = TestCommand::new(bundle.parent().unwrap())
        .arg("inspect")
        .arg(bundle)
        .arg("--json")
        .ok();
    serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON")
}

/// One entry of a (plain ustar) tar stream: its name and where its data is.
#[derive(Debug, Clone)]
pub struct TarSpan {
    pub path: String,
    pub data_offset: usize,
    pub size: usize,
}

/// Walks the headers of a plain ustar stream (what bundles are).
pub fn tar_spans(bytes: &[u8]) -> Vec<TarSpan> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at + 512 <= bytes.len() {
        let header = &bytes[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |range: std::ops::Range<usize>| {
            let raw = &header[range];
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            String::from_utf8_lossy(&raw[..end]).trim().to_string()
        };
        let size = usize::from_str_radix(&field(124..136), 8).expect("octal tar size");
        let path = match field(345..500) {
            prefix if prefix.is_empty() => field(0..100),
            prefix => format!("{prefix}/{}", field(0..100)),
        };
        spans.push(TarSpan {
            path,
            data_offset: at + 512,
            size,
        });
        at += 512 + size.div_ceil(512) * 512;
    }
    spans
}

// Helpers for the export tests (`export.rs`).

/// Copies a directory tree (directories and regular files) from `from`
/// into `to`, which is created.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

/// Extracts a bundle with GNU tar into `dir` (created).
pub fn untar(bundle: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let o = Command::new("tar")
        .arg("-xf")
        .arg(bundle)
        .arg("-C")
        .arg(dir)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "tar: {}", stderr(&o));
}

/// The registry host the sample fleet's images are named after.
pub const SAMPLE_REGISTRY: &str = "registry.plant.example";

/// Pushes every image of the sample fleet's OCI layout (the three images
/// and the cosign signature tag) into the registry at `host` with skopeo,
/// keeping repository and tag: `registry.plant.example/plant/x:1` becomes
/// `HOST/plant/x:1`. Returns the pushed `plant/x:1` names.
pub fn push_sample_images(host: &str) -> Vec<String> {
    let layout = tender_test_support::repo_root().join("testdata/fleet/images");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let names: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // One skopeo per image, at once: the registry takes parallel pushes.
    std::thread::scope(|scope| {
        let pushes: Vec<_> = names
            .iter()
            .map(|name| {
                let layout = &layout;
                scope.spawn(move || {
                    let path = name
                        .strip_prefix(&format!("{SAMPLE_REGISTRY}/"))
                        .unwrap_or_else(|| panic!("{name} is not on {SAMPLE_REGISTRY}"));
                    tender_test_support::skopeo_copy(
                        &format!("oci:{}:{name}", layout.display()),
                        &format!("docker://{host}/{path}"),
                    );
                    path.to_string()
                })
            })
            .collect();
        pushes
            .into_iter()
            .map(|p| p.join().expect("skopeo copy"))
            .collect()
    })
}

// Helpers for the volume tests (`volumes.rs`).

/// Writes an OCI image layout with no images and one blob per entry of
/// `sizes`, of pseudo-random bytes drawn from `seed` (another seed, other
/// blobs). Returns the blobs' `blobs/sha256/<hex>` paths, sorted (the
/// order a bundle holds them in).
pub fn write_blob_layout(dir: &Path, sizes: &[usize], seed: u64) -> Vec<String> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(
        dir.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )
    .unwrap();
    // splitmix64: fast, and random enough that nothing compresses or dedups.
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    let mut paths = Vec::new();
    for &size in sizes {
        let mut bytes = Vec::with_capacity(size + 8);
        while bytes.len() < size {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        bytes.truncate(size);
        let digest = tender_test_support::sha256_digest(&bytes);
        let hex = digest.strip_prefix("sha256:").unwrap();
        std::fs::write(blobs.join(hex), &bytes).unwrap();
        paths.push(format!("blobs/sha256/{hex}"));
    }
    paths.sort();
    paths
}

/// `tender pack LAYOUT -o OUT --key hub.key --sequence 1 --site plant-001`
/// in the workspace, plus `extra` (e.g. `--volume-size 64K`).
pub fn pack_layout(ws: &Workspace, layout: &Path, out: &Path, extra: &[&str]) -> Output {
    ws.tender()
        .arg("pack")
        .arg(layout)
        .arg("-o")
        .arg(out)
        .args(["--key", "hub.key", "--sequence", "1", "--site", "plant-001"])
        .arg("--no-progress")
        .args(extra)
        .output()
}

/// A fixture made once and shared by the tests alive at the time; it is
/// dropped (and its temp dirs removed) when the last of them lets go, and
/// made again if a later test asks.
pub fn shared_fixture<T>(
    slot: &std::sync::Mutex<std::sync::Weak<T>>,
    make: impl FnOnce() -> T,
) -> std::sync::Arc<T> {
    let mut shared = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = shared.upgrade() {
        return existing;
    }
    let made = std::sync::Arc::new(make());
    *shared = std::sync::Arc::downgrade(&made);
    made
}
