//! What the store does with the requests a vault makes: conditional creates, paged listings,
//! multipart uploads, ranged reads; and how fast it answers.

use std::time::Duration;

use bucketsync::{encode_query, s3, Category, Error, Method};

use super::{expect_success, pattern, Check, Probe, Verdict};

/// The first part of the multipart probe: S3's smallest part but the last.
const PART_SIZE: usize = 5 << 20;
/// What the throughput probe sends and reads.
const BULK_SIZE: usize = 8 << 20;
/// The object of the range and latency probes.
const SMALL_SIZE: usize = 100;

impl Probe {
    /// A fresh object PUT twice with `If-None-Match: *`: the second must answer 412.
    pub(super) async fn conditional_create(&mut self) -> Check {
        const NAME: &str = "conditional create";
        let key = self.key("create");
        let header = || vec![("if-none-match".to_owned(), "*".to_owned())];
        let body = b"bucketsync doctor: a conditional create".to_vec();
        let mut answers = Vec::new();
        for _ in 0..2 {
            match self.put(&key, header(), body.clone()).await {
                Ok(r) if r.status == 501 => {
                    return Check::new(
                        NAME,
                        Verdict::Warn,
                        "not implemented: If-None-Match: * answered 501. bucketsync writes \
                         without it, relying on its own state to never reuse a segment name \
                         (a replica restored from an old state may overwrite a segment it had \
                         not published yet)",
                    )
                    .fix(
                        "none needed; a store (or proxy) that implements conditional writes \
                         closes that gap",
                    );
                }
                Ok(r) => answers.push(r),
                Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
            }
        }
        let (first, second) = (&answers[0], &answers[1]);
        if !first.is_success() {
            let e = s3::error_from_response(first, format!("a first create of {key}"));
            return Check::failed(NAME, &e, "the store refuses a plain create: see its error");
        }
        match second.status {
            412 => Check::new(
                NAME,
                Verdict::Ok,
                "honoured: a second create of the same name answered 412",
            ),
            200..=299 => Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "ignored: a second create of the same name answered {} and replaced the \
                     object. bucketsync still works, relying on its own check (it asks the \
                     store once a month and names it in a sync report); a replica restored \
                     from an old state may overwrite a segment it had not published yet",
                    second.status
                ),
            )
            .fix("none needed; a store (or proxy) that honours If-None-Match: * closes that gap"),
            _ => {
                let e = s3::error_from_response(second, format!("a second create of {key}"));
                Check::failed(NAME, &e, "a second create must answer 412 (or 200, or 501)")
            }
        }
    }

    /// Three objects listed one a page: each once, in order.
    pub(super) async fn pagination(&mut self) -> Check {
        const NAME: &str = "pagination";
        let fix = "bucketsync follows ListObjectsV2 continuation tokens: upgrade the store, or \
                   use another S3-compatible one";
        let names: Vec<String> = (0..3).map(|i| self.key(&format!("list/{i}"))).collect();
        for name in &names {
            if let Err(e) = self.put_ok(name, name.as_bytes().to_vec()).await {
                return Check::failed(NAME, &e, "the store refuses a plain PUT: see its error");
            }
        }
        let prefix = self.key("list/");
        let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, 0);
        loop {
            pages += 1;
            if pages > 10 {
                let detail = "10 pages of max-keys=1 for 3 objects: the continuation tokens \
                              go round";
                return Check::new(NAME, Verdict::Fail(Category::Server), detail).fix(fix);
            }
            let url = format!(
                "{}&max-keys=1",
                self.store.list_url(&prefix, token.as_deref())
            );
            let page = match self.send(Method::Get, url, Vec::new(), Vec::new()).await {
                Ok(r) if r.is_success() => s3::parse_list(&r.body),
                Ok(r) => Err(s3::error_from_response(&r, format!("LIST {prefix}"))),
                Err(e) => Err(e),
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => return Check::failed(NAME, &e, fix),
            };
            seen.extend(page.objects.into_iter().map(|(k, _)| k));
            match page.next_token {
                Some(next) if token.as_ref() != Some(&next) => token = Some(next),
                Some(_) => {
                    let detail = "a page's continuation token is the one it was asked with";
                    return Check::new(NAME, Verdict::Fail(Category::Server), detail).fix(fix);
                }
                None => break,
            }
        }
        if seen != names {
            let shown: Vec<&str> = seen
                .iter()
                .map(|k| k.strip_prefix(&self.base).unwrap_or(k))
                .collect();
            let detail = format!(
                "listed {shown:?} in {pages} pages of max-keys=1, not [list/0, list/1, list/2]"
            );
            return Check::new(NAME, Verdict::Fail(Category::Server), detail).fix(fix);
        }
        let detail = if pages == 1 {
            "3 objects in 1 page: max-keys=1 ignored (bucketsync does not rely on it)".into()
        } else {
            format!("3 objects in {pages} pages of max-keys=1, each once, in order")
        };
        Check::new(NAME, Verdict::Ok, detail)
    }

    /// Two parts (5 MiB, then 1000 bytes) completed and read back; aborted on failure.
    pub(super) async fn multipart(&mut self) -> Check {
        const NAME: &str = "multipart";
        if self.is_folder() {
            return Check::new(NAME, Verdict::NotApplicable, "n/a (local folder)");
        }
        let key = self.key("multipart");
        let parts = [pattern(PART_SIZE, self.seed), pattern(1000, self.seed ^ 1)];
        let result = self.multipart_upload(&key, &parts).await;
        if result.is_err() {
            self.abort().await;
        }
        let expected: Vec<u8> = parts.concat();
        let read = match result {
            Ok(()) => match self.get(&key, Vec::new()).await {
                Ok(r) if r.is_success() => Ok(r.body),
                Ok(r) => Err(s3::error_from_response(&r, format!("GET {key}"))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match read {
            Ok(body) if body == expected => Check::new(
                NAME,
                Verdict::Ok,
                format!(
                    "2 parts (5 MiB + 1000 B) completed; read back whole ({} bytes)",
                    body.len()
                ),
            ),
            Ok(body) => {
                let detail = format!(
                    "2 parts completed, but the object reads back as {} other bytes (of {} sent)",
                    body.len(),
                    expected.len()
                );
                Check::new(NAME, Verdict::Fail(Category::Server), detail)
                    .fix("the store corrupts multipart uploads: use another S3-compatible store")
            }
            Err(e) if matches!(e.category(), Category::Network | Category::Timeout) => {
                Check::failed(NAME, &e, "check the network and try again")
            }
            Err(e) => Check::new(
                NAME,
                Verdict::Warn,
                format!(
                    "refused: {e}. bucketsync uploads in parts only packs of 32 MiB and more \
                     (an app's choice; the default is 16 MiB)"
                ),
            )
            .fix("keep the default pack size with this store, or allow multipart uploads"),
        }
    }

    async fn multipart_upload(&mut self, key: &str, parts: &[Vec<u8>]) -> bucketsync::Result<()> {
        let url = self.store.object_url(key);
        self.written.push(key.to_owned());
        let r = self
            .send(
                Method::Post,
                format!("{url}?uploads"),
                Vec::new(),
                Vec::new(),
            )
            .await?;
        expect_success(&r, "CreateMultipartUpload")?;
        let id = s3::parse_upload_id(&r.body)?;
        self.upload = Some((key.to_owned(), id.clone()));
        let mut complete = String::from("<CompleteMultipartUpload>");
        for (i, part) in parts.iter().enumerate() {
            let number = i + 1;
            let part_url = format!("{url}?partNumber={number}&uploadId={}", encode_query(&id));
            let r = self
                .send(Method::Put, part_url, Vec::new(), part.clone())
                .await?;
            expect_success(&r, &format!("UploadPart {number}"))?;
            let etag = r.header("etag").ok_or_else(|| Error::Http {
                category: Category::Server,
                status: r.status,
                code: None,
                context: format!("UploadPart {number} answered no ETag"),
            })?;
            let etag = etag.replace('&', "&amp;").replace('<', "&lt;");
            complete.push_str(&format!(
                "<Part><PartNumber>{number}</PartNumber><ETag>{etag}</ETag></Part>"
            ));
        }
        complete.push_str("</CompleteMultipartUpload>");
        let complete_url = format!("{url}?uploadId={}", encode_query(&id));
        let headers = vec![("content-type".to_owned(), "application/xml".to_owned())];
        let mut r = self
            .send(Method::Post, complete_url, headers, complete.into_bytes())
            .await?;
        // CompleteMultipartUpload may answer 200 with an error document.
        if r.is_success() && s3::error_code(&r.body).is_some() {
            r.status = 500;
        }
        expect_success(&r, "CompleteMultipartUpload")?;
        self.upload = None;
        Ok(())
    }

    /// `Range: bytes=10-19` of a 100-byte object: 206 with those 10 bytes.
    pub(super) async fn range(&mut self) -> Check {
        const NAME: &str = "range GET";
        let key = self.key("small");
        let content = pattern(SMALL_SIZE, self.seed ^ 2);
        if let Err(e) = self.put_ok(&key, content.clone()).await {
            return Check::failed(NAME, &e, "the store refuses a plain PUT: see its error");
        }
        let range = vec![("range".to_owned(), "bytes=10-19".to_owned())];
        let response = match self.get(&key, range).await {
            Ok(response) => response,
            Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
        };
        match response.status {
            206 if response.body == content[10..20] => {
                Check::new(NAME, Verdict::Ok, "206 with exactly bytes 10-19")
            }
            200 if response.body == content => Check::new(
                NAME,
                Verdict::Warn,
                "ignores Range: 200 with the whole object. bucketsync still works, but reading \
                 part of a file fetches whole packs (up to 16 MiB for one chunk): slower, and \
                 costlier where transfer is billed",
            )
            .fix("a store (or proxy) that honours Range reads less"),
            206 | 200 => Check::new(
                NAME,
                Verdict::Fail(Category::Server),
                format!(
                    "{} with {} bytes that are not bytes 10-19 of the object",
                    response.status,
                    response.body.len()
                ),
            )
            .fix("the store answers ranges wrongly: use another S3-compatible store"),
            _ => {
                let e = s3::error_from_response(&response, format!("GET {key} bytes=10-19"));
                Check::failed(NAME, &e, "the store refuses Range: see its error")
            }
        }
    }

    /// A GET with `If-None-Match` on the object's ETag: 304, as the background sync's polls of
    /// the change hint expect (or 200 with the same ETag, which they read as unchanged too).
    pub(super) async fn conditional_get(&mut self) -> Check {
        const NAME: &str = "conditional GET";
        let key = self.key("small");
        let first = match self.get(&key, Vec::new()).await {
            Ok(response) => response,
            Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
        };
        if let Err(e) = expect_success(&first, &format!("GET {key}")) {
            return Check::failed(NAME, &e, "the store refuses a plain GET: see its error");
        }
        let Some(etag) = first.header("etag").map(str::to_owned) else {
            return Check::new(
                NAME,
                Verdict::Warn,
                "no ETag on a GET: a background sync cannot tell that nothing changed, and \
                 lists the vault at every poll (a LIST, not a GET, each interval)",
            )
            .fix("a store (or proxy, or CORS rule exposing ETag) that sends ETags");
        };
        let condition = vec![("if-none-match".to_owned(), etag.clone())];
        let second = match self.get(&key, condition).await {
            Ok(response) => response,
            Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
        };
        match second.status {
            304 => Check::new(
                NAME,
                Verdict::Ok,
                "304 Not Modified: an idle poll is one empty answer",
            ),
            200 if second.header("etag") == Some(etag.as_str()) => Check::new(
                NAME,
                Verdict::Ok,
                "ignores If-None-Match on GET (200 with the object, same ETag): an idle poll \
                 is still one GET, of 16 bytes",
            ),
            _ => {
                let e = s3::error_from_response(&second, format!("GET {key} If-None-Match"));
                Check::failed(
                    NAME,
                    &e,
                    "a conditional GET must answer 304 or 200: see its error",
                )
            }
        }
    }

    /// The median of five GETs of a small object.
    pub(super) async fn latency(&mut self) -> Check {
        const NAME: &str = "latency";
        let key = self.key("small");
        let mut times = Vec::new();
        for _ in 0..5 {
            let url = self.store.object_url(&key);
            match self.timed(Method::Get, url, Vec::new()).await {
                (Ok(r), took) if r.is_success() => times.push(took),
                (Ok(r), _) => {
                    let e = s3::error_from_response(&r, format!("GET {key}"));
                    return Check::failed(NAME, &e, "see the error");
                }
                (Err(e), _) => return Check::failed(NAME, &e, "check the network and try again"),
            }
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let detail = format!(
            "median {:.3} ms of 5 GETs of a {SMALL_SIZE}-byte object (fastest {:.3}, slowest \
             {:.3})",
            ms(times[2]),
            ms(times[0]),
            ms(times[4])
        );
        Check::new(NAME, Verdict::Info, detail)
    }

    /// A PUT and a GET of 8 MiB, timed.
    pub(super) async fn throughput(&mut self) -> Check {
        const NAME: &str = "throughput";
        let fix = "bucketsync writes packs of up to 16 MiB: raise any proxy's body size limit \
                   (nginx: client_max_body_size)";
        let key = self.key("bulk");
        let content = pattern(BULK_SIZE, self.seed ^ 3);
        self.written.push(key.clone());
        let url = self.store.object_url(&key);
        let (put, put_took) = self.timed(Method::Put, url.clone(), content.clone()).await;
        if let Err(e) = put.and_then(|r| expect_success(&r, &format!("PUT {key} (8 MiB)"))) {
            return Check::failed(NAME, &e, fix);
        }
        let (get, get_took) = self.timed(Method::Get, url, Vec::new()).await;
        match get {
            Ok(r) if r.is_success() && r.body == content => {}
            Ok(r) if r.is_success() => {
                let detail = format!(
                    "GET of the 8 MiB just stored read {} other bytes",
                    r.body.len()
                );
                return Check::new(NAME, Verdict::Fail(Category::Server), detail)
                    .fix("the store returns other bytes than it took: use another store");
            }
            Ok(r) => {
                let e = s3::error_from_response(&r, format!("GET {key} (8 MiB)"));
                return Check::failed(NAME, &e, fix);
            }
            Err(e) => return Check::failed(NAME, &e, "check the network and try again"),
        }
        let rate = |took: Duration| BULK_SIZE as f64 / 1e6 / took.as_secs_f64().max(1e-6);
        let detail = format!(
            "PUT 8 MiB: {:.1} MB/s, GET: {:.1} MB/s",
            rate(put_took),
            rate(get_took)
        );
        Check::new(NAME, Verdict::Info, detail)
    }
}
