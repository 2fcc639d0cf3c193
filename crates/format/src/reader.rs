//! The strict streaming bundle reader (bundle-spec §5).
//!
//! It reads the stream once, front to back. The manifest and the signature
//! slot come first and are held in memory (both are bounded); every other
//! entry is streamed in 1 MiB chunks to a sink while it is hashed, and the
//! sink is told to commit only after the digest matched. Reading and hashing
//! overlap: this thread reads, worker threads (one per core) each hash whole
//! entries, so two blobs are hashed at once on two cores. Memory stays at
//! [`POOL_BUFFERS`] × [`CHUNK`] whatever the bundle size.

use crate::FromIo;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

mod positional;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Rejection, read_error};
use crate::layout::{MANIFEST_FILE, SIGNATURES_FILE};
use crate::manifest::{BundleManifest, Entry, MAX_MANIFEST_SIZE};
use crate::read_at::{At, ReadAt};
use crate::signatures::SignatureSlot;
use crate::ustar::{self, BLOCK, CheckedHeader, HeaderProblem};

/// Bytes per read.
pub const CHUNK: usize = 1 << 20;
/// Buffers in flight between the reading thread and the hashers.
pub const POOL_BUFFERS: usize = 8;
/// Zero padding accepted after the end-of-archive marker (GNU tar pads to
/// 10 KiB records; some media copy tools pad further).
const MAX_TRAILING_ZEROS: u64 = 1 << 20;

/// Where verified bytes go. `write` receives bytes not yet known to be
/// good; a sink must keep them private until `commit`.
pub trait EntrySink: Send {
    fn write(&mut self, data: &[u8]) -> io::Result<()>;
    /// The digest matched: the bytes may now be used.
    fn commit(self: Box<Self>) -> io::Result<()>;
}

/// Opens a sink for each entry, on the hashing thread that will feed it.
pub trait SinkFactory: Sync {
    fn open(&self, index: usize, entry: &Entry) -> io::Result<Box<dyn EntrySink>>;
}

impl<F> SinkFactory for F
where
    F: Fn(usize, &Entry) -> io::Result<Box<dyn EntrySink>> + Sync,
{
    fn open(&self, index: usize, entry: &Entry) -> io::Result<Box<dyn EntrySink>> {
        self(index, entry)
    }
}

/// A sink that keeps nothing: for verification only.
pub struct DiscardSink;

impl EntrySink for DiscardSink {
    fn write(&mut self, _: &[u8]) -> io::Result<()> {
        Ok(())
    }
    fn commit(self: Box<Self>) -> io::Result<()> {
        Ok(())
    }
}

/// A factory of [`DiscardSink`]s.
pub fn discard(_: usize, _: &Entry) -> io::Result<Box<dyn EntrySink>> {
    Ok(Box::new(DiscardSink))
}

/// What a full read saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadSummary {
    pub entries: usize,
    pub payload_bytes: u64,
    pub stream_bytes: u64,
}

/// A bundle whose manifest and signature slot have been read (but not yet
/// trusted: checking signatures is the caller's first job).
pub struct BundleReader<R> {
    input: Counted<R>,
    /// For a bundle file or a volume set: positional reads, so each hasher
    /// reads its own entries and both cores copy and hash at once.
    positional: Option<Arc<dyn ReadAt>>,
    manifest: BundleManifest,
    manifest_bytes: Vec<u8>,
    slot: SignatureSlot,
    slot_offset: u64,
}

/// A bundle from a file or from a pipe.
pub type AnyBundleReader = BundleReader<Box<dyn Read + Send>>;

impl AnyBundleReader {
    /// Opens a bundle file. Entries are then read with positional reads by
    /// the hashing threads themselves (see `positional`).
    pub fn open_file(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::io_at("opening", path, e))?;
        Self::open_positional(Arc::new(file))
    }

    /// Opens a bundle stream that allows positional reads: a file, or
    /// volumes read as one. The manifest and slot are read in order; the
    /// entries by the hashing threads themselves (see `positional`).
    pub fn open_positional(source: Arc<dyn ReadAt>) -> Result<Self, Error> {
        let headers: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(
            1 << 16,
            At::new(Arc::clone(&source), 0),
        ));
        let mut reader = BundleReader::open(headers)?;
        reader.positional = Some(source);
        Ok(reader)
    }
}

impl<R: Read> BundleReader<R> {
    /// Reads entry 0 (the manifest) and entry 1 (the signature slot).
    pub fn open(input: R) -> Result<Self, Error> {
        let mut input = Counted {
            inner: input,
            pos: 0,
        };
        let header = expect_entry(&mut input, 0, MANIFEST_FILE)?;
        if header.size > MAX_MANIFEST_SIZE {
            return Err(Rejection::TooLarge {
                what: "the bundle manifest".into(),
                size: header.size,
                limit: MAX_MANIFEST_SIZE,
            }
            .into());
        }
        let manifest_bytes = read_small(&mut input, &header)?;
        let manifest =
            BundleManifest::from_canonical_bytes(&manifest_bytes).map_err(Rejection::from)?;

        let header = expect_entry(&mut input, 1, SIGNATURES_FILE)?;
        if header.size != manifest.signature_slot_size {
            return Err(Rejection::SizeMismatch {
                path: header.path,
                header: header.size,
                signed: manifest.signature_slot_size,
            }
            .into());
        }
        let slot_offset = input.pos;
        let slot_bytes = read_small(&mut input, &header)?;
        let slot = SignatureSlot::decode(&slot_bytes).map_err(Rejection::from)?;
        Ok(BundleReader {
            input,
            positional: None,
            manifest,
            manifest_bytes,
            slot,
            slot_offset,
        })
    }

    pub fn manifest(&self) -> &BundleManifest {
        &self.manifest
    }

    /// The exact bytes the signatures cover.
    pub fn manifest_bytes(&self) -> &[u8] {
        &self.manifest_bytes
    }

    /// The bundle's identity: the digest of its manifest bytes.
    pub fn manifest_digest(&self) -> Digest {
        Digest::of(&self.manifest_bytes)
    }

    pub fn signatures(&self) -> &SignatureSlot {
        &self.slot
    }

    /// Byte offset of the signature slot's data in the stream, where
    /// `tender sign` rewrites it.
    pub fn slot_offset(&self) -> u64 {
        self.slot_offset
    }

    /// Streams every listed entry through sha256 into sinks made by
    /// `factory`, then checks the end of the archive. Stops at the first
    /// problem; entries before it may have been committed, later ones not.
    pub fn read_entries(
        self,
        factory: &dyn SinkFactory,
        progress: &mut dyn FnMut(u64),
    ) -> Result<ReadSummary, Error> {
        let workers = thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        let BundleReader {
            mut input,
            positional,
            manifest,
            ..
        } = self;
        if let Some(source) = positional {
            return positional::read_entries(
                source.as_ref(),
                input.pos,
                &manifest.entries,
                factory,
                progress,
            );
        }
        let entries = &manifest.entries;
        let failed = AtomicBool::new(false);
        let loads: Vec<AtomicU64> = (0..workers).map(|_| AtomicU64::new(0)).collect();
        let (free_tx, free_rx) = bounded::<Vec<u8>>(POOL_BUFFERS);
        for _ in 0..POOL_BUFFERS {
            free_tx.send(vec![0u8; CHUNK]).expect("pool has room");
        }
        let (result_tx, result_rx) = unbounded::<(usize, Error)>();

        let read_outcome = thread::scope(|scope| {
            let mut queues = Vec::with_capacity(workers);
            for load in &loads {
                let (tx, rx) = bounded::<Work>(4);
                let ctx = WorkerCtx {
                    entries,
                    factory,
                    free: free_tx.clone(),
                    results: result_tx.clone(),
                    failed: &failed,
                    load,
                };
                scope.spawn(move || ctx.run(rx));
                queues.push(tx);
            }
            let outcome = pump(
                &mut input, entries, &queues, &loads, &free_rx, &failed, progress,
            );
            drop(queues);
            outcome
        });
        drop(result_tx);

        // Report the problem that comes first in the stream.
        let worker_error = result_rx.iter().min_by_key(|(index, _)| *index);
        match (read_outcome, worker_error) {
            (Err((ri, re)), Some((wi, we))) => Err(if wi < ri { we } else { re }),
            (Err((_, e)), None) | (Ok(_), Some((_, e))) => Err(e),
            (Ok(summary), None) => Ok(summary),
        }
    }
}

/// The reading side: headers, checks, and chunks handed to hashers.
fn pump<R: Read>(
    input: &mut Counted<R>,
    entries: &[Entry],
    queues: &[Sender<Work>],
    loads: &[AtomicU64],
    free: &Receiver<Vec<u8>>,
    failed: &AtomicBool,
    progress: &mut dyn FnMut(u64),
) -> Result<ReadSummary, (usize, Error)> {
    let mut payload = 0u64;
    let aborted = || {
        (
            usize::MAX,
            Error::io("reading", io::Error::other("aborted")),
        )
    };
    for (index, entry) in entries.iter().enumerate() {
        let at = |e: Error| (index + 2, e);
        if failed.load(Ordering::Relaxed) {
            return Err(aborted());
        }
        let header = next_listed_header(input, index, entries).map_err(at)?;
        // Least-loaded hasher takes the whole entry.
        let worker = (0..queues.len())
            .min_by_key(|&w| loads[w].load(Ordering::Relaxed))
            .unwrap_or(0);
        // The extra 1 is the entry itself, released at its End.
        loads[worker].fetch_add(header.size + 1, Ordering::Relaxed);
        let queue = &queues[worker];
        let hung_up = || {
            (
                index + 2,
                Error::io("hashing", io::Error::other("worker stopped")),
            )
        };
        queue.send(Work::Begin { index }).map_err(|_| hung_up())?;
        let mut left = header.size;
        while left > 0 {
            if failed.load(Ordering::Relaxed) {
                return Err(aborted());
            }
            let mut buf = free.recv().map_err(|_| hung_up())?;
            let n = left.min(CHUNK as u64) as usize;
            input
                .read_exact(&mut buf[..n])
                .map_err(|e| at(read_error(&format!("entry {:?}", entry.path), e)))?;
            left -= n as u64;
            payload += n as u64;
            progress(payload);
            queue
                .send(Work::Data { buf, len: n })
                .map_err(|_| hung_up())?;
        }
        queue.send(Work::End).map_err(|_| hung_up())?;
        skip_padding(input, &entry.path, header.size).map_err(at)?;
    }
    let end = entries.len() + 2;
    check_end_of_archive(input, entries).map_err(|e| (end, e))?;
    Ok(ReadSummary {
        entries: entries.len(),
        payload_bytes: payload,
        stream_bytes: input.pos,
    })
}

enum Work {
    Begin { index: usize },
    Data { buf: Vec<u8>, len: usize },
    End,
}

/// The entry a hasher is working on: index, sink (None once it failed),
/// running hash.
type InFlight = (usize, Option<Box<dyn EntrySink>>, Hasher);

struct WorkerCtx<'a> {
    entries: &'a [Entry],
    factory: &'a dyn SinkFactory,
    free: Sender<Vec<u8>>,
    results: Sender<(usize, Error)>,
    failed: &'a AtomicBool,
    load: &'a AtomicU64,
}

impl WorkerCtx<'_> {
    fn run(self, queue: Receiver<Work>) {
        let mut current: Option<InFlight> = None;
        for work in queue {
            match work {
                Work::Begin { index } => {
                    let sink = match self.factory.open(index, &self.entries[index]) {
                        Ok(sink) => Some(sink),
                        Err(e) => {
                            self.fail(index, sink_error(&self.entries[index], e));
                            None
                        }
                    };
                    current = Some((index, sink, Hasher::new()));
                }
                Work::Data { buf, len } => {
                    if let Some((index, sink, hasher)) = current.as_mut() {
                        hasher.update(&buf[..len]);
                        if let Some(s) = sink
                            && let Err(e) = s.write(&buf[..len])
                        {
                            self.fail(*index, sink_error(&self.entries[*index], e));
                            *sink = None;
                        }
                    }
                    self.load.fetch_sub(len as u64, Ordering::Relaxed);
                    let _ = self.free.send(buf);
                }
                Work::End => {
                    if let Some((index, sink, hasher)) = current.take() {
                        let entry = &self.entries[index];
                        self.load.fetch_sub(1, Ordering::Relaxed);
                        let (actual, _) = hasher.finish();
                        if actual != entry.digest {
                            let e = Rejection::DigestMismatch {
                                path: entry.path.clone(),
                                expected: entry.digest,
                                actual,
                            };
                            self.fail(index, e.into());
                        } else if let Some(sink) = sink
                            && let Err(e) = sink.commit()
                        {
                            self.fail(index, sink_error(entry, e));
                        }
                    }
                }
            }
        }
    }

    fn fail(&self, index: usize, error: Error) {
        self.failed.store(true, Ordering::Relaxed);
        let _ = self.results.send((index + 2, error));
    }
}

pub(crate) fn sink_error(entry: &Entry, source: io::Error) -> Error {
    Error::Sink {
        context: format!("storing {}", entry.path),
        source,
    }
}

/// Counts the bytes read, for error messages and in-place signing.
pub(crate) struct Counted<R> {
    pub(crate) inner: R,
    pub(crate) pos: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads one 512-byte block; `None` at a clean end of stream.
pub(crate) fn read_block<R: Read>(
    input: &mut Counted<R>,
    what: &str,
) -> Result<Option<[u8; BLOCK]>, Error> {
    let mut block = [0u8; BLOCK];
    let mut filled = 0;
    while filled < BLOCK {
        match input.read(&mut block[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(read_error(what, io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_error(what, e)),
        }
    }
    Ok(Some(block))
}

fn header_rejection(problem: HeaderProblem, index: usize, offset: u64) -> Error {
    match problem {
        HeaderProblem::Malformed(reason) => Rejection::BadHeader {
            index,
            offset,
            reason,
        },
        HeaderProblem::Forbidden { path, kind } => Rejection::ForbiddenType { path, kind },
        HeaderProblem::UnsafePath { path, reason } => Rejection::UnsafePath { path, reason },
        HeaderProblem::Metadata { path, reason } => Rejection::UnsafeMetadata { path, reason },
    }
    .into()
}

/// Reads a header that must be present and checks it; `index` counts all
/// tar entries, manifest and slot included.
pub(crate) fn read_header<R: Read>(
    input: &mut Counted<R>,
    index: usize,
    what: &str,
) -> Result<Option<CheckedHeader>, Error> {
    let offset = input.pos;
    let Some(block) = read_block(input, what)? else {
        return Err(read_error(what, io::ErrorKind::UnexpectedEof.into()));
    };
    if ustar::is_zero_block(&block) {
        return Ok(None);
    }
    ustar::check_header(&block)
        .map(Some)
        .map_err(|p| header_rejection(p, index, offset))
}

fn expect_entry<R: Read>(
    input: &mut Counted<R>,
    index: usize,
    name: &'static str,
) -> Result<CheckedHeader, Error> {
    let what = format!("the header of {name}");
    match read_header(input, index, &what)? {
        Some(h) if h.path == name => Ok(h),
        Some(h) => Err(Rejection::NotABundle {
            index,
            expected: name,
            found: h.path,
        }
        .into()),
        None => Err(Rejection::NotABundle {
            index,
            expected: name,
            found: "end of archive".into(),
        }
        .into()),
    }
}

fn read_small<R: Read>(input: &mut Counted<R>, header: &CheckedHeader) -> Result<Vec<u8>, Error> {
    // Grow as bytes arrive: a header claiming 64 MiB in a 1 KiB file must
    // not make us allocate 64 MiB.
    let mut data = Vec::new();
    let n = input
        .by_ref()
        .take(header.size)
        .read_to_end(&mut data)
        .map_err(|e| read_error(&header.path, e))?;
    if n as u64 != header.size {
        return Err(read_error(
            &header.path,
            io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    skip_padding(input, &header.path, header.size)?;
    Ok(data)
}

pub(crate) fn skip_padding<R: Read>(
    input: &mut Counted<R>,
    path: &str,
    size: u64,
) -> Result<(), Error> {
    let mut pad = [0u8; BLOCK];
    let n = ustar::padding(size);
    input
        .read_exact(&mut pad[..n])
        .map_err(|e| read_error(&format!("the padding of {path:?}"), e))?;
    if pad[..n].iter().any(|&b| b != 0) {
        return Err(Rejection::BadPadding { path: path.into() }.into());
    }
    Ok(())
}

/// Reads the header of listed entry `index` and checks it is exactly the
/// entry the manifest lists there.
pub(crate) fn next_listed_header<R: Read>(
    input: &mut Counted<R>,
    index: usize,
    entries: &[Entry],
) -> Result<CheckedHeader, Error> {
    let expected = &entries[index];
    let what = format!("the header of {:?}", expected.path);
    let Some(header) = read_header(input, index + 2, &what)? else {
        return Err(Rejection::MissingEntry {
            path: expected.path.clone(),
            found: "the end-of-archive marker".into(),
        }
        .into());
    };
    if header.path != expected.path {
        return Err(misplaced(header.path, index, entries));
    }
    if header.size != expected.size {
        return Err(Rejection::SizeMismatch {
            path: header.path,
            header: header.size,
            signed: expected.size,
        }
        .into());
    }
    Ok(header)
}

/// Names what is wrong with an entry found where another was expected.
fn misplaced(path: String, index: usize, entries: &[Entry]) -> Error {
    let listed_at = entries.iter().position(|e| e.path == path);
    let special = path == MANIFEST_FILE || path == SIGNATURES_FILE;
    match listed_at {
        Some(at) if at < index => Rejection::DuplicateEntry { path },
        _ if special => Rejection::DuplicateEntry { path },
        Some(_) if index < entries.len() => Rejection::MissingEntry {
            path: entries[index].path.clone(),
            found: format!("{path:?}, listed later,"),
        },
        _ => Rejection::UnlistedEntry { path },
    }
    .into()
}

/// After the last listed entry: two zero blocks, then at most some zero
/// padding, then the end of the stream.
pub(crate) fn check_end_of_archive<R: Read>(
    input: &mut Counted<R>,
    entries: &[Entry],
) -> Result<(), Error> {
    let index = entries.len() + 2;
    if let Some(header) = read_header(input, index, "the end-of-archive marker")? {
        return Err(misplaced(header.path, entries.len(), entries));
    }
    let Some(second) = read_block(input, "the end-of-archive marker")? else {
        return Err(read_error(
            "the end-of-archive marker",
            io::ErrorKind::UnexpectedEof.into(),
        ));
    };
    if !ustar::is_zero_block(&second) {
        return Err(Rejection::TrailingData.into());
    }
    let mut rest = [0u8; BLOCK];
    let mut trailing = 0u64;
    loop {
        let n = match input.read(&mut rest) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(read_error("the end of the archive", e)),
        };
        trailing += n as u64;
        if trailing > MAX_TRAILING_ZEROS || rest[..n].iter().any(|&b| b != 0) {
            return Err(Rejection::TrailingData.into());
        }
    }
}
