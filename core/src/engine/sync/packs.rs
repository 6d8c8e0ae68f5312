//! Deleting our own packs that no file needs any more (pack collection).
//!
//! A device deletes only packs it wrote, and only those that nothing references: no record of
//! its replica (current, or an earlier version overwritten or deleted less than the grace
//! period ago), and no transfer of this process (none may be running when the listing starts
//! or ends, and packs being deleted are kept out of later uploads). Other devices may
//! reference our chunks too (an upload references a chunk already in the vault instead of
//! sending it again), so collection takes three steps, with no lock:
//!
//! 1. **Look.** At a caught-up sync, list our packs; note those nothing references, when, and
//!    how many segments of each device this replica had merged then.
//! 2. **Confirm.** At a later sync, once every active device's manifest says it has merged at
//!    least as much, note when. From then on no active device's replica references the noted
//!    packs, except through its own writes made before it merged that far: pushed ones, which
//!    we merge before deleting, and the record an upload running at that moment will write.
//! 3. **Delete**, at a caught-up sync at least the grace period (plus twice the allowed clock
//!    skew) after the confirmation: list our packs again and delete the noted ones that are
//!    still there and still referenced by nothing here. Then look again.
//!
//! What this assumes: no upload lasts longer than the grace period, and a device that was out
//! of touch longer than that starts over (`gc.rs`). What a reader may meet: a version in
//! another replica's history overwritten more than the grace period ago, and a file whose record
//! a device kept unpushed for longer than the grace period while it referenced a chunk of a file
//! deleted meanwhile, fail as `not-found` when their bytes are read.
//!
//! Packs that are mostly garbage are not repacked: records name where each chunk lies, so
//! moving a chunk would mean rewriting every record that references it.

use std::collections::HashSet;

use super::{Pending, SyncRun};
use crate::engine::state::PackCollection;
use crate::engine::Engine;
use crate::error::Result;
use crate::file::{Body, FileValue};
use crate::http::{Method, RequestKind, Response};
use crate::ids::DeviceId;
use crate::pack::{packs_folder, PackName};
use crate::s3;

/// The first format whose writers publish how much of each device they merged.
const MERGED_FORMAT: u8 = 3;
/// At most this many packs are deleted in one sync; the rest go with the next ones.
const MAX_DELETES_PER_SYNC: usize = 1000;
/// A listing of our packs longer than this many pages is not followed further.
const MAX_LIST_PAGES: usize = 10_000;

impl Engine {
    /// Whether this sync lists our packs (to look, or to delete), after confirming a look
    /// when every active device has merged as much as it records.
    pub(super) fn plan_pack_collection(&mut self, run: &mut SyncRun) {
        let caught_up = run.unread_manifests.is_empty()
            && self.state.pending().is_none()
            && self.state.peers().values().all(|p| p.applied >= p.segments);
        if !caught_up || self.transfers_running() || self.unconfirmed_leap() {
            return;
        }
        let now = run.now.0;
        let me = self.state.device;
        let wait = self.grace_with_margin_ms();
        let confirmed = self.confirm_pack_look(now);
        let due = match &self.state.directory().pack_collection {
            Some(look) if look.device == me => match confirmed {
                Some(at) => now >= at.saturating_add(wait),
                None => false,
            },
            // The first look waits for a file: a vault of records alone never lists packs.
            _ => self.holds_files(),
        };
        if due {
            run.pack_listing = Some(Vec::new());
            self.queue_pack_list(run, None);
        }
    }

    /// Notes (and returns) when every active device was first seen to have merged as much as
    /// the current look records.
    fn confirm_pack_look(&mut self, now: u64) -> Option<u64> {
        let look = self.state.directory().pack_collection.as_ref()?;
        if let Some(at) = look.confirmed_ms {
            return Some(at);
        }
        let merged = look.merged.clone();
        if !self.all_merged(&merged, now) {
            return None;
        }
        let look = self.state.directory_mut().pack_collection.as_mut()?;
        look.confirmed_ms = Some(now);
        Some(now)
    }

    /// Whether every active device other than us has merged `merged` (device, segments).
    fn all_merged(&self, merged: &[(DeviceId, u64)], now: u64) -> bool {
        if self.unread_peer_manifest() {
            return false;
        }
        let directory = self.state.directory();
        let me = self.state.device;
        // Devices silent longer than this start over when they return.
        let silence = self
            .grace_with_margin_ms()
            .saturating_add(self.heartbeat_ms());
        directory.devices.iter().all(|(device, info)| {
            if *device == me
                || directory.retired.contains(device)
                || info.clock.wall_ms.saturating_add(silence) < now
            {
                return true;
            }
            info.format >= MERGED_FORMAT
                && merged.iter().all(|(of, n)| {
                    of == device
                        || info
                            .merged
                            .iter()
                            .find(|(d, _)| d == of)
                            .is_some_and(|(_, has)| has >= n)
                })
        })
    }

    /// Whether a transfer of this process lives: it may hold references this replica does not
    /// show yet.
    fn transfers_running(&self) -> bool {
        std::sync::Arc::strong_count(&self.transfers) > 1
    }

    /// Where our packs are listed from: `<vault folder>p/<device hex>/`.
    fn own_packs_prefix(&self) -> String {
        format!("{}{}", self.folder, packs_folder(self.state.device.0))
    }

    fn queue_pack_list(&mut self, run: &mut SyncRun, token: Option<&str>) {
        run.pack_pages += 1;
        let prefix = self.own_packs_prefix();
        let url = self.store.list_url(&prefix, token);
        let op = self.op(RequestKind::ListPacks, Method::Get, url, Pending::ListPacks);
        run.push(op);
    }

    pub(super) fn on_pack_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let page = match self
            .check(response, || "LIST of our packs".into())
            .and_then(|r| s3::parse_list(&r.body))
        {
            Ok(page) => page,
            Err(e) => {
                run.pack_listing = None;
                return run.report.errors.push(e);
            }
        };
        let me = self.state.device;
        let prefix = self.own_packs_prefix();
        let Some(listing) = run.pack_listing.as_mut() else {
            return;
        };
        listing.extend(
            page.objects
                .iter()
                .filter_map(|(key, _)| PackName::parse(me.0, key.strip_prefix(&prefix)?))
                .map(|name| name.pack),
        );
        match page.next_token {
            Some(token) if run.pack_pages < MAX_LIST_PAGES => {
                self.queue_pack_list(run, Some(&token));
            }
            // A listing cut short lists fewer packs: fewer are deleted, none wrongly.
            _ => {
                let mut listed = std::mem::take(listing);
                listed.sort_unstable();
                listed.dedup();
                run.pack_listing = None;
                self.on_packs_listed(run, &listed);
            }
        }
    }

    /// With our packs listed: deletes the due ones still unreferenced, or looks again.
    /// `listed` is sorted.
    fn on_packs_listed(&mut self, run: &mut SyncRun, listed: &[[u8; 16]]) {
        let now = run.now.0;
        let me = self.state.device;
        let Some(referenced) = self.referenced_own_packs(now) else {
            // A file value that does not decode may reference any pack.
            return;
        };
        // An upload began while the listing ran.
        if self.transfers_running() {
            return;
        }
        let look = self
            .state
            .directory()
            .pack_collection
            .clone()
            .filter(|l| l.device == me && l.confirmed_ms.is_some());
        if let Some(mut look) = look {
            look.packs.retain(|&pack| {
                listed.binary_search(&pack).is_ok()
                    && !referenced.contains(&PackName { device: me.0, pack })
            });
            if !look.packs.is_empty() {
                // Still due: deleted ones leave the look as their DELETEs succeed.
                let doomed: Vec<[u8; 16]> = look
                    .packs
                    .iter()
                    .take(MAX_DELETES_PER_SYNC)
                    .copied()
                    .collect();
                self.state.directory_mut().pack_collection = Some(look);
                // From now on no upload of this process references their chunks.
                let names = doomed.iter().map(|&pack| PackName { device: me.0, pack });
                self.collected_packs.extend(names);
                let collected = &self.collected_packs;
                if let Some(spare) = self.spare_chunks.as_mut() {
                    spare.retain(|_, stored| !collected.contains(&stored.pack));
                }
                for pack in doomed {
                    let name = PackName { device: me.0, pack }.relative();
                    self.queue_delete(
                        run,
                        RequestKind::DeletePack,
                        &name,
                        Pending::DeletePack { pack },
                    );
                }
                return;
            }
        }
        let merged = std::iter::once((me, self.state.own().segments))
            .chain(self.state.peers().iter().map(|(d, p)| (*d, p.applied)))
            .collect();
        self.state.directory_mut().pack_collection = Some(PackCollection {
            device: me,
            since_ms: now,
            merged,
            packs: listed
                .iter()
                .filter(|&&pack| !referenced.contains(&PackName { device: me.0, pack }))
                .copied()
                .collect(),
            confirmed_ms: None,
        });
    }

    pub(super) fn on_delete_pack(
        &mut self,
        run: &mut SyncRun,
        pack: [u8; 16],
        response: Result<Response>,
    ) {
        let me = self.state.device;
        let name = PackName { device: me.0, pack };
        if let Err(e) = self.check_deleted(response, &name.relative()) {
            // Deleted by a later sync.
            return run.report.errors.push(e);
        }
        run.report.packs_deleted += 1;
        if let Some(look) = self.state.directory_mut().pack_collection.as_mut() {
            look.packs.retain(|p| *p != pack);
        }
    }

    /// Whether any record or earlier version here is a file.
    fn holds_files(&self) -> bool {
        let is_file =
            |r: &crate::record::Record| r.value.as_deref().is_some_and(FileValue::is_file);
        self.state.records().iter().any(|(_, r)| is_file(r))
            || self
                .state
                .histories()
                .any(|(_, versions)| versions.iter().any(is_file))
    }

    /// Our packs that the replica references: by a current record, or by an earlier version
    /// of a key overwritten (or deleted) less than the grace period before `now`. `None` when a
    /// file value does not decode.
    fn referenced_own_packs(&self, now: u64) -> Option<HashSet<PackName>> {
        let me = self.state.device.0;
        let grace = self.compaction.grace_ms;
        let mut referenced = HashSet::new();
        let mut note = |value: Option<&[u8]>| -> Option<()> {
            let Some(value) = value.filter(|v| FileValue::is_file(v)) else {
                return Some(());
            };
            let file = FileValue::decode(b"", value).ok()?;
            if let Body::Chunks { packs, .. } = &file.body {
                referenced.extend(packs.iter().filter(|p| p.device == me));
            }
            Some(())
        };
        for (_, record) in self.state.records().iter() {
            note(record.value.as_deref())?;
        }
        for (key, versions) in self.state.histories() {
            // A key forgotten (its tombstone collected) was deleted longer than that ago.
            let Some(current) = self.state.records().get(key) else {
                continue;
            };
            let mut replaced_at = current.stamp.hlc.wall_ms;
            for version in versions {
                if replaced_at.saturating_add(grace) >= now {
                    note(version.value.as_deref())?;
                }
                replaced_at = version.stamp.hlc.wall_ms;
            }
        }
        Some(referenced)
    }
}
