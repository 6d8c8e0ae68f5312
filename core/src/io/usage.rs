//! What a vault holds in its store: a listing of its folder, counted by kind of object.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::http::{Method, Request, RequestKind};
use crate::ids::RequestId;
use crate::io::driver::Transport;
use crate::io::session::Session;
use crate::s3;

/// A listing longer than this many pages (10 million objects) is not followed further.
const MAX_PAGES: usize = 10_000;

/// Objects and bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Count {
    /// How many objects.
    pub objects: u64,
    /// Their bytes, as the listing gives them.
    pub bytes: u64,
}

/// The vault's objects in the store, by kind: `manifests`, `segments`, `checkpoints`,
/// `packs`, `redirects`, the change `hint`, and `other` (what a newer release may write).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// By kind.
    pub kinds: BTreeMap<&'static str, Count>,
    /// All of them.
    pub total: Count,
}

fn kind_of(name: &str) -> &'static str {
    if name == crate::engine::HINT_NAME {
        return "hint";
    }
    match name.split_once('/').map(|(folder, _)| folder) {
        Some("m") => "manifests",
        Some("s") => "segments",
        Some("c") => "checkpoints",
        Some("p") => "packs",
        Some("r") => "redirects",
        _ => "other",
    }
}

impl Session {
    /// Lists the vault's folder in the store (one LIST a thousand objects) and counts its
    /// objects and bytes by kind.
    ///
    /// # Errors
    /// The LIST's error; `Server` when a listing does not parse or gives no sizes.
    pub async fn usage<T: Transport + ?Sized>(&self, transport: &T) -> Result<Usage> {
        let (store, folder) = self.read(|e| {
            let store = e.store().clone();
            let folder = format!("{}{}/", store.prefix(), e.vault_id());
            (store, folder)
        })?;
        let mut usage = Usage::default();
        let mut token: Option<String> = None;
        for page in 0.. {
            if page == MAX_PAGES {
                break;
            }
            let mut request = Request {
                id: RequestId(0),
                kind: RequestKind::List,
                method: Method::Get,
                url: store.list_url(&folder, token.as_deref()),
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            };
            let now = self.now();
            self.read(|e| e.sign(&mut request, now))??;
            let response = transport.send(request).await?;
            if !response.is_success() {
                return Err(s3::error_from_response(
                    &response,
                    format!("LIST {folder} in {}", store.display_name()),
                ));
            }
            let listed = s3::parse_list(&response.body)?;
            for ((key, _), size) in listed.objects.iter().zip(&listed.sizes) {
                let Some(size) = size else {
                    return Err(Error::Http {
                        category: crate::Category::Server,
                        status: 200,
                        code: None,
                        context: format!("LIST {folder}: an object without its size"),
                    });
                };
                let kind = kind_of(key.strip_prefix(&folder).unwrap_or(key));
                let count = usage.kinds.entry(kind).or_default();
                count.objects += 1;
                count.bytes += size;
                usage.total.objects += 1;
                usage.total.bytes += size;
            }
            match listed.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        Ok(usage)
    }
}
