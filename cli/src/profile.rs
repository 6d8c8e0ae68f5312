//! S3 credentials for the command: the `AWS_*` environment as the libraries read it, else a
//! profile of the AWS shared credentials file (`~/.aws/credentials`, or
//! `AWS_SHARED_CREDENTIALS_FILE`), named by `--profile`, `AWS_PROFILE` or `default`.

use std::path::PathBuf;

use bucketsync::{Credentials, Error, Result};

/// The credentials to use, or `None` to let the session read the environment (which says
/// what is missing when nothing is found).
pub fn credentials(profile: Option<&str>) -> Result<Option<Credentials>> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if env("AWS_ACCESS_KEY_ID").is_some() && profile.is_none() {
        return Ok(None);
    }
    let name = profile
        .map(str::to_owned)
        .or_else(|| env("AWS_PROFILE"))
        .unwrap_or_else(|| "default".into());
    let path = match env("AWS_SHARED_CREDENTIALS_FILE") {
        Some(path) => PathBuf::from(path),
        None => match directories::BaseDirs::new() {
            Some(dirs) => dirs.home_dir().join(".aws").join("credentials"),
            None => return Ok(None),
        },
    };
    let file = match ini::Ini::load_from_file(&path) {
        Ok(file) => file,
        // No file: the environment is all there is (unless a profile was asked for).
        Err(ini::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return match profile {
                Some(name) => Err(Error::Config(format!(
                    "no AWS credentials file at {} for the profile {name:?}",
                    path.display()
                ))),
                None => Ok(None),
            };
        }
        Err(e) => {
            return Err(Error::Config(format!(
                "cannot read the AWS credentials file {}: {e}",
                path.display()
            )))
        }
    };
    let Some(section) = file.section(Some(name.as_str())) else {
        return match profile.is_some() || env("AWS_PROFILE").is_some() {
            true => Err(Error::Config(format!(
                "the AWS credentials file {} has no profile {name:?}",
                path.display()
            ))),
            false => Ok(None),
        };
    };
    let get = |key: &str| section.get(key).map(str::trim).filter(|v| !v.is_empty());
    match (get("aws_access_key_id"), get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => {
            Credentials::new(id, secret, get("aws_session_token").map(str::to_owned)).map(Some)
        }
        _ => Err(Error::Config(format!(
            "the profile {name:?} in {} has no aws_access_key_id and aws_secret_access_key",
            path.display()
        ))),
    }
}
