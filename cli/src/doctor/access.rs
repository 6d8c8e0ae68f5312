//! Who may call the store: the credentials (a signed request), this machine's clock against
//! the store's, and a web page's origin (CORS).

use bucketsync::sign::SigV4;
use bucketsync::{s3, Category, Credentials, Method, Response, Store};

use super::{now_ms, Check, Probe, Verdict};

/// A clock further off than this is worth a warning.
const SKEW_WARN_MS: i64 = 5_000;
/// S3 refuses a request signed further off than this (SigV4).
const SKEW_FAIL_MS: i64 = 15 * 60_000;

impl Probe {
    /// A signed LIST of the probe's (empty) prefix; and the clock against its `Date`.
    pub(super) async fn auth(&mut self) -> (Check, Check) {
        const NAME: &str = "auth";
        let no_clock = |why: &str| Check::new("clock skew", Verdict::NotApplicable, why);
        let credentials = match Credentials::from_env() {
            Ok(credentials) => credentials,
            Err(e) => {
                let fix = "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and \
                           AWS_SESSION_TOKEN for temporary credentials)";
                return (
                    Check::failed(NAME, &e, fix),
                    no_clock("not run: no credentials"),
                );
            }
        };
        let access_key = credentials.access_key_id().to_owned();
        let region = self.store.region().unwrap_or("us-east-1").to_owned();
        self.signer = Some(SigV4::new(credentials, region.clone()));
        let url = format!("{}&max-keys=1", self.store.list_url(&self.base, None));
        let before = now_ms();
        let mut response = self
            .send(Method::Get, url.clone(), Vec::new(), Vec::new())
            .await;
        let after = now_ms();
        let server_ms = response
            .as_ref()
            .ok()
            .and_then(|r| r.header("date"))
            .and_then(parse_http_date);
        let clock = match server_ms {
            Some(server_ms) => clock_check(skew(before, after, server_ms)),
            None => no_clock("the store's answer has no Date header"),
        };
        let skewed = |r: &bucketsync::Result<Response>| {
            r.as_ref()
                .is_ok_and(|r| s3::error_code(&r.body).as_deref() == Some("RequestTimeTooSkewed"))
        };
        if let (true, Some(server_ms)) = (skewed(&response), server_ms) {
            // As a sync does: sign at the store's time and try again, to tell the
            // credentials apart from the clock.
            self.offset_ms = server_ms as i64 + 500 - (before + after) as i64 / 2;
            response = self.send(Method::Get, url, Vec::new(), Vec::new()).await;
        }
        let response = match response {
            Ok(response) => response,
            Err(e) => {
                let fix = "check the endpoint in the store URL (endpoint=…), the network and \
                           any proxy in between";
                return (Check::failed(NAME, &e, fix), clock);
            }
        };
        if response.is_success() {
            let check = match s3::parse_list(&response.body) {
                Ok(_) if self.offset_ms != 0 => Check::new(
                    NAME,
                    Verdict::Ok,
                    format!(
                        "a LIST signed for {access_key} was accepted once signed at the \
                         store's time (see clock skew)"
                    ),
                ),
                Ok(_) => Check::new(
                    NAME,
                    Verdict::Ok,
                    format!("a LIST signed for {access_key} ({region}) was accepted"),
                ),
                Err(e) => Check::failed(
                    NAME,
                    &e,
                    "point the store URL's endpoint at the S3 API (not a web console)",
                ),
            };
            return (check, clock);
        }
        let error = s3::error_from_response(&response, "a signed LIST of the bucket".into());
        let code = s3::error_code(&response.body).unwrap_or_default();
        let bucket_region = response.header("x-amz-bucket-region").map(str::to_owned);
        let fix = match (code.as_str(), response.status) {
            // s3s says NotSignedUp.
            ("InvalidAccessKeyId" | "NotSignedUp", _) => {
                format!("the store knows no access key {access_key}: check AWS_ACCESS_KEY_ID")
            }
            ("SignatureDoesNotMatch", _) => format!(
                "check AWS_SECRET_ACCESS_KEY (the secret of {access_key}) and the store URL's \
                 region (region=…, now {region})"
            ),
            ("RequestTimeTooSkewed", _) => "set this machine's clock right (see clock skew)".into(),
            ("ExpiredToken" | "InvalidToken" | "TokenRefreshRequired", _) => {
                "renew the temporary credentials (AWS_SESSION_TOKEN)".into()
            }
            ("AccessDenied", _) => format!(
                "give {access_key} ListBucket, GetObject, PutObject, DeleteObject and the \
                 multipart actions on the bucket and prefix"
            ),
            ("NoSuchBucket", _) | (_, 404) => {
                "create the bucket, or correct its name in the store URL".into()
            }
            ("AuthorizationHeaderMalformed", _) | (_, 300..=399) => format!(
                "set region= in the store URL to the bucket's region{}",
                bucket_region.map_or(String::new(), |r| format!(" ({r})"))
            ),
            (_, 401 | 403) => "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and the \
                               store URL's region"
                .into(),
            _ => "the store failed: try again later, or check the endpoint".into(),
        };
        (Check::failed(NAME, &error, fix), clock)
    }

    /// With `--origin`: a GET and a PUT from that origin must be allowed and expose `ETag`.
    pub(super) async fn cors(&mut self, origin: Option<&str>) -> Check {
        const NAME: &str = "CORS";
        if self.is_folder() {
            return Check::new(NAME, Verdict::NotApplicable, "n/a (local folder)");
        }
        let Some(origin) = origin else {
            let detail = "n/a: pass --origin URL to check a web page's access";
            return Check::new(NAME, Verdict::NotApplicable, detail);
        };
        let origin = origin.trim_end_matches('/');
        let fix = cors_fix(origin, &self.store);
        let with_origin = || vec![("origin".to_owned(), origin.to_owned())];
        let key = self.key("cors");
        let put = self.put(&key, with_origin(), b"cors".to_vec()).await;
        let get = self.get(&key, with_origin()).await;
        let (mut answers, mut allowed, mut etag, mut range) = (Vec::new(), true, true, true);
        for (method, response) in [("PUT", put), ("GET", get)] {
            let response = match response {
                Ok(r) if r.is_success() => r,
                Ok(r) => {
                    let e = s3::error_from_response(&r, format!("{method} with Origin"));
                    return Check::failed(NAME, &e, fix);
                }
                Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
            };
            let allow = response.header("access-control-allow-origin");
            let expose = response.header("access-control-expose-headers");
            allowed &= allow.is_some_and(|a| a == origin || a == "*");
            let exposes = |name: &str| {
                expose.unwrap_or_default().split(',').any(|h| {
                    let h = h.trim();
                    h == "*" || h.eq_ignore_ascii_case(name)
                })
            };
            etag &= exposes("etag");
            range &= exposes("content-range");
            answers.push(format!(
                "{method} answered Access-Control-Allow-Origin {}, Access-Control-Expose-Headers {}",
                allow.unwrap_or("none"),
                expose.unwrap_or("none")
            ));
        }
        let answers = format!(
            "{} (no OPTIONS preflight is sent: the headers a request may carry are not checked)",
            answers.join("; ")
        );
        match (allowed && etag, range) {
            (false, _) => {
                let detail = format!("a page at {origin} cannot sync: {answers}");
                Check::new(NAME, Verdict::Fail(Category::Config), detail).fix(fix)
            }
            (true, false) => {
                let detail = format!(
                    "a page at {origin} syncs, but cannot resume an interrupted file upload \
                     (Content-Range is not exposed): {answers}"
                );
                Check::new(NAME, Verdict::Warn, detail).fix(fix)
            }
            (true, true) => Check::new(
                NAME,
                Verdict::Ok,
                format!("a page at {origin} may sync: {answers}"),
            ),
        }
    }
}

/// How far this machine's clock is ahead of the store's at least (behind: negative), from a
/// request sent at `before` and answered at `after` (local milliseconds) with a `Date` of
/// `server_ms`: 0 when they may agree. A `Date` has whole seconds: the store's time was in
/// `server_ms..server_ms + 1000`.
fn skew(before: u64, after: u64, server_ms: u64) -> i64 {
    let earliest = before as i64 - (server_ms as i64 + 999);
    let latest = after as i64 - server_ms as i64;
    if earliest > 0 {
        earliest
    } else {
        latest.min(0)
    }
}

/// The clock check for this machine's clock being `skew_ms` ahead of the store's at least.
fn clock_check(skew_ms: i64) -> Check {
    const NAME: &str = "clock skew";
    let way = if skew_ms >= 0 { "ahead of" } else { "behind" };
    let detail = match skew_ms {
        0 => "this machine's clock agrees with the store's (its Date header) within a second"
            .to_owned(),
        _ => format!(
            "this machine's clock is at least {:.1} s {way} the store's (its Date header)",
            skew_ms.unsigned_abs() as f64 / 1000.0
        ),
    };
    let fix = "set this machine's clock right: turn on network time (NTP)";
    match skew_ms.unsigned_abs() {
        s if s <= SKEW_WARN_MS as u64 => Check::new(NAME, Verdict::Ok, detail),
        s if s <= SKEW_FAIL_MS as u64 => Check::new(
            NAME,
            Verdict::Warn,
            format!(
                "{detail}: conflicts are won by the latest write by the writers' clocks, so \
                 one running ahead wins conflicts it should lose"
            ),
        )
        .fix(fix),
        _ => Check::new(
            NAME,
            Verdict::Fail(Category::Clock),
            format!("{detail}: S3 refuses requests signed more than 15 minutes off"),
        )
        .fix(fix),
    }
}

/// The docs' CORS rule for `origin` (docs/src/providers/index.md), and how to set it.
fn cors_fix(origin: &str, store: &Store) -> String {
    let bucket = match store {
        Store::S3(s3) => s3.bucket.as_str(),
        _ => "BUCKET",
    };
    format!(
        "give the bucket the CORS rule of the docs (Providers, \"CORS for web apps\"): {{\"CORSRules\": \
         [{{\"AllowedOrigins\": [\"{origin}\"], \"AllowedMethods\": [\"GET\", \"PUT\", \"HEAD\", \
         \"POST\", \"DELETE\"], \"AllowedHeaders\": [\"*\"], \"ExposeHeaders\": [\"ETag\", \
         \"Content-Range\"], \"MaxAgeSeconds\": 600}}]}} in cors.json, then aws s3api \
         put-bucket-cors --bucket {bucket} --cors-configuration file://cors.json"
    )
}

/// An HTTP `Date` (`Sun, 06 Nov 1994 08:49:37 GMT`) as Unix milliseconds.
fn parse_http_date(text: &str) -> Option<u64> {
    let time = httpdate::parse_http_date(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since.as_millis()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_read_as_unix_time() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777_000)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Thu, 29 Feb 2024 23:59:59 GMT"),
            Some(1_709_251_199_000)
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37 CET",
            "Sun, 06 Foo 1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn skew_is_what_whole_seconds_cannot_explain() {
        // Sent at 10.2 s, answered at 10.3 s, Date 10 s: the store's clock was 10 to 11 s.
        assert_eq!(skew(10_200, 10_300, 10_000), 0);
        // Date 8 s: its clock was 8 to 9 s, ours 10.2 to 10.3 s: 1.2 s ahead at least.
        assert_eq!(skew(10_200, 10_300, 8_000), 1_201);
        assert_eq!(skew(10_200, 10_300, 12_000), -1_700);
        assert!(clock_check(0).detail.contains("within a second"));
    }

    #[test]
    fn clock_skew_warns_past_seconds_and_fails_past_fifteen_minutes() {
        assert_eq!(clock_check(-1_200).verdict, Verdict::Ok);
        assert_eq!(clock_check(30_000).verdict, Verdict::Warn);
        assert_eq!(clock_check(-14 * 60_000).verdict, Verdict::Warn);
        let late = clock_check(-16 * 60_000);
        assert_eq!(late.verdict, Verdict::Fail(Category::Clock));
        assert!(late.detail.contains("behind"), "{}", late.detail);
        assert!(late.fix.is_some());
    }
}
