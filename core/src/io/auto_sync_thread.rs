//! A background sync on a thread of its own, for bindings whose host gives the loop no place
//! to run (Python, Kotlin, Swift): the thread runs [`Session::run_auto_sync`] on a
//! single-threaded tokio runtime (the transports' sleeps and the built-in HTTP client need
//! one; a host transport's calls complete from the app's side and wake it).
//!
//! [`AutoSyncThread::stop`] may be called from anywhere, the loop's own thread included (a
//! listener that stops the sync, or releases the last reference to the vault): there it does
//! not wait, and the loop ends as soon as the listener returns.

use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::error::{Error, Result};
use crate::io::auto_sync::{AutoSyncOptions, Event};
use crate::io::driver::Transport;
use crate::io::session::Session;

/// The thread of one session's background sync, if one was started.
#[derive(Debug, Default)]
pub struct AutoSyncThread {
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl AutoSyncThread {
    fn locked(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.thread.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts `session`'s background sync on a new thread. It is registered before this
    /// returns, so a [`AutoSyncThread::stop`] right after reaches it. `on_event` is called on
    /// that thread.
    ///
    /// # Errors
    /// `Conflict` when a background sync runs already on the session (from here or
    /// elsewhere); `Config` when the session is closed or no thread can be started.
    pub fn start<T>(
        &self,
        session: &Arc<Session>,
        transport: Arc<T>,
        options: AutoSyncOptions,
        on_event: impl FnMut(Event) + Send + 'static,
    ) -> Result<()>
    where
        T: Transport + Send + Sync + ?Sized + 'static,
    {
        let mut running = self.locked();
        if running.as_ref().is_some_and(|t| !t.is_finished()) {
            return Err(Error::AutoSyncRunning);
        }
        if let Some(ended) = running.take() {
            let _ = ended.join();
        }
        let run = session.prepare_auto_sync()?;
        let session = session.clone();
        let thread = std::thread::Builder::new()
            .name("bucketsync-auto-sync".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    // Ends at a stop or when the session closes.
                    let _ = runtime.block_on(session.run_auto_sync(
                        run,
                        &*transport,
                        options,
                        on_event,
                    ));
                }
            })
            .map_err(|e| Error::Config(format!("cannot start a thread: {e}")))?;
        *running = Some(thread);
        Ok(())
    }

    /// Stops `session`'s background sync and waits for its thread to end: no request goes
    /// out after this returns. From the loop's own thread it only asks the loop to stop (it
    /// ends when the listener that called this returns) and [`AutoSyncThread::is_running`]
    /// stays true until then. Does nothing when none runs.
    pub fn stop(&self, session: &Session) {
        // Signalled under the lock, so that a start on another thread cannot register a new
        // loop between the signal and the taking of the handle (whose join would then wait
        // for a loop nobody stopped).
        let mut running = self.locked();
        session.stop_auto_sync();
        let own = running
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if own {
            return;
        }
        let thread = running.take();
        drop(running);
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }

    /// Whether the thread runs (a stopped loop counts until its thread has ended).
    pub fn is_running(&self) -> bool {
        self.locked().as_ref().is_some_and(|t| !t.is_finished())
    }
}
