//! Who hears a vault's background sync: the listener given when the sync starts (the
//! primary, id 0) and any number added later (ids from 1, for `events()` streams). Each binding
//! keeps one of these per vault and says how to call a listener; the registry decides who is
//! called, in which order, and that one listener failing (or panicking) keeps none of the others
//! from hearing the event.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::Result;

/// The id of the listener given to a start.
pub const PRIMARY: u64 = 0;

/// A vault's listeners, shared between the app's threads and the loop's.
#[derive(Debug)]
pub struct Listeners<L> {
    inner: Mutex<Registry<L>>,
    /// Held through a whole [`Listeners::start_with`], so that two starts at once cannot put
    /// back each other's primary.
    starting: Mutex<()>,
}

#[derive(Debug)]
struct Registry<L> {
    next: u64,
    /// By id: the primary first, then in the order they were added (ids only grow). A list,
    /// not a map: there are a handful, and it keeps the wasm module small.
    by_id: Vec<(u64, Arc<L>)>,
}

impl<L> Default for Listeners<L> {
    fn default() -> Self {
        Listeners {
            inner: Mutex::new(Registry {
                next: PRIMARY,
                by_id: Vec::new(),
            }),
            starting: Mutex::new(()),
        }
    }
}

impl<L> Listeners<L> {
    fn locked(&self) -> MutexGuard<'_, Registry<L>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `primary` the listener of the sync that `start` starts (none: no primary), then
    /// starts it. When `start` fails (a sync runs already), the primary it replaced is put
    /// back, so the running loop keeps its own listener.
    ///
    /// # Errors
    /// What `start` returns.
    pub fn start_with<T>(
        &self,
        primary: Option<L>,
        start: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let _one_start = self.starting.lock().unwrap_or_else(|p| p.into_inner());
        let replaced = self.set_primary(primary.map(Arc::new));
        let started = start();
        if started.is_err() {
            self.set_primary(replaced);
        }
        started
    }

    /// Sets the primary listener (or removes it); returns the one it replaced.
    fn set_primary(&self, listener: Option<Arc<L>>) -> Option<Arc<L>> {
        let mut registry = self.locked();
        let replaced = match registry.by_id.first() {
            Some((PRIMARY, _)) => Some(registry.by_id.remove(0).1),
            _ => None,
        };
        if let Some(listener) = listener {
            registry.by_id.insert(0, (PRIMARY, listener));
        }
        replaced
    }

    /// Adds a listener that hears every event from now on; returns its id (never
    /// [`PRIMARY`]).
    pub fn add(&self, listener: L) -> u64 {
        let mut registry = self.locked();
        registry.next += 1;
        let id = registry.next;
        registry.by_id.push((id, Arc::new(listener)));
        id
    }

    /// Removes the listener `add` returned `id` for; the primary and unknown ids are left
    /// alone. An event being delivered at that moment may still reach it.
    pub fn remove(&self, id: u64) {
        if id != PRIMARY {
            self.locked().by_id.retain(|(other, _)| *other != id);
        }
    }

    /// The vault closes: the primary listener is dropped, and `call` is called for each of the
    /// others (to tell it that no event will come; each then removes itself or is dropped
    /// with the registry).
    pub fn close(&self, call: impl FnMut(&L)) {
        self.set_primary(None);
        self.each(call);
    }

    /// Whether anyone listens.
    pub fn is_empty(&self) -> bool {
        self.locked().by_id.is_empty()
    }

    /// Calls `call` for every listener, primary first, then in the order they were added.
    /// The registry is not locked meanwhile (a listener may add or remove listeners); a
    /// listener whose call panics is passed over and the others still hear the event.
    pub fn each(&self, mut call: impl FnMut(&L)) {
        let targets: Vec<Arc<L>> = self.locked().by_id.iter().map(|(_, l)| l.clone()).collect();
        for listener in targets {
            // Where panics abort (wasm), there is nothing to catch.
            #[cfg(panic = "unwind")]
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| call(&listener)));
            #[cfg(not(panic = "unwind"))]
            call(&listener);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_failed_start_keeps_the_running_loops_listener() {
        let listeners = Listeners::default();
        listeners.start_with(Some("first"), || Ok(())).unwrap();
        let refused = listeners.start_with(Some("second"), || Err::<(), _>(Error::AutoSyncRunning));
        assert!(refused.is_err());
        let mut heard = Vec::new();
        listeners.each(|l| heard.push(*l));
        assert_eq!(heard, ["first"]);
        // A later start with none leaves no primary.
        listeners.start_with(None, || Ok(())).unwrap();
        assert!(listeners.is_empty());
    }

    #[test]
    fn every_listener_hears_though_one_panics_and_ids_start_at_one() {
        let listeners: Listeners<usize> = Listeners::default();
        listeners.start_with(Some(0), || Ok(())).unwrap();
        let a = listeners.add(1);
        let b = listeners.add(2);
        assert_eq!((a, b), (1, 2));
        let calls = AtomicUsize::new(0);
        listeners.each(|l| {
            calls.fetch_add(1, Ordering::SeqCst);
            assert_ne!(*l, 1, "listener 1 fails");
        });
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        listeners.remove(a);
        listeners.remove(PRIMARY);
        let mut heard = Vec::new();
        listeners.each(|l| heard.push(*l));
        assert_eq!(heard, [0, 2], "the primary is not removed by remove");
        let mut ended = Vec::new();
        listeners.close(|l| ended.push(*l));
        assert_eq!(ended, [2], "closing tells the added listeners only");
    }
}
