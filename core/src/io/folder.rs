//! The local-folder bucket: a [`Transport`] that executes request descriptions on a directory,
//! with the S3 semantics the engine relies on.
//!
//! - `file:///dir/key` objects are files under `dir`; writes go to a temporary file and are
//!   renamed into place, so readers see the old or the new object, never half of one;
//! - `If-None-Match: *` creates only if absent (a hard link, which fails when the name exists)
//!   and answers 412 otherwise;
//! - `GET file:///dir/?list-type=2&prefix=…` answers a ListObjectsV2 document, sorted, at most
//!   `max-keys` (default 1000) keys a page, with continuation tokens;
//! - ETags are the BLAKE3 hash of the content, so every machine sharing the folder sees the same.
//!
//! Names starting with `.` are reserved for temporary files and never listed.

use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use percent_encoding::percent_decode_str;

use crate::error::Result;
use crate::http::{Method, Request, Response};
use crate::io::driver::Transport;

/// The local-folder bucket transport. It keeps no state: every URL names its directory.
#[derive(Clone, Copy, Debug, Default)]
pub struct FolderBucket;

impl Transport for FolderBucket {
    async fn send(&self, request: Request) -> Result<Response> {
        Ok(self.execute(&request))
    }

    async fn sleep(&self, ms: u64) {
        // Without a runtime to ask for a timer, a thread keeps the time, so that the wait
        // does not block its executor (a background sync waits here while it listens for the
        // app). Waits are rare: a retry after a failing disk, a background sync's next turn.
        let (done, wait) = futures::channel::oneshot::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("bucketsync-timer".into())
            .spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                let _ = done.send(());
            });
        match spawned {
            Ok(_) => {
                let _ = wait.await;
            }
            // No thread to be had: wait on this one.
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(ms)),
        }
    }
}

impl FolderBucket {
    /// Executes one request synchronously.
    pub fn execute(&self, request: &Request) -> Response {
        let Some((path, query)) = parse_url(&request.url) else {
            return error(400, "InvalidURI", "not a file:// URL of an absolute path");
        };
        if let Some(query) = query.filter(|q| q.iter().any(|(k, v)| k == "list-type" && v == "2")) {
            if request.method != Method::Get {
                return error(405, "MethodNotAllowed", "listing needs GET");
            }
            return list(&path, &query);
        }
        let result = match request.method {
            Method::Get => match request.header("range") {
                Some(range) => get_range(&path, range),
                None => get(&path, true).map(|r| not_modified(r, request.header("if-none-match"))),
            },
            Method::Head => get(&path, false),
            Method::Put => put(
                &path,
                &request.body,
                request.header("if-none-match") == Some("*"),
                request.header("if-match"),
            ),
            Method::Delete => delete(&path),
            // No multipart uploads: a writer sends whole objects to a folder.
            Method::Post => return error(501, "NotImplemented", "the folder bucket takes no POST"),
        };
        result.unwrap_or_else(|e| error(500, "InternalError", &e.to_string()))
    }
}

type Query = Vec<(String, String)>;

fn parse_url(url: &str) -> Option<(PathBuf, Option<Query>)> {
    let rest = url.strip_prefix("file://")?;
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let path = PathBuf::from(percent_decode_str(path).decode_utf8().ok()?.into_owned());
    let safe = path.is_absolute()
        && path
            .components()
            .all(|c| !matches!(c, Component::ParentDir | Component::CurDir));
    if !safe {
        return None;
    }
    let query = query.map(|q| {
        q.split('&')
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
                (decode(k), decode(v))
            })
            .collect()
    });
    Some((path, query))
}

fn etag(content: &[u8]) -> String {
    let hash = blake3::hash(content);
    let hex = hash.to_hex();
    format!("\"{}\"", &hex[..32])
}

fn get(path: &Path, with_body: bool) -> io::Result<Response> {
    match fs::read(path) {
        Ok(body) => Ok(Response {
            status: 200,
            headers: vec![
                ("etag".into(), etag(&body)),
                ("content-length".into(), body.len().to_string()),
            ],
            body: if with_body { body } else { Vec::new() },
        }),
        Err(e) if is_absent(&e) => Ok(error(404, "NoSuchKey", "The specified key does not exist.")),
        Err(e) => Err(e),
    }
}

/// `304 Not Modified` (and no body) for a GET whose `If-None-Match` names the object's ETag.
fn not_modified(response: Response, if_none_match: Option<&str>) -> Response {
    let etag = response.header("etag").map(str::to_owned);
    match (if_none_match, etag) {
        (Some(wanted), Some(etag)) if response.status == 200 && wanted == etag => Response {
            status: 304,
            headers: vec![("etag".into(), etag)],
            body: Vec::new(),
        },
        _ => response,
    }
}

/// A GET of `bytes=<first>-<last>` or of the last bytes, `bytes=-<n>` (the forms the engine
/// sends): 206 with those bytes, or 416 when the object is shorter.
fn get_range(path: &Path, range: &str) -> io::Result<Response> {
    use std::io::{Read, Seek, SeekFrom};
    let parsed = range.strip_prefix("bytes=").and_then(|r| r.split_once('-'));
    let (first, last, suffix) = match parsed {
        Some(("", n)) => match n.parse::<u64>() {
            Ok(n) if n > 0 => (0, 0, Some(n)),
            _ => return Ok(error(400, "InvalidArgument", "unsupported Range")),
        },
        Some((a, b)) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(a), Ok(b)) if a <= b => (a, b, None),
            _ => return Ok(error(400, "InvalidArgument", "unsupported Range")),
        },
        None => return Ok(error(400, "InvalidArgument", "unsupported Range")),
    };
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if is_absent(&e) => {
            return Ok(error(404, "NoSuchKey", "The specified key does not exist."))
        }
        Err(e) => return Err(e),
    };
    let len = file.metadata()?.len();
    let (first, last) = match suffix {
        Some(n) if len > 0 => (len.saturating_sub(n), len - 1),
        _ => (first, last),
    };
    if first >= len {
        return Ok(error(
            416,
            "InvalidRange",
            "The requested range is not satisfiable",
        ));
    }
    let last = last.min(len - 1);
    file.seek(SeekFrom::Start(first))?;
    let want = last - first + 1;
    let mut body = crate::buffer::reserve(want as usize);
    file.take(want).read_to_end(&mut body)?;
    if body.len() as u64 != want {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Response {
        status: 206,
        headers: vec![
            (
                "content-range".into(),
                format!("bytes {first}-{last}/{len}"),
            ),
            ("content-length".into(), body.len().to_string()),
        ],
        body,
    })
}

fn is_absent(e: &io::Error) -> bool {
    // A directory where a file is expected reads as absent too, as a "folder" does in S3.
    e.kind() == io::ErrorKind::NotFound
        || e.kind() == io::ErrorKind::IsADirectory
        || e.raw_os_error() == Some(21)
}

fn put(
    path: &Path,
    body: &[u8],
    create_only: bool,
    if_match: Option<&str>,
) -> io::Result<Response> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("object path has no parent"))?;
    fs::create_dir_all(dir)?;
    if let Some(expected) = if_match {
        let current = fs::read(path).ok().map(|c| etag(&c));
        if current.as_deref() != Some(expected) {
            return Ok(error(
                412,
                "PreconditionFailed",
                "At least one of the preconditions you specified did not hold.",
            ));
        }
    }
    let mut suffix = [0u8; 8];
    crate::entropy::fill_os(&mut suffix).map_err(io::Error::other)?;
    let tmp = dir.join(format!(".tmp-{}", u64::from_le_bytes(suffix)));
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_data()?;
    }
    let placed = if create_only {
        match fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    } else {
        fs::rename(&tmp, path).map(|()| true)
    };
    let _ = fs::remove_file(&tmp);
    if !placed? {
        return Ok(error(
            412,
            "PreconditionFailed",
            "At least one of the preconditions you specified did not hold.",
        ));
    }
    Ok(Response {
        status: 200,
        headers: vec![("etag".into(), etag(body))],
        body: Vec::new(),
    })
}

fn delete(path: &Path) -> io::Result<Response> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if is_absent(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(Response {
        status: 204,
        ..Response::default()
    })
}

fn list(root: &Path, query: &Query) -> Response {
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let prefix = param("prefix").unwrap_or("");
    let max_keys = param("max-keys")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1000)
        .clamp(1, 1000);
    let after = match param("continuation-token").or(param("start-after")) {
        Some(token) => token.to_owned(),
        None => String::new(),
    };
    // Walk only the directory the prefix points into.
    let dir_part = prefix.rfind('/').map_or("", |i| &prefix[..=i]);
    let mut keys = Vec::new();
    if let Err(e) = walk(&root.join(dir_part), dir_part, &mut keys) {
        if !is_absent(&e) {
            return error(500, "InternalError", &e.to_string());
        }
    }
    keys.retain(|(k, _)| k.starts_with(prefix) && k.as_str() > after.as_str());
    keys.sort_unstable();
    // With a delimiter, keys below a further `/` collapse into their common prefix.
    let mut folders = std::collections::BTreeSet::new();
    if param("delimiter") == Some("/") {
        keys.retain(|(k, _)| match k[prefix.len()..].find('/') {
            Some(i) => {
                folders.insert(k[..prefix.len() + i + 1].to_owned());
                false
            }
            None => true,
        });
    }
    let truncated = keys.len() > max_keys;
    keys.truncate(max_keys);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    xml.push_str(&format!(
        "<Prefix>{}</Prefix><KeyCount>{}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
        escape(prefix),
        keys.len()
    ));
    for (key, path) in &keys {
        let content = fs::read(path).unwrap_or_default();
        xml.push_str(&format!(
            "<Contents><Key>{}</Key><ETag>{}</ETag><Size>{}</Size></Contents>",
            escape(key),
            escape(&etag(&content)),
            content.len()
        ));
    }
    for folder in &folders {
        xml.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            escape(folder)
        ));
    }
    xml.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if truncated {
        let last = &keys.last().expect("a truncated page has keys").0;
        xml.push_str(&format!(
            "<NextContinuationToken>{}</NextContinuationToken>",
            escape(last)
        ));
    }
    xml.push_str("</ListBucketResult>");
    Response {
        status: 200,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: xml.into_bytes(),
    }
}

fn walk(dir: &Path, key_prefix: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let key = format!("{key_prefix}{name}");
        if entry.file_type()?.is_dir() {
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else {
            out.push((key, entry.path()));
        }
    }
    Ok(())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response {
        status,
        headers: vec![("content-type".into(), "application/xml".into())],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{}</Message></Error>",
            escape(message)
        )
        .into_bytes(),
    }
}
