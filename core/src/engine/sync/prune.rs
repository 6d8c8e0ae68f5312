//! Deleting our own segments that checkpoints cover (segment collection).
//!
//! A device deletes only its own segments, and only those that a checkpoint named in a
//! manifest it accepted covers. First its manifest says so (`pruned`), so that any reader who
//! sees that a segment may be gone also sees a checkpoint to start from instead; the DELETEs
//! follow at a sync at least a heartbeat period later, so that readers that listed before
//! rarely meet a missing segment. One that does lists again and adopts the checkpoint. No lock:
//! a checkpoint's writer keeps its current checkpoint, and its later ones cover at least as
//! much, so a covering checkpoint is always named somewhere.

use super::{Pending, SyncRun};
use crate::engine::Engine;
use crate::error::Result;
use crate::http::{RequestKind, Response};
use crate::ids::DeviceId;
use crate::segment::segment_name;

/// The first format whose readers know that segments may be deleted.
pub(super) const PRUNING_FORMAT: u8 = 4;
/// At most this many segments are deleted in one sync; the rest go with the next ones.
const MAX_DELETES_PER_SYNC: u64 = 1000;

impl Engine {
    /// What our manifest published now says of our deleted segments: every one of ours that the
    /// best checkpoint named in the manifests we accepted covers, and a checkpoint this replica
    /// wrote or opened itself too (a reference alone could name a damaged object), once every
    /// device that is not retired
    /// writes a format whose readers know segments may be deleted. Never less than before.
    pub(super) fn prunable(&self, run: &SyncRun) -> u64 {
        let me = self.state.device;
        let directory = self.state.directory();
        let published = directory.devices.get(&me).map_or(0, |i| i.pruned);
        // A retired device's manifest unread (damaged, for good, once its device is gone)
        // holds nothing up: it writes no more, and nobody waits for it.
        let old_reader = run
            .unread_manifests
            .iter()
            .any(|d| !directory.retired.contains(d))
            || self.reader_unaware_of_deletions();
        if old_reader {
            return published;
        }
        // Only what the best checkpoint covers: every device measuring by the same one, a new
        // device needs that one checkpoint only.
        let covered = self.best_checkpoint().map_or(0, |(_, c)| c.covers(me));
        covered
            .min(directory.verified_covers)
            .min(self.state.own().segments)
            .max(published)
    }

    /// Whether a device that is not retired writes (so reads) a format that does not know
    /// segments may be deleted, or was never read.
    pub(super) fn reader_unaware_of_deletions(&self) -> bool {
        let directory = self.state.directory();
        self.state.peers().keys().any(|d| {
            !directory.retired.contains(d)
                && directory
                    .devices
                    .get(d)
                    .is_none_or(|i| i.format < PRUNING_FORMAT)
        })
    }

    /// Our manifest saying `pruned` reached the store at `now`.
    pub(super) fn note_pruned(&mut self, pruned: u64, now: u64) {
        let me = self.state.device;
        let directory = self.state.directory_mut();
        let info = directory.devices.entry(me).or_default();
        info.pruned = info.pruned.max(pruned);
        // Also when reading our manifest back raised `pruned` first (its PUT's answer lost).
        let noted = directory.pruned_at.iter().any(|(p, _)| *p >= pruned);
        if pruned > directory.deleted && !noted {
            directory.pruned_at.push((pruned, now));
        }
    }

    /// A checkpoint this replica wrote or opened covers `covers`.
    pub(super) fn note_verified(&mut self, covers: impl IntoIterator<Item = (DeviceId, u64)>) {
        let me = self.state.device;
        if let Some((_, n)) = covers.into_iter().find(|(d, _)| *d == me) {
            let directory = self.state.directory_mut();
            directory.verified_covers = directory.verified_covers.max(n);
        }
    }

    /// Deletes our segments that our manifest has said for at least a heartbeat period may be
    /// deleted.
    pub(super) fn plan_segment_deletes(&mut self, run: &mut SyncRun) {
        let me = self.state.device;
        let settled_before = run.now.0.saturating_sub(self.heartbeat_ms());
        let directory = self.state.directory();
        let ready = directory
            .pruned_at
            .iter()
            .filter(|(_, at)| *at <= settled_before)
            .map(|(pruned, _)| *pruned)
            .max()
            .unwrap_or(0);
        let from = directory.deleted + 1;
        let to = ready.min(directory.deleted.saturating_add(MAX_DELETES_PER_SYNC));
        for seq in from..=to {
            let name = segment_name(me, seq);
            self.queue_delete(
                run,
                RequestKind::DeleteSegment,
                &name,
                Pending::DeleteSegment { seq },
            );
        }
    }

    pub(super) fn on_delete_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        response: Result<Response>,
    ) {
        let name = segment_name(self.state.device, seq);
        if let Err(e) = self.check_deleted(response, &name) {
            // Deleted again by a later sync.
            return run.report.errors.push(e);
        }
        run.deleted_segments.insert(seq);
        run.report.segments_deleted += 1;
        let directory = self.state.directory_mut();
        while run.deleted_segments.remove(&(directory.deleted + 1)) {
            directory.deleted += 1;
        }
        let deleted = directory.deleted;
        directory.pruned_at.retain(|(p, _)| *p > deleted);
    }
}
