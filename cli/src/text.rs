//! How values are written for people.

use std::time::{Duration, UNIX_EPOCH};

/// A wall time in milliseconds as RFC 3339 (UTC, seconds).
pub fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// A byte count for people: `12.3 MiB`.
pub fn bytes(n: u64) -> String {
    indicatif::BinaryBytes(n).to_string()
}

/// A key or value shown as text: its UTF-8, with anything else escaped.
pub fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
