//! Making a patch: which source bytes it refers to and which rebuild gives
//! the target back. The target's plain text is diffed against the source's
//! plain text (what `zstd --patch-from` does) with a recipe for the exact
//! compressed bytes (`recipe`); a blob no recipe reproduces is tried at the
//! compressed level. Every patch is proven before it ships (`prove`);
//! anything else travels whole, with the reason.

use std::fs::File;
use std::path::Path;
use tender_format::FromIo;

use crate::compression::{Compression, decoder, plain_bytes, plain_size, plain_size_hint};
use crate::diff_frames::{self, window_log};
use crate::error::DeltaError;
use crate::job::{PatchOptions, PatchOutcome};
use crate::patch::{BlobRef, PatchHeader, Rebuild};
use crate::{prove, recipe};

/// Makes and proves a patch that rebuilds `target` from `source`.
///
/// First at the plain-text level: the diff of the uncompressed tars and a
/// recipe for the exact compressed bytes. A blob whose encoder tender
/// cannot reproduce is then tried at the compressed level (its bytes
/// against the source's bytes, exact by construction), which pays off
/// where compressed streams repeat, as zstd:chunked's per-file frames do.
pub fn make_patch(
    source: (&Path, BlobRef),
    target: (&Path, BlobRef),
    work_dir: &Path,
    options: &PatchOptions,
) -> Result<PatchOutcome, DeltaError> {
    match plain_level_patch(source, target, work_dir, options)? {
        Attempt::Done(outcome) => Ok(outcome),
        Attempt::NoRecipe(reason) => {
            match compressed_level_patch(source, target, work_dir, options)? {
                PatchOutcome::Patched(patch) => Ok(PatchOutcome::Patched(patch)),
                PatchOutcome::Whole(why) => Ok(PatchOutcome::Whole(format!("{reason}; {why}"))),
            }
        }
    }
}

/// What the plain-text attempt came to.
enum Attempt {
    Done(PatchOutcome),
    /// No recipe rebuilds the exact compressed bytes, for this reason.
    NoRecipe(String),
}

fn plain_level_patch(
    source: (&Path, BlobRef),
    target: (&Path, BlobRef),
    work_dir: &Path,
    options: &PatchOptions,
) -> Result<Attempt, DeltaError> {
    let (source_path, source_ref) = source;
    let (target_path, target_ref) = target;
    let open = |path: &Path| File::open(path).map_err(DeltaError::io_with("opening a blob"));
    let source_compression =
        Compression::of_file(source_path).map_err(DeltaError::io_with("reading a blob"))?;
    let target_compression =
        Compression::of_file(target_path).map_err(DeltaError::io_with("reading a blob"))?;
    let whole = |reason: String| Ok(Attempt::Done(PatchOutcome::Whole(reason)));
    let target_plain_size = match plain_size(open(target_path)?, target_compression) {
        Ok(n) => n,
        Err(e) => return whole(format!("cannot decompress it: {e}")),
    };
    // How the exact bytes come back from the plain text. Found before the
    // reference is loaded, so that the two never take memory at once.
    let (rebuild, corrections) =
        match recipe::find(target_path, target_compression, target_plain_size, options)? {
            Ok(found) => found,
            Err(reason) => return Ok(Attempt::NoRecipe(reason)),
        };
    let Some(reference) = plain_bytes(
        open(source_path)?,
        source_compression,
        options.window_limit,
        plain_size_hint(source_path, source_compression),
    )
    .ok()
    .flatten() else {
        return whole(format!(
            "base layer {} does not decompress within the {}-byte window limit",
            source_ref.digest, options.window_limit
        ));
    };
    let frames = match options.frames {
        Some(shape) if shape.cuts(reference.len() as u64, target_plain_size) => {
            Some(diff_frames::plan(
                diff_frames::tar_files(&reference[..]).as_deref(),
                target_tar_files(target_path, target_compression)?.as_deref(),
                reference.len() as u64,
                target_plain_size,
                shape,
            ))
        }
        _ => None,
    };
    let header = PatchHeader {
        target: target_ref,
        target_plain_size,
        source: source_ref,
        source_compression,
        source_plain_size: reference.len() as u64,
        window_log: match &frames {
            Some(frames) => diff_frames::frames_window_log(frames),
            None => window_log(reference.len() as u64 + target_plain_size),
        },
        rebuild,
        corrections_size: 0,
        diff_size: 0,
        frames,
    };
    let plain = decoder(open(target_path)?, target_compression)
        .map_err(DeltaError::io_with("reading a blob"))?;
    let outcome = prove::write_and_prove(
        header,
        &corrections,
        reference,
        plain,
        (source_path, work_dir),
        options.level,
        options,
    )?;
    Ok(Attempt::Done(outcome))
}

/// The target's tar files, to cut it into frames: one more pass over its
/// plain text (decompression only; the diff's search costs far more).
fn target_tar_files(
    target_path: &Path,
    compression: Compression,
) -> Result<Option<Vec<diff_frames::TarFile>>, DeltaError> {
    let plain = decoder(
        File::open(target_path).map_err(DeltaError::io_with("opening a blob"))?,
        compression,
    )
    .map_err(DeltaError::io_with("reading a blob"))?;
    Ok(diff_frames::tar_files(plain))
}

/// zstd diff level for compressed bytes: they do not compress, so only the
/// long matches count, and level 9 finds them about 20 times faster than 19
/// for 1-3 % more bytes (measured on zstd and zstd:chunked layers).
const COMPRESSED_LEVEL_DIFF: i32 = 9;

/// A patch of the target's bytes against the source's bytes, as they are.
fn compressed_level_patch(
    source: (&Path, BlobRef),
    target: (&Path, BlobRef),
    work_dir: &Path,
    options: &PatchOptions,
) -> Result<PatchOutcome, DeltaError> {
    let (source_path, source_ref) = source;
    let (target_path, target_ref) = target;
    let open = |path: &Path| File::open(path).map_err(DeltaError::io_with("opening a blob"));
    let Some(reference) = plain_bytes(
        open(source_path)?,
        Compression::None,
        options.window_limit,
        Some(source_ref.size),
    )
    .map_err(DeltaError::io_with("reading a blob"))?
    else {
        return Ok(PatchOutcome::Whole(format!(
            "base layer {} is over the {}-byte window limit",
            source_ref.digest, options.window_limit
        )));
    };
    let header = PatchHeader {
        target: target_ref,
        target_plain_size: target_ref.size,
        source: source_ref,
        source_compression: Compression::None,
        source_plain_size: reference.len() as u64,
        window_log: window_log(reference.len() as u64 + target_ref.size),
        rebuild: Rebuild::Identity,
        corrections_size: 0,
        diff_size: 0,
        frames: None,
    };
    let outcome = prove::write_and_prove(
        header,
        &[],
        reference,
        Box::new(open(target_path)?),
        (source_path, work_dir),
        options.level.min(COMPRESSED_LEVEL_DIFF),
        options,
    )?;
    Ok(match outcome {
        PatchOutcome::Whole(why) => {
            PatchOutcome::Whole(format!("a patch of the compressed bytes: {why}"))
        }
        patched => patched,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::{ApplyLimits, apply};
    use crate::diff_frames::FrameShape;
    use crate::error::DeltaError;
    use crate::go_flate;
    use crate::job::Patch;
    use crate::pgzip_recipe::{self, Found};
    use crate::zstd_recipe;
    use std::io::Write;
    use tender_format::Digest;
    use tender_format::Verdict;
    use zstd::stream::raw::{CParameter, Encoder};
    use zstd::stream::zio;

    /// A layer tar: a large "binary" and a few config files; `version`
    /// changes a slice of the binary and one config file.
    fn layer_tar(version: u32) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut binary: Vec<u8> = (0..400_000u32)
            .flat_map(|i| (i.wrapping_mul(2_654_435_761) >> 13).to_le_bytes())
            .collect();
        for b in &mut binary[100_000..100_000 + 5_000 * version as usize] {
            *b ^= 0x5a;
        }
        let config = format!("version = {version}\nname = app\n");
        for (path, data) in [
            ("usr/bin/app", &binary[..]),
            ("etc/app.conf", config.as_bytes()),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(1_700_000_000);
            header.set_cksum();
            builder.append_data(&mut header, path, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn compress(tar: &[u8], how: Compression) -> Vec<u8> {
        match how {
            Compression::None => tar.to_vec(),
            Compression::Gzip => {
                // GNU gzip, as most registry layers; preflate cannot model
                // miniz_oxide on every input (such layers travel whole).
                let mut child = std::process::Command::new("gzip")
                    .arg("-6n")
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .expect("gzip runs");
                let mut stdin = child.stdin.take().unwrap();
                let input = tar.to_vec();
                let writer = std::thread::spawn(move || stdin.write_all(&input));
                let out = child.wait_with_output().unwrap();
                writer.join().unwrap().unwrap();
                assert!(out.status.success());
                out.stdout
            }
            Compression::Zstd => {
                let recipe = zstd_recipe::ZstdRecipe {
                    level: 5,
                    checksum: true,
                    content_size: true,
                    libzstd: zstd_recipe::libzstd_version(),
                };
                let mut out = Vec::new();
                zstd_recipe::rebuild(&recipe, tar.len() as u64, &mut &tar[..], &mut out).unwrap();
                out
            }
        }
    }

    /// Writes `bytes` as the blob file `name` in `dir`.
    fn put_blob(dir: &Path, name: &str, bytes: Vec<u8>) -> (std::path::PathBuf, BlobRef) {
        let path = dir.join(name);
        std::fs::write(&path, &bytes).unwrap();
        let r = BlobRef {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
        };
        (path, r)
    }

    struct Fixture {
        dir: tempfile::TempDir,
        source: (std::path::PathBuf, BlobRef),
        target: (std::path::PathBuf, BlobRef),
    }

    fn fixture(how: Compression) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let blob = |name: &str, bytes: Vec<u8>| put_blob(dir.path(), name, bytes);
        let source = blob("v1", compress(&layer_tar(1), how));
        let target = blob("v2", compress(&layer_tar(2), how));
        Fixture {
            dir,
            source,
            target,
        }
    }

    fn patch(f: &Fixture) -> Patch {
        let options = PatchOptions {
            level: 3,
            ..PatchOptions::default()
        };
        match make_patch(
            (&f.source.0, f.source.1),
            (&f.target.0, f.target.1),
            f.dir.path(),
            &options,
        )
        .unwrap()
        {
            PatchOutcome::Patched(p) => *p,
            PatchOutcome::Whole(reason) => panic!("shipped whole: {reason}"),
        }
    }

    #[test]
    fn every_compression_round_trips_byte_exact() {
        for how in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let f = fixture(how);
            let p = patch(&f);
            assert!(
                p.size * 10 < f.target.1.size,
                "{how:?}: patch {} of {}",
                p.size,
                f.target.1.size
            );
            let mut rebuilt = Vec::new();
            let (digest, size) = apply(
                &p.file,
                f.target.1.digest,
                &f.source.0,
                &mut rebuilt,
                ApplyLimits::default(),
            )
            .unwrap();
            assert_eq!(rebuilt, std::fs::read(&f.target.0).unwrap(), "{how:?}");
            assert_eq!((digest, size), (f.target.1.digest, f.target.1.size));
        }
    }

    /// Makes and proves a patch from `v1` to `v2` (level-3 diff), checks the
    /// site's rebuild is the target byte for byte, and returns the patch
    /// (kept past the temporary directory) and the target.
    fn patch_and_rebuild(v1: Vec<u8>, v2: Vec<u8>) -> (Patch, Vec<u8>) {
        let options = PatchOptions {
            level: 3,
            ..PatchOptions::default()
        };
        patch_and_rebuild_with(v1, v2, &options)
    }

    fn patch_and_rebuild_with(
        v1: Vec<u8>,
        v2: Vec<u8>,
        options: &PatchOptions,
    ) -> (Patch, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let source = put_blob(dir.path(), "v1", v1);
        let target = put_blob(dir.path(), "v2", v2);
        let outcome = make_patch(
            (&source.0, source.1),
            (&target.0, target.1),
            dir.path(),
            options,
        )
        .unwrap();
        let PatchOutcome::Patched(p) = outcome else {
            panic!("{outcome:?}")
        };
        let mut rebuilt = Vec::new();
        apply(
            &p.file,
            target.1.digest,
            &source.0,
            &mut rebuilt,
            ApplyLimits::default(),
        )
        .unwrap();
        let blob = std::fs::read(&target.0).unwrap();
        assert!(rebuilt == blob, "rebuilt blob differs");
        let kept = tempfile::NamedTempFile::new().unwrap().into_temp_path();
        std::fs::copy(&p.file, &kept).unwrap();
        (Patch { file: kept, ..*p }, blob)
    }

    #[test]
    fn go_gzip_layers_rebuild_with_no_corrections() {
        use tender_test_support::{Compressor, GoWrites, go_gzip};
        type Compress<'a> = &'a dyn Fn(&[u8]) -> Vec<u8>;
        let cases: [(u8, Compress); 4] = [
            (1, &|tar| Compressor::GoGzip1.compress(tar)),
            // Docker and BuildKit: gzip.DefaultCompression.
            (6, &|tar| Compressor::GoGzipDefault.compress(tar)),
            (9, &|tar| go_gzip(tar, 9, GoWrites::All)),
            (4, &|tar| go_gzip(tar, 4, GoWrites::Size(4096))),
        ];
        for (level, compress) in cases {
            let header = patch_and_rebuild(compress(&layer_tar(1)), compress(&layer_tar(2)))
                .0
                .header;
            assert_eq!(header.rebuild, Rebuild::GoGzip { level });
            assert_eq!(header.corrections_size, 0);
        }
    }

    /// A stream with Go's default header that no Go level wrote (GNU gzip's
    /// deflate under a rewritten header) is rebuilt through preflate.
    #[test]
    fn a_go_header_on_another_encoder_falls_through_to_preflate() {
        let disguise = |tar: &[u8]| {
            let mut gz = compress(tar, Compression::Gzip);
            gz[..10].copy_from_slice(&go_flate::header(6));
            gz
        };
        let header = patch_and_rebuild(disguise(&layer_tar(1)), disguise(&layer_tar(2)))
            .0
            .header;
        assert!(
            matches!(header.rebuild, Rebuild::Gzip(_)),
            "{:?}",
            header.rebuild
        );
    }

    /// A zstd:chunked-shaped blob: one frame per file, the table of
    /// contents and a footer in skippable frames.
    fn chunked(files: &[&[u8]]) -> Vec<u8> {
        let mut blob = Vec::new();
        for file in files {
            blob.extend(zstd::encode_all(*file, 3).unwrap());
        }
        for payload in [&b"{\"version\":1,\"entries\":[]}"[..], &[0u8; 40][..]] {
            blob.extend(0x184D_2A5Eu32.to_le_bytes());
            blob.extend((payload.len() as u32).to_le_bytes());
            blob.extend(payload);
        }
        blob
    }

    #[test]
    fn zstd_chunked_layers_are_patched_at_the_compressed_level() {
        let unchanged: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i.wrapping_mul(2_246_822_519) >> 7).to_le_bytes())
            .collect();
        let (p, blob) = patch_both(layer_tar, |tar| chunked(&[&unchanged, tar]));
        // The unchanged file's frame is not shipped again.
        assert!(
            p.size * 2 < blob.len() as u64,
            "{} of {}",
            p.size,
            blob.len()
        );
        assert_eq!(p.header.source_compression, Compression::None);
        assert_eq!(p.header.rebuild, Rebuild::Identity);
    }

    #[test]
    fn a_zstd_frame_no_libzstd_level_makes_travels_whole_saying_so() {
        // Another encoder's frame (here libzstd with a 1 KiB window, which
        // no plain level uses) of data that changes throughout.
        let dir = tempfile::tempdir().unwrap();
        let foreign = |seed: u32| {
            // Random words: the frame holds compressed blocks that share
            // nothing across versions.
            let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let data: Vec<u8> = (0..60_000)
                .flat_map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    format!("{} ", x % 65_521).into_bytes()
                })
                .collect();
            let mut encoder = Encoder::new(3).unwrap();
            encoder.set_parameter(CParameter::WindowLog(10)).unwrap();
            let mut out = zio::Writer::new(Vec::new(), encoder);
            out.write_all(&data).unwrap();
            out.finish().unwrap();
            out.into_inner().0
        };
        let source = put_blob(dir.path(), "v1", foreign(1));
        let target = put_blob(dir.path(), "v2", foreign(2));
        let outcome = make_patch(
            (&source.0, source.1),
            (&target.0, target.1),
            dir.path(),
            &PatchOptions {
                level: 3,
                ..PatchOptions::default()
            },
        )
        .unwrap();
        let PatchOutcome::Whole(reason) = outcome else {
            panic!("{outcome:?}")
        };
        assert!(
            reason.starts_with("encoder not modelled: one zstd frame; klauspost/compress: "),
            "{reason}"
        );
        assert!(reason.contains("no level reproduces it"), "{reason}");
        assert!(
            reason.contains("a patch of the compressed bytes"),
            "{reason}"
        );
    }

    /// A layer of real binaries (this machine's /usr/bin, about 1.5 MB):
    /// compressible enough that encoders' choices show. `version` changes
    /// a slice of one file.
    fn binaries_tar(version: u32) -> Vec<u8> {
        crate::test_inputs::binaries_tar(1_500_000, 400_000, |data| {
            if data.len() > 5_000 {
                for b in &mut data[1_000..1_000 + 500 * version as usize] {
                    *b ^= 0x5a;
                }
            }
        })
    }

    /// [`patch_and_rebuild`] of versions 1 and 2 of `layer`, each
    /// compressed by `compress`.
    fn patch_both(
        layer: fn(u32) -> Vec<u8>,
        compress: impl Fn(&[u8]) -> Vec<u8>,
    ) -> (Patch, Vec<u8>) {
        patch_and_rebuild(compress(&layer(1)), compress(&layer(2)))
    }

    fn pgzip_recipe_of(p: &Patch) -> &pgzip_recipe::PgzipRecipe {
        match &p.header.rebuild {
            Rebuild::Pgzip(recipe) => recipe,
            other => panic!("rebuilt as {other:?}"),
        }
    }

    #[test]
    fn pgzip_layers_rebuild_with_no_corrections() {
        use crate::klauspost::FlateVersion;
        use tender_test_support::Compressor;
        // containers/image's default: 1 MiB blocks (this layer has two).
        let (p, blob) = patch_both(layer_tar, |tar| Compressor::Pgzip.compress(tar));
        assert!(layer_tar(2).len() > 1 << 20);
        let recipe = pgzip_recipe_of(&p);
        assert_eq!(p.header.corrections_size, 0);
        assert_eq!(
            (recipe.level, recipe.block_size, recipe.compress),
            (5, 1 << 20, FlateVersion::V1_15_12)
        );
        assert_eq!(recipe.header, hex::encode(&blob[..10]));
        assert_eq!(recipe.tail, hex::encode(&blob[blob.len() - 8..]));
        assert!(p.size * 10 < blob.len() as u64, "patch {} bytes", p.size);
    }

    #[test]
    fn pgzip_block_size_header_and_version_are_found() {
        use crate::klauspost::FlateVersion;
        use tender_test_support::{pgzip_1_18_2_with, pgzip_with};
        // 256 KiB blocks (a SetConcurrency caller) and a named header.
        let (p, _) = patch_both(binaries_tar, |tar| {
            pgzip_with(&["-1", "262144", "layer.tar"], tar)
        });
        let recipe = pgzip_recipe_of(&p);
        assert_eq!(recipe.block_size, 262_144);
        assert!(recipe.header.ends_with(&hex::encode(b"layer.tar\0")));
        // klauspost/compress 1.18.2 (current podman and skopeo releases).
        let (p, _) = patch_both(binaries_tar, |tar| pgzip_1_18_2_with(&[], tar));
        assert_eq!(pgzip_recipe_of(&p).compress, FlateVersion::V1_18_2);
    }

    #[test]
    fn a_pgzip_blob_no_modelled_encoder_writes_falls_through_with_its_reason() {
        use tender_test_support::pgzip_with;
        // pgzip's shape, but level 1 made it; XFL says 0 as level 5's would.
        let dir = tempfile::tempdir().unwrap();
        let mut blob = pgzip_with(&["1"], &binaries_tar(2));
        blob[8] = 0;
        let (path, _) = put_blob(dir.path(), "v2", blob);
        let plain = binaries_tar(2).len() as u64;
        match pgzip_recipe::find(&path, plain).unwrap() {
            Found::Unmodelled(why) => assert!(
                why.contains("klauspost pgzip") && why.contains("1.15.12"),
                "{why}"
            ),
            other => panic!("{other:?}"),
        }
        // As export sees it: never a pgzip rebuild; whole with the reason
        // unless preflate models it.
        let source = put_blob(dir.path(), "v1", pgzip_with(&["1"], &binaries_tar(1)));
        let target = put_blob(dir.path(), "v2b", std::fs::read(&path).unwrap());
        let options = PatchOptions {
            level: 3,
            ..PatchOptions::default()
        };
        match make_patch(
            (&source.0, source.1),
            (&target.0, target.1),
            dir.path(),
            &options,
        )
        .unwrap()
        {
            PatchOutcome::Whole(reason) => {
                assert!(reason.contains("klauspost pgzip"), "{reason}")
            }
            // preflate's corrections, or a patch of the compressed bytes.
            PatchOutcome::Patched(p) => {
                assert!(
                    matches!(p.header.rebuild, Rebuild::Gzip(_))
                        || (p.header.rebuild == Rebuild::Identity
                            && p.header.source_compression == Compression::None),
                    "{:?}",
                    p.header
                )
            }
        }
        // Another encoder's gzip is not pgzip's shape at all.
        let (gnu, _) = put_blob(
            dir.path(),
            "gnu",
            compress(&binaries_tar(2), Compression::Gzip),
        );
        assert!(matches!(
            pgzip_recipe::find(&gnu, plain).unwrap(),
            Found::NotPgzip
        ));
    }

    #[test]
    fn a_damaged_source_or_patch_is_refused() {
        let f = fixture(Compression::Gzip);
        let p = patch(&f);
        // The site's copy of the source is damaged.
        let mut source = std::fs::read(&f.source.0).unwrap();
        let last = source.len() - 1;
        source[last] ^= 1;
        let damaged = f.dir.path().join("damaged");
        std::fs::write(&damaged, &source).unwrap();
        let err = apply(
            &p.file,
            f.target.1.digest,
            &damaged,
            &mut Vec::new(),
            ApplyLimits::default(),
        )
        .unwrap_err();
        assert!(matches!(err, DeltaError::Source { .. }), "{err}");
        // A bit flipped in the diff (the last byte of the patch).
        let mut bytes = std::fs::read(&p.file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        let flipped = f.dir.path().join("flipped");
        std::fs::write(&flipped, &bytes).unwrap();
        let err = apply(
            &flipped,
            f.target.1.digest,
            &f.source.0,
            &mut Vec::new(),
            ApplyLimits::default(),
        )
        .unwrap_err();
        assert!(err.is_rejection(), "{err}");
        // Listed for another blob.
        let err = apply(
            &p.file,
            Digest::of(b"other"),
            &f.source.0,
            &mut Vec::new(),
            ApplyLimits::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("not the blob it is listed for"),
            "{err}"
        );
    }

    #[test]
    fn a_patch_whose_output_is_another_blob_is_a_mismatch() {
        // A well-formed patch whose header claims another target: the diff
        // rebuilds the real one, and the digest check refuses it.
        let f = fixture(Compression::Gzip);
        let p = patch(&f);
        let bytes = std::fs::read(&p.file).unwrap();
        let (mut header, len) = PatchHeader::read(&mut &bytes[..]).unwrap();
        let claimed = Digest::of(b"the blob the manifest lists");
        header.target.digest = claimed;
        let forged = [&header.encode()[..], &bytes[len..]].concat();
        let path = f.dir.path().join("forged");
        std::fs::write(&path, forged).unwrap();
        let err = apply(
            &path,
            claimed,
            &f.source.0,
            &mut Vec::new(),
            ApplyLimits::default(),
        )
        .unwrap_err();
        assert!(
            matches!(err, DeltaError::Mismatch { got, .. } if got == f.target.1.digest),
            "{err}"
        );
        assert!(err.is_rejection());
    }

    /// A layer of this machine's binaries with a file inserted before
    /// them in version 2, patched in frames of 64 KiB (and rebuilt byte for
    /// byte): the source blob and the patch.
    fn framed_patch() -> (Vec<u8>, Patch) {
        let v1 = binaries_tar(1);
        let mut builder = tar::Builder::new(Vec::new());
        let inserted = crate::test_inputs::mixed(150_000, 9);
        let mut header = tar::Header::new_ustar();
        header.set_size(inserted.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, "aaa-new-file", &inserted[..])
            .unwrap();
        let v2_files = binaries_tar(2);
        let mut archive = tar::Archive::new(&v2_files[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut header = entry.header().clone();
            let path = entry.path().unwrap().into_owned();
            builder.append_data(&mut header, path, &mut entry).unwrap();
        }
        let v2 = builder.into_inner().unwrap();
        let source = compress(&v1, Compression::Gzip);
        let options = PatchOptions {
            level: 3,
            frames: Some(FrameShape {
                target: 64 << 10,
                slack: 32 << 10,
            }),
            ..PatchOptions::default()
        };
        let (p, _) =
            patch_and_rebuild_with(source.clone(), compress(&v2, Compression::Gzip), &options);
        (source, p)
    }

    #[test]
    fn large_layers_are_patched_in_frames_that_rebuild_byte_exact() {
        let (_, p) = framed_patch();
        let frames = p.header.frames.as_ref().expect("cut into frames");
        assert!(frames.len() > 10, "{} frames", frames.len());
        assert_eq!(
            frames.iter().map(|f| f.plain).sum::<u64>(),
            p.header.target_plain_size
        );
    }

    #[test]
    fn patch_frames_pointing_at_another_part_of_the_source_are_refused() {
        // A header whose frames name other source bytes than the diff was
        // made against: each frame decodes against the wrong reference,
        // and the site refuses the blob rather than write it.
        let (source, p) = framed_patch();
        let dir = tempfile::tempdir().unwrap();
        let (source, _) = put_blob(dir.path(), "v1", source);
        let bytes = std::fs::read(&p.file).unwrap();
        let (mut header, len) = PatchHeader::read(&mut &bytes[..]).unwrap();
        for frame in header.frames.as_mut().unwrap() {
            frame.source_offset = 0;
        }
        let forged = [&header.encode()[..], &bytes[len..]].concat();
        let path = dir.path().join("forged");
        std::fs::write(&path, forged).unwrap();
        let err = apply(
            &path,
            header.target.digest,
            &source,
            &mut Vec::new(),
            ApplyLimits::default(),
        )
        .unwrap_err();
        assert!(err.is_rejection(), "{err}");
    }

    #[test]
    fn window_limits_are_kept_on_both_sides() {
        let f = fixture(Compression::Gzip);
        let p = patch(&f);
        let err = apply(
            &p.file,
            f.target.1.digest,
            &f.source.0,
            &mut Vec::new(),
            ApplyLimits { window: 1000 },
        )
        .unwrap_err();
        assert!(matches!(err, DeltaError::WindowTooLarge { .. }), "{err}");
        let options = PatchOptions {
            level: 3,
            window_limit: 1000,
            ..PatchOptions::default()
        };
        let outcome = make_patch(
            (&f.source.0, f.source.1),
            (&f.target.0, f.target.1),
            f.dir.path(),
            &options,
        )
        .unwrap();
        assert!(
            matches!(outcome, PatchOutcome::Whole(ref r) if r.contains("window limit")),
            "{outcome:?}"
        );
    }

    #[test]
    fn window_covers_the_span() {
        assert_eq!(window_log(0), 20);
        assert_eq!(window_log(1 << 20), 20);
        assert_eq!(window_log((1 << 20) + 1), 21);
        assert_eq!(window_log(u64::MAX), 31);
    }
}
