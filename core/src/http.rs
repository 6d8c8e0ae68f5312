//! Request and response descriptions: what the engine hands out and takes back.

use crate::ids::RequestId;

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// PUT
    Put,
    /// HEAD
    Head,
    /// DELETE
    Delete,
    /// POST (the start and the end of a multipart upload)
    Post,
}

impl Method {
    /// The method's name as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Head => "HEAD",
            Method::Delete => "DELETE",
            Method::Post => "POST",
        }
    }
}

/// What a request is for; sync reports count requests by kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RequestKind {
    /// One page of the manifest listing.
    List,
    /// A device's manifest.
    GetManifest,
    /// A device's segment.
    GetSegment,
    /// Writing one of our segments.
    PutSegment,
    /// Writing our manifest.
    PutManifest,
    /// A checkpoint of the whole vault, to start from.
    GetCheckpoint,
    /// Writing our checkpoint.
    PutCheckpoint,
    /// Listing the vaults under the store's prefix (only when a join finds no vault).
    ListVaults,
    /// One page of the listing of every checkpoint in the vault: only when segments were
    /// deleted and no checkpoint a manifest names covers them.
    ListCheckpoints,
    /// Deleting one of our checkpoints that a newer one replaced, or one of an id we had
    /// before we started over.
    DeleteCheckpoint,
    /// Deleting one of our segments that a checkpoint covers, or one of an id we had before we
    /// started over.
    DeleteSegment,
    /// One page of the listing of the segments of an id we had before we started over, to
    /// delete them (about once a process, while that id's log is not gone).
    ListSegments,
    /// Creating a segment just stored a second time, byte for byte, to learn whether the store
    /// refuses it (`If-None-Match`): once a month, with a small segment.
    CheckCreate,
    /// Writing a pack of file chunks.
    PutPack,
    /// Reading chunks of a file (a ranged GET of a pack).
    GetChunks,
    /// One page of the listing of our packs (pack collection, about once a grace period).
    ListPacks,
    /// Deleting one of our packs that no file references any more.
    DeletePack,
    /// One page of the listing of our pack redirects (at pack collection).
    ListRedirects,
    /// Where the chunks of a repacked pack went.
    GetRedirect,
    /// Writing the redirect of a pack we repacked.
    PutRedirect,
    /// Reading the vault's change hint, conditionally: the poll of an idle device.
    GetHint,
    /// Moving the vault's change hint after publishing our manifest.
    PutHint,
    /// Writing a grant of the vault to another person (sharing).
    PutGrant,
    /// Reading a grant made to us (accepting an invitation).
    GetGrant,
}

impl RequestKind {
    /// Every kind, in report order.
    pub const ALL: [RequestKind; 24] = [
        RequestKind::List,
        RequestKind::GetManifest,
        RequestKind::GetSegment,
        RequestKind::PutSegment,
        RequestKind::PutManifest,
        RequestKind::GetCheckpoint,
        RequestKind::PutCheckpoint,
        RequestKind::ListVaults,
        RequestKind::ListCheckpoints,
        RequestKind::DeleteCheckpoint,
        RequestKind::DeleteSegment,
        RequestKind::ListSegments,
        RequestKind::CheckCreate,
        RequestKind::PutPack,
        RequestKind::GetChunks,
        RequestKind::ListPacks,
        RequestKind::DeletePack,
        RequestKind::ListRedirects,
        RequestKind::GetRedirect,
        RequestKind::PutRedirect,
        RequestKind::GetHint,
        RequestKind::PutHint,
        RequestKind::PutGrant,
        RequestKind::GetGrant,
    ];

    /// A short name for reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::List => "list",
            RequestKind::GetManifest => "get-manifest",
            RequestKind::GetSegment => "get-segment",
            RequestKind::PutSegment => "put-segment",
            RequestKind::PutManifest => "put-manifest",
            RequestKind::GetCheckpoint => "get-checkpoint",
            RequestKind::PutCheckpoint => "put-checkpoint",
            RequestKind::ListVaults => "list-vaults",
            RequestKind::ListCheckpoints => "list-checkpoints",
            RequestKind::DeleteCheckpoint => "delete-checkpoint",
            RequestKind::DeleteSegment => "delete-segment",
            RequestKind::ListSegments => "list-segments",
            RequestKind::CheckCreate => "check-create",
            RequestKind::PutPack => "put-pack",
            RequestKind::GetChunks => "get-chunks",
            RequestKind::ListPacks => "list-packs",
            RequestKind::DeletePack => "delete-pack",
            RequestKind::ListRedirects => "list-redirects",
            RequestKind::GetRedirect => "get-redirect",
            RequestKind::PutRedirect => "put-redirect",
            RequestKind::GetHint => "get-hint",
            RequestKind::PutHint => "put-hint",
            RequestKind::PutGrant => "put-grant",
            RequestKind::GetGrant => "get-grant",
        }
    }
}

/// One request for a transport to execute, exactly as described.
///
/// Its `Debug` hides the signature and session token headers and the query of presigned URLs.
#[derive(Clone)]
pub struct Request {
    /// Pass it back with the response.
    pub id: RequestId,
    /// What the request is for.
    pub kind: RequestKind,
    /// The method.
    pub method: Method,
    /// The full URL (`file:///…` for the local-folder bucket).
    pub url: String,
    /// Headers to send, names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body (empty for GET and LIST). Shared: cloning it (the engine keeps a body to send
    /// again, a transport takes it) copies no bytes; `Vec<u8>` converts into it with `into()`.
    pub body: bytes::Bytes,
}

/// What stands in for a secret in printed requests.
pub const REDACTED: &str = "<redacted>";

/// Whether a header's value is a secret: the signature, or the session token.
pub fn is_secret_header(name: &str) -> bool {
    name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("x-amz-security-token")
}

/// `value` as it may be printed for the header `name`.
pub fn shown_header_value<'a>(name: &str, value: &'a str) -> &'a str {
    if is_secret_header(name) {
        REDACTED
    } else {
        value
    }
}

/// `url` as it may be printed: the values of the presigned-URL query parameters that sign
/// or identify the request replaced by [`REDACTED`]; the rest (the path, other parameters,
/// a fragment) as it is. Every binding prints requests by this rule.
pub fn redacted_url(url: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let secret = |name: &str| {
        [
            "X-Amz-Signature",
            "X-Amz-Credential",
            "X-Amz-Security-Token",
        ]
        .iter()
        .any(|s| name.eq_ignore_ascii_case(s))
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(base);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, _)) if secret(name) => {
                out.push_str(name);
                out.push('=');
                out.push_str(REDACTED);
            }
            _ => out.push_str(pair),
        }
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    out
}

impl core::fmt::Debug for Request {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), shown_header_value(n, v)))
            .collect();
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("method", &self.method)
            .field("url", &redacted_url(&self.url))
            .field("headers", &headers)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}

impl Request {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }
}

/// A transport's answer to a [`Request`].
#[derive(Clone, Debug, Default)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_request_hides_its_signature_token_and_presigned_parameters() {
        let request = Request {
            id: RequestId(7),
            kind: RequestKind::GetManifest,
            method: Method::Get,
            url: "https://h/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F1&\
                  X-Amz-Signature=qsig&x-amz-security-token=tok-secret&partNumber=2"
                .into(),
            headers: vec![
                (
                    "authorization".into(),
                    "AWS4-HMAC-SHA256 Signature=hsig".into(),
                ),
                ("X-Amz-Security-Token".into(), "session-secret".into()),
                ("range".into(), "bytes=0-1".into()),
            ],
            body: Default::default(),
        };
        let printed = format!("{request:?}");
        for secret in ["hsig", "qsig", "AKID", "tok-secret", "session-secret"] {
            assert!(!printed.contains(secret), "{secret} in {printed}");
        }
        assert!(
            printed.contains("X-Amz-Algorithm=AWS4-HMAC-SHA256"),
            "{printed}"
        );
        assert!(
            printed.contains("partNumber=2") && printed.contains("bytes=0-1"),
            "{printed}"
        );
    }
}
