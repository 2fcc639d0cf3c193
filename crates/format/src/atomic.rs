//! Atomic file creation: write to a temporary file in the same directory,
//! fsync it, rename it over the target, fsync the directory. A reader sees
//! the old file or the whole new one, never a torn one, even across a
//! power cut or `kill -9`.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

/// Writes a file through `fill`, atomically replacing `path`.
pub fn write_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut io::BufWriter<&File>) -> io::Result<T>,
) -> io::Result<T> {
    let dir = parent_dir(path);
    let tmp = NamedTempFile::new_in(dir)?;
    let value = {
        let mut out = io::BufWriter::with_capacity(1 << 20, tmp.as_file());
        let value = fill(&mut out)?;
        out.flush()?;
        value
    };
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)?;
    Ok(value)
}

/// Writes bytes atomically.
pub fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    write_with(path, |out| out.write_all(data))
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates a directory and its parents, syncing the parent so the new
/// directory survives a crash.
pub fn create_dir_all(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    sync_dir(parent_dir(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_the_old_file_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        write(&path, b"old").unwrap();
        let err = write_with(&path, |out| {
            out.write_all(b"half")?;
            Err::<(), _>(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        write(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
    }
}
