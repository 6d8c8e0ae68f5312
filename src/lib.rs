//! Helpers shared by the workspace's examples, benchmark and integration tests.

pub mod generated;
pub mod quickstart;
pub mod servers;

use std::time::{SystemTime, UNIX_EPOCH};

use bucketsync::driver::{self, Transport};
use bucketsync::{Engine, Result, SyncReport, Timestamp};

/// The machine's wall clock as the core's [`Timestamp`].
pub fn wall_clock() -> Timestamp {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("system clock after 1970");
    Timestamp(since.as_millis() as u64)
}

/// Runs one sync to completion on the current thread.
pub fn block_sync<T: Transport>(engine: &mut Engine, transport: &T) -> Result<SyncReport> {
    block_sync_at(engine, transport, wall_clock)
}

/// Runs one sync to completion on the current thread, with the caller's clock reading `now`.
pub fn block_sync_at<T: Transport>(
    engine: &mut Engine,
    transport: &T,
    now: impl Fn() -> Timestamp,
) -> Result<SyncReport> {
    futures::executor::block_on(driver::sync(
        engine,
        transport,
        now,
        driver::DEFAULT_CONCURRENCY,
    ))
}

/// Every file under `dir`, as (path relative to `dir`, contents), sorted by path.
pub fn bucket_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                let bytes = std::fs::read(&path).expect("readable bucket file");
                out.push((rel.to_string_lossy().replace('\\', "/"), bytes));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// A `file://` store URL for `dir`.
pub fn folder_store(dir: &std::path::Path) -> bucketsync::Store {
    bucketsync::Store::parse(&format!("file://{}", dir.display())).expect("absolute temp dir")
}

/// Runs one sync to completion inside an async context (any transport, reqwest included).
pub async fn sync<T: Transport>(engine: &mut Engine, transport: &T) -> Result<SyncReport> {
    driver::sync(engine, transport, wall_clock, driver::DEFAULT_CONCURRENCY).await
}

/// A fresh entropy source from the operating system, for engines made in tests and examples.
pub fn entropy() -> bucketsync::Entropy {
    bucketsync::Entropy::from_os().expect("the OS has randomness")
}
