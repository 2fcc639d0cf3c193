//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the built `tender` binary.
pub fn tender(args: &[&str], cwd: &Path) -> Output {
    tender_cmd(args, cwd).output().expect("run tender")
}

pub fn tender_cmd(args: &[&str], cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tender"));
    cmd.args(args).current_dir(cwd).env("NO_COLOR", "1");
    cmd
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts an exit code, showing both streams when it differs.
#[track_caller]
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
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

    /// Packs the sample fleet's OCI layout into `name` (sequence 1).
    pub fn pack_sample(&self, name: &str) -> PathBuf {
        let layout = tender_test_support::repo_root().join("testdata/fleet/images");
        let out = self.join(name);
        let o = tender(
            &[
                "pack",
                layout.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--key",
                "hub.key",
                "--sequence",
                "1",
                "--site",
                "plant-001",
                "--no-progress",
            ],
            self.path(),
        );
        assert_exit(&o, 0);
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
