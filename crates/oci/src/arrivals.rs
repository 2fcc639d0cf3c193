//! [`Arrivals`]: blobs on their way into a [`crate::LayoutStore`], so a
//! reader can take them in its own order while they download (export
//! writes its bundle in digest order during the pull).
//!
//! Blobs are queued as they become known ([`Arrivals::expect`]), until
//! [`Arrivals::close`]; the download ([`crate::RegistryClient::pull_blobs`])
//! starts the smallest digest queued next, the order a bundle lists blobs
//! in, and marks each as it lands, or the whole batch as failed. The reader
//! waits for the blob it needs next, and gives up ([`Arrivals::abandon`])
//! if it fails itself, which stops the download.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use tender_format::Digest;
use tokio::sync::Notify;

use crate::media::Descriptor;
use crate::reference::Reference;

/// Blobs queued for download into a store, and which of them have landed.
#[derive(Debug, Default)]
pub struct Arrivals {
    state: Mutex<State>,
    /// Wakes readers: a blob landed, or the download failed.
    landed: Condvar,
    /// Wakes the download: a blob was queued, or the queue closed.
    queued: Notify,
    /// Set when either side gives up; the download checks it between chunks.
    stop: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    /// Not started yet, each with the repository to ask, by digest.
    queue: BTreeMap<Digest, (Reference, Descriptor)>,
    /// Queued or downloading, with their sizes.
    waiting: HashMap<Digest, u64>,
    /// Every digest ever queued.
    seen: HashSet<Digest>,
    /// No more blobs will be queued.
    closed: bool,
    /// Why the download stopped short, once it has: the blob to blame, if
    /// one is, and the reason.
    failed: Option<(Option<Digest>, String)>,
}

impl Arrivals {
    /// An empty, open queue.
    pub fn new() -> Self {
        Arrivals::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a blob, to be downloaded from `repository`; one queued before
    /// is not queued again (images share layers).
    pub fn expect(&self, repository: &Reference, descriptor: &Descriptor) {
        let mut state = self.state();
        if state.closed || !state.seen.insert(descriptor.digest) {
            return;
        }
        state.waiting.insert(descriptor.digest, descriptor.size);
        state
            .queue
            .insert(descriptor.digest, (repository.clone(), descriptor.clone()));
        drop(state);
        self.queued.notify_waiters();
    }

    /// No more blobs will be queued: the download ends with the last one.
    pub fn close(&self) {
        self.state().closed = true;
        self.queued.notify_waiters();
    }

    /// The next blob to download: the smallest digest queued. `None` once
    /// the queue is closed and empty, or the batch stopped.
    pub(crate) async fn next(&self) -> Option<(Reference, Descriptor)> {
        loop {
            // Registered before looking, so a blob queued in between wakes it.
            let queued = self.queued.notified();
            {
                let mut state = self.state();
                if self.stop.load(Ordering::SeqCst) {
                    return None;
                }
                if let Some((_, blob)) = state.queue.pop_first() {
                    return Some(blob);
                }
                if state.closed {
                    return None;
                }
            }
            queued.await;
        }
    }

    /// The blobs not landed yet, with their sizes, in no particular order.
    /// Complete once the queue is closed.
    pub fn pending(&self) -> Vec<(Digest, u64)> {
        let state = self.state();
        state.waiting.iter().map(|(d, size)| (*d, *size)).collect()
    }

    /// Blocks until `digest` has landed (at once if it was never queued).
    /// Fails if the download stopped before it landed.
    pub fn wait(&self, digest: &Digest) -> io::Result<()> {
        let mut state = self.state();
        while state.waiting.contains_key(digest) {
            if let Some((_, reason)) = &state.failed {
                return Err(io::Error::other(format!(
                    "blob {digest} did not arrive: {reason}"
                )));
            }
            state = self.landed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Blocks until the queue is closed and every blob in it has landed;
    /// fails if the download stopped before.
    pub fn wait_all(&self) -> io::Result<()> {
        let mut state = self.state();
        while !(state.closed && state.waiting.is_empty()) {
            if let Some((_, reason)) = &state.failed {
                return Err(io::Error::other(format!(
                    "{} blob(s) did not arrive: {reason}",
                    state.waiting.len()
                )));
            }
            state = self.landed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }

    /// Whether `digest` was ever queued (a blob that lands was hashed
    /// against its digest by the download).
    pub fn was_queued(&self, digest: &Digest) -> bool {
        self.state().seen.contains(digest)
    }

    /// Whether `digest` is queued or downloading.
    pub fn is_pending(&self, digest: &Digest) -> bool {
        self.state().waiting.contains_key(digest)
    }

    /// The blob is complete in the store.
    pub(crate) fn landed(&self, digest: &Digest) {
        self.state().waiting.remove(digest);
        self.landed.notify_all();
    }

    /// The download stopped with blobs still missing, because of `blob`
    /// (if one is to blame); waiters get `reason`. The first call counts.
    pub(crate) fn fail(&self, blob: Option<Digest>, reason: &str) {
        self.stop.store(true, Ordering::SeqCst);
        self.state()
            .failed
            .get_or_insert_with(|| (blob, reason.to_string()));
        self.landed.notify_all();
        self.queued.notify_waiters();
    }

    /// The reader gave up: the download stops at its next chunk.
    pub fn abandon(&self) {
        self.fail(None, "the reader stopped");
    }

    /// Why the download stopped short, if it did: the blob to blame (if
    /// one is) and the reason.
    pub fn failure(&self) -> Option<(Option<Digest>, String)> {
        self.state().failed.clone()
    }

    /// Set once either side gave up.
    pub(crate) fn stop_flag(&self) -> &AtomicBool {
        &self.stop
    }
}

#[cfg(test)]
mod tests {
    use std::thread;
    use std::time::Duration;

    use super::*;

    fn blob(data: &[u8]) -> Descriptor {
        Descriptor::of_bytes("application/octet-stream", data)
    }

    #[test]
    fn blobs_are_handed_out_once_each_smallest_digest_first() {
        let repository = Reference::parse("registry.example/app:1").unwrap();
        let arrivals = Arrivals::new();
        let mut blobs: Vec<Descriptor> = [b"a", b"b", b"c"].map(|d| blob(d)).into();
        for b in blobs.iter().rev() {
            arrivals.expect(&repository, b);
        }
        arrivals.expect(&repository, &blobs[0]);
        arrivals.close();
        arrivals.expect(&repository, &blob(b"too late"));
        blobs.sort_by_key(|b| b.digest);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let handed: Vec<Descriptor> = runtime.block_on(async {
            let mut out = Vec::new();
            while let Some((_, d)) = arrivals.next().await {
                out.push(d);
            }
            out
        });
        assert_eq!(handed, blobs);
        assert_eq!(arrivals.pending().len(), 3, "handed out, not landed");
    }

    #[test]
    fn a_waiter_wakes_when_its_blob_lands_or_the_download_fails() {
        let repository = Reference::parse("registry.example/app:1").unwrap();
        let (a, b) = (blob(b"a"), blob(b"b"));
        let arrivals = Arrivals::new();
        arrivals.expect(&repository, &a);
        arrivals.expect(&repository, &b);
        arrivals.close();
        assert!(arrivals.is_pending(&a.digest));
        arrivals.wait(&blob(b"never queued").digest).unwrap();
        thread::scope(|s| {
            let waiter = s.spawn(|| arrivals.wait(&a.digest));
            thread::sleep(Duration::from_millis(20));
            arrivals.landed(&a.digest);
            waiter.join().unwrap().unwrap();
        });
        assert_eq!(arrivals.pending(), [(b.digest, 1)]);
        arrivals.wait(&a.digest).unwrap();

        thread::scope(|s| {
            let waiter = s.spawn(|| arrivals.wait_all());
            thread::sleep(Duration::from_millis(20));
            arrivals.fail(Some(b.digest), "HTTP 500");
            let err = waiter.join().unwrap().unwrap_err();
            assert!(err.to_string().contains("HTTP 500"), "{err}");
        });
        assert!(arrivals.stop_flag().load(Ordering::SeqCst));
        assert!(arrivals.wait(&b.digest).is_err());
        arrivals.wait(&a.digest).unwrap();
        arrivals.abandon();
        assert_eq!(
            arrivals.failure(),
            Some((Some(b.digest), "HTTP 500".to_string())),
            "the first failure counts"
        );
    }
}
