//! Background sync for Python: the core's loop ([`Session::auto_sync`]) on a thread of its own,
//! its events passed to Python callables.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bucketsync::auto_sync::{AutoSyncOptions, Event as CoreEvent};
use bucketsync::{Error, Happening, SchedulePolicy, ScheduleState};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::errors::to_py;
use crate::vault::{Progress, Vault};

/// What the background sync tells: `kind` is "changed", "conflict", "state" or "progress".
///
/// keys: the keys that changed here (another device wrote or deleted them) or met a
/// concurrent write, for "changed" and "conflict". state: "idle", "syncing", "offline" or
/// "error", for "state"; category: the error's category ("network", "auth", ...) when state is
/// "error". progress: a Progress, for "progress".
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct Event {
    pub kind: &'static str,
    pub keys: Vec<Py<PyBytes>>,
    pub state: Option<&'static str>,
    pub category: Option<&'static str>,
    pub progress: Option<Py<Progress>>,
}

#[pymethods]
impl Event {
    fn __repr__(&self, py: Python<'_>) -> String {
        match self.kind {
            "state" => match self.category {
                Some(category) => format!("Event(state='error', category='{category}')"),
                None => format!("Event(state='{}')", self.state.unwrap_or_default()),
            },
            "progress" => match &self.progress {
                Some(p) => format!("Event(progress={})", p.borrow(py).__repr__()),
                None => "Event(progress=None)".into(),
            },
            kind => {
                let keys: Vec<String> = self
                    .keys
                    .iter()
                    .map(|k| String::from_utf8_lossy(k.as_bytes(py)).into_owned())
                    .collect();
                format!("Event(kind='{kind}', keys={keys:?})")
            }
        }
    }
}

fn to_event(py: Python<'_>, event: CoreEvent) -> PyResult<Event> {
    let keys = |keys: Vec<Vec<u8>>| keys.iter().map(|k| PyBytes::new(py, k).unbind()).collect();
    Ok(match event {
        CoreEvent::Changed(changed) => Event {
            kind: "changed",
            keys: keys(changed),
            state: None,
            category: None,
            progress: None,
        },
        CoreEvent::Conflict(conflicts) => Event {
            kind: "conflict",
            keys: keys(conflicts),
            state: None,
            category: None,
            progress: None,
        },
        CoreEvent::State(state) => {
            let (state, category) = match state {
                ScheduleState::Idle => ("idle", None),
                ScheduleState::Syncing => ("syncing", None),
                ScheduleState::Offline => ("offline", None),
                ScheduleState::Error(category) => ("error", Some(category.as_str())),
            };
            Event {
                kind: "state",
                keys: Vec::new(),
                state: Some(state),
                category,
                progress: None,
            }
        }
        CoreEvent::Progress(p) => Event {
            kind: "progress",
            keys: Vec::new(),
            state: None,
            category: None,
            progress: Some(Py::new(py, Progress::from(p))?),
        },
    })
}

/// The callables that hear the events: the one given to start_auto_sync, and each open
/// `events()` iterator.
#[derive(Default)]
pub struct Listeners {
    next: u64,
    by_id: BTreeMap<u64, PyObject>,
}

/// A running background sync: its thread.
pub struct Running {
    thread: std::thread::JoinHandle<()>,
}

/// Seconds as milliseconds, or a ConfigError naming the argument.
fn millis(name: &str, seconds: f64) -> PyResult<u64> {
    if seconds.is_finite() && seconds > 0.0 {
        Ok((seconds * 1000.0).round().max(1.0) as u64)
    } else {
        Err(to_py(Error::Config(format!(
            "{name} must be a number of seconds > 0, not {seconds}"
        ))))
    }
}

/// What `Vault`'s background-sync methods do (they are declared in `vault.rs`, as pyo3 wants
/// one method block per class).
impl Vault {
    /// Starts syncing in the background, on a thread of its own, until stop_auto_sync() or
    /// close(): every `interval` seconds (a poll that costs one conditional GET while nothing
    /// changed; a full sync every `full_sync_interval`), soon after local writes (`debounce`
    /// seconds after the last of a burst), again after a backoff on errors that may pass
    /// (network, timeout, throttling), and not at all after auth or config errors until
    /// `notify("changed")`. on_event, if given, is called with each Event (on the background
    /// thread; what it raises is reported as unraisable and breaks nothing). Raises
    /// ConflictError when a background sync already runs.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start_auto_sync_impl(
        &self,
        py: Python<'_>,
        interval: f64,
        on_event: Option<PyObject>,
        debounce: f64,
        full_sync_interval: f64,
        background_interval: f64,
    ) -> PyResult<()> {
        if let Some(callable) = &on_event {
            if !callable.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "on_event must be callable",
                ));
            }
        }
        let defaults = SchedulePolicy::default();
        let debounce_ms = millis("debounce", debounce)?;
        let options = AutoSyncOptions {
            policy: SchedulePolicy {
                interval_ms: millis("interval", interval)?,
                background_interval_ms: millis("background_interval", background_interval)?,
                debounce_ms,
                max_debounce_ms: defaults.max_debounce_ms.max(debounce_ms),
                full_sync_interval_ms: millis("full_sync_interval", full_sync_interval)?,
                backoff: defaults.backoff,
            },
            ..AutoSyncOptions::default()
        };
        let mut running = self.auto_thread.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_ref().is_some_and(|r| !r.thread.is_finished()) {
            return Err(to_py(Error::AutoSyncRunning));
        }
        if self.session.is_closed() {
            return Err(to_py(Error::Config("this vault is closed".into())));
        }
        {
            let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            listeners.by_id.remove(&0);
            if let Some(callable) = on_event {
                listeners.by_id.insert(0, callable);
            }
        }
        let session = self.session.clone();
        let transport = self.transport.clone();
        let listeners = self.listeners.clone();
        let thread = std::thread::Builder::new()
            .name("bucketsync-auto-sync".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let listener = move |event: CoreEvent| deliver(&listeners, event);
                if let Ok(runtime) = runtime {
                    // Ends at stop_auto_sync() or close(); it cannot fail to start here (the
                    // vault is open and no other background sync runs).
                    let _ = runtime.block_on(session.auto_sync(&*transport, options, listener));
                }
            })
            .map_err(|e| to_py(Error::Config(format!("cannot start a thread: {e}"))))?;
        *running = Some(Running { thread });
        Ok(())
    }

    /// Stops the background sync: a sync it was running is abandoned at once (safely: the
    /// next sync resumes it), and no request goes out after this returns. Does nothing when
    /// none runs.
    pub(crate) fn stop_auto_sync_impl(&self, py: Python<'_>) {
        self.session.stop_auto_sync();
        let running = self
            .auto_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(running) = running {
            // The loop may be calling a listener, which needs the GIL.
            py.allow_threads(|| {
                let _ = running.thread.join();
            });
        }
    }

    /// Whether a background sync runs.
    pub(crate) fn auto_syncing_impl(&self) -> bool {
        self.auto_thread
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|r| !r.thread.is_finished())
    }

    /// Tells the background sync what the app knows and it cannot see: "network-lost",
    /// "network-back", "background", "foreground", or "changed" (new credentials or store:
    /// try again at once, even after an auth error). Ignored when none runs.
    pub(crate) fn notify_impl(&self, what: &str) -> PyResult<()> {
        let happening = match what {
            "network-lost" => Happening::NetworkLost,
            "network-back" => Happening::NetworkBack,
            "background" => Happening::Background,
            "foreground" => Happening::Foreground,
            "changed" => Happening::Changed,
            other => {
                return Err(to_py(Error::Config(format!(
                    "notify takes \"network-lost\", \"network-back\", \"background\", \
                     \"foreground\" or \"changed\", not {other:?}"
                ))))
            }
        };
        self.session.notify(happening);
        Ok(())
    }

    /// `async for event in vault.events():` the background sync's events as an async
    /// iterator (for asyncio apps; start_auto_sync starts the sync itself). Each iterator
    /// gets every event from when it starts; leaving the loop stops it listening.
    pub(crate) fn events_impl<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyAny>> {
        slf.py()
            .import("bucketsync._aio")?
            .getattr("events")?
            .call1((slf,))
    }

    /// Adds a listener for events(); returns its id.
    pub(crate) fn add_listener_impl(&self, callable: PyObject) -> u64 {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.next += 1;
        let id = listeners.next;
        listeners.by_id.insert(id, callable);
        id
    }

    /// Removes a listener added by _add_listener.
    pub(crate) fn remove_listener_impl(&self, id: u64) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.by_id.remove(&id);
    }
}

/// Calls every listener with `event`; what one raises is reported as unraisable.
fn deliver(listeners: &Mutex<Listeners>, event: CoreEvent) {
    Python::with_gil(|py| {
        let callables: Vec<PyObject> = listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .by_id
            .values()
            .map(|c| c.clone_ref(py))
            .collect();
        if callables.is_empty() {
            return;
        }
        let event = match to_event(py, event).and_then(|e| Py::new(py, e)) {
            Ok(event) => event,
            Err(e) => return e.write_unraisable(py, None),
        };
        for callable in callables {
            if let Err(e) = callable.call1(py, (event.clone_ref(py),)) {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        }
    });
}

/// Shared with the background thread.
pub type SharedListeners = Arc<Mutex<Listeners>>;
