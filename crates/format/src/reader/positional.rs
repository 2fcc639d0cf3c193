//! Reading a bundle with positional reads (a file, or a volume set read as
//! one logical file): this thread walks the headers (a 512-byte read per
//! entry), and each hashing thread reads its own entries' bytes. Both cores
//! copy and hash at once, with no hand-over of buffers between threads;
//! memory is one buffer per hasher.
//!
//! The checks are those of the streaming path, in the same order; only who
//! reads which bytes differs.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::{
    CHUNK, Counted, ReadSummary, SinkFactory, check_end_of_archive, next_listed_header, sink_error,
};
use crate::digest::Hasher;
use crate::error::{Error, Rejection, read_error};
use crate::manifest::Entry;
use crate::read_at::{At, ReadAt};
use crate::ustar::{self, BLOCK};

struct Job {
    index: usize,
    offset: u64,
    size: u64,
}

/// Reads and checks every entry the manifest lists, from `start` (after
/// the manifest and the signature slot): the headers walked on this
/// thread, the entries hashed on up to four others.
pub(crate) fn read_entries(
    source: &dyn ReadAt,
    start: u64,
    entries: &[Entry],
    factory: &dyn SinkFactory,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadSummary, Error> {
    let workers = thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
    let shared = Shared {
        source,
        entries,
        factory,
        done_bytes: AtomicU64::new(0),
        failed: AtomicBool::new(false),
        errors: Mutex::new(Vec::new()),
    };
    let (jobs_tx, jobs_rx) = bounded::<Job>(256);
    let (finished_tx, finished_rx) = unbounded::<()>();

    let walk = thread::scope(|scope| {
        for _ in 0..workers {
            let jobs = jobs_rx.clone();
            let finished = finished_tx.clone();
            let shared = &shared;
            scope.spawn(move || {
                shared.hash_jobs(jobs);
                drop(finished);
            });
        }
        drop(finished_tx);

        let walked = shared.walk_headers(start, jobs_tx);
        // Report progress while the hashers finish.
        while finished_rx
            .recv_timeout(Duration::from_millis(100))
            .is_err_and(|e| e.is_timeout())
        {
            progress(shared.done_bytes.load(Ordering::Relaxed));
        }
        progress(shared.done_bytes.load(Ordering::Relaxed));
        let walked = walked?;
        if shared.failed.load(Ordering::Relaxed) {
            return Ok(walked);
        }
        let mut tail = Counted {
            inner: At::new(source, walked),
            pos: walked,
        };
        check_end_of_archive(&mut tail, entries).map_err(|e| (entries.len() + 2, e))?;
        Ok(tail.pos)
    });

    let mut errors = shared.errors.into_inner().expect("no panics while locked");
    let stream_bytes = match walk {
        Ok(pos) => pos,
        Err(e) => {
            errors.push(e);
            0
        }
    };
    if let Some((_, e)) = errors.into_iter().min_by_key(|(i, _)| *i) {
        return Err(e);
    }
    Ok(ReadSummary {
        entries: entries.len(),
        payload_bytes: shared.done_bytes.into_inner(),
        stream_bytes,
    })
}

/// What the header walk and the hashing threads share.
struct Shared<'a> {
    source: &'a dyn ReadAt,
    entries: &'a [Entry],
    factory: &'a dyn SinkFactory,
    /// Payload bytes hashed so far, for progress.
    done_bytes: AtomicU64,
    /// Set at the first failure, so that everyone stops early.
    failed: AtomicBool,
    /// Each failure with its entry's position in the stream: the earliest
    /// is reported, as the streaming path would have met it first.
    errors: Mutex<Vec<(usize, Error)>>,
}

impl Shared<'_> {
    /// One hashing thread: hashes and stores the entries it is handed
    /// until the walk ends, skipping them once anything has failed.
    fn hash_jobs(&self, jobs: Receiver<Job>) {
        let mut buf = vec![0u8; CHUNK];
        for job in jobs {
            if self.failed.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(e) = hash_entry(
                self.source,
                &job,
                &self.entries[job.index],
                self.factory,
                &mut buf,
                &self.done_bytes,
            ) {
                self.failed.store(true, Ordering::Relaxed);
                self.errors
                    .lock()
                    .expect("no panics while locked")
                    .push((job.index + 2, e));
            }
        }
    }

    /// Walks the headers from `start`, each checked against the manifest's
    /// entry, handing every entry to the hashers; returns the position
    /// after the last entry. Hanging up `jobs` at the end tells the hashers
    /// there is no more.
    fn walk_headers(&self, start: u64, jobs: Sender<Job>) -> Result<u64, (usize, Error)> {
        let mut input = Counted {
            inner: At::new(self.source, start),
            pos: start,
        };
        for index in 0..self.entries.len() {
            if self.failed.load(Ordering::Relaxed) {
                break;
            }
            let header =
                next_listed_header(&mut input, index, self.entries).map_err(|e| (index + 2, e))?;
            let offset = input.pos;
            let skip = header.size + ustar::padding(header.size) as u64;
            input.inner.pos += skip;
            input.pos += skip;
            let job = Job {
                index,
                offset,
                size: header.size,
            };
            if jobs.send(job).is_err() {
                break;
            }
        }
        Ok(input.pos)
    }
}

/// Reads, hashes and stores one entry, then checks its padding.
fn hash_entry(
    source: &dyn ReadAt,
    job: &Job,
    entry: &Entry,
    factory: &dyn SinkFactory,
    buf: &mut [u8],
    done_bytes: &AtomicU64,
) -> Result<(), Error> {
    let what = || format!("entry {:?}", entry.path);
    let mut sink = factory
        .open(job.index, entry)
        .map_err(|e| sink_error(entry, e))?;
    let mut hasher = Hasher::new();
    let mut offset = job.offset;
    let end = job.offset + job.size;
    while offset < end {
        let n = (end - offset).min(buf.len() as u64) as usize;
        source
            .read_exact_at(&mut buf[..n], offset)
            .map_err(|e| read_error(&what(), e))?;
        hasher.update(&buf[..n]);
        sink.write(&buf[..n]).map_err(|e| sink_error(entry, e))?;
        offset += n as u64;
        done_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let pad = ustar::padding(job.size);
    let mut padding = [0u8; BLOCK];
    source
        .read_exact_at(&mut padding[..pad], end)
        .map_err(|e| read_error(&format!("the padding of {:?}", entry.path), e))?;
    if padding[..pad].iter().any(|&b| b != 0) {
        return Err(Rejection::BadPadding {
            path: entry.path.clone(),
        }
        .into());
    }
    let (actual, _) = hasher.finish();
    if actual != entry.digest {
        return Err(Rejection::DigestMismatch {
            path: entry.path.clone(),
            expected: entry.digest,
            actual,
        }
        .into());
    }
    sink.commit().map_err(|e| sink_error(entry, e))
}
