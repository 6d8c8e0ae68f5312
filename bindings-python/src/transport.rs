//! The transports a Python vault can use: the built-in ones, or a Python callable.

use std::sync::Mutex;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::Transport;
use bucketsync::{Category, Error, Request, Response, Result};
use pyo3::prelude::*;

use crate::convert::{response_from, PyRequest};

/// A Python callable `transport(request) -> Response`. What it raises becomes a `network`
/// error, and the Python exception is kept to become the raised error's `__cause__`.
pub struct PyTransport {
    pub callable: PyObject,
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
            callable,
            raised: Mutex::new(None),
        }))
    }

    /// Another transport calling the same Python callable (with its own raised exception),
    /// or None for a built-in transport, which serves only its own store.
    pub fn same_callable(&self, py: Python<'_>) -> Option<Self> {
        match self {
            AnyTransport::Python(t) => Some(AnyTransport::Python(PyTransport {
                callable: t.callable.clone_ref(py),
                raised: Mutex::new(None),
            })),
            AnyTransport::Builtin(_) => None,
        }
    }

    /// The exception a Python transport raised during the last sync, if any.
    pub fn take_raised(&self) -> Option<PyErr> {
        match self {
            AnyTransport::Python(t) => t.raised.lock().unwrap_or_else(|p| p.into_inner()).take(),
            _ => None,
        }
    }
}
