//! Background sync for Swift and Kotlin: the core's loop ([`Session::auto_sync`]) on a thread
//! of its own, its events passed to every [`EventListener`] (the one `start_auto_sync` was
//! given, and each open Kotlin `events()` flow or Swift `events()` stream).
//!
//! [`Session::auto_sync`]: bucketsync::session::Session::auto_sync

use std::sync::Arc;

use bucketsync::auto_sync::{AutoSyncOptions, AutoSyncSeconds, Event as CoreEvent};
use bucketsync::listeners::Listeners;
use bucketsync::ScheduleState;

use crate::{BucketsyncError, Vault};

/// What the app knows and the background sync cannot see (`Vault.notify`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum Happening {
    /// The device lost its network (Android `ConnectivityManager.NetworkCallback.onLost`, iOS
    /// `NWPathMonitor`): no syncs until it is back.
    NetworkLost,
    /// The network is back: a sync at once.
    NetworkBack,
    /// The app went to the background: syncs every `backgroundIntervalSeconds` instead.
    Background,
    /// The app is in the foreground again.
    Foreground,
    /// The app changed something a failed sync may have depended on (new credentials): a sync
    /// at once, even after an `auth` or `config` error.
    Changed,
}

impl From<Happening> for bucketsync::Happening {
    fn from(h: Happening) -> Self {
        match h {
            Happening::NetworkLost => bucketsync::Happening::NetworkLost,
            Happening::NetworkBack => bucketsync::Happening::NetworkBack,
            Happening::Background => bucketsync::Happening::Background,
            Happening::Foreground => bucketsync::Happening::Foreground,
            Happening::Changed => bucketsync::Happening::Changed,
        }
    }
}

/// How the background sync is timed; every field has a default (Kotlin
/// `AutoSyncSettings(intervalSeconds = 5.0)`, Swift `AutoSyncSettings(intervalSeconds: 5)`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct AutoSyncSettings {
    /// Between syncs while nothing happens, in the foreground. While nothing was published a
    /// sync is a poll: one conditional GET of the vault's change hint.
    #[uniffi(default = 30.0)]
    pub interval_seconds: f64,
    /// How long after the last of a burst of local writes their sync starts (at most 10 s, or
    /// this when longer, after the first).
    #[uniffi(default = 1.0)]
    pub debounce_seconds: f64,
    /// The longest time between two full syncs (a listing of the manifests), however quiet the
    /// change hint is.
    #[uniffi(default = 600.0)]
    pub full_sync_interval_seconds: f64,
    /// Between syncs while the app is in the background (`notify(Happening.BACKGROUND)`).
    #[uniffi(default = 300.0)]
    pub background_interval_seconds: f64,
}

impl Default for AutoSyncSettings {
    /// The core's defaults (the `#[uniffi(default)]` literals above show them to Kotlin and
    /// Swift; the Kotlin test checks they agree with `default_auto_sync_settings`).
    fn default() -> Self {
        let core = AutoSyncSeconds::default();
        AutoSyncSettings {
            interval_seconds: core.interval,
            debounce_seconds: core.debounce,
            full_sync_interval_seconds: core.full_sync_interval,
            background_interval_seconds: core.background_interval,
        }
    }
}

/// The core's default timings: what `AutoSyncSettings()` with no arguments holds.
#[uniffi::export]
pub fn default_auto_sync_settings() -> AutoSyncSettings {
    AutoSyncSettings::default()
}

impl AutoSyncSettings {
    fn options(&self) -> Result<AutoSyncOptions, BucketsyncError> {
        let seconds = AutoSyncSeconds {
            interval: self.interval_seconds,
            debounce: self.debounce_seconds,
            full_sync_interval: self.full_sync_interval_seconds,
            background_interval: self.background_interval_seconds,
        };
        let names = [
            "intervalSeconds",
            "debounceSeconds",
            "fullSyncIntervalSeconds",
            "backgroundIntervalSeconds",
        ];
        Ok(AutoSyncOptions::from_seconds(seconds, names)?)
    }
}

/// What kind of [`Event`] it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum EventKind {
    /// `keys` changed here because of a sync (another device wrote or deleted them): what the
    /// app should show anew. The app's own writes are not announced.
    Changed,
    /// `keys` met a concurrent write by another device: one of the two lost, both are in the
    /// key's `history`.
    Conflict,
    /// The background sync is now in `state` (sent when it changes).
    State,
    /// How far the running sync has come (`progress`). Not sent for a poll that ends at the
    /// change hint.
    Progress,
}

/// The state of the background sync, for the app to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SyncState {
    /// Waiting for the next sync.
    Idle,
    /// A sync is running.
    Syncing,
    /// No network (`notify(Happening.NETWORK_LOST)`): waiting for it.
    Offline,
    /// The last sync failed (`category` says how); it is tried again after a backoff, or, for
    /// `auth`, `config`, `not_found` and `wrong_vault`, after `notify(Happening.CHANGED)`.
    Error,
}

/// How far a sync has come.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncProgress {
    /// Requests answered (or failed) so far.
    pub requests_done: u64,
    /// Requests handed out so far; grows as the sync learns what it needs.
    pub requests_total: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

/// What the background sync tells: see `kind`.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct Event {
    pub kind: EventKind,
    /// For `Changed` and `Conflict`: the keys, sorted. Empty otherwise.
    pub keys: Vec<Vec<u8>>,
    /// For `State`: the new state.
    pub state: Option<SyncState>,
    /// For `State` with `SyncState.Error`: the error's category (`network`, `auth`, …, as in
    /// `SyncIssue.category`).
    pub category: Option<String>,
    /// For `Progress`.
    pub progress: Option<SyncProgress>,
}

impl From<CoreEvent> for Event {
    fn from(event: CoreEvent) -> Self {
        let empty = Event {
            kind: EventKind::State,
            keys: Vec::new(),
            state: None,
            category: None,
            progress: None,
        };
        match event {
            CoreEvent::Changed(keys) => Event {
                kind: EventKind::Changed,
                keys,
                ..empty
            },
            CoreEvent::Conflict(keys) => Event {
                kind: EventKind::Conflict,
                keys,
                ..empty
            },
            CoreEvent::State(state) => Event {
                state: Some(match state {
                    ScheduleState::Idle => SyncState::Idle,
                    ScheduleState::Syncing => SyncState::Syncing,
                    ScheduleState::Offline => SyncState::Offline,
                    ScheduleState::Error(_) => SyncState::Error,
                }),
                category: state.error_category().map(|c| c.as_str().to_owned()),
                ..empty
            },
            CoreEvent::Progress(p) => Event {
                kind: EventKind::Progress,
                progress: Some(SyncProgress {
                    requests_done: p.requests_done,
                    requests_total: p.requests_total,
                    bytes_sent: p.bytes_sent,
                    bytes_received: p.bytes_received,
                }),
                ..empty
            },
        }
    }
}

/// What an [`EventListener`] may throw; it is dropped (the loop goes on).
#[derive(Debug, uniffi::Error)]
pub enum ListenerError {
    Failed { reason: String },
}

impl std::fmt::Display for ListenerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenerError::Failed { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for ListenerError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for ListenerError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        ListenerError::Failed { reason: e.reason }
    }
}

/// Hears the background sync's events (Kotlin: implement the interface, or collect
/// `vault.events()`; Swift: the protocol, or `for await event in vault.events()`). Called on
/// the background sync's thread, one event at a time: keep it short, and do not wait there for
/// a thread that is calling `stopAutoSync` or closing the vault. Whatever it throws is dropped
/// and breaks nothing.
#[uniffi::export(with_foreign)]
pub trait EventListener: Send + Sync {
    fn on_event(&self, event: Event) -> Result<(), ListenerError>;
}

/// The listeners of one vault: the one given to `start_auto_sync` has id 0, the others the
/// ids `add_event_listener` returned.
pub(crate) type SharedListeners = Arc<Listeners<Arc<dyn EventListener>>>;

/// Calls every listener with `event`; what one throws (or a panic) is dropped.
fn deliver(listeners: &Listeners<Arc<dyn EventListener>>, event: CoreEvent) {
    if listeners.is_empty() {
        return;
    }
    let event = Event::from(event);
    listeners.each(|listener| {
        let _ = listener.on_event(event.clone());
    });
}

#[uniffi::export]
impl Vault {
    /// Starts syncing in the background, on a thread of its own, until `stop_auto_sync()` or
    /// the vault is released: every `interval_seconds` (a poll that costs one conditional GET
    /// while nothing was published; a full sync at least every `full_sync_interval_seconds`),
    /// soon after local writes (`debounce_seconds` after the last of a burst), again after a
    /// backoff on errors that may pass (network, timeout, throttling), and not again after
    /// `auth` or `config` errors until `notify(Changed)`. `settings`: null for the defaults.
    /// `listener`, if given, hears every event (replacing the one given to an earlier start);
    /// `events()` is the same stream as a Kotlin `Flow` or a Swift `AsyncStream`. `Conflict`
    /// when a background sync already runs, `Config` for a bad setting.
    #[uniffi::method(default(settings = None, listener = None))]
    pub fn start_auto_sync(
        &self,
        settings: Option<AutoSyncSettings>,
        listener: Option<Arc<dyn EventListener>>,
    ) -> Result<(), BucketsyncError> {
        let options = settings.unwrap_or_default().options()?;
        let listeners = self.listeners.clone();
        let on_event = move |event: CoreEvent| deliver(&listeners, event);
        self.listeners.start_with(listener, || {
            self.auto_thread
                .start(&self.session, self.transport.clone(), options, on_event)
        })?;
        Ok(())
    }

    /// Stops the background sync and waits for its thread: a sync it was running is
    /// abandoned at once (safely: the next sync resumes it), and no request goes out after
    /// this returns. Does nothing when none runs. Called from a listener, it does not wait:
    /// the loop ends when the listener returns.
    pub fn stop_auto_sync(&self) {
        self.auto_thread.stop(&self.session);
    }

    /// Whether a background sync runs.
    pub fn is_auto_syncing(&self) -> bool {
        self.auto_thread.is_running()
    }

    /// Tells the background sync what the app knows and it cannot see: the network lost or
    /// back, the app in the background or the foreground, new credentials (`Changed`).
    /// Ignored when none runs.
    pub fn notify(&self, what: Happening) {
        self.session.notify(what.into());
    }

    /// Adds a listener of the background sync's events (it hears those from now on, whether
    /// or not a background sync runs yet); returns its id for `remove_event_listener`.
    /// `events()` uses it.
    pub fn add_event_listener(&self, listener: Arc<dyn EventListener>) -> u64 {
        self.listeners.add(listener)
    }

    /// Removes a listener added by `add_event_listener` (an unknown id is ignored). An event
    /// being delivered at that moment may still reach it.
    pub fn remove_event_listener(&self, id: u64) {
        self.listeners.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Weak;
    use std::time::{Duration, Instant};

    use super::*;
    use crate::VaultKey;

    fn folder(name: &str) -> std::path::PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "bucketsync-uniffi-{name}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn open(dir: &std::path::Path, key: &Arc<VaultKey>, state: Option<String>) -> Arc<Vault> {
        Vault::open(
            format!("file://{}", dir.join("bucket").display()),
            key.clone(),
            None,
            state,
            None,
            None,
            false,
            true,
            None,
        )
        .unwrap()
    }

    fn fast() -> Option<AutoSyncSettings> {
        Some(AutoSyncSettings {
            interval_seconds: 0.05,
            debounce_seconds: 0.01,
            ..AutoSyncSettings::default()
        })
    }

    fn wait_until(what: &str, found: impl Fn() -> bool) {
        let start = Instant::now();
        while !found() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no {what} in 10 s"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_stop_right_after_the_start_is_never_missed() {
        let dir = folder("stop");
        let vault = open(&dir, &VaultKey::generate().unwrap(), None);
        for _ in 0..50 {
            vault.start_auto_sync(fast(), None).unwrap();
            assert!(vault.is_auto_syncing());
            vault.stop_auto_sync();
            assert!(!vault.is_auto_syncing());
        }
        assert!(matches!(
            vault.start_auto_sync(
                Some(AutoSyncSettings {
                    debounce_seconds: f64::NAN,
                    ..AutoSyncSettings::default()
                }),
                None
            ),
            Err(BucketsyncError::Config(m)) if m.contains("debounceSeconds")
        ));
        std::fs::remove_dir_all(dir).ok();
    }

    #[test]
    fn releasing_the_vault_stops_its_sync_and_frees_its_state() {
        let dir = folder("release");
        let state = dir.join("state").display().to_string();
        let key = VaultKey::generate().unwrap();
        let vault = open(&dir, &key, Some(state.clone()));
        vault.start_auto_sync(fast(), None).unwrap();
        vault.put(b"k".to_vec(), b"v".to_vec()).unwrap();
        drop(vault);
        // The thread held the session too: had it gone on, the state would still be locked.
        let again = open(&dir, &key, Some(state));
        assert_eq!(again.get(b"k".to_vec()).unwrap(), Some(b"v".to_vec()));
        std::fs::remove_dir_all(dir).ok();
    }

    /// Counts events; stops the vault's background sync from inside the call, and throws.
    struct Stopper {
        vault: Weak<Vault>,
        calls: AtomicUsize,
    }

    impl EventListener for Stopper {
        fn on_event(&self, _: Event) -> Result<(), ListenerError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(vault) = self.vault.upgrade() {
                vault.stop_auto_sync();
            }
            Err(ListenerError::Failed {
                reason: "a listener that throws".into(),
            })
        }
    }

    struct Counter(AtomicUsize);

    impl EventListener for Counter {
        fn on_event(&self, _: Event) -> Result<(), ListenerError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[test]
    fn a_listener_may_stop_the_sync_from_inside_and_removed_listeners_hear_nothing() {
        let dir = folder("listener");
        let vault = open(&dir, &VaultKey::generate().unwrap(), None);
        let removed = Arc::new(Counter(AtomicUsize::new(0)));
        let id = vault.add_event_listener(removed.clone());
        vault.remove_event_listener(id);
        let kept = Arc::new(Counter(AtomicUsize::new(0)));
        vault.add_event_listener(kept.clone());
        let stopper = Arc::new(Stopper {
            vault: Arc::downgrade(&vault),
            calls: AtomicUsize::new(0),
        });
        vault
            .start_auto_sync(fast(), Some(stopper.clone()))
            .unwrap();
        wait_until("end of the loop", || !vault.is_auto_syncing());
        assert!(stopper.calls.load(Ordering::SeqCst) >= 1);
        assert!(kept.0.load(Ordering::SeqCst) >= 1);
        assert_eq!(removed.0.load(Ordering::SeqCst), 0);
        // It starts again, without the listener of the earlier start.
        let before = stopper.calls.load(Ordering::SeqCst);
        vault.start_auto_sync(fast(), None).unwrap();
        vault.put(b"k".to_vec(), b"v".to_vec()).unwrap();
        let seen = kept.0.load(Ordering::SeqCst);
        wait_until("more events", || kept.0.load(Ordering::SeqCst) > seen);
        vault.stop_auto_sync();
        assert_eq!(stopper.calls.load(Ordering::SeqCst), before);
        std::fs::remove_dir_all(dir).ok();
    }
}
