//! Exact rebuild of a zstd blob by replaying the compressor settings that
//! made it.
//!
//! Unlike DEFLATE there is no practical way to record a zstd encoder's
//! decisions; but most zstd layers come from libzstd at a plain level, so
//! export tries the levels (most likely first) and keeps the one that gives
//! the same bytes. A candidate is dropped at its first differing byte, so a
//! wrong guess costs about one block of work. The output of libzstd can
//! change between versions, so the recipe names the version it was proven
//! with and a site with another version refuses the patch rather than
//! guessing.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};
use zstd::stream::raw::{CParameter, Encoder};
use zstd::stream::zio;

use crate::compression::{Compression, decoder};

/// What rebuilds a zstd blob from its plain text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZstdRecipe {
    pub level: i32,
    pub checksum: bool,
    /// Whether the frame header states the content size.
    pub content_size: bool,
    /// The libzstd version this recipe was proven with (`1.5.7`).
    pub libzstd: String,
}

/// This build's libzstd version, as recipes record it.
pub fn libzstd_version() -> String {
    let v = zstd::zstd_safe::version_number();
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// Levels in the order export tries them: the library and CLI default
/// first, then what people pick.
const LEVELS: [i32; 22] = [
    3, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
];

/// Finds the settings that reproduce `blob` (a single zstd frame) from its
/// plain text. `open` gives a fresh reader of the blob each time.
pub fn find(
    open: &mut dyn FnMut() -> io::Result<Box<dyn Read>>,
    plain_size: u64,
) -> io::Result<Option<ZstdRecipe>> {
    let mut head = [0u8; 6];
    open()?.read_exact(&mut head)?;
    // Frame header descriptor (RFC 8878 §3.1.1.1.1).
    let descriptor = head[4];
    let checksum = descriptor & 0x04 != 0;
    let single_segment = descriptor & 0x20 != 0;
    let content_size = descriptor & 0xc0 != 0 || single_segment;
    // The window descriptor's exponent (§3.1.1.1.2). Levels 1-19 never use
    // more than 8 MiB; trying the ultra levels on a frame with such a
    // window would only cost their huge tables (hundreds of MiB each).
    let window_log = (!single_segment).then_some(10 + u32::from(head[5] >> 3));
    let ultra_possible = window_log.is_none_or(|log| log > 23);
    for level in LEVELS.into_iter().filter(|&l| l <= 19 || ultra_possible) {
        let recipe = ZstdRecipe {
            level,
            checksum,
            content_size,
            libzstd: libzstd_version(),
        };
        let mut compare = Compare::new(open()?);
        let mut plain = decoder(open()?, Compression::Zstd)?;
        match rebuild(&recipe, plain_size, &mut plain, &mut compare) {
            Ok(()) => {
                if compare.matched_to_end()? {
                    return Ok(Some(recipe));
                }
            }
            Err(_) if compare.differs => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Compresses `plain` (exactly `plain_size` bytes) with the recipe.
pub fn rebuild(
    recipe: &ZstdRecipe,
    plain_size: u64,
    plain: &mut dyn Read,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut encoder = Encoder::new(recipe.level)?;
    encoder.set_parameter(CParameter::ChecksumFlag(recipe.checksum))?;
    encoder.set_parameter(CParameter::ContentSizeFlag(recipe.content_size))?;
    encoder.set_pledged_src_size(Some(plain_size))?;
    let mut writer = zio::Writer::new(out, encoder);
    io::copy(plain, &mut writer)?;
    writer.finish()?;
    Ok(())
}

/// A writer that checks what is written against an expected stream and
/// fails at the first difference.
pub(crate) struct Compare {
    expected: Box<dyn Read>,
    scratch: Vec<u8>,
    differs: bool,
}

impl Compare {
    pub(crate) fn new(expected: Box<dyn Read>) -> Self {
        Compare {
            expected,
            scratch: Vec::new(),
            differs: false,
        }
    }

    /// Whether a write found a difference.
    pub(crate) fn differs(&self) -> bool {
        self.differs
    }

    /// Whether everything written matched and the expected stream has
    /// nothing more.
    pub(crate) fn matched_to_end(&mut self) -> io::Result<bool> {
        Ok(!self.differs && self.expected.read(&mut [0u8; 1])? == 0)
    }
}

impl Write for Compare {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        let got = self.expected.read(&mut self.scratch)?;
        if got == 0 || self.scratch[..got] != buf[..got] {
            self.differs = true;
            return Err(io::Error::other("output differs"));
        }
        Ok(got)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_level_that_made_a_blob() {
        let text: Vec<u8> = (0..200_000u32)
            .flat_map(|i| format!("{} ", i % 1013).into_bytes())
            .collect();
        for level in [3, 7] {
            let mut blob = Vec::new();
            let recipe = ZstdRecipe {
                level,
                checksum: true,
                content_size: true,
                libzstd: libzstd_version(),
            };
            rebuild(&recipe, text.len() as u64, &mut &text[..], &mut blob).unwrap();
            let shared = blob.clone();
            let found = find(
                &mut || Ok(Box::new(io::Cursor::new(shared.clone())) as Box<dyn Read>),
                text.len() as u64,
            )
            .unwrap()
            .expect("a level reproduces");
            // Several levels can make the same bytes; the one found must.
            assert!(found.level <= level, "{found:?}");
            let mut again = Vec::new();
            rebuild(&found, text.len() as u64, &mut &text[..], &mut again).unwrap();
            assert!(again == blob);
        }
    }

    #[test]
    fn foreign_frames_have_no_recipe() {
        // Two frames: no single-frame recipe reproduces them.
        let mut blob = zstd::encode_all(&b"first frame"[..], 3).unwrap();
        blob.extend(zstd::encode_all(&b"second frame"[..], 3).unwrap());
        let shared = blob.clone();
        let found = find(
            &mut || Ok(Box::new(io::Cursor::new(shared.clone())) as Box<dyn Read>),
            23,
        )
        .unwrap();
        assert!(found.is_none());
    }
}
