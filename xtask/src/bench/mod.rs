//! The benchmark harness. Builds tender in release, then runs one or more
//! rows; each row times tender against a real baseline tool measured in the
//! same run on the same input, and reports the ratio. Nothing here asserts on
//! timings: it reports, a human judges.
//!
//! Adding a row: one module under `rows/` with a `run(&mut Bench) ->
//! Result<()>` that uses [`Bench`]'s helpers (inputs, [`measure`], the
//! table and JSON output), and one entry in [`rows::ROWS`].

mod host;
mod inputs;
mod measure;
mod report;
mod rows;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

pub use host::Host;
pub use report::{JsonRow, Table};

/// Command-line options, the same as scripts/bench.sh had.
#[derive(Debug, Default)]
pub struct Options {
    /// Smoke-sized inputs and best of 3 (default: full sizes, median of 5).
    pub quick: bool,
    /// Keep the work directory afterwards.
    pub keep: bool,
    /// Run just this row.
    pub only: Option<String>,
    /// Also write one JSON object per row (JSON lines) to this file.
    pub json: Option<PathBuf>,
}

const HELP: &str = "\
cargo xtask bench [--quick] [--only ROW] [--keep] [--json FILE]

  --quick      smoke-sized inputs and best of 3 (default: full sizes,
               median of 5)
  --only ROW   run just this row (scale: 10/100/1,000 clusters, quick 10/100;
               a full scale row takes about 10 minutes of 2 cores)
  --keep       keep the work dir ${TMPDIR:-/tmp}/tender-bench.XXXX
  --json FILE  also write one JSON object per row (JSON lines) to FILE

Needs what scripts/install-deps.sh installs (openssl, /usr/bin/time, skopeo,
docker-registry, zstd).";

impl Options {
    fn parse(args: Vec<String>) -> Result<Option<Options>> {
        let mut opts = Options::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => opts.quick = true,
                "--keep" => opts.keep = true,
                "--only" => opts.only = Some(args.next().context("--only needs a row name")?),
                "--json" => {
                    opts.json = Some(args.next().context("--json needs a file name")?.into())
                }
                "-h" | "--help" => {
                    println!(
                        "{HELP}\n\nRows, in the order a full run runs them: {}",
                        rows::names()
                    );
                    return Ok(None);
                }
                other => bail!("unknown argument: {other} (see --help)"),
            }
        }
        if let Some(only) = &opts.only {
            ensure!(
                rows::ROWS.iter().any(|row| row.name == only),
                "unknown row '{only}' (rows: {})",
                rows::names()
            );
        }
        Ok(Some(opts))
    }
}

/// Shared state of one bench run: options, host, the work directory, the
/// release binary, and the output being collected.
pub struct Bench {
    pub opts: Options,
    /// The repository root (scripts/, target/delta-scenario).
    pub repo: PathBuf,
    pub host: Host,
    pub tender: PathBuf,
    work: WorkDir,
    pub table: Table,
    json: Vec<String>,
    /// The export and import rows' images and source registry, made once.
    export: Option<rows::export::Inputs>,
}

/// The work directory; removed on drop unless `--keep`.
struct WorkDir {
    dir: Option<tempfile::TempDir>,
    keep: bool,
}

impl WorkDir {
    fn path(&self) -> &Path {
        self.dir.as_ref().expect("work dir lives until drop").path()
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take()
            && self.keep
        {
            eprintln!("bench: kept work dir {}", dir.keep().display());
        }
    }
}

impl Bench {
    /// The work directory of this run.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    /// Runs repeated measurements: 3 in quick mode, 5 in full.
    pub fn runs(&self) -> usize {
        if self.opts.quick { 3 } else { 5 }
    }

    /// How the summary of the runs is computed, for table labels.
    pub fn how(&self) -> String {
        let runs = self.runs();
        if self.opts.quick {
            format!("best of {runs}")
        } else {
            format!("median of {runs}")
        }
    }

    /// Quick mode takes the best run, full mode the median (to the
    /// microsecond, as samples are).
    pub fn stat(&self, values: &[f64]) -> f64 {
        if self.opts.quick {
            measure::min(values)
        } else {
            report::round(measure::median(values), 6)
        }
    }

    /// The JSON name of [`Bench::stat`].
    pub fn stat_name(&self) -> &'static str {
        if self.opts.quick { "min" } else { "median" }
    }

    /// Queues one JSON line for `--json`, with the host fields first.
    pub fn json_row(&mut self, row: JsonRow) {
        self.json.push(row.finish(&self.host, self.opts.quick));
    }
}

pub fn log(msg: impl std::fmt::Display) {
    eprintln!("bench: {msg}");
}

pub fn main(args: Vec<String>) -> Result<()> {
    let Some(opts) = Options::parse(args)? else {
        return Ok(());
    };
    measure::check_tools()?;
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask has a parent directory")?
        .to_path_buf();
    build_release(&repo)?;
    let tender = target_dir(&repo).join("release/tender");
    let host = Host::describe(&repo);
    let tmp = std::env::var_os("TMPDIR").map_or_else(|| PathBuf::from("/tmp"), PathBuf::from);
    let dir = tempfile::Builder::new()
        .prefix("tender-bench.")
        .tempdir_in(&tmp)
        .with_context(|| format!("creating a work dir under {}", tmp.display()))?;
    log(format_args!("work dir {}", dir.path().display()));
    let mut bench = Bench {
        work: WorkDir {
            dir: Some(dir),
            keep: opts.keep,
        },
        opts,
        repo,
        host,
        tender,
        table: Table::default(),
        json: Vec::new(),
        export: None,
    };
    for row in rows::ROWS {
        if bench
            .opts
            .only
            .as_deref()
            .is_some_and(|only| only != row.name)
        {
            continue;
        }
        (row.run)(&mut bench).with_context(|| format!("row {}", row.name))?;
    }
    bench.table.print(&bench.host, bench.opts.quick);
    if let Some(file) = &bench.opts.json {
        // A fresh file per run: one line per row of this run.
        let text: String = bench.json.iter().map(|line| format!("{line}\n")).collect();
        std::fs::write(file, text).with_context(|| format!("writing {}", file.display()))?;
        log(format_args!("JSON lines in {}", file.display()));
    }
    Ok(())
}

fn target_dir(repo: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from)
}

fn build_release(repo: &Path) -> Result<()> {
    log("cargo build --release");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        if key.to_str().is_some_and(set_by_cargo_run) {
            cargo.env_remove(key);
        }
    }
    let status = cargo
        .args(["build", "--release", "--quiet", "--bin", "tender"])
        .current_dir(repo)
        .status()
        .context("running cargo build")?;
    ensure!(status.success(), "cargo build --release failed: {status}");
    Ok(())
}

/// The variables `cargo run` sets for the xtask process about the xtask
/// package. A nested `cargo build` that inherits them sees e.g.
/// `CARGO_PKG_VERSION` differ from what tender's dep-info recorded (tender
/// reads it with `env!`) and rebuilds and relinks tender on every bench run.
/// Cargo's own configuration (`CARGO_HOME`, `CARGO_TARGET_DIR`,
/// `CARGO_PROFILE_*`, ...) is kept.
fn set_by_cargo_run(key: &str) -> bool {
    key.starts_with("CARGO_PKG_")
        || matches!(
            key,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}
