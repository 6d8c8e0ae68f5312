//! # bucketsync
//!
//! End-to-end encrypted key-value sync between devices through an S3-compatible bucket, with
//! no server of its own.
//!
//! This crate is the **sans-IO core**: it holds a replica's state, encrypts, merges, resolves
//! conflicts, and describes the requests to make. It does not get any timestamp from the
//! operating system, opens no socket, starts no thread and needs no async runtime: the caller
//! passes the time in, executes the [`Request`]s it hands out and feeds back the
//! [`Response`]s. That is what lets the same core run in a browser, on a phone, in Python
//! and in Rust. See [`Engine`] for the contract.
//!
//! The host side lives apart, in `io` (feature `driver`): the driver that runs an engine against
//! a `Transport`, the local-folder bucket (`folder`), the reqwest transport (`reqwest`), the
//! state files with their journal and lock, and the `Session` every binding opens a vault with.
//!
//! The bucket format is specified in `docs/FORMAT.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod buffer;
mod checkpoint;
mod chunker;
mod clock;
mod codec;
mod credentials;
mod crypto;
mod engine;
pub mod entropy;
mod error;
pub mod export;
mod file;
#[cfg(test)]
mod format_vectors;
pub mod grant;
pub mod home;
mod http;
pub mod identity;
mod ids;
mod key;
mod manifest;
pub mod membership;
pub mod pack;
mod parallel;
mod record;
mod report;
mod retry;
pub mod s3;
pub mod schedule;
pub mod segment;
pub mod settings;
pub mod sign;
pub mod signed;
mod store;
#[doc(hidden)]
pub mod testing;
pub mod transfer;

#[cfg(feature = "driver")]
pub mod io;
#[cfg(all(feature = "thread", not(target_arch = "wasm32")))]
pub use io::auto_sync_thread;
#[cfg(feature = "folder")]
pub use io::builtin_transport;
#[cfg(all(feature = "driver", not(target_arch = "wasm32")))]
pub use io::file_system;
#[cfg(feature = "folder")]
pub use io::folder;
#[cfg(feature = "reqwest")]
pub use io::reqwest_transport;
#[cfg(feature = "driver")]
pub use io::{
    auto_sync, cancel, driver, files, http_options, listeners, session, state_store, usage,
};
#[cfg(feature = "backup")]
pub use io::{backup, folder_sync, verify};

pub use clock::{Hlc, Stamp};
pub use credentials::Credentials;
pub use crypto::{FORMAT_VERSION, LOG_FORMAT_VERSION, MANIFEST_VERSION, PACK_VERSION};
pub use engine::{
    CompactionPolicy, DeviceSummary, Engine, HistoryPolicy, OpenMode, Restored,
    DEFAULT_MASS_DELETION_LIMIT, JOURNAL_HEADER_LEN, MAX_LABEL_BYTES,
};
pub use entropy::Entropy;
pub use error::{Category, Error, Result};
pub use file::FileInfo;
pub use http::{
    is_secret_header, redacted_url, shown_header_value, Method, Request, RequestKind, Response,
    REDACTED,
};
pub use ids::{DeviceId, RequestId, Timestamp, VaultId};
pub use key::VaultKey;
pub use record::{Record, Records};
pub use report::SyncReport;
pub use retry::RetryPolicy;
pub use schedule::{Happening, Schedule, SchedulePolicy, ScheduleState};
pub use store::{encode_path, encode_query, Encryption, S3Store, Store};
