//! One lock-file implementation for every state directory (the hub's and
//! the site's): an advisory `flock(2)` on a file that is created if
//! missing and never truncated or removed, held for the life of the value.
//! The kernel drops it when the process dies, so a crash never leaves a
//! stale lock behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct LockFile {
    _file: File,
}

impl LockFile {
    /// Waits until the lock at `path` is free and takes it (for short
    /// sections another process finishes soon: an export's sequence, a
    /// receipt's ingest).
    pub fn acquire(path: &Path) -> io::Result<Self> {
        let file = open(path)?;
        file.lock()?;
        Ok(LockFile { _file: file })
    }

    /// Takes the lock at `path` or answers `None` at once if another
    /// process holds it (for long work a second caller should not queue
    /// behind: an import).
    pub fn try_acquire(path: &Path) -> io::Result<Option<Self>> {
        let file = open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(LockFile { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e),
        }
    }
}

fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_refuses_a_second_taker_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lock");
        let held = LockFile::acquire(&path).unwrap();
        // flock locks belong to the open file description, so a second
        // open in the same process contends like another process would.
        assert!(LockFile::try_acquire(&path).unwrap().is_none());
        drop(held);
        let again = LockFile::try_acquire(&path).unwrap();
        assert!(again.is_some());
        assert!(path.exists(), "the lock file stays for the next taker");
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert!(LockFile::acquire(&dir.path().join("no/such/lock")).is_err());
    }
}
