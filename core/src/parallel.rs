//! Work spread over the cores of a native host: the same function applied to every item of a
//! list, on threads that run while the caller goes on with other work, the results collected
//! later in the list's order. Nothing else is shared between the threads, so a result never
//! depends on how many there were or which one did what.
//!
//! On wasm32 (one thread), or when a thread cannot be started, the caller's thread does it all.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

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
/// each taking the next item not yet taken; the results in the order of `items`. The caller
/// waits: for work it goes on beside, see [`Job`].
pub(crate) fn map<T, R, F>(items: &[T], threads: usize, work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let shared = Shared {
        items: items.iter().collect::<Vec<&T>>(),
        work: |item: &&T| work(item),
        next: AtomicUsize::new(0),
        done: Mutex::new(Vec::new()),
    };
    let threads = match cfg!(target_arch = "wasm32") {
        true => 1, // no threads there, and no code to start them
        false => threads.min(items.len()),
    };
    if threads <= 1 {
        shared.take();
        return shared.results();
    }
    std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads)
            .filter_map(|n| {
                std::thread::Builder::new()
                    .name(format!("bucketsync-work-{n}"))
                    .spawn_scoped(scope, || shared.take())
                    .ok()
            })
            .collect();
        shared.take();
        for helper in helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    let results = shared.results();
    debug_assert_eq!(results.len(), items.len());
    results
}

/// `work` applied to every item of a list, begun by [`Job::start`] on threads of its own and
/// collected by [`Job::finish`], which the caller's thread helps with whatever is left. Between
/// the two the caller is free: that is the point (an upload reads and cuts the next chunks
/// while these are deflated).
pub(crate) struct Job<T, R, F> {
    shared: Arc<Shared<T, R, F>>,
    helpers: Vec<JoinHandle<()>>,
}

struct Shared<T, R, F> {
    items: Vec<T>,
    work: F,
    /// The index of the next item no thread has taken.
    next: AtomicUsize,
    /// Results with their items' indices, in the order the threads handed them in.
    done: Mutex<Vec<(usize, R)>>,
}

impl<T, R, F> Shared<T, R, F>
where
    F: Fn(&T) -> R,
{
    /// Works on the next item not yet taken until none is left, then hands the results in.
    fn take(&self) {
        let mut done = Vec::new();
        loop {
            let i = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = self.items.get(i) else {
                break;
            };
            done.push((i, (self.work)(item)));
        }
        if !done.is_empty() {
            self.done
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend(done);
        }
    }

    /// The results, in the items' order, once every item was worked on.
    fn results(self) -> Vec<R> {
        let mut done = self
            .done
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        done.sort_unstable_by_key(|(i, _)| *i);
        done.into_iter().map(|(_, r)| r).collect()
    }
}

impl<T, R, F> Job<T, R, F>
where
    T: Send + Sync + 'static,
    R: Send + 'static,
    F: Fn(&T) -> R + Send + Sync + 'static,
{
    /// Starts `work` on `items` on up to `threads` threads, the caller's one of them: it
    /// joins in at [`Job::finish`], and the others start now (so that the threads at work
    /// never outnumber `threads`, however busy the caller is meanwhile). With `threads` at
    /// most 1 (or one item), the caller's thread does it all, now.
    pub(crate) fn start(items: Vec<T>, threads: usize, work: F) -> Self {
        let shared = Arc::new(Shared {
            items,
            work,
            next: AtomicUsize::new(0),
            done: Mutex::new(Vec::new()),
        });
        let threads = threads.min(shared.items.len());
        if threads <= 1 || cfg!(target_arch = "wasm32") {
            shared.take();
            return Job {
                shared,
                helpers: Vec::new(),
            };
        }
        let helpers = (1..threads)
            .filter_map(|n| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("bucketsync-work-{n}"))
                    .spawn(move || shared.take())
                    .ok()
            })
            .collect();
        Job { shared, helpers }
    }

    /// Waits for the work, taking on the items no thread has begun, and gives back the items
    /// and their results, in the items' order.
    pub(crate) fn finish(self) -> (Vec<T>, Vec<R>) {
        self.shared.take();
        for helper in self.helpers {
            if let Err(panic) = helper.join() {
                std::panic::resume_unwind(panic);
            }
        }
        let Ok(mut shared) = Arc::try_unwrap(self.shared) else {
            unreachable!("every helper that held the work has ended");
        };
        let items = std::mem::take(&mut shared.items);
        let results = shared.results();
        debug_assert_eq!(results.len(), items.len());
        (items, results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square(items: Vec<u64>, threads: usize) -> (Vec<u64>, Vec<u64>) {
        Job::start(items, threads, |n: &u64| n * n + 1).finish()
    }

    #[test]
    fn results_come_in_the_order_of_the_items_whatever_the_threads() {
        let items: Vec<u64> = (0..1_000).collect();
        let (back, alone) = square(items.clone(), 1);
        assert_eq!(back, items);
        for threads in [2, 3, 8, 2_000] {
            let (back, results) = square(items.clone(), threads);
            assert_eq!(back, items, "{threads} threads give the items back");
            assert_eq!(results, alone, "{threads} threads");
        }
        assert_eq!(alone[999], 999 * 999 + 1);
    }

    #[test]
    fn every_item_is_worked_on_exactly_once_while_the_caller_goes_on() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let job = Job::start((0..500).collect::<Vec<usize>>(), 4, move |n| {
            counted.fetch_add(1, Ordering::Relaxed);
            *n
        });
        // The caller's own work in between.
        let mine: usize = (0..10_000).sum();
        let (items, out) = job.finish();
        assert_eq!(mine, 49_995_000);
        assert_eq!(calls.load(Ordering::Relaxed), 500);
        assert_eq!(out, items);
        assert_eq!(out, (0..500).collect::<Vec<_>>());
        let (none, nothing) = Job::start(Vec::<u8>::new(), 4, |b: &u8| *b).finish();
        assert!(none.is_empty() && nothing.is_empty());
    }

    #[test]
    fn map_gives_the_results_in_order_whatever_the_threads() {
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
        assert!(map(&[] as &[u8], 4, |b| *b).is_empty());
    }

    #[test]
    fn a_panic_in_the_work_reaches_the_caller_at_finish() {
        let job = Job::start((0..100).collect::<Vec<u32>>(), 2, |n| {
            assert!(*n != 57, "item 57");
            *n
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.finish()));
        assert!(outcome.is_err());
    }
}
