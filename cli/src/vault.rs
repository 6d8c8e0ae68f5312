//! Opening this device's replica of a vault: the store, the key file and the state path from
//! the global options.

use std::io::Write;
use std::path::{Path, PathBuf};

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Error, OpenMode, Result, Store, VaultKey};

use crate::args::Global;
use crate::cost::Metered;

/// A replica opened for one command, with the transport its store calls for.
pub struct Vault {
    pub session: Session,
    /// Counted for `--cost`.
    pub transport: Metered<BuiltinTransport>,
    pub store: Store,
    pub key: VaultKey,
}

/// The store URL, or a config error saying how to give one.
pub fn store_url(global: &Global) -> Result<&str> {
    global
        .store
        .as_deref()
        .ok_or_else(|| Error::Config("no store: pass --store URL (or set BUCKETSYNC_STORE)".into()))
}

/// The key file path, or a config error saying how to give one.
pub fn key_path(global: &Global) -> Result<&Path> {
    global.key_file.as_deref().ok_or_else(|| {
        Error::Config(
            "no key file: pass --key-file PATH (or set BUCKETSYNC_KEY_FILE); init and join \
             write it"
                .into(),
        )
    })
}

/// The vault key in the key file.
pub fn read_key(path: &Path) -> Result<VaultKey> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the key file {}: {e} (init or join writes it)",
            path.display()
        ))
    })?;
    VaultKey::from_recovery_code(text.trim())
        .map_err(|e| Error::Config(format!("the key file {}: {e}", path.display())))
}

/// Writes `key`'s recovery code to a new file at `path`, readable by its owner only. Fails if
/// the file exists: a key file is never overwritten.
pub fn write_key(path: &Path, key: &VaultKey) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let failed = |e: std::io::Error| {
        Error::Config(format!("cannot write the key file {}: {e}", path.display()))
    };
    let mut file = options.open(path).map_err(failed)?;
    writeln!(file, "{}", key.recovery_code()).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// Where the replica of `key`'s vault at `store` lives: `--state`, or a file named for the
/// vault and the store in the platform's data directory.
pub fn state_path(global: &Global, store: &str, key: &VaultKey) -> Result<PathBuf> {
    if let Some(path) = &global.state {
        return Ok(path.clone());
    }
    let dirs = directories::ProjectDirs::from("", "", "bucketsync").ok_or_else(|| {
        Error::Config("no home directory to keep the state in: pass --state PATH".into())
    })?;
    let dir = dirs.data_dir();
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", dir.display())))?;
    // The same key may be used with two stores: one replica each.
    let store_tag = blake3::hash(store.as_bytes()).to_hex();
    Ok(dir.join(format!("{}-{}.state", key.vault_id(), &store_tag[..12])))
}

/// Opens the replica of `key`'s vault for a command. `mode` matters only for a replica that
/// has not synced yet.
pub fn open(global: &Global, key: VaultKey, mode: OpenMode) -> Result<Vault> {
    let url = store_url(global)?;
    let store = Store::parse(url)?;
    let transport = BuiltinTransport::for_store(&store)?;
    let path = state_path(global, url, &key)?;
    let credentials = match store {
        Store::Folder { .. } => None,
        _ => crate::profile::credentials(global.profile.as_deref())?,
    };
    let session = Session::open(SessionOptions {
        device: global.device.as_deref(),
        mode,
        credentials,
        ..SessionOptions::new(
            url,
            &key,
            StateLocation::File {
                path: &path,
                wait: false,
            },
        )
    })?;
    Ok(Vault {
        session,
        transport: Metered(transport),
        store,
        key,
    })
}

/// Opens the replica with the key from the key file.
pub fn open_existing(global: &Global) -> Result<Vault> {
    store_url(global)?;
    let key = read_key(key_path(global)?)?;
    open(global, key, OpenMode::Join)
}
