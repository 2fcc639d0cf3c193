//! One small work queue for the whole project: run a function over a slice
//! on every core (capped), keeping results in input order. Hashing blobs,
//! rendering clusters and re-checking staged files all use it; staging
//! images, which waits on the network, uses [`map_waiting`].

use std::sync::Mutex;
use std::thread;

/// `f` over every item, `max_workers` at a time at most (and at most one
/// per core); results in the order of `items`.
pub fn map<T: Sync, R: Send>(
    items: &[T],
    max_workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    map_within_budget(items, max_workers, u64::MAX, |_| 0, f)
}

/// Like [`map`], but `workers` threads whatever the number of cores: for
/// work that mostly waits on the network (round trips to a registry), where
/// more threads than cores keep the far side busy.
pub fn map_waiting<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    run(items, workers, u64::MAX, |_| 0, f)
}

/// Like [`map`], but items also weigh something (memory, say) and the
/// items in flight together stay within `budget`: a worker waits before
/// taking an item that would exceed it. An item heavier than the whole
/// budget runs alone rather than never. Items start in order.
pub fn map_within_budget<T: Sync, R: Send>(
    items: &[T],
    max_workers: usize,
    budget: u64,
    weight: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    run(items, max_workers.min(cores), budget, weight, f)
}

/// The queue itself: `workers` threads (at least one, at most one per
/// item) take items in order while their weight fits the budget.
fn run<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    budget: u64,
    weight: impl Fn(&T) -> u64,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    use std::sync::Condvar;
    let weights: Vec<u64> = items.iter().map(weight).collect();
    // (next item, weight in flight)
    let state = Mutex::new((0usize, 0u64));
    let freed = Condvar::new();
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let workers = workers.max(1).min(items.len().max(1));
    thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let taken = {
                        let mut s = state.lock().expect("no panics while locked");
                        loop {
                            let (next, in_flight) = *s;
                            let Some(&w) = weights.get(next) else {
                                break None;
                            };
                            if in_flight == 0 || in_flight.saturating_add(w) <= budget {
                                *s = (next + 1, in_flight.saturating_add(w));
                                break Some(next);
                            }
                            s = freed.wait(s).expect("no panics while locked");
                        }
                    };
                    let Some(i) = taken else { break };
                    let item = &items[i];
                    let r = f(item);
                    results.lock().expect("no panics while locked")[i] = Some(r);
                    state.lock().expect("no panics while locked").1 -= weights[i];
                    freed.notify_all();
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
    fn the_items_in_flight_stay_within_the_budget() {
        use std::sync::atomic::{AtomicU64, Ordering};
        let items: Vec<u64> = vec![60, 50, 30, 120, 10, 40];
        let in_flight = AtomicU64::new(0);
        let peak = AtomicU64::new(0);
        let out = super::map_within_budget(
            &items,
            4,
            100,
            |w| *w,
            |w| {
                let now = in_flight.fetch_add(*w, Ordering::SeqCst) + w;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(std::time::Duration::from_millis(20));
                in_flight.fetch_sub(*w, Ordering::SeqCst);
                w * 2
            },
        );
        assert_eq!(out, items.iter().map(|w| w * 2).collect::<Vec<_>>());
        // 120 alone is over the budget and still ran; nothing ran beside it.
        assert_eq!(peak.load(Ordering::SeqCst), 120);
        let out = super::map_within_budget(&items, 4, 1000, |w| *w, |w| *w);
        assert_eq!(out, items);
    }

    #[test]
    fn waiting_work_gets_its_workers_whatever_the_cores() {
        use std::sync::{Barrier, Mutex};
        // Eight items that each wait for all eight to have started: this
        // only finishes if eight run at once, on any number of cores.
        let barrier = Barrier::new(8);
        let threads = Mutex::new(std::collections::HashSet::new());
        let items: Vec<u32> = (0..8).collect();
        let out = super::map_waiting(&items, 8, |x| {
            threads.lock().unwrap().insert(std::thread::current().id());
            barrier.wait();
            x + 1
        });
        assert_eq!(out, (1..9).collect::<Vec<_>>());
        assert_eq!(threads.into_inner().unwrap().len(), 8);
        assert!(super::map_waiting(&[] as &[u32], 8, |x| *x).is_empty());
    }

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
