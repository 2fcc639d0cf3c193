//! Seeds that are made rather than copied: the parts the reader pulls out
//! of the vectors' bundles, real patches against the fixed source, and a
//! real volume index. `scripts/fuzz.sh` asks each target for its seeds by
//! running it once with `TENDER_FUZZ_SEEDS` naming the corpus directory;
//! the target's init writes them there and exits. Made at run time, so the
//! repository holds no binary corpus.

use std::fs;
use std::io::Write;
use std::path::Path;

use tender_delta::{BlobRef, PatchOptions, PatchOutcome, make_patch};
use tender_format::policy_update::PolicyUpdate;
use tender_format::{BundleReader, Digest, canonical, volumes};

/// The variable naming where a target writes its seeds.
pub const VARIABLE: &str = "TENDER_FUZZ_SEEDS";

/// When `TENDER_FUZZ_SEEDS` is set: writes `target`'s seeds into that
/// directory and ends the process. Otherwise does nothing.
pub fn write_if_asked(target: &str) {
    let Some(dir) = std::env::var_os(VARIABLE) else {
        return;
    };
    let dir = Path::new(&dir);
    fs::create_dir_all(dir).expect("the seed directory");
    let written = match target {
        "canonical_json" => bundle_parts(dir, Part::Manifest),
        "signature_slot" => bundle_parts(dir, Part::Slot),
        "policy_update" => bundle_parts(dir, Part::PolicyUpdates),
        "patch_container" => patches(dir),
        "volume_index" => volume_index(dir),
        _ => 0,
    };
    eprintln!(
        "{target}: wrote {written} generated seed(s) to {}",
        dir.display()
    );
    std::process::exit(0);
}

enum Part {
    Manifest,
    Slot,
    PolicyUpdates,
}

/// Writes one part of every vector bundle whose manifest and slot read.
fn bundle_parts(dir: &Path, part: Part) -> usize {
    let mut written = 0;
    let mut bundles: Vec<_> = walk(&crate::repo().join("bundle-spec/vectors"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "tender"))
        .collect();
    bundles.sort();
    for bundle in bundles {
        let Ok(reader) = BundleReader::open_file(&bundle) else {
            continue;
        };
        let mut seeds = Vec::new();
        match part {
            Part::Manifest => seeds.push(reader.manifest_bytes().to_vec()),
            Part::Slot => seeds.push(
                reader
                    .signatures()
                    .encode(reader.manifest().signature_slot_size)
                    .expect("a read slot re-encodes"),
            ),
            Part::PolicyUpdates => {
                let updates: &[PolicyUpdate] = &reader.manifest().policy_updates;
                for update in updates {
                    seeds.push(update.to_canonical_bytes().expect("a read update encodes"));
                }
                if updates.len() > 1 {
                    seeds.push(canonical::to_vec(&updates).expect("a chain encodes"));
                }
            }
        }
        for seed in seeds {
            written += write(dir, &seed);
        }
    }
    written
}

/// Real patches from the fixed source to its target stored plain, as gzip
/// and as zstd, so that every rebuild path starts from a valid patch.
fn patches(dir: &Path) -> usize {
    let work = tempfile::tempdir().expect("a work directory");
    let source = crate::patch_source();
    let source_path = work.path().join("source");
    fs::write(&source_path, &source).expect("writing the source");
    let source_ref = BlobRef {
        digest: Digest::of(&source),
        size: source.len() as u64,
    };
    let plain = crate::patch_target();
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    gzip.write_all(&plain).expect("gzip in memory");
    let gzip = gzip.finish().expect("gzip in memory");
    let zstd = zstd::encode_all(&plain[..], 3).expect("zstd in memory");
    let mut written = 0;
    for (name, target) in [("plain", plain), ("gzip", gzip), ("zstd", zstd)] {
        let target_path = work.path().join(name);
        fs::write(&target_path, &target).expect("writing a target");
        let target_ref = BlobRef {
            digest: Digest::of(&target),
            size: target.len() as u64,
        };
        let outcome = make_patch(
            (&source_path, source_ref),
            (&target_path, target_ref),
            work.path(),
            &PatchOptions::default(),
        )
        .expect("making a patch");
        match outcome {
            PatchOutcome::Patched(patch) => {
                written += write(dir, &fs::read(&patch.file).expect("reading the patch"));
            }
            PatchOutcome::Whole(why) => eprintln!("no {name} patch seed: {why}"),
        }
    }
    written
}

/// The index of the split the volume-index target makes.
fn volume_index(dir: &Path) -> usize {
    let work = tempfile::tempdir().expect("a work directory");
    volumes::split(
        &crate::volume_bundle(),
        work.path(),
        crate::VOLUME_BASE,
        crate::VOLUME_SIZE,
    )
    .expect("splitting the valid-minimal vector");
    let index = fs::read(work.path().join(volumes::index_name(crate::VOLUME_BASE)))
        .expect("reading the index");
    write(dir, &index)
}

/// Writes a seed named by its digest (as libFuzzer names corpus files).
fn write(dir: &Path, seed: &[u8]) -> usize {
    let name = Digest::of(seed).to_string().replace(':', "-");
    fs::write(dir.join(format!("gen-{name}")), seed).expect("writing a seed");
    1
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
