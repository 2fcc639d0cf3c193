//! Generated inputs shared by rows: random-blob OCI layouts, the bench key
//! and trust policy, and bundles packed from them.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

use super::{Bench, log, report::human_bytes};

/// An OCI image layout at `dir` holding `count` blobs of incompressible random
/// bytes (`openssl rand`), `total` bytes in all. No image manifests: tender
/// carries blobs, and random data keeps any compression or dedup from
/// flattering the numbers. Blobs are named by the sha2 crate's digest of
/// the file openssl wrote, so a wrong digest in tender would show up as a
/// failed verify.
pub fn make_layout(dir: &Path, total: u64, count: u64) -> Result<()> {
    let each = total / count;
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    fs::write(
        dir.join("index.json"),
        r#"{"schemaVersion":2,"manifests":[]}"#,
    )?;
    let tmp = dir.join("blob.tmp");
    for _ in 0..count {
        run(Command::new("openssl")
            .arg("rand")
            .arg("-out")
            .arg(&tmp)
            .arg(each.to_string()))?;
        let hex = sha256_file(&tmp)?;
        fs::rename(&tmp, blobs.join(hex))?;
    }
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Removes a file or directory if it is there.
pub fn remove(path: &Path) -> Result<()> {
    let result = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(_) => return Ok(()),
    };
    result.with_context(|| format!("removing {}", path.display()))
}

/// Runs a setup command (not timed), its stdout discarded, failing loudly.
pub fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }
    ensure!(out.status.success(), "{} from: {cmd:?}", out.status);
    Ok(())
}

impl Bench {
    /// One release key and a trust policy trusting it, shared by rows.
    pub fn ensure_keys(&self) -> Result<()> {
        let policy = self.work().join("policy.yaml");
        if policy.exists() {
            return Ok(());
        }
        run(Command::new(&self.tender)
            .args(["keygen", "bench", "--dir"])
            .arg(self.work())
            .arg("--no-progress"))?;
        fs::write(
            &policy,
            "version: 1\nkeys:\n  - name: bench\n    public_key_file: bench.pub\n    roles: [release]\nthresholds:\n  release: 1\n",
        )?;
        Ok(())
    }

    /// Seals `layout` into the bundle `out`, signed by the bench key.
    pub fn pack_bundle(&self, layout: &Path, out: &Path) -> Result<()> {
        self.ensure_keys()?;
        run(Command::new(&self.tender)
            .arg("pack")
            .arg(layout)
            .arg("-o")
            .arg(out)
            .arg("--key")
            .arg(self.work().join("bench.key"))
            .args(["--sequence", "1", "--site", "bench", "--no-progress"]))
    }

    /// Layout + pack; the layout is removed afterwards so that a full run
    /// needs disk for the bundles only.
    pub fn make_bundle(&self, out: &Path, total: u64, count: u64) -> Result<()> {
        let name = out.file_name().context("bundle path has a file name")?;
        let layout = self
            .work()
            .join(format!("layout.{}", name.to_string_lossy()));
        log(format_args!(
            "generating {} in {count} random blobs",
            human_bytes(total)
        ));
        make_layout(&layout, total, count)?;
        log(format_args!("packing {}", name.to_string_lossy()));
        self.pack_bundle(&layout, out)?;
        fs::remove_dir_all(&layout)?;
        Ok(())
    }

    /// Fails early instead of ENOSPC halfway through a 2 GiB write.
    pub fn need_space(&self, bytes: u64) -> Result<()> {
        let out = Command::new("df").arg("-Pk").arg(self.work()).output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        let avail_kib: u64 = text
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3)?.parse().ok())
            .context("parsing df output")?;
        let avail = avail_kib * 1024;
        ensure!(
            avail >= bytes,
            "need {} free under {}, have {}",
            human_bytes(bytes),
            self.work().display(),
            human_bytes(avail)
        );
        Ok(())
    }
}
