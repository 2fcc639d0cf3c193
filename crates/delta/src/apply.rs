//! Rebuilding a blob from a patch and the source blob the site holds.
//!
//! One pass, bounded memory: the source's plain text is the only large
//! buffer (the diff's reference), the diff is decoded as a stream, and the
//! rebuilt plain text goes through the recipe chunk by chunk into `out`.
//! The caller hashes `out`; this module also checks the digest itself so
//! that no caller can forget.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;
use tender_format::FromIo;

use tender_format::{Digest, Hasher};

use crate::compression::plain_bytes;
use crate::diff_frames::DiffReader;
use crate::error::DeltaError;
use crate::patch::{PatchFormatError, PatchHeader, Rebuild};
use crate::zstd_recipe;
use crate::{go_flate, gzip, kzstd_recipe, pgzip_recipe};

/// What a site allows a rebuild to hold in memory.
#[derive(Debug, Clone, Copy)]
pub struct ApplyLimits {
    /// Source plain text plus decoder window, in bytes.
    pub window: u64,
}

impl Default for ApplyLimits {
    fn default() -> Self {
        ApplyLimits {
            window: DEFAULT_WINDOW_LIMIT,
        }
    }
}

/// Default memory for one rebuild: 1 GiB (reference plus window).
pub const DEFAULT_WINDOW_LIMIT: u64 = 1 << 30;

/// Reads a patch entry's header (to learn its source before applying).
pub fn read_header(patch: &Path) -> Result<PatchHeader, DeltaError> {
    let mut file = File::open(patch).map_err(DeltaError::io_with("opening patch"))?;
    match PatchHeader::read(&mut file) {
        Ok((header, _)) => Ok(header),
        Err(PatchFormatError::Io(e)) => Err(DeltaError::io("reading patch", e)),
        Err(PatchFormatError::Invalid(reason)) => Err(DeltaError::Corrupt {
            target: Digest::of(b""),
            reason,
        }),
    }
}

/// Rebuilds the patch's target into `out` from `source` (the source blob's
/// file) and returns its digest and size, which are checked against the
/// header: a mismatch is an error, and `out` must then be discarded.
pub fn apply(
    patch: &Path,
    target: Digest,
    source: &Path,
    out: &mut dyn Write,
    limits: ApplyLimits,
) -> Result<(Digest, u64), DeltaError> {
    let corrupt = |reason: String| DeltaError::Corrupt { target, reason };
    let mut file = File::open(patch).map_err(DeltaError::io_with("opening patch"))?;
    let header = read_checked_header(&mut file, target, limits)?;
    let reference = source_plain(&header, target, source)?;

    let mut corrections = vec![0u8; usize::try_from(header.corrections_size).unwrap_or(usize::MAX)];
    file.read_exact(&mut corrections)
        .map_err(|e| corrupt(format!("corrections: {e}")))?;

    let diff = BufReader::with_capacity(1 << 20, (&mut file).take(header.diff_size));
    let mut plain = LengthChecked {
        inner: DiffReader::new(
            &reference,
            header.frames.as_deref(),
            header.window_log,
            header.target_plain_size,
            diff,
        ),
        left: header.target_plain_size,
    };
    let mut hashing = HashingWriter {
        inner: out,
        hasher: Hasher::new(),
        write_error: None,
    };
    if let Err(reason) = rebuild(&header, &corrections, limits, &mut plain, &mut hashing) {
        if let Some(e) = hashing.take_write_error() {
            return Err(DeltaError::io("writing the rebuilt blob", e));
        }
        return Err(corrupt(reason));
    }
    if plain.left != 0 {
        return Err(corrupt(format!(
            "the diff holds {} bytes less plain text than the header says",
            plain.left
        )));
    }
    let (got, size) = hashing.hasher.finish();
    if got != target || size != header.target.size {
        return Err(DeltaError::Mismatch { target, got, size });
    }
    Ok((got, size))
}

/// Reads the patch's header and checks, before any other byte is read,
/// that it rebuilds `target`, accounts for the whole entry, fits the
/// memory limit and names a rebuild this tender can replay.
fn read_checked_header(
    file: &mut File,
    target: Digest,
    limits: ApplyLimits,
) -> Result<PatchHeader, DeltaError> {
    let corrupt = |reason: String| DeltaError::Corrupt { target, reason };
    let entry_size = file
        .metadata()
        .map_err(DeltaError::io_with("reading patch"))?
        .len();
    let (header, header_len) = PatchHeader::read(file).map_err(|e| match e {
        PatchFormatError::Invalid(reason) => corrupt(reason),
        PatchFormatError::Io(e) => DeltaError::io("reading patch", e),
    })?;
    if header.target.digest != target {
        return Err(corrupt(format!(
            "it rebuilds {}, not the blob it is listed for",
            header.target.digest
        )));
    }
    if header.entry_size(header_len) != entry_size {
        return Err(corrupt(format!(
            "header accounts for {} bytes, the entry has {entry_size}",
            header.entry_size(header_len)
        )));
    }
    if header.window_bytes() > limits.window {
        return Err(DeltaError::WindowTooLarge {
            target,
            needed: header.window_bytes(),
            limit: limits.window,
        });
    }
    if let Rebuild::Zstd(recipe) = &header.rebuild
        && recipe.libzstd != zstd_recipe::libzstd_version()
    {
        return Err(corrupt(format!(
            "its zstd recipe was proven with libzstd {}, this tender has {}",
            recipe.libzstd,
            zstd_recipe::libzstd_version()
        )));
    }
    if let Rebuild::Kzstd(recipe) = &header.rebuild {
        recipe.check().map_err(corrupt)?;
    }
    Ok(header)
}

/// Turns the plain text back into the target's exact bytes, as the
/// header's rebuild says.
fn rebuild(
    header: &PatchHeader,
    corrections: &[u8],
    limits: ApplyLimits,
    mut plain: &mut dyn Read,
    mut out: &mut dyn Write,
) -> Result<(), String> {
    let text = |e: &dyn std::fmt::Display| e.to_string();
    match &header.rebuild {
        Rebuild::Identity => io::copy(plain, out).map(|_| ()).map_err(|e| text(&e)),
        Rebuild::Gzip(recipe) => {
            gzip::rebuild(recipe, corrections, limits.window, &mut plain, &mut out)
                .map_err(|e| text(&e))
        }
        Rebuild::GoGzip { level } => go_flate::go_gzip(*level, plain, out).map_err(|e| text(&e)),
        Rebuild::Pgzip(recipe) => pgzip_recipe::rebuild(recipe, plain, out).map_err(|e| text(&e)),
        Rebuild::Zstd(recipe) => {
            zstd_recipe::rebuild(recipe, header.target_plain_size, plain, out).map_err(|e| text(&e))
        }
        Rebuild::Kzstd(recipe) => {
            kzstd_recipe::rebuild(recipe, corrections, header.target_plain_size, plain, out)
                .map_err(|e| text(&e))
        }
    }
}

/// The source blob's plain text, after checking it is the blob the patch
/// was made against.
fn source_plain(
    header: &PatchHeader,
    target: Digest,
    source: &Path,
) -> Result<Vec<u8>, DeltaError> {
    let source_error = |reason: String| DeltaError::Source {
        target,
        source_digest: header.source.digest,
        reason,
    };
    let file = File::open(source)
        .map_err(|e| source_error(format!("cannot open {}: {e}", source.display())))?;
    let mut hashing = HashingReader {
        inner: file,
        hasher: Hasher::new(),
    };
    let plain = plain_bytes(
        &mut hashing,
        header.source_compression,
        header.source_plain_size,
        Some(header.source_plain_size),
    )
    .map_err(|e| source_error(format!("cannot decode it: {e}")))?
    .ok_or_else(|| source_error("it decodes to more bytes than the patch says".into()))?;
    // Hash any bytes the decoder did not need (trailing padding).
    io::copy(&mut hashing, &mut io::sink()).map_err(|e| source_error(e.to_string()))?;
    let (digest, size) = hashing.hasher.finish();
    if digest != header.source.digest || size != header.source.size {
        return Err(source_error(format!(
            "the site's copy is damaged (sha256 {digest}, {size} bytes)"
        )));
    }
    if plain.len() as u64 != header.source_plain_size {
        return Err(source_error(format!(
            "it decodes to {} bytes, the patch says {}",
            plain.len(),
            header.source_plain_size
        )));
    }
    Ok(plain)
}

/// Stops a reader at the plain size the header promised: a diff that
/// decodes to more is corrupt, and must not make us write without end.
struct LengthChecked<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for LengthChecked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            // Anything more is an error, nothing more is the end.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the diff holds more plain text than the header says",
                )),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Hashes what it passes on, and remembers a failure of the inner writer
/// so that a full disk is reported as such, not as a corrupt patch.
struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: Hasher,
    write_error: Option<io::Error>,
}

impl HashingWriter<'_> {
    fn take_write_error(&mut self) -> Option<io::Error> {
        self.write_error.take()
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                self.write_error = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz target's fixed source blob (`fuzz/src/lib.rs`,
    /// `patch_source`), which the committed hostile patches refer to.
    fn fuzz_source() -> Vec<u8> {
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

    /// Applies a committed hostile patch (`testdata/`) to the fuzz
    /// target's source and returns why it was refused as corrupt.
    fn refusal(name: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("source");
        std::fs::write(&source, fuzz_source()).unwrap();
        let patch = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata")
            .join(name);
        let target = read_header(&patch).unwrap().target.digest;
        let limits = ApplyLimits::default();
        match apply(&patch, target, &source, &mut io::sink(), limits) {
            Err(DeltaError::Corrupt { reason, .. }) => reason,
            other => panic!("{name}: {other:?}"),
        }
    }

    /// Found by `scripts/fuzz.sh` (patch_container): a valid gzip patch
    /// with one byte of its preflate corrections changed, so that they
    /// never say "last block". preflate kept every empty block it made,
    /// each with room for the corrections' token count: 2.2 GiB resident
    /// for a 740-byte patch, over any window limit. Now refused as corrupt.
    #[test]
    fn gzip_corrections_never_ending_the_stream() {
        let reason = refusal("gzip-corrections-never-ending-the-stream.patch");
        assert!(
            reason.contains("too many empty blocks in a row"),
            "{reason}"
        );
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections encoding
    /// a difference below zero. preflate's checked subtraction panicked
    /// (debug builds; release wrapped); now the value wraps and the rebuild
    /// is refused as corrupt.
    #[test]
    fn gzip_corrections_with_an_out_of_range_difference() {
        let reason = refusal("gzip-corrections-with-an-out-of-range-difference.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections that
    /// predict a match shorter than deflate's shortest (3). preflate's
    /// assertion panicked in every build: a hostile patch crashed the
    /// import instead of being refused. Now refused as corrupt.
    #[test]
    fn gzip_corrections_with_a_match_shorter_than_three() {
        let reason = refusal("gzip-corrections-with-a-match-shorter-than-three.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections whose
    /// parameters claim a window of more than deflate's 15 bits. The shift
    /// overflowed (a panic with overflow checks); now refused as corrupt.
    #[test]
    fn gzip_corrections_with_a_window_over_15_bits() {
        let reason = refusal("gzip-corrections-with-a-window-over-15-bits.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections rebuilding
    /// a Huffman table whose counts do not fit their bit fields. preflate's
    /// bit writer asserted (debug builds) or wrote a broken stream; now
    /// refused as corrupt.
    #[test]
    fn gzip_corrections_with_a_table_overflowing_its_fields() {
        let reason = refusal("gzip-corrections-with-a-table-overflowing-its-fields.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections whose
    /// exp-coded value claims more than the 32 bits its encoder writes.
    /// The shifts in preflate's reader overflowed (a panic with overflow
    /// checks); now read as 32 bits and refused as corrupt.
    #[test]
    fn gzip_corrections_with_an_exp_value_wider_than_32_bits() {
        let reason = refusal("gzip-corrections-with-an-exp-value-wider-than-32-bits.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections predicting
    /// a code length of 255 where deflate allows 0..=15, which indexed past
    /// the 19 entries of the code-length tree (a panic in every build: a
    /// hostile patch crashed the import). Now refused as corrupt, as is a
    /// repeat count out of its range or past the last symbol.
    #[test]
    fn gzip_corrections_with_a_code_length_past_the_code_tree() {
        let reason = refusal("gzip-corrections-with-a-code-length-past-the-code-tree.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }

    /// Found by `scripts/fuzz.sh` (patch_container, a timeout): corrections
    /// predicting blocks of no tokens while input is left, never the last
    /// one. preflate looped without progress, encoding an empty block each
    /// turn and keeping it. Now refused once 64 blocks in a row consume
    /// nothing, as after the end of the input.
    #[test]
    fn gzip_corrections_with_empty_blocks_before_the_end_of_the_input() {
        let reason =
            refusal("gzip-corrections-with-empty-blocks-before-the-end-of-the-input.patch");
        assert!(
            reason.contains("too many empty blocks in a row"),
            "{reason}"
        );
    }

    /// Found by `scripts/fuzz.sh` (patch_container): corrections whose
    /// parameters give a hash-chain depth of 0. preflate's match search
    /// counted it down below zero (a panic with overflow checks; release
    /// builds wrapped and searched the whole chain). It now wraps in every
    /// build, and the rebuild is refused as corrupt. This input reaches the
    /// search only in a fuzz build: there `bitcode` skips its check for
    /// bytes after the parameters (`cfg(fuzzing)`), which a real build
    /// refuses first ("Expected EOF"); a depth of 0 encoded without
    /// trailing bytes reaches it in every build.
    #[test]
    fn gzip_corrections_with_a_chain_depth_of_zero() {
        let reason = refusal("gzip-corrections-with-a-chain-depth-of-zero.patch");
        assert!(reason.contains("preflate rebuild failed"), "{reason}");
    }
}
