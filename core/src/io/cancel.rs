//! How a host stops one blocking call: a [`Cancel`] made for the call and handed to the
//! thread or event loop that may want to stop it. Every binding whose host cannot drop the
//! call's future itself (a Python thread waiting for an asyncio task, a JS promise behind an
//! `AbortSignal`) runs the call through [`Cancel::run`], so a cancel takes effect at once and
//! the same way everywhere: the call's future is dropped where it stands, which the session
//! keeps safe (see [`Session`](super::session::Session)'s "Cancellation"), and the call
//! fails with [`Error::Cancelled`].

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use crate::error::{Error, Result};

/// A cancel for one call (or a few in turn): cheap to clone, and every clone cancels the same
/// calls. Once cancelled it stays so, and each call run through it afterwards fails at once.
#[derive(Clone, Debug, Default)]
pub struct Cancel {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// Who to wake for each call waiting in [`Cancel::run`], by a number of its own.
    waiting: Mutex<Vec<(u64, Waker)>>,
    next: AtomicU64,
}

impl Cancel {
    /// A cancel not cancelled yet.
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops every call running through this cancel and every later one. The call's waiter
    /// wakes at once, on whatever thread or runtime it waits.
    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        // Woken outside the lock: a waker that polls at once, or drops its task (and with it
        // the call's `Waiting`, which takes the lock), must not find it held.
        let waiting = std::mem::take(&mut *self.waiting());
        for (_, waker) in waiting {
            waker.wake();
        }
    }

    /// Whether [`Cancel::cancel`] was called on this or a clone.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Runs `work` until it ends or this is cancelled, whichever comes first; once cancelled,
    /// `work` is not polled again (a call polled once more might write what the cancel was
    /// meant to stop) and is dropped. A cancel during a poll that ends the work leaves its
    /// outcome as it is: what it did is done.
    ///
    /// # Errors
    /// What `work` fails with; [`Error::Cancelled`] when cancelled first.
    pub async fn run<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        self.run_dyn(pin!(work)).await
    }

    /// [`Cancel::run`] for any work of one outcome type (one copy of it for all of them).
    async fn run_dyn<T>(&self, mut work: Pin<&mut dyn Future<Output = Result<T>>>) -> Result<T> {
        let number = self.inner.next.fetch_add(1, Ordering::Relaxed);
        // Its waker goes when the call ends or is dropped.
        let _waiting = Waiting(self, number);
        poll_fn(|cx| {
            {
                let mut waiting = self.waiting();
                // Checked under the lock a cancel drains: no cancel slips between.
                if self.is_cancelled() {
                    return Poll::Ready(Err(Error::Cancelled));
                }
                match waiting.iter_mut().find(|(n, _)| *n == number) {
                    Some((_, waker)) => waker.clone_from(cx.waker()),
                    None => waiting.push((number, cx.waker().clone())),
                }
            }
            match work.as_mut().poll(cx) {
                Poll::Pending if self.is_cancelled() => Poll::Ready(Err(Error::Cancelled)),
                polled => polled,
            }
        })
        .await
    }

    fn waiting(&self) -> MutexGuard<'_, Vec<(u64, Waker)>> {
        self.inner.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A call waiting in [`Cancel::run`], by its number: its waker goes when this does.
struct Waiting<'a>(&'a Cancel, u64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting().retain(|(n, _)| *n != self.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use futures::future::{pending, ready};

    #[test]
    fn a_call_that_ends_first_gives_its_outcome() {
        let cancel = Cancel::new();
        assert_eq!(block_on(cancel.run(ready(Ok(7)))).unwrap(), 7);
        let failed = block_on(cancel.run(ready(Err::<(), _>(Error::AutoSyncRunning))));
        assert!(matches!(failed, Err(Error::AutoSyncRunning)));
        assert!(
            cancel.waiting().is_empty(),
            "a finished call leaves no handle"
        );
    }

    #[test]
    fn a_cancel_from_another_thread_stops_a_call_that_would_never_end() {
        let cancel = Cancel::new();
        let from_afar = cancel.clone();
        let canceller = std::thread::spawn(move || {
            // Only once the call is waiting, so the cancel must wake it.
            while from_afar.waiting().is_empty() {
                std::thread::yield_now();
            }
            from_afar.cancel();
        });
        let outcome = block_on(cancel.run(pending::<Result<()>>()));
        canceller.join().unwrap();
        assert!(matches!(outcome, Err(Error::Cancelled)));
        assert!(cancel.is_cancelled());
    }

    #[test]
    fn once_cancelled_a_call_is_never_polled() {
        let cancel = Cancel::new();
        cancel.cancel();
        let polled = AtomicBool::new(false);
        let work = async {
            polled.store(true, Ordering::SeqCst);
            Ok(())
        };
        assert!(matches!(block_on(cancel.run(work)), Err(Error::Cancelled)));
        assert!(!polled.load(Ordering::SeqCst));
    }

    #[test]
    fn a_cancel_during_a_poll_keeps_the_call_from_being_polled_again() {
        // A progress callback that cancels: the call is not polled once more.
        let cancel = Cancel::new();
        let polls = std::cell::Cell::new(0);
        let work = futures::future::poll_fn(|cx| {
            polls.set(polls.get() + 1);
            cancel.cancel();
            cx.waker().wake_by_ref();
            std::task::Poll::<Result<()>>::Pending
        });
        assert!(matches!(block_on(cancel.run(work)), Err(Error::Cancelled)));
        assert_eq!(polls.get(), 1);
    }
}
