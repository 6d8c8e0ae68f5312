//! The quickstart: two devices, one vault, one store. `examples/quickstart.rs` runs it.

use std::fs;
use std::io::Write;
use std::path::Path;

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Credentials, OpenMode, Result, Store, SyncReport, VaultKey};

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
    let (key, new_vault) = load_or_create_key(&work.join("vault.key"), out)?;
    writeln!(out, "store:  {}", store.display_name())?;
    writeln!(out, "vault:  {}", key.vault_id())?;
    // ANCHOR: transport
    let transport = BuiltinTransport::for_store(&store)?;
    // ANCHOR_END: transport
    // Each put is in the device's journal when it returns; each device's state stays locked
    // to this process until it is closed.
    // The laptop creates the vault the first time (with a new key); after that both join it,
    // so a wrong key or store fails clearly instead of starting an empty vault.
    let laptop_mode = if new_vault {
        OpenMode::Create
    } else {
        OpenMode::Join
    };
    let laptop = open_device(&key, store_url, &credentials, "laptop", laptop_mode, work)?;
    let phone = open_device(&key, store_url, &credentials, "phone", OpenMode::Join, work)?;

    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    // ANCHOR: write_and_sync
    laptop.put("settings/theme", "dark")?;
    laptop.put("notes/groceries", "eggs, milk")?;
    laptop.put(format!("history/{run}"), "cargo run --example quickstart")?;
    phone.put("notes/todo", "call the bank")?;
    phone.put("notes/scratch", "temporary")?;
    report(out, "laptop", &sync(&laptop, &transport).await?)?;
    report(out, "phone", &sync(&phone, &transport).await?)?;

    // The phone edits what the laptop wrote and deletes its own scratch note.
    phone.put("notes/groceries", "eggs, milk, bread")?;
    phone.delete("notes/scratch")?;
    report(out, "phone", &sync(&phone, &transport).await?)?;
    report(out, "laptop", &sync(&laptop, &transport).await?)?;
    // ANCHOR_END: write_and_sync

    for device in laptop.devices(30 * 86_400_000)? {
        writeln!(
            out,
            "device {} {:<8} {} segment(s){}",
            device.id,
            device.label,
            device.segments,
            if device.this_device {
                " (this one)"
            } else {
                ""
            }
        )?;
    }
    for (name, device) in [("laptop", &laptop), ("phone", &phone)] {
        writeln!(out, "\n{name} ({}) sees:", device.device()?)?;
        for k in device.keys(b"")? {
            let value = device.get(&k)?.unwrap_or_default();
            writeln!(
                out,
                "  {:<28} = {}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(&value)
            )?;
        }
    }
    if laptop.keys(b"")? != phone.keys(b"")? {
        return Err("the two devices did not converge".into());
    }
    laptop.close()?;
    phone.close()?;
    Ok(())
}

// ANCHOR: sync_fn
async fn sync(device: &Session, transport: &BuiltinTransport) -> Result<SyncReport> {
    device.sync(transport, DEFAULT_CONCURRENCY, |_| {}).await
}
// ANCHOR_END: sync_fn

fn report(out: &mut dyn Write, name: &str, report: &SyncReport) -> std::io::Result<()> {
    writeln!(out, "sync {name:<7} {report}")
}

// ANCHOR: key
/// The vault key, and whether it is new (then the vault is created).
fn load_or_create_key(path: &Path, out: &mut dyn Write) -> Result<(VaultKey, bool), Failure> {
    if let Ok(code) = fs::read_to_string(path) {
        return Ok((VaultKey::from_recovery_code(&code)?, false));
    }
    let key = VaultKey::generate()?;
    fs::write(path, key.recovery_code())?;
    writeln!(
        out,
        "new vault key; its recovery code is in {}",
        path.display()
    )?;
    Ok((key, true))
}
// ANCHOR_END: key

// ANCHOR: open_device
fn open_device(
    key: &VaultKey,
    store: &str,
    credentials: &Option<Credentials>,
    name: &str,
    mode: OpenMode,
    work: &Path,
) -> Result<Session> {
    let path = work.join(format!("{name}.state"));
    let state = StateLocation::File {
        path: &path,
        wait: false,
    };
    Session::open(SessionOptions {
        credentials: credentials.clone(),
        device: Some(name),
        mode,
        ..SessionOptions::new(store, key, state)
    })
}
// ANCHOR_END: open_device
