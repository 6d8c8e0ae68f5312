//! The sync state machine: list manifests → fetch changed manifests → adopt a checkpoint when
//! it saves fetching many segments → fetch missing segments → merge → write our new segments →
//! write our manifest → compact (write a checkpoint, then our manifest again) when the tails
//! have grown past the policy's bound.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{Engine, Lifecycle};

mod ahead;
pub(crate) mod compact;
mod former;
mod freeze;
mod gc;
mod hint;
mod keys;
#[cfg(feature = "driver")]
pub(crate) use hint::HINT_NAME;
#[cfg(feature = "backup")]
pub(crate) use push::MASS_DELETION_MIN_KEYS;
mod packs;
mod prune;
mod pull;
mod push;
mod repack;
mod stranded;
mod unnamed_checkpoints;
use crate::clock::Stamp;
use crate::error::{Error, Result};
use crate::http::{Method, Request, RequestKind, Response};
use crate::ids::{DeviceId, RequestId, Timestamp};
use crate::manifest::{CheckpointRef, MANIFEST_FOLDER};
use crate::report::SyncReport;
use crate::retry::RetryPolicy;
use crate::s3;

/// A push that keeps finding its segment number taken gives up after this many tries.
const MAX_PUSH_CONFLICTS: u32 = 16;
/// A listing longer than this many pages (10 million manifests) is not believed.
const MAX_LIST_PAGES: usize = 10_000;
/// At most this many segments of one device are fetched in one sync; the rest come next time.
const MAX_SEGMENTS_PER_SYNC: u64 = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Reading the change hint, to learn whether anything was published since the last poll.
    Hint,
    Listing,
    /// Checking whether the vault exists, before a replica's first sync goes on.
    Joining,
    Manifests,
    /// Reading the key grants this device lacks, writing those an owner owes (sharing).
    Keys,
    Checkpoint,
    Segments,
    Pushing,
    /// Writing the grants of a new key generation to the members left (sharing).
    Rekeying,
    Publishing,
    Compacting,
    /// Deleting our own checkpoints that newer ones replaced, and our covered segments.
    Sweeping,
    /// Listing our packs, and deleting those no file needs any more.
    Collecting,
    Done,
}

/// A request to make: built, signed and numbered when it is handed out, kept while it is out
/// so that it can be sent again.
struct Op {
    kind: RequestKind,
    method: Method,
    url: String,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
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
    },
    RecoverSegment {
        seq: u64,
    },
    CheckCreate {
        seq: u64,
    },
    PutManifest {
        seq: u64,
        segments: u64,
        checkpoint: Option<CheckpointRef>,
        clock: crate::clock::Hlc,
        pruned: u64,
    },
    ListVaults,
    Checkpoint {
        writer: DeviceId,
        reference: CheckpointRef,
    },
    /// One page of the listing of every checkpoint in the vault.
    ListCheckpoints,
    /// A checkpoint no manifest names.
    UnnamedCheckpoint {
        writer: DeviceId,
        number: u64,
    },
    PutCheckpoint {
        reference: CheckpointRef,
    },
    DeleteCheckpoint {
        number: u64,
    },
    DeleteSegment {
        seq: u64,
    },
    /// Our own checkpoint, read back because a peer is stranded below our deletion.
    OwnCheckpoint {
        number: u64,
    },
    /// Our former id's manifest, written to close its log.
    CloseFormerLog {
        device: DeviceId,
    },
    /// One page of the listing of a former id's segments or checkpoints.
    ListFormerLog {
        device: DeviceId,
        folder: former::LogFolder,
    },
    /// Deleting a segment or checkpoint of a former id (its name inside the vault folder).
    DeleteFormerLog {
        name: String,
    },
    ListPacks,
    DeletePack {
        /// Whose pack: ours, or one of an id we had before we started over.
        device: DeviceId,
        pack: [u8; 16],
    },
    ListRedirects,
    GetRedirect {
        pack: [u8; 16],
    },
    /// Live chunks of a pack being repacked: where the range starts, and the chunks in it.
    RepackChunks {
        pack: [u8; 16],
        start: u64,
        chunks: Vec<repack::LiveChunk>,
    },
    /// The pack that repacked chunks went to, and the redirects to write once it is stored
    /// (sealed under the key generation of the chunks).
    PutRepacked {
        generation: u32,
        redirects: Vec<([u8; 16], crate::pack::Redirect)>,
    },
    PutRedirect {
        pack: [u8; 16],
        redirect: crate::pack::Redirect,
    },
    Hint,
    PutHint,
    /// Our grant of a key generation (sharing).
    KeyGrant {
        generation: u32,
    },
    /// A grant of a key generation to a member (sharing).
    PutKeyGrant {
        generation: u32,
        member: [u8; 10],
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
    /// The devices whose manifest the latest listing showed.
    listed_devices: HashSet<DeviceId>,
    /// Listed devices whose manifest could not be read or was held in this run (such a peer
    /// may be a reader of an older format: nothing is pruned).
    unread_manifests: HashSet<DeviceId>,
    seen_tokens: HashSet<String>,
    push_keys: VecDeque<Vec<u8>>,
    push_conflicts: u32,
    /// Our own manifest or one of our published segments could not be read: writing now could
    /// go back on what the store holds, so this run does not push (and ends in `Err`).
    own_log_broken: bool,
    /// Set when the pull is done: whether this run may push.
    may_push: bool,
    /// When the sync started (wall ms, by the caller's clock).
    now: Timestamp,
    /// When the latest answer arrived (wall ms, by the caller's clock): after every object
    /// read so far was written.
    answered: Timestamp,
    /// When the checkpoint this run wrote was planned, for the manifest that names it.
    written_checkpoint_at: Option<u64>,
    /// Checkpoints fetched (or tried) in this run.
    tried_checkpoints: HashSet<(DeviceId, u64)>,
    /// A peer's segment failed to authenticate in this run: once the segments are done, a
    /// checkpoint that covers it is looked for.
    found_damaged: bool,
    /// How many times our own manifest read damaged in this run.
    own_damaged_reads: u8,
    /// The segments that failed so in this run: not fetched again by it, and a checkpoint
    /// that covers them is looked for.
    damaged_read: HashSet<(DeviceId, u64)>,
    /// Checkpoints no manifest names, found by listing (see `unnamed_checkpoints`): `None`
    /// until listed in this run; then those left to try, the most promising last.
    unnamed_checkpoints: Option<Vec<(DeviceId, u64)>>,
    /// Unnamed checkpoints fetched in this run.
    unnamed_tried: usize,
    /// An object the manifests promised was missing (deleted since): list again once.
    relist: bool,
    /// This run listed a second time already.
    relisted: bool,
    /// The store answered 501 to `If-None-Match` in this sync: segments go without it.
    no_conditional_put: bool,
    /// Our own manifest is stamped too far ahead: this replica starts over.
    own_clock_ahead: bool,
    /// Manifests stamped too far ahead, with their writer: reported once all are read unless
    /// another one says that device is retired.
    held_manifests: Vec<(DeviceId, Error)>,
    /// Devices whose manifest or a segment was held in this run (stamped too far ahead): the
    /// run counts as caught up without what they wrote.
    held_devices: HashSet<DeviceId>,
    /// Of the devices whose manifest was held: how many of their first segments that manifest
    /// says may have been deleted (none of them is fetched).
    held_pruned: HashMap<DeviceId, u64>,
    /// Our segments deleted in this run above the ones counted as deleted.
    deleted_segments: std::collections::BTreeSet<u64>,
    /// What this run has learnt of our packs and redirects, while pack collection looks.
    survey: Option<packs::Survey>,
    /// Pages of our packs' and redirects' listings asked for.
    pack_pages: usize,
    /// Listings and deletions of our former ids' logs.
    former_logs: former::FormerLogs,
    /// Chunks of mostly-garbage packs being moved into a new pack.
    repacking: Option<repack::Repacking>,
    /// A poll goes on into a full sync even when the change hint has not moved.
    list_anyway: bool,
    /// Our manifest was stored in this run.
    published: bool,
    /// The change hint's PUT was queued.
    hint_written: bool,
    /// A poll found no change hint: this run writes one.
    hint_missing: bool,
}

impl SyncRun {
    fn new(now: Timestamp) -> Self {
        SyncRun {
            now,
            answered: now,
            written_checkpoint_at: None,
            tried_checkpoints: HashSet::new(),
            found_damaged: false,
            damaged_read: HashSet::new(),
            own_damaged_reads: 0,
            unnamed_checkpoints: None,
            unnamed_tried: 0,
            relist: false,
            relisted: false,
            own_clock_ahead: false,
            no_conditional_put: false,
            held_manifests: Vec::new(),
            held_devices: HashSet::new(),
            held_pruned: HashMap::new(),
            deleted_segments: Default::default(),
            survey: None,
            pack_pages: 0,
            former_logs: Default::default(),
            repacking: None,
            list_anyway: true,
            published: false,
            hint_written: false,
            hint_missing: false,
            phase: Phase::Listing,
            queue: VecDeque::new(),
            delayed: Vec::new(),
            inflight: HashMap::new(),
            report: SyncReport::default(),
            failure: None,
            stopping: false,
            listed: Vec::new(),
            listed_devices: HashSet::new(),
            unread_manifests: HashSet::new(),
            seen_tokens: HashSet::new(),
            push_keys: VecDeque::new(),
            push_conflicts: 0,
            own_log_broken: false,
            may_push: false,
        }
    }

    /// Records an error the sync goes on past, and makes the sync end in `Err`.
    fn note_failure(&mut self, error: Error) {
        self.report.errors.push(error.clone());
        self.failure.get_or_insert(error);
    }

    /// Records a failure to read our own log: the sync goes on pulling, pushes nothing, and
    /// ends in `Err`.
    fn own_log_failure(&mut self, error: Error) {
        self.own_log_broken = true;
        self.note_failure(error);
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
        if self.is_syncing() {
            return Err(Error::SyncInProgress);
        }
        self.keep_uncollected_changes();
        let mut run = SyncRun::new(now);
        if self.own_clock_ran_ahead(now) {
            // Everyone holds what this clock stamped: write it again under a new id, now.
            self.note_own_clock_ran_ahead(&mut run);
            self.start_over(&mut run, now);
        } else if self.silent_too_long(now) {
            // Tombstones it never saw may have been collected meanwhile: its view cannot be
            // trusted, and its unpushed writes must not come back with their old stamps.
            self.start_over(&mut run, now);
        }
        self.queue_list(&mut run, None);
        self.lifecycle = Lifecycle::Syncing(Box::new(run));
        Ok(())
    }

    /// Whether a sync is running.
    pub fn is_syncing(&self) -> bool {
        matches!(self.lifecycle, Lifecycle::Syncing(_))
    }

    /// The running sync, taken out of the lifecycle while an input is handled; put back by
    /// [`Engine::settle`].
    fn take_run(&mut self) -> Option<Box<SyncRun>> {
        match std::mem::replace(&mut self.lifecycle, Lifecycle::Idle) {
            Lifecycle::Syncing(run) => Some(run),
            other => {
                self.lifecycle = other;
                None
            }
        }
    }

    /// The next request to send at wall time `now`, signed, if any. Several may be out at once.
    /// `None` while the remaining requests wait for a retry's backoff: see
    /// [`Engine::poll_timeout`]. Drain [`Engine::poll_journal`] before sending it.
    pub fn poll_request(&mut self, now: Timestamp) -> Option<Request> {
        let mut run = self.take_run()?;
        let request = self.next_request(&mut run, now);
        self.settle(run);
        request
    }

    /// When the next delayed retry becomes due, while a sync waits for one.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        match &self.lifecycle {
            Lifecycle::Syncing(run) => run.delayed.iter().map(|op| op.due).min(),
            _ => None,
        }
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
        self.store.add_write_headers(&mut request);
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
        let Some(mut run) = self.take_run() else {
            return;
        };
        if let Some(mut op) = run.inflight.remove(&id) {
            run.answered = run.answered.max(now);
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
    fn settle(&mut self, run: Box<SyncRun>) {
        self.lifecycle = if run.phase == Phase::Done {
            let mut run = *run;
            self.report_unreported(&mut run);
            run.report.changed.sort_unstable();
            run.report.changed.dedup();
            run.report.conflicts.sort_unstable();
            run.report.conflicts.dedup();
            if run.failure.is_none() && !run.report.hint_unchanged {
                self.deletions_confirmed = false;
                self.note_caught_up(&run);
            }
            self.last_report = Some(run.report.clone());
            Lifecycle::Finished(Box::new(match run.failure {
                Some(error) => Err(error),
                None => Ok(run.report),
            }))
        } else {
            Lifecycle::Syncing(run)
        };
    }

    /// Whether to send `op` again, and after how many milliseconds.
    fn retry_decision(
        &mut self,
        op: &Op,
        response: &Result<Response>,
        now: Timestamp,
    ) -> Option<Retry> {
        let may_pass = match response {
            Err(e) => RetryPolicy::retries(e.category()),
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
            Ok(r) if !r.is_success() => s3::retryable(r.status, s3::error_code(&r.body).as_deref()),
            // A listing cut short in transit does not parse: fetch it again.
            Ok(r)
                if matches!(
                    op.kind,
                    RequestKind::List | RequestKind::ListPacks | RequestKind::ListRedirects
                ) && s3::parse_list(&r.body).is_err() =>
            {
                true
            }
            Ok(_) => return None,
        };
        let idempotent = matches!(
            op.method,
            Method::Get | Method::Head | Method::Put | Method::Delete
        );
        (idempotent && may_pass && op.attempt < self.retry.max_attempts)
            .then(|| Retry::After(self.retry.delay_ms(op.attempt, self.next_request)))
    }

    /// The result of the sync once it has finished: its report, or the error that stopped it
    /// (the partial report is then in [`Engine::last_report`]).
    pub fn poll_outcome(&mut self) -> Option<Result<SyncReport>> {
        match std::mem::replace(&mut self.lifecycle, Lifecycle::Idle) {
            Lifecycle::Finished(outcome) => Some(*outcome),
            other => {
                self.lifecycle = other;
                None
            }
        }
    }

    /// Abandons a running sync (say, when the app is suspended or a task was cancelled).
    /// Nothing is lost: what was merged stays merged, a segment sealed for the push stays
    /// pending and is sent again, byte for byte, by the next sync, and the keys it changed are
    /// in the next successful sync's report.
    pub fn cancel_sync(&mut self) {
        if let Lifecycle::Syncing(run) = &mut self.lifecycle {
            self.unreported
                .extend(std::mem::take(&mut run.report.changed));
            self.lifecycle = Lifecycle::Idle;
        }
    }

    /// A successful outcome nobody collected (a driver that gave up after the run ended) is
    /// about to be replaced: the keys its report names go to the next one.
    fn keep_uncollected_changes(&mut self) {
        if let Lifecycle::Finished(outcome) = &mut self.lifecycle {
            if let Ok(report) = outcome.as_mut() {
                self.unreported.extend(std::mem::take(&mut report.changed));
            }
        }
    }

    /// Notes the records about to be dropped or replaced wholesale (a replica starting over,
    /// or forgetting what it merged), by key and stamp: the next successful sync reports those
    /// whose record differs then.
    /// (A key noted twice is reported when either stamp differs: at worst once too often.)
    pub(super) fn note_forgotten(&mut self, records: impl IntoIterator<Item = (Vec<u8>, Stamp)>) {
        self.forgotten.extend(records);
    }

    /// A finished run's report names the keys earlier syncs changed without saying so (they
    /// failed, or were cancelled) and those forgotten since whose record differs now; a failed
    /// run passes its own on to the next.
    fn report_unreported(&mut self, run: &mut SyncRun) {
        if run.failure.is_some() {
            self.unreported.extend(run.report.changed.iter().cloned());
            self.unreported.sort_unstable();
            self.unreported.dedup();
            return;
        }
        run.report
            .changed
            .extend(std::mem::take(&mut self.unreported));
        let records = self.state.records();
        run.report.changed.extend(
            self.forgotten
                .drain(..)
                .filter(|(key, stamp)| records.get(key).map(|r| r.stamp) != Some(*stamp))
                .map(|(key, _)| key),
        );
    }

    fn advance(&mut self, run: &mut SyncRun) {
        while run.idle() && run.phase != Phase::Done {
            if run.stopping {
                run.phase = Phase::Done;
                break;
            }
            match run.phase {
                // The hint's GET was dropped (the run is stopping): nothing to list for.
                Phase::Hint => run.phase = Phase::Done,
                Phase::Listing => {
                    run.phase = Phase::Joining;
                    self.check_join(run);
                }
                Phase::Joining => {
                    run.phase = Phase::Manifests;
                    self.plan_manifests(run);
                }
                Phase::Manifests => {
                    if let Some(revoked) = self.revoked_error() {
                        run.stop(revoked);
                        continue;
                    }
                    self.report_held_manifests(run);
                    self.report_clocks_apart(run);
                    self.confirm_present(run.now);
                    self.check_frozen(run);
                    if self.state.directory().retired.contains(&self.state.device)
                        || run.own_clock_ahead
                    {
                        // Another device retired us, or our manifest is stamped far ahead (a
                        // clock that ran ahead, and a state that does not remember it): start
                        // over under a new id, and list again.
                        run.own_clock_ahead = false;
                        let now = run.now;
                        self.start_over(run, now);
                        // The new id's log is empty, so nothing of the old one can be broken.
                        run.own_log_broken = false;
                        run.phase = Phase::Listing;
                        run.listed.clear();
                        run.seen_tokens.clear();
                        self.queue_list(run, None);
                        continue;
                    }
                    run.phase = Phase::Keys;
                    self.plan_key_reads(run);
                }
                Phase::Keys => run.phase = Phase::Checkpoint,
                // Checkpoints one at a time, while one is needed (segments were deleted) or
                // worth it.
                Phase::Checkpoint => {
                    if !self.plan_checkpoint(run) {
                        run.phase = Phase::Segments;
                        self.plan_segments(run);
                    }
                }
                Phase::Segments if run.relist && !run.relisted => {
                    // Something the manifests named was gone: read them again, once.
                    run.relist = false;
                    run.relisted = true;
                    run.phase = Phase::Listing;
                    run.listed.clear();
                    run.seen_tokens.clear();
                    self.queue_list(run, None);
                }
                // A segment read damaged: its records may be in a checkpoint (each fetched at
                // most once a run, so this comes back here a bounded number of times).
                Phase::Segments if run.found_damaged => {
                    run.found_damaged = false;
                    if self.plan_checkpoint(run) {
                        run.phase = Phase::Checkpoint;
                    }
                }
                Phase::Segments => {
                    run.phase = Phase::Pushing;
                    // Our own log must be known up to what the store shows before we add to
                    // it; if it is not (a read failed), the push waits for the next sync.
                    let own = self.state.own();
                    run.may_push = !run.own_log_broken && own.segments >= own.published_segments;
                    if run.may_push {
                        // A newer key generation exists that this device was not given: what it
                        // sealed with an older one, a revoked member could read. Wait for it.
                        if let Some(generation) = self.missing_generations().into_iter().max() {
                            run.may_push = false;
                            run.report.errors.push(Error::Access(format!(
                                "nothing is pushed until this device holds key generation {generation} (its grant is not here yet)"
                            )));
                        }
                    }
                    if run.may_push {
                        self.guard_deletions(run);
                    }
                    if run.may_push {
                        run.push_keys = self.state.dirty().iter().cloned().collect();
                    }
                    self.plan_push(run);
                }
                Phase::Pushing => {
                    if !self.plan_push(run) {
                        run.phase = Phase::Rekeying;
                        self.plan_key_writes(run);
                    }
                }
                Phase::Rekeying => {
                    run.phase = Phase::Publishing;
                    self.plan_publish(run, None);
                }
                Phase::Publishing => {
                    run.phase = Phase::Compacting;
                    self.plan_hint_write(run);
                    if run.failure.is_none() {
                        self.plan_compaction(run);
                    }
                }
                Phase::Compacting => {
                    run.phase = Phase::Sweeping;
                    if run.failure.is_none() && run.may_push {
                        self.plan_sweep(run);
                        self.plan_segment_deletes(run);
                        self.plan_former_logs(run);
                    }
                }
                Phase::Sweeping => {
                    run.phase = Phase::Collecting;
                    if run.failure.is_none() && run.may_push {
                        self.plan_pack_collection(run);
                    }
                }
                Phase::Collecting | Phase::Done => run.phase = Phase::Done,
            }
        }
    }

    fn on_response(&mut self, run: &mut SyncRun, pending: Pending, response: Result<Response>) {
        match pending {
            Pending::List => self.on_list(run, response),
            Pending::Manifest { device, etag } => self.on_manifest(run, device, etag, response),
            Pending::Segment { device, seq } => self.on_segment(run, device, seq, response),
            Pending::PutSegment { seq } => self.on_put_segment(run, seq, response),
            Pending::RecoverSegment { seq } => self.on_recover_segment(run, seq, response),
            Pending::CheckCreate { seq } => self.on_check_create(run, seq, response),
            Pending::PutManifest {
                seq,
                segments,
                checkpoint,
                clock,
                pruned,
            } => self.on_put_manifest(run, (seq, segments, clock, pruned), checkpoint, response),
            Pending::ListVaults => self.on_list_vaults(run, response),
            Pending::Checkpoint { writer, reference } => {
                self.on_checkpoint(run, writer, reference, response)
            }
            Pending::ListCheckpoints => self.on_checkpoint_list(run, response),
            Pending::UnnamedCheckpoint { writer, number } => {
                self.on_unnamed_checkpoint(run, writer, number, response)
            }
            Pending::PutCheckpoint { reference } => {
                self.on_put_checkpoint(run, reference, response)
            }
            Pending::DeleteCheckpoint { number } => {
                self.on_delete_checkpoint(run, number, response)
            }
            Pending::DeleteSegment { seq } => self.on_delete_segment(run, seq, response),
            Pending::OwnCheckpoint { number } => self.on_own_checkpoint(run, number, response),
            Pending::CloseFormerLog { device } => self.on_close_former_log(run, device, response),
            Pending::ListFormerLog { device, folder } => {
                self.on_former_list(run, device, folder, response)
            }
            Pending::DeleteFormerLog { name } => self.on_delete_former_log(run, name, response),
            Pending::ListPacks => self.on_pack_list(run, response),
            Pending::DeletePack { device, pack } => {
                self.on_delete_pack(run, device, pack, response)
            }
            Pending::ListRedirects => self.on_redirect_list(run, response),
            Pending::GetRedirect { pack } => self.on_get_redirect(run, pack, response),
            Pending::RepackChunks {
                pack,
                start,
                chunks,
            } => self.on_repack_chunks(run, pack, start, chunks, response),
            Pending::PutRepacked {
                generation,
                redirects,
            } => self.on_put_repacked(run, generation, redirects, response),
            Pending::PutRedirect { pack, redirect } => {
                self.on_put_redirect(run, pack, redirect, response)
            }
            Pending::Hint => self.on_hint(run, response),
            Pending::PutHint => self.on_put_hint(run, response),
            Pending::KeyGrant { generation } => self.on_key_grant(run, generation, response),
            Pending::PutKeyGrant { generation, member } => {
                self.on_put_key_grant(run, generation, member, response)
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
            body: bytes::Bytes::new(),
            pending,
            attempt: 1,
            skew_corrected: false,
            due: Timestamp(0),
        }
    }

    /// The URL of the object `name` inside the vault folder.
    fn vault_url(&self, name: &str) -> String {
        self.store.object_url(&format!("{}{name}", self.folder))
    }

    fn queue_get(&mut self, run: &mut SyncRun, kind: RequestKind, name: &str, pending: Pending) {
        let url = self.vault_url(name);
        run.queue
            .push_back(self.op(kind, Method::Get, url, pending));
    }

    /// Queues a DELETE of `name` (inside the vault folder), unless the run is stopping.
    fn queue_delete(&mut self, run: &mut SyncRun, kind: RequestKind, name: &str, pending: Pending) {
        let url = self.vault_url(name);
        let op = self.op(kind, Method::Delete, url, pending);
        run.push(op);
    }

    /// The outcome of a DELETE of `name`: an object already gone counts as deleted.
    fn check_deleted(&self, response: Result<Response>, name: &str) -> Result<()> {
        match self.check(response, || format!("DELETE {name}")) {
            Ok(_) => Ok(()),
            Err(e) if e.category() == crate::error::Category::NotFound => Ok(()),
            Err(e) => Err(e),
        }
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
}
