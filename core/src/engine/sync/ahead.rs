//! Clocks that ran ahead. A hybrid logical clock moves past every stamp it observes, and the
//! greatest stamp wins: one device whose date is set to 2100 would drag every clock it reaches
//! to 2100 and make its writes unbeatable. So a stamp further ahead of this device's clock than
//! the policy's `max_future_ms` is *held*: the object carrying it (a manifest whose clock, a
//! segment or checkpoint one of whose records, is that far ahead) is not merged and its clock
//! not observed; the report says so (category `clock`, naming the device), and the object is
//! read again at each sync, so it is merged once the clocks agree. Nothing is dropped, so every
//! replica still ends with the same records.
//!
//! Held is the reading, not what sits beside it: a held manifest's segments are read (what
//! its device wrote before its clock ran ahead is stamped within the bound, and may be in no
//! other object), and of a held segment what it holds within the bound is merged. Such a
//! device holds nothing else up: a sync that merged all the rest is caught up, and may write
//! a checkpoint ([`Engine::merged_all_peers`]).
//!
//! A replica whose own clock is that far ahead of the present (its date was wrong and was
//! fixed) starts over under a new id, writing again what its runaway clock stamped (the others
//! hold those stamps, and would until the present reaches them) above what it wrote before the
//! clock leapt. The old id is retired, and a retired device's held objects are skipped without
//! a word. While a leap is not confirmed by a peer, no tombstone is collected.

use super::SyncRun;
use crate::clock::Hlc;
use crate::engine::state::DeviceInfo;
use crate::engine::Engine;
use crate::error::{Error, LOCAL_CLOCK};
use crate::ids::{DeviceId, Timestamp};

impl Engine {
    /// The greatest wall time (ms) a stamp read at `now` may carry.
    pub(super) fn future_limit(&self, now: Timestamp) -> u64 {
        now.0.saturating_add(self.compaction.max_future_ms)
    }

    /// Whether `hlc`, read at `now`, is too far ahead to merge.
    pub(super) fn too_far_ahead(&self, hlc: Hlc, now: Timestamp) -> bool {
        hlc.wall_ms > self.future_limit(now)
    }

    /// Advances our clock to `now` for a stamp of ours, noting a leap further ahead than the
    /// bound (kept in the directory until a peer confirms the present: see
    /// [`Engine::confirm_present`]).
    pub(in crate::engine) fn tick(&mut self, now: Timestamp) -> Hlc {
        let clock = self.state.clock;
        let leaps = clock.wall_ms > 0 && self.too_far_ahead(Hlc::at(now), Timestamp(clock.wall_ms));
        if leaps && self.state.directory().leap.is_none() {
            self.state.directory_mut().leap = Some(clock);
        }
        self.state.clock.tick(now)
    }

    /// Whether `info`'s device wrote its latest manifest with a clock further ahead of ours
    /// than the bound: everyone holds it (what a clock that ran ahead wrote, our own former
    /// ids' included after we started over), so nothing it names is read here.
    pub(super) fn held_by_everyone(&self, info: &DeviceInfo) -> bool {
        self.too_far_ahead(info.clock, Timestamp(self.state.clock.wall_ms))
    }

    /// Whether this run merged every segment its peers' manifests name, but for the segments
    /// of devices held in it (a manifest or a segment stamped too far ahead): what they wrote
    /// beyond the bound waits for the clocks to agree, and holds nothing else up.
    pub(super) fn merged_all_peers(&self, run: &SyncRun) -> bool {
        self.state
            .peers()
            .iter()
            .all(|(d, p)| p.applied >= p.segments || run.held_devices.contains(d))
    }

    /// Other devices of the vault that are not retired, with what their manifests said.
    pub(super) fn active_peers(&self) -> impl Iterator<Item = (&DeviceId, &DeviceInfo)> {
        let directory = self.state.directory();
        let me = self.state.device;
        directory.devices.iter().filter(move |(d, _)| {
            **d != me && !directory.former_ids.contains(*d) && !directory.retired.contains(*d)
        })
    }

    /// A peer wrote a manifest stamped `clock` after we last read one of its manifests (or we
    /// read one of its manifests for the first time), so after the start of our last caught-up
    /// sync, which read every manifest there was (a listing that lagged omits only what is
    /// seconds old). When that stamp lies further behind that start than
    /// the bound, the two clocks disagree by more than the bound: ours may have run ahead without
    /// a leap to show it (it was ahead from its first reading, or the state that saw the leap was
    /// lost). Then it counts as a leap from that peer's reading, until a peer confirms the
    /// present ([`Engine::confirm_present`]): meanwhile every peer may look silent, and our own
    /// deletions old, only because our clock ran ahead, so nothing is collected, and if we start
    /// over what we stamped since is kept.
    pub(super) fn suspect_own_clock(&mut self, peer: DeviceId, clock: Hlc) {
        let directory = self.state.directory();
        let since = directory.caught_up_ms;
        if directory.leap.is_none()
            && !directory.retired.contains(&peer)
            && !directory.former_ids.contains(&peer)
            && since > 0
            && clock.wall_ms.saturating_add(self.compaction.max_future_ms) < since
        {
            self.state.directory_mut().leap = Some(clock);
        }
    }

    /// After the manifests are read, in a sync started at `now`: forgets our clock's leap once a
    /// peer's latest manifest is stamped within the bound of that present (its clock and ours
    /// agree, so ours did not run ahead of the world).
    pub(super) fn confirm_present(&mut self, now: Timestamp) {
        // A sync that started before the leap (its `now` behind our clock) confirms nothing.
        if self.state.directory().leap.is_none() || self.own_clock_ran_ahead(now) {
            return;
        }
        let limit = self.compaction.max_future_ms;
        let agreed = self
            .active_peers()
            .any(|(_, info)| info.clock.wall_ms.saturating_add(limit) >= now.0);
        if agreed {
            self.state.directory_mut().leap = None;
        }
    }

    /// Whether our clock, read as `now`, may have run ahead of the world, while there are
    /// peers: it leapt and no peer has confirmed the present since; or this replica was never
    /// caught up (since it started over) and no peer's latest manifest is stamped within the
    /// bound of it (a clock ahead from its first reading leaves no leap to show it, and
    /// [`Engine::suspect_own_clock`] needs a caught-up sync to compare with). Then their
    /// manifests may look silent, and our tombstones and packs old, only because our clock ran
    /// ahead: nothing is collected.
    pub(super) fn clock_in_doubt(&self, now: Timestamp) -> bool {
        let mut peers = self.active_peers().peekable();
        if peers.peek().is_none() {
            return false;
        }
        let directory = self.state.directory();
        let bound = self.compaction.max_future_ms;
        directory.leap.is_some()
            || (directory.caught_up_ms == 0
                && !peers.any(|(_, info)| info.clock.wall_ms.saturating_add(bound) >= now.0))
    }

    /// Whether this replica's own clock ran too far ahead of `now`.
    pub(super) fn own_clock_ran_ahead(&self, now: Timestamp) -> bool {
        self.too_far_ahead(self.state.clock, now)
    }

    /// The error saying that `object`, written by `device` with a clock at `hlc`, is held.
    pub(super) fn clock_ahead(run: &SyncRun, object: &str, device: DeviceId, hlc: Hlc) -> Error {
        Error::ClockAhead {
            object: object.to_owned(),
            device: device.to_string(),
            ahead_ms: hlc.wall_ms.saturating_sub(run.now.0),
        }
    }

    /// Notes that `object`, written by `device` with a clock at `hlc`, is held: reported,
    /// unless `device` is retired.
    pub(super) fn hold(&self, run: &mut SyncRun, object: &str, device: DeviceId, hlc: Hlc) {
        if !self.state.directory().retired.contains(&device) {
            let error = Self::clock_ahead(run, object, device, hlc);
            run.report.errors.push(error);
        }
    }

    /// Notes that a manifest is held; reported by [`Engine::report_held_manifests`] once every
    /// manifest is read (a newer one may say its device is retired).
    pub(super) fn hold_manifest(run: &mut SyncRun, object: &str, device: DeviceId, hlc: Hlc) {
        let error = Self::clock_ahead(run, object, device, hlc);
        run.held_manifests.push((device, error));
    }

    pub(super) fn report_held_manifests(&self, run: &mut SyncRun) {
        let retired = &self.state.directory().retired;
        for (device, error) in std::mem::take(&mut run.held_manifests) {
            if !retired.contains(&device) {
                run.report.errors.push(error);
            }
        }
    }

    /// Once the manifests are read: reports each active peer whose latest manifest is stamped
    /// further ahead of our clock than two clocks may be apart ([`Engine::clock_margin_ms`]),
    /// though within the bound (beyond it the manifest is held, and reported so). Every stamp
    /// a manifest can carry was once some device's wall time, and the manifest was written
    /// before its answer arrived: so with every clock within the allowed skew of the true
    /// time, no manifest is that far ahead of our clock at that answer. A clock behind is
    /// found by the device it is behind, whose manifests are then ahead of it.
    ///
    /// A stamp stays ahead after the clock that made it is set right (and in the clocks that
    /// took it), so the report lasts until the present reaches it.
    pub(super) fn report_clocks_apart(&self, run: &mut SyncRun) {
        let margin_ms = self.clock_margin_ms();
        for (id, info) in self.active_peers() {
            let ahead_ms = info.clock.wall_ms.saturating_sub(run.answered.0);
            let device = id.to_string();
            let reported = run
                .report
                .errors
                .iter()
                .any(|e| matches!(e, Error::ClockApart { device: d, .. } if *d == device));
            // A device held in this run is reported so (its newest manifest is not this one).
            let held = run.held_devices.contains(id);
            if ahead_ms > margin_ms
                && !self.too_far_ahead(info.clock, run.now)
                && !reported
                && !held
            {
                run.report.errors.push(Error::ClockApart {
                    device,
                    ahead_ms,
                    margin_ms,
                });
            }
        }
    }

    /// Before starting over because this replica's own clock ran ahead: says so in the report.
    pub(super) fn note_own_clock_ran_ahead(&self, run: &mut SyncRun) {
        let error = Self::clock_ahead(run, LOCAL_CLOCK, self.state.device, self.state.clock);
        run.report.errors.push(error);
    }
}
