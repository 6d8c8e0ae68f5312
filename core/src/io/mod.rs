//! The host side: everything that performs I/O, kept apart from the sans-IO state machine
//! (everything outside this folder). Nothing outside `io` imports from it.
//!
//! - [`auto_sync`]: a session syncing in the background as the schedule says, with events;
//! - `auto_sync_thread`: the background sync on a thread of its own (feature `thread`);
//! - [`cancel`]: how a host stops one blocking call, at once and the same way everywhere;
//! - [`driver`]: the async loop that runs one sync over a [`driver::Transport`];
//! - [`folder`]: the local-folder bucket, a transport over a directory;
//! - `reqwest_transport`: real S3 stores over HTTP (feature `reqwest`);
//! - `builtin_transport`: the transport a store URL calls for (`s3://` needs feature `reqwest`);
//! - [`state_store`]: where a replica's snapshot and journal live (files with a lock, or memory);
//! - [`state_lock`]: the rules of a state file's lock, the same for native and Node processes;
//! - [`file_system`]: the file operations the state files use (the OS's, or a simulated disk);
//! - [`session`]: one open vault as every binding uses it: opening, persistence, the lock,
//!   cancel-safe syncs;
//! - [`sharing`]: a home's identity and shared vaults, grants written and accepted;
//! - [`reach`]: how a vault reaches its store, and what a vault opened through a home inherits;
//! - [`shared_vaults`]: a home's shared vaults made, opened and accepted end to end;
//! - [`streams`]: the ends of a file transfer (sources, sinks, partial files), on any host;
//! - [`files`]: storing and reading files through a session, from and to streams;
//! - `partial_file`: a file written beside its path and renamed into place once whole;
//! - `file_writers`: whole files written on threads of their own during a read of many;
//! - [`http_options`]: the built-in HTTP transport's deadlines;
//! - [`listeners`]: who hears a background sync's events, each isolated from the others;
//! - `export`: a session's records exported to and imported from JSON Lines;
//! - `backup`: a local folder backed up into the vault and restored from it (feature `backup`);
//! - `folder_sync`: a local folder synced both ways between devices (feature `backup`);
//! - `verify`: what a backup or synced folder stores, read back and checked (feature `backup`);
//! - [`usage`]: what a vault holds in its store, counted from a listing.

pub mod auto_sync;
#[cfg(all(feature = "thread", not(target_arch = "wasm32")))]
pub mod auto_sync_thread;
#[cfg(feature = "backup")]
pub mod backup;
#[cfg(feature = "folder")]
pub mod builtin_transport;
pub mod cancel;
pub mod driver;
mod export;
#[cfg(not(target_arch = "wasm32"))]
pub mod file_system;
#[cfg(all(feature = "backup", not(target_arch = "wasm32")))]
mod file_writers;
pub mod files;
#[cfg(feature = "folder")]
pub mod folder;
#[cfg(feature = "backup")]
mod folder_decision;
#[cfg(feature = "backup")]
pub mod folder_sync;
pub mod http_options;
pub mod listeners;
#[cfg(not(target_arch = "wasm32"))]
mod partial_file;
pub mod reach;
#[cfg(feature = "reqwest")]
pub mod reqwest_transport;
pub mod session;
pub mod shared_vaults;
pub mod sharing;
pub mod state_lock;
pub mod state_store;
pub mod streams;
pub mod usage;
#[cfg(feature = "backup")]
pub mod verify;
