//! Collecting what our former ids left in the store: their segments and checkpoints.
//!
//! A replica that starts over (`gc.rs`) leaves its old id's log behind: segments, checkpoints
//! (each a copy of the whole vault) and the manifest naming them. Only the replica may delete
//! them, and the old id writes no more, so without this they would stay for good, one more
//! whole-vault copy at each start-over. The new id collects them under the rules its own log
//! follows (FORMAT 8.9), in two steps, with no lock and no state of their own (what the store
//! shows says where each former id stands):
//!
//! 1. **Close.** Once our checkpoint (named in our manifest, written by us) covers every
//!    segment the former id's manifest names, and the checkpoints other manifests name cover
//!    every device's deleted segments without the former id's, the former id's manifest is
//!    written once more: the same log, all of it `pruned`, no checkpoint, stamped with our
//!    clock. A reader missing any of it then starts from a checkpoint, as for any deleted
//!    segment. When only our checkpoint is missing, compaction writes one (`compact.rs`).
//! 2. **Delete**, at a sync a heartbeat period after the closing manifest's stamp (readers
//!    that listed before it have moved on): the former id's segments and checkpoints are
//!    listed and deleted, those that no manifest ever named too (a crash between two PUTs).
//!
//! The closed manifest stays (a few hundred bytes), so that every reader still sees where the
//! old log ended, and the id stays a former one: an app may still name the replica by it, and
//! its packs are collected as before (`packs.rs`).

use std::collections::HashMap;

use super::{Pending, SyncRun, MAX_LIST_PAGES};
use crate::checkpoint::{checkpoint_name, parse_checkpoint_name, CHECKPOINT_FOLDER};
use crate::engine::Engine;
use crate::error::Result;
use crate::http::{Method, RequestKind, Response};
use crate::ids::DeviceId;
use crate::manifest::{manifest_name, Manifest};
use crate::s3;
use crate::segment::segment_name;

/// At most this many objects of former ids are deleted in one sync; the rest go with the next
/// ones.
const MAX_DELETES_PER_SYNC: usize = 1000;

/// The two folders of a former id's log that are listed to be deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogFolder {
    Segments,
    Checkpoints,
}

impl LogFolder {
    /// The folder's prefix for `device`, inside the vault folder.
    fn prefix(self, device: DeviceId) -> String {
        match self {
            LogFolder::Segments => format!("s/{device}/"),
            LogFolder::Checkpoints => format!("{CHECKPOINT_FOLDER}{device}/"),
        }
    }

    fn request_kind(self, delete: bool) -> RequestKind {
        match (self, delete) {
            (LogFolder::Segments, false) => RequestKind::ListSegments,
            (LogFolder::Segments, true) => RequestKind::DeleteSegment,
            (LogFolder::Checkpoints, false) => RequestKind::ListCheckpoints,
            (LogFolder::Checkpoints, true) => RequestKind::DeleteCheckpoint,
        }
    }
}

/// A run's listings of former ids' logs: per id, the listings not yet answered to the end, and
/// whether anything was found (or a listing failed).
#[derive(Debug, Default)]
pub(crate) struct FormerLogs {
    lists: HashMap<DeviceId, (u8, bool)>,
    deletes: usize,
}

impl Engine {
    /// Whether `device` is a former id of ours whose log is still open (its manifest names a
    /// checkpoint, or segments not said to be deleted) and, but for a checkpoint of ours that
    /// covers it, may be closed now. (A reader keeps the checkpoint it knew when a manifest
    /// names none, so the close itself forgets it here.)
    fn former_log_closable(&self, run: &SyncRun, device: DeviceId) -> bool {
        let directory = self.state.directory();
        let (Some(info), Some(peer)) = (directory.devices.get(&device), self.state.peer(&device))
        else {
            return false;
        };
        let open = info.checkpoint.is_some() || info.pruned < peer.segments;
        open && directory.former_ids.contains(&device)
            && run.listed_devices.contains(&device)
            && !run.unread_manifests.contains(&device)
            // Every PUT of the old id has landed (a request lands within the margin of being
            // sent, and the last was sent before we started over, before our checkpoint).
            && info.clock.wall_ms.saturating_add(self.clock_margin_ms()) <= run.now.0
            && directory.checkpoint_ms.saturating_add(self.clock_margin_ms()) <= run.now.0
            // Merged whole here: a checkpoint of ours would cover all of it.
            && peer.applied >= peer.segments
    }

    /// Whether a former id's log could be closed but for a checkpoint of ours covering it, and
    /// one written now would (it covers everything merged): compaction then writes one, and
    /// the log closes once that checkpoint is a margin old (so this holds once).
    pub(super) fn former_log_awaits_checkpoint(&self, run: &SyncRun) -> bool {
        let me = self.state.device;
        let directory = self.state.directory();
        let ours = directory
            .devices
            .get(&me)
            .and_then(|i| i.checkpoint.as_ref());
        let would = |d: DeviceId| self.applied_of(d);
        self.former_logs_may_go(run)
            && directory.former_ids.iter().any(|d| {
                let open = directory
                    .devices
                    .get(d)
                    .is_some_and(|i| i.checkpoint.is_some() || i.pruned < self.applied_of(*d));
                open && run.listed_devices.contains(d)
                    && !run.unread_manifests.contains(d)
                    && !self.closing_covered(*d, |e| ours.map_or(0, |c| c.covers(e)))
                    && self.closing_covered(*d, would)
            })
    }

    /// Whether this run may close or delete former ids' logs: it read every manifest and
    /// merged everything, our clock is trusted and a peer agrees with it, every device that is
    /// not retired reads a format that knows segments may be deleted, and our checkpoints
    /// count.
    fn former_logs_may_go(&self, run: &SyncRun) -> bool {
        self.read_and_merged_all(run)
            && !self.clock_in_doubt(run.now)
            && self.clock_confirmed_by_a_peer()
            && !self.reader_unaware_of_deletions()
            && self.may_write_checkpoints()
    }

    /// Whether an active peer's latest manifest shows that nothing we stamp now is held by it:
    /// our clock is within the future bound of that stamp (its clock is at least there). The
    /// checkpoint that covers a closed log is named in our manifest; stamped by a clock that
    /// ran ahead, that manifest would be held by every other device, and by ourselves once the
    /// clock came back and we started over, leaving the closed log covered by nothing anyone
    /// reads (found by the simulation, seed 16569). Alone in the vault, nobody can say, and a
    /// former id's log stays.
    fn clock_confirmed_by_a_peer(&self) -> bool {
        let bound = self.compaction.max_future_ms;
        let ours = self.state.clock.wall_ms;
        self.active_peers()
            .any(|(_, info)| info.clock.wall_ms.saturating_add(bound) >= ours)
    }

    /// Whether closing `former`'s log leaves every segment said to be deleted covered: our
    /// checkpoint covers all of `former`'s, and the checkpoints named by others than `former`
    /// cover every other device as far as its manifest says its segments may be gone.
    fn closing_covered(&self, former: DeviceId, ours: impl Fn(DeviceId) -> u64) -> bool {
        let directory = self.state.directory();
        let me = self.state.device;
        let segments = self.state.peer(&former).map_or(0, |p| p.segments);
        if ours(former) < segments {
            return false;
        }
        directory
            .devices
            .iter()
            .filter(|(d, info)| **d != former && info.pruned > 0)
            .all(|(d, info)| {
                ours(*d) >= info.pruned || self.named_cover(*d, info.pruned, &[former, me])
            })
    }

    /// [`Engine::closing_covered`] by the checkpoint our manifest names.
    fn covered_by_ours(&self, former: DeviceId) -> bool {
        let me = self.state.device;
        let ours = self
            .state
            .directory()
            .devices
            .get(&me)
            .and_then(|i| i.checkpoint.clone());
        match ours {
            Some(c) => self.closing_covered(former, |d| c.covers(d)),
            None => false,
        }
    }

    /// Closes the log of each former id that may be closed, and lists the logs of those
    /// closed a heartbeat period ago (once a process, or until nothing is found) to delete
    /// them: still only while our checkpoint covers them (a log may look closed because its
    /// manifest was written by a state that forgot its checkpoint).
    pub(super) fn plan_former_logs(&mut self, run: &mut SyncRun) {
        if !self.former_logs_may_go(run) {
            return;
        }
        let formers: Vec<DeviceId> = self.state.directory().former_ids.iter().copied().collect();
        for former in formers {
            if self.former_log_closable(run, former) {
                if self.covered_by_ours(former) {
                    self.queue_close(run, former);
                }
            } else if self.former_log_closed(run, former)
                && !self.former_logs_gone.contains(&former)
                && self.covered_by_ours(former)
            {
                run.former_logs.lists.insert(former, (2, false));
                for folder in [LogFolder::Segments, LogFolder::Checkpoints] {
                    self.queue_former_list(run, former, folder, None);
                }
            }
        }
    }

    /// Whether `former`'s log is closed (its manifest names no checkpoint, and says all its
    /// segments may be deleted), by a manifest stamped at least a heartbeat period ago.
    fn former_log_closed(&self, run: &SyncRun, former: DeviceId) -> bool {
        let directory = self.state.directory();
        let (Some(info), Some(peer)) = (directory.devices.get(&former), self.state.peer(&former))
        else {
            return false;
        };
        directory.former_ids.contains(&former)
            && run.listed_devices.contains(&former)
            && info.checkpoint.is_none()
            && info.pruned >= peer.segments
            && info.clock.wall_ms.saturating_add(self.heartbeat_ms()) <= run.now.0
            // Listed for a grace period after the close, no longer: a log whose objects could
            // not all be deleted by then (DELETEs refused, say) is left as it is.
            && run.now.0 < info.clock.wall_ms.saturating_add(self.compaction.grace_ms)
    }

    /// The former id's manifest once more: its log, all of it said to be deleted, and no
    /// checkpoint (ours covers it).
    fn queue_close(&mut self, run: &mut SyncRun, former: DeviceId) {
        let clock = self.tick(run.now);
        let directory = self.state.directory();
        let (Some(info), Some(peer)) = (directory.devices.get(&former), self.state.peer(&former))
        else {
            return;
        };
        let manifest = Manifest {
            device: former,
            seq: peer.manifest_seq + 1,
            segments: peer.segments,
            clock,
            merged: info.merged.clone(),
            label: info.label.clone(),
            checkpoint: None,
            retired: self.published_retired(),
            pruned: peer.segments,
            members: self.published_statements(),
        };
        let name = manifest_name(former);
        let body = manifest.seal(&self.manifest_key, self.vault, &mut self.entropy);
        let body = self.sign_object(&name, 0, body);
        let url = self.vault_url(&name);
        let mut op = self.op(
            RequestKind::PutManifest,
            Method::Put,
            url,
            Pending::CloseFormerLog { device: former },
        );
        op.body = body.into();
        run.push(op);
    }

    pub(super) fn on_close_former_log(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        response: Result<Response>,
    ) {
        let name = manifest_name(device);
        match self.check(response, || format!("PUT {name}")) {
            // Read back at the next sync, as any manifest. Meanwhile its old checkpoint is no
            // longer named (a manifest naming none leaves a reader with the one it knew).
            Ok(_) => {
                self.forget_manifest_etag(device);
                let segments = self.state.peer(&device).map_or(0, |p| p.segments);
                if let Some(info) = self.state.directory_mut().devices.get_mut(&device) {
                    info.checkpoint = None;
                    info.pruned = info.pruned.max(segments);
                }
            }
            // Closed at a later sync.
            Err(e) => run.report.errors.push(e),
        }
    }

    fn queue_former_list(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        folder: LogFolder,
        token: Option<&str>,
    ) {
        let prefix = format!("{}{}", self.folder, folder.prefix(device));
        let url = self.store.list_url(&prefix, token);
        let pending = Pending::ListFormerLog { device, folder };
        let op = self.op(folder.request_kind(false), Method::Get, url, pending);
        run.push(op);
    }

    /// One page of the listing of a former id's segments or checkpoints: each object found is
    /// deleted. A former id whose two listings find nothing is not listed again by this
    /// process.
    pub(super) fn on_former_list(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        folder: LogFolder,
        response: Result<Response>,
    ) {
        let page = self
            .check(response, || format!("LIST {}", folder.prefix(device)))
            .and_then(|r| s3::parse_list(&r.body));
        let mut finished = true;
        let mut found = false;
        match page {
            Ok(page) => {
                for (key, _) in &page.objects {
                    let Some(name) = key.strip_prefix(&self.folder) else {
                        continue;
                    };
                    let ours = match folder {
                        LogFolder::Segments => name
                            .strip_prefix(&folder.prefix(device))
                            .and_then(|seq| u64::from_str_radix(seq, 16).ok())
                            .is_some_and(|seq| segment_name(device, seq) == name),
                        LogFolder::Checkpoints => name
                            .strip_prefix(CHECKPOINT_FOLDER)
                            .and_then(parse_checkpoint_name)
                            .is_some_and(|(writer, number)| {
                                writer == device && checkpoint_name(writer, number) == name
                            }),
                    };
                    if !ours {
                        continue;
                    }
                    found = true;
                    if run.former_logs.deletes < MAX_DELETES_PER_SYNC {
                        run.former_logs.deletes += 1;
                        let name = name.to_owned();
                        let pending = Pending::DeleteFormerLog { name: name.clone() };
                        self.queue_delete(run, folder.request_kind(true), &name, pending);
                    }
                }
                // No further than this sync deletes: the next one lists again.
                let more = run.former_logs.deletes < MAX_DELETES_PER_SYNC;
                if let Some(token) = page.next_token.filter(|_| more) {
                    if run.seen_tokens.len() < MAX_LIST_PAGES
                        && run.seen_tokens.insert(token.clone())
                    {
                        finished = false;
                        self.queue_former_list(run, device, folder, Some(&token));
                    }
                }
            }
            Err(e) => {
                found = true;
                run.report.errors.push(e);
            }
        }
        let Some((left, any)) = run.former_logs.lists.get_mut(&device) else {
            return;
        };
        *any |= found;
        if finished {
            *left -= 1;
            if *left == 0 && !*any {
                self.former_logs_gone.insert(device);
            }
        }
    }

    pub(super) fn on_delete_former_log(
        &mut self,
        run: &mut SyncRun,
        name: String,
        response: Result<Response>,
    ) {
        match self.check_deleted(response, &name) {
            Ok(()) if name.starts_with("s/") => run.report.segments_deleted += 1,
            Ok(()) => {}
            // Listed and deleted again at a later sync.
            Err(e) => run.report.errors.push(e),
        }
    }
}
