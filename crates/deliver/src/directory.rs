//! Delivery into a local directory that something else watches (a
//! file-based GitOps agent, a sync job, an operator reading a volume).
//!
//! The directory is replaced whole, so a watcher never sees half a set:
//! the files are written (and fsynced) into a sibling temporary directory
//! `.<name>.tender-new-*`, then the current directory is renamed away to
//! `.<name>.tender-old-*`, the new one renamed in, the parent fsynced, and
//! the old one removed. Between the two renames the path briefly does not
//! exist; it never holds a mix of two sets. A crash between them leaves
//! the old set beside it, and the next delivery puts it back before doing
//! anything else.
//!
//! tender owns the directory: whatever else is in it is removed on the next
//! delivery. A path that is a file or a symlink is refused. Files are named
//! as [`crate::files`] says. An identical set is not rewritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use tender_format::FromIo;

use tender_format::atomic;

use crate::config::DirDelivery;
use crate::error::DeliverError;
use crate::files::check_files;

/// What a directory delivery did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DirOutcome {
    pub path: PathBuf,
    /// False: the directory already held exactly these files.
    pub changed: bool,
    pub files: usize,
}

/// Writes `files` as the directory's whole content (see the module docs).
pub fn deliver_directory(
    config: &DirDelivery,
    files: &[(String, Vec<u8>)],
) -> Result<DirOutcome, DeliverError> {
    check_files(files)?;
    let target = config.path.clone();
    let name = target
        .file_name()
        .ok_or_else(|| {
            DeliverError::Config(format!(
                "directory path {} has no final name",
                target.display()
            ))
        })?
        .to_string_lossy()
        .into_owned();
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    atomic::create_dir_all(&parent).map_err(|e| DeliverError::io_at("creating", &parent, e))?;
    let new_prefix = format!(".{name}.tender-new-");
    let old_prefix = format!(".{name}.tender-old-");
    recover(&target, &parent, &new_prefix, &old_prefix)?;

    match fs::symlink_metadata(&target) {
        Ok(m) if m.is_dir() => {
            if holds_exactly(&target, files)? {
                return Ok(DirOutcome {
                    path: target,
                    changed: false,
                    files: files.len(),
                });
            }
        }
        Ok(_) => {
            return Err(DeliverError::Config(format!(
                "{} is not a directory (a file or symlink): refusing to replace it",
                target.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(DeliverError::io_at("inspecting", &target, e)),
    }

    let staged = tempfile::Builder::new()
        .prefix(&new_prefix)
        .tempdir_in(&parent)
        .map_err(|e| DeliverError::io_at("creating a temporary directory in", &parent, e))?;
    write_tree(staged.path(), files)?;
    set_dir_mode(staged.path())?;
    let staged = staged.keep();

    let old = if target.exists() {
        let old = tempfile::Builder::new()
            .prefix(&old_prefix)
            .tempdir_in(&parent)
            .map_err(|e| DeliverError::io_at("creating a temporary directory in", &parent, e))?
            .keep();
        // rename(2) onto an empty directory replaces it.
        fs::rename(&target, &old).map_err(|e| DeliverError::io_at("moving aside", &target, e))?;
        Some(old)
    } else {
        None
    };
    fs::rename(&staged, &target)
        .map_err(|e| DeliverError::io_at("moving into place", &target, e))?;
    atomic::sync_dir(&parent).map_err(|e| DeliverError::io_at("syncing", &parent, e))?;
    if let Some(old) = old {
        fs::remove_dir_all(&old).map_err(|e| DeliverError::io_at("removing", &old, e))?;
    }
    Ok(DirOutcome {
        path: target,
        changed: true,
        files: files.len(),
    })
}

/// Puts back a set moved aside by a delivery that died between its two
/// renames; removes leftovers of interrupted deliveries.
fn recover(
    target: &Path,
    parent: &Path,
    new_prefix: &str,
    old_prefix: &str,
) -> Result<(), DeliverError> {
    let entries = fs::read_dir(parent)
        .and_then(|e| e.collect::<Result<Vec<_>, _>>())
        .map_err(|e| DeliverError::io_at("listing", parent, e))?;
    let mut olds = Vec::new();
    for entry in entries {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(new_prefix) {
            remove_tree(&entry.path())?;
        } else if file_name.starts_with(old_prefix) {
            olds.push(entry.path());
        }
    }
    for old in olds {
        let empty = fs::read_dir(&old)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !empty && fs::symlink_metadata(target).is_err() {
            fs::rename(&old, target).map_err(|e| DeliverError::io_at("restoring", target, e))?;
            atomic::sync_dir(parent).map_err(|e| DeliverError::io_at("syncing", parent, e))?;
        } else {
            remove_tree(&old)?;
        }
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), DeliverError> {
    fs::remove_dir_all(path).map_err(|e| DeliverError::io_at("removing", path, e))
}

fn write_tree(root: &Path, files: &[(String, Vec<u8>)]) -> Result<(), DeliverError> {
    let mut dirs = vec![root.to_path_buf()];
    for (name, data) in files {
        let path = root.join(name);
        let dir = path.parent().expect("a file has a parent").to_path_buf();
        if !dirs.contains(&dir) {
            fs::create_dir_all(&dir).map_err(|e| DeliverError::io_at("creating", &dir, e))?;
            dirs.push(dir);
        }
        let mut file =
            fs::File::create(&path).map_err(|e| DeliverError::io_at("creating", &path, e))?;
        file.write_all(data)
            .and_then(|()| file.sync_all())
            .map_err(|e| DeliverError::io_at("writing", &path, e))?;
    }
    for dir in dirs.iter().rev() {
        atomic::sync_dir(dir).map_err(|e| DeliverError::io_at("syncing", dir, e))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_dir_mode(dir: &Path) -> Result<(), DeliverError> {
    use std::os::unix::fs::PermissionsExt;
    // tempfile creates 0700; the set is for a watcher that may be another user.
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
        .map_err(|e| DeliverError::io_at("setting permissions of", dir, e))
}

#[cfg(not(unix))]
fn set_dir_mode(_dir: &Path) -> Result<(), DeliverError> {
    Ok(())
}

/// Whether `dir` holds exactly `files`: same paths, same bytes, nothing
/// else (no other file, no empty directory, no symlink).
fn holds_exactly(dir: &Path, files: &[(String, Vec<u8>)]) -> Result<bool, DeliverError> {
    let mut found = Vec::new();
    if !list_files(dir, "", &mut found)? {
        return Ok(false);
    }
    found.sort();
    let mut wanted: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    wanted.sort_unstable();
    if found != wanted {
        return Ok(false);
    }
    for (name, data) in files {
        let path = dir.join(name);
        let on_disk = fs::read(&path).map_err(|e| DeliverError::io_at("reading", &path, e))?;
        if on_disk != *data {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Collects regular files below `dir`; false if anything else is there.
fn list_files(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<bool, DeliverError> {
    let entries = fs::read_dir(dir)
        .and_then(|e| e.collect::<Result<Vec<_>, _>>())
        .map_err(|e| DeliverError::io_at("listing", dir, e))?;
    if entries.is_empty() && !prefix.is_empty() {
        return Ok(false);
    }
    for entry in entries {
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        let kind = entry
            .file_type()
            .map_err(|e| DeliverError::io_at("inspecting", entry.path(), e))?;
        if kind.is_dir() {
            if !list_files(&entry.path(), &format!("{name}/"), out)? {
                return Ok(false);
            }
        } else if kind.is_file() {
            out.push(name);
        } else {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
        pairs
            .iter()
            .map(|(n, d)| (n.to_string(), d.as_bytes().to_vec()))
            .collect()
    }

    fn siblings(parent: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(parent)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn writes_replaces_and_skips_unchanged_sets() {
        let tmp = tempfile::tempdir().unwrap();
        let config = DirDelivery {
            path: tmp.path().join("out/line-a"),
        };
        let one = files(&[("configmap-a.yaml", "a: 1\n"), ("sub/x.yaml", "x\n")]);
        let r = deliver_directory(&config, &one).unwrap();
        assert!(r.changed);
        assert_eq!(
            fs::read_to_string(config.path.join("sub/x.yaml")).unwrap(),
            "x\n"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&config.path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o755);
        }

        let again = deliver_directory(&config, &one).unwrap();
        assert!(!again.changed, "same set: nothing written");

        // A stray file makes the set differ; the next delivery removes it.
        fs::write(config.path.join("stray.yaml"), "s").unwrap();
        let two = files(&[("configmap-a.yaml", "a: 2\n")]);
        assert!(deliver_directory(&config, &two).unwrap().changed);
        assert_eq!(siblings(&config.path), ["configmap-a.yaml"]);
        assert_eq!(
            siblings(&tmp.path().join("out")),
            ["line-a"],
            "no leftovers"
        );
    }

    #[test]
    fn recovers_from_a_crash_between_the_renames() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("line-a");
        let config = DirDelivery {
            path: target.clone(),
        };
        deliver_directory(&config, &files(&[("a.yaml", "old\n")])).unwrap();
        // As a crash leaves it: old set moved aside, new one half-written.
        fs::rename(&target, tmp.path().join(".line-a.tender-old-x")).unwrap();
        fs::create_dir(tmp.path().join(".line-a.tender-new-y")).unwrap();
        fs::write(tmp.path().join(".line-a.tender-new-y/half"), "h").unwrap();
        recover(
            &target,
            tmp.path(),
            ".line-a.tender-new-",
            ".line-a.tender-old-",
        )
        .unwrap();
        assert_eq!(fs::read_to_string(target.join("a.yaml")).unwrap(), "old\n");
        assert_eq!(siblings(tmp.path()), ["line-a"]);

        deliver_directory(&config, &files(&[("a.yaml", "new\n")])).unwrap();
        assert_eq!(fs::read_to_string(target.join("a.yaml")).unwrap(), "new\n");
    }

    #[test]
    fn refuses_files_symlinks_and_unsafe_names() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        fs::write(&file, "x").unwrap();
        let err = deliver_directory(&DirDelivery { path: file }, &files(&[("a", "")])).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        #[cfg(unix)]
        {
            let link = tmp.path().join("l");
            std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
            assert!(deliver_directory(&DirDelivery { path: link }, &files(&[("a", "")])).is_err());
        }
        let bad = deliver_directory(
            &DirDelivery {
                path: tmp.path().join("d"),
            },
            &files(&[("../escape", "")]),
        );
        assert!(bad.is_err());
        assert!(!tmp.path().join("escape").exists());
    }
}
