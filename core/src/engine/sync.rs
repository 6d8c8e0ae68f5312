//! The sync state machine: list manifests → fetch changed manifests → fetch missing segments
//! → merge → write our new segments → write our manifest.

use std::collections::{HashMap, HashSet, VecDeque};

use super::Engine;
use crate::clock::Stamp;
use crate::error::{Category, Error, Result};
use crate::http::{Method, Request, RequestKind, Response};
use crate::ids::{DeviceId, RequestId, Timestamp};
use crate::manifest::{manifest_name, Manifest, MANIFEST_FOLDER};
use crate::report::SyncReport;
use crate::retry::RetryPolicy;
use crate::s3;
use crate::segment::{self, open_segment, seal_segment, segment_name, Segment};

/// A push that keeps finding its segment number taken gives up after this many tries.
const MAX_PUSH_CONFLICTS: u32 = 16;
/// A listing longer than this many pages (10 million manifests) is not believed.
const MAX_LIST_PAGES: usize = 10_000;
/// At most this many segments of one device are fetched in one sync; the rest come next time.
const MAX_SEGMENTS_PER_SYNC: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Listing,
    Manifests,
    Segments,
    Pushing,
    Publishing,
    Done,
}

/// A request to make: built, signed and numbered when it is handed out, kept while it is out
/// so that it can be sent again.
struct Op {
    kind: RequestKind,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    pending: Pending,
    /// 1 for the first try.
    attempt: u32,
    /// Already sent again once after correcting the signing clock.
    skew_corrected: bool,
    /// Not to be sent before this time (a retry's backoff).
    due: Timestamp,
}

/// How a failed request is sent again.
enum Retry {
    /// At once, signed with the clock just corrected from the store's `Date`.
    SkewCorrected,
    /// After a backoff, as the next attempt.
    After(u64),
}

/// What an outstanding request is for.
enum Pending {
    List,
    Manifest {
        device: DeviceId,
        etag: String,
    },
    Segment {
        device: DeviceId,
        seq: u64,
    },
    PutSegment {
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
    },
    RecoverSegment {
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
    },
    PutManifest {
        seq: u64,
        segments: u64,
    },
}

/// One sync in progress.
pub(crate) struct SyncRun {
    phase: Phase,
    queue: VecDeque<Op>,
    /// Retries waiting for their backoff to pass.
    delayed: Vec<Op>,
    inflight: HashMap<RequestId, Op>,
    report: SyncReport,
    /// The first error that makes the sync end in `Err`.
    failure: Option<Error>,
    /// A fatal error happened: send nothing new, finish when the outstanding answers are in.
    stopping: bool,
    listed: Vec<(DeviceId, String)>,
    seen_tokens: HashSet<String>,
    push_keys: VecDeque<Vec<u8>>,
    push_conflicts: u32,
    /// Our own manifest changed in the store but could not be read: writing now could go
    /// back on it, so this run does not push.
    own_manifest_unread: bool,
}

impl SyncRun {
    fn new() -> Self {
        SyncRun {
            phase: Phase::Listing,
            queue: VecDeque::new(),
            delayed: Vec::new(),
            inflight: HashMap::new(),
            report: SyncReport::default(),
            failure: None,
            stopping: false,
            listed: Vec::new(),
            seen_tokens: HashSet::new(),
            push_keys: VecDeque::new(),
            push_conflicts: 0,
            own_manifest_unread: false,
        }
    }

    /// Records an error the sync goes on past, and makes the sync end in `Err`.
    fn note_failure(&mut self, error: Error) {
        self.report.errors.push(error.clone());
        self.failure.get_or_insert(error);
    }

    /// Records an error that ends the sync.
    fn stop(&mut self, error: Error) {
        self.note_failure(error);
        self.stopping = true;
        self.queue.clear();
        self.delayed.clear();
    }

    /// Queues `op`, unless the run is stopping: then nothing new goes out.
    fn push(&mut self, op: Op) {
        if !self.stopping {
            self.queue.push_back(op);
        }
    }

    fn idle(&self) -> bool {
        self.inflight.is_empty() && self.queue.is_empty() && self.delayed.is_empty()
    }
}

impl Engine {
    /// Starts a sync at wall time `now`. Drain [`Engine::poll_request`] next.
    ///
    /// # Errors
    /// `SyncInProgress` (category `conflict`) when a sync is already running.
    pub fn start_sync(&mut self, now: Timestamp) -> Result<()> {
        let _ = now;
        if self.sync.is_some() {
            return Err(Error::SyncInProgress);
        }
        self.outcome = None;
        let mut run = SyncRun::new();
        self.queue_list(&mut run, None);
        self.sync = Some(run);
        Ok(())
    }

    /// Whether a sync is running.
    pub fn is_syncing(&self) -> bool {
        self.sync.is_some()
    }

    /// The next request to send at wall time `now`, signed, if any. Several may be out at once.
    /// `None` while the remaining requests wait for a retry's backoff: see
    /// [`Engine::poll_timeout`].
    pub fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        let mut run = self.sync.take()?;
        let request = self.next_request(&mut run, now);
        self.settle(run);
        request
    }

    /// When the next delayed retry becomes due, while a sync waits for one.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.sync.as_ref()?.delayed.iter().map(|op| op.due).min()
    }

    fn next_request(&mut self, run: &mut SyncRun, now: Timestamp) -> Option<Request> {
        let (due, waiting): (Vec<Op>, Vec<Op>) = std::mem::take(&mut run.delayed)
            .into_iter()
            .partition(|op| op.due <= now);
        run.delayed = waiting;
        run.queue.extend(due);
        let op = run.queue.pop_front()?;
        let mut request = Request {
            id: self.next_request_id(),
            kind: op.kind,
            method: op.method,
            url: op.url.clone(),
            headers: op.headers.clone(),
            body: op.body.clone(),
        };
        if let Some(signer) = &self.signer {
            let signing_time = Timestamp(now.0.saturating_add_signed(self.clock_offset_ms));
            if let Err(e) = signer.sign(&mut request, signing_time) {
                run.stop(e);
                self.advance(run);
                return None;
            }
        }
        run.report.count_request(request.kind, request.body.len());
        run.inflight.insert(request.id, op);
        Some(request)
    }

    /// Feeds back the answer to request `id`: the response, or the transport's error.
    /// Answers to unknown ids (say, from a cancelled sync) are ignored.
    pub fn handle_response(&mut self, id: RequestId, response: Result<Response>, now: Timestamp) {
        let Some(mut run) = self.sync.take() else {
            return;
        };
        if let Some(mut op) = run.inflight.remove(&id) {
            if let Ok(r) = &response {
                run.report.bytes_received += r.body.len() as u64;
            }
            match self.retry_decision(&op, &response, now) {
                Some(retry) if !run.stopping => {
                    run.report.retries += 1;
                    match retry {
                        Retry::SkewCorrected => {
                            op.skew_corrected = true;
                            op.due = now;
                            run.queue.push_front(op);
                        }
                        Retry::After(delay_ms) => {
                            op.attempt += 1;
                            op.due = Timestamp(now.0.saturating_add(delay_ms));
                            run.delayed.push(op);
                        }
                    }
                }
                _ => self.on_response(&mut run, op.pending, response),
            }
            self.advance(&mut run);
        }
        self.settle(run);
    }

    /// Keeps the run, or files its outcome once it is done.
    fn settle(&mut self, run: SyncRun) {
        if run.phase == Phase::Done {
            self.last_report = Some(run.report.clone());
            self.outcome = Some(match run.failure {
                Some(error) => Err(error),
                None => Ok(run.report),
            });
        } else {
            self.sync = Some(run);
        }
    }

    /// Whether to send `op` again, and after how many milliseconds.
    fn retry_decision(
        &mut self,
        op: &Op,
        response: &Result<Response>,
        now: Timestamp,
    ) -> Option<Retry> {
        let category = match response {
            Err(e) => e.category(),
            Ok(r) if r.status == 403 => {
                // The store says our clock is off: believe its Date, and try once more.
                let skewed = s3::error_code(&r.body).as_deref() == Some("RequestTimeTooSkewed");
                let server = r
                    .header("date")
                    .and_then(|d| httpdate::parse_http_date(d).ok());
                let server_ms = server.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
                return match (skewed && !op.skew_corrected, server_ms) {
                    (true, Some(server)) => {
                        self.clock_offset_ms = server.as_millis() as i64 - now.0 as i64;
                        Some(Retry::SkewCorrected)
                    }
                    _ => None,
                };
            }
            // A store that does not implement a header we sent answers 501: no retry helps.
            Ok(r) if r.status == 501 => return None,
            Ok(r) if !r.is_success() => {
                s3::categorize(r.status, s3::error_code(&r.body).as_deref())
            }
            // A listing cut short in transit does not parse: fetch it again.
            Ok(r) if op.kind == RequestKind::List && s3::parse_list(&r.body).is_err() => {
                Category::Server
            }
            Ok(_) => return None,
        };
        let idempotent = matches!(
            op.method,
            Method::Get | Method::Head | Method::Put | Method::Delete
        );
        (idempotent && RetryPolicy::retries(category) && op.attempt < self.retry.max_attempts)
            .then(|| Retry::After(self.retry.delay_ms(op.attempt, self.next_request)))
    }

    /// The result of the sync once it has finished: its report, or the error that stopped it
    /// (the partial report is then in [`Engine::last_report`]).
    pub fn poll_outcome(&mut self) -> Option<Result<SyncReport>> {
        self.outcome.take()
    }

    /// Abandons a running sync (say, when the app is suspended). Nothing is lost: what was
    /// merged stays merged, and the next sync picks up the rest.
    pub fn cancel_sync(&mut self) {
        self.sync = None;
    }

    fn advance(&mut self, run: &mut SyncRun) {
        while run.idle() && run.phase != Phase::Done {
            if run.stopping {
                run.phase = Phase::Done;
                break;
            }
            match run.phase {
                Phase::Listing => {
                    run.phase = Phase::Manifests;
                    self.plan_manifests(run);
                }
                Phase::Manifests => {
                    run.phase = Phase::Segments;
                    self.plan_segments(run);
                }
                Phase::Segments => {
                    run.phase = Phase::Pushing;
                    // Our own log must be known up to what the store shows before we add to
                    // it; if it is not (a read failed), the push waits for the next sync.
                    let own = &self.state.own;
                    if !run.own_manifest_unread && own.segments >= own.published_segments {
                        run.push_keys = self.state.dirty.iter().cloned().collect();
                    }
                    self.plan_push(run);
                }
                Phase::Pushing => {
                    if !self.plan_push(run) {
                        run.phase = Phase::Publishing;
                        self.plan_publish(run);
                    }
                }
                Phase::Publishing | Phase::Done => run.phase = Phase::Done,
            }
        }
    }

    fn on_response(&mut self, run: &mut SyncRun, pending: Pending, response: Result<Response>) {
        match pending {
            Pending::List => self.on_list(run, response),
            Pending::Manifest { device, etag } => self.on_manifest(run, device, etag, response),
            Pending::Segment { device, seq } => self.on_segment(run, device, seq, response),
            Pending::PutSegment { seq, written } => {
                self.on_put_segment(run, seq, written, response)
            }
            Pending::RecoverSegment { seq, written } => {
                self.on_recover_segment(run, seq, written, response)
            }
            Pending::PutManifest { seq, segments } => {
                self.on_put_manifest(run, seq, segments, response)
            }
        }
    }

    // ---- requests ----

    /// An operation to queue, with no headers or body yet.
    fn op(&self, kind: RequestKind, method: Method, url: String, pending: Pending) -> Op {
        Op {
            kind,
            method,
            url,
            headers: Vec::new(),
            body: Vec::new(),
            pending,
            attempt: 1,
            skew_corrected: false,
            due: Timestamp(0),
        }
    }

    fn queue_get(&mut self, run: &mut SyncRun, kind: RequestKind, name: &str, pending: Pending) {
        let url = self.store.object_url(&format!("{}{name}", self.folder));
        run.queue
            .push_back(self.op(kind, Method::Get, url, pending));
    }

    fn queue_list(&mut self, run: &mut SyncRun, token: Option<&str>) {
        let prefix = format!("{}{MANIFEST_FOLDER}", self.folder);
        let url = self.store.list_url(&prefix, token);
        run.queue
            .push_back(self.op(RequestKind::List, Method::Get, url, Pending::List));
    }

    /// The response if it is a success, else the error it stands for.
    fn check(&self, response: Result<Response>, what: impl FnOnce() -> String) -> Result<Response> {
        let response = response?;
        if response.is_success() {
            Ok(response)
        } else {
            Err(s3::error_from_response(
                &response,
                format!("{} in {}", what(), self.store.display_name()),
            ))
        }
    }

    // ---- pull ----

    fn on_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let page = match self
            .check(response, || "LIST manifests".into())
            .and_then(|r| s3::parse_list(&r.body))
        {
            Ok(page) => page,
            Err(error) => return run.stop(error),
        };
        let prefix = format!("{}{MANIFEST_FOLDER}", self.folder);
        for (key, etag) in page.objects {
            let name = key.strip_prefix(&prefix).unwrap_or(&key);
            match DeviceId::parse(name) {
                // Names are written in lowercase only; anything else is not one of ours.
                Ok(device) if device.to_string() == name => run.listed.push((device, etag)),
                _ => run.report.errors.push(Error::corrupt(
                    &key,
                    "unexpected object in the manifest folder",
                )),
            }
        }
        if let Some(token) = page.next_token {
            if run.seen_tokens.len() >= MAX_LIST_PAGES {
                return run.stop(Error::Http {
                    category: Category::Server,
                    status: 200,
                    code: None,
                    context: format!(
                        "LIST in {} went on for more than {MAX_LIST_PAGES} pages; refusing to go on",
                        self.store.display_name()
                    ),
                });
            }
            if !run.seen_tokens.insert(token.clone()) {
                return run.stop(Error::Http {
                    category: Category::Server,
                    status: 200,
                    code: None,
                    context: format!(
                        "LIST in {} repeated a continuation token; refusing to loop or to trust a partial listing",
                        self.store.display_name()
                    ),
                });
            }
            self.queue_list(run, Some(&token));
        }
    }

    fn plan_manifests(&mut self, run: &mut SyncRun) {
        for (device, etag) in std::mem::take(&mut run.listed) {
            let known = if device == self.state.device {
                self.state.own.manifest_etag.as_deref()
            } else {
                self.state
                    .peers
                    .get(&device)
                    .and_then(|p| p.manifest_etag.as_deref())
            };
            if known != Some(etag.as_str()) || etag.is_empty() {
                let name = manifest_name(device);
                self.queue_get(
                    run,
                    RequestKind::GetManifest,
                    &name,
                    Pending::Manifest { device, etag },
                );
            }
        }
    }

    fn on_manifest(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        etag: String,
        response: Result<Response>,
    ) {
        let name = manifest_name(device);
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Listed a moment ago and gone now: nothing to import, nothing to infer.
            Err(e) if e.category() == Category::NotFound => return run.report.errors.push(e),
            Err(e) => {
                run.own_manifest_unread |= device == self.state.device;
                return run.note_failure(e);
            }
        };
        let manifest = match Manifest::open(&self.manifest_key, self.vault, device, body) {
            Ok(m) => m,
            Err(e) => {
                if device == self.state.device {
                    self.state.own.republish = true;
                }
                return run.report.errors.push(e);
            }
        };
        self.state.clock.observe(manifest.clock);
        let rollback = |trusted: u64| Error::Rollback {
            object: name.clone(),
            trusted,
            found: manifest.seq,
        };
        if device == self.state.device {
            let own = &mut self.state.own;
            if manifest.seq < own.manifest_seq {
                own.republish = true;
                return run.report.errors.push(rollback(own.manifest_seq));
            }
            // Ours, from a run whose state was not saved: adopt it, and fetch back the
            // segments it names that this state does not know.
            own.manifest_seq = manifest.seq;
            own.manifest_etag = Some(etag);
            own.published_segments = own.published_segments.max(manifest.segments);
        } else {
            let peer = self.state.peers.entry(device).or_default();
            if manifest.seq < peer.manifest_seq {
                return run.report.errors.push(rollback(peer.manifest_seq));
            }
            peer.manifest_seq = manifest.seq;
            peer.manifest_etag = Some(etag);
            peer.segments = peer.segments.max(manifest.segments);
        }
    }

    fn plan_segments(&mut self, run: &mut SyncRun) {
        let me = self.state.device;
        let own = &self.state.own;
        let range = |applied: u64, known: u64| {
            applied + 1..=known.min(applied.saturating_add(MAX_SEGMENTS_PER_SYNC))
        };
        let mut wanted: Vec<(DeviceId, u64)> = range(own.segments, own.published_segments)
            .filter(|seq| !own.beyond.contains(seq))
            .map(|seq| (me, seq))
            .collect();
        for (device, peer) in &self.state.peers {
            wanted.extend(
                range(peer.applied, peer.segments)
                    .filter(|seq| !peer.beyond.contains(seq))
                    .map(|seq| (*device, seq)),
            );
        }
        for (device, seq) in wanted {
            let name = segment_name(device, seq);
            self.queue_get(
                run,
                RequestKind::GetSegment,
                &name,
                Pending::Segment { device, seq },
            );
        }
    }

    fn on_segment(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        seq: u64,
        response: Result<Response>,
    ) {
        let name = segment_name(device, seq);
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            Err(e) if e.category() == Category::NotFound => return run.report.errors.push(e),
            Err(e) => return run.note_failure(e),
        };
        let segment = match open_segment(&self.segment_key, self.vault, device, seq, body) {
            Ok(s) => s,
            Err(e) => return run.report.errors.push(e),
        };
        let count = self.merge_segment(segment);
        if device != self.state.device {
            run.report.pulled += count;
        }
        let (applied, beyond) = if device == self.state.device {
            let own = &mut self.state.own;
            (&mut own.segments, &mut own.beyond)
        } else {
            let peer = self.state.peers.entry(device).or_default();
            (&mut peer.applied, &mut peer.beyond)
        };
        beyond.insert(seq);
        while beyond.remove(&(*applied + 1)) {
            *applied += 1;
        }
    }

    /// Merges a verified segment; returns how many changes it held. For our own segments
    /// (found again after a crash), the local writes it holds are no longer unpushed.
    fn merge_segment(&mut self, segment: Segment) -> u64 {
        let own = segment.device == self.state.device;
        let count = segment.changes.len() as u64;
        self.state.records.reserve(segment.changes.len());
        for change in segment.changes {
            self.state.clock.observe(change.hlc);
            let (key, record) = change.into_record(segment.device);
            if own
                && self
                    .state
                    .records
                    .get(&key)
                    .is_none_or(|c| c.stamp <= record.stamp)
            {
                self.state.dirty.remove(&key);
            }
            self.state.records.merge(key, record);
        }
        count
    }

    // ---- push ----

    /// Queues our next segment; returns `false` when nothing is left to push.
    fn plan_push(&mut self, run: &mut SyncRun) -> bool {
        if run.push_conflicts >= MAX_PUSH_CONFLICTS {
            run.stop(Error::Http {
                category: Category::Conflict,
                status: 412,
                code: None,
                context: format!(
                    "PUT segment in {}: segment numbers keep being taken; is another replica using device id {}?",
                    self.store.display_name(),
                    self.state.device
                ),
            });
            return true;
        }
        let me = self.state.device;
        let mut keys = Vec::new();
        let mut size = 0;
        while size < segment::SEGMENT_TARGET_BYTES {
            let Some(key) = run.push_keys.pop_front() else {
                break;
            };
            if !self.state.dirty.contains(&key) {
                continue;
            }
            match self.state.records.get(&key) {
                Some(record) if record.stamp.device == me => {
                    size += segment::encoded_size_hint(&key, record);
                    keys.push(key);
                }
                // A newer write from another device won: ours need not travel.
                _ => {
                    self.state.dirty.remove(&key);
                }
            }
        }
        if keys.is_empty() {
            return false;
        }
        let seq = self.state.own.segments + 1;
        let records = &self.state.records;
        let pairs: Vec<(&[u8], &crate::record::Record)> = keys
            .iter()
            .map(|k| (k.as_slice(), records.get(k).expect("key checked above")))
            .collect();
        let written: Vec<(Vec<u8>, Stamp)> =
            pairs.iter().map(|(k, r)| (k.to_vec(), r.stamp)).collect();
        let body = match seal_segment(&self.segment_key, self.vault, me, seq, &pairs) {
            Ok(body) => body,
            Err(e) => {
                run.stop(e);
                return true;
            }
        };
        drop(pairs);
        let mut headers = Vec::new();
        if !self.state.quirks.no_conditional_put {
            headers.push(("if-none-match".to_owned(), "*".to_owned()));
        }
        let url = self
            .store
            .object_url(&format!("{}{}", self.folder, segment_name(me, seq)));
        let mut op = self.op(
            RequestKind::PutSegment,
            Method::Put,
            url,
            Pending::PutSegment { seq, written },
        );
        op.headers = headers;
        op.body = body;
        run.push(op);
        true
    }

    fn on_put_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
        response: Result<Response>,
    ) {
        let response = match response {
            Ok(r) => r,
            Err(e) => return run.stop(e),
        };
        if response.is_success() {
            self.own_segment_exists(seq);
            run.report.pushed += written.len() as u64;
            for (key, stamp) in &written {
                if self
                    .state
                    .records
                    .get(key)
                    .is_some_and(|r| r.stamp == *stamp)
                {
                    self.state.dirty.remove(key);
                }
            }
        } else if response.status == 412 {
            // The number is taken: a previous run wrote this segment and its state was lost.
            // Read it back before choosing the next number.
            run.push_conflicts += 1;
            let name = segment_name(self.state.device, seq);
            self.queue_get(
                run,
                RequestKind::GetSegment,
                &name,
                Pending::RecoverSegment { seq, written },
            );
        } else if s3::is_not_implemented(&response) && !self.state.quirks.no_conditional_put {
            // The store refuses `If-None-Match`: remember it and send the segment without it.
            self.state.quirks.no_conditional_put = true;
            requeue(run, written);
        } else {
            let name = segment_name(self.state.device, seq);
            run.stop(s3::error_from_response(
                &response,
                format!("PUT {name} in {}", self.store.display_name()),
            ));
        }
    }

    fn on_recover_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
        response: Result<Response>,
    ) {
        let name = segment_name(self.state.device, seq);
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            Err(e) => return run.stop(e),
        };
        match open_segment(&self.segment_key, self.vault, self.state.device, seq, body) {
            Ok(segment) => {
                self.merge_segment(segment);
            }
            // An unreadable object holds the number: skip past it, and say so.
            Err(e) => run.report.errors.push(e),
        }
        self.own_segment_exists(seq);
        requeue(run, written);
    }

    /// Our segment `seq` is known to be in the store (the next one is `seq + 1`).
    fn own_segment_exists(&mut self, seq: u64) {
        let own = &mut self.state.own;
        own.segments = own.segments.max(seq);
        own.beyond.retain(|s| *s > own.segments);
        while own.beyond.remove(&(own.segments + 1)) {
            own.segments += 1;
        }
    }

    fn plan_publish(&mut self, run: &mut SyncRun) {
        let own = &self.state.own;
        if run.own_manifest_unread || (own.segments <= own.published_segments && !own.republish) {
            return;
        }
        let manifest = Manifest {
            device: self.state.device,
            seq: own.manifest_seq + 1,
            segments: own.segments,
            clock: self.state.clock,
            merged: self
                .state
                .peers
                .iter()
                .map(|(d, p)| (*d, p.applied))
                .collect(),
        };
        let body = match manifest.seal(&self.manifest_key, self.vault) {
            Ok(body) => body,
            Err(e) => return run.stop(e),
        };
        let url = self.store.object_url(&format!(
            "{}{}",
            self.folder,
            manifest_name(manifest.device)
        ));
        let pending = Pending::PutManifest {
            seq: manifest.seq,
            segments: manifest.segments,
        };
        let mut op = self.op(RequestKind::PutManifest, Method::Put, url, pending);
        op.body = body;
        run.push(op);
    }

    fn on_put_manifest(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        segments: u64,
        response: Result<Response>,
    ) {
        let name = manifest_name(self.state.device);
        match self.check(response, || format!("PUT {name}")) {
            Ok(response) => {
                let own = &mut self.state.own;
                own.manifest_seq = seq;
                own.published_segments = segments;
                own.manifest_etag = response.header("etag").map(str::to_owned);
                own.republish = false;
            }
            Err(e) => run.stop(e),
        }
    }
}

/// Puts the keys of a segment that did not land back at the front of the push queue.
fn requeue(run: &mut SyncRun, written: Vec<(Vec<u8>, Stamp)>) {
    for (key, _) in written.into_iter().rev() {
        run.push_keys.push_front(key);
    }
}
