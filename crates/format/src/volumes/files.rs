//! The volumes of a set read as one logical file, for the positional
//! reader (`reader::positional`): verify and import then read volumes the
//! way they read a bundle file, each hashing thread reading its own
//! entries. An entry may span a volume boundary; a read stops there and
//! the caller reads on. A volume that ends early or has gone is named by
//! number, as the streaming [`super::VolumeReader`] names it.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use super::{Volume, VolumeProblem, VolumeSet};
use crate::read_at::ReadAt;

pub(crate) struct VolumeFiles {
    dir: PathBuf,
    count: u32,
    /// Each volume and where it starts in the stream: the sum of the sizes
    /// before it, as concatenation gives (the index's offsets are not
    /// trusted).
    parts: Vec<(u64, Volume)>,
}

impl VolumeFiles {
    pub(crate) fn new(set: &VolumeSet) -> Self {
        let mut start = 0u64;
        let parts = set
            .index
            .volumes
            .iter()
            .map(|v| {
                let part = (start, v.clone());
                start = start.saturating_add(v.size);
                part
            })
            .collect();
        VolumeFiles {
            dir: set.dir.clone(),
            count: set.count(),
            parts,
        }
    }
}

impl ReadAt for VolumeFiles {
    /// Opens the volume for each read rather than holding every volume
    /// open: a set may count thousands of volumes (more than the open-file
    /// limit), and an open costs microseconds next to a 1 MiB read.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let i = self.parts.partition_point(|(start, _)| *start <= offset);
        let Some((start, v)) = i.checked_sub(1).map(|i| &self.parts[i]) else {
            return Ok(0);
        };
        let within = offset - start;
        let want = v.size.saturating_sub(within).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0); // past the last volume: the end of the stream
        }
        let file = File::open(self.dir.join(&v.file))
            .map_err(|_| super::volume_error(v, self.count, VolumeProblem::Missing))?;
        let n = file.read_at(&mut buf[..want], within)?;
        if n == 0 {
            let size = file.metadata().map_or(within, |m| m.len());
            let problem = VolumeProblem::Truncated {
                size,
                expected: v.size,
            };
            return Err(super::volume_error(v, self.count, problem));
        }
        Ok(n)
    }
}
