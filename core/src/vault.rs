//! Opening a replica the way every binding does, so every platform applies the same rules:
//! parse the store URL, restore the saved state or start a new one, check the device id, and
//! find credentials. Also the state file, written atomically.

use std::path::Path;

use crate::credentials::Credentials;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ids::DeviceId;
use crate::key::VaultKey;
use crate::store::Store;

/// What [`open`] needs.
#[derive(Debug)]
pub struct OpenOptions<'a> {
    /// `s3://…` or `file:///…`.
    pub store: &'a str,
    /// The vault key.
    pub key: &'a VaultKey,
    /// A stable device id (32 hex digits); random for a new state when `None`.
    pub device: Option<&'a str>,
    /// A state saved by [`Engine::export_state`], if there is one.
    pub state: Option<&'a [u8]>,
    /// Explicit S3 credentials; otherwise they come from the `AWS_*` environment.
    pub credentials: Option<Credentials>,
    /// The app executes requests itself (and may sign them there): missing credentials are
    /// then not an error, and requests go out unsigned.
    pub own_transport: bool,
}

/// Opens a replica.
///
/// # Errors
/// `Config` for a bad store URL or device id, a state that belongs to another device, or an
/// `s3://` store without credentials; `WrongVault` or `Corrupt` for a state made with another
/// key or damaged.
pub fn open(options: OpenOptions<'_>) -> Result<Engine> {
    let store = Store::parse(options.store)?;
    let device = options.device.map(DeviceId::parse).transpose()?;
    let mut engine = match options.state {
        Some(state) => {
            let engine = Engine::from_state(options.key, store.clone(), state)?;
            if let Some(device) = device.filter(|d| *d != engine.device()) {
                return Err(Error::Config(format!(
                    "the saved state belongs to device {}, not {device}",
                    engine.device()
                )));
            }
            engine
        }
        None => Engine::new(
            options.key,
            store.clone(),
            device.map_or_else(DeviceId::random, Ok)?,
        ),
    };
    if let Store::S3(_) = store {
        let credentials = match options.credentials {
            Some(credentials) => Some(credentials),
            None if options.own_transport => Credentials::from_env().ok(),
            None => Some(Credentials::from_env().map_err(|e| {
                Error::Config(format!(
                    "{}: pass credentials, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
                    e.to_string().trim_start_matches("configuration error: ")
                ))
            })?),
        };
        if let Some(credentials) = credentials {
            engine.set_credentials(credentials);
        }
    }
    Ok(engine)
}

/// Reads a state file; `None` when it does not exist yet.
///
/// # Errors
/// `Config` when it exists but cannot be read.
pub fn read_state_file(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Config(format!(
            "cannot read the state file {}: {e}",
            path.display()
        ))),
    }
}

/// Writes a state file atomically: a reader (or a crash) sees the old file or the new one,
/// never a mix.
///
/// # Errors
/// `Config` when the file cannot be written.
pub fn write_state_file(path: &Path, state: &[u8]) -> Result<()> {
    use std::io::Write;
    let fail = |e: std::io::Error| {
        Error::Config(format!(
            "cannot write the state file {}: {e}",
            path.display()
        ))
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp).map_err(fail)?;
        file.write_all(state)
            .and_then(|()| file.sync_all())
            .map_err(fail)?;
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options<'a>(store: &'a str, key: &'a VaultKey) -> OpenOptions<'a> {
        OpenOptions {
            store,
            key,
            device: None,
            state: None,
            credentials: None,
            own_transport: false,
        }
    }

    #[test]
    fn device_ids_and_states_must_agree() {
        let key = VaultKey::from_bytes([1; 32]);
        let device = "0123456789abcdef0123456789abcdef";
        let engine = open(OpenOptions {
            device: Some(device),
            ..options("file:///tmp/x", &key)
        })
        .unwrap();
        assert_eq!(engine.device().to_string(), device);
        let state = engine.export_state();
        let other = "ffffffffffffffffffffffffffffffff";
        let err = open(OpenOptions {
            device: Some(other),
            state: Some(&state),
            ..options("file:///tmp/x", &key)
        })
        .unwrap_err();
        assert!(err.to_string().contains("belongs to device 0123"), "{err}");
    }

    #[test]
    fn s3_needs_credentials_unless_the_app_brings_its_transport() {
        let key = VaultKey::from_bytes([1; 32]);
        let url = "s3://bucket-x/p?endpoint=http://127.0.0.1:1";
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            let err = open(options(url, &key)).unwrap_err();
            assert!(
                err.to_string()
                    .contains("pass credentials, or set AWS_ACCESS_KEY_ID"),
                "{err}"
            );
        }
        assert!(open(OpenOptions {
            own_transport: true,
            ..options(url, &key)
        })
        .is_ok());
    }

    #[test]
    fn state_files_are_replaced_whole() {
        let dir = std::env::temp_dir().join(format!("bucketsync-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("replica.state");
        assert_eq!(read_state_file(&path).unwrap(), None);
        write_state_file(&path, b"one").unwrap();
        write_state_file(&path, b"two").unwrap();
        assert_eq!(
            read_state_file(&path).unwrap().as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
