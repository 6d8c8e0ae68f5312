//! S3 response bodies: ListObjectsV2 pages and error documents, and status → category.

use quick_xml::events::Event;
use quick_xml::Reader;

use crate::error::{quote, Category, Error, Result};
use crate::http::Response;

/// One page of a ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// `(key, version tag)` of every object on the page, in the order listed. The tag is the
    /// ETag; a store whose listings carry no ETag (s3s-fs) gets `LastModified/Size` instead,
    /// and an empty tag when it has neither.
    pub objects: Vec<(String, String)>,
    /// Each object's size in bytes, in the order of `objects`, when the listing gave one.
    pub sizes: Vec<Option<u64>>,
    /// The token for the next page when the listing is truncated.
    pub next_token: Option<String>,
    /// The common prefixes ("folders") of a listing made with a delimiter.
    pub prefixes: Vec<String>,
}

/// Parses a ListObjectsV2 `ListBucketResult` document.
///
/// # Errors
/// `Server` when the body is not such a document, or says it is truncated without a token.
pub fn parse_list(body: &[u8]) -> Result<ListPage> {
    let bad = |why: &str| Error::Http {
        category: Category::Server,
        status: 200,
        code: None,
        context: format!("LIST answer is not a ListObjectsV2 document ({why})"),
    };
    let mut page = ListPage::default();
    let mut truncated = false;
    let mut seen_root = false;
    let mut key = None;
    let mut etag = None;
    let mut modified = None;
    let mut size = None;
    walk_xml(body, |path, text| {
        match path {
            ["ListBucketResult"] => seen_root = true,
            ["ListBucketResult", "IsTruncated"] => truncated = text.trim() == "true",
            ["ListBucketResult", "NextContinuationToken"] => {
                page.next_token = Some(text.to_owned())
            }
            ["ListBucketResult", "Contents", "Key"] => key = Some(text.to_owned()),
            ["ListBucketResult", "CommonPrefixes", "Prefix"] => page.prefixes.push(text.to_owned()),
            ["ListBucketResult", "Contents", "ETag"] => etag = Some(text.to_owned()),
            ["ListBucketResult", "Contents", "LastModified"] => modified = Some(text.to_owned()),
            ["ListBucketResult", "Contents", "Size"] => size = Some(text.to_owned()),
            ["ListBucketResult", "Contents"] => {
                // End of one <Contents>. Quirk: s3s-fs lists no ETag; fall back to the time
                // and size, which change whenever the object is rewritten.
                let tag = match (etag.take(), modified.take(), size.as_deref()) {
                    (Some(etag), _, _) => etag,
                    (None, Some(modified), Some(size)) => format!("{modified}/{size}"),
                    _ => String::new(),
                };
                if let Some(k) = key.take() {
                    page.sizes
                        .push(size.as_deref().and_then(|s| s.trim().parse().ok()));
                    page.objects.push((k, tag));
                }
                size = None;
            }
            _ => {}
        }
    })
    .map_err(|e| bad(&crate::error::quote(&e)))?;
    if !seen_root {
        return Err(bad("no ListBucketResult"));
    }
    if !truncated {
        page.next_token = None;
    } else if page.next_token.as_deref().is_none_or(str::is_empty) {
        return Err(bad("truncated without a continuation token"));
    }
    Ok(page)
}

/// The upload id of a CreateMultipartUpload answer (`InitiateMultipartUploadResult`).
///
/// # Errors
/// `Server` when the body is not such a document or names no upload id.
pub fn parse_upload_id(body: &[u8]) -> Result<String> {
    let mut id = None;
    let parsed = walk_xml(body, |path, text| {
        if path == ["InitiateMultipartUploadResult", "UploadId"] {
            id = Some(text.to_owned());
        }
    });
    match (parsed, id) {
        (Ok(()), Some(id)) if !id.is_empty() => Ok(id),
        _ => Err(Error::Http {
            category: Category::Server,
            status: 200,
            code: None,
            context: "CreateMultipartUpload answer names no upload id".into(),
        }),
    }
}

/// `(key, upload id)` of every upload in a ListMultipartUploads answer
/// (`ListMultipartUploadsResult`).
///
/// # Errors
/// `Server` when the body is not such a document.
pub fn parse_uploads(body: &[u8]) -> Result<Vec<(String, String)>> {
    let mut uploads = Vec::new();
    let mut seen_root = false;
    let (mut key, mut id) = (None, None);
    let parsed = walk_xml(body, |path, text| match path {
        ["ListMultipartUploadsResult"] => seen_root = true,
        ["ListMultipartUploadsResult", "Upload", "Key"] => key = Some(text.to_owned()),
        ["ListMultipartUploadsResult", "Upload", "UploadId"] => id = Some(text.to_owned()),
        ["ListMultipartUploadsResult", "Upload"] => {
            if let (Some(k), Some(i)) = (key.take(), id.take()) {
                uploads.push((k, i));
            }
        }
        _ => {}
    });
    match parsed {
        Ok(()) if seen_root => Ok(uploads),
        _ => Err(Error::Http {
            category: Category::Server,
            status: 200,
            code: None,
            context: "ListMultipartUploads answer is not a ListMultipartUploadsResult".into(),
        }),
    }
}

/// The S3 error code (`NoSuchKey`, `SlowDown`, …) of an error response body, if it has one.
pub fn error_code(body: &[u8]) -> Option<String> {
    let mut code = None;
    let _ = walk_xml(body, |path, text| {
        if path == ["Error", "Code"] {
            code = Some(text.to_owned());
        }
    });
    code
}

/// The error for a non-2xx `response` to the request described by `context`.
pub fn error_from_response(response: &Response, context: String) -> Error {
    let code = error_code(&response.body);
    let category = categorize(response.status, code.as_deref());
    Error::Http {
        category,
        status: response.status,
        // Whoever answers for the store chooses it: quoted short.
        code: code.as_deref().map(quote),
        context,
    }
}

/// The category of an S3 error status and code.
pub fn categorize(status: u16, code: Option<&str>) -> Category {
    match (status, code) {
        (_, Some("SlowDown" | "Throttling" | "TooManyRequests")) | (429, _) => Category::Throttled,
        (_, Some("RequestTimeout")) | (408, _) => Category::Timeout,
        (_, Some("NoSuchBucket" | "NoSuchKey")) | (404, _) => Category::NotFound,
        // A session token that expired or must be refreshed: the app renews its credentials.
        (_, Some("ExpiredToken" | "TokenRefreshRequired" | "InvalidToken")) => Category::Auth,
        (401 | 403, _) => Category::Auth,
        (409 | 412, _) => Category::Conflict,
        // A redirect (wrong region or endpoint): never followed, to be fixed in the store URL.
        (300..=399, _) => Category::Config,
        (503, _) => Category::Throttled,
        (400, _) => Category::Config,
        _ => Category::Server,
    }
}

/// Whether a request that failed with this status and code may pass on another try: the
/// categories that may pass, and a conditional write that collided with another one in flight
/// (409 `ConditionalRequestConflict`, which S3 documents as retryable).
pub fn retryable(status: u16, code: Option<&str>) -> bool {
    code == Some("ConditionalRequestConflict")
        || crate::retry::RetryPolicy::retries(categorize(status, code))
}

/// Whether a response says the store does not implement a conditional header we sent: status
/// 501 itself (a 4xx that happens to carry the code is not enough to give up the guard).
pub fn is_not_implemented(response: &Response) -> bool {
    response.status == 501
}

/// Calls `on` with the element path and the element's text (its text nodes joined) at the
/// end of every element.
fn walk_xml(body: &[u8], mut on: impl FnMut(&[&str], &str)) -> Result<(), String> {
    let mut reader = Reader::from_reader(body);
    let mut names: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf) {
            Ok(Event::Start(e)) => {
                names.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
                text.clear();
            }
            Ok(Event::End(_)) => {
                let path: Vec<&str> = names.iter().map(String::as_str).collect();
                on(&path, &text);
                text.clear();
                names.pop();
            }
            Ok(Event::Text(t)) => text.push_str(&t.unescape().map_err(|e| e.to_string())?),
            Ok(Event::CData(t)) => text.push_str(&String::from_utf8_lossy(&t)),
            Ok(Event::Eof) => return Ok(()),
            Ok(_) => {}
            Err(e) => return Err(e.to_string()),
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_truncated_page() {
        let xml = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<Contents><Key>v/m/a&amp;b</Key><ETag>&quot;e1&quot;</ETag><Size>3</Size></Contents>
<Contents><Key>v/m/c</Key><ETag>"e2"</ETag></Contents>
<IsTruncated>true</IsTruncated><NextContinuationToken>tok</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list(xml).unwrap();
        assert_eq!(
            page.objects,
            vec![
                ("v/m/a&b".to_owned(), "\"e1\"".to_owned()),
                ("v/m/c".to_owned(), "\"e2\"".to_owned())
            ]
        );
        assert_eq!(page.next_token.as_deref(), Some("tok"));
    }

    #[test]
    fn a_listing_without_etags_falls_back_to_time_and_size() {
        let xml = b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>x/k</Key>\
            <LastModified>2026-11-22T15:06:23.147Z</LastModified><Size>5</Size></Contents>\
            <Contents><Key>x/j</Key></Contents></ListBucketResult>";
        let page = parse_list(xml).unwrap();
        assert_eq!(
            page.objects[0],
            ("x/k".to_owned(), "2026-11-22T15:06:23.147Z/5".to_owned())
        );
        assert_eq!(page.objects[1], ("x/j".to_owned(), String::new()));
    }

    #[test]
    fn a_malformed_listing_is_quoted_short_in_the_error() {
        let mut xml = b"<ListBucketResult><\x1b[31m".to_vec();
        xml.extend(std::iter::repeat_n(b'x', 100_000));
        xml.extend_from_slice(b"></b>");
        let message = parse_list(&xml).unwrap_err().to_string();
        assert!(message.len() < 300, "{} bytes", message.len());
        assert!(!message.contains('\x1b'), "{message}");
    }

    #[test]
    fn refuses_garbage_and_tokenless_truncation() {
        assert!(parse_list(b"not xml at all").is_err());
        let xml = b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
        assert!(parse_list(xml).is_err());
    }

    #[test]
    fn maps_error_codes() {
        let body = b"<Error><Code>SlowDown</Code><Message>x</Message></Error>";
        assert_eq!(error_code(body).as_deref(), Some("SlowDown"));
        assert_eq!(categorize(503, Some("SlowDown")), Category::Throttled);
        assert_eq!(
            categorize(403, Some("SignatureDoesNotMatch")),
            Category::Auth
        );
        assert_eq!(categorize(404, Some("NoSuchBucket")), Category::NotFound);
        assert_eq!(
            categorize(412, Some("PreconditionFailed")),
            Category::Conflict
        );
        assert_eq!(categorize(500, None), Category::Server);
    }

    /// Issue 14: an expired or refreshable session token is an auth failure (the app must
    /// renew credentials), not a configuration error.
    #[test]
    fn expired_session_tokens_are_auth_errors() {
        for code in ["ExpiredToken", "TokenRefreshRequired", "InvalidToken"] {
            assert_eq!(categorize(400, Some(code)), Category::Auth, "{code}");
        }
    }

    /// Issue 14: a conditional write that collided with another one in flight may pass on
    /// another try; throttling is retried too.
    #[test]
    fn conditional_request_conflicts_and_slow_down_are_retried() {
        assert!(retryable(409, Some("ConditionalRequestConflict")));
        assert!(retryable(503, Some("SlowDown")));
        assert!(!retryable(412, Some("PreconditionFailed")));
        assert!(!retryable(409, Some("BucketAlreadyExists")));
    }

    /// Issue 14: text from a response body (anyone who can answer for the store chooses it)
    /// reaches an error message short and with its control characters escaped.
    #[test]
    fn hostile_error_codes_are_cut_and_escaped() {
        let code = format!("\u{1b}[31mEvil{}", "x".repeat(1 << 20));
        let body = format!("<Error><Code>{code}</Code></Error>");
        let response = Response {
            status: 500,
            headers: Vec::new(),
            body: body.into_bytes(),
        };
        let shown = error_from_response(&response, "GET m/x".into()).to_string();
        assert!(shown.len() < 300, "{} bytes", shown.len());
        assert!(!shown.contains('\u{1b}'), "{shown}");
        assert!(shown.contains("Evil"), "{shown}");
    }
}
