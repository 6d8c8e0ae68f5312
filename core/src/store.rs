//! Where a vault lives: parsing store URLs and turning object operations into URLs.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::error::{Error, Result};
use crate::http::{Method, Request, RequestKind};

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
    /// An S3-compatible bucket.
    S3(S3Store),
}

/// Where an S3 vault lives: `s3://bucket/prefix?region=…&endpoint=…&path_style=true`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Store {
    /// The bucket's name.
    pub bucket: String,
    /// Key prefix inside the bucket: empty, or ending in `/`.
    pub prefix: String,
    /// The region requests are signed for (`us-east-1` unless given).
    pub region: String,
    /// `scheme://host[:port]` of an S3-compatible service; AWS when `None`.
    pub endpoint: Option<String>,
    /// Path-style URLs (`endpoint/bucket/key`) instead of virtual-host style
    /// (`bucket.endpoint/key`). Defaults to true when an endpoint is given.
    pub path_style: bool,
    /// The encryption at rest the store is asked for on every object written (`sse=`); its
    /// bucket's own default when `None`.
    pub encryption: Option<Encryption>,
    /// The storage class packs are written in (`pack_class=`, as `STANDARD_IA`); the bucket's
    /// default when `None`. Manifests and segments stay in the default class: they are read
    /// at every sync.
    pub pack_class: Option<String>,
    /// The storage class checkpoints are written in (`checkpoint_class=`).
    pub checkpoint_class: Option<String>,
}

/// The storage classes objects may be written in: read as they are, with no restore first.
const STORAGE_CLASSES: [&str; 6] = [
    "STANDARD",
    "STANDARD_IA",
    "ONEZONE_IA",
    "INTELLIGENT_TIERING",
    "GLACIER_IR",
    "REDUCED_REDUNDANCY",
];

/// Checks a `*_class` parameter of a store URL.
fn storage_class(name: &str, value: &str) -> std::result::Result<String, String> {
    if STORAGE_CLASSES.contains(&value) {
        return Ok(value.to_owned());
    }
    if ["GLACIER", "DEEP_ARCHIVE"].contains(&value) {
        return Err(format!(
            "{name}={value}: archived objects need a restore before each read, which this \
             release does not ask for; GLACIER_IR is read as it is"
        ));
    }
    Err(format!(
        "{name}={value:?} is not a storage class (known: {})",
        STORAGE_CLASSES.join(", ")
    ))
}

/// Encryption at rest by the store (server-side encryption), on top of the vault's own: what
/// a bucket policy may demand of every write. Asked for on every object PUT and multipart
/// upload start, in signed headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Encryption {
    /// SSE-S3 (`sse=AES256`): keys the store manages.
    S3,
    /// SSE-KMS (`sse=aws:kms`): a key of the store's key service.
    Kms {
        /// The key (`sse_kms_key_id=`: a key id, key ARN, or alias); the account's default
        /// key for S3 when `None`.
        key_id: Option<String>,
        /// An S3 Bucket Key (`sse_bucket_key=true`): fewer calls to the key service.
        bucket_key: bool,
    },
}

impl Encryption {
    /// The request headers that ask for it.
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = Vec::new();
        let mut add = |name: &str, value: &str| headers.push((name.to_owned(), value.to_owned()));
        match self {
            Encryption::S3 => add("x-amz-server-side-encryption", "AES256"),
            Encryption::Kms { key_id, bucket_key } => {
                add("x-amz-server-side-encryption", "aws:kms");
                if let Some(key_id) = key_id {
                    add("x-amz-server-side-encryption-aws-kms-key-id", key_id);
                }
                if *bucket_key {
                    add("x-amz-server-side-encryption-bucket-key-enabled", "true");
                }
            }
        }
        headers
    }
}

/// A KMS key id as S3 takes it: a key id, key ARN, alias name or alias ARN (letters, digits
/// and `:/_-.`).
fn is_kms_key_id(value: &str) -> bool {
    (1..=2048).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/_-.".contains(&b))
}

impl S3Store {
    /// `scheme://host` of the bucket, and the path that leads to the bucket's root (`/bucket`
    /// for path style, empty for virtual-host style).
    fn base(&self) -> (String, String) {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region));
        if self.path_style {
            (endpoint, format!("/{}", encode_path(&self.bucket)))
        } else {
            let (scheme, host) = endpoint.split_once("://").unwrap_or(("https", &endpoint));
            (format!("{scheme}://{}.{host}", self.bucket), String::new())
        }
    }

    fn parse(url: &str, rest: &str) -> Result<Self> {
        let bad = |why: String| Error::Config(format!("store URL {url:?}: {why}"));
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (bucket, prefix) = path.split_once('/').unwrap_or((path, ""));
        let bytes = bucket.as_bytes();
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(b))
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && !bucket.contains("..");
        if !valid_bucket {
            return Err(bad(format!(
                "{bucket:?} is not a bucket name (3 to 63 letters, digits, '.', '-' or '_', starting and ending with a letter or digit, no '..'), as in s3://my-bucket/prefix"
            )));
        }
        let prefix = percent_decode_str(prefix)
            .decode_utf8()
            .map_err(|_| bad("the prefix is not valid UTF-8".into()))?;
        let prefix = prefix.trim_matches('/');
        let mut store = S3Store {
            bucket: bucket.to_owned(),
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            region: "us-east-1".into(),
            endpoint: None,
            path_style: false,
            encryption: None,
            pack_class: None,
            checkpoint_class: None,
        };
        let mut path_style = None;
        let (mut sse, mut kms_key_id, mut bucket_key) = (None, None, None);
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = percent_decode_str(value)
                .decode_utf8()
                .map_err(|_| bad(format!("{name} is not valid UTF-8")))?;
            match name {
                "region" if is_region(&value) => store.region = value.into_owned(),
                "region" if !value.is_empty() => {
                    return Err(bad(format!(
                        "{value:?} is not a region (lowercase letters, digits and '-', as in eu-west-1 or auto)"
                    )))
                }
                "endpoint" => {
                    let endpoint = value.trim_end_matches('/');
                    let host = endpoint
                        .strip_prefix("http://")
                        .or_else(|| endpoint.strip_prefix("https://"));
                    if host.is_none_or(|h| !is_host(h)) {
                        return Err(bad(format!(
                            "endpoint {endpoint:?} must be scheme://host[:port], as in http://127.0.0.1:9000"
                        )));
                    }
                    store.endpoint = Some(endpoint.to_owned());
                }
                "path_style" => {
                    path_style = Some(match &*value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(bad(format!(
                                "path_style must be true or false, not {other:?}"
                            )))
                        }
                    })
                }
                "region" => return Err(bad("region is empty".into())),
                "sse" => sse = Some(value.into_owned()),
                "pack_class" => store.pack_class = Some(storage_class(name, &value).map_err(bad)?),
                "checkpoint_class" => {
                    store.checkpoint_class = Some(storage_class(name, &value).map_err(bad)?)
                }
                "sse_kms_key_id" if is_kms_key_id(&value) => kms_key_id = Some(value.into_owned()),
                "sse_kms_key_id" => {
                    return Err(bad(format!(
                        "sse_kms_key_id {value:?} is not a KMS key id, key ARN or alias"
                    )))
                }
                "sse_bucket_key" => {
                    bucket_key = Some(match &*value {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        other => {
                            return Err(bad(format!(
                                "sse_bucket_key must be true or false, not {other:?}"
                            )))
                        }
                    })
                }
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?} (known: region, endpoint, path_style, sse, \
                         sse_kms_key_id, sse_bucket_key, pack_class, checkpoint_class)"
                    )))
                }
            }
        }
        store.encryption = match (sse.as_deref(), kms_key_id, bucket_key) {
            (None, None, None) => None,
            (Some("AES256"), None, None) => Some(Encryption::S3),
            (Some("aws:kms"), key_id, bucket_key) => Some(Encryption::Kms {
                key_id,
                bucket_key: bucket_key.unwrap_or(false),
            }),
            (Some("AES256") | None, _, _) => {
                return Err(bad(
                    "sse_kms_key_id and sse_bucket_key go with sse=aws:kms".into()
                ))
            }
            (Some(other), _, _) => {
                return Err(bad(format!(
                    "sse must be AES256 (SSE-S3) or aws:kms (SSE-KMS), not {other:?}"
                )))
            }
        };
        // What goes into a host name must be one: a label of lowercase letters, digits and
        // '-'; dots make more labels, which a TLS wildcard certificate does not cover.
        let https = store
            .endpoint
            .as_deref()
            .is_none_or(|e| e.starts_with("https://"));
        let host_safe = bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        let dotted = bucket.contains('.');
        store.path_style = match path_style {
            Some(chosen) => chosen,
            None => store.endpoint.is_some() || !host_safe || (dotted && https),
        };
        if !store.path_style && !host_safe {
            return Err(bad(format!(
                "{bucket:?} cannot be a host name (uppercase or '_'): use path_style=true"
            )));
        }
        if !store.path_style && dotted && https {
            return Err(bad(format!(
                "a bucket name with dots cannot be a host name over https (the certificate does not cover {bucket:?}): use path_style=true"
            )));
        }
        Ok(store)
    }
}

/// An AWS-style region name: lowercase letters, digits and '-', starting with a letter
/// (`eu-west-1`, `us-gov-west-1`, R2's `auto`, B2's `us-west-004`).
fn is_region(value: &str) -> bool {
    (1..=40).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `host[:port]`: a DNS name or IPv4 address (letters, digits, '.', '-'), or an IPv6
/// address in brackets, and an optional port. No user info, path or anything else that
/// would change where a request goes.
fn is_host(value: &str) -> bool {
    // The port follows the ']' of an IPv6 address, or the only ':' of anything else.
    let (host, port) = if value.starts_with('[') {
        let Some(end) = value.find(']') else {
            return false;
        };
        let rest = &value[end + 1..];
        match rest.strip_prefix(':') {
            Some(port) => (&value[..=end], port),
            None if rest.is_empty() => (value, ""),
            None => return false,
        }
    } else {
        value.split_once(':').unwrap_or((value, ""))
    };
    let port_ok = if port.is_empty() {
        !value.ends_with(':')
    } else {
        port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit())
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':'),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
        }
    };
    host_ok && port_ok
}

impl Store {
    /// Parses a store URL: `file:///abs/dir`, or
    /// `s3://bucket/prefix?region=…&endpoint=http://host:port&path_style=true`.
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
        if let Some(rest) = url.strip_prefix("s3://") {
            return S3Store::parse(url, rest).map(Store::S3);
        }
        Err(Error::Config(format!(
            "store URL {url:?} must start with s3:// (a bucket) or file:// (a local folder)"
        )))
    }

    /// The store as a URL that [`Store::parse`] reads back as this store (what an invitation
    /// carries).
    pub fn url(&self) -> String {
        match self {
            Store::Folder { root } => format!("file://{}", encode_path(root)),
            Store::S3(s3) => {
                let mut url = format!(
                    "s3://{}/{}?region={}",
                    s3.bucket,
                    encode_path(s3.prefix.trim_end_matches('/')),
                    encode_query(&s3.region)
                );
                if let Some(endpoint) = &s3.endpoint {
                    url.push_str("&endpoint=");
                    url.push_str(&encode_query(endpoint));
                }
                url.push_str(if s3.path_style {
                    "&path_style=true"
                } else {
                    "&path_style=false"
                });
                match &s3.encryption {
                    None => {}
                    Some(Encryption::S3) => url.push_str("&sse=AES256"),
                    Some(Encryption::Kms { key_id, bucket_key }) => {
                        url.push_str("&sse=aws%3Akms");
                        if let Some(key_id) = key_id {
                            url.push_str("&sse_kms_key_id=");
                            url.push_str(&encode_query(key_id));
                        }
                        if *bucket_key {
                            url.push_str("&sse_bucket_key=true");
                        }
                    }
                }
                for (name, class) in [
                    ("pack_class", &s3.pack_class),
                    ("checkpoint_class", &s3.checkpoint_class),
                ] {
                    if let Some(class) = class {
                        url.push_str(&format!("&{name}={class}"));
                    }
                }
                url
            }
        }
    }

    /// A name for the store in messages (never a credential).
    pub fn display_name(&self) -> String {
        match self {
            Store::Folder { root } => format!("file://{root}"),
            Store::S3(s3) => match &s3.endpoint {
                Some(endpoint) => format!("s3://{}/{} at {endpoint}", s3.bucket, s3.prefix),
                None => format!("s3://{}/{}", s3.bucket, s3.prefix),
            },
        }
    }

    /// The key prefix every object of this store starts with (empty or ending in `/`).
    pub fn prefix(&self) -> &str {
        match self {
            Store::Folder { .. } => "",
            Store::S3(s3) => &s3.prefix,
        }
    }

    /// Adds the headers the store's settings ask of a request that writes an object (a PUT,
    /// not of a multipart upload's part, or the start of a multipart upload): its encryption
    /// at rest, and for a pack or checkpoint its storage class. Done before signing: the
    /// headers are signed.
    pub fn add_write_headers(&self, request: &mut Request) {
        let Store::S3(s3) = self else {
            return;
        };
        let query = request.url.split_once('?').map_or("", |(_, q)| q);
        let has = |name: &str| {
            query
                .split('&')
                .any(|pair| pair.split_once('=').map_or(pair, |(n, _)| n) == name)
        };
        let writes_object = match request.method {
            Method::Put => !has("partNumber") && !has("uploadId"),
            Method::Post => has("uploads"),
            _ => false,
        };
        if !writes_object {
            return;
        }
        if let Some(encryption) = &s3.encryption {
            request.headers.extend(encryption.headers());
        }
        let class = match request.kind {
            RequestKind::PutPack => &s3.pack_class,
            RequestKind::PutCheckpoint => &s3.checkpoint_class,
            _ => &None,
        };
        if let Some(class) = class {
            request
                .headers
                .push(("x-amz-storage-class".to_owned(), class.clone()));
        }
    }

    /// The region to sign for, for S3 stores.
    pub fn region(&self) -> Option<&str> {
        match self {
            Store::Folder { .. } => None,
            Store::S3(s3) => Some(&s3.region),
        }
    }

    /// The URL of the object `key` (relative to the bucket root, prefix included).
    pub fn object_url(&self, key: &str) -> String {
        match self {
            Store::Folder { root } => {
                format!("file://{}/{}", encode_path(root), encode_path(key))
            }
            Store::S3(s3) => {
                let (origin, path) = s3.base();
                format!("{origin}{path}/{}", encode_path(key))
            }
        }
    }

    /// The URL of the bucket itself (for creating it, in tests and tools).
    pub fn bucket_url(&self) -> String {
        match self {
            Store::Folder { root } => format!("file://{}/", encode_path(root)),
            Store::S3(s3) => {
                let (origin, path) = s3.base();
                format!("{origin}{path}")
            }
        }
    }

    /// The URL of a ListMultipartUploads request for the uploads in progress under `prefix`
    /// (first page).
    pub fn uploads_url(&self, prefix: &str) -> String {
        let mut url = self.root_url();
        url.push_str("?uploads&prefix=");
        url.push_str(&encode_query(prefix));
        url
    }

    /// The bucket's URL for requests on the bucket (listings), ending in `/`.
    fn root_url(&self) -> String {
        match self {
            Store::Folder { root } => format!("file://{}/", encode_path(root)),
            Store::S3(s3) => {
                let (origin, path) = s3.base();
                format!("{origin}{}", if path.is_empty() { "/" } else { &path })
            }
        }
    }

    /// The URL of one ListObjectsV2 page of keys under `prefix`.
    pub fn list_url(&self, prefix: &str, continuation: Option<&str>) -> String {
        self.list_url_with(prefix, continuation, false)
    }

    /// The URL of a ListObjectsV2 request for the "folders" directly under `prefix` (delimiter
    /// `/`), first page.
    pub fn list_folders_url(&self, prefix: &str) -> String {
        self.list_url_with(prefix, None, true)
    }

    fn list_url_with(&self, prefix: &str, continuation: Option<&str>, folders: bool) -> String {
        let mut url = self.root_url();
        url.push_str("?list-type=2&prefix=");
        url.push_str(&encode_query(prefix));
        if let Some(token) = continuation {
            url.push_str("&continuation-token=");
            url.push_str(&encode_query(token));
        }
        if folders {
            url.push_str("&delimiter=%2F");
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
    fn a_stores_url_reads_back_as_the_same_store() {
        for url in [
            "file:///tmp/my vault",
            "file:///tmp/v%C3%A9",
            "s3://bucket",
            "s3://bucket/notes/v1?region=eu-west-1",
            "s3://bucket/a%20b?endpoint=http://127.0.0.1:8333",
            "s3://my-bucket/p?endpoint=https://r2.example.com&path_style=false&region=auto",
            "s3://bucket/p?sse=AES256",
            "s3://bucket/p?sse=aws:kms",
            "s3://bucket/p?sse=aws%3Akms&sse_kms_key_id=arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab&sse_bucket_key=true",
            "s3://bucket/p?sse=aws:kms&sse_kms_key_id=alias/backups&sse_bucket_key=false",
        ] {
            let store = Store::parse(url).unwrap();
            assert_eq!(
                Store::parse(&store.url()).unwrap(),
                store,
                "{url} -> {}",
                store.url()
            );
        }
    }

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
    fn s3_urls() {
        let store = Store::parse("s3://my-bucket/notes/v1/?region=eu-west-1").unwrap();
        let Store::S3(s3) = &store else { panic!() };
        assert_eq!(
            (s3.prefix.as_str(), s3.region.as_str(), s3.path_style),
            ("notes/v1/", "eu-west-1", false)
        );
        assert_eq!(
            store.object_url("notes/v1/a b"),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/notes/v1/a%20b"
        );
        assert_eq!(
            store.list_url("p/", None),
            "https://my-bucket.s3.eu-west-1.amazonaws.com/?list-type=2&prefix=p%2F"
        );
        let local = Store::parse("s3://b12/?endpoint=http://127.0.0.1:9000/").unwrap();
        assert_eq!(local.object_url("k"), "http://127.0.0.1:9000/b12/k");
        assert_eq!(
            local.list_url("", Some("t")),
            "http://127.0.0.1:9000/b12?list-type=2&prefix=&continuation-token=t"
        );
        assert_eq!(local.prefix(), "");
        let vhost =
            Store::parse("s3://b12?endpoint=https://r2.example:8443&path_style=false").unwrap();
        assert_eq!(vhost.object_url("k"), "https://b12.r2.example:8443/k");
        // A bucket with dots goes path-style on AWS, where a host name would break TLS.
        let dotted = Store::parse("s3://logs.example.com/p?region=eu-west-1").unwrap();
        assert_eq!(
            dotted.object_url("k"),
            "https://s3.eu-west-1.amazonaws.com/logs.example.com/k"
        );
        // Over plain http (a local server) a dotted host is fine when asked for.
        let local_vhost =
            Store::parse("s3://a.b?endpoint=http://localhost:9000&path_style=false").unwrap();
        assert_eq!(local_vhost.object_url("k"), "http://a.b.localhost:9000/k");
        for region in ["auto", "us-west-004", "us-gov-west-1", "cn-north-1"] {
            assert!(Store::parse(&format!("s3://bkt?region={region}")).is_ok());
        }
        let ipv6 = Store::parse("s3://bkt?endpoint=http://[::1]:9000").unwrap();
        assert_eq!(ipv6.object_url("k"), "http://[::1]:9000/bkt/k");
        // Not a host name: path style without being asked.
        let legacy = Store::parse("s3://My_Bucket/p").unwrap();
        assert_eq!(
            legacy.object_url("k"),
            "https://s3.us-east-1.amazonaws.com/My_Bucket/k"
        );
    }

    #[test]
    fn bad_s3_urls_say_what_is_wrong() {
        for (url, says) in [
            ("s3://", "is not a bucket name"),
            (
                "s3://bkt/p?endpoint=127.0.0.1:9000",
                "must be scheme://host[:port]",
            ),
            (
                "s3://bkt/p?path_style=maybe",
                "path_style must be true or false",
            ),
            ("s3://bkt/p?regoin=x", "unknown parameter \"regoin\""),
            // Whatever reaches a hostname is checked first.
            ("s3://bkt/p?region=evil.com%2Fx", "is not a region"),
            (
                "s3://bkt/p?region=us-east-1.attacker.example",
                "is not a region",
            ),
            ("s3://bkt/p?region=EU", "is not a region"),
            (
                "s3://bkt/p?endpoint=http://user:pw@host:9000",
                "must be scheme://host[:port]",
            ),
            (
                "s3://bkt/p?endpoint=http://ho%20st",
                "must be scheme://host[:port]",
            ),
            (
                "s3://bkt/p?endpoint=http://host:",
                "must be scheme://host[:port]",
            ),
            (
                "s3://bkt/p?endpoint=http://[::1]x",
                "must be scheme://host[:port]",
            ),
            ("s3://-bkt/p", "is not a bucket name"),
            ("s3://bkt-/p", "is not a bucket name"),
            ("s3://my..bkt/p", "is not a bucket name"),
            // Not a hostname label: fine in a path, not in a host.
            ("s3://My_Bucket/p?path_style=false", "use path_style=true"),
            // A dotted bucket as a host breaks the TLS certificate's wildcard.
            (
                "s3://my.bucket/p?path_style=false",
                "a bucket name with dots cannot be a host name over https",
            ),
        ] {
            let err = Store::parse(url).unwrap_err();
            assert_eq!(err.category(), crate::Category::Config);
            assert!(err.to_string().contains(says), "{url}: {err}");
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let relative = Store::parse("file://relative/dir").unwrap_err().to_string();
        assert!(relative.contains("absolute directory"), "{relative}");
        let scheme = Store::parse("ftp://x").unwrap_err().to_string();
        assert!(scheme.contains("must start with s3://"), "{scheme}");
    }

    #[test]
    fn encryption_and_storage_classes_are_asked_for_on_object_writes_only() {
        let store = Store::parse(
            "s3://bucket/p?endpoint=http://127.0.0.1:9000&sse=aws:kms&sse_kms_key_id=alias/k&sse_bucket_key=true",
        )
        .unwrap();
        let Store::S3(s3) = &store else { panic!() };
        assert_eq!(
            s3.encryption,
            Some(Encryption::Kms {
                key_id: Some("alias/k".into()),
                bucket_key: true
            })
        );
        let asked = |method: Method, url: &str| {
            let mut request = Request {
                id: crate::ids::RequestId(1),
                kind: crate::http::RequestKind::PutSegment,
                method,
                url: url.to_owned(),
                headers: Vec::new(),
                body: Default::default(),
            };
            store.add_write_headers(&mut request);
            request.headers
        };
        let object = store.object_url("p/x");
        let kms = vec![
            (
                "x-amz-server-side-encryption".to_owned(),
                "aws:kms".to_owned(),
            ),
            (
                "x-amz-server-side-encryption-aws-kms-key-id".to_owned(),
                "alias/k".to_owned(),
            ),
            (
                "x-amz-server-side-encryption-bucket-key-enabled".to_owned(),
                "true".to_owned(),
            ),
        ];
        assert_eq!(asked(Method::Put, &object), kms);
        assert_eq!(asked(Method::Post, &format!("{object}?uploads")), kms);
        // Parts, completion, reads and deletes take none.
        for (method, url) in [
            (Method::Put, format!("{object}?partNumber=1&uploadId=u")),
            (Method::Post, format!("{object}?uploadId=u")),
            (Method::Get, object.clone()),
            (Method::Delete, object.clone()),
        ] {
            assert!(asked(method, &url).is_empty(), "{url}");
        }
        // None asked for without a setting, nor of a folder bucket.
        let mut put = Request {
            id: crate::ids::RequestId(1),
            kind: crate::http::RequestKind::PutSegment,
            method: Method::Put,
            url: "s3".into(),
            headers: Vec::new(),
            body: Default::default(),
        };
        Store::parse("s3://bucket/p")
            .unwrap()
            .add_write_headers(&mut put);
        Store::parse("file:///tmp/v")
            .unwrap()
            .add_write_headers(&mut put);
        assert!(put.headers.is_empty());
        // Storage classes: packs and checkpoints only, each its own.
        let classes = Store::parse(
            "s3://bkt/p?pack_class=STANDARD_IA&checkpoint_class=GLACIER_IR&sse=AES256",
        )
        .unwrap();
        assert_eq!(Store::parse(&classes.url()).unwrap(), classes);
        for (kind, class) in [
            (crate::http::RequestKind::PutPack, Some("STANDARD_IA")),
            (crate::http::RequestKind::PutCheckpoint, Some("GLACIER_IR")),
            (crate::http::RequestKind::PutSegment, None),
            (crate::http::RequestKind::PutManifest, None),
        ] {
            let mut put = Request {
                id: crate::ids::RequestId(1),
                kind,
                method: Method::Put,
                url: classes.object_url("p/x"),
                headers: Vec::new(),
                body: Default::default(),
            };
            classes.add_write_headers(&mut put);
            assert_eq!(put.header("x-amz-storage-class"), class, "{kind:?}");
            assert_eq!(put.header("x-amz-server-side-encryption"), Some("AES256"));
        }
        assert_eq!(
            Encryption::S3.headers(),
            vec![(
                "x-amz-server-side-encryption".to_owned(),
                "AES256".to_owned()
            )]
        );
        for (url, says) in [
            ("s3://bkt/p?sse=aes256", "sse must be AES256"),
            (
                "s3://bkt/p?sse=AES256&sse_kms_key_id=k",
                "go with sse=aws:kms",
            ),
            ("s3://bkt/p?sse_bucket_key=true", "go with sse=aws:kms"),
            (
                "s3://bkt/p?sse=aws:kms&sse_kms_key_id=a%20b",
                "is not a KMS key id",
            ),
            ("s3://bkt/p?sse=aws:kms&sse_bucket_key=yes", "true or false"),
            (
                "s3://bkt/p?pack_class=DEEP_ARCHIVE",
                "need a restore before each read",
            ),
            ("s3://bkt/p?checkpoint_class=cold", "is not a storage class"),
        ] {
            let e = Store::parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
