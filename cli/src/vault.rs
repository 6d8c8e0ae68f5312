//! Opening this device's replica of a vault: the store, the key file and the state path from
//! the global options.

use std::io::Write;
use std::path::{Path, PathBuf};

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::http_options::HttpOptions;
use bucketsync::io::reach::{Given, Nothing, Reach};
use bucketsync::io::shared_vaults::SharedOptions;
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

/// Where the vault key is kept: a key file (`--key-file`), or the OS keyring under the
/// service `bucketsync` and the store URL.
pub enum KeyPlace<'a> {
    File(&'a Path),
    Keyring { store: &'a str },
}

const KEYRING_SERVICE: &str = "bucketsync";

impl KeyPlace<'_> {
    /// The key file when one is named, else the keyring entry of the store.
    pub fn of(global: &Global) -> Result<KeyPlace<'_>> {
        Ok(match global.key_file.as_deref() {
            Some(path) => KeyPlace::File(path),
            None => KeyPlace::Keyring {
                store: store_url(global)?,
            },
        })
    }

    fn entry(store: &str) -> Result<keyring::Entry> {
        keyring::Entry::new(KEYRING_SERVICE, store).map_err(keyring_error)
    }

    /// Whether a key is kept there already.
    pub fn exists(&self) -> Result<bool> {
        match self {
            KeyPlace::File(path) => Ok(path.exists()),
            KeyPlace::Keyring { store } => match Self::entry(store)?.get_password() {
                Ok(_) => Ok(true),
                Err(keyring::Error::NoEntry) => Ok(false),
                Err(e) => Err(keyring_error(e)),
            },
        }
    }

    /// The vault key kept there.
    pub fn read(&self) -> Result<VaultKey> {
        let (text, shown) = match self {
            KeyPlace::File(path) => (
                std::fs::read_to_string(path).map_err(|e| {
                    Error::Config(format!(
                        "cannot read the key file {}: {e} (init or join writes it)",
                        path.display()
                    ))
                })?,
                format!("the key file {}", path.display()),
            ),
            KeyPlace::Keyring { store } => match Self::entry(store)?.get_password() {
                Ok(code) => (code, self.to_string()),
                Err(keyring::Error::NoEntry) => {
                    return Err(Error::Config(format!(
                        "no vault key for {store} in the OS keyring: run init or join first,                          or pass --key-file PATH"
                    )))
                }
                Err(e) => return Err(keyring_error(e)),
            },
        };
        VaultKey::from_recovery_code(text.trim())
            .map_err(|e| Error::Config(format!("{shown}: {e}")))
    }

    /// Keeps `key` there; never replaces a key kept already.
    pub fn write(&self, key: &VaultKey) -> Result<()> {
        match self {
            KeyPlace::File(path) => write_key_file(path, key),
            KeyPlace::Keyring { store } => {
                if self.exists()? {
                    return Err(Error::Config(format!(
                        "the OS keyring holds a vault key for {store} already"
                    )));
                }
                Self::entry(store)?
                    .set_password(&key.recovery_code())
                    .map_err(keyring_error)
            }
        }
    }

    /// Forgets the key kept there (a failed init).
    pub fn remove(&self) {
        match self {
            KeyPlace::File(path) => {
                let _ = std::fs::remove_file(path);
            }
            KeyPlace::Keyring { store } => {
                if let Ok(entry) = Self::entry(store) {
                    let _ = entry.delete_credential();
                }
            }
        }
    }
}

impl std::fmt::Display for KeyPlace<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyPlace::File(path) => write!(f, "{}", path.display()),
            KeyPlace::Keyring { store } => {
                write!(
                    f,
                    "the OS keyring (service {KEYRING_SERVICE:?}, account {store:?})"
                )
            }
        }
    }
}

fn keyring_error(e: keyring::Error) -> Error {
    Error::Config(format!(
        "the OS keyring cannot be used ({e}): pass --key-file PATH (or set BUCKETSYNC_KEY_FILE)"
    ))
}

/// Writes `key`'s recovery code to a new file at `path`, readable by its owner only. Fails if
/// the file exists: a key file is never overwritten.
fn write_key_file(path: &Path, key: &VaultKey) -> Result<()> {
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
    let path = state_path(global, url, &key)?;
    open_at(global, url, key, mode, &path)
}

/// Opens the replica of `key`'s vault in the store `url`, its state at `path`.
fn open_at(
    global: &Global,
    url: &str,
    key: VaultKey,
    mode: OpenMode,
    path: &Path,
) -> Result<Vault> {
    let store = Store::parse(url)?;
    let transport = BuiltinTransport::for_store(&store)?;
    let credentials = match store {
        Store::Folder { .. } => None,
        _ => crate::profile::credentials(global.profile.as_deref())?,
    };
    let session = Session::open(SessionOptions {
        device: global.device.as_deref(),
        mode,
        credentials,
        ..SessionOptions::new(url, &key, StateLocation::File { path, wait: false })
    })?;
    Ok(Vault {
        session,
        transport: Metered(transport),
        store,
        key,
    })
}

/// Opens the replica with the key from the key file: the home's, or with `--vault LABEL` the
/// shared vault the home keeps under that label.
pub fn open_existing(global: &Global) -> Result<Vault> {
    let home = open_home(global)?;
    match &global.vault {
        None => Ok(home),
        Some(label) => open_shared(global, &home, label),
    }
}

/// Opens the home itself (the vault of --store and --key-file), whatever --vault says.
pub fn open_home(global: &Global) -> Result<Vault> {
    store_url(global)?;
    let key = KeyPlace::of(global)?.read()?;
    open(global, key, OpenMode::Join)
}

/// How a home reaches its store: its credentials, the built-in transport, the default
/// deadlines (the command has no transport or signer of its own).
pub fn reach(home: &Vault) -> Reach<Nothing, Nothing> {
    Reach::of(&home.session, None, None, HttpOptions::default())
}

/// What the command gives for a shared vault's store: the credentials of --vault-profile.
/// The home's serve the vault only on the home's own service (the core's rule).
pub fn given(global: &Global) -> Result<Given<Nothing, Nothing>> {
    let credentials = match &global.vault_profile {
        Some(name) => crate::profile::credentials(Some(name))?,
        None => None,
    };
    Ok(Given {
        credentials,
        ..Given::default()
    })
}

/// Opens this device's replica of the vault the home `home` keeps as `label`; its state lives
/// in the platform's data directory, or beside the home's --state file.
pub fn open_shared(global: &Global, home: &Vault, label: &str) -> Result<Vault> {
    let shared = home.session.shared_vault(label).map_err(|_| {
        Error::Config(format!(
            "this home has no shared vault labelled {label:?} (see `bucketsync shared`; a vault \
             made or accepted on another device shows after a `bucketsync sync` of the home)"
        ))
    })?;
    let key = shared.key().clone();
    let path = match &global.state {
        Some(home_state) => {
            let name = format!("{}.shared-{}", home_state.display(), key.vault_id());
            PathBuf::from(name)
        }
        // One replica per home: two homes on one account (two people) keep apart.
        None => state_path(global, &shared.store, &key)?
            .with_extension(format!("home-{}.state", home.key.vault_id())),
    };
    let options = SharedOptions {
        device: global.device.as_deref(),
        ..SharedOptions::new(StateLocation::File {
            path: &path,
            wait: false,
        })
    };
    let opened = home
        .session
        .open_shared_vault(&reach(home), label, options, given(global)?)?;
    let store = Store::parse(&opened.shared.store)?;
    Ok(Vault {
        transport: Metered(BuiltinTransport::for_store_with(&store, opened.reach.http)?),
        session: opened.vault,
        store,
        key,
    })
}
