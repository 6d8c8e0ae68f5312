//! The transport a store URL calls for, when the app brings none: the local-folder bucket for
//! `file://`, reqwest for `s3://`. Bindings add their host transport beside it.

use crate::error::Result;
use crate::http::{Request, Response};
use crate::io::driver::Transport;
use crate::io::folder::FolderBucket;
use crate::io::reqwest_transport::{HttpOptions, ReqwestTransport};
use crate::store::Store;

/// One of the built-in transports.
#[derive(Clone, Debug)]
pub enum BuiltinTransport {
    /// `file://` stores.
    Folder(FolderBucket),
    /// `s3://` stores.
    Http(ReqwestTransport),
}

impl BuiltinTransport {
    /// The transport for `store`.
    ///
    /// # Errors
    /// `Config` when the HTTP client cannot be built.
    pub fn for_store(store: &Store) -> Result<Self> {
        Ok(match store {
            Store::Folder { .. } => BuiltinTransport::Folder(FolderBucket),
            _ => BuiltinTransport::Http(ReqwestTransport::new(HttpOptions::default())?),
        })
    }
}

impl Transport for BuiltinTransport {
    async fn send(&self, request: Request) -> Result<Response> {
        match self {
            BuiltinTransport::Folder(t) => t.send(request).await,
            BuiltinTransport::Http(t) => t.send(request).await,
        }
    }

    async fn sleep(&self, ms: u64) {
        match self {
            BuiltinTransport::Folder(t) => t.sleep(ms).await,
            BuiltinTransport::Http(t) => t.sleep(ms).await,
        }
    }
}
