//! zstd layers written by klauspost/compress's Go encoder (containers/image:
//! podman, buildah, skopeo `--dest-compress-format zstd` and `zstd:chunked`),
//! rebuilt exactly by the `klauspost_zstd` port.
//!
//! The encoder level shows in the window of streamed frames: 4 MiB for
//! `SpeedFastest` (zstd levels 1-2), 8 MiB for `SpeedDefault` (3-5,
//! containers/image's default), 32 MiB for `SpeedBestCompression` (10 and
//! up: containers/storage 1.43 wrote zstd:chunked at 10). A frame of one
//! block states its size instead, so for a blob of only such frames each
//! modelled level is tried. The blob's frame layout (`zstd_layout`: frame
//! sizes, flushes, skippable frames) travels in the patch's corrections.
//! Each modelled klauspost/compress release is tried in turn, re-encoding
//! the frames from their plain text and comparing with the blob, stopping
//! at the first differing byte.

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::compression::{Compression, decoder};
use crate::klauspost_zstd::encoder::{EncoderOptions, Level, ZstdEncoder, ZstdVersion};
use crate::zstd_frames::{self, Span, SpanKind};
use crate::zstd_layout::{self, FrameWriter, Part};
use crate::zstd_recipe::Compare;

/// Plain bytes re-encoded to tell whether a blob is klauspost's, before
/// the proof re-encodes all of it.
const PROBE: u64 = 1 << 20;

/// The window `WithEncoderLevel` gives a level, as its streamed frames'
/// headers show it.
fn window_of(level: Level) -> u64 {
    match level {
        Level::Fastest => 4 << 20,
        Level::Default => 8 << 20,
        Level::Best => 32 << 20,
    }
}

const LEVELS: [Level; 3] = [Level::Default, Level::Best, Level::Fastest];

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Fastest => "SpeedFastest",
        Level::Default => "SpeedDefault",
        Level::Best => "SpeedBestCompression",
    }
}

/// What rebuilds a zstd blob written by klauspost/compress; its frame
/// layout is the patch's corrections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KzstdRecipe {
    /// The encoder level (`WithEncoderLevel`).
    pub level: Level,
    /// Whether frames end with a content checksum (`WithEncoderCRC`).
    pub checksum: bool,
    /// The klauspost/compress behaviour that wrote it.
    pub compress: ZstdVersion,
}

impl KzstdRecipe {
    /// Checks what a patch header may claim, before anything is rebuilt.
    pub fn check(&self) -> Result<(), String> {
        if !self.level.modelled_in(self.compress) {
            return Err(format!(
                "klauspost zstd {} is reproduced as klauspost/compress 1.15.12 writes it only",
                level_name(self.level)
            ));
        }
        Ok(())
    }

    /// Memory the encoder holds: its history (twice the window at most),
    /// the match tables of its two matchers (streamed frames and one-block
    /// frames) and its blocks.
    pub fn memory(&self) -> u64 {
        let tables: u64 = match self.level {
            Level::Fastest => 1 << 20,
            Level::Default => 5 << 19,
            Level::Best => 34 << 20,
        };
        2 * window_of(self.level) + 2 * tables + (2 << 20)
    }

    fn options(&self) -> EncoderOptions {
        let mut options = EncoderOptions::new(self.compress, self.level);
        options.crc = self.checksum;
        options
    }
}

/// The memory the encoder of a zstd blob's recipe would hold, from the
/// window of its streamed frames (SpeedDefault's when none tells).
pub fn memory_hint(path: &Path) -> u64 {
    let level = File::open(path)
        .and_then(zstd_frames::spans)
        .ok()
        .and_then(|spans| {
            spans.iter().find_map(|s| match s.kind {
                SpanKind::Frame(h) if h.window_descriptor.is_some() => {
                    let window = h.window_size()?;
                    LEVELS.into_iter().find(|&l| window_of(l) == window)
                }
                _ => None,
            })
        })
        .unwrap_or(Level::Default);
    KzstdRecipe {
        level,
        checksum: true,
        compress: ZstdVersion::V1_15_12,
    }
    .memory()
}

/// What `find` learnt of a zstd blob.
pub enum Found {
    /// The recipe and the layout (the patch's corrections).
    Exact(KzstdRecipe, Vec<u8>),
    /// Why the modelled klauspost encoders do not reproduce it.
    Unmodelled(String),
}

/// Finds whether klauspost/compress at a modelled level wrote the zstd
/// blob at `path` (`plain_size` bytes of plain text), and its layout.
pub fn find(path: &Path, plain_size: u64) -> io::Result<Found> {
    let open = || File::open(path);
    let spans = match zstd_frames::spans(open()?) {
        Ok(spans) => spans,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Ok(Found::Unmodelled(e.to_string()));
        }
        Err(e) => return Err(e),
    };
    let headers: Vec<_> = spans
        .iter()
        .filter_map(|s| match s.kind {
            SpanKind::Frame(header) => Some(header),
            SpanKind::Skippable { .. } => None,
        })
        .collect();
    let Some(first) = headers.first() else {
        return Ok(Found::Unmodelled("it holds no zstd frame".into()));
    };
    if headers.iter().any(|h| h.dictionary) {
        return Ok(Found::Unmodelled("its frames name a dictionary".into()));
    }
    // Streamed frames carry the level's window; frames of one block carry
    // their own size's (down to 1 KiB), which tells nothing.
    let mut windows: Vec<u64> = headers
        .iter()
        .filter(|h| h.window_descriptor.is_some())
        .filter_map(|h| h.window_size())
        .filter(|&w| LEVELS.iter().any(|&l| window_of(l) == w))
        .collect();
    windows.sort_unstable();
    windows.dedup();
    let levels: Vec<Level> = match windows[..] {
        [] => LEVELS.to_vec(),
        [w] => LEVELS.into_iter().filter(|&l| window_of(l) == w).collect(),
        _ => {
            return Ok(Found::Unmodelled(
                "its frames have the windows of different levels".into(),
            ));
        }
    };
    let parts = match zstd_layout::read(BufReader::new(open()?), &spans) {
        Ok(parts) => parts,
        // The frames do not decode (libzstd's errors are `Other`).
        Err(e) if matches!(e.kind(), io::ErrorKind::InvalidData | io::ErrorKind::Other) => {
            return Ok(Found::Unmodelled(format!("its frames do not decode: {e}")));
        }
        Err(e) => return Err(e),
    };
    let plain: u64 = parts
        .iter()
        .map(|p| match p {
            Part::Frame { plain, .. } => *plain,
            Part::Skippable { .. } => 0,
        })
        .sum();
    if plain != plain_size {
        return Ok(Found::Unmodelled(format!(
            "its frames hold {plain} plain bytes, not {plain_size}"
        )));
    }
    // Releases oldest first (1.15.12 is the one checked against Debian's
    // Go sources); releases often write the same bytes, and any that does
    // is a right recipe. A probe of the first frames rules most out. When
    // several pass it, they are compared whole, so that one whose bytes
    // part later is not chosen; one alone is left to the proof.
    let mut passed = Vec::new();
    for level in levels.iter().copied() {
        for compress in ZstdVersion::ALL {
            let recipe = KzstdRecipe {
                level,
                checksum: first.checksum,
                compress,
            };
            if level.modelled_in(compress) && compare(&recipe, &parts, &spans, path, Some(PROBE))? {
                passed.push(recipe);
            }
        }
    }
    if let [recipe] = &passed[..] {
        return Ok(Found::Exact(recipe.clone(), zstd_layout::encode(&parts)));
    }
    for recipe in passed {
        if compare(&recipe, &parts, &spans, path, None)? {
            return Ok(Found::Exact(recipe, zstd_layout::encode(&parts)));
        }
    }
    let tried: Vec<&str> = levels.iter().map(|&l| level_name(l)).collect();
    Ok(Found::Unmodelled(format!(
        "klauspost/compress ({} as written by releases 1.15.12 to 1.19.1) does not write its first frames",
        tried.join(" or ")
    )))
}

/// Whether the recipe writes the blob's frames exactly: the first ones,
/// up to about `limit` plain bytes, or all of them.
fn compare(
    recipe: &KzstdRecipe,
    parts: &[Part],
    spans: &[Span],
    path: &Path,
    limit: Option<u64>,
) -> io::Result<bool> {
    let mut plain_bytes = 0u64;
    let count = parts
        .iter()
        .take_while(|p| {
            let before = plain_bytes;
            if let Part::Frame { plain, .. } = p {
                plain_bytes += plain;
            }
            limit.is_none_or(|limit| before < limit)
        })
        .count();
    let blob_bytes: u64 = spans[..count].iter().map(|s| s.len).sum();
    let expected: Box<dyn Read> = Box::new(BufReader::new(File::open(path)?).take(blob_bytes));
    let mut compare = Compare::new(expected);
    let mut plain = decoder(File::open(path)?, Compression::Zstd)?;
    let mut frames = KlauspostFrames::new(recipe, &mut compare);
    match zstd_layout::write(&parts[..count], &mut plain, &mut frames) {
        Ok(()) => {}
        Err(_) if compare.differs() => return Ok(false),
        Err(e) => return Err(e),
    }
    compare.matched_to_end()
}

/// Rebuilds the blob from its plain text (`plain_size` bytes) and layout.
pub fn rebuild(
    recipe: &KzstdRecipe,
    layout: &[u8],
    plain_size: u64,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    let parts = zstd_layout::decode(layout, plain_size)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut frames = KlauspostFrames::new(recipe, out);
    zstd_layout::write(&parts, plain, &mut frames)
}

/// klauspost's encoder as a frame writer: reset before each frame, closed
/// after it, as containers/storage does per file.
struct KlauspostFrames<'a> {
    encoder: ZstdEncoder<&'a mut dyn Write>,
}

impl<'a> KlauspostFrames<'a> {
    fn new(recipe: &KzstdRecipe, out: &'a mut dyn Write) -> Self {
        KlauspostFrames {
            encoder: ZstdEncoder::new(out, &recipe.options()),
        }
    }
}

impl KlauspostFrames<'_> {
    /// Gives the encoder the next `n` bytes of `plain`.
    fn copy(&mut self, plain: &mut dyn Read, n: u64) -> io::Result<()> {
        let read = self.encoder.read_from(&mut plain.take(n))?;
        if read != n {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("a frame's plain text ended {} bytes early", n - read),
            ));
        }
        Ok(())
    }
}

impl FrameWriter for KlauspostFrames<'_> {
    fn frame(&mut self, plain: &mut dyn Read, len: u64, flushes: &[u64]) -> io::Result<()> {
        self.encoder.reset();
        let mut at = 0;
        for &flush in flushes {
            self.copy(plain, flush - at)?;
            self.encoder.flush()?;
            at = flush;
        }
        self.copy(plain, len - at)?;
        self.encoder.close()
    }

    fn raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.encoder.out_mut().write_all(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_inputs::mixed;
    use crate::zstd_frames::SKIPPABLE_MAGIC;
    use tender_test_support::{kzstd_as, kzstd_with};

    /// Finds the recipe of `blob` and rebuilds it from its plain text.
    fn find_and_rebuild(blob: &[u8]) -> (Found, Option<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, blob).unwrap();
        let plain = zstd::decode_all(blob).unwrap();
        let found = find(&path, plain.len() as u64).unwrap();
        let rebuilt = match &found {
            Found::Exact(recipe, layout) => {
                let mut out = Vec::new();
                rebuild(
                    recipe,
                    layout,
                    plain.len() as u64,
                    &mut &plain[..],
                    &mut out,
                )
                .unwrap();
                Some(out)
            }
            Found::Unmodelled(_) => None,
        };
        (found, rebuilt)
    }

    #[test]
    fn each_modelled_level_and_release_is_found_and_rebuilt_exactly() {
        let data = mixed(700_000, 7);
        let cases = [
            (
                kzstd_with(&["-level", "3"], &data),
                Level::Default,
                ZstdVersion::V1_15_12,
            ),
            (
                kzstd_with(&["-level", "10"], &data),
                Level::Best,
                ZstdVersion::V1_15_12,
            ),
            (
                kzstd_with(&["-level", "1"], &data),
                Level::Fastest,
                ZstdVersion::V1_15_12,
            ),
        ];
        for (blob, level, version) in cases {
            let (found, rebuilt) = find_and_rebuild(&blob);
            let Found::Exact(recipe, _) = &found else {
                panic!("{level:?} {version:?}: not found")
            };
            assert_eq!((recipe.level, recipe.compress), (level, version));
            assert!(recipe.checksum);
            assert!(rebuilt.unwrap() == blob, "{level:?} {version:?}");
        }
    }

    #[test]
    fn a_later_release_is_told_from_the_first() {
        // Runs of one byte over whole blocks: 1.17.8 and later write RLE
        // blocks for them.
        let mut data = vec![0u8; (128 << 10) + 3];
        data.extend(mixed(50_000, 31));
        data.extend(vec![7u8; 256 << 10]);
        let blob = kzstd_as("1.18.5", &["-level", "3"], &data);
        assert!(blob != kzstd_with(&["-level", "3"], &data));
        let (found, rebuilt) = find_and_rebuild(&blob);
        let Found::Exact(recipe, _) = found else {
            panic!("1.18.5's frame not found")
        };
        assert!(recipe.compress >= ZstdVersion::V1_17_8, "{recipe:?}");
        assert!(rebuilt.unwrap() == blob);
    }

    #[test]
    fn flushes_within_a_frame_are_found_and_repeated() {
        // Flushed every 100,000 bytes (two Writes), and once more at the
        // end: short blocks, then an empty last block.
        let data = mixed(500_000, 11);
        let blob = kzstd_with(
            &["-level", "3", "-write", "50000", "-flush", "90000"],
            &data,
        );
        let (found, rebuilt) = find_and_rebuild(&blob);
        let Found::Exact(_, layout) = found else {
            panic!("a flushed frame not found")
        };
        let parts = zstd_layout::decode(&layout, data.len() as u64).unwrap();
        assert_eq!(
            parts,
            vec![Part::Frame {
                plain: 500_000,
                flushes: vec![100_000, 200_000, 300_000, 400_000, 500_000]
            }]
        );
        assert!(rebuilt.unwrap() == blob);
    }

    /// zstd:chunked as containers/storage writes it: a frame per file,
    /// the last flushed before it is closed, then the table of contents
    /// and the footer in skippable frames.
    #[test]
    fn a_chunked_layer_is_rebuilt_frame_by_frame() {
        let files: Vec<Vec<u8>> = [900, 140_000, 5, 300_000, 2_000]
            .iter()
            .enumerate()
            .map(|(i, &n)| mixed(n, i as u32))
            .collect();
        let mut blob = Vec::new();
        for (i, file) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let flush = file.len().to_string();
            let mut args = vec!["-level", "10"];
            if last {
                args.extend(["-flush", &flush]);
            }
            blob.extend(kzstd_with(&args, file));
        }
        for payload in [&b"{\"version\":1,\"entries\":[]}"[..], &[7u8; 40][..]] {
            blob.extend(SKIPPABLE_MAGIC.to_le_bytes());
            blob.extend((payload.len() as u32).to_le_bytes());
            blob.extend(payload);
        }
        let (found, rebuilt) = find_and_rebuild(&blob);
        let recipe_and_layout = match &found {
            Found::Exact(recipe, layout) => (recipe, layout),
            Found::Unmodelled(why) => panic!("not found: {why}"),
        };
        let (recipe, layout) = recipe_and_layout;
        assert_eq!(recipe.level, Level::Best);
        let parts =
            zstd_layout::decode(layout, files.iter().map(|f| f.len() as u64).sum()).unwrap();
        assert_eq!(parts.len(), 7);
        assert_eq!(
            parts[4],
            Part::Frame {
                plain: 2_000,
                flushes: vec![2_000]
            }
        );
        assert!(rebuilt.unwrap() == blob);
    }

    #[test]
    fn libzstd_frames_are_not_klauspost_and_say_so() {
        let data = mixed(300_000, 3);
        let mut encoder = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
        encoder.include_contentsize(false).unwrap();
        io::copy(&mut &data[..], &mut encoder).unwrap();
        let blob = encoder.finish().unwrap();
        let (found, _) = find_and_rebuild(&blob);
        let Found::Unmodelled(why) = found else {
            panic!("libzstd's frame taken for klauspost's")
        };
        assert!(
            why.contains("window") || why.contains("first frames"),
            "{why}"
        );
    }

    #[test]
    fn the_memory_hint_follows_the_level_the_frames_show() {
        let data = mixed(400_000, 5);
        let dir = tempfile::tempdir().unwrap();
        let hint = |level: &str, data: &[u8]| {
            let path = dir.path().join("blob");
            std::fs::write(&path, kzstd_with(&["-level", level], data)).unwrap();
            memory_hint(&path)
        };
        let best = hint("10", &data);
        let default = hint("3", &data);
        assert!(best > 128 << 20, "{best}");
        assert!(default < 32 << 20, "{default}");
        // A frame of one block tells no level: SpeedDefault's is assumed.
        assert_eq!(hint("10", &data[..50_000]), default);
    }

    #[test]
    fn a_recipe_names_its_level_and_release_in_the_patch_header() {
        let recipe = KzstdRecipe {
            level: Level::Best,
            checksum: true,
            compress: ZstdVersion::V1_15_12,
        };
        let json = serde_json::to_value(crate::patch::Rebuild::Kzstd(recipe.clone())).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "kzstd", "level": "best", "checksum": true, "compress": "1.15.12"})
        );
        assert!(recipe.check().is_ok());
        let newer = KzstdRecipe {
            compress: ZstdVersion::V1_17_8,
            ..recipe
        };
        assert!(newer.check().unwrap_err().contains("1.15.12"));
    }
}
