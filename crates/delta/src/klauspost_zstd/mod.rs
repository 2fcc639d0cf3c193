//! Byte-exact port of klauspost/compress's zstd encoder (1.15.12): entropy coders (here) and matcher, blocks and frames.

pub(crate) mod bit_writer;
pub(crate) mod fse;
pub(crate) mod fse_encoder;
#[cfg(test)]
mod fse_encoder_tests;
pub(crate) mod fse_predefined;
pub(crate) mod fse_state;
pub(crate) mod fse_table;
pub(crate) mod huff0;
#[cfg(test)]
mod huff0_tests;
#[cfg(test)]
mod reference;
