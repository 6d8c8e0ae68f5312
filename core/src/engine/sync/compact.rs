//! Compaction: when the segments written since the best checkpoint (the *tails*) pass the
//! policy's bound, a replica that is caught up writes a checkpoint of the whole vault and
//! publishes it in its manifest. New devices then start from that one object.
//!
//! It is just another push: the checkpoint's number is a manifest sequence number issued (and
//! made durable) before its PUT goes out, so a number is never reused, and the manifest that
//! names it is written only after the checkpoint is in the store. A crash in between leaves an
//! unnamed checkpoint that nobody reads; the next compaction takes a new number.

use super::{Pending, SyncRun};
use crate::checkpoint::{self, checkpoint_name};
use crate::engine::Engine;
use crate::error::Result;
use crate::http::{Method, RequestKind, Response};
use crate::manifest::CheckpointRef;

/// When to write a checkpoint. The tails are the segments of every device that the best
/// checkpoint in the vault does not cover: what a new device fetches one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Never compact while the tails are shorter than this many segments.
    pub min_tail_segments: u64,
    /// Compact when the tails are this long, whatever their bytes.
    pub max_tail_segments: u64,
    /// Between the two, compact once what the tails cost a new device reaches the
    /// checkpoint's size divided by this: rewriting the whole vault then costs at most this
    /// many times what the tails cost.
    pub bytes_ratio: u64,
    /// What fetching one more segment costs a new device, in bytes (a request's round trip is
    /// worth some transfer): a tail costs its bytes plus this much per segment.
    pub segment_overhead_bytes: u64,
    /// The grace period, in milliseconds: a checkpoint leaves out tombstones older than this
    /// (plus twice `max_clock_skew_ms`) once every active device has merged them, and a
    /// device out of touch longer than this starts over when it returns. Every device of a
    /// vault should use the same value.
    pub grace_ms: u64,
    /// How far a device's clock may be off the true time, in milliseconds: two clocks may be
    /// twice this apart (the margin every comparison of two devices' clocks allows; further is
    /// reported, [`crate::Error::ClockApart`]).
    pub max_clock_skew_ms: u64,
    /// How far ahead of this device's clock another device's stamps may be, in milliseconds.
    /// An object stamped further ahead is held (not merged, its clock not observed) and
    /// reported with category `clock` until the clocks agree; a replica whose own clock is
    /// this far ahead of the present starts over. Keep it well above `max_clock_skew_ms`.
    pub max_future_ms: u64,
    /// A pack of this device whose live chunks (those a file still needs) fill less than this
    /// percent of it is repacked: the live chunks move into a new pack, and the old one goes.
    /// 0 never repacks.
    pub repack_live_percent: u64,
}

/// The default share of live bytes below which a pack is repacked: half.
pub const DEFAULT_REPACK_LIVE_PERCENT: u64 = 50;

/// The default grace period: 30 days.
pub const DEFAULT_GRACE_MS: u64 = 30 * 86_400_000;
/// The default bound on clock skew between devices: 1 day.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 86_400_000;
/// The default bound on how far ahead a stamp may be: 7 days.
pub const DEFAULT_MAX_FUTURE_MS: u64 = 7 * 86_400_000;

impl Default for CompactionPolicy {
    /// 16 segments at least, 1,024 at most, and between the two once the tails cost a
    /// quarter of the checkpoint, a segment counting its bytes plus 4 KiB; 30 days of grace,
    /// clocks within a day, stamps at most 7 days ahead; packs less than half live repacked.
    fn default() -> Self {
        CompactionPolicy {
            min_tail_segments: 16,
            max_tail_segments: 1024,
            bytes_ratio: 4,
            segment_overhead_bytes: 4 << 10,
            grace_ms: DEFAULT_GRACE_MS,
            max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
            max_future_ms: DEFAULT_MAX_FUTURE_MS,
            repack_live_percent: DEFAULT_REPACK_LIVE_PERCENT,
        }
    }
}

impl CompactionPolicy {
    /// Never compact by the tails (so never collect tombstones either), but to bring another
    /// device past a deletion it is stranded below (see FORMAT §8.9), and to cover the log of
    /// an id this device had before it started over, so that the log can be deleted (§8.10).
    pub const NEVER: CompactionPolicy = CompactionPolicy {
        min_tail_segments: u64::MAX,
        max_tail_segments: u64::MAX,
        bytes_ratio: 1,
        segment_overhead_bytes: 0,
        grace_ms: DEFAULT_GRACE_MS,
        max_clock_skew_ms: DEFAULT_MAX_CLOCK_SKEW_MS,
        max_future_ms: DEFAULT_MAX_FUTURE_MS,
        repack_live_percent: DEFAULT_REPACK_LIVE_PERCENT,
    };

    fn due(&self, tail_segments: u64, tail_bytes: u64, checkpoint_bytes: u64) -> bool {
        let tail_cost = tail_segments
            .saturating_mul(self.segment_overhead_bytes)
            .saturating_add(tail_bytes);
        tail_segments >= self.min_tail_segments
            && (tail_segments >= self.max_tail_segments
                || tail_cost.saturating_mul(self.bytes_ratio.max(1)) >= checkpoint_bytes)
    }
}

impl Engine {
    /// How many of the segments merged here the best checkpoint leaves to fetch one by one.
    /// (Segments held for a clock that ran ahead are not merged, and no checkpoint of ours
    /// could cover them: they do not make one due.)
    fn tail_segments(&self) -> u64 {
        let best = self.best_checkpoint().map(|(_, c)| c);
        let covered = |device| best.map_or(0, |c| c.covers(device));
        let own = self.state.own();
        let mut tail = own.segments.saturating_sub(covered(self.state.device));
        for (device, peer) in self.state.peers() {
            tail += peer.applied.saturating_sub(covered(*device));
        }
        tail
    }

    /// Whether the checkpoints this replica writes count: in a shared vault, only those of a
    /// member whose role lets it write (readers refuse the others).
    pub(super) fn may_write_checkpoints(&self) -> bool {
        !self.is_shared()
            || self.own_standing().is_some_and(|s| {
                matches!(s, crate::membership::Standing::Member(r) if r >= crate::grant::Role::Write)
            })
    }

    /// Writes a checkpoint when the policy says so, this replica has merged everything the
    /// store showed it (a checkpoint must not miss anything below what it claims to cover), and
    /// it holds no unpushed write (a checkpoint holds only what the store holds: a write that
    /// reached the store through another device's checkpoint would count as pushed and never
    /// go out in a segment; found by the simulation, seed 1252).
    pub(super) fn plan_compaction(&mut self, run: &mut SyncRun) {
        if !run.may_push || self.state.pending().is_some() || !self.state.dirty().is_empty() {
            return;
        }
        let own = self.state.own();
        let caught_up = own.segments == own.published_segments
            && own.beyond.is_empty()
            && self.merged_all_peers(run);
        if !caught_up {
            return;
        }
        let checkpoint_bytes = self.best_checkpoint().map_or(0, |(_, c)| c.bytes);
        // After a revocation, a writer re-seals the whole live state under the new key
        // generation at once (a checkpoint), whatever the tails.
        let reseal = self.is_shared()
            && self.current_generation() > self.state.directory().sharing.resealed
            && self.may_write_checkpoints();
        let due = reseal
            || self.peer_stranded_below_a_deletion()
            || self.former_log_awaits_checkpoint(run)
            || self.compaction.due(
                self.tail_segments(),
                self.state.directory().tail_bytes,
                checkpoint_bytes,
            );
        if due {
            self.write_checkpoint(run);
        } else if let Some(number) = self.own_checkpoint_to_verify() {
            self.queue_own_checkpoint_check(run, number);
        }
    }

    /// Writes a checkpoint of everything merged here (the caller checked that this replica is
    /// caught up and holds no unpushed write).
    pub(super) fn write_checkpoint(&mut self, run: &mut SyncRun) {
        let own = self.state.own();
        let me = self.state.device;
        let mut covers: Vec<_> = self
            .state
            .peers()
            .iter()
            .filter(|(_, p)| p.applied > 0)
            .map(|(d, p)| (*d, p.applied))
            .collect();
        if own.segments > 0 {
            covers.push((me, own.segments));
        }
        covers.sort_unstable();
        // Issued (and journaled) before the PUT: the number is never used for anything else.
        let number = own.manifest_seq.max(self.state.issued()) + 1;
        self.state.set_issued(number);
        // Noted before the PUT, so that a checkpoint orphaned by a crash is swept later too.
        self.state.directory_mut().own_checkpoints.push(number);
        let (horizon_ms, collected) = self.collectable_tombstones(run.now);
        run.report.collected = collected.len() as u64;
        self.forget_collected(horizon_ms, collected);
        let head = checkpoint::Head {
            writer: me,
            number,
            covers: &covers,
            clock: self.state.clock,
            horizon_ms,
        };
        // Sealed with the newest key generation: a checkpoint after a revocation re-seals the
        // whole live state where the revoked member cannot read it.
        let generation = self.current_generation();
        let (_, checkpoint_key) = self
            .log_keys(generation)
            .expect("the current generation is held");
        let body = checkpoint::seal(
            &checkpoint_key,
            self.vault,
            &head,
            self.state.records(),
            self.compression,
            &mut self.entropy,
        );
        let body = self.sign_object(&checkpoint_name(me, number), generation, body);
        let reference = CheckpointRef {
            number,
            covers,
            bytes: body.len() as u64,
        };
        run.written_checkpoint_at = Some(run.now.0);
        let url = self.vault_url(&checkpoint_name(me, number));
        let mut op = self.op(
            RequestKind::PutCheckpoint,
            Method::Put,
            url,
            Pending::PutCheckpoint { reference },
        );
        op.body = body.into();
        run.push(op);
    }

    /// Deletes our checkpoints other than the one our manifest names and the one before it
    /// (kept for readers that listed a moment ago). A reader whose checkpoint is gone fetches
    /// the segments instead: nothing depends on a checkpoint being there.
    pub(super) fn plan_sweep(&mut self, run: &mut SyncRun) {
        let me = self.state.device;
        let directory = self.state.directory();
        let Some(published) = directory
            .devices
            .get(&me)
            .and_then(|i| i.checkpoint.as_ref())
            .map(|c| c.number)
        else {
            return;
        };
        let previous = directory.previous_checkpoint;
        let sweep: Vec<u64> = directory
            .own_checkpoints
            .iter()
            .copied()
            .filter(|n| *n != published && Some(*n) != previous)
            .collect();
        for number in sweep {
            let name = checkpoint_name(me, number);
            self.queue_delete(
                run,
                RequestKind::DeleteCheckpoint,
                &name,
                Pending::DeleteCheckpoint { number },
            );
        }
    }

    pub(super) fn on_delete_checkpoint(
        &mut self,
        run: &mut SyncRun,
        number: u64,
        response: Result<Response>,
    ) {
        let name = checkpoint_name(self.state.device, number);
        if let Err(e) = self.check_deleted(response, &name) {
            // Tried again after the next sync that pushes; this sync's work is done.
            return run.report.errors.push(e);
        }
        self.state
            .directory_mut()
            .own_checkpoints
            .retain(|n| *n != number);
    }

    pub(super) fn on_put_checkpoint(
        &mut self,
        run: &mut SyncRun,
        reference: CheckpointRef,
        response: Result<Response>,
    ) {
        let name = checkpoint_name(self.state.device, reference.number);
        match self.check(response, || format!("PUT {name}")) {
            Ok(_) => {
                let generation = self.current_generation();
                let directory = self.state.directory_mut();
                directory.tail_bytes = 0;
                directory.sharing.resealed = directory.sharing.resealed.max(generation);
                self.note_verified(reference.covers.iter().copied());
                run.report.compacted = true;
                self.plan_publish(run, Some(reference));
            }
            // What was pushed stays pushed; the next sync compacts again.
            Err(e) => run.note_failure(e),
        }
    }
}
