//! What the fuzz targets share: a scratch directory per fuzzing process
//! (the parsers under test read files, as tender does), the repository's
//! vectors, and the fixed source blob the patch target rebuilds from.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tempfile::TempDir;

pub mod seeds;

/// The repository root (the fuzz crate sits in `fuzz/`).
pub fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// A file of `bundle-spec/vectors/`.
pub fn vector(path: &str) -> PathBuf {
    repo().join("bundle-spec/vectors").join(path)
}

/// This process's scratch directory, removed when the process exits
/// normally (a crash leaves it in the system's temporary directory).
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        tempfile::Builder::new()
            .prefix("tender-fuzz-")
            .tempdir()
            .expect("a scratch directory")
    })
    .path()
}

/// Writes `data` to `name` in the scratch directory, replacing it.
pub fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).expect("scratch subdirectory");
    }
    fs::write(&path, data).expect("writing a scratch file");
    path
}

/// The source blob every patch seed refers to: 64 KiB of text that looks
/// like a layer's file listing (compressible, with repeats a diff uses).
pub fn patch_source() -> Vec<u8> {
    let mut out = Vec::with_capacity(64 << 10);
    let mut i = 0u32;
    while out.len() < 64 << 10 {
        out.extend_from_slice(
            format!("usr/lib/python3/dist-packages/module_{i:05}/__init__.py {i}\n").as_bytes(),
        );
        i = i.wrapping_mul(1_103_515_245).wrapping_add(12_345) % 40_000;
    }
    out.truncate(64 << 10);
    out
}

/// The patch seeds' target: the source with some lines changed and some
/// added, as a next image layer would be.
pub fn patch_target() -> Vec<u8> {
    let source = patch_source();
    let mut out = Vec::with_capacity(source.len() + 4096);
    for (n, line) in source.split_inclusive(|&b| b == b'\n').enumerate() {
        if n % 97 == 0 {
            out.extend_from_slice(format!("etc/changed/{n}.conf\n").as_bytes());
        } else {
            out.extend_from_slice(line);
        }
    }
    out
}

/// Volume size the volume-index target splits its bundle with; the seeds
/// are that split's index.
pub const VOLUME_SIZE: u64 = 16 << 10;
/// Base name of the split volumes.
pub const VOLUME_BASE: &str = "fuzz.tender";
/// The bundle the volume-index target splits.
pub fn volume_bundle() -> PathBuf {
    vector("valid-minimal/bundle.tender")
}
