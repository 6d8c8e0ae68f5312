//! `bucketsync signer`: a small stateless service that presigns requests for clients that hold
//! no S3 keys (browsers, phones). It signs only what a vault's engine sends to read, write and
//! collect its objects: GET, PUT and HEAD of a key under the store's prefix, ListObjectsV2 and
//! ListMultipartUploads listings of prefixes under it, DELETE of a vault's segments, checkpoints and packs (what a
//! device collects), and the multipart requests of a pack, for clients presenting the bearer
//! token; every URL is valid for a few minutes. Anything else is refused, saying why. A token
//! that may write (the store's token, or a member token with the write role) may so delete any
//! segment, checkpoint or pack in the folders it reaches: the service cannot tell one device's
//! objects from another's. Manifests, redirects, grants and the change hint are never deleted.
//!
//! HTTP: `POST /sign` with `Authorization: Bearer TOKEN` and `{"method": "GET", "url": "…"}`
//! answers `{"url": "<presigned>", "headers": []}`; 401 for a missing or wrong token, 403
//! `{"error": "…"}` for a request it does not sign, 400 for a body that is not that JSON.
//! Every answer allows any web origin (CORS): without the token, nobody gets a URL. What is
//! signed is decided in `policy`.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bucketsync::sign::SigV4;
use bucketsync::{Credentials, Error, Method, Store, Timestamp};
use serde_json::{json, Value};

use crate::args::{Global, SignerArgs};
use crate::output::{Failure, Output};
use crate::running::now_ms;
use crate::text::time;

mod policy;

use policy::{Allowed, Policy};

/// The shortest token accepted: anything shorter can be guessed.
const MIN_TOKEN_CHARS: usize = 16;
/// The largest request body read (a method and a URL).
const MAX_BODY: usize = 64 * 1024;
/// Requests answered at once (each answer takes microseconds; a slow client holds one).
const WORKERS: usize = 8;

/// Runs the service until Ctrl-C.
///
/// # Errors
/// `Config` when the store is not an `s3://` one, the token file is missing or its token too
/// short, the S3 credentials are missing, or the address cannot be listened on.
pub async fn run(g: &Global, out: Output, args: &SignerArgs) -> Result<(), Failure> {
    let store = Store::parse(crate::vault::store_url(g)?)?;
    let policy = Policy::of(&store)?;
    let mut holders = vec![Holder {
        token: Token::read(&args.token_file)?,
        scope: Scope::Store,
    }];
    if let Some(path) = &args.member_tokens {
        holders.extend(Holder::read_members(path, &store)?);
    }
    let credentials = match crate::profile::credentials(g.profile.as_deref())? {
        Some(credentials) => credentials,
        None => Credentials::from_env()?,
    };
    let region = store.region().expect("an s3:// store has a region");
    let service = Arc::new(Service {
        policy,
        holders,
        signer: SigV4::new(credentials, region),
        expires: args.expires,
    });
    let server = tiny_http::Server::http(&args.listen)
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", args.listen)))?;
    let address = server
        .server_addr()
        .to_ip()
        .map_or_else(|| args.listen.clone(), |a| a.to_string());
    let server = Arc::new(server);
    for _ in 0..WORKERS {
        let (server, service) = (Arc::clone(&server), Arc::clone(&service));
        std::thread::spawn(move || {
            for request in server.incoming_requests() {
                service.respond(request);
            }
        });
    }
    let expires = humantime::format_duration(args.expires);
    out.result(
        || {
            format!(
                "Signing GET, PUT, HEAD and listings under {} for holders of the token, each URL \
                 valid for {expires}: POST http://{address}/sign (Ctrl-C stops)",
                store.display_name()
            )
        },
        || {
            json!({
                "listening": format!("http://{address}"),
                "sign": format!("http://{address}/sign"),
                "store": store.display_name(),
                "expires_seconds": args.expires.as_secs(),
            })
        },
    );
    tokio::signal::ctrl_c()
        .await
        .map_err(|e| Error::Config(format!("cannot wait for Ctrl-C: {e}")))?;
    for _ in 0..WORKERS {
        server.unblock();
    }
    Ok(())
}

/// The bearer token, kept as its hash: compared in constant time (blake3's `Hash` equality),
/// whatever its length.
struct Token(blake3::Hash);

impl Token {
    /// Reads the token from `path`.
    ///
    /// # Errors
    /// `Config` when the file cannot be read or the token is shorter than 16 characters.
    fn read(path: &Path) -> bucketsync::Result<Token> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the token file {}: {e}",
                path.display()
            ))
        })?;
        Token::new(text.trim()).ok_or_else(|| {
            Error::Config(format!(
                "the token in {} is empty or shorter than {MIN_TOKEN_CHARS} characters",
                path.display()
            ))
        })
    }

    fn new(token: &str) -> Option<Token> {
        (token.chars().count() >= MIN_TOKEN_CHARS).then(|| Token(blake3::hash(token.as_bytes())))
    }

    /// Whether an `Authorization` header value presents the token.
    fn admits(&self, authorization: Option<&str>) -> bool {
        let presented = authorization
            .and_then(|a| a.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        !presented.is_empty() && blake3::hash(presented.as_bytes()) == self.0
    }
}

/// What a token is signed for.
#[derive(Debug, PartialEq, Eq)]
enum Scope {
    /// Everything the policy allows under the store's prefix (the `--token-file` token).
    Store,
    /// Under one vault's folder only (`<prefix><vault id>/`); PUT only with `write`.
    Vault { folder: String, write: bool },
}

impl Scope {
    /// Why `allowed` is outside this scope, if it is.
    fn refuses(&self, allowed: &Allowed) -> Option<&'static str> {
        match self {
            Scope::Store => None,
            Scope::Vault { folder, .. } if !allowed.target.starts_with(folder.as_str()) => {
                Some("outside the vault this token is for")
            }
            Scope::Vault { write: false, .. }
                if !matches!(allowed.method, Method::Get | Method::Head) =>
            {
                Some("this token may only read")
            }
            Scope::Vault { .. } => None,
        }
    }
}

/// A token and what it is signed for.
struct Holder {
    token: Token,
    scope: Scope,
}

impl Holder {
    /// The member tokens of `path`: lines `TOKEN VAULT-ID read|write`, `#` comments.
    ///
    /// # Errors
    /// `Config` naming the line that is wrong (never the token).
    fn read_members(path: &Path, store: &Store) -> bucketsync::Result<Vec<Holder>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read the member tokens {}: {e}",
                path.display()
            ))
        })?;
        let mut holders = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = |why: &str| {
                Error::Config(format!(
                    "{} line {}: {why} (a line is TOKEN VAULT-ID read|write)",
                    path.display(),
                    number + 1
                ))
            };
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [token, vault, mode] = fields[..] else {
                return Err(bad("three fields expected"));
            };
            let token = Token::new(token).ok_or_else(|| {
                bad(&format!(
                    "a token has at least {MIN_TOKEN_CHARS} characters"
                ))
            })?;
            if vault.len() != 32
                || !vault
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                return Err(bad("a vault id is 32 lowercase hex digits"));
            }
            let write = match mode {
                "read" => false,
                "write" => true,
                _ => return Err(bad("the mode is read or write")),
            };
            holders.push(Holder {
                token,
                scope: Scope::Vault {
                    folder: format!("{}{vault}/", store.prefix()),
                    write,
                },
            });
        }
        Ok(holders)
    }
}

/// The service's state, shared by the workers; nothing changes after start.
struct Service {
    policy: Policy,
    /// The store's token first, then the member tokens.
    holders: Vec<Holder>,
    signer: SigV4,
    expires: Duration,
}

/// An answer, before CORS headers.
#[derive(Debug)]
struct Reply {
    status: u16,
    body: Option<Value>,
    /// For the log line: the method and key or prefix asked for (never a token or signature).
    asked: String,
}

impl Reply {
    fn new(status: u16, body: Option<Value>, asked: impl Into<String>) -> Reply {
        Reply {
            status,
            body,
            asked: asked.into(),
        }
    }

    fn error(status: u16, why: impl std::fmt::Display, asked: impl Into<String>) -> Reply {
        Reply::new(status, Some(json!({"error": why.to_string()})), asked)
    }
}

impl Service {
    /// The answer to `method` on `path` (with the query, as sent) at wall time `now`.
    fn answer(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Reply {
        if path.split('?').next() != Some("/sign") {
            return Reply::error(404, "not found: the service answers POST /sign", "-");
        }
        match method {
            "OPTIONS" => return Reply::new(204, None, "preflight"),
            "POST" => {}
            _ => return Reply::error(405, "use POST /sign", "-"),
        }
        // Every token is compared (no early exit tells which one came close).
        let mut admitted: Vec<&Scope> = self
            .holders
            .iter()
            .filter(|h| h.token.admits(authorization))
            .map(|h| &h.scope)
            .collect();
        // A member token equal to the store's is taken as the narrower (member tokens are
        // unique among themselves).
        let scope = admitted.pop();
        let Some(scope) = scope else {
            return Reply::error(401, "a missing or wrong bearer token", "-");
        };
        if body.len() > MAX_BODY {
            return Reply::error(413, "the body is too large", "-");
        }
        let asked: Option<(String, String)> = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| Some((v["method"].as_str()?.into(), v["url"].as_str()?.into())));
        let Some((method, url)) = asked else {
            return Reply::error(
                400,
                r#"the body must be JSON: {"method": "GET", "url": "…"}"#,
                "-",
            );
        };
        let shown_method: String = method.chars().take(16).collect();
        let allowed = match self.policy.check(&method, &url) {
            Ok(allowed) => allowed,
            Err(refusal) => {
                let asked = format!("{shown_method:?} {:?}: {refusal}", shown_path(&url));
                return Reply::error(403, refusal, asked);
            }
        };
        let asked = format!(
            "{shown_method} {}{:?}",
            if allowed.listing { "list " } else { "" },
            allowed.target
        );
        if let Some(why) = scope.refuses(&allowed) {
            return Reply::error(403, why, format!("{asked}: {why}"));
        }
        match self.signer.presign(allowed.method, &url, self.expires, now) {
            Ok(signed) => Reply::new(200, Some(json!({"url": signed, "headers": []})), asked),
            Err(e) => Reply::error(500, e, asked),
        }
    }

    /// Answers one HTTP request, with CORS headers, and logs it on stderr.
    fn respond(&self, mut request: tiny_http::Request) {
        let header = |name: &'static str| {
            request
                .headers()
                .iter()
                .find(|h| h.field.equiv(name))
                .map(|h| h.value.as_str().to_owned())
        };
        let origin = header("Origin");
        let authorization = header("Authorization");
        let mut body = Vec::new();
        let read = request
            .as_reader()
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut body);
        let method = request.method().as_str().to_owned();
        let path = request.url().to_owned();
        let now = Timestamp(now_ms());
        let reply = match read {
            Ok(_) => self.answer(&method, &path, authorization.as_deref(), &body, now),
            Err(e) => Reply::error(400, format!("cannot read the body: {e}"), "-"),
        };
        let mut headers = vec![
            (
                "Access-Control-Allow-Origin",
                origin.as_deref().unwrap_or("*"),
            ),
            ("Vary", "Origin"),
            ("Cache-Control", "no-store"),
        ];
        match reply.status {
            204 => headers.extend([
                ("Access-Control-Allow-Methods", "POST"),
                (
                    "Access-Control-Allow-Headers",
                    "authorization, content-type",
                ),
                ("Access-Control-Max-Age", "600"),
            ]),
            401 => headers.push(("WWW-Authenticate", "Bearer")),
            405 => headers.push(("Allow", "POST, OPTIONS")),
            _ => {}
        }
        let text = reply
            .body
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default();
        let mut response = tiny_http::Response::from_string(text).with_status_code(reply.status);
        if reply.body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        for (name, value) in headers {
            // A header value the client sent (Origin) may not be one tiny_http accepts back.
            if let Ok(header) = tiny_http::Header::from_bytes(name, value) {
                response.add_header(header);
            }
        }
        eprintln!(
            "{} {method} {} {} {}",
            time(now.0),
            path.split('?').next().unwrap_or(""),
            reply.status,
            reply.asked
        );
        let _ = request.respond(response);
    }
}

/// A URL's path without its origin and query (a query may carry a signature), for the log.
fn shown_path(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::policy::tests::{policy, E, PATH_STYLE};
    use super::*;

    #[test]
    fn tokens_are_long_and_compared_whole() {
        assert!(Token::new("").is_none());
        assert!(Token::new("fifteen-chars-x").is_none());
        let token = Token::new("0123456789abcdef").unwrap();
        assert!(token.admits(Some("Bearer 0123456789abcdef")));
        assert!(token.admits(Some("bearer  0123456789abcdef ")));
        for wrong in [
            None,
            Some(""),
            Some("Bearer"),
            Some("Bearer "),
            Some("Bearer 0123456789abcde"),
            Some("Bearer 0123456789abcdef0"),
            Some("Basic 0123456789abcdef"),
            Some("0123456789abcdef"),
        ] {
            assert!(!token.admits(wrong), "{wrong:?}");
        }
    }

    fn service() -> Service {
        let credentials = Credentials::new("AKIAIOSFODNN7EXAMPLE", "SECRET-KEY-VALUE", None);
        Service {
            policy: policy(PATH_STYLE),
            holders: vec![
                Holder {
                    token: Token::new("0123456789abcdef").unwrap(),
                    scope: Scope::Store,
                },
                Holder {
                    token: Token::new("member-read-0123456789").unwrap(),
                    scope: Scope::Vault {
                        folder: format!("clinic/records/{}/", "ab".repeat(16)),
                        write: false,
                    },
                },
            ],
            signer: SigV4::new(credentials.unwrap(), "us-east-1"),
            expires: Duration::from_secs(300),
        }
    }

    const TOKEN: Option<&str> = Some("Bearer 0123456789abcdef");
    const NOW: Timestamp = Timestamp(1_369_353_600_000);

    fn ask(method: &str, url: &str) -> Vec<u8> {
        json!({"method": method, "url": url, "headers": []})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn answers_with_a_presigned_url_and_logs_no_secret() {
        let body = ask("PUT", &format!("{E}/clinic/records/k"));
        let reply = service().answer("POST", "/sign", TOKEN, &body, NOW);
        assert_eq!(reply.status, 200, "{reply:?}");
        let body = reply.body.unwrap();
        let url = body["url"].as_str().unwrap();
        assert!(
            url.starts_with(&format!("{E}/clinic/records/k?X-Amz-")),
            "{url}"
        );
        assert!(url.contains("X-Amz-Expires=300") && url.contains("X-Amz-Signature="));
        assert_eq!(body["headers"], json!([]));
        assert_eq!(reply.asked, r#"PUT "clinic/records/k""#);
        let listed = ask(
            "GET",
            &format!("{E}?list-type=2&prefix=clinic%2Frecords%2F"),
        );
        let reply = service().answer("POST", "/sign", TOKEN, &listed, NOW);
        assert_eq!(
            (reply.status, reply.asked.as_str()),
            (200, r#"GET list "clinic/records/""#)
        );
    }

    #[test]
    fn answers_each_refusal_with_its_status() {
        let s = service();
        let good = ask("GET", &format!("{E}/clinic/records/k"));
        assert_eq!(s.answer("POST", "/other", TOKEN, &good, NOW).status, 404);
        assert_eq!(s.answer("GET", "/sign", TOKEN, &good, NOW).status, 405);
        assert_eq!(s.answer("OPTIONS", "/sign", None, b"", NOW).status, 204);
        assert_eq!(s.answer("POST", "/sign", None, &good, NOW).status, 401);
        let wrong = Some("Bearer 0123456789abcdeX");
        assert_eq!(s.answer("POST", "/sign", wrong, &good, NOW).status, 401);
        for bad in [
            &b"not json"[..],
            b"{}",
            br#"{"method": "GET"}"#,
            br#"{"method": 1, "url": "x"}"#,
        ] {
            assert_eq!(s.answer("POST", "/sign", TOKEN, bad, NOW).status, 400);
        }
        let large = vec![b' '; MAX_BODY + 1];
        assert_eq!(s.answer("POST", "/sign", TOKEN, &large, NOW).status, 413);
        let signed = ask("GET", &format!("{E}/clinic/records/k?X-Amz-Signature=feed"));
        let reply = s.answer("POST", "/sign", TOKEN, &signed, NOW);
        assert_eq!(reply.status, 403);
        assert!(reply.body.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("X-Amz-*"));
        assert!(!reply.asked.contains("feed"), "{}", reply.asked);
        let deleted = ask("DELETE", &format!("{E}/clinic/records/k"));
        let reply = s.answer("POST", "/sign", TOKEN, &deleted, NOW);
        assert_eq!(reply.status, 403);
        assert_eq!(
            reply.body.unwrap()["error"],
            policy::Refusal::NotCollectable.to_string()
        );
        let patched = ask("PATCH", &format!("{E}/clinic/records/k"));
        let reply = s.answer("POST", "/sign", TOKEN, &patched, NOW);
        assert_eq!(
            reply.body.unwrap()["error"],
            policy::Refusal::Method("PATCH".into()).to_string()
        );
    }

    #[test]
    fn a_member_token_is_signed_for_under_its_vault_and_for_its_mode_only() {
        let s = service();
        let member = Some("Bearer member-read-0123456789");
        let vault = "ab".repeat(16);
        let inside = format!("{E}/clinic/records/{vault}/m/{}", "01".repeat(16));
        let listing = format!("{E}?list-type=2&prefix=clinic%2Frecords%2F{vault}%2Fm%2F");
        for (method, url) in [("GET", &inside), ("HEAD", &inside), ("GET", &listing)] {
            let reply = s.answer("POST", "/sign", member, &ask(method, url), NOW);
            assert_eq!(reply.status, 200, "{method} {url}: {reply:?}");
        }
        let put = s.answer("POST", "/sign", member, &ask("PUT", &inside), NOW);
        assert_eq!(put.status, 403);
        assert_eq!(put.body.unwrap()["error"], "this token may only read");
        // Nor delete or upload in parts what a writer may.
        let device = "01".repeat(16);
        let segment = format!("{E}/clinic/records/{vault}/s/{device}/0000000000000001");
        let pack = format!("{E}/clinic/records/{vault}/p/{device}/{device}");
        for (method, url) in [
            ("DELETE", segment.clone()),
            ("POST", format!("{pack}?uploads")),
        ] {
            let reply = s.answer("POST", "/sign", member, &ask(method, &url), NOW);
            assert_eq!(reply.status, 403, "{method} {url}");
            assert_eq!(reply.body.unwrap()["error"], "this token may only read");
            let writer = s.answer("POST", "/sign", TOKEN, &ask(method, &url), NOW);
            assert_eq!(writer.status, 200, "{method} {url}: {writer:?}");
        }
        let other = format!("{E}/clinic/records/{}/m/x", "cd".repeat(16));
        let whole = format!("{E}?list-type=2&prefix=clinic%2Frecords%2F");
        for url in [&other, &whole] {
            let reply = s.answer("POST", "/sign", member, &ask("GET", url), NOW);
            assert_eq!(reply.status, 403, "{url}");
            assert_eq!(
                reply.body.unwrap()["error"],
                "outside the vault this token is for"
            );
        }
        // The store's token still reaches everything.
        assert_eq!(
            s.answer("POST", "/sign", TOKEN, &ask("PUT", &other), NOW)
                .status,
            200
        );
    }

    #[test]
    fn member_token_files_are_read_line_by_line_with_their_errors() {
        let dir = std::env::temp_dir().join(format!("bucketsync-members-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let store = Store::parse("s3://bkt/clinic?region=eu-west-1").unwrap();
        let vault = "ab".repeat(16);
        let file = dir.join("members");
        std::fs::write(
            &file,
            format!("# Bob\nbob-token-0123456789 {vault} write\n\ncarol-token-0123456789 {vault} read # Carol\n"),
        )
        .unwrap();
        let holders = Holder::read_members(&file, &store).unwrap();
        let scopes: Vec<&Scope> = holders.iter().map(|h| &h.scope).collect();
        let folder = format!("clinic/{vault}/");
        assert_eq!(
            scopes,
            [
                &Scope::Vault {
                    folder: folder.clone(),
                    write: true
                },
                &Scope::Vault {
                    folder,
                    write: false
                }
            ]
        );
        for (bad, why) in [
            ("short abababababababababababababab read", "at least 16"),
            (&format!("carol-token-0123456789 {vault}"), "three fields"),
            ("carol-token-0123456789 ABAB read", "32 lowercase hex"),
            (
                &format!("carol-token-0123456789 {vault} admin"),
                "read or write",
            ),
        ] {
            std::fs::write(&file, bad).unwrap();
            let e = Holder::read_members(&file, &store)
                .err()
                .unwrap()
                .to_string();
            assert!(e.contains(why) && e.contains("line "), "{bad}: {e}");
            assert!(!e.contains("carol-token"), "the token is not shown: {e}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
