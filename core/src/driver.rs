//! A small async driver: runs an [`Engine`] sync against a [`Transport`].
//!
//! It uses `futures` only and brings no runtime: await it on any executor (tokio, a browser's
//! microtasks, `futures::executor::block_on`).

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::error::{Category, Error, Result};
use crate::http::{Request, Response};
use crate::ids::Timestamp;
use crate::report::SyncReport;
use crate::Engine;

/// Executes request descriptions. One method: a platform implementation is a page of field
/// mapping.
pub trait Transport {
    /// Sends `request` and returns the response, whatever its status. Fails only when no
    /// response arrived, with a `Network` or `Timeout` [`Error::Transport`].
    fn send(&self, request: Request) -> impl Future<Output = Result<Response>>;

    /// Waits `ms` milliseconds: the driver's only timer, used for retry backoff.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// How many requests the driver keeps in flight at once, unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

struct CancelOnDrop<'a>(&'a mut Engine);

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        // A no-op when the sync finished; abandons it when the future was dropped early.
        self.0.cancel_sync();
    }
}

/// How far a sync has come, for progress bars.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Requests answered (or failed) so far.
    pub requests_done: u64,
    /// Requests handed out so far; grows as the sync learns what it needs.
    pub requests_total: u64,
    /// Request body bytes sent so far.
    pub bytes_sent: u64,
    /// Response body bytes received so far.
    pub bytes_received: u64,
}

/// Runs one sync of `engine` over `transport`, with at most `concurrency` requests in flight.
/// `now` reads the caller's wall clock.
///
/// # Errors
/// The error that stopped the sync (the partial report is in [`Engine::last_report`]), or
/// `SyncInProgress` when a sync is already running on this engine.
pub async fn sync<T: Transport + ?Sized>(
    engine: &mut Engine,
    transport: &T,
    now: impl Fn() -> Timestamp,
    concurrency: usize,
) -> Result<SyncReport> {
    sync_with_progress(engine, transport, now, concurrency, |_| {}).await
}

/// [`sync`], calling `progress` after every request handed out and every answer.
///
/// # Errors
/// As [`sync`].
pub async fn sync_with_progress<T: Transport + ?Sized>(
    engine: &mut Engine,
    transport: &T,
    now: impl Fn() -> Timestamp,
    concurrency: usize,
    mut progress: impl FnMut(Progress),
) -> Result<SyncReport> {
    engine.start_sync(now())?;
    // If this future is dropped mid-sync, the engine must not stay "syncing".
    let guard = CancelOnDrop(engine);
    let engine = &mut *guard.0;
    let mut in_flight = FuturesUnordered::new();
    let mut seen = Progress::default();
    loop {
        while in_flight.len() < concurrency.max(1) {
            let Some(request) = engine.poll_request(now()) else {
                break;
            };
            seen.requests_total += 1;
            seen.bytes_sent += request.body.len() as u64;
            progress(seen);
            let id = request.id;
            in_flight.push(async move { (id, transport.send(request).await) });
        }
        match in_flight.next().await {
            Some((id, response)) => {
                seen.requests_done += 1;
                if let Ok(r) = &response {
                    seen.bytes_received += r.body.len() as u64;
                }
                progress(seen);
                engine.handle_response(id, response, now());
            }
            None => match engine.poll_timeout() {
                Some(due) => transport.sleep(due.0.saturating_sub(now().0)).await,
                None => break,
            },
        }
    }
    engine.poll_outcome().unwrap_or_else(|| {
        // Nothing in flight and nothing to send, yet no outcome: never expected; fail loudly
        // rather than hang.
        engine.cancel_sync();
        Err(Error::Transport {
            category: Category::Server,
            message: "sync stalled with no request outstanding".into(),
        })
    })
}
