//! Two devices, one vault, one store.
//!
//! ```text
//! cargo run --example quickstart                       # a local-folder bucket in .quickstart/bucket
//! cargo run --example quickstart -- 's3://bucket/prefix?endpoint=http://127.0.0.1:8333'
//! ```
//!
//! The store URL may also come from `BUCKETSYNC_STORE`. `s3://` stores take their credentials
//! from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` (and `AWS_SESSION_TOKEN`). Each device keeps
//! its state in its own file under `.quickstart/`, and the vault key is kept there as a recovery
//! code: run it again and the devices carry on where they stopped.

use std::path::PathBuf;

use bucketsync::Credentials;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = PathBuf::from(".quickstart");
    std::fs::create_dir_all(&work)?;
    let store_url = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BUCKETSYNC_STORE").ok())
    {
        Some(url) => url,
        None => format!(
            "file://{}",
            std::fs::canonicalize(&work)?.join("bucket").display()
        ),
    };
    let credentials = match store_url.starts_with("s3://") {
        true => Some(Credentials::from_env()?),
        false => None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bucketsync_suite::quickstart::run(
        &store_url,
        credentials,
        &work,
        &mut std::io::stdout(),
    ))
}
