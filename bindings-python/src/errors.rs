//! bucketsync errors as Python exceptions: the class of `bucketsync.errors` for the category,
//! with `.category` set and, when a Python callback caused it, `__cause__`.

use bucketsync::{Category, Error};
use pyo3::prelude::*;

fn class_name(category: Category) -> &'static str {
    match category {
        Category::Config => "ConfigError",
        Category::Auth => "AuthError",
        Category::NotFound => "NotFoundError",
        Category::Throttled => "ThrottledError",
        Category::Timeout => "TimeoutError",
        Category::Network => "NetworkError",
        Category::Corrupt => "CorruptError",
        Category::WrongVault => "WrongVaultError",
        Category::Rollback => "RollbackError",
        Category::Conflict => "ConflictError",
        Category::Locked => "LockedError",
        Category::Clock => "ClockError",
        Category::Access => "AccessError",
        _ => "ServerError",
    }
}

/// The exception instance for `error` (not raised).
pub fn exception(py: Python<'_>, error: &Error, cause: Option<PyErr>) -> PyResult<PyObject> {
    let class = py
        .import("bucketsync.errors")?
        .getattr(class_name(error.category()))?;
    let instance = class.call1((error.to_string(),))?;
    instance.setattr("category", error.category().as_str())?;
    if let Some(cause) = cause {
        instance.setattr("__cause__", cause.value(py))?;
    }
    Ok(instance.unbind())
}

/// `error` as a raisable Python error.
pub fn to_py(error: Error) -> PyErr {
    to_py_with_cause(error, None)
}

/// `error` as a raisable Python error whose `__cause__` is `cause`.
pub fn to_py_with_cause(error: Error, cause: Option<PyErr>) -> PyErr {
    Python::with_gil(|py| match exception(py, &error, cause) {
        Ok(instance) => PyErr::from_value(instance.into_bound(py)),
        Err(e) => e,
    })
}

/// A ConflictError with `message` (for a conflict the binding finds, not the core).
pub fn conflict(py: Python<'_>, message: &str) -> PyErr {
    let instance = py
        .import("bucketsync.errors")
        .and_then(|m| m.getattr("ConflictError"))
        .and_then(|class| class.call1((message,)));
    match instance {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}
