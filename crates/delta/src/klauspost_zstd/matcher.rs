//! The matcher of an encoder level (Go's `encoder` interface and
//! `encoderOptions.encoder`): the ported levels' matchers behind one type,
//! so the frame and block logic in `encoder` is shared by all levels.
//!
//! Port of github.com/klauspost/compress (BSD-3-Clause, Klaus Post).

use super::best::BestFastEncoder;
use super::block::BlockEnc;
use super::dfast::DoubleFastEncoder;
use super::enc_base::FastBase;
use super::encoder::Level;

pub(super) enum LevelEncoder {
    /// `SpeedDefault`.
    Default(DoubleFastEncoder),
    /// `SpeedBestCompression`.
    Best(BestFastEncoder),
}

impl LevelEncoder {
    /// `encoderOptions.encoder`: the level's matcher for `window_size`.
    pub(super) fn new(level: Level, window_size: i32, low_mem: bool) -> Self {
        match level {
            Level::Default => LevelEncoder::Default(DoubleFastEncoder::new(window_size, low_mem)),
            Level::Best => LevelEncoder::Best(BestFastEncoder::new(window_size, low_mem)),
        }
    }

    /// The history, window and checksum (`fastBase`).
    pub(super) fn base(&self) -> &FastBase {
        match self {
            LevelEncoder::Default(e) => &e.base,
            LevelEncoder::Best(e) => &e.base,
        }
    }

    pub(super) fn base_mut(&mut self) -> &mut FastBase {
        match self {
            LevelEncoder::Default(e) => &mut e.base,
            LevelEncoder::Best(e) => &mut e.base,
        }
    }

    /// `Encode`: one block of a stream.
    pub(super) fn encode(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            LevelEncoder::Default(e) => e.encode(blk, src),
            LevelEncoder::Best(e) => e.encode(blk, src),
        }
    }

    /// `EncodeNoHist`: a frame of one block.
    pub(super) fn encode_no_hist(&mut self, blk: &mut BlockEnc, src: &[u8]) {
        match self {
            LevelEncoder::Default(e) => e.encode_no_hist(blk, src),
            LevelEncoder::Best(e) => e.encode_no_hist(blk, src),
        }
    }

    /// `Reset(nil, _)`.
    pub(super) fn reset(&mut self) {
        match self {
            LevelEncoder::Default(e) => e.reset(),
            LevelEncoder::Best(e) => e.reset(),
        }
    }
}
