//! What `signer` signs: the requests a vault's engine makes on one store, checked as plain
//! functions of the method and the URL, each refusal with its reason.

use bucketsync::{encode_path, encode_query, Error, Method, Store};
use percent_encoding::percent_decode_str;

/// The query parameters of the listings bucketsync sends (`Store::list_url`).
const LIST_PARAMETERS: [&str; 5] = [
    "list-type",
    "prefix",
    "continuation-token",
    "max-keys",
    "delimiter",
];

/// The query parameters of the ListMultipartUploads requests bucketsync sends
/// (`Store::uploads_url`).
const UPLOADS_PARAMETERS: [&str; 2] = ["uploads", "prefix"];

/// What the service signs for: one store's bucket, under its prefix.
#[derive(Debug)]
pub struct Policy {
    /// `scheme://host[:port]` of the bucket's URLs.
    origin: String,
    /// The path to the bucket's root: `/bucket` (path style), or empty (virtual-host style).
    bucket_path: String,
    /// The store's prefix: empty or ending in `/`.
    prefix: String,
}

/// A request the service signs.
#[derive(Debug, PartialEq, Eq)]
pub struct Allowed {
    /// The method to presign.
    pub method: Method,
    /// The object's key, or for a listing the prefix listed.
    pub target: String,
    /// A ListObjectsV2 listing (`target` is its prefix), not an object request.
    pub listing: bool,
}

/// Why a request is not signed (403). The messages name parameters, never their values (a
/// client may send a URL that carries a signature).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not GET, PUT, HEAD, DELETE or POST.
    Method(String),
    /// Another scheme, host or port than the store's (virtual-host style: another bucket).
    OtherHost,
    /// Another bucket on the store's endpoint.
    OtherBucket,
    /// A fragment, or a key or value that is not UTF-8 once decoded.
    Malformed,
    /// A key with `.`, `..` or empty segments, or a backslash or control character.
    Traversal,
    /// Encoded otherwise than bucketsync encodes keys and query values.
    NotCanonical,
    /// A key outside the store's prefix.
    OutsidePrefix,
    /// A request on the bucket itself that is not a ListObjectsV2 listing.
    BucketRequest,
    /// A listing of a prefix outside the store's.
    ListOutsidePrefix,
    /// A query parameter bucketsync does not send with such a request, or one given twice.
    Parameter(String),
    /// `X-Amz-*` parameters: the URL is signed already.
    Presigned,
    /// A DELETE of an object a vault never deletes (only segments, checkpoints and packs).
    NotCollectable,
    /// A multipart request (or a part) of an object that is not a pack.
    NotPack,
    /// A POST that neither creates nor completes a multipart upload.
    NotMultipart,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Method(m) => write!(
                f,
                "method {m:?} is not signed (only GET, PUT, HEAD, DELETE, POST)"
            ),
            Refusal::OtherHost => f.write_str("not the store's endpoint or bucket"),
            Refusal::OtherBucket => f.write_str("not the store's bucket"),
            Refusal::Malformed => f.write_str("a URL with a fragment or invalid UTF-8"),
            Refusal::Traversal => f.write_str("a key with '.', '..' or empty segments"),
            Refusal::NotCanonical => f.write_str("not encoded as bucketsync encodes URLs"),
            Refusal::OutsidePrefix => f.write_str("a key outside the store's prefix"),
            Refusal::BucketRequest => f.write_str(
                "a request on the bucket other than a ListObjectsV2 (list-type=2) or a \
                 ListMultipartUploads (uploads) listing",
            ),
            Refusal::ListOutsidePrefix => f.write_str("a listing outside the store's prefix"),
            Refusal::Parameter(name) => write!(f, "query parameter {name:?} is not allowed here"),
            Refusal::Presigned => f.write_str("the URL carries X-Amz-* parameters already"),
            Refusal::NotCollectable => f.write_str(
                "DELETE only of a vault's segments, checkpoints and packs (and aborts of a \
                 pack's upload)",
            ),
            Refusal::NotPack => f.write_str("multipart uploads only of a vault's packs"),
            Refusal::NotMultipart => {
                f.write_str("POST only to create or complete a pack's multipart upload")
            }
        }
    }
}

impl Policy {
    /// The policy of `store`.
    ///
    /// # Errors
    /// `Config` for a `file://` store, or a prefix no key could be signed under.
    pub fn of(store: &Store) -> bucketsync::Result<Policy> {
        let Store::S3(s3) = store else {
            return Err(Error::Config(
                "signer presigns S3 requests: give an s3:// store".into(),
            ));
        };
        if !s3.prefix.is_empty() && unsafe_key(s3.prefix.trim_end_matches('/')) {
            return Err(Error::Config(format!(
                "the prefix {:?} has '.', '..' or empty segments: signer refuses such keys",
                s3.prefix
            )));
        }
        let url = store.bucket_url();
        let (scheme, rest) = url.split_once("://").expect("an S3 URL has a scheme");
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        Ok(Policy {
            origin: format!("{scheme}://{host}"),
            bucket_path: path.to_owned(),
            prefix: s3.prefix.clone(),
        })
    }

    /// Whether to sign `method` on `url`, as the engine built it.
    pub fn check(&self, method: &str, url: &str) -> Result<Allowed, Refusal> {
        let method = match method {
            "GET" => Method::Get,
            "PUT" => Method::Put,
            "HEAD" => Method::Head,
            "DELETE" => Method::Delete,
            "POST" => Method::Post,
            other => return Err(Refusal::Method(other.chars().take(16).collect())),
        };
        let rest = url
            .strip_prefix(&self.origin)
            .filter(|r| r.is_empty() || r.starts_with(['/', '?']))
            .ok_or(Refusal::OtherHost)?;
        if rest.contains('#') {
            return Err(Refusal::Malformed);
        }
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let in_bucket = path
            .strip_prefix(&self.bucket_path)
            .filter(|p| p.is_empty() || p.starts_with('/'))
            .ok_or(Refusal::OtherBucket)?;
        let parameters = parameters(query)?;
        let encoded_key = in_bucket.strip_prefix('/').unwrap_or("");
        if encoded_key.is_empty() {
            return self.check_listing(method, &parameters);
        }
        let key = decode(encoded_key)?;
        if unsafe_key(&key) {
            return Err(Refusal::Traversal);
        }
        if encode_path(&key) != encoded_key {
            return Err(Refusal::NotCanonical);
        }
        let Some(in_prefix) = key.strip_prefix(&self.prefix) else {
            return Err(Refusal::OutsidePrefix);
        };
        check_object_request(method, in_prefix, &parameters)?;
        Ok(Allowed {
            method,
            target: key,
            listing: false,
        })
    }

    /// A request on the bucket: only a ListObjectsV2 listing under the prefix.
    fn check_listing(
        &self,
        method: Method,
        parameters: &[(String, String)],
    ) -> Result<Allowed, Refusal> {
        let value = |name: &str| {
            parameters
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        // ListMultipartUploads (`?uploads&prefix=`): a device looks for the uploads of its
        // packs that a killed run left, to abort them.
        let uploads = value("uploads") == Some("");
        if method != Method::Get || (value("list-type") != Some("2") && !uploads) {
            return Err(Refusal::BucketRequest);
        }
        let allowed: &[&str] = if uploads {
            &UPLOADS_PARAMETERS
        } else {
            &LIST_PARAMETERS
        };
        if let Some((name, _)) = parameters
            .iter()
            .find(|(n, _)| !allowed.contains(&n.as_str()))
        {
            return Err(Refusal::Parameter(name.clone()));
        }
        let prefix = value("prefix").unwrap_or("");
        if !prefix.starts_with(&self.prefix) {
            return Err(Refusal::ListOutsidePrefix);
        }
        Ok(Allowed {
            method,
            target: prefix.to_owned(),
            listing: true,
        })
    }
}

/// What the engine sends on one object (`key`, below the store's prefix): GET, HEAD and PUT
/// of any key with no parameters; DELETE of a vault's segment, checkpoint or pack (the objects
/// a device collects); and the multipart requests of a pack: its creation (POST `?uploads`),
/// its parts (PUT `?partNumber=N&uploadId=…`), its completion (POST `?uploadId=…`) and its
/// abort (DELETE `?uploadId=…`).
fn check_object_request(
    method: Method,
    key: &str,
    parameters: &[(String, String)],
) -> Result<(), Refusal> {
    let names: Vec<&str> = parameters.iter().map(|(n, _)| n.as_str()).collect();
    let value = |name: &str| {
        parameters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let part_number = value("partNumber")
        .and_then(|n| n.parse::<u16>().ok().filter(|p| n == p.to_string()))
        .is_some_and(|p| (1..=10_000).contains(&p));
    let pack = || match collectable(key) {
        Some(Collectable::Pack) => Ok(()),
        _ => Err(Refusal::NotPack),
    };
    match (method, names.as_slice()) {
        (Method::Get | Method::Head | Method::Put, []) => Ok(()),
        (Method::Delete, []) => collectable(key).map(|_| ()).ok_or(Refusal::NotCollectable),
        (Method::Post, ["uploads"]) if value("uploads") == Some("") => pack(),
        (Method::Post | Method::Delete, ["uploadId"]) => pack(),
        (Method::Put, ["partNumber", "uploadId"]) if part_number => pack(),
        (Method::Post, []) => Err(Refusal::NotMultipart),
        _ => {
            let expected = ["uploads", "uploadId", "partNumber"];
            let name = names
                .iter()
                .find(|n| !expected.contains(n))
                .or(names.first())
                .expect("the arms above take every request without parameters");
            Err(Refusal::Parameter((*name).to_owned()))
        }
    }
}

/// An object a device deletes when it collects.
#[derive(Debug, PartialEq, Eq)]
enum Collectable {
    Segment,
    Checkpoint,
    Pack,
}

/// What `key` (below the store's prefix) is, when it names a vault's segment
/// (`<vault>/s/<device>/<16 hex>`), checkpoint (`<vault>/c/<device>/<16 hex>`) or pack
/// (`<vault>/p/<device>/<32 hex>`), each hex in lowercase (docs/FORMAT.md section 2).
fn collectable(key: &str) -> Option<Collectable> {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = key.split('/').collect();
    let [vault, kind, device, name] = parts.as_slice() else {
        return None;
    };
    if !hex(vault, 32) || !hex(device, 32) {
        return None;
    }
    match *kind {
        "s" if hex(name, 16) => Some(Collectable::Segment),
        "c" if hex(name, 16) => Some(Collectable::Checkpoint),
        "p" if hex(name, 32) => Some(Collectable::Pack),
        _ => None,
    }
}

/// The query's parameters, decoded; each must be encoded as `encode_query` does, and appear
/// once.
fn parameters(query: &str) -> Result<Vec<(String, String)>, Refusal> {
    let mut parameters: Vec<(String, String)> = Vec::new();
    if query.is_empty() {
        return Ok(parameters);
    }
    for pair in query.split('&') {
        let (name, encoded) = pair.split_once('=').unwrap_or((pair, ""));
        if name.to_ascii_lowercase().starts_with("x-amz-") {
            return Err(Refusal::Presigned);
        }
        if name.is_empty() || encode_query(name) != name {
            return Err(Refusal::NotCanonical);
        }
        let value = decode(encoded)?;
        if encode_query(&value) != encoded {
            return Err(Refusal::NotCanonical);
        }
        if parameters.iter().any(|(n, _)| n == name) {
            return Err(Refusal::Parameter(name.to_owned()));
        }
        parameters.push((name.to_owned(), value));
    }
    Ok(parameters)
}

fn decode(encoded: &str) -> Result<String, Refusal> {
    percent_decode_str(encoded)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| Refusal::Malformed)
}

/// A key that a server or an HTTP client might read as another path: `.`, `..` or empty
/// segments, backslashes, control characters.
fn unsafe_key(key: &str) -> bool {
    key.split('/')
        .any(|s| s.is_empty() || s == "." || s == "..")
        || key.chars().any(|c| c == '\\' || c.is_control())
}
#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const PATH_STYLE: &str = "s3://vault-bkt/clinic/records?endpoint=http://127.0.0.1:9000";
    pub const E: &str = "http://127.0.0.1:9000/vault-bkt";

    pub fn policy(url: &str) -> Policy {
        Policy::of(&Store::parse(url).unwrap()).unwrap()
    }

    fn refusal(method: &str, url: &str) -> Refusal {
        policy(PATH_STYLE).check(method, url).unwrap_err()
    }

    #[test]
    fn signs_what_a_vault_sends_under_its_prefix() {
        let store = Store::parse(PATH_STYLE).unwrap();
        let p = Policy::of(&store).unwrap();
        for method in ["GET", "PUT", "HEAD"] {
            let url = store.object_url("clinic/records/0a1b/s/c2d3-00000001");
            let allowed = p.check(method, &url).unwrap();
            assert_eq!(allowed.target, "clinic/records/0a1b/s/c2d3-00000001");
            assert!(!allowed.listing);
        }
        let key = "clinic/records/a b+c~ü";
        assert!(p.check("GET", &store.object_url(key)).is_ok());
        for url in [
            store.list_url("clinic/records/", None),
            store.list_url("clinic/records/0a1b/m/", Some("token/+= x")),
            store.list_folders_url("clinic/records/"),
            format!("{E}?list-type=2&prefix=clinic%2Frecords%2F&max-keys=10"),
        ] {
            let allowed = p.check("GET", &url).unwrap();
            assert!(allowed.listing && allowed.target.starts_with("clinic/records/"));
        }
        // The uploads of a device's packs, to abort those a killed run left.
        let uploads = store.uploads_url("clinic/records/0a1b/p/c2d3/");
        let allowed = p.check("GET", &uploads).unwrap();
        assert!(allowed.listing && allowed.target == "clinic/records/0a1b/p/c2d3/");
        assert_eq!(
            p.check("GET", &store.uploads_url("clinic/")),
            Err(Refusal::ListOutsidePrefix)
        );
        assert_eq!(
            p.check(
                "GET",
                &format!("{}&key-marker=x", store.uploads_url("clinic/records/"))
            ),
            Err(Refusal::Parameter("key-marker".into()))
        );
        // Virtual-host style: the bucket is in the host name.
        let vhost = Store::parse("s3://vault-bkt/clinic?region=eu-west-1").unwrap();
        let p = Policy::of(&vhost).unwrap();
        assert!(p.check("PUT", &vhost.object_url("clinic/k")).is_ok());
        assert!(p.check("GET", &vhost.list_url("clinic/", None)).is_ok());
    }

    #[test]
    fn refuses_other_methods() {
        for method in ["PATCH", "get", "delete", "LIST", ""] {
            let refused = refusal(method, &format!("{E}/clinic/records/k"));
            assert_eq!(refused, Refusal::Method(method.into()));
        }
    }

    const VAULT: &str = "00112233445566778899aabbccddeeff";
    const DEVICE: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

    #[test]
    fn signs_the_deletes_and_multipart_requests_of_collectable_objects() {
        let segment = format!("{E}/clinic/records/{VAULT}/s/{DEVICE}/0000000000000001");
        let checkpoint = format!("{E}/clinic/records/{VAULT}/c/{DEVICE}/000000000000000a");
        let pack = format!("{E}/clinic/records/{VAULT}/p/{DEVICE}/{DEVICE}");
        let p = policy(PATH_STYLE);
        for url in [&segment, &checkpoint, &pack] {
            let allowed = p.check("DELETE", url).unwrap();
            assert_eq!(allowed.method, Method::Delete);
            assert!(allowed.target.starts_with("clinic/records/"));
        }
        for (method, query) in [
            ("POST", "?uploads"),
            ("POST", "?uploadId=abc%2F1"),
            ("PUT", "?partNumber=1&uploadId=abc"),
            ("PUT", "?partNumber=10000&uploadId=abc"),
            ("DELETE", "?uploadId=abc"),
        ] {
            assert!(
                p.check(method, &format!("{pack}{query}")).is_ok(),
                "{method} {query}"
            );
        }
    }

    #[test]
    fn refuses_deletes_and_multipart_requests_of_anything_else() {
        let vault = format!("{E}/clinic/records/{VAULT}");
        for key in [
            format!("m/{DEVICE}"),
            "h".to_string(),
            format!("g/{DEVICE}"),
            format!("r/{DEVICE}/{DEVICE}"),
            format!("s/{DEVICE}/0000000000000001/x"),
            format!("s/{DEVICE}/000000000000001"),
            format!("s/{DEVICE}/000000000000000A"),
            format!("p/{DEVICE}/0000000000000001"),
            format!("x/{DEVICE}/0000000000000001"),
        ] {
            assert_eq!(
                refusal("DELETE", &format!("{vault}/{key}")),
                Refusal::NotCollectable,
                "{key}"
            );
        }
        assert_eq!(
            refusal("DELETE", &format!("{E}/clinic/records/k")),
            Refusal::NotCollectable
        );
        let segment = format!("{vault}/s/{DEVICE}/0000000000000001");
        for (method, query) in [
            ("POST", "?uploads"),
            ("PUT", "?partNumber=1&uploadId=a"),
            ("DELETE", "?uploadId=a"),
        ] {
            assert_eq!(
                refusal(method, &format!("{segment}{query}")),
                Refusal::NotPack,
                "{method} {query}"
            );
        }
        let pack = format!("{vault}/p/{DEVICE}/{DEVICE}");
        assert_eq!(refusal("POST", &pack), Refusal::NotMultipart);
        for (method, query, name) in [
            ("POST", "?uploads=x", "uploads"),
            ("PUT", "?partNumber=0&uploadId=a", "partNumber"),
            ("PUT", "?partNumber=10001&uploadId=a", "partNumber"),
            ("PUT", "?partNumber=01&uploadId=a", "partNumber"),
            ("PUT", "?uploadId=a", "uploadId"),
            ("GET", "?uploadId=a", "uploadId"),
            ("POST", "?uploadId=a&tagging", "tagging"),
            ("DELETE", "?versionId=1", "versionId"),
        ] {
            assert_eq!(
                refusal(method, &format!("{pack}{query}")),
                Refusal::Parameter(name.into()),
                "{method} {query}"
            );
        }
    }

    #[test]
    fn refuses_other_endpoints() {
        for url in [
            "http://127.0.0.1:9001/vault-bkt/clinic/records/k",
            "http://127.0.0.1:90000/vault-bkt/clinic/records/k",
            "https://127.0.0.1:9000/vault-bkt/clinic/records/k",
            "http://127.0.0.1:9000@evil.example/vault-bkt/clinic/records/k",
            "http://127.0.0.1:9000.evil.example/vault-bkt/clinic/records/k",
            "/vault-bkt/clinic/records/k",
        ] {
            assert_eq!(refusal("GET", url), Refusal::OtherHost, "{url}");
        }
        let vhost = policy("s3://vault-bkt/clinic?region=eu-west-1");
        let other = "https://other-bkt.s3.eu-west-1.amazonaws.com/clinic/k";
        assert_eq!(vhost.check("GET", other), Err(Refusal::OtherHost));
    }

    #[test]
    fn refuses_other_buckets() {
        for path in [
            "/other-bkt/clinic/records/k",
            "/vault-bkt2/clinic/records/k",
            "/",
        ] {
            assert_eq!(
                refusal("GET", &format!("http://127.0.0.1:9000{path}")),
                Refusal::OtherBucket
            );
        }
    }

    #[test]
    fn refuses_keys_outside_the_prefix() {
        for key in ["other/k", "clinic/k", "clinic/recordsX/k", "clinic/records"] {
            assert_eq!(
                refusal("PUT", &format!("{E}/{key}")),
                Refusal::OutsidePrefix,
                "{key}"
            );
        }
    }

    #[test]
    fn refuses_dot_segments_however_encoded() {
        for key in [
            "clinic/records/../other/k",
            "clinic/records/%2e%2e/other/k",
            "clinic/records/%2E%2E/other/k",
            "clinic/records%2F..%2Fother/k",
            "clinic/records/./k",
            "clinic/records//k",
            "clinic/records/k/",
            "clinic/records/..%5Cother",
            "clinic/records/a%0Ab",
        ] {
            assert_eq!(
                refusal("GET", &format!("{E}/{key}")),
                Refusal::Traversal,
                "{key}"
            );
        }
    }

    #[test]
    fn refuses_keys_encoded_otherwise() {
        for key in [
            "clinic/records/%61",
            "clinic/records/a+b",
            "clinic/records/%C3%BC%2Fx",
        ] {
            assert_eq!(
                refusal("GET", &format!("{E}/{key}")),
                Refusal::NotCanonical,
                "{key}"
            );
        }
        assert_eq!(
            refusal("GET", &format!("{E}/clinic/records/%FF")),
            Refusal::Malformed
        );
        assert_eq!(
            refusal("GET", &format!("{E}/clinic/records/k#x")),
            Refusal::Malformed
        );
        let list = format!("{E}?list-type=2&prefix=clinic/records/");
        assert_eq!(refusal("GET", &list), Refusal::NotCanonical);
    }

    #[test]
    fn refuses_bucket_requests_that_are_not_listings() {
        for (method, query) in [
            ("PUT", ""),
            ("PUT", "?list-type=2&prefix=clinic%2Frecords%2F"),
            ("HEAD", ""),
            ("GET", ""),
            ("PUT", "?uploads&prefix=clinic%2Frecords%2F"),
            ("GET", "?uploads=x&prefix=clinic%2Frecords%2F"),
            ("GET", "?list-type=1&prefix=clinic%2Frecords%2F"),
            ("GET", "?prefix=clinic%2Frecords%2F"),
            ("GET", "?cors"),
        ] {
            let url = format!("{E}{query}");
            assert_eq!(
                refusal(method, &url),
                Refusal::BucketRequest,
                "{method} {url}"
            );
            assert_eq!(
                refusal(method, &format!("{E}/{query}")),
                Refusal::BucketRequest
            );
        }
    }

    #[test]
    fn refuses_listings_of_other_prefixes() {
        for query in ["&prefix=other%2F", "&prefix=clinic%2F", "&prefix=", ""] {
            let url = format!("{E}?list-type=2{query}");
            assert_eq!(refusal("GET", &url), Refusal::ListOutsidePrefix, "{url}");
        }
    }

    #[test]
    fn refuses_parameters_bucketsync_does_not_send() {
        for (url, name) in [
            (format!("{E}/clinic/records/k?acl"), "acl"),
            (
                format!("{E}/clinic/records/k?uploadId=1&partNumber=1"),
                "uploadId",
            ),
            (
                format!("{E}/clinic/records/k?response-content-type=text%2Fhtml"),
                "response-content-type",
            ),
            (
                format!("{E}?list-type=2&prefix=clinic%2Frecords%2F&fetch-owner=true"),
                "fetch-owner",
            ),
            (
                format!("{E}?list-type=2&prefix=clinic%2Frecords%2F&prefix=other%2F"),
                "prefix",
            ),
        ] {
            assert_eq!(
                refusal("GET", &url),
                Refusal::Parameter(name.into()),
                "{url}"
            );
        }
    }

    #[test]
    fn refuses_urls_signed_already() {
        for query in [
            "X-Amz-Signature=00",
            "x-amz-credential=a",
            "X-Amz-Expires=604800",
        ] {
            let url = format!("{E}/clinic/records/k?{query}");
            assert_eq!(refusal("GET", &url), Refusal::Presigned);
        }
    }

    #[test]
    fn refuses_prefixes_it_could_not_sign_under_and_folder_stores() {
        assert!(Policy::of(&Store::parse("s3://bkt/a/../b").unwrap()).is_err());
        assert!(Policy::of(&Store::parse("file:///tmp/x").unwrap()).is_err());
    }
}
