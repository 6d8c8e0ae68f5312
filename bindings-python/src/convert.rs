//! Conversions between Python values and the core's types.

use bucketsync::{Request, Response};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

/// A key or value: `bytes` (or `bytearray`, `memoryview`), or `str` stored as UTF-8.
pub struct Bytes(pub Vec<u8>);

impl<'py> FromPyObject<'py> for Bytes {
    fn extract_bound(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(s) = obj.downcast::<PyString>() {
            return Ok(Bytes(s.to_cow()?.as_bytes().to_vec()));
        }
        if let Ok(b) = obj.downcast::<PyBytes>() {
            return Ok(Bytes(b.as_bytes().to_vec()));
        }
        obj.extract::<Vec<u8>>().map(Bytes).map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(format!(
                "keys and values are str or bytes, not {}",
                obj.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ))
        })
    }
}

/// A request as the Python transport sees it.
#[pyclass(module = "bucketsync", name = "Request", frozen, get_all)]
pub struct PyRequest {
    /// `"GET"`, `"PUT"`, …
    pub method: String,
    /// The full URL.
    pub url: String,
    /// `(name, value)` pairs, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Py<PyBytes>,
}

#[pymethods]
impl PyRequest {
    fn __repr__(&self) -> String {
        format!(
            "Request({} {})",
            self.method,
            self.url.split('?').next().unwrap_or_default()
        )
    }
}

impl PyRequest {
    pub fn new(py: Python<'_>, request: &Request) -> Self {
        PyRequest {
            method: request.method.as_str().to_owned(),
            url: request.url.clone(),
            headers: request.headers.clone(),
            body: PyBytes::new(py, &request.body).unbind(),
        }
    }
}

/// A response a Python transport returns.
#[pyclass(module = "bucketsync", name = "Response", frozen, get_all)]
#[derive(Clone)]
pub struct PyResponse {
    /// The HTTP status.
    pub status: u16,
    /// `(name, value)` pairs.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

#[pymethods]
impl PyResponse {
    #[new]
    #[pyo3(signature = (status, headers = Vec::new(), body = Bytes(Vec::new())))]
    fn py_new(status: u16, headers: Vec<(String, String)>, body: Bytes) -> Self {
        PyResponse {
            status,
            headers,
            body: body.0,
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "Response(status={}, {} bytes)",
            self.status,
            self.body.len()
        )
    }
}

impl From<PyResponse> for Response {
    fn from(r: PyResponse) -> Self {
        Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }
}

/// Reads what a Python transport returned: a `Response`, or a `(status, headers, body)` tuple.
pub fn response_from(obj: &Bound<'_, PyAny>) -> PyResult<Response> {
    if let Ok(r) = obj.extract::<PyResponse>() {
        return Ok(r.into());
    }
    let (status, headers, body): (u16, Vec<(String, String)>, Bytes) = obj.extract().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err(
            "a transport must return bucketsync.Response(status, headers, body) or a (status, headers, body) tuple",
        )
    })?;
    Ok(Response {
        status,
        headers,
        body: body.0,
    })
}

/// How far a sync has come; passed to the `progress` callback of `Vault.sync`.
#[pyclass(module = "bucketsync", frozen, get_all)]
pub struct Progress {
    /// Requests answered so far.
    pub requests_done: u64,
    /// Requests handed out so far (grows as the sync learns what it needs).
    pub requests_total: u64,
    /// Body bytes sent so far.
    pub bytes_sent: u64,
    /// Body bytes received so far.
    pub bytes_received: u64,
}

impl From<bucketsync::driver::Progress> for Progress {
    fn from(p: bucketsync::driver::Progress) -> Self {
        Progress {
            requests_done: p.requests_done,
            requests_total: p.requests_total,
            bytes_sent: p.bytes_sent,
            bytes_received: p.bytes_received,
        }
    }
}

#[pymethods]
impl Progress {
    pub(crate) fn __repr__(&self) -> String {
        format!(
            "Progress(requests_done={}, requests_total={}, bytes_sent={}, bytes_received={})",
            self.requests_done, self.requests_total, self.bytes_sent, self.bytes_received
        )
    }
}
