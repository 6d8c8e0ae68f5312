//! Background sync for Python: the core's loop ([`Session::auto_sync`]) on a thread of its own,
//! its events passed to Python callables.

use std::sync::Arc;

use bucketsync::auto_sync::{AutoSyncOptions, AutoSyncSeconds, Event as CoreEvent};
use bucketsync::auto_sync_thread::AutoSyncThread;
use bucketsync::listeners::Listeners;
use bucketsync::session::Session;
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
    /// "changed", "conflict", "state" or "progress".
    pub kind: &'static str,
    /// The keys that changed here or met a concurrent write ("changed", "conflict").
    pub keys: Vec<Py<PyBytes>>,
    /// "idle", "syncing", "offline" or "error" (kind "state"), else None.
    pub state: Option<&'static str>,
    /// The error's category ("network", "auth", ...) when state is "error", else None.
    pub category: Option<&'static str>,
    /// How far the sync is (kind "progress"), else None.
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
        CoreEvent::State(state) => Event {
            kind: "state",
            keys: Vec::new(),
            state: Some(state.name()),
            category: state.error_category().map(|c| c.as_str()),
            progress: None,
        },
        CoreEvent::Progress(p) => Event {
            kind: "progress",
            keys: Vec::new(),
            state: None,
            category: None,
            progress: Some(Py::new(py, Progress::from(p))?),
        },
    })
}

/// A vault's background sync, as Python sees it: the thread the core's loop runs on, and who
/// hears its events (the callable given to start_auto_sync, and each open `events()`
/// iterator).
#[derive(Default)]
pub struct AutoSync {
    thread: AutoSyncThread,
    listeners: Arc<Listeners<PyObject>>,
}

/// The names `Vault.start_auto_sync` gives the timings, for its errors.
const TIMING_NAMES: [&str; 4] = [
    "interval",
    "debounce",
    "full_sync_interval",
    "background_interval",
];

impl AutoSync {
    /// Starts the core's loop for `session` on a thread of its own (see `Vault.start_auto_sync`).
    pub fn start(
        &self,
        py: Python<'_>,
        session: &Arc<Session>,
        transport: &Arc<AnyTransport>,
        seconds: AutoSyncSeconds,
        on_event: Option<PyObject>,
    ) -> PyResult<()> {
        if let Some(callable) = &on_event {
            if !callable.bind(py).is_callable() {
                return Err(pyo3::exceptions::PyTypeError::new_err(
                    "on_event must be callable",
                ));
            }
        }
        let options = AutoSyncOptions::from_seconds(seconds, TIMING_NAMES).map_err(to_py)?;
        let listeners = self.listeners.clone();
        let listener = move |event: CoreEvent| deliver(&listeners, event);
        self.listeners
            .start_with(on_event, || {
                self.thread
                    .start(session, transport.clone(), options, listener)
            })
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
        self.listeners.add(callable)
    }

    /// Removes a listener added by `add_listener`.
    pub fn remove_listener(&self, id: u64) {
        self.listeners.remove(id);
    }
}

/// Calls every listener with `event`; what one raises is reported as unraisable.
fn deliver(listeners: &Listeners<PyObject>, event: CoreEvent) {
    Python::with_gil(|py| {
        if listeners.is_empty() {
            return;
        }
        let event = match to_event(py, event).and_then(|e| Py::new(py, e)) {
            Ok(event) => event,
            Err(e) => return e.write_unraisable(py, None),
        };
        listeners.each(|callable| {
            if let Err(e) = callable.call1(py, (event.clone_ref(py),)) {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        });
    });
}
