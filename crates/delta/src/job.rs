//! What a patch job is given and what it comes to: the options, the
//! proven patch or the reason a blob travels whole, and the memory a job
//! holds, by which export runs jobs side by side and a job its frames.

use std::path::Path;

use tempfile::TempPath;
use tender_format::Digest;

use crate::apply::DEFAULT_WINDOW_LIMIT;
use crate::compression::{Compression, plain_size_hint};
use crate::diff_frames::{self, FrameShape};
use crate::kzstd_recipe;
use crate::patch::PatchHeader;

/// How patches are made.
#[derive(Debug, Clone, Copy)]
pub struct PatchOptions {
    /// zstd level of the diff (19, as `zstd -19 --patch-from`).
    pub level: i32,
    /// Most memory a site may need to rebuild one blob; a patch that would
    /// need more is not made.
    pub window_limit: u64,
    /// Memory that patch jobs running side by side may hold together (see
    /// [`memory_estimate`]): within it two layers are patched at once,
    /// beyond it one after the other.
    pub parallel_memory: u64,
    /// How a large target is cut into diff frames, each against the part
    /// of the source it came from (`diff_frames`); `None`: one frame
    /// against the whole source, whatever the sizes.
    pub frames: Option<FrameShape>,
}

/// Default [`PatchOptions::parallel_memory`]: keeps an export near 256 MiB.
pub const DEFAULT_PARALLEL_MEMORY: u64 = 224 << 20;

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions {
            level: 19,
            window_limit: DEFAULT_WINDOW_LIMIT,
            parallel_memory: DEFAULT_PARALLEL_MEMORY,
            frames: Some(FrameShape::DEFAULT),
        }
    }
}

/// A proven patch, in a temporary file until the bundle is written.
#[derive(Debug)]
pub struct Patch {
    pub file: TempPath,
    pub size: u64,
    pub digest: Digest,
    pub header: PatchHeader,
}

/// What became of a blob.
#[derive(Debug)]
pub enum PatchOutcome {
    Patched(Box<Patch>),
    /// Ship it whole, for this reason.
    Whole(String),
}

/// What a patch job holds beside the reference and the diff encoders.
const MEMORY_FIXED: u64 = 64 << 20;

/// About how much memory making a patch from `source` to `target` holds
/// at its peak: the source's plain text (the reference), and in one frame
/// the diff encoder's tables, which grow with the reference, and its input
/// window of the target's plain text; cut into frames, each frame
/// encoder's tables and pieces instead; and a fixed part. From the
/// blobs' own size fields, without decompressing; used to keep parallel
/// patch jobs within a memory budget.
pub fn memory_estimate(source: &Path, target: &Path, options: &PatchOptions) -> u64 {
    // At least the blob's own size: a compressed-level patch holds that,
    // and the hint of a many-frame zstd blob covers only its first frame.
    let plain = |path: &Path| {
        let compression = Compression::of_file(path).unwrap_or(Compression::None);
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        plain_size_hint(path, compression).unwrap_or(0).max(size)
    };
    // A zstd target is re-encoded by the klauspost port (up to 134 MiB at
    // SpeedBestCompression).
    let encoder = match Compression::of_file(target) {
        Ok(Compression::Zstd) => kzstd_recipe::memory_hint(target),
        _ => 0,
    };
    let (source, target) = (plain(source), plain(target));
    match options.frames {
        // The reference, and each frame encoder's tables and pieces.
        Some(shape) if shape.cuts(source, target) => {
            source
                + frame_threads(source, options) as u64 * diff_frames::FRAME_ENCODER_MEMORY
                + MEMORY_FIXED
                + encoder
        }
        // The reference, the encoder's tables about as large, the target.
        _ => 2 * source + target + MEMORY_FIXED + encoder,
    }
}

/// How many frames of one patch are encoded at once: as many as there are
/// cores, within the memory budget beside the reference and the fixed part
/// (at least one). The default 224 MiB gives one, which keeps an export
/// near 256 MiB; `--delta-parallel-memory 512MiB` gives two for sources up
/// to 288 MiB of plain text.
pub(crate) fn frame_threads(source_plain: u64, options: &PatchOptions) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fit = options
        .parallel_memory
        .saturating_sub(source_plain.saturating_add(MEMORY_FIXED))
        / diff_frames::FRAME_ENCODER_MEMORY;
    usize::try_from(fit).unwrap_or(usize::MAX).clamp(1, cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_encoded_side_by_side_only_within_the_budget() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // The default keeps one encoder beside a 48 MiB reference.
        assert_eq!(frame_threads(48 << 20, &PatchOptions::default()), 1);
        let roomy = PatchOptions {
            parallel_memory: 512 << 20,
            ..PatchOptions::default()
        };
        // (512 - 48 - 64) / 80 = 5 encoders fit; as many as there are cores.
        assert_eq!(frame_threads(48 << 20, &roomy), cores.min(5));
        // A reference larger than the budget still gets one.
        assert_eq!(frame_threads(1 << 30, &roomy), 1);
    }
}
