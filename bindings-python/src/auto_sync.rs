//! Background sync for Python: the core's loop ([`Session::auto_sync`]) on a thread of its own,
//! its events passed to Python callables.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bucketsync::auto_sync::{AutoSyncOptions, AutoSyncSeconds, Event as CoreEvent};
use bucketsync::auto_sync_thread::AutoSyncThread;
use bucketsync::session::Session;
use bucketsync::{Error, Happening, ScheduleState};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::Progress;
use crate::errors::to_py;
use crate::transport::AnyTransport;

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
struct Listeners {
    next: u64,
    by_id: BTreeMap<u64, PyObject>,
}

/// A vault's background sync, as Python sees it: the thread the core's loop runs on, and who
/// hears its events.
#[derive(Default)]
pub struct AutoSync {
    thread: AutoSyncThread,
    listeners: Arc<Mutex<Listeners>>,
}

/// The arguments of `Vault.start_auto_sync`, in seconds.
pub struct Timings {
    pub interval: f64,
    pub debounce: f64,
    pub full_sync_interval: f64,
    pub background_interval: f64,
}

impl Timings {
    fn options(&self) -> PyResult<AutoSyncOptions> {
        let seconds = AutoSyncSeconds {
            interval: self.interval,
            debounce: self.debounce,
            full_sync_interval: self.full_sync_interval,
            background_interval: self.background_interval,
        };
        let names = [
            "interval",
            "debounce",
            "full_sync_interval",
            "background_interval",
        ];
        AutoSyncOptions::from_seconds(seconds, names).map_err(to_py)
    }
}

impl AutoSync {
    /// Starts the core's loop for `session` on a thread of its own (see `Vault.start_auto_sync`).
    pub fn start(
        &self,
        py: Python<'_>,
        session: &Arc<Session>,
        transport: &Arc<AnyTransport>,
        timings: Timings,
        on_event: Option<PyObject>,
    ) -> PyResult<()> {
        if let Some(callable) = &on_event {
            if !callable.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "on_event must be callable",
                ));
            }
        }
        let options = timings.options()?;
        if self.thread.is_running() {
            return Err(to_py(Error::AutoSyncRunning));
        }
        {
            let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
            // Id 0 is start_auto_sync's own listener; events() iterators count from 1.
            listeners.by_id.remove(&0);
            if let Some(callable) = on_event {
                listeners.by_id.insert(0, callable);
            }
        }
        let listeners = self.listeners.clone();
        let listener = move |event: CoreEvent| deliver(&listeners, event);
        self.thread
            .start(session, transport.clone(), options, listener)
            .map_err(to_py)
    }

    /// Stops the loop and waits for its thread (see `Vault.stop_auto_sync`).
    pub fn stop(&self, py: Python<'_>, session: &Session) {
        // The loop may be calling a listener, which needs the GIL.
        py.allow_threads(|| self.thread.stop(session));
    }

    /// Whether the loop runs.
    pub fn running(&self) -> bool {
        self.thread.is_running()
    }

    /// Adds a listener (for `events()`); returns its id.
    pub fn add_listener(&self, callable: PyObject) -> u64 {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.next += 1;
        let id = listeners.next;
        listeners.by_id.insert(id, callable);
        id
    }

    /// Removes a listener added by `add_listener`.
    pub fn remove_listener(&self, id: u64) {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        listeners.by_id.remove(&id);
    }
}

/// What `Vault.notify` takes, as the core's happening.
pub fn happening(what: &str) -> PyResult<Happening> {
    Ok(match what {
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
    })
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
