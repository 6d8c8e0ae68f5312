//! The transport a store URL calls for, when the app brings none: the local-folder bucket for
//! `file://`, reqwest for `s3://` (feature `reqwest`; a build without it, as on phones, has no
//! HTTP client of its own and needs the app's). Bindings add their host transport beside it.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::io::driver::Transport;
use crate::io::folder::FolderBucket;
use crate::io::http_options::HttpOptions;
#[cfg(feature = "reqwest")]
use crate::io::reqwest_transport::ReqwestTransport;
use crate::store::Store;

/// One of the built-in transports.
#[derive(Clone, Debug)]
pub enum BuiltinTransport {
    /// `file://` stores.
    Folder(FolderBucket),
    /// `s3://` stores.
    #[cfg(feature = "reqwest")]
    Http(ReqwestTransport),
}

impl BuiltinTransport {
    /// The transport for `store`.
    ///
    /// # Errors
    /// `Config` when the HTTP client cannot be built, or when this build has none (no feature
    /// `reqwest`) and `store` is not a folder.
    pub fn for_store(store: &Store) -> Result<Self> {
        Self::for_store_with(store, HttpOptions::default())
    }

    /// The transport for `store`, with `http`'s deadlines for an `s3://` store.
    ///
    /// # Errors
    /// As [`BuiltinTransport::for_store`].
    pub fn for_store_with(store: &Store, http: HttpOptions) -> Result<Self> {
        Ok(match store {
            Store::Folder { .. } => BuiltinTransport::Folder(FolderBucket),
            #[cfg(feature = "reqwest")]
            _ => BuiltinTransport::Http(ReqwestTransport::new(http)?),
            #[cfg(not(feature = "reqwest"))]
            _ => {
                let _ = http;
                return Err(crate::error::Error::Config(format!(
                    "this build has no HTTP client of its own: pass a transport (the \
                     platform's HTTP) to reach {}",
                    store.display_name()
                )));
            }
        })
    }
}

impl BuiltinTransport {
    /// The transport for the store an invitation names (the grant is read there, and it may
    /// be another store than the home's).
    ///
    /// # Errors
    /// `Config` for a text that is not an invitation, or as [`BuiltinTransport::for_store`].
    pub fn for_invitation(invitation: &str, http: HttpOptions) -> Result<Self> {
        let invitation = crate::grant::Invitation::parse(invitation)?;
        Self::for_store_with(&Store::parse(&invitation.store)?, http)
    }
}

impl Transport for BuiltinTransport {
    async fn send(&self, request: Request) -> Result<Response> {
        match self {
            BuiltinTransport::Folder(t) => t.send(request).await,
            #[cfg(feature = "reqwest")]
            BuiltinTransport::Http(t) => t.send(request).await,
        }
    }

    async fn sleep(&self, ms: u64) {
        match self {
            BuiltinTransport::Folder(t) => t.sleep(ms).await,
            #[cfg(feature = "reqwest")]
            BuiltinTransport::Http(t) => t.sleep(ms).await,
        }
    }
}
