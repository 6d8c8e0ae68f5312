//! Two devices, one vault, one local-folder bucket.
//!
//! ```text
//! cargo run --example quickstart [file:///abs/dir]
//! ```
//!
//! Each device keeps its state in its own file under `.quickstart/`, and the vault key is kept
//! there as a recovery code: run it again and the devices carry on where they stopped.

use std::fs;
use std::path::{Path, PathBuf};

use bucketsync::folder::FolderBucket;
use bucketsync::{DeviceId, Engine, Store, VaultKey};
use bucketsync_suite::{block_sync, wall_clock};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let work = PathBuf::from(".quickstart");
    fs::create_dir_all(&work)?;
    let store_url = match std::env::args()
        .nth(1)
        .or_else(|| std::env::var("BUCKETSYNC_STORE").ok())
    {
        Some(url) => url,
        None => format!(
            "file://{}",
            fs::canonicalize(&work)?.join("bucket").display()
        ),
    };
    let store = Store::parse(&store_url)?;
    let key = load_or_create_key(&work.join("vault.key"))?;
    println!("store:  {}", store.display_name());
    println!("vault:  {}", key.vault_id());

    let transport = FolderBucket;
    let mut laptop = open_device(&key, &store, &work.join("laptop.state"))?;
    let mut phone = open_device(&key, &store, &work.join("phone.state"))?;

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

    report("laptop", &block_sync(&mut laptop, &transport)?);
    report("phone", &block_sync(&mut phone, &transport)?);

    // The phone edits what the laptop wrote and deletes its own scratch note.
    phone.put("notes/groceries", "eggs, milk, bread", wall_clock());
    phone.delete("notes/scratch", wall_clock());
    report("phone", &block_sync(&mut phone, &transport)?);
    report("laptop", &block_sync(&mut laptop, &transport)?);

    for (name, device) in [("laptop", &laptop), ("phone", &phone)] {
        println!("\n{name} ({}) sees:", device.device());
        for k in device.keys(b"") {
            let value = device.get(&k).unwrap_or_default();
            println!(
                "  {:<28} = {}",
                String::from_utf8_lossy(&k),
                String::from_utf8_lossy(value)
            );
        }
    }
    assert_eq!(laptop.keys(b""), phone.keys(b""), "both devices converge");

    fs::write(work.join("laptop.state"), laptop.export_state())?;
    fs::write(work.join("phone.state"), phone.export_state())?;
    Ok(())
}

fn report(name: &str, report: &bucketsync::SyncReport) {
    println!("sync {name:<7} {report}");
}

fn load_or_create_key(path: &Path) -> Result<VaultKey, Box<dyn std::error::Error>> {
    if let Ok(code) = fs::read_to_string(path) {
        return Ok(VaultKey::from_recovery_code(&code)?);
    }
    let key = VaultKey::generate()?;
    fs::write(path, key.recovery_code())?;
    println!("new vault key; its recovery code is in {}", path.display());
    Ok(key)
}

fn open_device(
    key: &VaultKey,
    store: &Store,
    state: &Path,
) -> Result<Engine, Box<dyn std::error::Error>> {
    Ok(match fs::read(state) {
        Ok(bytes) => Engine::from_state(key, store.clone(), &bytes)?,
        Err(_) => Engine::new(key, store.clone(), DeviceId::random()?),
    })
}
