//! Timing one external command: wall time from the harness's own clock,
//! CPU and peak RSS from GNU time (`/usr/bin/time -v`, the only portable
//! way to get a child's peak RSS without unsafe code).

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::report::round;

/// One run of one command.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub wall_s: f64,
    /// User + system seconds.
    pub cpu_s: f64,
    pub rss_kib: u64,
}

/// Runs `program args` once under `/usr/bin/time -v`, stdout discarded.
/// Fails loudly if the command fails: a bench of a failing command is
/// meaningless. `work` holds GNU time's report.
pub fn measure<I, S>(work: &Path, program: impl AsRef<OsStr>, args: I) -> Result<Sample>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    measure_to(work, Stdio::null(), program, args)
}

/// [`measure`], with the command's stdout going to `stdout` (a file for a
/// row that reads what the command printed).
pub fn measure_to<I, S>(
    work: &Path,
    stdout: impl Into<Stdio>,
    program: impl AsRef<OsStr>,
    args: I,
) -> Result<Sample>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let report = work.join("time.out");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(program.as_ref())
        .args(args);
    let start = Instant::now();
    let out = cmd
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .context("running /usr/bin/time")?;
    let wall_s = start.elapsed().as_secs_f64();
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!("{} from: {cmd:?}", out.status);
    }
    let text = std::fs::read_to_string(&report)
        .with_context(|| format!("reading {}", report.display()))?;
    let field = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(": "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    // Microseconds of wall time, centiseconds of CPU: what the clocks resolve.
    Ok(Sample {
        wall_s: round(wall_s, 6),
        cpu_s: round(
            field("User time (seconds)") + field("System time (seconds)"),
            2,
        ),
        rss_kib: field("Maximum resident set size (kbytes)") as u64,
    })
}

/// Samples of one side of a row, kept so the JSON can list them.
#[derive(Debug, Default)]
pub struct Samples(pub Vec<Sample>);

impl Samples {
    pub fn push(&mut self, s: Sample) {
        self.0.push(s);
    }
    pub fn wall(&self) -> Vec<f64> {
        self.0.iter().map(|s| s.wall_s).collect()
    }
    pub fn cpu(&self) -> Vec<f64> {
        self.0.iter().map(|s| s.cpu_s).collect()
    }
    /// Peak RSS is a ceiling, so the worst run counts.
    pub fn max_rss_kib(&self) -> u64 {
        self.0.iter().map(|s| s.rss_kib).max().unwrap_or(0)
    }
}

pub fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The external tools the rows run (besides tender and /usr/bin/time).
const TOOLS: &[&str] = &["openssl", "python3", "skopeo", "zstd"];

/// The external tools every row may use; fail early with the install hint.
pub fn check_tools() -> Result<()> {
    let mut missing = Vec::new();
    for tool in TOOLS {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()));
        if !found {
            missing.push(tool.to_string());
        }
    }
    if !Path::new("/usr/bin/time").is_file() {
        missing.push("/usr/bin/time".to_string());
    }
    if !missing.is_empty() {
        bail!("missing {}: run scripts/install-deps.sh", missing.join(" "));
    }
    Ok(())
}

/// Reads a file twice so every timed run reads from memory, not disk.
pub fn page_cache(file: &Path) -> Result<()> {
    for _ in 0..2 {
        let mut f =
            std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
        std::io::copy(&mut f, &mut std::io::sink())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(min(&[4.0, 1.5, 3.0]), 1.5);
    }
}
