//! Filling a buffer from a reader that may return short reads: the block
//! readers of the encoder ports and the blob sniffers share it, below
//! every other module.

use std::io::{self, Read};

/// Reads until `buf` is full or the input ends; returns the count.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
