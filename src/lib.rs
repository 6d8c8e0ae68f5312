//! Helpers shared by the workspace's examples, benchmark and integration tests.

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
    futures::executor::block_on(driver::sync(
        engine,
        transport,
        wall_clock,
        driver::DEFAULT_CONCURRENCY,
    ))
}
