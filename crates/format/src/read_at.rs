//! Positional reads over a bundle's bytes, wherever they live: one file,
//! or volumes read as one logical file (`volumes::VolumeFiles`). The
//! positional reader (`reader::positional`) only needs this, so a bundle
//! file and a volume set are verified and imported by the same code, at
//! the same speed: each hashing thread reads its own entries.

use std::fs::File;
use std::io::{self, Read};
use std::ops::Deref;
use std::os::unix::fs::FileExt;

/// Random access to the bytes of a bundle stream. Shared by the header
/// walker and every hashing thread at once, hence `Sync` and `&self`.
pub trait ReadAt: Send + Sync {
    /// Reads bytes at `offset`, like `pread`: fewer than asked is fine,
    /// `Ok(0)` means the end of the stream.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Fills `buf` from `offset`; running out of bytes is `UnexpectedEof`.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl ReadAt for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }
}

/// A `Read` at a moving offset over a [`ReadAt`] (borrowed or shared), so
/// the sequential header helpers work on positional sources unchanged.
pub struct At<S> {
    source: S,
    /// The offset of the next read.
    pub pos: u64,
}

impl<S> At<S> {
    pub fn new(source: S, pos: u64) -> Self {
        At { source, pos }
    }
}

impl<S> Read for At<S>
where
    S: Deref,
    S::Target: ReadAt,
{
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.source.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}
