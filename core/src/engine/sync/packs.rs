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
//! Before it decides, a look also lists our pack redirects (`r/<device>/`) and reads those this
//! process has not read yet: a record that names a chunk of a repacked pack references the pack
//! the chunk went to, and not the old one. Packs that are mostly garbage are repacked
//! (`repack.rs`) at a look.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::repack::{LiveChunk, UNKNOWN_GENERATION};
use super::{Pending, SyncRun};
use crate::engine::state::PackCollection;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::file::{Body, FileValue};
use crate::http::{Method, RequestKind, Response};
use crate::ids::DeviceId;
use crate::pack::{packs_folder, redirects_folder, PackName, Redirect, MAX_REDIRECTS};
use crate::s3;

/// The first manifest version whose writers publish a manifest now and then even with nothing to
/// push (the heartbeat of FORMAT 8.8), so that what they merged is never long out of date: packs
/// are collected only while every active device writes at least this one (FORMAT 4.1, 14.3).
const MERGED_FORMAT: u8 = 3;
/// At most this many packs are deleted in one sync; the rest go with the next ones.
const MAX_DELETES_PER_SYNC: usize = 1000;
/// A listing of our packs longer than this many pages is not followed further.
const MAX_LIST_PAGES: usize = 10_000;

impl Engine {
    /// Whether this sync lists our packs (to look, or to delete), after confirming a look
    /// when every active device has merged as much as it records.
    pub(super) fn plan_pack_collection(&mut self, run: &mut SyncRun) {
        // Every manifest read, a retired device's too: segments of its that only an unread
        // manifest names may hold records that reference our packs, merged by another device.
        if !self.read_and_merged_all(run)
            || self.transfers_running()
            || self.clock_in_doubt(run.now)
        {
            return;
        }
        let now = run.now.0;
        let me = self.state.device;
        let wait = self.grace_with_margin_ms();
        let confirmed = self.confirm_pack_look(now);
        let due = match &self.state.directory().pack_collection {
            Some(look) if self.is_own_id(look.device) => match confirmed {
                // Packs left to delete: listed again to delete them. None left: the next of
                // our ids is looked at.
                Some(at) if now >= at.saturating_add(wait) => match look.packs.is_empty() {
                    true => Some(self.next_own_id(look.device)),
                    false => Some(look.device),
                },
                _ => None,
            },
            // The first look waits for a file: a vault of records alone never lists packs.
            _ => self.holds_files().then_some(me),
        };
        if let Some(device) = due {
            run.survey = Some(Survey::of(device));
            self.queue_pack_list(run, None);
        }
    }

    /// Whether this run read every listed manifest (a retired device's too) and merged every
    /// segment they name, with no segment of ours pending: what collecting our objects needs.
    pub(super) fn read_and_merged_all(&self, run: &SyncRun) -> bool {
        run.unread_manifests.is_empty()
            && self.state.pending().is_none()
            && self.state.peers().values().all(|p| p.applied >= p.segments)
    }

    /// Whether packs written as `device` are ours to collect: ours, or written under an id
    /// this replica had before it started over (nobody else lists those).
    fn is_own_id(&self, device: DeviceId) -> bool {
        device == self.state.device || self.state.directory().former_ids.contains(&device)
    }

    /// The id whose packs are looked at after those of `device`: our current id, then each
    /// former id in turn, and round again.
    fn next_own_id(&self, device: DeviceId) -> DeviceId {
        let me = self.state.device;
        let former = &self.state.directory().former_ids;
        match device == me {
            true => former.iter().next().copied().unwrap_or(me),
            false => former.range(device..).nth(1).copied().unwrap_or(me),
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
        !self.unread_peer_manifest()
            && self.peers_heard_from(now).all(|(device, info)| {
                info.format >= MERGED_FORMAT
                    && merged.iter().all(|(of, n)| {
                        // Nothing of a device to merge (no segment): merged by everyone, also
                        // by peers that never heard of it.
                        of == device
                            || *n == 0
                            || info
                                .merged
                                .iter()
                                .find(|(d, _)| d == of)
                                .is_some_and(|(_, has)| has >= n)
                    })
            })
    }

    /// The other devices that count at `now`: not retired, and heard from within the grace
    /// period and a heartbeat (one silent longer starts over when it returns).
    pub(super) fn peers_heard_from(
        &self,
        now: u64,
    ) -> impl Iterator<Item = (&DeviceId, &crate::engine::state::DeviceInfo)> {
        let directory = self.state.directory();
        let me = self.state.device;
        let silence = self
            .grace_with_margin_ms()
            .saturating_add(self.heartbeat_ms());
        directory.devices.iter().filter(move |(device, info)| {
            **device != me
                && !directory.retired.contains(*device)
                && info.clock.wall_ms.saturating_add(silence) >= now
        })
    }

    /// Whether a transfer of this process lives: it may hold references this replica does not
    /// show yet.
    fn transfers_running(&self) -> bool {
        std::sync::Arc::strong_count(&self.transfers) > 1
    }

    /// Where the packs of `device` (one of our ids) are listed from:
    /// `<vault folder>p/<device hex>/`.
    fn own_packs_prefix(&self, device: DeviceId) -> String {
        format!("{}{}", self.folder, packs_folder(device.0))
    }

    /// Where the pack redirects of `device` are listed from: `<vault folder>r/<device hex>/`.
    fn own_redirects_prefix(&self, device: DeviceId) -> String {
        format!("{}{}", self.folder, redirects_folder(device.0))
    }

    /// The id whose packs the look in progress lists.
    fn surveyed(run: &SyncRun) -> Option<DeviceId> {
        run.survey.as_ref().map(|s| s.device)
    }

    fn queue_pack_list(&mut self, run: &mut SyncRun, token: Option<&str>) {
        let Some(device) = Self::surveyed(run) else {
            return;
        };
        run.pack_pages += 1;
        let prefix = self.own_packs_prefix(device);
        let url = self.store.list_url(&prefix, token);
        let op = self.op(RequestKind::ListPacks, Method::Get, url, Pending::ListPacks);
        run.push(op);
    }

    fn queue_redirect_list(&mut self, run: &mut SyncRun, token: Option<&str>) {
        let Some(device) = Self::surveyed(run) else {
            return;
        };
        run.pack_pages += 1;
        let prefix = self.own_redirects_prefix(device);
        let url = self.store.list_url(&prefix, token);
        let op = self.op(
            RequestKind::ListRedirects,
            Method::Get,
            url,
            Pending::ListRedirects,
        );
        run.push(op);
    }

    /// One page of a listing of ours (packs or redirects): each object's random name and size,
    /// and the next page's token. `None` (the look given up) on an error.
    fn listed_page(
        &mut self,
        run: &mut SyncRun,
        response: Result<Response>,
        device: DeviceId,
        prefix: &str,
        what: &str,
    ) -> Option<(Vec<Listed>, Option<String>)> {
        let page = match self
            .check(response, || format!("LIST of our {what}"))
            .and_then(|r| s3::parse_list(&r.body))
        {
            Ok(page) => page,
            Err(e) => {
                run.survey = None;
                run.report.errors.push(e);
                return None;
            }
        };
        let names = page
            .objects
            .iter()
            .zip(page.sizes.iter().chain(std::iter::repeat(&None)))
            .filter_map(|((key, _), size)| {
                Some((
                    PackName::parse(device.0, key.strip_prefix(prefix)?)?.pack,
                    *size,
                ))
            })
            .collect();
        // A listing cut short lists fewer packs: fewer are deleted, none wrongly.
        let next = page.next_token.filter(|_| run.pack_pages < MAX_LIST_PAGES);
        Some((names, next))
    }

    pub(super) fn on_pack_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let Some(device) = Self::surveyed(run) else {
            return;
        };
        let prefix = self.own_packs_prefix(device);
        let Some((names, next)) = self.listed_page(run, response, device, &prefix, "packs") else {
            return;
        };
        let Some(survey) = run.survey.as_mut() else {
            return;
        };
        survey.packs.extend(names);
        match next {
            Some(token) => self.queue_pack_list(run, Some(&token)),
            None => self.queue_redirect_list(run, None),
        }
    }

    pub(super) fn on_redirect_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let Some(device) = Self::surveyed(run) else {
            return;
        };
        let prefix = self.own_redirects_prefix(device);
        let Some((names, next)) =
            self.listed_page(run, response, device, &prefix, "pack redirects")
        else {
            return;
        };
        let Some(survey) = run.survey.as_mut() else {
            return;
        };
        survey
            .redirects
            .extend(names.into_iter().map(|(name, _)| name));
        if let Some(token) = next {
            return self.queue_redirect_list(run, Some(&token));
        }
        // Read the redirects this process has not read yet; the look goes on once all are in.
        let me = device.0;
        let unread: Vec<[u8; 16]> = survey
            .redirects
            .iter()
            .filter(|&&pack| !self.redirects.contains_key(&PackName { device: me, pack }))
            .copied()
            .collect();
        survey.reading = unread.len();
        for pack in unread {
            let name = PackName { device: me, pack }.redirect();
            self.queue_get(
                run,
                RequestKind::GetRedirect,
                &name,
                Pending::GetRedirect { pack },
            );
        }
        self.survey_done(run);
    }

    pub(super) fn on_get_redirect(
        &mut self,
        run: &mut SyncRun,
        pack: [u8; 16],
        response: Result<Response>,
    ) {
        let Some(device) = Self::surveyed(run) else {
            return;
        };
        let from = PackName {
            device: device.0,
            pack,
        };
        let opened = self
            .check(response, || format!("GET {}", from.redirect()))
            .and_then(|r| self.open_own_redirect(&from, r.body));
        let Some(survey) = run.survey.as_mut() else {
            return;
        };
        survey.reading -= 1;
        match opened {
            Ok(redirect) => {
                self.redirects.insert(from, Arc::new(redirect));
            }
            Err(e) => {
                // Without it, the pack it leads to may look unreferenced: no decision now.
                run.survey = None;
                return run.report.errors.push(e);
            }
        }
        self.survey_done(run);
    }

    /// One of our redirects, sealed under the key generation of the chunks it moved: tried
    /// under each generation held, newest first.
    fn open_own_redirect(&self, from: &PackName, object: Vec<u8>) -> Result<Redirect> {
        let mut generations = vec![0];
        generations.extend(self.later_keys().iter().map(|k| k.generation));
        let mut failure = None;
        for generation in generations.into_iter().rev() {
            let Some([chunk_key, ..]) = self.file_keys(generation) else {
                continue;
            };
            match Redirect::open(&chunk_key, self.vault, from, object.clone()) {
                Ok(redirect) => return Ok(redirect),
                Err(e) => failure = failure.or(Some(e)),
            }
        }
        Err(failure.unwrap_or_else(|| Error::corrupt(&from.redirect(), "no key opens it")))
    }

    /// Once every listing page and redirect is in: goes on with the look.
    fn survey_done(&mut self, run: &mut SyncRun) {
        if run.survey.as_ref().is_none_or(|s| s.reading > 0) {
            return;
        }
        let mut survey = run.survey.take().expect("checked above");
        survey.packs.sort_unstable();
        survey.packs.dedup_by_key(|(pack, _)| *pack);
        self.on_packs_listed(run, survey.device, &survey.packs);
    }

    /// With the packs of `me` (our id, or a former one) listed: deletes the due ones still
    /// unreferenced, or looks again (and, for our id, repacks those mostly garbage). `listed`
    /// is sorted.
    fn on_packs_listed(
        &mut self,
        run: &mut SyncRun,
        me: DeviceId,
        listed: &[([u8; 16], Option<u64>)],
    ) {
        let now = run.now.0;
        let Some(references) = self.own_references(me, now) else {
            // A file value that does not decode may reference any pack.
            return;
        };
        let referenced = |pack: &[u8; 16]| references.contains_key(pack);
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
        // A pack that was repacked goes only while every device that counts follows redirects
        // (one of an older release would find it gone).
        let follow = self.all_follow_redirects(now);
        if let Some(mut look) = look {
            look.packs.retain(|pack| {
                listed.binary_search_by_key(pack, |(p, _)| *p).is_ok()
                    && !referenced(pack)
                    && (follow
                        || !self.redirects.contains_key(&PackName {
                            device: me.0,
                            pack: *pack,
                        }))
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
                    spare
                        .1
                        .retain(|_, stored| !collected.contains(&stored.pack));
                }
                for pack in doomed {
                    let name = PackName { device: me.0, pack }.relative();
                    self.queue_delete(
                        run,
                        RequestKind::DeletePack,
                        &name,
                        Pending::DeletePack { device: me, pack },
                    );
                }
                return;
            }
        }
        let current = self.state.device;
        // A former id with no pack left has nothing to wait a grace period for (nobody writes
        // under it any more): the next of our ids is looked at now.
        if me != current && listed.is_empty() {
            run.survey = Some(Survey::of(self.next_own_id(me)));
            return self.queue_pack_list(run, None);
        }
        let merged = std::iter::once((current, self.state.own().segments))
            .chain(self.state.peers().iter().map(|(d, p)| (*d, p.applied)))
            .collect();
        self.state.directory_mut().pack_collection = Some(PackCollection {
            device: me,
            since_ms: now,
            merged,
            packs: listed
                .iter()
                .map(|(pack, _)| *pack)
                .filter(|pack| !referenced(pack))
                .collect(),
            confirmed_ms: None,
        });
        // Only our current id writes new packs.
        if me == current {
            self.plan_repack(run, listed, &references);
        }
    }

    pub(super) fn on_delete_pack(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        pack: [u8; 16],
        response: Result<Response>,
    ) {
        let name = PackName {
            device: device.0,
            pack,
        };
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

    /// Where `offset` in our pack `pack` is now: followed through the redirects this process
    /// knows while they list it.
    pub(crate) fn resolve(&self, pack: PackName, offset: u64) -> (PackName, u64) {
        let (pack, offset, _) = self.resolve_counting(pack, offset);
        (pack, offset)
    }

    /// [`Engine::resolve`], with how many redirects it followed.
    pub(super) fn resolve_counting(
        &self,
        mut pack: PackName,
        mut offset: u64,
    ) -> (PackName, u64, usize) {
        let mut hops = 0;
        while hops < MAX_REDIRECTS {
            let Some(redirect) = self.redirects.get(&pack) else {
                break;
            };
            let Some(moved) = redirect.moved(offset) else {
                break;
            };
            pack.pack = redirect.to;
            offset = moved;
            hops += 1;
        }
        (pack, offset, hops)
    }

    /// The chunks of the packs of `device` (one of our ids) that the replica references, where
    /// they are now (through the redirects), by pack and offset: by a current record, or by an
    /// earlier version of a key overwritten (or deleted) less than the grace period before
    /// `now`. `None` when a file value does not decode.
    fn own_references(
        &self,
        device: DeviceId,
        now: u64,
    ) -> Option<HashMap<[u8; 16], BTreeMap<u64, LiveChunk>>> {
        let me = device.0;
        let grace = self.compaction.grace_ms;
        let mut referenced: HashMap<[u8; 16], BTreeMap<u64, LiveChunk>> = HashMap::new();
        let mut note = |value: Option<&[u8]>| -> Option<()> {
            let Some(value) = value.filter(|v| FileValue::is_file(v)) else {
                return Some(());
            };
            let file = FileValue::decode(b"", value).ok()?;
            if let Body::Chunks { packs, chunks } = &file.body {
                for chunk in chunks {
                    let pack = packs[chunk.pack as usize];
                    if pack.device != me {
                        continue;
                    }
                    let (pack, offset, hops) = self.resolve_counting(pack, chunk.offset);
                    let live = referenced.entry(pack.pack).or_default();
                    // The longest chain that leads here decides whether it may move again.
                    let hops = live.get(&offset).map_or(hops, |c| c.hops.max(hops));
                    // Records that disagree on its key generation (one is damaged or forged):
                    // it is not moved.
                    let generation = match live.get(&offset) {
                        Some(c) if c.generation != file.generation => UNKNOWN_GENERATION,
                        _ => file.generation,
                    };
                    live.insert(
                        offset,
                        LiveChunk {
                            id: chunk.id,
                            len: chunk.len,
                            offset,
                            sealed_len: chunk.sealed_len,
                            version: file.chunk_version,
                            generation,
                            hops,
                        },
                    );
                }
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

/// One of our objects listed: its random name, and its size when the listing gave one.
type Listed = ([u8; 16], Option<u64>);

/// What a look has learnt of the packs and redirects of one of our ids so far.
pub(super) struct Survey {
    /// Whose: our id, or one we had before we started over.
    device: DeviceId,
    /// Our packs listed, with their sizes when the listing gave them.
    packs: Vec<([u8; 16], Option<u64>)>,
    /// Our packs that have a redirect.
    redirects: Vec<[u8; 16]>,
    /// Redirects being read.
    reading: usize,
}

impl Survey {
    fn of(device: DeviceId) -> Survey {
        Survey {
            device,
            packs: Vec::new(),
            redirects: Vec::new(),
            reading: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Hlc;
    use crate::engine::state::DeviceInfo;
    use crate::engine::Engine;
    use crate::entropy::Entropy;
    use crate::ids::DeviceId;
    use crate::key::VaultKey;
    use crate::store::Store;

    /// A look that recorded a device with no segment (0 merged) is confirmed by peers that
    /// never heard of that device: there is nothing of it to merge. (Seed 612 of the files
    /// world: a device whose only pack landed after its process died, and which never pushed a
    /// segment, listed itself as `(me, 0)` and waited for ever, its pack never collected.)
    #[test]
    fn nothing_to_merge_is_merged_by_everyone() {
        let key = VaultKey::from_bytes([1; 32]);
        let store = Store::parse("file:///vault").unwrap();
        let me = DeviceId([2; 16]);
        let peer = DeviceId([1; 16]);
        let mut engine = Engine::new(&key, store, me, Entropy::from_seed([2; 32]));
        let now = 1_800_000_000_000;
        engine.state.directory_mut().devices.insert(
            peer,
            DeviceInfo {
                label: String::new(),
                clock: Hlc {
                    wall_ms: now,
                    counter: 0,
                },
                checkpoint: None,
                merged: vec![(DeviceId([3; 16]), 4)],
                format: super::MERGED_FORMAT,
                pruned: 0,
            },
        );
        assert!(engine.all_merged(&[(me, 0), (peer, 7)], now));
        assert!(engine.all_merged(&[(DeviceId([3; 16]), 4)], now));
        assert!(!engine.all_merged(&[(me, 1)], now));
        assert!(!engine.all_merged(&[(DeviceId([3; 16]), 5)], now));
    }
}
