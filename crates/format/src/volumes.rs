//! Volumes: a bundle cut into numbered files that fit the media
//! (`NAME.tender.001` … `NAME.tender.NNN`), plus a volume index
//! `NAME.tender.volumes.json` naming each volume's size and sha256.
//!
//! The cut is a plain byte split, so `cat NAME.tender.0* | tar -x` still
//! works at 2 AM. The index is a diagnostic, not a trust anchor: it lets a
//! verifier say "volume 3 of 5 is corrupt: re-copy it" before anything is
//! imported, while the bundle's own signatures and digests still decide
//! what is accepted. An index edited to hide a bad volume only moves the
//! error to the digest check of the blob inside it.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

mod files;
mod hash_behind;

use crate::digest::{Digest, Hasher};
use crate::reader::{AnyBundleReader, BundleReader, CHUNK};
pub use crate::volume_check::{VolumeCheck, VolumeProblem};
use files::VolumeFiles;
use hash_behind::HashBehind;

pub const INDEX_FORMAT: &str = "tender-volumes/v1";
/// FAT32 stops files at 4 GiB − 1 byte.
pub const FAT32_MAX_FILE: u64 = 4 * 1024 * 1024 * 1024 - 1;

/// One volume in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Volume {
    pub number: u32,
    pub file: String,
    pub offset: u64,
    pub size: u64,
    pub sha256: Digest,
}

/// `NAME.tender.volumes.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeIndex {
    pub format: String,
    pub bundle_id: String,
    pub manifest_digest: Digest,
    pub volume_size: u64,
    pub total_size: u64,
    pub volumes: Vec<Volume>,
}

/// The file name of volume `number` of bundle `base` (`fleet.tender`).
pub fn volume_name(base: &str, number: u32) -> String {
    format!("{base}.{number:03}")
}

pub fn index_name(base: &str) -> String {
    format!("{base}.volumes.json")
}

/// Writes a stream into volumes of at most `volume_size` bytes. Files are
/// written as `.partial` and renamed by [`VolumeWriter::finish`], which
/// also writes the index. Each volume is hashed (and synced) on a second
/// thread, behind the writer (see `hash_behind`).
pub struct VolumeWriter {
    dir: PathBuf,
    base: String,
    volume_size: u64,
    /// The open volume and the bytes written to it.
    current: Option<(File, u64)>,
    /// Bytes of the open volume already announced to the hashing thread.
    announced: u64,
    /// Sizes of the closed volumes.
    sizes: Vec<u64>,
    behind: HashBehind,
}

impl VolumeWriter {
    pub fn new(dir: &Path, base: &str, volume_size: u64) -> io::Result<Self> {
        if volume_size < 512 {
            return Err(io::Error::other("volume size must be at least 512 bytes"));
        }
        Ok(VolumeWriter {
            dir: dir.to_path_buf(),
            base: base.to_string(),
            volume_size,
            current: None,
            announced: 0,
            sizes: Vec::new(),
            behind: HashBehind::start()?,
        })
    }

    fn partial(&self, number: u32) -> PathBuf {
        self.dir
            .join(format!("{}.partial", volume_name(&self.base, number)))
    }

    fn close_current(&mut self) {
        if let Some((_, size)) = self.current.take() {
            self.behind.closed(size);
            self.sizes.push(size);
        }
    }

    /// Closes the last volume, waits for every volume's hash, renames every
    /// volume into place and writes the index.
    pub fn finish(mut self, bundle_id: &str, manifest_digest: Digest) -> io::Result<VolumeIndex> {
        self.close_current();
        let digests = self.behind.finish()?;
        let mut volumes = Vec::with_capacity(self.sizes.len());
        let mut offset = 0;
        for (i, (&size, sha256)) in self.sizes.iter().zip(digests).enumerate() {
            let number = i as u32 + 1;
            let file = volume_name(&self.base, number);
            fs::rename(self.partial(number), self.dir.join(&file))?;
            volumes.push(Volume {
                number,
                file,
                offset,
                size,
                sha256,
            });
            offset += size;
        }
        let index = VolumeIndex {
            format: INDEX_FORMAT.into(),
            bundle_id: bundle_id.to_string(),
            manifest_digest,
            volume_size: self.volume_size,
            total_size: offset,
            volumes,
        };
        let mut text = serde_json::to_vec_pretty(&index).expect("index serializes");
        text.push(b'\n');
        crate::atomic::write(&self.dir.join(index_name(&self.base)), &text)?;
        Ok(index)
    }

    /// Removes partial files after a failure.
    pub fn abandon(mut self) {
        self.current = None;
        let _ = self.behind.finish(); // the thread stops reading before its files go
        for n in 1..=self.sizes.len() as u32 + 1 {
            let _ = fs::remove_file(self.partial(n));
        }
    }
}

impl Write for VolumeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|(_, len)| *len >= self.volume_size)
        {
            self.close_current();
        }
        if self.current.is_none() {
            let number = self.sizes.len() as u32 + 1;
            // Readable too: the hashing thread reads it back.
            let file = File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(self.partial(number))?;
            self.behind.opened(file.try_clone()?);
            self.current = Some((file, 0));
            self.announced = 0;
        }
        let (file, len) = self.current.as_mut().expect("opened above");
        let room = (self.volume_size - *len) as usize;
        let n = buf.len().min(room);
        file.write_all(&buf[..n])?;
        *len += n as u64;
        // A word per chunk is enough: the thread reads back from the file.
        if *len - self.announced >= CHUNK as u64 {
            self.announced = *len;
            self.behind.wrote(*len);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some((file, _)) => file.flush(),
            None => Ok(()),
        }
    }
}

/// Why a directory is neither a bundle nor a volume set, and what to give
/// instead: the bundle files it holds, if any.
fn not_a_volume_set(bundles: &[PathBuf]) -> String {
    let mut line = String::from(
        "is a directory, not a bundle: expected a bundle file (NAME.tender) or a volume set \
         (a directory holding NAME.tender.volumes.json and its volumes), and it holds no \
         volume index",
    );
    if !bundles.is_empty() {
        let mut bundles = bundles.to_vec();
        bundles.sort();
        let shown: Vec<String> = bundles
            .iter()
            .take(3)
            .map(|p| p.display().to_string())
            .collect();
        line.push_str(&format!("; did you mean {}", shown.join(" or ")));
        if bundles.len() > 3 {
            line.push_str(&format!(
                " (or {} more .tender files there)",
                bundles.len() - 3
            ));
        }
        line.push('?');
    }
    line
}

/// Why the `i`th volume listed in an index cannot be read where volumes
/// are, if so. The index is not signed: a file name with a directory in it
/// (`../../etc/shadow`, `/dev/zero`) would make the checks read, and hash
/// forever, a file that is no volume of the set.
fn misplaced((i, v): (usize, &Volume)) -> Option<String> {
    let expected = i as u64 + 1;
    if u64::from(v.number) != expected {
        return Some(format!(
            "volume {} is listed where volume {expected} belongs",
            v.number
        ));
    }
    let mut parts = Path::new(&v.file).components();
    let plain = matches!(parts.next(), Some(std::path::Component::Normal(_)))
        && parts.next().is_none()
        && !v.file.contains(['/', '\\']);
    if !plain {
        return Some(format!(
            "volume {} is named {:?}, which is not a file name in the index's directory",
            v.number, v.file
        ));
    }
    None
}

fn file_names(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A set of volumes on disk, found through their index.
#[derive(Debug, Clone)]
pub struct VolumeSet {
    pub dir: PathBuf,
    pub index: VolumeIndex,
}

impl VolumeSet {
    /// `path` is the index file, a directory holding exactly one index, or
    /// any volume file (`NAME.tender.001`).
    pub fn open(path: &Path) -> io::Result<Self> {
        let index_path = if path.is_dir() {
            let mut found = Vec::new();
            let mut bundles = Vec::new();
            for e in fs::read_dir(path)? {
                let p = e?.path();
                let name = p.to_string_lossy();
                if name.ends_with(".volumes.json") {
                    found.push(p);
                } else if name.ends_with(".tender") && p.is_file() {
                    bundles.push(p);
                }
            }
            match found.len() {
                1 => found.remove(0),
                // The caller names the directory; say what was expected in
                // its place, and point at any bundle file it holds.
                0 => return Err(io::Error::other(not_a_volume_set(&bundles))),
                _ => {
                    found.sort();
                    return Err(io::Error::other(format!(
                        "directory holds several volume indexes ({}); name the one to read",
                        file_names(&found)
                    )));
                }
            }
        } else if path.to_string_lossy().ends_with(".volumes.json") {
            path.to_path_buf()
        } else {
            let name = path.to_string_lossy();
            let base = name
                .rsplit_once('.')
                .filter(|(_, n)| n.len() == 3 && n.bytes().all(|b| b.is_ascii_digit()))
                .map(|(b, _)| b.to_string())
                .ok_or_else(|| {
                    io::Error::other(format!(
                        "{} is not a volume or volume index",
                        path.display()
                    ))
                })?;
            PathBuf::from(index_name(&base))
        };
        let bytes = fs::read(&index_path)?;
        let index: VolumeIndex = serde_json::from_slice(&bytes).map_err(|e| {
            io::Error::other(format!("{}: not a volume index: {e}", index_path.display()))
        })?;
        if index.format != INDEX_FORMAT {
            return Err(io::Error::other(format!(
                "{}: unknown format {}",
                index_path.display(),
                index.format
            )));
        }
        if let Some(reason) = index.volumes.iter().enumerate().find_map(misplaced) {
            return Err(io::Error::other(format!(
                "{}: not a volume index: {reason}",
                index_path.display()
            )));
        }
        let dir = index_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(VolumeSet { dir, index })
    }

    pub fn count(&self) -> u32 {
        self.index.volumes.len() as u32
    }

    /// Checks every volume: present, right size, right bytes. Hashes on
    /// all cores; returns the problems, by volume number.
    pub fn check(&self) -> Vec<VolumeCheck> {
        let count = self.count();
        let problems = std::sync::Mutex::new(Vec::new());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(v) = self.index.volumes.get(i) else {
                            break;
                        };
                        if let Some(problem) = self.check_one(v) {
                            problems
                                .lock()
                                .expect("no panics while locked")
                                .push(VolumeCheck {
                                    number: v.number,
                                    count,
                                    file: v.file.clone(),
                                    problem,
                                });
                        }
                    }
                });
            }
        });
        let mut problems = problems.into_inner().expect("no panics while locked");
        problems.sort_by_key(|p| p.number);
        problems
    }

    fn check_one(&self, v: &Volume) -> Option<VolumeProblem> {
        let path = self.dir.join(&v.file);
        let size = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(_) => return Some(VolumeProblem::Missing),
        };
        if size < v.size {
            return Some(VolumeProblem::Truncated {
                size,
                expected: v.size,
            });
        }
        if size > v.size {
            return Some(VolumeProblem::TooLong {
                size,
                expected: v.size,
            });
        }
        // No more than the listed size, which the file's length matched:
        // a device's length is 0 whatever it yields.
        match File::open(&path).and_then(|f| Digest::of_reader(f.take(v.size))) {
            Ok((d, _)) if d == v.sha256 => None,
            Ok(_) if v.number == 1 && self.first_volume_is_foreign(&path) => {
                Some(VolumeProblem::ForeignBundle)
            }
            Ok(_) if self.looks_foreign(&path, v.size) => Some(VolumeProblem::ForeignBundle),
            _ => Some(VolumeProblem::Corrupt),
        }
    }

    /// Volume 1 starts with the bundle manifest: it says whose it is, when
    /// it can be read. A volume 1 too damaged to read, or too small to hold
    /// the manifest and signature slot, is corrupt, not foreign.
    fn first_volume_is_foreign(&self, path: &Path) -> bool {
        File::open(path)
            .ok()
            .and_then(|f| BundleReader::open(BufReader::new(f)).ok())
            .is_some_and(|r| {
                r.manifest_digest() != self.index.manifest_digest
                    && r.manifest().bundle_id != self.index.bundle_id
            })
    }

    /// Another volume of the same number from a different cut: its index
    /// (next to it, under another base name) would list its hash. Without
    /// that we can only say corrupt; wrong-bundle is reported when the
    /// file is exactly a volume some other index in the directory lists.
    fn looks_foreign(&self, path: &Path, size: u64) -> bool {
        let Ok((digest, _)) = File::open(path).and_then(|f| Digest::of_reader(f.take(size))) else {
            return false;
        };
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let p = e.path();
            p.to_string_lossy().ends_with(".volumes.json")
                && fs::read(&p)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<VolumeIndex>(&b).ok())
                    .is_some_and(|other| {
                        other.manifest_digest != self.index.manifest_digest
                            && other.volumes.iter().any(|v| v.sha256 == digest)
                    })
        })
    }

    /// Presence and sizes only (no reading): what can be said before a
    /// single byte is used. Corrupt bytes are named as the stream passes.
    pub fn check_sizes(&self) -> Vec<VolumeCheck> {
        let count = self.count();
        self.index
            .volumes
            .iter()
            .filter_map(|v| {
                let problem = match fs::metadata(self.dir.join(&v.file)) {
                    Err(_) => VolumeProblem::Missing,
                    Ok(m) if m.len() < v.size => VolumeProblem::Truncated {
                        size: m.len(),
                        expected: v.size,
                    },
                    Ok(m) if m.len() > v.size => VolumeProblem::TooLong {
                        size: m.len(),
                        expected: v.size,
                    },
                    Ok(_) => return None,
                };
                Some(VolumeCheck {
                    number: v.number,
                    count,
                    file: v.file.clone(),
                    problem,
                })
            })
            .collect()
    }

    /// Opens the bundle over all volumes after checking that every volume
    /// is there at its size; the problems are a rejection naming them. The
    /// volumes are read as one file, with positional reads, like a bundle
    /// file (see `files`). Verify and import hash every entry against the
    /// signed manifest, so hashing each volume as well would hash every
    /// byte twice; a rejection is traced to its volume with
    /// [`VolumeSet::check`].
    pub fn open_bundle(&self) -> Result<AnyBundleReader, crate::Error> {
        let problems = self.check_sizes();
        if !problems.is_empty() {
            return Err(crate::Rejection::Volumes(problems).into());
        }
        let bundle = BundleReader::open_positional(Arc::new(VolumeFiles::new(self)))?;
        if bundle.manifest_digest() != self.index.manifest_digest {
            return Err(crate::Rejection::Volumes(vec![VolumeCheck {
                number: 1,
                count: self.count(),
                file: self.index.volumes[0].file.clone(),
                problem: VolumeProblem::ForeignBundle,
            }])
            .into());
        }
        Ok(bundle)
    }

    /// A reader over all volumes in order, checking each volume's hash as
    /// its last byte passes, so a damaged volume is named by number. For
    /// `join`, whose output nothing else checks.
    pub fn reader(&self) -> VolumeReader {
        VolumeReader {
            set: self.clone(),
            next: 0,
            current: None,
        }
    }
}

/// An I/O error carrying what is wrong with volume `v` of `count`, so that
/// the reader turns it into a rejection naming the volume by number.
fn volume_error(v: &Volume, count: u32, problem: VolumeProblem) -> io::Error {
    let check = VolumeCheck {
        number: v.number,
        count,
        file: v.file.clone(),
        problem,
    };
    io::Error::new(io::ErrorKind::InvalidData, check)
}

/// Reads volumes back to back as one stream, never holding a volume in
/// memory, never needing the joined file on disk.
pub struct VolumeReader {
    set: VolumeSet,
    next: usize,
    /// The open volume, bytes read from it, its running hash.
    current: Option<(BufReader<File>, u64, Hasher, Volume)>,
}

impl VolumeReader {
    fn problem(&self, v: &Volume, problem: VolumeProblem) -> io::Error {
        volume_error(v, self.set.count(), problem)
    }
}

impl Read for VolumeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.current.is_none() {
                let Some(v) = self.set.index.volumes.get(self.next).cloned() else {
                    return Ok(0);
                };
                self.next += 1;
                let file = File::open(self.set.dir.join(&v.file))
                    .map_err(|_| self.problem(&v, VolumeProblem::Missing))?;
                let reader = BufReader::with_capacity(1 << 20, file);
                self.current = Some((reader, 0, Hasher::new(), v));
            }
            let (file, read, hasher, v) = self.current.as_mut().expect("opened above");
            let room = (v.size - *read).min(buf.len() as u64) as usize;
            let n = if room == 0 {
                0
            } else {
                file.read(&mut buf[..room])?
            };
            if n > 0 {
                *read += n as u64;
                hasher.update(&buf[..n]);
                return Ok(n);
            }
            let (_, size, hasher, v) = self.current.take().expect("present");
            if size < v.size {
                return Err(self.problem(
                    &v,
                    VolumeProblem::Truncated {
                        size,
                        expected: v.size,
                    },
                ));
            }
            if hasher.finish().0 != v.sha256 {
                return Err(self.problem(&v, VolumeProblem::Corrupt));
            }
        }
    }
}

/// Cuts an existing bundle file into volumes, without re-signing.
pub fn split(
    bundle: &Path,
    out_dir: &Path,
    base: &str,
    volume_size: u64,
) -> io::Result<VolumeIndex> {
    let reader =
        BundleReader::open(BufReader::new(File::open(bundle)?)).map_err(io::Error::other)?;
    let (id, digest) = (
        reader.manifest().bundle_id.clone(),
        reader.manifest_digest(),
    );
    let mut writer = VolumeWriter::new(out_dir, base, volume_size)?;
    let copied = io::copy(
        &mut BufReader::with_capacity(1 << 20, File::open(bundle)?),
        &mut writer,
    );
    match copied {
        Ok(_) => writer.finish(&id, digest),
        Err(e) => {
            writer.abandon();
            Err(e)
        }
    }
}

/// Joins volumes back into one bundle file, checking each volume.
pub fn join(set: &VolumeSet, out: &Path) -> io::Result<u64> {
    crate::atomic::write_with(out, |w| io::copy(&mut set.reader(), w))
}

/// Parses `4G`, `700M`, `64M`, `512K`, `4096` (binary units).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits.parse().ok()?;
    let mult = match unit.trim_end_matches(['B', 'b', 'i']) {
        "" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        "T" | "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// Whether `path` (a directory) is on FAT (vfat or msdos), where files stop
/// at 4 GiB − 1: the kernel's own answer, `statfs(2)`'s `f_type` being
/// `MSDOS_SUPER_MAGIC`. `false` when it cannot tell (no such directory, not
/// Linux): the bundle is then written as one file, as anywhere else.
pub fn is_on_fat32(path: &Path) -> bool {
    #[cfg(target_os = "linux")]
    {
        /// `MSDOS_SUPER_MAGIC` of `linux/magic.h`, for vfat and msdos alike.
        const MSDOS_SUPER_MAGIC: i64 = 0x4d44;
        rustix::fs::statfs(path).is_ok_and(|s| s.f_type == MSDOS_SUPER_MAGIC)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::read_at::ReadAt;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4G"), Some(4 << 30));
        assert_eq!(parse_size("700M"), Some(700 << 20));
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("4X"), None);
        assert_eq!(parse_size(""), None);
    }

    #[test]
    fn a_temporary_directory_is_not_fat32() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_on_fat32(dir.path()));
        assert!(!is_on_fat32(&dir.path().join("missing")));
    }

    /// A set of two small volumes, `b.tender.001` and `.002`, whose index
    /// `edit` changes before it is written back.
    fn set_with_index(edit: impl FnOnce(&mut VolumeIndex)) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let mut w = VolumeWriter::new(dir.path(), "b.tender", 512).unwrap();
        w.write_all(&[7u8; 700]).unwrap();
        let mut index = w.finish("id", Digest::of(b"m")).unwrap();
        edit(&mut index);
        let path = dir.path().join(index_name("b.tender"));
        fs::write(&path, serde_json::to_vec(&index).unwrap()).unwrap();
        (dir, path)
    }

    #[test]
    fn volume_index_naming_a_file_outside_its_directory() {
        for name in [
            "../../etc/shadow",
            "/dev/zero",
            "sub/b.tender.002",
            "..",
            "",
        ] {
            let (_dir, index) = set_with_index(|i| i.volumes[1].file = name.into());
            let err = VolumeSet::open(&index).unwrap_err().to_string();
            assert!(
                err.contains(&format!(
                    "volume 2 is named {name:?}, which is not a file name in the index's directory"
                )),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn volume_index_listing_volumes_out_of_order() {
        let (_dir, index) = set_with_index(|i| i.volumes.swap(0, 1));
        let err = VolumeSet::open(&index).unwrap_err().to_string();
        assert!(
            err.contains("volume 2 is listed where volume 1 belongs"),
            "{err}"
        );
    }

    /// A volume swapped for a symlink to an endless device, with the index
    /// edited to match the device's length (0): the check hashes no more
    /// than the listed size, so it ends, and names the volume.
    #[test]
    fn volume_replaced_by_a_link_to_an_endless_device() {
        let (dir, index) = set_with_index(|i| i.volumes[1].size = 0);
        let volume = dir.path().join("b.tender.002");
        fs::remove_file(&volume).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &volume).unwrap();
        let problems = VolumeSet::open(&index).unwrap().check();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].number, 2);
        assert_eq!(problems[0].problem, VolumeProblem::Corrupt);
    }

    #[test]
    fn writer_cuts_at_the_size_and_reader_rejoins() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = VolumeWriter::new(dir.path(), "b.tender", 4096).unwrap();
        w.write_all(&data).unwrap();
        let index = w.finish("id", Digest::of(b"m")).unwrap();
        assert_eq!(index.volumes.len(), 3);
        assert_eq!(
            index.volumes.iter().map(|v| v.size).collect::<Vec<_>>(),
            [4096, 4096, 1808]
        );
        let set = VolumeSet::open(&dir.path().join("b.tender.002")).unwrap();
        assert!(set.check().is_empty());
        let mut back = Vec::new();
        set.reader().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);

        let v2 = dir.path().join("b.tender.002");
        let mut bytes = fs::read(&v2).unwrap();
        bytes[100] ^= 1;
        fs::write(&v2, &bytes).unwrap();
        fs::remove_file(dir.path().join("b.tender.003")).unwrap();
        let problems = set.check();
        assert_eq!(problems.len(), 2);
        assert_eq!(
            problems[0].to_string(),
            "volume 2 of 3 (b.tender.002) is corrupt: re-copy it"
        );
        assert_eq!(problems[1].problem, VolumeProblem::Missing);
        let err = set.reader().read_to_end(&mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("volume 2 of 3"), "{err}");
    }

    /// `len` bytes of a pattern that does not repeat at volume sizes.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len as u64).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn each_volume_is_hashed_behind_the_writer_whatever_the_writes() {
        let size = 3 * CHUNK as u64 + 5;
        for len in [7 * CHUNK + 5, 2 * size as usize, 1] {
            let dir = tempfile::tempdir().unwrap();
            let data = pattern(len);
            let mut w = VolumeWriter::new(dir.path(), "b.tender", size).unwrap();
            // Odd pieces: a byte, less than a chunk, more than one.
            let mut rest = &data[..];
            for piece in [1, 777, CHUNK + 3].into_iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (now, later) = rest.split_at(piece.min(rest.len()));
                w.write_all(now).unwrap();
                rest = later;
            }
            let index = w.finish("id", Digest::of(b"m")).unwrap();
            assert_eq!(index.volumes.len() as u64, (len as u64).div_ceil(size));
            assert_eq!(index.total_size, len as u64);
            for (v, bytes) in index.volumes.iter().zip(data.chunks(size as usize)) {
                assert_eq!(v.size, bytes.len() as u64, "{len}: volume {}", v.number);
                assert_eq!(v.sha256, Digest::of(bytes), "{len}: volume {}", v.number);
                assert_eq!(fs::read(dir.path().join(&v.file)).unwrap(), bytes);
            }
            let partials = fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .to_string_lossy()
                        .ends_with(".partial")
                })
                .count();
            assert_eq!(partials, 0, "{len}");
        }
    }

    #[test]
    fn an_abandoned_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = VolumeWriter::new(dir.path(), "b.tender", 4096).unwrap();
        w.write_all(&pattern(10_000)).unwrap();
        w.abandon();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn volume_files_read_as_one_file_and_name_a_short_volume() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(10_000);
        let mut w = VolumeWriter::new(dir.path(), "b.tender", 4096).unwrap();
        w.write_all(&data).unwrap();
        w.finish("id", Digest::of(b"m")).unwrap();
        let set = VolumeSet::open(dir.path()).unwrap();
        let files = VolumeFiles::new(&set);
        // Across one boundary, across two, up to the very end.
        for (at, len) in [
            (0, 10_000),
            (4000, 200),
            (4095, 4098),
            (8191, 1809),
            (9999, 1),
        ] {
            let mut buf = vec![0u8; len];
            files.read_exact_at(&mut buf, at as u64).unwrap();
            assert_eq!(buf, data[at..at + len], "{at}+{len}");
        }
        assert_eq!(files.read_at(&mut [0u8; 10], 10_000).unwrap(), 0);
        let eof = files.read_exact_at(&mut [0u8; 10], 9995).unwrap_err();
        assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);

        let named = |at: u64| {
            let err = files.read_exact_at(&mut [0u8; 100], at).unwrap_err();
            let check = err
                .get_ref()
                .and_then(|e| e.downcast_ref::<VolumeCheck>())
                .unwrap_or_else(|| panic!("not a volume error: {err}"))
                .clone();
            (check.number, check.problem)
        };
        File::options()
            .write(true)
            .open(dir.path().join("b.tender.002"))
            .unwrap()
            .set_len(100)
            .unwrap();
        let truncated = VolumeProblem::Truncated {
            size: 100,
            expected: 4096,
        };
        assert_eq!(named(4096 + 50), (2, truncated));
        fs::remove_file(dir.path().join("b.tender.003")).unwrap();
        assert_eq!(named(8192), (3, VolumeProblem::Missing));
    }
}
