//! Devices stranded below a deletion. A device that lacks segments another device `E` said
//! may be deleted gets past them only through a checkpoint that covers them (FORMAT 8.9). When
//! the one it needed rotted in the bucket after those segments were deleted, the device stays
//! stranded for good unless someone writes another: a caught-up replica that reads the
//! stranded device's manifest does (`compact.rs` writes it), and so does `E` itself once it
//! has read its own checkpoint back and found it damaged or gone.

use super::prune::PRUNING_FORMAT;
use super::{Pending, SyncRun};
use crate::checkpoint::{self, checkpoint_name};
use crate::crypto::Unopened;
use crate::engine::state::DeviceInfo;
use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{RequestKind, Response};
use crate::ids::DeviceId;

impl Engine {
    /// Whether another device is stranded where this replica could bring it past: its latest
    /// manifest, written well after the latest manifest of some other device `E`, says it
    /// merged fewer of `E`'s segments than `E` said may be deleted (only a checkpoint brings it
    /// past them), while this replica merged them all, and no device but `E` names a
    /// checkpoint that covers them. Then the one it needed (of `E`'s) may have rotted in the
    /// bucket after those segments were deleted, and no other device had reason to write one.
    ///
    /// Once a checkpoint of another device covers them, no one writes another for them: at
    /// most one such checkpoint in the vault each time `E` deletes further, whatever keeps the
    /// device stranded (a manifest stamped ahead can look later than it was; a device may fail
    /// to read a checkpoint for other reasons). Only a member that may write checkpoints does.
    pub(super) fn peer_stranded_below_a_deletion(&self) -> bool {
        if !self.may_write_checkpoints() {
            return false;
        }
        let directory = self.state.directory();
        let me = self.state.device;
        // Whether a device other than `of` names a checkpoint covering `of` up to `n`.
        directory.devices.iter().any(|(of, of_info)| {
            *of != me
                && self.applied_of(*of) >= of_info.pruned
                && !self.named_cover(*of, of_info.pruned, &[*of])
                && self
                    .stranded_below(*of, of_info, of_info.clock.wall_ms)
                    .next()
                    .is_some()
        })
    }

    /// Whether a device other than those `excluded` names a checkpoint covering `of` up to
    /// `n`.
    pub(super) fn named_cover(&self, of: DeviceId, n: u64, excluded: &[DeviceId]) -> bool {
        self.state.directory().devices.iter().any(|(d, info)| {
            !excluded.contains(d) && info.checkpoint.as_ref().is_some_and(|c| c.covers(of) >= n)
        })
    }

    /// Active peers whose latest manifest, written well after `since` (wall ms), says they
    /// merged fewer of `of`'s segments than `of_info` (the latest manifest of `of`) says may be
    /// deleted: their sync read that, and did not get past them.
    fn stranded_below<'a>(
        &'a self,
        of: DeviceId,
        of_info: &'a DeviceInfo,
        since: u64,
    ) -> impl Iterator<Item = &'a DeviceId> + 'a {
        let margin = self.clock_margin_ms();
        self.active_peers()
            .filter(move |(peer, info)| {
                **peer != of
                    && !self.writes_no_more(**peer)
                    && !self.held_by_everyone(info)
                    && info.format >= PRUNING_FORMAT
                    && info
                        .merged
                        .iter()
                        .find(|(d, _)| *d == of)
                        .map_or(0, |(_, n)| *n)
                        < of_info.pruned
                    && info.clock.wall_ms > since.saturating_add(margin)
            })
            .map(|(peer, _)| peer)
    }

    /// Our own checkpoint to read back, if any: a peer is stranded below our deletion, or below
    /// the closed log of one of our former ids (`former.rs`), while the checkpoint our manifest
    /// names covers that and no other device names one that does (so the peer had ours to
    /// adopt, and did not get past), and this process has not read that checkpoint back yet.
    /// Read back damaged or gone, a new one is written at once. (A peer merely behind can look
    /// stranded too: then the cost is one read of our checkpoint, once per process.)
    pub(super) fn own_checkpoint_to_verify(&self) -> Option<u64> {
        if !self.may_write_checkpoints() {
            return None;
        }
        let me = self.state.device;
        let directory = self.state.directory();
        let ours = directory.devices.get(&me)?.checkpoint.as_ref()?;
        if self.own_checkpoint_read_back == Some(ours.number) {
            return None;
        }
        // Our latest manifest moves on at every sync: measured from when the checkpoint it
        // names was written instead (a peer that synced since then saw it named).
        let since = directory.checkpoint_ms;
        let stranded = [me]
            .iter()
            .chain(&directory.former_ids)
            .filter_map(|of| Some((*of, directory.devices.get(of)?)))
            .any(|(of, info)| {
                info.pruned > 0
                    && ours.covers(of) >= info.pruned
                    && !self.named_cover(of, info.pruned, &[me, of])
                    && self.stranded_below(of, info, since).next().is_some()
            });
        stranded.then_some(ours.number)
    }

    pub(super) fn queue_own_checkpoint_check(&mut self, run: &mut SyncRun, number: u64) {
        let name = checkpoint_name(self.state.device, number);
        let pending = Pending::OwnCheckpoint { number };
        self.queue_get(run, RequestKind::GetCheckpoint, &name, pending);
    }

    /// Our checkpoint read back: a new one is written when it is gone or does not open (the
    /// run is still caught up: nothing was merged or written since compaction looked). Another
    /// failure (the network, the store) is tried again at the next sync that finds the peer
    /// stranded.
    pub(super) fn on_own_checkpoint(
        &mut self,
        run: &mut SyncRun,
        number: u64,
        response: Result<Response>,
    ) {
        let me = self.state.device;
        let name = checkpoint_name(me, number);
        let damage = match self.check(response, || format!("GET {name}")) {
            Ok(response) => {
                let mut body = response.body;
                let opened = self
                    .unsign(&name, &mut body)
                    .and_then(|author| Ok(self.generation_keys(&author, &name)?.1))
                    .map_err(Unopened::Unauthentic)
                    .and_then(|key| checkpoint::open(&key, self.vault, me, number, body));
                match opened {
                    Ok(_) => None,
                    Err(e) => Some(Error::from(e)),
                }
            }
            Err(e) if e.category() == Category::NotFound => Some(e),
            Err(e) => return run.report.errors.push(e),
        };
        self.own_checkpoint_read_back = Some(number);
        if let Some(damage) = damage {
            run.report.errors.push(damage);
            self.write_checkpoint(run);
        }
    }
}
