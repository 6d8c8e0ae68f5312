//! Garbage collection of tombstones, and devices that went away.
//!
//! A checkpoint may leave out a tombstone once nobody can bring back what it deleted:
//!
//! - it is older than the grace period (plus twice the allowed clock skew) measured from our
//!   previous checkpoint, so it was in the store, and in that checkpoint, by then: a device
//!   never holds an unpushed write longer than the grace period (it starts over instead);
//! - every active device has merged everything that previous checkpoint covers (their
//!   manifests' merged vectors say so), so each holds the tombstone, and any older write of
//!   theirs went out before that manifest, where our caught-up replica merged it already.
//!
//! A device is active unless it is retired or silent (its manifest older than the grace period
//! plus the margin). A device that is silent longer than the grace period by its own clock, or
//! finds itself retired, **starts over**: a new device id, an empty replica rebuilt from the
//! vault, and its unpushed writes applied again as new writes with fresh stamps. Its old id is
//! retired in its new manifest, so nobody waits for it.
//!
//! The checkpoint records the *horizon* below which tombstones may be missing. A replica that
//! adopts it drops what it holds from before the horizon that the checkpoint lacks: those are
//! deleted records whose tombstones were collected.

use std::collections::HashSet;

use super::SyncRun;
use crate::checkpoint::Checkpoint;
use crate::clock::Stamp;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ids::{DeviceId, Timestamp};
use crate::record::Record;

/// The first format whose writers send heartbeats and start over.
const COLLECTING_FORMAT: u8 = 3;

impl Engine {
    /// The margin every comparison of two devices' clocks allows.
    pub(super) fn clock_margin_ms(&self) -> u64 {
        self.compaction.max_clock_skew_ms.saturating_mul(2)
    }

    /// The grace period with that margin: how old something must be, by another device's
    /// clock, to be past the grace period by ours.
    pub(super) fn grace_with_margin_ms(&self) -> u64 {
        self.compaction
            .grace_ms
            .saturating_add(self.clock_margin_ms())
    }

    /// Whether a peer whose manifest we could not read (again) is not retired: it is not known
    /// to have merged anything.
    pub(super) fn unread_peer_manifest(&self) -> bool {
        let directory = self.state.directory();
        self.state
            .peers()
            .keys()
            .any(|d| !directory.devices.contains_key(d) && !directory.retired.contains(d))
    }

    /// How often a device that is in touch publishes its manifest, pushing or not, so that
    /// others see what it merged and that it is alive.
    pub(super) fn heartbeat_ms(&self) -> u64 {
        self.compaction.grace_ms / 8
    }

    /// Whether this replica has been out of touch longer than the grace period: since its last
    /// caught-up sync, or, when it never had one here (a new replica, or a state from an older
    /// release), since its last activity or its oldest unpushed write, whichever is older. A
    /// write in a segment of ours that no manifest names (a crash between the two PUTs) counts
    /// as unpushed: nobody reads it (found by the simulation, seed 117190: a checkpoint
    /// adopted meanwhile dropped it as collected).
    pub(in crate::engine) fn silent_too_long(&self, now: Timestamp) -> bool {
        let caught_up = self.state.directory().caught_up_ms;
        let since = if caught_up > 0 {
            caught_up
        } else {
            let unnamed = self.state.directory().unnamed_from.map(|h| h.wall_ms);
            let oldest_unpushed = self
                .state
                .dirty()
                .iter()
                .filter_map(|k| self.state.latest_own(k))
                .map(|r| r.stamp.hlc.wall_ms)
                .chain(unnamed)
                .min();
            let last_activity = self.state.clock.wall_ms;
            oldest_unpushed.map_or(last_activity, |o| o.min(last_activity))
        };
        since > 0 && now.0 > since.saturating_add(self.compaction.grace_ms)
    }

    /// Notes the start of a sync that ended with everything pulled and pushed.
    pub(super) fn note_caught_up(&mut self, run: &SyncRun) {
        let own = self.state.own();
        let caught_up = run.may_push
            && self.state.dirty().is_empty()
            && self.state.pending().is_none()
            && own.published_segments == own.segments
            && self.merged_all_peers(run);
        if caught_up && self.state.directory().caught_up_ms < run.now.0 {
            self.state.directory_mut().caught_up_ms = run.now.0;
        }
    }

    /// Starts over under a new device id: see the module documentation. What is applied again:
    /// every key whose current record is
    ///
    /// - our write (under this id) that is unpushed, or newer than our last manifest that
    ///   reached the store, or as new as the oldest write in a segment of ours that no manifest
    ///   names (pushed there, but nobody reads it: the manifest's clock, taken when it is
    ///   written, does not tell);
    /// - our write under this id or a former one whose latest manifest is stamped too far
    ///   ahead: every other replica holds that manifest, so nothing it names is known to have
    ///   reached anyone (a clock that ran ahead, and may have started over while ahead);
    /// - stamped by a clock that ran too far ahead, whoever's: every other replica holds it.
    ///
    /// While we keep a leap, our records stamped more than the bound beyond it are kept as they
    /// are (see the comment inside). Our writes that already lost to a newer one stay lost.
    /// When our clock ran ahead, the new id's clock goes back to the greatest stamp within the
    /// bound that this replica holds, so what it writes again lands above what it wrote (and
    /// saw) before its clock ran away.
    pub(super) fn start_over(&mut self, run: &mut SyncRun, now: Timestamp) {
        let old = self.state.device;
        let limit = self.future_limit(now);
        let directory = self.state.directory();
        let published = directory.devices.get(&old).map(|i| i.clock);
        let unnamed = directory.unnamed_from;
        let held_ids: HashSet<DeviceId> = directory
            .former_ids
            .iter()
            .chain([&old])
            .filter(|d| {
                directory
                    .devices
                    .get(*d)
                    .is_some_and(|i| i.clock.wall_ms > limit)
            })
            .copied()
            .collect();
        let dirty = self.state.dirty();
        let mut unpushed: Vec<(Vec<u8>, Option<Vec<u8>>)> = self
            .state
            .records()
            .iter()
            .filter(|(k, r)| {
                let stamp = r.stamp;
                stamp.hlc.wall_ms > limit
                    || held_ids.contains(&stamp.device)
                    || (stamp.device == old
                        && (dirty.contains(*k)
                            || published.is_none_or(|p| stamp.hlc > p)
                            || unnamed.is_some_and(|u| stamp.hlc >= u)))
            })
            .map(|(k, r)| (k.clone(), r.value.clone()))
            .collect();
        unpushed.sort_unstable();
        // While we keep a leap (our clock may be running ahead), our writes stamped beyond its
        // bound that are not written again above are kept as they are: once the clock comes
        // back, everyone holds the objects naming them, this replica too, so the new id could
        // not read them again; kept, they are written again when it starts over in the present.
        // A clock ahead from its first reading leaves no leap: then what lies beyond the bound
        // of every other device's latest manifest is kept (no tombstone any of them collected
        // can be stamped above it), or, knowing no other device, all of it: every record here
        // is ours then, and the new id reads back from the store whatever of it is readable
        // anyway (a tombstone collected by a device we never heard of is in no checkpoint
        // whose horizon passed it, and the new id adopts one before anything else: see
        // `drop_collected`). Cut at the grace period by our own clock instead, a clock ahead
        // since its first reading dropped what it had pushed longer ago than that, which
        // everyone holds (found by the simulation, seed 94072).
        let ours = |d: &DeviceId| *d == old || directory.former_ids.contains(d);
        let bound = self.compaction.max_future_ms;
        let beyond = match directory.leap {
            Some(leap) => leap.wall_ms.saturating_add(bound),
            None => directory
                .devices
                .iter()
                .filter(|(d, _)| !ours(d))
                .map(|(_, i)| i.clock.wall_ms.saturating_add(bound))
                .max()
                .unwrap_or(0),
        };
        let mut kept: Vec<(Vec<u8>, Record)> = self
            .state
            .records()
            .iter()
            .filter(|(k, r)| {
                ours(&r.stamp.device)
                    && r.stamp.hlc.wall_ms > beyond
                    && unpushed.binary_search_by(|(u, _)| u.cmp(k)).is_err()
            })
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        kept.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Above what we wrote before our clock leapt (superseded since, perhaps, by what it
        // stamped beyond the bound) and above everything we hold within the bound.
        let leap = self.state.directory().leap.filter(|l| l.wall_ms <= limit);
        let floor = self
            .state
            .greatest_stamp_within(limit)
            .max(leap.unwrap_or_default());
        let new = DeviceId::from_entropy(&mut self.entropy);
        let dropped: Vec<(Vec<u8>, Stamp)> = self
            .state
            .records()
            .iter()
            .map(|(k, r)| (k.clone(), r.stamp))
            .collect();
        self.note_forgotten(dropped);
        self.state.start_over(new);
        if self.state.clock.wall_ms > limit {
            self.state.clock = floor;
            self.state.directory_mut().leap = None;
        }
        let directory = self.state.directory_mut();
        directory.retired.insert(old);
        directory.former_ids.insert(old);
        // The new id signs as the old one did: the replica is the same person's.
        if let Some(signer) = directory.sharing.signers.get(&old).copied() {
            directory.sharing.signers.insert(new, signer);
        }
        // Our new manifest says the old id is retired, even when there is nothing to push.
        self.state.own_mut().republish = true;
        for (key, record) in kept {
            self.state.merge(key, record);
        }
        for (key, value) in unpushed {
            let stamp = Stamp {
                hlc: self.tick(now),
                device: new,
            };
            self.state.mark_dirty(key.clone());
            self.state.merge(key.clone(), Record { value, stamp });
            run.report.restamped.push(key);
        }
        run.report.started_over = Some(old);
    }

    /// Marks `device` retired: tombstones stop waiting for it, and if it comes back it starts
    /// over. Said in our manifest at the next sync.
    ///
    /// # Errors
    /// `Config` for this replica's own id (it cannot retire itself while in use), and for a
    /// device this replica has never heard of.
    pub fn retire(&mut self, device: DeviceId) -> Result<()> {
        if device == self.state.device {
            return Err(Error::Config(
                "a device cannot retire itself; retire it from another device".into(),
            ));
        }
        if !self.state.directory().devices.contains_key(&device) {
            return Err(Error::Config(format!(
                "device {device} is not known here; sync first, or check the id in devices()"
            )));
        }
        if self.state.directory_mut().retired.insert(device) {
            self.state.own_mut().republish = true;
        }
        Ok(())
    }

    /// Whether this replica was `device` before it started over.
    pub fn was_device(&self, device: DeviceId) -> bool {
        self.state.directory().former_ids.contains(&device)
    }

    /// Whether `device` is retired (as far as this replica knows).
    pub fn is_retired(&self, device: DeviceId) -> bool {
        self.state.directory().retired.contains(&device)
    }

    /// The tombstones the next checkpoint (written at `now`) may leave out, and the horizon it
    /// then records.
    pub(super) fn collectable_tombstones(&self, now: Timestamp) -> (u64, HashSet<Vec<u8>>) {
        let none = (self.state.directory().horizon_ms, HashSet::new());
        // Our clock may have run ahead: every peer may look silent, and our own tombstones
        // old, only because of it.
        if self.clock_in_doubt(now) {
            return none;
        }
        let directory = self.state.directory();
        let me = self.state.device;
        let Some(previous) = directory
            .devices
            .get(&me)
            .and_then(|i| i.checkpoint.as_ref())
        else {
            return none;
        };
        let margin = self.grace_with_margin_ms();
        // A clock that ran ahead when the previous checkpoint was written must not move the
        // horizon ahead of what the present allows.
        let horizon = directory.checkpoint_ms.min(now.0).saturating_sub(margin);
        if horizon == 0 {
            return none;
        }
        if self.unread_peer_manifest() {
            return none;
        }
        // Devices silent since before this count as gone: they start over when they return (a
        // device that is in touch publishes at least every heartbeat).
        let silent_before = directory
            .checkpoint_ms
            .saturating_sub(margin.saturating_add(self.heartbeat_ms()));
        for (device, info) in &directory.devices {
            if *device == me
                || directory.retired.contains(device)
                || info.clock.wall_ms < silent_before
            {
                continue;
            }
            // A device on an older format neither sends heartbeats nor starts over: nothing is
            // collected while one is active.
            if info.format < COLLECTING_FORMAT {
                return none;
            }
            let has = |of: &DeviceId| {
                if of == device {
                    self.state.peer(device).map_or(0, |p| p.segments)
                } else {
                    info.merged
                        .iter()
                        .find(|(d, _)| d == of)
                        .map_or(0, |(_, n)| *n)
                }
            };
            if previous.covers.iter().any(|(of, n)| has(of) < *n) {
                return none;
            }
        }
        let dirty = self.state.dirty();
        let dropped = self
            .state
            .records()
            .iter()
            .filter(|(k, r)| {
                r.value.is_none() && r.stamp.hlc.wall_ms < horizon && !dirty.contains(*k)
            })
            .map(|(k, _)| k.clone())
            .collect();
        (horizon.max(directory.horizon_ms), dropped)
    }

    /// Forgets the tombstones the checkpoint about to be written collects.
    pub(super) fn forget_collected(&mut self, horizon_ms: u64, dropped: HashSet<Vec<u8>>) {
        for key in &dropped {
            self.state.remove(key);
        }
        let directory = self.state.directory_mut();
        directory.horizon_ms = directory.horizon_ms.max(horizon_ms);
    }

    /// Before adopting `checkpoint`: drops what this replica holds from before its horizon that
    /// it lacks (deleted records whose tombstones were collected). Unpushed writes stay.
    /// Returns the keys dropped that had a value (a deletion this replica had not seen).
    pub(super) fn drop_collected(&mut self, checkpoint: &Checkpoint) -> Vec<Vec<u8>> {
        let horizon = checkpoint.horizon_ms;
        if horizon == 0 {
            return Vec::new();
        }
        let held = |key: &[u8]| {
            checkpoint
                .records
                .binary_search_by(|(k, _)| k.as_slice().cmp(key))
                .is_ok()
        };
        let dirty = self.state.dirty();
        let gone: Vec<Vec<u8>> = self
            .state
            .records()
            .iter()
            .filter(|(k, r)| r.stamp.hlc.wall_ms < horizon && !dirty.contains(*k) && !held(k))
            .map(|(k, _)| k.clone())
            .collect();
        let mut deleted = Vec::new();
        for key in gone {
            if self
                .state
                .records()
                .get(&key)
                .is_some_and(|r| r.value.is_some())
            {
                deleted.push(key.clone());
            }
            self.state.remove(&key);
        }
        let directory = self.state.directory_mut();
        directory.horizon_ms = directory.horizon_ms.max(horizon);
        deleted
    }
}
