//! Background sync: a session syncing on its own, as the [`Schedule`] says, telling the app
//! what changed through [`Event`]s.
//!
//! [`Session::auto_sync`] is one future that runs until [`Session::stop_auto_sync`] (or the
//! session closes). It brings no runtime and no timer of its own: it waits with the
//! transport's [`Transport::sleep`], so each binding runs it where its platform runs futures
//! (a thread of its own, a coroutine, a task, the browser's event loop). What the app knows and
//! the loop cannot see it tells with [`Session::notify`] (the network lost or back, the app
//! sent to the background, new credentials); the session's own writes tell it themselves.
//!
//! Each sync is a poll ([`SyncKind::Poll`]): one conditional GET of the vault's change hint
//! while nothing was published, a full sync when something was, when local writes wait, after a
//! failure, and every [`SchedulePolicy::full_sync_interval_ms`] whatever the hint says.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::channel::mpsc;
use futures::future::{self, Either};
use futures::StreamExt;

use crate::error::{Category, Error, Result};
use crate::io::driver::{Progress, SyncKind, Transport, DEFAULT_CONCURRENCY};
use crate::io::session::{Session, Signal, Signals};
use crate::report::SyncReport;
use crate::schedule::{Due, Ended, Happening, Schedule, SchedulePolicy, ScheduleState};
use crate::settings::not_a_count;

/// The longest single wait: the loop looks again at least this often (a phone that slept, a
/// clock that jumped, a session closed meanwhile).
const MAX_WAIT_MS: u64 = 60_000;

/// How a background sync runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoSyncOptions {
    /// When syncs are due.
    pub policy: SchedulePolicy,
    /// At most this many requests in flight at once.
    pub concurrency: usize,
}

impl Default for AutoSyncOptions {
    fn default() -> Self {
        AutoSyncOptions {
            policy: SchedulePolicy::default(),
            concurrency: DEFAULT_CONCURRENCY,
        }
    }
}

/// A background sync's timings in seconds, as the bindings take them from apps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AutoSyncSeconds {
    /// [`SchedulePolicy::interval_ms`].
    pub interval: f64,
    /// [`SchedulePolicy::debounce_ms`] (the longest debounce becomes this when longer than
    /// the default's).
    pub debounce: f64,
    /// [`SchedulePolicy::full_sync_interval_ms`].
    pub full_sync_interval: f64,
    /// [`SchedulePolicy::background_interval_ms`].
    pub background_interval: f64,
}

impl Default for AutoSyncSeconds {
    /// [`SchedulePolicy::default`]'s timings: a poll every 30 s, a debounce of 1 s, a full
    /// sync every 600 s, and every 300 s in the background.
    fn default() -> Self {
        let policy = SchedulePolicy::default();
        let seconds = |ms: u64| ms as f64 / 1000.0;
        AutoSyncSeconds {
            interval: seconds(policy.interval_ms),
            debounce: seconds(policy.debounce_ms),
            full_sync_interval: seconds(policy.full_sync_interval_ms),
            background_interval: seconds(policy.background_interval_ms),
        }
    }
}

impl AutoSyncSeconds {
    /// The timings an app gave, each omitted one at its default.
    pub fn given(
        interval: Option<f64>,
        debounce: Option<f64>,
        full_sync_interval: Option<f64>,
        background_interval: Option<f64>,
    ) -> Self {
        let defaults = AutoSyncSeconds::default();
        AutoSyncSeconds {
            interval: interval.unwrap_or(defaults.interval),
            debounce: debounce.unwrap_or(defaults.debounce),
            full_sync_interval: full_sync_interval.unwrap_or(defaults.full_sync_interval),
            background_interval: background_interval.unwrap_or(defaults.background_interval),
        }
    }
}

impl AutoSyncOptions {
    /// Options from timings in seconds; `names` are what the app calls the four settings (in
    /// the order of [`AutoSyncSeconds`]' fields), for the error.
    ///
    /// # Errors
    /// `Config` naming the first setting that is not a finite number of seconds > 0.
    pub fn from_seconds(seconds: AutoSyncSeconds, names: [&str; 4]) -> Result<Self> {
        let millis = |name: &str, seconds: f64| {
            if seconds.is_finite() && seconds > 0.0 {
                Ok((seconds * 1000.0).round().max(1.0) as u64)
            } else {
                Err(Error::Config(format!(
                    "{name} must be a number of seconds > 0, not {}",
                    not_a_count(seconds)
                )))
            }
        };
        let [interval, debounce, full_sync_interval, background_interval] = names;
        let defaults = SchedulePolicy::default();
        let debounce_ms = millis(debounce, seconds.debounce)?;
        Ok(AutoSyncOptions {
            policy: SchedulePolicy {
                interval_ms: millis(interval, seconds.interval)?,
                background_interval_ms: millis(background_interval, seconds.background_interval)?,
                debounce_ms,
                max_debounce_ms: defaults.max_debounce_ms.max(debounce_ms),
                full_sync_interval_ms: millis(full_sync_interval, seconds.full_sync_interval)?,
                backoff: defaults.backoff,
            },
            ..AutoSyncOptions::default()
        })
    }
}

/// What a background sync tells the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// These keys changed here because of a sync (another device wrote or deleted them):
    /// what the app should show anew. The app's own writes are not announced.
    Changed(Vec<Vec<u8>>),
    /// These keys met a concurrent write by another device: one of the two lost, both are in
    /// the key's history.
    Conflict(Vec<Vec<u8>>),
    /// The background sync is now in this state (sent when it changes).
    State(ScheduleState),
    /// How far the running sync has come. Not sent for a poll that ends at the change hint.
    Progress(Progress),
}

/// A background sync registered with its session ([`Session::prepare_auto_sync`]) and not
/// yet run: signals sent to the session from now on (a stop, a network change) wait for the
/// loop. Dropping it unregisters it.
#[derive(Debug)]
pub struct AutoSyncRun {
    signals: Signals,
    stopped: Arc<AtomicBool>,
}

/// Calls the app's listener; one that panics breaks nothing (its event is lost). Once the
/// loop is asked to stop it is called no more, even while the loop finishes what it was doing
/// (a listener may stop the loop in the middle of a sync that then completes).
struct Listener<F: FnMut(Event)> {
    on_event: RefCell<F>,
    shown: RefCell<Option<ScheduleState>>,
    stopped: Arc<AtomicBool>,
}

impl<F: FnMut(Event)> Listener<F> {
    fn emit(&self, event: Event) {
        if self.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(mut on_event) = self.on_event.try_borrow_mut() else {
            // The listener itself caused this event (it synced from inside the callback).
            return;
        };
        let call = std::panic::AssertUnwindSafe(|| on_event(event));
        let _ = std::panic::catch_unwind(call);
    }

    fn show(&self, state: ScheduleState) {
        if self.shown.replace(Some(state)) != Some(state) {
            self.emit(Event::State(state));
        }
    }
}

impl Session {
    /// Syncs in the background until [`Session::stop_auto_sync`] or [`Session::close`], as
    /// `options.policy` says, calling `on_event` with what changed and how the sync goes. At
    /// most one runs per session. Dropping the future stops it too, safely (see
    /// [`Session::sync`]).
    ///
    /// A sync that fails does not end the loop: it is reported as [`Event::State`] with the
    /// error's category, and tried again as the schedule says.
    ///
    /// # Errors
    /// `Conflict` when a background sync already runs on this session; `Config` when the
    /// session is closed.
    pub async fn auto_sync<T: Transport + ?Sized>(
        &self,
        transport: &T,
        options: AutoSyncOptions,
        on_event: impl FnMut(Event),
    ) -> Result<()> {
        let run = self.prepare_auto_sync()?;
        self.run_auto_sync(run, transport, options, on_event).await
    }

    /// Registers a background sync without running it yet, so that a binding can start its
    /// thread or task and still fail at once when one runs already; and so that a
    /// [`Session::stop_auto_sync`] that comes before the loop has begun stops it. Run it with
    /// [`Session::run_auto_sync`] on this same session.
    ///
    /// # Errors
    /// As [`Session::auto_sync`].
    pub fn prepare_auto_sync(&self) -> Result<AutoSyncRun> {
        let (signals, stopped) = self.begin_auto_sync()?;
        Ok(AutoSyncRun { signals, stopped })
    }

    /// Runs a background sync that [`Session::prepare_auto_sync`] registered on this session:
    /// [`Session::auto_sync`] in two steps.
    ///
    /// # Errors
    /// `Config` when the session is closed.
    pub async fn run_auto_sync<T: Transport + ?Sized>(
        &self,
        run: AutoSyncRun,
        transport: &T,
        options: AutoSyncOptions,
        on_event: impl FnMut(Event),
    ) -> Result<()> {
        let AutoSyncRun {
            mut signals,
            stopped,
        } = run;
        let seed = self
            .device()
            .map(|d| u64::from_le_bytes(d.0[..8].try_into().expect("8 bytes")))
            .unwrap_or_default();
        let mut schedule = Schedule::new(options.policy, self.now(), seed);
        let listener = Listener {
            on_event: RefCell::new(on_event),
            shown: RefCell::new(None),
            stopped,
        };
        loop {
            // Take in everything that happened meanwhile.
            loop {
                match signals.try_recv() {
                    Ok(Signal::Happened(happening)) => schedule.handle(happening, self.now()),
                    Ok(Signal::Stop) | Err(mpsc::TryRecvError::Closed) => return Ok(()),
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if self.is_closed() {
                return Ok(());
            }
            listener.show(schedule.state());
            let now = self.now();
            let wait_ms = match schedule.due(now) {
                Due::At(at) if at <= now => {
                    if !self
                        .one_sync(transport, &options, &mut schedule, &mut signals, &listener)
                        .await
                    {
                        return Ok(());
                    }
                    continue;
                }
                Due::At(at) => (at.0 - now.0).min(MAX_WAIT_MS),
                Due::Waiting => MAX_WAIT_MS,
            };
            let sleep = std::pin::pin!(transport.sleep(wait_ms));
            match future::select(sleep, signals.next()).await {
                Either::Left(((), _)) => {}
                Either::Right((Some(Signal::Happened(happening)), _)) => {
                    schedule.handle(happening, self.now());
                }
                Either::Right((Some(Signal::Stop) | None, _)) => return Ok(()),
            }
        }
    }

    /// Runs one sync of the loop; `false` when the loop was stopped meanwhile.
    async fn one_sync<T: Transport + ?Sized, F: FnMut(Event)>(
        &self,
        transport: &T,
        options: &AutoSyncOptions,
        schedule: &mut Schedule,
        signals: &mut Signals,
        listener: &Listener<F>,
    ) -> bool {
        let now = self.now();
        let full = schedule.wants_full_sync(now);
        schedule.handle(Happening::SyncStarted, now);
        if full {
            listener.show(ScheduleState::Syncing);
        }
        let kind = SyncKind::Poll { list_anyway: full };
        // A poll shows itself only once it goes past the change hint.
        let progress = |p: Progress| {
            if full || p.requests_total > 1 {
                listener.show(ScheduleState::Syncing);
                listener.emit(Event::Progress(p));
            }
        };
        let mut sync = std::pin::pin!(self.sync_of(transport, kind, options.concurrency, progress));
        let result = loop {
            match future::select(sync.as_mut(), signals.next()).await {
                Either::Left((result, _)) => break result,
                Either::Right((Some(Signal::Happened(happening)), _)) => {
                    schedule.handle(happening, self.now());
                }
                Either::Right((Some(Signal::Stop) | None, _)) => {
                    // Dropping the sync abandons it safely; the next one resumes.
                    schedule.handle(Happening::SyncEnded(Ended::Cancelled), self.now());
                    return false;
                }
            }
        };
        let end = self.now();
        schedule.handle(Happening::SyncEnded(Ended::of(&result)), end);
        if matches!(&result, Ok(r) if !r.hint_unchanged) {
            schedule.note_full_sync(end);
        }
        if let Some(report) = self.report_of(&result) {
            if !report.changed.is_empty() {
                listener.emit(Event::Changed(report.changed.clone()));
            }
            if !report.conflicts.is_empty() {
                listener.emit(Event::Conflict(report.conflicts.clone()));
            }
        }
        listener.show(schedule.state());
        true
    }

    /// The report of the sync that gave `result`: a failed sync may have merged changes
    /// before it failed (its partial report), unless it never started.
    fn report_of(&self, result: &Result<SyncReport>) -> Option<SyncReport> {
        match result {
            Ok(report) => Some(report.clone()),
            Err(Error::SyncInProgress | Error::Cancelled) => None,
            Err(e) if e.category() == Category::Config && self.is_closed() => None,
            Err(_) => self.last_report(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn omitted_timings_are_the_schedule_defaults() {
        let names = ["a", "b", "c", "d"];
        let given = AutoSyncSeconds::given(None, None, None, None);
        assert_eq!(given, AutoSyncSeconds::default());
        let options = AutoSyncOptions::from_seconds(given, names).unwrap();
        assert_eq!(options.policy, SchedulePolicy::default());
        let some = AutoSyncSeconds::given(Some(5.0), None, None, Some(60.0));
        let policy = AutoSyncOptions::from_seconds(some, names).unwrap().policy;
        assert_eq!(
            (policy.interval_ms, policy.background_interval_ms),
            (5_000, 60_000)
        );
        assert_eq!(policy.debounce_ms, SchedulePolicy::default().debounce_ms);
    }
}
