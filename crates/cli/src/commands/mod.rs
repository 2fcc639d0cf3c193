//! One module per subcommand.

mod audit;
mod export;
mod import;
mod inspect;
mod keygen;
mod pack;
mod releases;
mod sign;
mod verify;

use std::io::{self, Read};
use std::path::Path;

use anyhow::Context;

use tender_format::BundleReader;
use tender_format::reader::AnyBundleReader;

use crate::args::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = !cli.no_progress;
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::run(a, progress),
        Command::Inspect(a) => inspect::run(a),
        Command::Export(a) => export::run(a, progress),
        Command::Import(a) => import::run(a, progress),
        Command::Audit(a) => audit::run(a),
        Command::Releases(a) => releases::list(a),
        Command::Rollback(a) => releases::rollback(a),
        Command::Gc(a) => releases::gc(a),
        Command::Pack(a) => pack::run(a, progress),
    }
}

/// Opens a bundle, `-` meaning standard input, and reads its manifest and
/// signature slot.
fn open_bundle(path: &Path) -> anyhow::Result<AnyBundleReader> {
    let reader = if path.as_os_str() == "-" {
        let stdin: Box<dyn Read + Send> = Box::new(io::stdin());
        BundleReader::open(stdin)
    } else {
        BundleReader::open_file(path)
    };
    reader.with_context(|| format!("{}", path.display()))
}

/// `$USER@hostname`, for audit fields.
pub(crate) fn whoami() -> String {
    format!("{}@{}", os_user(), hostname())
}

/// The OS user, for the audit trail.
pub(crate) fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}
