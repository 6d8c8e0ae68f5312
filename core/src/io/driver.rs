//! A small async driver: runs an [`Engine`] sync against a [`Transport`].
//!
//! It uses `futures` only and brings no runtime: await it on any executor (tokio, a browser's
//! microtasks, `futures::executor::block_on`).

use std::future::Future;

use futures::stream::{FuturesUnordered, StreamExt};

use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{Request, RequestKind, Response};
use crate::ids::Timestamp;
use crate::report::SyncReport;

/// Executes request descriptions. One method: a platform implementation is a page of field
/// mapping.
pub trait Transport {
    /// Sends `request` and returns the response, whatever its status. Fails only when no
    /// response arrived, with a `Network` or `Timeout` [`Error::Transport`].
    fn send(&self, request: Request) -> impl Future<Output = Result<Response>>;

    /// Waits `ms` milliseconds: the driver's only timer, used for retry backoff.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;
}

/// A shared transport (a binding keeps one per vault and lends it to each operation).
impl<T: Transport + ?Sized> Transport for std::sync::Arc<T> {
    fn send(&self, request: Request) -> impl Future<Output = Result<Response>> {
        (**self).send(request)
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        (**self).sleep(ms)
    }
}

/// How many requests the driver keeps in flight at once, unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;

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
    progress: impl FnMut(Progress),
) -> Result<SyncReport> {
    let mut steps = Bare { engine, now };
    run(&mut steps, transport, SyncKind::Full, concurrency, progress).await
}

/// A poll of `engine` ([`SyncKind::Poll`]): the vault's change hint first, and a full sync
/// only when it moved, local writes wait, or `list_anyway`.
///
/// # Errors
/// As [`sync`].
pub async fn poll<T: Transport + ?Sized>(
    engine: &mut Engine,
    transport: &T,
    now: impl Fn() -> Timestamp,
    list_anyway: bool,
) -> Result<SyncReport> {
    let mut steps = Bare { engine, now };
    let kind = SyncKind::Poll { list_anyway };
    run(&mut steps, transport, kind, DEFAULT_CONCURRENCY, |_| {}).await
}

/// What kind of sync to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncKind {
    /// List the manifests, pull, push: [`Engine::start_sync`].
    Full,
    /// Read the vault's change hint first and stop there when nothing was published since the
    /// last poll and nothing waits to be pushed (one conditional GET); otherwise go on as a
    /// full sync. With `list_anyway`, always go on (and learn the hint's ETag for the next
    /// poll). See [`Engine::start_poll`].
    Poll {
        /// Go on into a full sync whatever the hint says.
        list_anyway: bool,
    },
}

/// How the driver reaches the engine: each step runs with the engine in hand and returns; the
/// driver never holds it across an `.await`, so a host may keep it behind a lock and persist
/// after every step (see [`crate::io::session`]).
pub(crate) trait Steps {
    /// Runs `step` on the engine. `durable`: what the step produced must be durable before the
    /// requests it handed out are sent (a segment about to be PUT).
    fn step<R>(&mut self, step: impl FnOnce(&mut Engine) -> R) -> Result<R>;

    /// Makes what the steps so far produced durable, before a request the engine sealed a
    /// segment for goes out.
    fn make_durable(&mut self) -> Result<()>;

    /// The wall clock.
    fn now(&self) -> Timestamp;

    /// Called when the loop ends early (an error, or the future dropped mid-sync): the sync
    /// is abandoned, nothing is lost.
    fn abandon(&mut self);
}

/// A bare engine, borrowed for the whole sync, with nothing to persist.
struct Bare<'a, N> {
    engine: &'a mut Engine,
    now: N,
}

impl<N: Fn() -> Timestamp> Steps for Bare<'_, N> {
    fn step<R>(&mut self, step: impl FnOnce(&mut Engine) -> R) -> Result<R> {
        Ok(step(self.engine))
    }

    fn make_durable(&mut self) -> Result<()> {
        Ok(())
    }

    fn now(&self) -> Timestamp {
        (self.now)()
    }

    fn abandon(&mut self) {
        self.engine.cancel_sync();
    }
}

/// Abandons the sync if the loop ends before the outcome was taken (an error or a drop).
struct Abandon<'a, S: Steps> {
    steps: &'a mut S,
    armed: bool,
}

impl<S: Steps> Drop for Abandon<'_, S> {
    fn drop(&mut self) {
        if self.armed {
            self.steps.abandon();
        }
    }
}

/// The one sync loop: hand out requests up to `concurrency`, send them, feed the answers back,
/// wait out retry backoffs, and take the outcome.
pub(crate) async fn run<S: Steps, T: Transport + ?Sized>(
    steps: &mut S,
    transport: &T,
    kind: SyncKind,
    concurrency: usize,
    mut progress: impl FnMut(Progress),
) -> Result<SyncReport> {
    let now = steps.now();
    steps.step(|engine| match kind {
        SyncKind::Full => engine.start_sync(now),
        SyncKind::Poll { list_anyway } => engine.start_poll(now, list_anyway),
    })??;
    let mut guard = Abandon { steps, armed: true };
    let steps = &mut *guard.steps;
    let mut in_flight = FuturesUnordered::new();
    let mut seen = Progress::default();
    loop {
        let room = concurrency.max(1).saturating_sub(in_flight.len());
        let now = steps.now();
        let batch = steps.step(|engine| {
            std::iter::from_fn(|| engine.poll_request(now))
                .take(room)
                .collect::<Vec<_>>()
        })?;
        // What these PUTs rely on (a pending segment, an issued manifest or checkpoint number)
        // is on disk before they go out, also across a power loss.
        if batch.iter().any(|r| {
            matches!(
                r.kind,
                RequestKind::PutSegment | RequestKind::PutManifest | RequestKind::PutCheckpoint
            )
        }) {
            steps.make_durable()?;
        }
        for request in batch {
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
                let now = steps.now();
                steps.step(|engine| engine.handle_response(id, response, now))?;
            }
            None => match steps.step(|engine| engine.poll_timeout())? {
                Some(due) => transport.sleep(due.0.saturating_sub(steps.now().0)).await,
                None => break,
            },
        }
    }
    let outcome = steps.step(|engine| engine.poll_outcome())?;
    guard.armed = outcome.is_none();
    outcome.unwrap_or_else(|| {
        // Nothing in flight and nothing to send, yet no outcome: never expected; fail loudly
        // rather than hang.
        Err(Error::Transport {
            category: Category::Server,
            message: "sync stalled with no request outstanding".into(),
        })
    })
}
