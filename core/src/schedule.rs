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
//!   configuration is wrong, the key belongs to another vault, there is no vault there), no
//!   sync until something changes: the app says so ([`Happening::Changed`], new credentials),
//!   the network comes back, or the app comes back to the foreground;
//! - while offline, none; when the network comes back, one at once.

use crate::error::Category;
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
    /// The sync ended: `None` when it succeeded, else the category of the error that stopped
    /// it.
    SyncEnded(Option<Category>),
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

/// What a [`Schedule`] says of the background sync, for the app to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleState {
    /// Waiting for the next sync.
    Idle,
    /// A sync is running.
    Syncing,
    /// No network: waiting for it.
    Offline,
    /// The last sync failed with this category; waiting to try again (or, for `auth`,
    /// `config`, `wrong-vault` and `not-found`, for something to change).
    Error(Category),
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
    /// Failures in a row that may pass, and the category of the last one.
    failures: u32,
    failed: Option<Category>,
    /// The last sync failed in a way that only a change can fix.
    stuck: bool,
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
            failures: 0,
            failed: None,
            stuck: false,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &SchedulePolicy {
        &self.policy
    }

    /// Takes in what happened at `now`.
    pub fn handle(&mut self, happening: Happening, now: Timestamp) {
        match happening {
            Happening::LocalWrite => {
                let first = self.writes.map_or(now, |(first, _)| first);
                self.writes = Some((first, now));
            }
            Happening::SyncStarted => {
                self.syncing = true;
                self.now_due = false;
                // Writes from now on are in a later sync's hands; those before are in this one.
                self.writes = None;
            }
            Happening::SyncEnded(outcome) => {
                self.syncing = false;
                self.last_end = now;
                match outcome {
                    None => {
                        self.failures = 0;
                        self.failed = None;
                        self.stuck = false;
                    }
                    Some(category) => {
                        self.failed = Some(category);
                        if Self::needs_a_change(category) {
                            self.stuck = true;
                        } else {
                            self.failures = self.failures.saturating_add(1);
                        }
                    }
                }
            }
            Happening::NetworkLost => self.online = false,
            Happening::NetworkBack => {
                self.online = true;
                self.unstick();
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

    /// Whether a failure of `category` repeats until the app changes something.
    fn needs_a_change(category: Category) -> bool {
        matches!(
            category,
            Category::Auth | Category::Config | Category::WrongVault | Category::NotFound
        )
    }

    /// When the next sync is due (see the module documentation).
    pub fn due(&self) -> Due {
        if self.syncing || !self.online || self.stuck {
            return Due::Waiting;
        }
        if self.failures > 0 {
            let delay = self.policy.backoff.delay_ms(self.failures, self.seed);
            let retry = self.last_end.0.saturating_add(delay);
            // A local write does not cut a backoff short, and nothing waits longer than one.
            return Due::At(Timestamp(retry));
        }
        if self.now_due {
            return Due::At(self.last_end);
        }
        let interval = if self.foreground {
            self.policy.interval_ms
        } else {
            self.policy.background_interval_ms
        };
        let mut at = self.last_end.0.saturating_add(interval);
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
    pub fn is_due(&self, now: Timestamp) -> bool {
        matches!(self.due(), Due::At(at) if at <= now)
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

    fn due_ms(schedule: &Schedule) -> Option<u64> {
        match schedule.due() {
            Due::At(t) => Some(t.0 - T0),
            Due::Waiting => None,
        }
    }

    /// Runs one sync from `start` to `end` (ms after T0) that ends with `outcome`.
    fn sync(schedule: &mut Schedule, start: u64, end: u64, outcome: Option<Category>) {
        assert!(schedule.is_due(at(start)), "a sync is due at {start}");
        schedule.handle(Happening::SyncStarted, at(start));
        assert_eq!(schedule.due(), Due::Waiting, "none while one runs");
        assert_eq!(schedule.state(), ScheduleState::Syncing);
        schedule.handle(Happening::SyncEnded(outcome), at(end));
    }

    fn schedule() -> Schedule {
        Schedule::new(SchedulePolicy::default(), at(0), 7)
    }

    #[test]
    fn the_first_sync_is_at_once_then_every_interval() {
        let mut s = schedule();
        assert_eq!(due_ms(&s), Some(0));
        sync(&mut s, 0, 400, None);
        assert_eq!(due_ms(&s), Some(30_400), "an interval after the sync ended");
        assert!(!s.is_due(at(30_399)) && s.is_due(at(30_400)));
        sync(&mut s, 30_400, 30_500, None);
        assert_eq!(due_ms(&s), Some(60_500));
        assert_eq!(s.state(), ScheduleState::Idle);
    }

    #[test]
    fn local_writes_are_debounced_and_a_steady_stream_still_syncs() {
        let mut s = schedule();
        sync(&mut s, 0, 100, None);
        s.handle(Happening::LocalWrite, at(5_000));
        assert_eq!(due_ms(&s), Some(6_000), "a second after the write");
        s.handle(Happening::LocalWrite, at(5_700));
        assert_eq!(
            due_ms(&s),
            Some(6_700),
            "each write of a burst pushes it out"
        );
        // A write every 900 ms: never a quiet second, yet the sync comes 10 s after the first.
        for i in 1..20 {
            s.handle(Happening::LocalWrite, at(5_700 + 900 * i));
        }
        assert_eq!(
            due_ms(&s),
            Some(15_000),
            "no later than max_debounce after the first"
        );
        sync(&mut s, 15_000, 15_200, None);
        assert_eq!(due_ms(&s), Some(45_200), "the writes went with that sync");
        s.handle(Happening::LocalWrite, at(20_000));
        assert_eq!(due_ms(&s), Some(21_000));
        sync(&mut s, 21_000, 21_300, None);
        assert_eq!(due_ms(&s), Some(51_300));
        // A write made while a sync runs is for the next one.
        s.handle(Happening::SyncStarted, at(51_300));
        s.handle(Happening::LocalWrite, at(51_310));
        s.handle(Happening::SyncEnded(None), at(51_800));
        assert_eq!(
            due_ms(&s),
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
            let start = due_ms(&s).expect("due");
            sync(&mut s, start, start + 50, Some(Category::Network));
            end = start + 50;
            let delay = due_ms(&s).expect("a retry is due") - end;
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
        let retry = due_ms(&s).expect("due");
        s.handle(Happening::LocalWrite, at(end + 10));
        assert_eq!(due_ms(&s), Some(retry));
        // One success and the interval is back.
        sync(&mut s, retry, retry + 100, None);
        assert_eq!(due_ms(&s), Some(retry + 100 + 30_000));
        assert_eq!(s.state(), ScheduleState::Idle);
        // Devices that failed together do not retry together.
        let retries: Vec<u64> = (0..20)
            .map(|seed| {
                let mut s = Schedule::new(SchedulePolicy::default(), at(0), seed);
                sync(&mut s, 0, 10, Some(Category::Timeout));
                due_ms(&s).expect("due")
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
            sync(&mut s, 0, 100, Some(category));
            assert_eq!(s.due(), Due::Waiting, "{category:?}: no retry by itself");
            assert_eq!(s.state(), ScheduleState::Error(category));
            s.handle(Happening::LocalWrite, at(5_000));
            assert_eq!(s.due(), Due::Waiting, "{category:?}: a write is no fix");
            s.handle(Happening::Changed, at(9_000));
            assert_eq!(
                due_ms(&s),
                Some(100),
                "{category:?}: the app changed something: at once"
            );
            sync(&mut s, 9_000, 9_100, None);
            assert_eq!(s.state(), ScheduleState::Idle);
        }
        // Coming back to the foreground, or the network coming back, tries once more.
        let mut s = schedule();
        sync(&mut s, 0, 100, Some(Category::Auth));
        s.handle(Happening::Background, at(1_000));
        assert_eq!(s.due(), Due::Waiting);
        s.handle(Happening::Foreground, at(2_000));
        assert!(s.is_due(at(2_000)));
        sync(&mut s, 2_000, 2_100, Some(Category::Auth));
        assert_eq!(s.due(), Due::Waiting, "and waits again when that fails too");
        s.handle(Happening::Foreground, at(3_000));
        assert_eq!(s.due(), Due::Waiting, "already in front: nothing new");
    }

    #[test]
    fn offline_waits_and_the_network_coming_back_syncs_at_once() {
        let mut s = schedule();
        sync(&mut s, 0, 100, None);
        s.handle(Happening::NetworkLost, at(1_000));
        assert_eq!(s.due(), Due::Waiting);
        assert_eq!(s.state(), ScheduleState::Offline);
        s.handle(Happening::LocalWrite, at(2_000));
        assert_eq!(s.due(), Due::Waiting, "writes wait for the network");
        assert!(!s.is_due(at(100_000)));
        s.handle(Happening::NetworkBack, at(100_000));
        assert!(s.is_due(at(100_000)), "at once when it is back");
        assert_eq!(s.state(), ScheduleState::Idle);
        // Back after a backoff too: the failures are forgotten.
        let mut s = schedule();
        for _ in 0..5 {
            let start = due_ms(&s).expect("due");
            sync(&mut s, start, start + 10, Some(Category::Network));
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
            assert_eq!(s.due(), Due::Waiting, "{happening:?} during a sync");
        }
        s.handle(Happening::SyncEnded(None), at(500));
        assert!(
            s.is_due(at(500)),
            "what was asked for meanwhile runs once it ended"
        );
    }

    #[test]
    fn the_background_syncs_less_often() {
        let mut s = schedule();
        sync(&mut s, 0, 100, None);
        s.handle(Happening::Background, at(1_000));
        assert_eq!(due_ms(&s), Some(300_100));
        s.handle(Happening::LocalWrite, at(2_000));
        assert_eq!(due_ms(&s), Some(3_000), "a write still syncs soon");
        sync(&mut s, 3_000, 3_100, None);
        assert_eq!(due_ms(&s), Some(303_100));
        s.handle(Happening::Foreground, at(4_000));
        assert!(s.is_due(at(4_000)), "back in front: at once");
    }
}
