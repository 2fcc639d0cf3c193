//! Volumes end to end through the built `tender`: a bundle cut at several
//! sizes (down to smaller than one blob, so blobs span volumes) verifies,
//! joins back byte for byte, untars with `cat | tar` and imports; every
//! kind of damage to a volume set is named by volume number with exit 3,
//! by `verify` and `verify --list-missing`, and nothing is imported; FAT32
//! output; pipes; and verify's memory stays bounded over small volumes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tender_export::{BundleOutput, SealOptions, seal_layout};
use tender_format::Targets;
use tender_format::volumes::{FAT32_MAX_FILE, is_on_fat32};
use tender_trust::PrivateKey;

use crate::util::{
    Workspace, assert_exit, pack_layout, sample_fleet, stderr, stdout, tar_spans,
    write_blob_layout, write_site_file,
};

const SITE: &str = "plant-001";
const CLUSTERS: [&str; 2] = ["plant-001-line-a", "plant-001-line-b"];
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// The test layout's blobs: a few hundred KiB each, sizes that are not
/// multiples of 512 so tar padding lands inside volumes too.
const BLOBS: [usize; 3] = [700 * KIB + 1, 400 * KIB + 7, 300 * KIB + 333];

/// A volume set on disk: `DIR/BASE.001` … and `DIR/BASE.volumes.json`.
#[derive(Debug, Clone)]
struct Set {
    dir: PathBuf,
    base: String,
}

impl Set {
    fn new(dir: &Path, base: &str) -> Set {
        Set {
            dir: dir.to_path_buf(),
            base: base.to_string(),
        }
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join(format!("{}.volumes.json", self.base))
    }

    fn index(&self) -> Value {
        serde_json::from_slice(&fs::read(self.index_path()).unwrap()).unwrap()
    }

    fn count(&self) -> u32 {
        self.index()["volumes"].as_array().unwrap().len() as u32
    }

    fn volume_size(&self) -> u64 {
        self.index()["volume_size"].as_u64().unwrap()
    }

    fn file(&self, number: u32) -> String {
        format!("{}.{number:03}", self.base)
    }

    fn volume(&self, number: u32) -> PathBuf {
        self.dir.join(self.file(number))
    }

    /// The bundle stream: every volume, in order.
    fn bytes(&self) -> Vec<u8> {
        (1..=self.count())
            .flat_map(|n| fs::read(self.volume(n)).unwrap())
            .collect()
    }

    /// The volumes and the index, copied into `dir` (created).
    fn copy_into(&self, dir: &Path) -> Set {
        fs::create_dir_all(dir).unwrap();
        fs::copy(
            self.index_path(),
            dir.join(self.index_path().file_name().unwrap()),
        )
        .unwrap();
        for n in 1..=self.count() {
            fs::copy(self.volume(n), dir.join(self.file(n))).unwrap();
        }
        Set::new(dir, &self.base)
    }

    /// "volume N of COUNT (FILE) WHAT", as tender says it.
    fn message(&self, number: u32, what: &str) -> String {
        format!(
            "volume {number} of {} ({}) {what}",
            self.count(),
            self.file(number)
        )
    }
}

/// `tender pack LAYOUT -o DIR/BASE --volume-size SIZE` (DIR created).
fn pack_volumes(ws: &Workspace, layout: &Path, dir: &Path, base: &str, size: &str) -> Set {
    fs::create_dir_all(dir).unwrap();
    let o = pack_layout(ws, layout, &dir.join(base), &["--volume-size", size]);
    assert_exit(&o, 0);
    Set::new(dir, base)
}

fn verify(ws: &Workspace, target: &Path) -> std::process::Output {
    ws.tender()
        .arg("verify")
        .arg(target)
        .args(["--trust", "policy.yaml", "--no-progress"])
        .output()
}

fn list_missing(ws: &Workspace, target: &Path) -> std::process::Output {
    ws.tender()
        .arg("verify")
        .arg(target)
        .args(["--list-missing", "--no-progress"])
        .output()
}

/// Flips one bit of `path` at byte `at`.
fn flip_bit(path: &Path, at: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at as usize] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

// --- round trips ------------------------------------------------------------------

#[test]
fn round_trip_at_several_volume_sizes() {
    let ws = Workspace::new();
    let layout = ws.join("layout");
    let blobs = write_blob_layout(&layout, &BLOBS, 1);
    let single = ws.join("single.tender");
    assert_exit(&pack_layout(&ws, &layout, &single, &[]), 0);
    let single_bytes = fs::read(&single).unwrap();
    let total = single_bytes.len() as u64;
    let mut names = ["tender-manifest.json", "tender-signatures.json"]
        .into_iter()
        .chain(["oci-layout", "index.json"])
        .map(String::from)
        .collect::<Vec<_>>();
    names.extend(blobs);
    let largest_blob = *BLOBS.iter().max().unwrap() as u64;

    for (label, size) in [
        ("4K", 4 * KIB),
        ("64K", 64 * KIB),
        ("1M", MIB),
        ("4M", 4 * MIB),
    ] {
        let size = size as u64;
        let set = pack_volumes(
            &ws,
            &layout,
            &ws.join(&format!("packed-{label}")),
            "b.tender",
            label,
        );
        let index = set.index();
        assert_eq!(index["format"], "tender-volumes/v1", "{label}");
        assert_eq!(index["volume_size"], size, "{label}");
        // Same layout, same creator: the manifest differs from the
        // single file's in bundle id and time only, not in length.
        assert_eq!(index["total_size"], total, "{label}");
        let count = set.count();
        assert_eq!(u64::from(count), total.div_ceil(size), "{label}");
        for (i, v) in index["volumes"].as_array().unwrap().iter().enumerate() {
            let n = i as u32 + 1;
            assert_eq!(v["number"], n);
            assert_eq!(v["file"], set.file(n));
            assert_eq!(v["offset"], i as u64 * size);
            let len = fs::metadata(set.volume(n)).unwrap().len();
            assert_eq!(v["size"], len, "{label} volume {n}");
            if n < count {
                assert_eq!(len, size, "{label}: volume {n} is full");
            }
        }
        // Nothing but the volumes and the index (no .partial left over).
        let mut expected_files: Vec<String> = (1..=count).map(|n| set.file(n)).collect();
        expected_files.push("b.tender.volumes.json".into());
        assert_eq!(crate::util::tree(&set.dir), expected_files, "{label}");

        let stream = set.bytes();
        assert_eq!(stream.len() as u64, total);
        if size < largest_blob {
            let spanning = tar_spans(&stream).into_iter().any(|s| {
                s.path.starts_with("blobs/")
                    && s.data_offset as u64 / size != (s.data_offset + s.size - 1) as u64 / size
            });
            assert!(spanning, "{label}: a blob spans volumes");
        } else if size > total {
            assert_eq!(count, 1, "{label}");
        }

        // Verifies by directory, by index and by any one volume.
        let mut targets = vec![set.dir.clone(), set.index_path(), set.volume(count)];
        if count > 1 {
            targets.push(set.volume(2));
        }
        for target in &targets {
            let o = verify(&ws, target);
            assert_exit(&o, 0);
            assert!(stdout(&o).starts_with("VERIFIED "), "{}", stdout(&o));
        }
        let o = ws
            .tender()
            .arg("verify")
            .arg(&set.dir)
            .args(["--trust", "policy.yaml", "--json", "--no-progress"])
            .output();
        assert_exit(&o, 0);
        let report: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(report["entries"], names.len() - 2, "{label}");
        assert_eq!(report["manifest_digest"], index["manifest_digest"]);
        assert_eq!(report["bundle_id"], index["bundle_id"]);

        let o = list_missing(&ws, &set.dir);
        assert_exit(&o, 0);
        assert_eq!(stdout(&o), "", "{label}: nothing to resend");
        assert!(
            stderr(&o).contains(&format!("all {count} volume(s) present and intact")),
            "{}",
            stderr(&o)
        );

        // Stock tools at 2 AM: the volumes are a plain byte split.
        let o = Command::new("sh")
            .args(["-c", "cat b.tender.[0-9][0-9][0-9] | tar -t"])
            .current_dir(&set.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{label}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().collect::<Vec<_>>(), names, "{label}");

        // join gives back exactly the stream the volumes hold ...
        let joined = ws.join(&format!("joined-{label}.tender"));
        let o = ws
            .tender()
            .arg("join")
            .arg(&set.dir)
            .arg("-o")
            .arg(&joined)
            .output();
        assert_exit(&o, 0);
        assert_eq!(fs::read(&joined).unwrap(), stream, "{label}");
        assert_exit(&verify(&ws, &joined), 0);

        // ... and split then join gives back the single file, byte for byte.
        // (into a directory split creates)
        let split_dir = ws.join(&format!("split-{label}"));
        let o = ws
            .tender()
            .arg("split")
            .arg(&single)
            .arg("--volume-size")
            .arg(label)
            .arg("-o")
            .arg(&split_dir)
            .output();
        assert_exit(&o, 0);
        assert!(
            stdout(&o).starts_with(&format!("{count} volume(s)")),
            "{}",
            stdout(&o)
        );
        let split = Set::new(&split_dir, "single.tender");
        assert_eq!(split.count(), count, "{label}");
        for n in 1..=count {
            let at = (u64::from(n) - 1) * size;
            let end = (at + size).min(total);
            assert_eq!(
                fs::read(split.volume(n)).unwrap(),
                &single_bytes[at as usize..end as usize],
                "{label}: split volume {n}"
            );
        }
        let rejoined = ws.join(&format!("rejoined-{label}.tender"));
        let o = ws
            .tender()
            .arg("join")
            .arg(split.volume(1))
            .arg("-o")
            .arg(&rejoined)
            .output();
        assert_exit(&o, 0);
        assert!(
            fs::read(&rejoined).unwrap() == single_bytes,
            "{label}: split + join is the single file"
        );
        assert_exit(&verify(&ws, &split_dir), 0);
    }
}

#[test]
fn import_from_a_volume_directory() {
    let ws = Workspace::new();
    let stick = ws.join("stick");
    fs::create_dir(&stick).unwrap();
    ws.export(sample_fleet())
        .arg("-o")
        .arg(stick.join("fleet.tender"))
        .args(["--volume-size", "16K"])
        .ok();
    let set = Set::new(&stick, "fleet.tender");
    assert!(set.count() > 4, "{} volumes", set.count());
    assert!(
        !stick.join("fleet.tender").exists(),
        "no single file as well"
    );

    let site = write_site_file(&ws, "site.yaml", SITE, &CLUSTERS, "");
    let import = |target: &Path| {
        ws.tender()
            .arg("import")
            .arg(target)
            .arg("--site")
            .arg(&site)
            .args(["--operator", "tester", "--json", "--no-progress"])
            .output()
    };
    let o = import(&stick);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["outcome"], "imported");
    assert_eq!(report["bundle_id"], set.index()["bundle_id"]);
    assert_eq!(report["clusters"], serde_json::json!(CLUSTERS));
    let state: Value =
        serde_json::from_slice(&fs::read(ws.join("state/site.json")).unwrap()).unwrap();
    assert_eq!(state["channels"]["stable"]["sequence"], 1);

    // Named by one of its volumes, it is the same bundle: nothing to do.
    let o = import(&set.volume(3));
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["outcome"], "already imported");
}

// --- damage ---------------------------------------------------------------------

/// What goes wrong with a volume set between hub and site.
#[derive(Debug, Clone, Copy)]
enum Damage {
    Missing(u32),
    /// Cut to half its size.
    Truncated(u32),
    /// Volume N of the donor set (same volume size) in place of volume N.
    /// With `beside`, the donor's volumes and index are in the same
    /// directory too (two bundles on one stick).
    Foreign {
        number: u32,
        beside: bool,
    },
    /// One bit flipped at this byte of the bundle stream.
    BitFlip(u64),
    /// The two volumes' files swapped.
    Swapped(u32, u32),
}

/// A copy of `clean` in `dir` with `damage` done to it. Returns the path
/// to hand tender (the directory, or the index when two bundles share the
/// directory) and the message expected for each bad volume, by number.
fn damaged(
    clean: &Set,
    donor: &Set,
    damage: Damage,
    dir: &Path,
) -> (Set, PathBuf, Vec<(u32, String)>) {
    let set = clean.copy_into(dir);
    let mut target = set.dir.clone();
    let corrupt = "is corrupt: re-copy it";
    let expected = match damage {
        Damage::Missing(n) => {
            fs::remove_file(set.volume(n)).unwrap();
            vec![(n, set.message(n, "is missing: copy it"))]
        }
        Damage::Truncated(n) => {
            let full = fs::metadata(set.volume(n)).unwrap().len();
            let half = full / 2;
            fs::File::options()
                .write(true)
                .open(set.volume(n))
                .unwrap()
                .set_len(half)
                .unwrap();
            let what = format!("is truncated ({half} of {full} bytes): re-copy it");
            vec![(n, set.message(n, &what))]
        }
        Damage::Foreign { number: n, beside } => {
            let theirs = fs::read(donor.volume(n)).unwrap();
            let ours = fs::read(set.volume(n)).unwrap();
            assert_eq!(theirs.len(), ours.len(), "same size: only the bytes tell");
            assert_ne!(theirs, ours, "the donor's volume {n} differs");
            fs::write(set.volume(n), theirs).unwrap();
            let what = if beside {
                donor.copy_into(dir);
                target = set.index_path();
                "belongs to another bundle: copy the right one"
            } else {
                corrupt
            };
            vec![(n, set.message(n, what))]
        }
        Damage::BitFlip(at) => {
            let size = set.volume_size();
            let n = (at / size) as u32 + 1;
            flip_bit(&set.volume(n), at % size);
            vec![(n, set.message(n, corrupt))]
        }
        Damage::Swapped(a, b) => {
            assert_ne!(
                fs::read(set.volume(a)).unwrap(),
                fs::read(set.volume(b)).unwrap(),
                "volumes {a} and {b} differ"
            );
            let parked = dir.join("parked");
            fs::rename(set.volume(a), &parked).unwrap();
            fs::rename(set.volume(b), set.volume(a)).unwrap();
            fs::rename(&parked, set.volume(b)).unwrap();
            vec![(a, set.message(a, corrupt)), (b, set.message(b, corrupt))]
        }
    };
    (set, target, expected)
}

/// Exactly the expected volumes are named in `text`, no other.
#[track_caller]
fn assert_names(text: &str, set: &Set, expected: &[(u32, String)], what: &str) {
    for (_, message) in expected {
        assert!(
            text.contains(message),
            "{what}: want {message:?} in:\n{text}"
        );
    }
    for n in 1..=set.count() {
        if expected.iter().all(|(e, _)| *e != n) {
            assert!(
                !text.contains(&format!("volume {n} of ")),
                "{what}: volume {n} is fine but named:\n{text}"
            );
        }
    }
}

/// `verify` and `verify --list-missing` both exit 3 naming exactly the
/// bad volumes; `--list-missing` prints their paths, one a line.
fn assert_verify_names(ws: &Workspace, set: &Set, target: &Path, expected: &[(u32, String)]) {
    let case = target.display().to_string();
    let o = verify(ws, target);
    assert_exit(&o, 3);
    assert!(stderr(&o).contains("REJECTED"), "{case}: {}", stderr(&o));
    assert_names(&stderr(&o), set, expected, &format!("{case}: verify"));

    let o = list_missing(ws, target);
    assert_exit(&o, 3);
    let paths: Vec<String> = expected
        .iter()
        .map(|(n, _)| set.volume(*n).display().to_string())
        .collect();
    assert_eq!(
        stdout(&o).lines().collect::<Vec<_>>(),
        paths,
        "{case}: --list-missing prints the paths to resend; stderr:\n{}",
        stderr(&o)
    );
    assert_names(
        &stderr(&o),
        set,
        expected,
        &format!("{case}: --list-missing"),
    );
}

/// Offsets in a bundle stream worth flipping a bit at, with `size`-byte
/// volumes: the last byte of a blob that ends inside a volume k > 1 (its
/// digest fails before volume k's own hash is reached), and the name in
/// the tar header of the last blob.
fn flip_offsets(stream: &[u8], size: u64) -> (u64, u64) {
    let spans = tar_spans(stream);
    let blob_end = spans
        .iter()
        .filter(|s| s.path.starts_with("blobs/"))
        .map(|s| (s.data_offset + s.size) as u64 - 1)
        .find(|&last| last / size > 0 && (last + 1) % size != 0)
        .expect("a blob ending inside a volume after the first");
    let last_blob = spans
        .iter()
        .rfind(|s| s.path.starts_with("blobs/"))
        .unwrap();
    let header = last_blob.data_offset as u64 - 512 + 20;
    assert!(header / size > 0, "the header is past volume 1");
    (blob_end, header)
}

#[test]
fn every_damaged_volume_is_named_by_number() {
    let ws = Workspace::new();
    let (ours, theirs) = (ws.join("layout-a"), ws.join("layout-b"));
    write_blob_layout(&ours, &BLOBS, 1);
    write_blob_layout(&theirs, &BLOBS, 2);
    let clean = pack_volumes(&ws, &ours, &ws.join("a"), "a.tender", "64K");
    let donor = pack_volumes(&ws, &theirs, &ws.join("b"), "b.tender", "64K");
    let size = clean.volume_size();
    assert!(clean.count() >= 6, "{} volumes", clean.count());
    let (blob_end, header) = flip_offsets(&clean.bytes(), size);

    let cases = [
        Damage::Missing(4),
        Damage::Foreign {
            number: 2,
            beside: true,
        },
        Damage::Foreign {
            number: 2,
            beside: false,
        },
        Damage::Truncated(3),
        Damage::BitFlip(size + size / 2),
        Damage::BitFlip(blob_end),
        Damage::BitFlip(header),
        // Volume 1 ends inside the signature slot: it cannot be read as a
        // bundle on its own, which does not make it another bundle's.
        Damage::BitFlip(size - 1),
        Damage::Swapped(2, 3),
    ];
    for (i, damage) in cases.into_iter().enumerate() {
        let dir = ws.join(&format!("case-{i}"));
        let (set, target, expected) = damaged(&clean, &donor, damage, &dir);
        eprintln!("case {i}: {damage:?}: {expected:?}");
        assert_verify_names(&ws, &set, &target, &expected);
    }

    // Untouched, the same set still verifies: the cases were the damage.
    assert_exit(&verify(&ws, &clean.dir), 0);
}

#[test]
fn a_damaged_volume_set_imports_nothing() {
    let ws = Workspace::new();
    let stick = ws.join("stick");
    fs::create_dir(&stick).unwrap();
    ws.export(sample_fleet())
        .arg("-o")
        .arg(stick.join("fleet.tender"))
        .args(["--volume-size", "16K"])
        .ok();
    let clean = Set::new(&stick, "fleet.tender");
    let layout = ws.join("layout");
    write_blob_layout(&layout, &BLOBS, 3);
    let donor = pack_volumes(&ws, &layout, &ws.join("donor"), "other.tender", "16K");
    let size = clean.volume_size();
    let count = clean.count();
    // The last volumes hold blobs (the first ones, the 64 KiB signature
    // slot, are all spaces in every bundle).
    assert!(
        count >= 7 && (count - 2) * size as u32 > 68 * 1024,
        "{count}"
    );
    let (blob_end, header) = flip_offsets(&clean.bytes(), size);

    let site = write_site_file(&ws, "site.yaml", SITE, &CLUSTERS, "");
    let site_json = ws.join("state/site.json");
    let import = |target: &Path| {
        ws.tender()
            .arg("import")
            .arg(target)
            .arg("--site")
            .arg(&site)
            .args(["--operator", "tester", "--no-progress"])
            .output()
    };
    let cases = [
        Damage::Missing(count - 1),
        Damage::Truncated(count - 1),
        Damage::Foreign {
            number: count - 1,
            beside: false,
        },
        Damage::Foreign {
            number: count - 1,
            beside: true,
        },
        Damage::BitFlip(blob_end),
        Damage::BitFlip(header),
        Damage::Swapped(count - 2, count - 1),
    ];
    for (i, damage) in cases.into_iter().enumerate() {
        let dir = ws.join(&format!("case-{i}"));
        let (set, target, expected) = damaged(&clean, &donor, damage, &dir);
        let o = import(&target);
        assert_exit(&o, 3);
        assert_names(&stderr(&o), &set, &expected, &format!("{damage:?}: import"));
        assert!(!site_json.exists(), "{damage:?}: nothing imported");
        assert_verify_names(&ws, &set, &target, &expected);
    }

    // The same site takes the intact set: the refusals above were the
    // volumes', not the site's.
    let o = import(&stick);
    assert_exit(&o, 0);
    assert!(stdout(&o).starts_with("IMPORTED "), "{}", stdout(&o));
    assert!(site_json.is_file());
}

// --- FAT32 -------------------------------------------------------------------------

/// A FAT32 image loop-mounted on a temp dir, unmounted on drop.
struct Fat32Mount {
    dir: tempfile::TempDir,
    _image: tempfile::TempDir,
}

impl Fat32Mount {
    /// Err says why not (no mkfs.vfat, no loop devices, no vfat driver).
    fn try_mount() -> Result<Fat32Mount, String> {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("stick.img");
        fs::File::create(&image).unwrap().set_len(64 << 20).unwrap();
        let run = |cmd: &mut Command| -> Result<(), String> {
            let shown = format!("{cmd:?}");
            let o = cmd.output().map_err(|e| format!("{shown}: {e}"))?;
            if o.status.success() {
                Ok(())
            } else {
                Err(format!("{shown}: {}", stderr(&o).trim()))
            }
        };
        let mkfs = ["mkfs.vfat", "/usr/sbin/mkfs.vfat", "/sbin/mkfs.vfat"]
            .into_iter()
            .find(|m| (!m.starts_with('/') && which(m)) || Path::new(m).is_file())
            .ok_or("mkfs.vfat not found (dosfstools: scripts/install-deps.sh)")?;
        run(Command::new(mkfs).args(["-F", "32"]).arg(&image))?;
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount")
            .args(["-t", "vfat", "-o", "loop"])
            .arg(&image)
            .arg(dir.path()))?;
        Ok(Fat32Mount {
            dir,
            _image: image_dir,
        })
    }
}

impl Drop for Fat32Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
}

const FAT32_NOTICE: &str = "is on FAT32 (files stop at 4 GiB - 1)";

#[test]
fn fat32_output_is_detected_and_cut_only_above_the_limit() {
    let ws = Workspace::new();
    let layout = ws.join("layout");
    write_blob_layout(&layout, &BLOBS, 4);

    assert_eq!(FAT32_MAX_FILE, (4 << 30) - 1);
    match Fat32Mount::try_mount() {
        Ok(stick) => {
            assert!(is_on_fat32(stick.dir.path()));
            let out = stick.dir.path().join("b.tender");
            let o = pack_layout(&ws, &layout, &out, &[]);
            assert_exit(&o, 0);
            assert!(stderr(&o).contains(FAT32_NOTICE), "{}", stderr(&o));
            // Far below 4 GiB: one file, as anywhere else.
            assert_eq!(crate::util::tree(stick.dir.path()), ["b.tender"]);
            assert_exit(&verify(&ws, &out), 0);
        }
        Err(why) => {
            // Said, not skipped: what runs instead is the decision itself
            // (is_on_fat32 below, split_above below) without a real stick.
            eprintln!(
                "fat32 test: cannot mount a FAT32 image here ({why}); \
                 checking the FAT32 decision without a mounted stick"
            );
        }
    }

    // The workspace is not FAT32: no notice, one file.
    assert!(!is_on_fat32(ws.path()));
    let o = pack_layout(&ws, &layout, &ws.join("plain.tender"), &[]);
    assert_exit(&o, 0);
    assert!(!stderr(&o).contains("FAT32"), "{}", stderr(&o));
    assert!(ws.join("plain.tender").is_file());
    assert!(!ws.join("plain.tender.volumes.json").exists());

    // What FAT32 output does above its limit, with a limit small enough
    // to reach: the bundle is cut into volumes of the limit.
    let key = PrivateKey::read(&ws.join("hub.key")).unwrap();
    let options = SealOptions {
        channel: "stable".into(),
        sequence: 1,
        creator: "tester".into(),
        targets: Targets {
            sites: vec![SITE.into()],
            clusters: Vec::new(),
        },
        releases: Vec::new(),
        bundle_id: None,
        created: None,
        policy_updates: Vec::new(),
        gate_override: None,
    };
    let limit = 64 * KIB as u64;
    let cut_dir = ws.join("cut");
    fs::create_dir(&cut_dir).unwrap();
    let path = cut_dir.join("b.tender");
    let output = BundleOutput::File {
        path: path.clone(),
        split_above: Some(limit),
    };
    let sealed = seal_layout(&layout, &options, &key, &output, &mut |_| {}).unwrap();
    let index = sealed.volumes.expect("cut into volumes above the limit");
    assert_eq!(sealed.path, cut_dir.join("b.tender.volumes.json"));
    assert_eq!(index.volume_size, limit);
    assert_eq!(index.total_size, sealed.bytes);
    assert_eq!(index.volumes.len() as u64, sealed.bytes.div_ceil(limit));
    assert!(!path.exists());
    assert_exit(&verify(&ws, &cut_dir), 0);

    // At or below the limit: one file.
    let whole_dir = ws.join("whole");
    fs::create_dir(&whole_dir).unwrap();
    let path = whole_dir.join("b.tender");
    let output = BundleOutput::File {
        path: path.clone(),
        split_above: Some(sealed.bytes),
    };
    let sealed = seal_layout(&layout, &options, &key, &output, &mut |_| {}).unwrap();
    assert!(sealed.volumes.is_none());
    assert_eq!(sealed.path, path);
    assert_eq!(crate::util::tree(&whole_dir), ["b.tender"]);
    assert_exit(&verify(&ws, &path), 0);
}

// --- pipes -------------------------------------------------------------------------

#[test]
fn pack_pipes_into_verify_and_export_into_import() {
    let ws = Workspace::new();
    let layout = ws.join("layout");
    write_blob_layout(&layout, &BLOBS, 5);

    let mut pack = ws
        .tender()
        .arg("pack")
        .arg(&layout)
        .args(["-o", "-", "--key", "hub.key", "--sequence", "1"])
        .args(["--site", SITE, "--no-progress"])
        .spawn_piped();
    let o = ws
        .tender()
        .args([
            "verify",
            "-",
            "--trust",
            "policy.yaml",
            "--json",
            "--no-progress",
        ])
        .stdin_from(pack.stdout.take().unwrap())
        .output();
    let packed = pack.wait_with_output().unwrap();
    assert_exit(&packed, 0);
    assert_exit(&o, 0);
    // The summary goes to stderr: stdout is the bundle.
    let summary: Value = serde_json::from_str(stderr(&packed).trim()).unwrap();
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["manifest_digest"], summary["manifest_digest"]);
    assert_eq!(report["entries"], BLOBS.len() + 2);
    assert_eq!(report["stream_bytes"], summary["bytes"]);

    // Volumes need files.
    let o = pack_layout(&ws, &layout, Path::new("-"), &["--volume-size", "1M"]);
    assert_exit(&o, 2);

    // export | import -, the satellite-link way.
    let site = write_site_file(&ws, "site.yaml", SITE, &CLUSTERS, "");
    let mut export = ws.export(sample_fleet()).args(["-o", "-"]).spawn_piped();
    let o = ws
        .tender()
        .args(["import", "-", "--site"])
        .arg(&site)
        .args(["--operator", "tester", "--json", "--no-progress"])
        .stdin_from(export.stdout.take().unwrap())
        .output();
    assert_exit(&export.wait_with_output().unwrap(), 0);
    assert_exit(&o, 0);
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["outcome"], "imported");
    assert!(ws.join("state/site.json").is_file());
}

// --- memory --------------------------------------------------------------------------

#[test]
fn verify_memory_stays_bounded_with_volumes_smaller_than_blobs() {
    let ws = Workspace::new();
    let layout = ws.join("layout");
    // ~64 MiB in four 16 MiB blobs, cut into 1 MiB volumes.
    let blobs: Vec<usize> = (0..4).map(|i| 16 * MIB + 4093 * i).collect();
    write_blob_layout(&layout, &blobs, 6);
    let set = pack_volumes(&ws, &layout, &ws.join("vols"), "big.tender", "1M");
    assert!(set.count() >= 64, "{} volumes", set.count());
    fs::remove_dir_all(&layout).unwrap();

    let time = Path::new("/usr/bin/time");
    assert!(
        time.is_file(),
        "GNU time (/usr/bin/time) is needed to read peak RSS: scripts/install-deps.sh installs it"
    );
    for args in [
        ["--trust", "policy.yaml"].as_slice(),
        ["--list-missing"].as_slice(),
    ] {
        let o = Command::new(time)
            .arg("-v")
            .arg(env!("CARGO_BIN_EXE_tender"))
            .arg("verify")
            .arg(&set.dir)
            .args(args)
            .arg("--no-progress")
            .current_dir(ws.path())
            .output()
            .unwrap();
        assert_exit(&o, 0);
        let err = stderr(&o);
        let rss_kib: u64 = err
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("Maximum resident set size (kbytes): ")
            })
            .unwrap_or_else(|| panic!("no peak RSS from /usr/bin/time -v:\n{err}"))
            .parse()
            .unwrap();
        eprintln!("{args:?}: peak RSS {rss_kib} KiB");
        assert!(
            rss_kib < 64 * 1024,
            "{args:?}: peak RSS {rss_kib} KiB over 64 MiB of volumes"
        );
    }
}
