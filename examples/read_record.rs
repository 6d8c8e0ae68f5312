//! Reads one record from a vault and checks its value (the Rust side of the interop tests).
//!
//! ```text
//! cargo run --example read_record -- STORE RECOVERY_CODE KEY EXPECTED   # credentials from BUCKETSYNC_TEST_* or AWS_*
//! cargo run --example read_record -- --new-code                         # prints a fresh recovery code
//! ```

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::{Credentials, DeviceId, Engine, Store, VaultKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--new-code") {
        println!("{}", VaultKey::generate()?.recovery_code());
        return Ok(());
    }
    let [store, code, key, expected] = &args[..] else {
        return Err("usage: read_record STORE RECOVERY_CODE KEY EXPECTED".into());
    };
    let store = Store::parse(store)?;
    let mut engine = Engine::new(
        &VaultKey::from_recovery_code(code)?,
        store.clone(),
        DeviceId::random()?,
        bucketsync_suite::entropy(),
    );
    let credentials = match (
        std::env::var("BUCKETSYNC_TEST_ACCESS_KEY"),
        std::env::var("BUCKETSYNC_TEST_SECRET_KEY"),
    ) {
        (Ok(id), Ok(secret)) => Credentials::new(id, secret, None)?,
        _ => Credentials::from_env()?,
    };
    engine.set_credentials(credentials);
    let transport = BuiltinTransport::for_store(&store)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bucketsync_suite::sync(&mut engine, &transport))?;
    let found = engine
        .get(key.as_bytes())
        .map(|v| String::from_utf8_lossy(v).into_owned());
    if found.as_deref() != Some(expected.as_str()) {
        return Err(format!("{key}: expected {expected:?}, found {found:?}").into());
    }
    println!("rust: read {key} = {expected:?}");
    Ok(())
}
