//! The transports a Python vault can use: the built-in ones, or a Python callable.

use std::sync::{Arc, Mutex};

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::Transport;
use bucketsync::io::reach::{Nothing, Reach};
use bucketsync::{Category, Error, Request, Response, Result, Store};
use pyo3::prelude::*;

use crate::convert::{response_from, PyRequest};

/// A Python callable `transport(request) -> Response`. What it raises becomes a `network`
/// error, and the Python exception is kept to become the raised error's `__cause__`.
pub struct PyTransport {
    pub callable: Arc<PyObject>,
    pub raised: Mutex<Option<PyErr>>,
}

impl PyTransport {
    fn call(&self, request: &Request) -> Result<Response> {
        Python::with_gil(|py| {
            let outcome = self
                .callable
                .call1(py, (PyRequest::new(py, request),))
                .and_then(|r| response_from(r.bind(py)));
            outcome.map_err(|e| {
                let message = format!("the transport raised {}", e.value(py));
                let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
                raised.get_or_insert(e);
                Error::Transport {
                    category: Category::Network,
                    message,
                }
            })
        })
    }
}

/// How a Python vault reaches its store: the app's callable is its only piece of its own.
pub type VaultReach = Reach<Arc<PyObject>, Nothing>;

/// A built-in transport, or the app's Python one.
pub enum AnyTransport {
    Builtin(BuiltinTransport),
    Python(PyTransport),
}

impl Transport for AnyTransport {
    async fn send(&self, request: Request) -> Result<Response> {
        match self {
            AnyTransport::Builtin(t) => t.send(request).await,
            AnyTransport::Python(t) => t.call(&request),
        }
    }

    async fn sleep(&self, ms: u64) {
        match self {
            AnyTransport::Builtin(t) => t.sleep(ms).await,
            // On the sync's runtime, with the GIL released: a background sync's wait ends at
            // once when it is stopped.
            AnyTransport::Python(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await
            }
        }
    }
}

impl AnyTransport {
    /// The app's transport `callable` (TypeError when it is not callable).
    pub fn python(py: Python<'_>, callable: PyObject) -> PyResult<Self> {
        if !callable.bind(py).is_callable() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "transport must be callable",
            ));
        }
        Ok(AnyTransport::Python(PyTransport {
            callable: Arc::new(callable),
            raised: Mutex::new(None),
        }))
    }

    /// The app's callable, when this is one (what a vault's [`Reach`] keeps of it).
    pub fn callable(&self) -> Option<Arc<PyObject>> {
        match self {
            AnyTransport::Python(t) => Some(t.callable.clone()),
            AnyTransport::Builtin(_) => None,
        }
    }

    /// The transport `reach` says for `store`: the app's callable (with an exception slot of
    /// its own), else the built-in one with its deadlines.
    pub fn for_reach(reach: &VaultReach, store: &Store) -> Result<Self> {
        Ok(match &reach.transport {
            Some(callable) => AnyTransport::Python(PyTransport {
                callable: callable.clone(),
                raised: Mutex::new(None),
            }),
            None => AnyTransport::Builtin(BuiltinTransport::for_store_with(store, reach.http)?),
        })
    }

    /// The exception a Python transport raised during the last sync, if any.
    pub fn take_raised(&self) -> Option<PyErr> {
        match self {
            AnyTransport::Python(t) => t.raised.lock().unwrap_or_else(|p| p.into_inner()).take(),
            _ => None,
        }
    }
}
