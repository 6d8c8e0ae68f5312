//! Pushing: our unpushed writes as new segments (created only if absent), then our manifest.
//!
//! A segment is sealed once and kept in the local state as *pending* before its PUT goes out
//! (the host journals it first), so a push cut short by a crash, a cancel or an error is
//! resumed with the very same bytes under the same number: an idempotent PUT, never a second
//! object fighting for one name.

use serde_bytes::ByteBuf;

use super::{Pending, SyncRun, MAX_PUSH_CONFLICTS};

/// The mass-deletion guard lets pushes that delete fewer keys than this through whatever their
/// share: deleting 3 of 4 notes is an ordinary day.
pub(crate) const MASS_DELETION_MIN_KEYS: u64 = 10;
/// The store is asked whether it refuses a second create this often...
const CREATE_CHECK_EVERY_MS: u64 = 30 * 86_400_000;
/// ...with a segment no larger than this (the check sends it again).
const CREATE_CHECK_MAX_BYTES: usize = 64 << 10;

use crate::engine::state::{CreateCheck, PendingSegment};
use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{Method, RequestKind, Response};
use crate::manifest::{manifest_name, CheckpointRef, Manifest};
use crate::s3;
use crate::segment::{self, open_segment, seal_segment, segment_name};

impl Engine {
    /// Queues our next segment (the pending one first); returns `false` when nothing is left
    /// to push.
    pub(super) fn plan_push(&mut self, run: &mut SyncRun) -> bool {
        if !run.may_push {
            return false;
        }
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
        // A pending segment the store is known to hold already (read back in this pull).
        if self
            .state
            .pending()
            .is_some_and(|p| p.seq <= self.state.own().segments)
        {
            self.state.set_pending(None);
        }
        if self.state.pending().is_none() && !self.seal_next_segment(run) {
            return false;
        }
        let pending = self.state.pending().expect("a pending segment exists here");
        let op = self.segment_put(
            RequestKind::PutSegment,
            Pending::PutSegment { seq: pending.seq },
            pending,
            !run.no_conditional_put,
        );
        run.push(op);
        true
    }

    /// A PUT of the pending segment `pending` under its number, created only if absent when
    /// `conditional`.
    fn segment_put(
        &self,
        kind: RequestKind,
        on_answer: Pending,
        pending: &PendingSegment,
        conditional: bool,
    ) -> super::Op {
        let url = self.vault_url(&segment_name(self.state.device, pending.seq));
        let mut op = self.op(kind, Method::Put, url, on_answer);
        if conditional {
            op.headers = vec![("if-none-match".to_owned(), "*".to_owned())];
        }
        op.body = pending.body.clone();
        op
    }

    /// Seals the next batch of unpushed writes as the pending segment; `false` when there is
    /// nothing to push.
    fn seal_next_segment(&mut self, run: &mut SyncRun) -> bool {
        let me = self.state.device;
        let mut keys = Vec::new();
        let mut size = 0;
        while size < segment::SEGMENT_TARGET_BYTES {
            let Some(key) = run.push_keys.pop_front() else {
                break;
            };
            if !self.state.dirty().contains(&key) {
                continue;
            }
            // Our latest write of the key, also when a concurrent write from another device won
            // over it: it still travels, so every device keeps the loser in its history.
            match self.state.latest_own(&key) {
                Some(record) => {
                    size += segment::encoded_size_hint(&key, record);
                    keys.push(key);
                }
                // Dropped from the history by its policy: nothing left to send.
                None => self.state.mark_clean(&key),
            }
        }
        if keys.is_empty() {
            return false;
        }
        let seq = self.state.own().segments + 1;
        let state = &self.state;
        let pairs: Vec<(&[u8], &crate::record::Record)> = keys
            .iter()
            .map(|k| {
                (
                    k.as_slice(),
                    state.latest_own(k).expect("key checked above"),
                )
            })
            .collect();
        let written = pairs
            .iter()
            .map(|(k, r)| (ByteBuf::from(k.to_vec()), r.stamp))
            .collect();
        let generation = self.current_generation();
        let (segment_key, _) = self
            .log_keys(generation)
            .expect("the current generation is held");
        let body = seal_segment(
            &segment_key,
            self.vault,
            me,
            seq,
            &pairs,
            self.compression,
            &mut self.entropy,
        );
        drop(pairs);
        match body {
            Ok(body) => {
                let body = self.sign_object(&segment_name(me, seq), generation, body);
                self.state.set_pending(Some(PendingSegment {
                    seq,
                    body: body.into(),
                    written,
                }));
                true
            }
            Err(e) => {
                run.stop(e);
                false
            }
        }
    }

    pub(super) fn on_put_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        response: Result<Response>,
    ) {
        let response = match response {
            Ok(r) => r,
            Err(e) => return run.stop(e),
        };
        if response.is_success() {
            let check = self.create_check(run, seq);
            self.pending_landed(run, seq);
            if let Some(op) = check {
                run.push(op);
            }
        } else if response.status == 412 {
            // The number is taken: by these very bytes (a previous try landed and its answer
            // was lost), or by a segment whose state was lost. Read it back to tell.
            run.push_conflicts += 1;
            let name = segment_name(self.state.device, seq);
            self.queue_get(
                run,
                RequestKind::GetSegment,
                &name,
                Pending::RecoverSegment { seq },
            );
        } else if s3::is_not_implemented(&response) && !run.no_conditional_put {
            // The store (or a proxy in front of it) refuses `If-None-Match`: the pending
            // segment goes again without it, for this sync only. The next sync asks again:
            // one 501 from a proxy must not give up the guard forever.
            run.no_conditional_put = true;
        } else {
            let name = segment_name(self.state.device, seq);
            run.stop(s3::error_from_response(
                &response,
                format!("PUT {name} in {}", self.store.display_name()),
            ));
        }
    }

    /// The segment `seq` (pending, just stored with `If-None-Match: *`) sent again, byte for
    /// byte, when it is time to learn whether the store refuses a second create: the guard
    /// against two replicas writing under one device id depends on it. The answer is harmless
    /// either way, since the bytes are the ones stored.
    fn create_check(&self, run: &SyncRun, seq: u64) -> Option<super::Op> {
        if run.no_conditional_put {
            return None;
        }
        let pending = self.state.pending().filter(|p| p.seq == seq)?;
        if pending.body.len() > CREATE_CHECK_MAX_BYTES {
            return None;
        }
        let now = run.now.0;
        let asked = self.state.quirks().exclusive_create.asked_at();
        if asked.is_some_and(|at| at <= now && now - at < CREATE_CHECK_EVERY_MS) {
            return None;
        }
        Some(self.segment_put(
            RequestKind::CheckCreate,
            Pending::CheckCreate { seq },
            pending,
            true,
        ))
    }

    /// What the store answered to a second create of segment `seq`.
    pub(super) fn on_check_create(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        response: Result<Response>,
    ) {
        let now = run.now.0;
        match response {
            Ok(r) if r.status == 412 => {
                self.state.quirks_mut().exclusive_create = CreateCheck::Refused(now);
            }
            Ok(r) if r.is_success() => {
                self.state.quirks_mut().exclusive_create = CreateCheck::Ignored(now);
                run.note_failure(Error::Config(format!(
                    "{} ignores If-None-Match: creating {} a second time answered {} instead of 412. \
                     Syncing still works (each device writes only its own objects), but two replicas \
                     sharing one device id (a copied state) would overwrite each other's segments \
                     unnoticed; a store with conditional writes keeps that guard",
                    self.store.display_name(),
                    segment_name(self.state.device, seq),
                    r.status
                )));
            }
            // No answer to learn from (a failure, a 501): the next push asks again.
            _ => {}
        }
    }

    /// The pending segment `seq` is in the store: its writes are pushed.
    fn pending_landed(&mut self, run: &mut SyncRun, seq: u64) {
        self.own_segment_exists(seq);
        let Some(pending) = self.state.set_pending(None) else {
            return;
        };
        let oldest = pending.written.iter().map(|(_, stamp)| stamp.hlc).min();
        self.note_unnamed(oldest);
        self.state.directory_mut().tail_bytes += pending.body.len() as u64;
        run.report.pushed += pending.written.len() as u64;
        for (key, stamp) in &pending.written {
            // Still our latest write of the key (not overwritten by us since it was sealed).
            if self
                .state
                .latest_own(key.as_slice())
                .is_none_or(|r| r.stamp == *stamp)
            {
                self.state.mark_clean(key);
            }
        }
    }

    /// The mass-deletion guard: a push that would delete more than the allowed share of the
    /// live keys pushes nothing and ends in `MassDeletion`, unless the app confirmed it.
    pub(super) fn guard_deletions(&mut self, run: &mut SyncRun) {
        let Some(limit) = self.mass_deletion_limit else {
            return;
        };
        if self.deletions_confirmed {
            return;
        }
        let me = self.state.device;
        let records = self.state.records();
        // Our unpushed deletions of keys that had a value (their previous version, in the
        // history, is not a deletion too).
        let deleting = self
            .state
            .dirty()
            .iter()
            .filter(|k| {
                records
                    .get(k.as_slice())
                    .is_some_and(|r| r.value.is_none() && r.stamp.device == me)
                    && self
                        .state
                        .history(k)
                        .first()
                        .is_some_and(|previous| previous.value.is_some())
            })
            .count() as u64;
        if deleting < MASS_DELETION_MIN_KEYS {
            return;
        }
        let live = records.live_count() as u64 + deleting;
        if deleting * 100 > u64::from(limit) * live {
            run.note_failure(Error::MassDeletion {
                deleting,
                live,
                limit_percent: limit,
            });
            run.may_push = false;
        }
    }

    pub(super) fn on_recover_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        response: Result<Response>,
    ) {
        let name = segment_name(self.state.device, seq);
        let mut body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            Err(e) => return run.stop(e),
        };
        if self
            .state
            .pending()
            .is_some_and(|p| p.seq == seq && p.body[..] == body[..])
        {
            return self.pending_landed(run, seq);
        }
        let opened = self.unsign_own(&name, &mut body).and_then(|author| {
            self.check_writer(&author, self.state.device, seq, &name)?;
            let (segment_key, _) = self.generation_keys(&author, &name)?;
            Ok(open_segment(
                &segment_key,
                self.vault,
                self.state.device,
                seq,
                &mut body,
            )?)
        });
        match opened {
            Ok(segment) => {
                self.note_unnamed(segment.changes().map(|c| c.hlc).min());
                self.merge_segment(run, segment, u64::MAX);
            }
            // An unreadable object holds the number: skip past it, and say so.
            Err(e) => run.report.errors.push(e),
        }
        self.own_segment_exists(seq);
        // Whatever of ours the segment found there does not hold goes into the next one.
        if let Some(pending) = self.state.set_pending(None) {
            for (key, _) in pending.written.into_iter().rev() {
                run.push_keys.push_front(key.into_vec());
            }
        }
    }

    /// Writes of ours from `oldest` on are in a segment no manifest of ours names yet.
    fn note_unnamed(&mut self, oldest: Option<crate::clock::Hlc>) {
        if let Some(oldest) = oldest {
            let directory = self.state.directory_mut();
            directory.unnamed_from = Some(directory.unnamed_from.map_or(oldest, |u| u.min(oldest)));
        }
    }

    /// Our segment `seq` is known to be in the store (the next one is `seq + 1`).
    pub(super) fn own_segment_exists(&mut self, seq: u64) {
        let own = self.state.own_mut();
        own.segments = own.segments.max(seq);
        let segments = own.segments;
        own.beyond.retain(|s| *s > segments);
        while own.beyond.remove(&(own.segments + 1)) {
            own.segments += 1;
        }
    }

    /// Queues our manifest when it has something new to say; with `checkpoint`, always, naming
    /// that new checkpoint (whose number was issued for this manifest).
    pub(super) fn plan_publish(&mut self, run: &mut SyncRun, checkpoint: Option<CheckpointRef>) {
        let own = self.state.own();
        let directory = self.state.directory();
        let me = self.state.device;
        let stale_label = directory
            .devices
            .get(&me)
            .is_some_and(|info| info.label != directory.label);
        // Published now and then even with nothing to push, so that others see what we merged
        // (tombstones wait for it) and that we are alive.
        let heartbeat = own.manifest_seq > 0
            && directory.devices.get(&me).is_some_and(|info| {
                run.now.0 > info.clock.wall_ms.saturating_add(self.heartbeat_ms())
            });
        let pruned = self.prunable(run);
        let own = self.state.own();
        let directory = self.state.directory();
        let news = own.segments > own.published_segments
            || directory
                .devices
                .get(&me)
                .is_some_and(|i| pruned > i.pruned)
            || own.republish
            || !directory.joined
            || heartbeat
            || (stale_label && own.manifest_seq > 0);
        if !run.may_push || (!news && checkpoint.is_none()) {
            return;
        }
        let seq = match &checkpoint {
            Some(c) => c.number,
            None => {
                // A number never handed out before, made durable before the PUT goes out.
                let seq = own.manifest_seq.max(self.state.issued()) + 1;
                self.state.set_issued(seq);
                seq
            }
        };
        // The manifest's clock says when it was written: others judge from it whether we are
        // in touch (the clock alone moves only with writes).
        self.tick(run.now);
        let own = self.state.own();
        let directory = self.state.directory();
        let published = directory
            .devices
            .get(&me)
            .and_then(|i| i.checkpoint.clone());
        let manifest = Manifest {
            device: self.state.device,
            seq,
            segments: own.segments,
            clock: self.state.clock,
            merged: self
                .state
                .peers()
                .iter()
                .map(|(d, p)| (*d, p.applied))
                .collect(),
            label: directory.label.clone(),
            checkpoint: checkpoint.clone().or(published),
            retired: self.published_retired(),
            pruned,
            members: self.published_statements(),
        };
        let body = manifest.seal(&self.manifest_key, self.vault, &mut self.entropy);
        // Manifests stay under the vault's own key: every member (a revoked one too) reads
        // who is a member and how far each log goes; only records move to new generations.
        let body = self.sign_object(&manifest_name(manifest.device), 0, body);
        let url = self.vault_url(&manifest_name(manifest.device));
        let pending = Pending::PutManifest {
            seq: manifest.seq,
            segments: manifest.segments,
            checkpoint: manifest.checkpoint.clone(),
            clock: manifest.clock,
            pruned,
        };
        let mut op = self.op(RequestKind::PutManifest, Method::Put, url, pending);
        op.body = body.into();
        run.push(op);
    }

    /// The devices our manifests say are retired: sorted; a list that reached the bound keeps
    /// its first entries (readers refuse longer ones).
    pub(super) fn published_retired(&self) -> Vec<crate::ids::DeviceId> {
        let retired = &self.state.directory().retired;
        retired
            .iter()
            .copied()
            .take(crate::manifest::MAX_RETIRED)
            .collect()
    }

    /// `published` is the manifest's sequence number, segment count, clock and pruned count.
    pub(super) fn on_put_manifest(
        &mut self,
        run: &mut SyncRun,
        published: (u64, u64, crate::clock::Hlc, u64),
        checkpoint: Option<CheckpointRef>,
        response: Result<Response>,
    ) {
        let (seq, segments, clock, pruned) = published;
        let name = manifest_name(self.state.device);
        match self.check(response, || format!("PUT {name}")) {
            Ok(response) => {
                let own = self.state.own_mut();
                own.manifest_seq = seq;
                own.published_segments = segments;
                let all_named = segments >= own.segments;
                own.manifest_etag = response.header("etag").map(str::to_owned);
                own.republish = false;
                run.published = true;
                let me = self.state.device;
                let directory = self.state.directory_mut();
                directory.joined = true;
                if all_named {
                    directory.unnamed_from = None;
                }
                let label = directory.label.clone();
                let info = directory.devices.entry(me).or_default();
                info.label = label;
                info.clock = clock;
                let before = info.checkpoint.as_ref().map(|c| c.number);
                let now = checkpoint.as_ref().map(|c| c.number);
                info.checkpoint = checkpoint;
                if before != now {
                    if before.is_some() {
                        directory.previous_checkpoint = before;
                    }
                    if let Some(at) = run.written_checkpoint_at {
                        directory.checkpoint_ms = at;
                    }
                }
                self.note_pruned(pruned, run.now.0);
            }
            Err(e) => run.stop(e),
        }
    }
}
