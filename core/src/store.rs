//! Where a vault lives: parsing store URLs and turning object operations into URLs.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};

/// Characters left as they are in an object key inside a URL path (RFC 3986 unreserved and `/`).
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');
/// Characters left as they are in a query value (RFC 3986 unreserved).
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A parsed store location.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Store {
    /// The local-folder bucket: a directory that behaves like a bucket.
    Folder {
        /// Absolute path of the directory, without a trailing slash.
        root: String,
    },
}

impl Store {
    /// Parses a store URL: `file:///abs/dir`.
    ///
    /// # Errors
    /// `Config`, saying what is wrong with the URL.
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(rest) = url.strip_prefix("file://") {
            if rest.contains('?') || rest.contains('#') {
                return Err(Error::Config(format!(
                    "store URL {url:?}: a file:// store takes no query or fragment"
                )));
            }
            let root = percent_decode_str(rest)
                .decode_utf8()
                .map_err(|_| Error::Config(format!("store URL {url:?} is not valid UTF-8")))?;
            let root = root.trim_end_matches('/');
            let absolute = root.starts_with('/') || root.as_bytes().get(1) == Some(&b':');
            if !absolute || root.len() < 2 {
                return Err(Error::Config(format!(
                    "store URL {url:?}: a file:// store needs an absolute directory, as in file:///home/me/vault"
                )));
            }
            return Ok(Store::Folder {
                root: root.to_owned(),
            });
        }
        Err(Error::Config(format!(
            "store URL {url:?} must start with file:// (a local folder)"
        )))
    }

    /// A name for the store in messages (never a credential).
    pub fn display_name(&self) -> String {
        match self {
            Store::Folder { root } => format!("file://{root}"),
        }
    }

    /// The URL of the object `key` (relative to the bucket root).
    pub(crate) fn object_url(&self, key: &str) -> String {
        match self {
            Store::Folder { root } => {
                format!("file://{}/{}", encode_path(root), encode_path(key))
            }
        }
    }

    /// The URL of one ListObjectsV2 page of keys under `prefix`.
    pub(crate) fn list_url(&self, prefix: &str, continuation: Option<&str>) -> String {
        let mut url = match self {
            Store::Folder { root } => format!("file://{}/", encode_path(root)),
        };
        url.push_str("?list-type=2&prefix=");
        url.push_str(&encode_query(prefix));
        if let Some(token) = continuation {
            url.push_str("&continuation-token=");
            url.push_str(&encode_query(token));
        }
        url
    }
}

/// Percent-encodes an object key for a URL path (keeps `/`).
pub fn encode_path(key: &str) -> String {
    utf8_percent_encode(key, PATH).to_string()
}

/// Percent-encodes a query value.
pub fn encode_query(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_urls() {
        let store = Store::parse("file:///tmp/my%20vault/").unwrap();
        assert_eq!(
            store,
            Store::Folder {
                root: "/tmp/my vault".into()
            }
        );
        assert_eq!(store.object_url("v/m/ab"), "file:///tmp/my%20vault/v/m/ab");
        assert_eq!(
            store.list_url("v/m/", Some("a b")),
            "file:///tmp/my%20vault/?list-type=2&prefix=v%2Fm%2F&continuation-token=a%20b"
        );
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let relative = Store::parse("file://relative/dir").unwrap_err().to_string();
        assert!(relative.contains("absolute directory"), "{relative}");
        let scheme = Store::parse("ftp://x").unwrap_err().to_string();
        assert!(scheme.contains("must start with file://"), "{scheme}");
    }
}
