//! Hashing volumes behind their writer. The volume index needs each
//! volume's sha256, but the writing thread is already busy reading,
//! hashing and writing the bundle; hashing every byte a second time there,
//! and waiting for each volume's fsync in turn, made packing into volumes
//! far slower than into one file. Instead a second thread reads each
//! volume back (from the page cache, just written) a step behind the
//! writer and hashes it, and a third syncs each hashed volume to disk, so
//! the disk writes one volume while the next is written and hashed. The
//! writer's thread does what it does for a single file.

use std::fs::File;
use std::io;
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, unbounded};

use crate::digest::{Digest, Hasher};
use crate::read_at::ReadAt;
use crate::reader::CHUNK;

/// What the writer tells the hashing thread.
enum Event {
    /// A new volume: a handle of its own on the file.
    Opened(File),
    /// The open volume now holds this many bytes.
    Wrote(u64),
    /// The open volume is complete at this many bytes.
    Closed(u64),
}

/// The hashing thread of one `VolumeWriter`.
pub(crate) struct HashBehind {
    events: Option<Sender<Event>>,
    thread: Option<JoinHandle<io::Result<Vec<Digest>>>>,
}

impl HashBehind {
    pub(crate) fn start() -> io::Result<Self> {
        let (tx, rx) = unbounded::<Event>();
        let thread = thread::Builder::new()
            .name("volume-hash".into())
            .spawn(move || hash_and_sync(rx))?;
        Ok(HashBehind {
            events: Some(tx),
            thread: Some(thread),
        })
    }

    pub(crate) fn opened(&self, file: File) {
        self.send(Event::Opened(file));
    }

    pub(crate) fn wrote(&self, len: u64) {
        self.send(Event::Wrote(len));
    }

    pub(crate) fn closed(&self, len: u64) {
        self.send(Event::Closed(len));
    }

    fn send(&self, event: Event) {
        // The thread only stops when the sender is dropped; should it have
        // died, `finish` says so.
        if let Some(tx) = &self.events {
            let _ = tx.send(event);
        }
    }

    /// Waits for the last volume: the digests of every closed volume, in
    /// order, each synced to disk. Also stops the thread of an abandoned
    /// writer before its files are removed.
    pub(crate) fn finish(&mut self) -> io::Result<Vec<Digest>> {
        self.events = None;
        let thread = self
            .thread
            .take()
            .ok_or_else(|| io::Error::other("the volume hashing thread has already finished"))?;
        thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the volume hashing thread panicked")))
    }
}

impl Drop for HashBehind {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The hashing thread: hashes each volume as the writer reports it and
/// hands each hashed volume to a sync thread of its own.
fn hash_and_sync(events: Receiver<Event>) -> io::Result<Vec<Digest>> {
    thread::scope(|scope| {
        let (synced, to_sync) = unbounded::<File>();
        let syncer = thread::Builder::new()
            .name("volume-sync".into())
            .spawn_scoped(scope, move || to_sync.iter().try_for_each(|f| f.sync_all()))?;
        let mut state = State {
            current: None,
            digests: Vec::new(),
            buf: Vec::new(),
            synced,
        };
        // After a failure keep draining, dropping the files the events
        // hold; the first error is reported by `finish`.
        let mut failure = None;
        for event in events {
            if failure.is_none()
                && let Err(e) = state.handle(event)
            {
                failure = Some(e);
            }
        }
        drop(state.synced);
        let synced = syncer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the volume sync thread panicked")));
        failure.map_or(synced, Err)?;
        Ok(state.digests)
    })
}

/// The hashing thread's side.
struct State {
    current: Option<(File, Hasher)>,
    digests: Vec<Digest>,
    buf: Vec<u8>,
    /// Hashed volumes, for the sync thread.
    synced: Sender<File>,
}

impl State {
    fn handle(&mut self, event: Event) -> io::Result<()> {
        match event {
            Event::Opened(file) => self.current = Some((file, Hasher::new())),
            Event::Wrote(len) => self.catch_up(len)?,
            Event::Closed(len) => {
                self.catch_up(len)?;
                let (file, hasher) = self.current.take().expect("a volume is open");
                self.digests.push(hasher.finish().0);
                // Gone only if the sync thread failed: `finish` says why.
                let _ = self.synced.send(file);
            }
        }
        Ok(())
    }

    /// Hashes the open volume's bytes up to `len`.
    fn catch_up(&mut self, len: u64) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; CHUNK];
        }
        let (file, hasher) = self.current.as_mut().expect("a volume is open");
        while hasher.len() < len {
            let n = (len - hasher.len()).min(self.buf.len() as u64) as usize;
            file.read_exact_at(&mut self.buf[..n], hasher.len())?;
            hasher.update(&self.buf[..n]);
        }
        Ok(())
    }
}
