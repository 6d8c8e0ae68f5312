//! Deadlines for the built-in HTTP transport's requests, as every binding takes them. A build
//! without the `reqwest` feature (phones) has no HTTP client of its own and ignores them.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::settings::not_a_count;

/// Deadlines for the built-in HTTP transport's requests (native targets; on wasm32 the
/// browser's `fetch` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// The longest a request may go with no byte moving: the body going up, the answer coming
    /// down, or the wait for the answer once the body is handed to the socket. A server that
    /// accepts a connection and never answers, or stops halfway through a body, fails the
    /// request after this long.
    pub stall_timeout: Duration,
    /// The longest one request may take in all, however steadily its bytes move. The default
    /// lets the largest object the core writes (a 32 MiB segment or pack part) through at
    /// about 40 KB/s.
    pub total_timeout: Duration,
    /// Establishing a connection.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            stall_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(15 * 60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl HttpOptions {
    /// The defaults, with the stall and total deadlines given in seconds (as bindings take
    /// them); `None` keeps a default. `names` are what the app calls the two settings.
    ///
    /// # Errors
    /// `Config` naming the setting when a value is not a finite number of seconds > 0.
    pub fn from_seconds(stall: Option<f64>, total: Option<f64>, names: [&str; 2]) -> Result<Self> {
        let defaults = HttpOptions::default();
        let seconds = |value: Option<f64>, name: &str, default: Duration| match value {
            None => Ok(default),
            Some(s) if s.is_finite() && s > 0.0 && s < 1e9 => Ok(Duration::from_secs_f64(s)),
            Some(s) => Err(Error::Config(format!(
                "{name} must be a number of seconds > 0, not {}",
                if s >= 1e9 {
                    "that large"
                } else {
                    not_a_count(s)
                }
            ))),
        };
        let [stall_name, total_name] = names;
        Ok(HttpOptions {
            stall_timeout: seconds(stall, stall_name, defaults.stall_timeout)?,
            total_timeout: seconds(total, total_name, defaults.total_timeout)?,
            connect_timeout: defaults.connect_timeout,
        })
    }
}
