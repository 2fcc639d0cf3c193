//! One small work queue for the whole project: run a function over a slice
//! on every core (capped), keeping results in input order. Hashing blobs,
//! rendering clusters and re-checking staged files all use it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

/// `f` over every item, `max_workers` at a time at most (and at most one
/// per core); results in the order of `items`.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    max_workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(max_workers.max(1))
        .min(items.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().expect("no panics while locked")[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .expect("no panics while locked")
        .into_iter()
        .map(|r| r.expect("every item was taken"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order() {
        let items: Vec<u32> = (0..100).collect();
        assert_eq!(
            super::map(&items, 4, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert!(super::map(&[] as &[u32], 4, |x| *x).is_empty());
    }
}
