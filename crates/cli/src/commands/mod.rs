//! One module per subcommand.

mod audit;
mod export;
mod hub;
mod import;
mod inspect;
mod keygen;
mod pack;
mod policy;
mod releases;
mod render;
mod serve;
mod sign;
mod verify;
mod volumes;

use std::io::{self, Read};
use std::path::Path;

use tender_export::BundleOutput;
use tender_format::BundleReader;
use tender_format::reader::AnyBundleReader;
use tender_format::volumes::{FAT32_MAX_FILE, VolumeSet, is_on_fat32, parse_size};

use crate::exit;

use crate::args::{Cli, Command};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let progress = !cli.no_progress;
    match cli.command {
        Command::Keygen(a) => keygen::run(a),
        Command::Sign(a) => sign::run(a),
        Command::Verify(a) => verify::run(a, progress),
        Command::Inspect(a) => inspect::run(a),
        Command::Export(a) => export::run(a, progress),
        Command::Render(a) => render::run(a),
        Command::Import(a) => import::run(a, progress),
        Command::Serve(a) => serve::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Releases(a) => releases::list(a),
        Command::Rollback(a) => releases::rollback(a),
        Command::Gc(a) => releases::gc(a),
        Command::Pack(a) => pack::run(a, progress),
        Command::Split(a) => volumes::split(a),
        Command::Join(a) => volumes::join(a),
        Command::Hub(a) => hub::run(a),
        Command::Policy(a) => policy::run(a),
    }
}

/// Opens a bundle, `-` meaning standard input, and reads its manifest and
/// signature slot.
fn open_bundle(path: &Path) -> anyhow::Result<AnyBundleReader> {
    let reader = if path.as_os_str() == "-" {
        let stdin: Box<dyn Read + Send> = Box::new(io::stdin());
        BundleReader::open(stdin)
    } else if is_volumes(path) {
        let set = naming(path, VolumeSet::open(path), || path.display().to_string())?;
        return naming(path, set.open_bundle(), || path.display().to_string())
            .map_err(|e| name_bad_volumes(path, e));
    } else {
        BundleReader::open_file(path)
    };
    naming(path, reader, || path.display().to_string())
}

/// Adds `context` to an error unless the error names `path` already:
/// `b.tender: opening b.tender: ...` says the file twice.
pub(crate) fn naming<T, E>(
    path: &Path,
    result: Result<T, E>,
    context: impl FnOnce() -> String,
) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
{
    result.map_err(|e| {
        let err: anyhow::Error = e.into();
        if format!("{err:#}").contains(&path.display().to_string()) {
            err
        } else {
            err.context(context())
        }
    })
}

/// A directory of volumes, a volume index, or one volume (`NAME.001`).
fn is_volumes(path: &Path) -> bool {
    let name = path.to_string_lossy();
    path.is_dir()
        || name.ends_with(".volumes.json")
        || name
            .rsplit_once('.')
            .is_some_and(|(_, n)| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A rejection met while streaming volumes can come from a damaged volume
/// whose own hash was not reached yet: a blob or tar header ending inside
/// it, or volumes swapped. Then every volume is hashed against the index
/// and the bad ones are named, as that is what to re-copy; otherwise the
/// rejection stands as it was.
pub(crate) fn name_bad_volumes(path: &Path, err: anyhow::Error) -> anyhow::Error {
    if exit::classify(&err) != exit::REJECTED || path.as_os_str() == "-" || !is_volumes(path) {
        return err;
    }
    let Ok(set) = VolumeSet::open(path) else {
        return err;
    };
    let problems = set.check();
    if problems.is_empty() {
        return err;
    }
    let context = err.to_string();
    anyhow::Error::from(tender_format::Rejection::Volumes(problems)).context(context)
}

/// `-o PATH` for a bundle: a file (split on FAT32 when it would not fit),
/// volumes with `--volume-size`, or `-` for standard output.
fn bundle_output(path: &Path, volume_size: Option<&str>) -> anyhow::Result<BundleOutput> {
    let size = volume_size
        .map(|s| {
            parse_size(s).filter(|&n| n >= 512).ok_or_else(|| {
                exit::UsageError(format!(
                    "volume size {s:?} is not a size like 4G, 700M or 64M"
                ))
            })
        })
        .transpose()?;
    if path.as_os_str() == "-" {
        if size.is_some() {
            return Err(exit::UsageError("--volume-size needs a file output, not -".into()).into());
        }
        return Ok(BundleOutput::Stdout);
    }
    if let Some(size) = size {
        return Ok(BundleOutput::Volumes {
            path: path.to_path_buf(),
            size,
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fat32 = is_on_fat32(dir);
    if fat32 {
        eprintln!(
            "{} is on FAT32 (files stop at 4 GiB - 1): a larger bundle is cut into volumes of that size",
            dir.display()
        );
    }
    Ok(BundleOutput::File {
        path: path.to_path_buf(),
        split_above: fat32.then_some(FAT32_MAX_FILE),
    })
}

/// Warns, as ssh does, when a hub signing key is open to others. A
/// warning, not a refusal: a hub key is used by a person at a terminal who
/// reads it, unlike the site key, which is refused (`docs/site.md`).
fn warn_if_too_open(key: &Path) {
    if let Some(open) = tender_trust::keys::too_open(key) {
        eprintln!("tender: warning: {open}");
    }
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
    // As a bare io::Error, so a closed stdout (`| head`) is not an error
    // (see exit::report), as for text output.
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::from)?;
    writeln!(out)?;
    Ok(())
}
