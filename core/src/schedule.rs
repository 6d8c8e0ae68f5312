//! When the next sync is due: the policy every binding's background sync follows.
//!
//! Sans-IO like the engine: [`Schedule`] is told what happened ([`Happening`]: a local write, a
//! sync that started or ended, the network lost or back, the app sent to the background or
//! brought back, something the app changed) and the time, and answers when a sync is due
//! ([`Schedule::due`]). A binding only sleeps until that time, in its own idiom, runs the sync,
//! and tells the schedule how it ended. Nothing here reads a clock or sleeps, so the rules are
//! tested on a made-up clock.
//!
//! The rules:
//! - one sync at a time: while one runs, none is due;
//! - every `interval` after the last sync ended (`background_interval` while the app is in the
//!   background);
//! - soon after a local write: `debounce` after the last of a burst of writes, but no later than
//!   `max_debounce` after the first, so a steady stream of writes still syncs;
//! - after a failure that may pass (network, timeout, throttled, server, a busy state), again
//!   after an exponential backoff with jitter, capped; a local write does not cut a backoff short;
//! - after a failure that waiting cannot fix (the store refused the credentials, the
//!   configuration is wrong, the key belongs to another vault, there is no vault there, a push
//!   that deletes too much waits for the app's confirmation), no sync until something changes:
//!   the app says so ([`Happening::Changed`], new credentials), the network comes back, or the
//!   app comes back to the foreground; a change during the failing sync counts too;
//! - a cancelled sync is no failure: what was due stays due;
//! - while offline, none; when the network comes back, one at once;
//! - a sync is a cheap poll of the vault's change hint unless a full one is due
//!   ([`Schedule::wants_full_sync`]): the first, the first after a failure, and one every
//!   `full_sync_interval` whatever the hint says (so a hint that is lost or frozen only
//!   delays);
//! - times are wall-clock readings: one earlier than the last sync's end (the date was set
//!   back) counts as that end, so a clock set back delays nothing.
//!
//! A schedule starts online and in the foreground: a binding that starts hidden or offline says
//! so at once.

use crate::error::{Category, Error};
use crate::ids::Timestamp;
use crate::retry::RetryPolicy;

/// The timings of a [`Schedule`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedulePolicy {
    /// Between syncs while nothing happens, in the foreground (ms).
    pub interval_ms: u64,
    /// Between syncs while the app is in the background or the page hidden (ms).
    pub background_interval_ms: u64,
    /// How long after the last of a burst of local writes the sync waits (ms).
    pub debounce_ms: u64,
    /// The longest a local write waits for its sync, however many follow it (ms).
    pub max_debounce_ms: u64,
    /// The longest time between two full syncs (a listing of the manifests), however quiet
    /// the change hint is (ms).
    pub full_sync_interval_ms: u64,
    /// Backoff after failures that may pass: `base_delay_ms` doubling up to `max_delay_ms`,
    /// each delay between half and all of that (`max_attempts` is not used: a schedule keeps
    /// trying).
    pub backoff: RetryPolicy,
}

impl Default for SchedulePolicy {
    fn default() -> Self {
        SchedulePolicy {
            interval_ms: 30_000,
            background_interval_ms: 300_000,
            debounce_ms: 1_000,
            max_debounce_ms: 10_000,
            full_sync_interval_ms: 600_000,
            backoff: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay_ms: 2_000,
                max_delay_ms: 300_000,
            },
        }
    }
}

/// What happened, as a [`Schedule`] is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Happening {
    /// The app wrote or deleted a record (or stored a file).
    LocalWrite,
    /// The binding started a sync.
    SyncStarted,
    /// The sync ended (see [`Ended::of`]).
    SyncEnded(Ended),
    /// The device lost its network (a browser's `offline`, a phone's connectivity callback).
    NetworkLost,
    /// The network is back.
    NetworkBack,
    /// The app went to the background, or the page was hidden.
    Background,
    /// The app came back to the foreground, or the page is visible again.
    Foreground,
    /// The app changed something a failed sync may have depended on (new credentials, a new
    /// store): a sync is due at once, even after a failure that waiting cannot fix.
    Changed,
}

/// How a sync ended, as the schedule sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It succeeded.
    Done,
    /// It failed in a way that may pass: tried again after a backoff.
    Failed(Category),
    /// It failed in a way that repeats until the app changes something.
    NeedsChange(Category),
    /// It was cancelled (the app, or the app going away): no failure.
    Cancelled,
    /// It could not start: another sync of the same replica was running (the app's own, say
    /// a "sync now" button). No failure either: what was due stays due, a `debounce` later.
    Busy,
}

impl Ended {
    /// How a sync that returned `result` ended.
    pub fn of<T>(result: &Result<T, Error>) -> Ended {
        match result {
            Ok(_) => Ended::Done,
            Err(Error::Cancelled) => Ended::Cancelled,
            Err(Error::SyncInProgress) => Ended::Busy,
            // The push would delete more than the guard allows: the app must confirm it.
            Err(e @ Error::MassDeletion { .. }) => Ended::NeedsChange(e.category()),
            Err(e) => match e.category() {
                category @ (Category::Auth
                | Category::Config
                | Category::WrongVault
                | Category::NotFound) => Ended::NeedsChange(category),
                category => Ended::Failed(category),
            },
        }
    }
}

/// What a [`Schedule`] says of the background sync, for the app to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleState {
    /// Waiting for the next sync.
    Idle,
    /// A sync is running.
    Syncing,
    /// No network: waiting for it.
    Offline,
    /// The last sync failed with this category; waiting to try again (or, when it needs a
    /// change, for something to change).
    Error(Category),
}

impl ScheduleState {
    /// The state's name as every binding shows it: "idle", "syncing", "offline" or "error".
    pub fn name(&self) -> &'static str {
        match self {
            ScheduleState::Idle => "idle",
            ScheduleState::Syncing => "syncing",
            ScheduleState::Offline => "offline",
            ScheduleState::Error(_) => "error",
        }
    }

    /// The failed sync's category, in the error state.
    pub fn error_category(&self) -> Option<Category> {
        match self {
            ScheduleState::Error(category) => Some(*category),
            _ => None,
        }
    }
}

impl Happening {
    /// What an app may tell the background sync, by the names the bindings take:
    /// "network-lost", "network-back", "background", "foreground" or "changed".
    ///
    /// # Errors
    /// `Config` naming the accepted names, for any other.
    pub fn parse(name: &str) -> Result<Happening, Error> {
        Ok(match name {
            "network-lost" => Happening::NetworkLost,
            "network-back" => Happening::NetworkBack,
            "background" => Happening::Background,
            "foreground" => Happening::Foreground,
            "changed" => Happening::Changed,
            _ => {
                return Err(Error::Config(format!(
                    "notify takes \"network-lost\", \"network-back\", \"background\", \
                     \"foreground\" or \"changed\", not {name:?}"
                )))
            }
        })
    }
}

/// When the next sync is due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// At this time (at once when it is not later than now).
    At(Timestamp),
    /// Not until something happens: a sync is running, the device is offline, or the last
    /// failure needs the app to change something.
    Waiting,
}

/// The background-sync policy of one vault: see the module documentation.
#[derive(Clone, Debug)]
pub struct Schedule {
    policy: SchedulePolicy,
    /// Picks the jitter of each backoff (a different seed per device keeps devices that failed
    /// together from retrying together).
    seed: u64,
    syncing: bool,
    online: bool,
    foreground: bool,
    /// When the last sync ended (or the schedule began, before any).
    last_end: Timestamp,
    /// A sync is due at once (the first one, or after the network came back).
    now_due: bool,
    /// The first and the last local write since the last sync started.
    writes: Option<(Timestamp, Timestamp)>,
    /// What the running sync took on (its writes, whether it was due at once), given back if
    /// it is cancelled.
    taken: (Option<(Timestamp, Timestamp)>, bool),
    /// Failures in a row that may pass, and the category of the last one.
    failures: u32,
    failed: Option<Category>,
    /// The last sync failed in a way that only a change can fix.
    stuck: bool,
    /// When the last full sync (one that listed) ended; `None` before the first.
    last_full: Option<Timestamp>,
    /// No sync before this time: another sync of the replica was running.
    not_before: Option<Timestamp>,
}

impl Schedule {
    /// A schedule beginning at `now`, online and in the foreground: the first sync is due at
    /// once. `seed` picks the backoff jitter.
    pub fn new(policy: SchedulePolicy, now: Timestamp, seed: u64) -> Schedule {
        Schedule {
            policy,
            seed,
            syncing: false,
            online: true,
            foreground: true,
            last_end: now,
            now_due: true,
            writes: None,
            taken: (None, false),
            failures: 0,
            failed: None,
            stuck: false,
            last_full: None,
            not_before: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &SchedulePolicy {
        &self.policy
    }

    /// A clock set back: what lies ahead of `now` counts as now, from now on.
    fn clamp(&mut self, now: Timestamp) {
        self.last_end = self.last_end.min(now);
        if let Some(last) = &mut self.last_full {
            *last = (*last).min(now);
        }
        if let Some(at) = &mut self.not_before {
            *at = (*at).min(Timestamp(now.0.saturating_add(self.policy.debounce_ms)));
        }
        if let Some((first, last)) = &mut self.writes {
            *first = (*first).min(now);
            *last = (*last).min(now);
        }
    }

    /// Takes in what happened at `now`.
    pub fn handle(&mut self, happening: Happening, now: Timestamp) {
        self.clamp(now);
        match happening {
            Happening::LocalWrite => {
                let first = self.writes.map_or(now, |(first, _)| first);
                self.writes = Some((first, now));
            }
            Happening::SyncStarted => {
                self.syncing = true;
                // Writes from now on are in a later sync's hands; those before are in this one.
                self.taken = (self.writes.take(), std::mem::take(&mut self.now_due));
            }
            Happening::SyncEnded(ended) => {
                self.syncing = false;
                let ended_before = self.last_end;
                self.last_end = now;
                match ended {
                    Ended::Done => {
                        self.failures = 0;
                        self.failed = None;
                        self.stuck = false;
                    }
                    Ended::Failed(category) => {
                        self.failed = Some(category);
                        self.failures = self.failures.saturating_add(1);
                    }
                    Ended::NeedsChange(category) => {
                        self.failed = Some(category);
                        // Unless something changed while it ran (new credentials entered during
                        // a sync with the old ones): then the next one is due at once.
                        self.stuck = !self.now_due;
                    }
                    Ended::Cancelled | Ended::Busy => {
                        // Nothing was done: what was due stays due, from when it was (after
                        // the other sync, for a busy one).
                        self.last_end = ended_before;
                        if ended == Ended::Busy {
                            self.not_before =
                                Some(Timestamp(now.0.saturating_add(self.policy.debounce_ms)));
                        }
                        let (writes, now_due) = std::mem::take(&mut self.taken);
                        self.now_due |= now_due;
                        self.writes = match (writes, self.writes) {
                            (Some((first, _)), Some((_, last))) => Some((first, last)),
                            (taken, later) => taken.or(later),
                        };
                    }
                }
            }
            Happening::NetworkLost => self.online = false,
            Happening::NetworkBack => {
                // Platforms tell "network available" again and again while online (each
                // network, each switch): only a return from offline counts.
                if !self.online {
                    self.online = true;
                    self.unstick();
                }
            }
            Happening::Background => self.foreground = false,
            Happening::Foreground => {
                if !self.foreground {
                    self.foreground = true;
                    // Back in front: the app may have been fixed meanwhile, and the user is
                    // looking; a sync now, as after the network came back.
                    self.unstick();
                }
            }
            Happening::Changed => self.unstick(),
        }
    }

    /// A sync at once, the failures forgotten.
    fn unstick(&mut self) {
        self.stuck = false;
        self.failures = 0;
        self.now_due = true;
    }

    /// When the next sync is due, asked at `now` (see the module documentation). Mutable
    /// only to note a clock that was set back.
    pub fn due(&mut self, now: Timestamp) -> Due {
        self.clamp(now);
        if self.syncing || !self.online || self.stuck {
            return Due::Waiting;
        }
        match self.due_unless_busy() {
            Due::At(at) => Due::At(at.max(self.not_before.unwrap_or(at))),
            waiting => waiting,
        }
    }

    fn due_unless_busy(&self) -> Due {
        let last_end = self.last_end;
        if self.failures > 0 {
            let delay = self.policy.backoff.delay_ms(self.failures, self.seed);
            let retry = last_end.0.saturating_add(delay);
            // A local write does not cut a backoff short, and nothing waits longer than one.
            return Due::At(Timestamp(retry));
        }
        if self.now_due {
            return Due::At(last_end);
        }
        let interval = if self.foreground {
            self.policy.interval_ms
        } else {
            self.policy.background_interval_ms
        };
        let mut at = last_end.0.saturating_add(interval);
        if let Some((first, last)) = self.writes {
            let debounced = last
                .0
                .saturating_add(self.policy.debounce_ms)
                .min(first.0.saturating_add(self.policy.max_debounce_ms));
            at = at.min(debounced);
        }
        Due::At(Timestamp(at))
    }

    /// Whether a sync is due at `now`.
    pub fn is_due(&mut self, now: Timestamp) -> bool {
        matches!(self.due(now), Due::At(at) if at <= now)
    }

    /// Whether the sync due at `now` should be a full one (list the manifests) rather than a
    /// poll of the change hint: the first, any after a failure, and one every
    /// `full_sync_interval`. Mutable only to note a clock that was set back.
    pub fn wants_full_sync(&mut self, now: Timestamp) -> bool {
        self.clamp(now);
        match self.last_full {
            None => true,
            Some(_) if self.failed.is_some() => true,
            Some(last) => now.0.saturating_sub(last.0) >= self.policy.full_sync_interval_ms,
        }
    }

    /// The sync that ended at `now` was a full one (it listed), not a poll that stopped at the
    /// change hint.
    pub fn note_full_sync(&mut self, now: Timestamp) {
        self.clamp(now);
        self.last_full = Some(now);
    }

    /// What to show of the background sync.
    pub fn state(&self) -> ScheduleState {
        if self.syncing {
            ScheduleState::Syncing
        } else if !self.online {
            ScheduleState::Offline
        } else if let Some(category) = self.failed {
            ScheduleState::Error(category)
        } else {
            ScheduleState::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn at(ms: u64) -> Timestamp {
        Timestamp(T0 + ms)
    }

    /// Asked late enough that no reading is clamped.
    const LATE: u64 = 1 << 40;

    fn due_ms(schedule: &mut Schedule) -> Option<u64> {
        match schedule.due(at(LATE)) {
            Due::At(t) => Some(t.0 - T0),
            Due::Waiting => None,
        }
    }

    /// Runs one sync from `start` to `end` (ms after T0) that ends with `outcome`.
    fn sync(schedule: &mut Schedule, start: u64, end: u64, outcome: Ended) {
        assert!(schedule.is_due(at(start)), "a sync is due at {start}");
        schedule.handle(Happening::SyncStarted, at(start));
        assert_eq!(schedule.due(at(start)), Due::Waiting, "none while one runs");
        assert_eq!(schedule.state(), ScheduleState::Syncing);
        schedule.handle(Happening::SyncEnded(outcome), at(end));
    }

    fn schedule() -> Schedule {
        Schedule::new(SchedulePolicy::default(), at(0), 7)
    }

    #[test]
    fn the_first_sync_is_at_once_then_every_interval() {
        let mut s = schedule();
        assert_eq!(due_ms(&mut s), Some(0));
        sync(&mut s, 0, 400, Ended::Done);
        assert_eq!(
            due_ms(&mut s),
            Some(30_400),
            "an interval after the sync ended"
        );
        assert!(!s.is_due(at(30_399)) && s.is_due(at(30_400)));
        sync(&mut s, 30_400, 30_500, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(60_500));
        assert_eq!(s.state(), ScheduleState::Idle);
    }

    #[test]
    fn local_writes_are_debounced_and_a_steady_stream_still_syncs() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        s.handle(Happening::LocalWrite, at(5_000));
        assert_eq!(due_ms(&mut s), Some(6_000), "a second after the write");
        s.handle(Happening::LocalWrite, at(5_700));
        assert_eq!(
            due_ms(&mut s),
            Some(6_700),
            "each write of a burst pushes it out"
        );
        // A write every 900 ms: never a quiet second, yet the sync comes 10 s after the first.
        for i in 1..20 {
            s.handle(Happening::LocalWrite, at(5_700 + 900 * i));
        }
        assert_eq!(
            due_ms(&mut s),
            Some(15_000),
            "no later than max_debounce after the first"
        );
        sync(&mut s, 15_000, 15_200, Ended::Done);
        assert_eq!(
            due_ms(&mut s),
            Some(45_200),
            "the writes went with that sync"
        );
        s.handle(Happening::LocalWrite, at(20_000));
        assert_eq!(due_ms(&mut s), Some(21_000));
        sync(&mut s, 21_000, 21_300, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(51_300));
        // A write made while a sync runs is for the next one.
        s.handle(Happening::SyncStarted, at(51_300));
        s.handle(Happening::LocalWrite, at(51_310));
        s.handle(Happening::SyncEnded(Ended::Done), at(51_800));
        assert_eq!(
            due_ms(&mut s),
            Some(52_310),
            "a write during a sync gets its own"
        );
    }

    #[test]
    fn failures_that_may_pass_back_off_exponentially_with_jitter_up_to_a_cap() {
        let mut s = schedule();
        let mut end = 0;
        let mut delays = Vec::new();
        for failure in 1..=12u32 {
            let start = due_ms(&mut s).expect("due");
            sync(&mut s, start, start + 50, Ended::Failed(Category::Network));
            end = start + 50;
            let delay = due_ms(&mut s).expect("a retry is due") - end;
            let exp = (2_000u64 << (failure - 1).min(20)).min(300_000);
            assert!(
                delay >= exp / 2 && delay <= exp,
                "failure {failure}: {delay} ms for {exp}"
            );
            assert_eq!(s.state(), ScheduleState::Error(Category::Network));
            delays.push(delay);
        }
        assert!(
            delays.iter().rev().take(4).all(|d| *d <= 300_000),
            "capped: {delays:?}"
        );
        assert!(delays[3] > delays[0], "it grows: {delays:?}");
        // A local write does not cut the backoff short.
        let retry = due_ms(&mut s).expect("due");
        s.handle(Happening::LocalWrite, at(end + 10));
        assert_eq!(due_ms(&mut s), Some(retry));
        // One success and the interval is back.
        sync(&mut s, retry, retry + 100, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(retry + 100 + 30_000));
        assert_eq!(s.state(), ScheduleState::Idle);
        // Devices that failed together do not retry together.
        let retries: Vec<u64> = (0..20)
            .map(|seed| {
                let mut s = Schedule::new(SchedulePolicy::default(), at(0), seed);
                sync(&mut s, 0, 10, Ended::Failed(Category::Timeout));
                due_ms(&mut s).expect("due")
            })
            .collect();
        assert!(
            retries.iter().any(|r| *r != retries[0]),
            "jittered: {retries:?}"
        );
    }

    #[test]
    fn an_auth_error_waits_for_a_change_instead_of_looping() {
        for category in [
            Category::Auth,
            Category::Config,
            Category::WrongVault,
            Category::NotFound,
        ] {
            let mut s = schedule();
            sync(&mut s, 0, 100, Ended::NeedsChange(category));
            assert_eq!(
                s.due(at(LATE)),
                Due::Waiting,
                "{category:?}: no retry by itself"
            );
            assert_eq!(s.state(), ScheduleState::Error(category));
            s.handle(Happening::LocalWrite, at(5_000));
            assert_eq!(
                s.due(at(LATE)),
                Due::Waiting,
                "{category:?}: a write is no fix"
            );
            s.handle(Happening::Changed, at(9_000));
            assert_eq!(
                due_ms(&mut s),
                Some(100),
                "{category:?}: the app changed something: at once"
            );
            sync(&mut s, 9_000, 9_100, Ended::Done);
            assert_eq!(s.state(), ScheduleState::Idle);
        }
        // Coming back to the foreground, or the network coming back, tries once more.
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::NeedsChange(Category::Auth));
        s.handle(Happening::Background, at(1_000));
        assert_eq!(s.due(at(LATE)), Due::Waiting);
        s.handle(Happening::Foreground, at(2_000));
        assert!(s.is_due(at(2_000)));
        sync(&mut s, 2_000, 2_100, Ended::NeedsChange(Category::Auth));
        assert_eq!(
            s.due(at(LATE)),
            Due::Waiting,
            "and waits again when that fails too"
        );
        s.handle(Happening::Foreground, at(3_000));
        assert_eq!(
            s.due(at(LATE)),
            Due::Waiting,
            "already in front: nothing new"
        );
    }

    #[test]
    fn offline_waits_and_the_network_coming_back_syncs_at_once() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        s.handle(Happening::NetworkLost, at(1_000));
        assert_eq!(s.due(at(LATE)), Due::Waiting);
        assert_eq!(s.state(), ScheduleState::Offline);
        s.handle(Happening::LocalWrite, at(2_000));
        assert_eq!(s.due(at(LATE)), Due::Waiting, "writes wait for the network");
        assert!(!s.is_due(at(100_000)));
        s.handle(Happening::NetworkBack, at(100_000));
        assert!(s.is_due(at(100_000)), "at once when it is back");
        assert_eq!(s.state(), ScheduleState::Idle);
        // Back after a backoff too: the failures are forgotten.
        let mut s = schedule();
        for _ in 0..5 {
            let start = due_ms(&mut s).expect("due");
            sync(&mut s, start, start + 10, Ended::Failed(Category::Network));
        }
        s.handle(Happening::NetworkLost, at(400_000));
        s.handle(Happening::NetworkBack, at(400_500));
        assert!(s.is_due(at(400_500)));
    }

    #[test]
    fn one_sync_at_a_time() {
        let mut s = schedule();
        s.handle(Happening::SyncStarted, at(0));
        for happening in [
            Happening::LocalWrite,
            Happening::NetworkBack,
            Happening::Changed,
            Happening::Foreground,
        ] {
            s.handle(happening, at(10));
            assert_eq!(s.due(at(LATE)), Due::Waiting, "{happening:?} during a sync");
        }
        s.handle(Happening::SyncEnded(Ended::Done), at(500));
        assert!(
            s.is_due(at(500)),
            "what was asked for meanwhile runs once it ended"
        );
    }

    #[test]
    fn a_change_during_a_failing_sync_is_not_lost() {
        let mut s = schedule();
        s.handle(Happening::SyncStarted, at(0));
        s.handle(Happening::Changed, at(50));
        s.handle(
            Happening::SyncEnded(Ended::NeedsChange(Category::Auth)),
            at(100),
        );
        assert!(
            s.is_due(at(100)),
            "new credentials came during the sync with the old ones"
        );
        sync(&mut s, 100, 200, Ended::NeedsChange(Category::Auth));
        assert_eq!(
            s.due(at(LATE)),
            Due::Waiting,
            "and without a change, it waits"
        );
    }

    #[test]
    fn network_available_again_while_online_is_no_reason_to_retry() {
        let mut s = schedule();
        for _ in 0..4 {
            let start = due_ms(&mut s).expect("due");
            sync(&mut s, start, start + 10, Ended::Failed(Category::Server));
        }
        let backoff = due_ms(&mut s);
        s.handle(Happening::NetworkBack, at(30_000));
        assert_eq!(due_ms(&mut s), backoff, "the backoff holds");
        let mut s = schedule();
        sync(&mut s, 0, 10, Ended::NeedsChange(Category::Auth));
        s.handle(Happening::NetworkBack, at(1_000));
        assert_eq!(s.due(at(LATE)), Due::Waiting, "no auth loop either");
    }

    #[test]
    fn a_cancelled_sync_is_no_failure_and_leaves_due_what_was_due() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        s.handle(Happening::LocalWrite, at(5_000));
        sync(&mut s, 6_000, 6_050, Ended::Cancelled);
        assert_eq!(
            due_ms(&mut s),
            Some(6_000),
            "the write is still unpushed: due as before"
        );
        assert_eq!(s.state(), ScheduleState::Idle);
        sync(&mut s, 6_100, 6_200, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(36_200));
        // The first sync, cancelled, is still due at once.
        let mut s = schedule();
        sync(&mut s, 0, 10, Ended::Cancelled);
        assert!(s.is_due(at(10)));
    }

    #[test]
    fn a_clock_set_back_delays_nothing() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        sync(&mut s, 86_400_000, 86_400_100, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(86_430_100));
        // The date is set back by half a day: the next sync is an interval from now, not
        // half a day and an interval away.
        let now = 86_400_100 - 43_200_000;
        assert_eq!(s.due(at(now)), Due::At(at(now + 30_000)));
        assert!(s.is_due(at(now + 30_000)));
        s.handle(Happening::LocalWrite, at(now + 1));
        assert!(
            s.is_due(at(now + 1_001)),
            "a write after it is debounced from now"
        );
    }

    #[test]
    fn errors_are_sorted_into_retry_wait_and_cancelled() {
        let ok: Result<(), Error> = Ok(());
        assert_eq!(Ended::of(&ok), Ended::Done);
        let mass = Error::MassDeletion {
            deleting: 9,
            live: 10,
            limit_percent: 50,
        };
        assert_eq!(
            Ended::of::<()>(&Err(mass)),
            Ended::NeedsChange(Category::Conflict)
        );
        assert_eq!(Ended::of::<()>(&Err(Error::Cancelled)), Ended::Cancelled);
        assert_eq!(
            Ended::of::<()>(&Err(Error::Config("x".into()))),
            Ended::NeedsChange(Category::Config)
        );
        assert_eq!(
            Ended::of::<()>(&Err(Error::SyncInProgress)),
            Ended::Busy,
            "another sync of the same replica: no failure, try again a little later"
        );
        let timeout = Error::Transport {
            category: Category::Timeout,
            message: "slow".into(),
        };
        assert_eq!(
            Ended::of::<()>(&Err(timeout)),
            Ended::Failed(Category::Timeout)
        );
    }

    #[test]
    fn the_background_syncs_less_often() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        s.handle(Happening::Background, at(1_000));
        assert_eq!(due_ms(&mut s), Some(300_100));
        s.handle(Happening::LocalWrite, at(2_000));
        assert_eq!(due_ms(&mut s), Some(3_000), "a write still syncs soon");
        sync(&mut s, 3_000, 3_100, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(303_100));
        s.handle(Happening::Foreground, at(4_000));
        assert!(s.is_due(at(4_000)), "back in front: at once");
    }

    #[test]
    fn polls_are_cheap_until_a_full_sync_is_due() {
        let mut s = schedule();
        assert!(s.wants_full_sync(at(0)), "the first sync lists");
        sync(&mut s, 0, 100, Ended::Done);
        s.note_full_sync(at(100));
        assert!(!s.wants_full_sync(at(30_100)), "then polls");
        assert!(!s.wants_full_sync(at(600_099)));
        assert!(
            s.wants_full_sync(at(600_100)),
            "a full sync every ten minutes, whatever the hint says"
        );
        sync(&mut s, 30_100, 30_200, Ended::Failed(Category::Network));
        assert!(s.wants_full_sync(at(40_000)), "after a failure, a full one");
        let retry = due_ms(&mut s).expect("a retry is due");
        sync(&mut s, retry, retry + 100, Ended::Done);
        s.note_full_sync(at(retry + 100));
        assert!(!s.wants_full_sync(at(retry + 30_000)), "polls again");
        // A clock set back does not put the next full sync off.
        s.note_full_sync(at(700_000));
        assert!(!s.wants_full_sync(at(100_000)));
        assert!(s.wants_full_sync(at(100_000 + 600_000)));
    }

    #[test]
    fn a_sync_that_finds_another_running_is_no_failure_and_retries_after_a_debounce() {
        let mut s = schedule();
        sync(&mut s, 0, 100, Ended::Done);
        s.handle(Happening::LocalWrite, at(5_000));
        sync(&mut s, 6_000, 6_000, Ended::Busy);
        assert_eq!(s.state(), ScheduleState::Idle, "no error shown");
        assert_eq!(
            due_ms(&mut s),
            Some(7_000),
            "the write is still due, a debounce after the busy try"
        );
        sync(&mut s, 7_000, 7_200, Ended::Done);
        assert_eq!(due_ms(&mut s), Some(37_200), "then the interval, as usual");
    }
}
