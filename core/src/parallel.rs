//! Work spread over the cores of a native host: the same function applied to every item of a
//! slice, the results in the slice's order. Nothing else is shared between the threads, so a
//! result never depends on how many there were or which one did what.
//!
//! On wasm32 (one thread), or when a thread cannot be started, the caller's thread does it all.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The most threads a piece of work is spread over.
const MAX_THREADS: usize = 8;

/// How many threads this host lends to work such as sealing chunks: its cores (at most
/// [`MAX_THREADS`]), or 1 where threads cannot be started.
pub(crate) fn threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// `work` applied to each of `items`, on up to `threads` threads (the caller's one of them),
/// each taking the next item not yet taken; the results in the order of `items`.
pub(crate) fn map<T, R, F>(items: &[T], threads: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, work(item)));
        }
    };
    let mut done = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|n| {
                std::thread::Builder::new()
                    .name(format!("bucketsync-work-{n}"))
                    .spawn_scoped(scope, take)
                    .ok()
            })
            .collect();
        let mut done = take();
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_the_order_of_the_items_whatever_the_threads() {
        let items: Vec<u64> = (0..1_000).collect();
        let alone = map(&items, 1, |n| n * n + 1);
        for threads in [2, 3, 8, 2_000] {
            assert_eq!(
                map(&items, threads, |n| n * n + 1),
                alone,
                "{threads} threads"
            );
        }
        assert_eq!(alone[999], 999 * 999 + 1);
    }

    #[test]
    fn every_item_is_worked_on_exactly_once() {
        let items: Vec<usize> = (0..500).collect();
        let calls = AtomicUsize::new(0);
        let out = map(&items, 4, |n| {
            calls.fetch_add(1, Ordering::Relaxed);
            *n
        });
        assert_eq!(calls.load(Ordering::Relaxed), 500);
        assert_eq!(out, items);
        assert!(map(&[] as &[u8], 4, |b| *b).is_empty());
    }
}
