//! `bucketsync doctor`: probes the store with the requests a vault makes and says, check by
//! check, what works, what works at a cost, and what to fix. It needs no vault key (it works
//! before `init`): everything it writes goes under a fresh random prefix, deleted at the end.
//!
//! This file runs the probe and prints the table; `access` checks who may call the store
//! (credentials, clock, CORS), `requests` what the store does with a vault's requests.

mod access;
mod requests;

use std::time::{Duration, Instant};

use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::Transport;
use bucketsync::sign::{SigV4, Signer};
use bucketsync::{
    encode_query, s3, Category, Error, Method, Request, RequestId, RequestKind, Response, Store,
    Timestamp,
};
use serde_json::json;

use crate::args::{DoctorArgs, Global};
use crate::output::{Failure, Output};
use crate::running::now_ms;
use crate::vault;

/// What a check found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Works, at a cost or with a risk the detail names.
    Warn,
    /// Does not work; the category gives the exit code.
    Fail(Category),
    /// Does not apply to this store, or was not run.
    NotApplicable,
    /// A measurement.
    Info,
}

impl Verdict {
    fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Fail(_) => "fail",
            Verdict::NotApplicable => "n/a",
            Verdict::Info => "info",
        }
    }
}

/// One row of the table.
#[derive(Debug)]
struct Check {
    name: &'static str,
    verdict: Verdict,
    detail: String,
    fix: Option<String>,
}

impl Check {
    fn new(name: &'static str, verdict: Verdict, detail: impl Into<String>) -> Check {
        Check {
            name,
            verdict,
            detail: detail.into(),
            fix: None,
        }
    }

    /// A failure with `error`'s category and message.
    fn failed(name: &'static str, error: &Error, fix: impl Into<String>) -> Check {
        Check::new(name, Verdict::Fail(error.category()), error.to_string()).fix(fix)
    }

    fn fix(mut self, fix: impl Into<String>) -> Check {
        self.fix = Some(fix.into());
        self
    }
}

/// Runs every check against the global `--store` and prints the table.
///
/// # Errors
/// `Config` when there is no store or its URL is wrong; [`Failure::Reported`] with the first
/// failed check's category (the table is printed); `Interrupted` on Ctrl-C, after cleaning up.
pub async fn run(g: &Global, out: Output, args: &DoctorArgs) -> Result<(), Failure> {
    let store = Store::parse(vault::store_url(g)?)?;
    let mut probe = Probe::new(store)?;
    let checks = tokio::select! {
        checks = probe.checks(args.origin.as_deref()) => Some(checks),
        _ = tokio::signal::ctrl_c() => None,
    };
    let cleanup = probe.clean_up().await;
    let Some(mut checks) = checks else {
        return Err(Failure::Interrupted(format!(
            "the probe stopped; {}",
            cleanup.detail
        )));
    };
    checks.push(cleanup);
    let fails: Vec<&Check> = checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail(_)))
        .collect();
    let warns = checks.iter().filter(|c| c.verdict == Verdict::Warn).count();
    let (verdict, summary) = match (fails.first(), warns) {
        (Some(first), _) => (
            "fail",
            format!(
                "{} check{} failed (first: {}); fix {} and run doctor again.",
                fails.len(),
                plural(fails.len()),
                first.name,
                if fails.len() == 1 { "it" } else { "them" }
            ),
        ),
        (None, 0) => ("ok", "bucketsync works with this store.".to_owned()),
        (None, n) => (
            "warn",
            format!(
                "bucketsync works with this store, with {n} warning{}.",
                plural(n)
            ),
        ),
    };
    out.result(
        || format!("{}\nVerdict: {verdict}: {summary}", table(&checks)),
        || {
            json!({
                "checks": checks.iter().map(|c| json!({
                    "check": c.name,
                    "result": c.verdict.as_str(),
                    "detail": c.detail,
                    "fix": c.fix,
                })).collect::<Vec<_>>(),
                "verdict": verdict,
            })
        },
    );
    match fails.first().map(|c| c.verdict) {
        Some(Verdict::Fail(category)) => Err(Failure::Reported(category)),
        _ => Ok(()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The checks as a table for people: long details wrap, and a fix follows its row.
fn table(checks: &[Check]) -> String {
    const WIDTH: usize = 76;
    let mut text = format!("{:<19} {:<6} DETAIL\n", "CHECK", "RESULT");
    let indent = " ".repeat(27);
    for check in checks {
        let mut lines = wrap(&check.detail, WIDTH).into_iter();
        let first = lines.next().unwrap_or_default();
        text.push_str(&format!(
            "{:<19} {:<6} {first}\n",
            check.name,
            check.verdict.as_str()
        ));
        for line in lines {
            text.push_str(&format!("{indent}{line}\n"));
        }
        if let Some(fix) = &check.fix {
            for line in wrap(&format!("fix: {fix}"), WIDTH) {
                text.push_str(&format!("{indent}{line}\n"));
            }
        }
    }
    text
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("there is always a line");
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_owned());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// The store under test, and what the probe left in it.
struct Probe {
    store: Store,
    transport: BuiltinTransport,
    /// The signer, once the credentials are read (`s3://` stores only).
    signer: Option<SigV4>,
    /// Added to this machine's clock when signing: the store's time once it said ours is off.
    offset_ms: i64,
    /// Where everything the probe writes goes, ending in `/`.
    base: String,
    /// Seeds the probe's object contents.
    seed: u64,
    /// Every key written (or tried), deleted at the end.
    written: Vec<String>,
    /// A multipart upload (key, id) begun and neither completed nor aborted.
    upload: Option<(String, String)>,
    next_id: u64,
}

impl Probe {
    fn new(store: Store) -> Result<Probe, Failure> {
        let transport = BuiltinTransport::for_store(&store)?;
        let mut random = [0u8; 8];
        bucketsync::entropy::fill_os(&mut random)?;
        let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
        // The folder bucket never lists names starting with '.', so there the probe's folder
        // has none.
        let base = match &store {
            Store::Folder { .. } => format!("bucketsync-doctor-{hex}/"),
            _ => format!("{}.bucketsync-doctor-{hex}/", store.prefix()),
        };
        Ok(Probe {
            store,
            transport,
            signer: None,
            offset_ms: 0,
            base,
            seed: u64::from_le_bytes(random),
            written: Vec::new(),
            upload: None,
            next_id: 0,
        })
    }

    fn is_folder(&self) -> bool {
        matches!(self.store, Store::Folder { .. })
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.base)
    }

    /// A signed request (a folder's is not signed).
    fn request(
        &mut self,
        method: Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> bucketsync::Result<Request> {
        self.next_id += 1;
        // The kind only names the request in reports; the transport ignores it.
        let kind = match method {
            _ if url.contains("list-type=2") => RequestKind::List,
            Method::Get | Method::Head => RequestKind::GetChunks,
            Method::Put | Method::Post => RequestKind::PutPack,
            Method::Delete => RequestKind::DeletePack,
        };
        let mut request = Request {
            id: RequestId(self.next_id),
            kind,
            method,
            url,
            headers,
            body: body.into(),
        };
        if let Some(signer) = &self.signer {
            let now = now_ms().saturating_add_signed(self.offset_ms);
            signer.sign(&mut request, Timestamp(now))?;
        }
        Ok(request)
    }

    async fn send(
        &mut self,
        method: Method,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> bucketsync::Result<Response> {
        let request = self.request(method, url, headers, body)?;
        self.transport.send(request).await
    }

    /// Sends a request without headers; the time it took, signing left out.
    async fn timed(
        &mut self,
        method: Method,
        url: String,
        body: Vec<u8>,
    ) -> (bucketsync::Result<Response>, Duration) {
        let request = match self.request(method, url, Vec::new(), body) {
            Ok(request) => request,
            Err(e) => return (Err(e), Duration::ZERO),
        };
        let start = Instant::now();
        let response = self.transport.send(request).await;
        (response, start.elapsed())
    }

    /// PUTs `body` at `key` (noted for the cleanup first).
    async fn put(
        &mut self,
        key: &str,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    ) -> bucketsync::Result<Response> {
        if !self.written.iter().any(|k| k == key) {
            self.written.push(key.to_owned());
        }
        let url = self.store.object_url(key);
        self.send(Method::Put, url, headers, body).await
    }

    /// PUTs `body` at `key`; any answer but 2xx is an error.
    async fn put_ok(&mut self, key: &str, body: Vec<u8>) -> bucketsync::Result<()> {
        let response = self.put(key, Vec::new(), body).await?;
        expect_success(&response, &format!("PUT {key}"))
    }

    async fn get(
        &mut self,
        key: &str,
        headers: Vec<(String, String)>,
    ) -> bucketsync::Result<Response> {
        let url = self.store.object_url(key);
        self.send(Method::Get, url, headers, Vec::new()).await
    }

    /// Every check, in order: the ones a store must pass first.
    async fn checks(&mut self, origin: Option<&str>) -> Vec<Check> {
        let mut checks = Vec::new();
        if self.is_folder() {
            let local = "n/a (local folder)";
            checks.push(Check::new("auth", Verdict::NotApplicable, local));
            checks.push(Check::new("clock skew", Verdict::NotApplicable, local));
        } else {
            let (auth, clock) = self.auth().await;
            let refused = matches!(auth.verdict, Verdict::Fail(_));
            checks.push(auth);
            checks.push(clock);
            if refused {
                for name in [
                    "conditional create",
                    "pagination",
                    "multipart",
                    "range GET",
                    "conditional GET",
                    "CORS",
                    "latency",
                    "throughput",
                ] {
                    let why = "not run: the auth check failed";
                    checks.push(Check::new(name, Verdict::NotApplicable, why));
                }
                return checks;
            }
        }
        checks.push(self.conditional_create().await);
        checks.push(self.pagination().await);
        checks.push(self.multipart().await);
        checks.push(self.range().await);
        checks.push(self.conditional_get().await);
        checks.push(self.cors(origin).await);
        checks.push(self.latency().await);
        checks.push(self.throughput().await);
        checks
    }

    /// Aborts the multipart upload begun, if any (best effort).
    async fn abort(&mut self) {
        if let Some((key, id)) = self.upload.take() {
            let url = format!(
                "{}?uploadId={}",
                self.store.object_url(&key),
                encode_query(&id)
            );
            let _ = self.send(Method::Delete, url, Vec::new(), Vec::new()).await;
        }
    }

    /// Deletes everything the probe wrote, and checks that its prefix lists empty.
    async fn clean_up(&mut self) -> Check {
        const NAME: &str = "cleanup";
        self.abort().await;
        if self.written.is_empty() {
            return Check::new(NAME, Verdict::NotApplicable, "nothing was written");
        }
        let mut errors = Vec::new();
        for key in std::mem::take(&mut self.written) {
            let url = self.store.object_url(&key);
            match self.send(Method::Delete, url, Vec::new(), Vec::new()).await {
                Ok(r) if r.is_success() || r.status == 404 => {}
                Ok(r) => {
                    errors.push(s3::error_from_response(&r, format!("DELETE {key}")).to_string())
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        let url = self.store.list_url(&self.base, None);
        let left = match self.send(Method::Get, url, Vec::new(), Vec::new()).await {
            Ok(r) if r.is_success() => s3::parse_list(&r.body).map(|p| p.objects.len()),
            Ok(r) => Err(s3::error_from_response(&r, format!("LIST {}", self.base))),
            Err(e) => Err(e),
        };
        if let Store::Folder { root } = &self.store {
            // The folder bucket leaves the emptied folders behind.
            let dir = std::path::Path::new(root).join(&self.base);
            let _ = std::fs::remove_dir(dir.join("list"));
            let _ = std::fs::remove_dir(dir);
        }
        match left {
            Ok(0) if errors.is_empty() => Check::new(
                NAME,
                Verdict::Ok,
                format!("deleted everything under {}", self.base),
            ),
            left => {
                if let Err(e) = left {
                    errors.push(e.to_string());
                }
                Check::new(
                    NAME,
                    Verdict::Warn,
                    format!(
                        "objects may be left under {}: {}",
                        self.base,
                        errors.join("; ")
                    ),
                )
                .fix(format!("delete what is under {} by hand", self.base))
            }
        }
    }
}

/// `Ok` for a 2xx answer, else the error it says.
fn expect_success(response: &Response, what: &str) -> bucketsync::Result<()> {
    if response.is_success() {
        Ok(())
    } else {
        Err(s3::error_from_response(response, what.to_owned()))
    }
}

/// `len` bytes of a pseudo-random stream drawn from `seed` (xorshift64*).
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_details_wrap_between_words() {
        let lines = wrap("one two three four", 9);
        assert_eq!(lines, ["one two", "three", "four"]);
        assert_eq!(wrap("", 9), [""]);
    }
}
