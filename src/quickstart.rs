//! The quickstart: two devices, one vault, one store. `examples/quickstart.rs` runs it.

use std::fs;
use std::io::Write;
use std::path::Path;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::{Credentials, DeviceId, Engine, Result, Store, SyncReport, VaultKey};

use crate::{sync, wall_clock};

type Failure = Box<dyn std::error::Error>;

/// Runs the quickstart on `store_url`, keeping the key and both devices' states in `work`,
/// writing what happens to `out`. `credentials` are needed for `s3://` stores.
///
/// # Errors
/// Any error of the store, the key file or the state files.
pub async fn run(
    store_url: &str,
    credentials: Option<Credentials>,
    work: &Path,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    fs::create_dir_all(work)?;
    let store = Store::parse(store_url)?;
    let key = load_or_create_key(&work.join("vault.key"), out)?;
    writeln!(out, "store:  {}", store.display_name())?;
    writeln!(out, "vault:  {}", key.vault_id())?;
    let transport = BuiltinTransport::for_store(&store)?;
    let mut laptop = open_device(&key, &store, &credentials, &work.join("laptop.state"))?;
    let mut phone = open_device(&key, &store, &credentials, &work.join("phone.state"))?;

    let run = wall_clock().as_millis();
    laptop.put("settings/theme", "dark", wall_clock());
    laptop.put("notes/groceries", "eggs, milk", wall_clock());
    laptop.put(
        format!("history/{run}"),
        "cargo run --example quickstart",
        wall_clock(),
    );
    phone.put("notes/todo", "call the bank", wall_clock());
    phone.put("notes/scratch", "temporary", wall_clock());
    report(out, "laptop", &sync(&mut laptop, &transport).await?)?;
    report(out, "phone", &sync(&mut phone, &transport).await?)?;

    // The phone edits what the laptop wrote and deletes its own scratch note.
    phone.put("notes/groceries", "eggs, milk, bread", wall_clock());
    phone.delete("notes/scratch", wall_clock());
    report(out, "phone", &sync(&mut phone, &transport).await?)?;
    report(out, "laptop", &sync(&mut laptop, &transport).await?)?;

    for (name, device) in [("laptop", &laptop), ("phone", &phone)] {
        writeln!(out, "\n{name} ({}) sees:", device.device())?;
        for k in device.keys(b"") {
            let value = device.get(&k).unwrap_or_default();
            writeln!(
                out,
                "  {:<28} = {}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(value)
            )?;
        }
    }
    if laptop.keys(b"") != phone.keys(b"") {
        return Err("the two devices did not converge".into());
    }
    fs::write(work.join("laptop.state"), laptop.export_state())?;
    fs::write(work.join("phone.state"), phone.export_state())?;
    Ok(())
}

fn report(out: &mut dyn Write, name: &str, report: &SyncReport) -> std::io::Result<()> {
    writeln!(out, "sync {name:<7} {report}")
}

fn load_or_create_key(path: &Path, out: &mut dyn Write) -> Result<VaultKey, Failure> {
    if let Ok(code) = fs::read_to_string(path) {
        return Ok(VaultKey::from_recovery_code(&code)?);
    }
    let key = VaultKey::generate()?;
    fs::write(path, key.recovery_code())?;
    writeln!(
        out,
        "new vault key; its recovery code is in {}",
        path.display()
    )?;
    Ok(key)
}

fn open_device(
    key: &VaultKey,
    store: &Store,
    credentials: &Option<Credentials>,
    state: &Path,
) -> Result<Engine, Failure> {
    let mut engine = match fs::read(state) {
        Ok(bytes) => Engine::from_state(key, store.clone(), &bytes)?,
        Err(_) => Engine::new(key, store.clone(), DeviceId::random()?),
    };
    if let Some(credentials) = credentials {
        engine.set_credentials(credentials.clone());
    }
    Ok(engine)
}
