//! S3 credentials: held in memory only, wiped on drop, never printed.

use core::fmt;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// An S3 access key pair, with a session token for temporary credentials.
///
/// Never persisted by bucketsync. `Debug` shows the access key id only.
#[derive(Clone)]
pub struct Credentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// Credentials from explicit values.
    ///
    /// # Errors
    /// `Config` when the access key id or the secret is empty.
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
        session_token: Option<String>,
    ) -> Result<Self> {
        let access_key_id = access_key_id.into();
        let secret_access_key = Zeroizing::new(secret_access_key.into());
        if access_key_id.trim().is_empty() {
            return Err(Error::Config("the S3 access key id is empty".into()));
        }
        if secret_access_key.is_empty() {
            return Err(Error::Config("the S3 secret access key is empty".into()));
        }
        Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: session_token.filter(|t| !t.is_empty()).map(Zeroizing::new),
        })
    }

    /// Credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and, when set,
    /// `AWS_SESSION_TOKEN`.
    ///
    /// # Errors
    /// `Config` naming the variable that is missing or empty.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Credentials from any variable lookup, as [`Credentials::from_env`] reads them.
    ///
    /// # Errors
    /// `Config` naming the variable that is missing or empty.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Error::Config(format!("no S3 credentials: {name} is not set")))
        };
        Self::new(
            get("AWS_ACCESS_KEY_ID")?,
            get("AWS_SECRET_ACCESS_KEY")?,
            lookup("AWS_SESSION_TOKEN"),
        )
    }

    /// The access key id (not a secret).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub(crate) fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    pub(crate) fn session_token(&self) -> Option<&str> {
        self.session_token.as_deref().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_show_no_secret() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG",
            Some("TOKEN-SECRET".into()),
        )
        .unwrap();
        let shown = format!("{creds:?}");
        assert!(shown.contains("AKIDEXAMPLE"));
        assert!(
            !shown.contains("wJalr") && !shown.contains("TOKEN-SECRET"),
            "{shown}"
        );
    }

    #[test]
    fn missing_variables_are_named() {
        let err = Credentials::from_lookup(|n| (n == "AWS_ACCESS_KEY_ID").then(|| "AK".to_owned()))
            .unwrap_err();
        assert!(
            err.to_string().contains("AWS_SECRET_ACCESS_KEY is not set"),
            "{err}"
        );
        let creds = Credentials::from_lookup(|n| match n {
            "AWS_ACCESS_KEY_ID" => Some("AK".into()),
            "AWS_SECRET_ACCESS_KEY" => Some("SK".into()),
            "AWS_SESSION_TOKEN" => Some("ST".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(creds.session_token(), Some("ST"));
    }
}
