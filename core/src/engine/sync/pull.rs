//! Pulling: the listing, the manifests whose ETag changed, a checkpoint when it saves many
//! segment fetches, the segments not yet merged.

use super::{Pending, SyncRun, MAX_LIST_PAGES, MAX_SEGMENTS_PER_SYNC};
use crate::checkpoint::{self, checkpoint_name};
use crate::crypto::Unopened;
use crate::engine::state::DeviceInfo;
use crate::engine::{Engine, OpenMode};
use crate::error::{Category, Error, Result};
use crate::http::{Method, RequestKind, Response};
use crate::ids::DeviceId;
use crate::manifest::{manifest_name, CheckpointRef, Manifest, MANIFEST_FOLDER};
use crate::record::Record;
use crate::s3;
use crate::segment::{open_segment, segment_name, SegmentView};

/// A checkpoint is adopted instead of fetching segments when it costs at most this many bytes
/// per segment it saves (a request's latency buys about this much transfer), or always when
/// the replica holds nothing yet.
const ADOPT_BYTES_PER_SEGMENT: u64 = 64 << 10;

impl Engine {
    pub(super) fn on_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let page = match self
            .check(response, || "LIST manifests".into())
            .and_then(|r| s3::parse_list(&r.body))
        {
            Ok(page) => page,
            Err(error) => return run.stop(error),
        };
        let prefix = format!("{}{MANIFEST_FOLDER}", self.folder);
        for (key, etag) in page.objects {
            let name = key.strip_prefix(&prefix).unwrap_or(&key);
            match DeviceId::parse(name) {
                // Names are written in lowercase only; anything else is not one of ours.
                Ok(device) if device.to_string() == name => run.listed.push((device, etag)),
                _ => run.report.errors.push(Error::corrupt(
                    &crate::error::quote(&key),
                    "unexpected object in the manifest folder",
                )),
            }
        }
        if let Some(token) = page.next_token {
            if run.seen_tokens.len() >= MAX_LIST_PAGES {
                return run.stop(Error::Http {
                    category: Category::Server,
                    status: 200,
                    code: None,
                    context: format!(
                        "LIST in {} went on for more than {MAX_LIST_PAGES} pages; refusing to go on",
                        self.store.display_name()
                    ),
                });
            }
            if !run.seen_tokens.insert(token.clone()) {
                return run.stop(Error::Http {
                    category: Category::Server,
                    status: 200,
                    code: None,
                    context: format!(
                        "LIST in {} repeated a continuation token; refusing to loop or to trust a partial listing",
                        self.store.display_name()
                    ),
                });
            }
            self.queue_list(run, Some(&token));
        }
    }

    /// Before a replica's first sync goes on: a join needs the vault to exist, a create needs
    /// it not to.
    pub(super) fn check_join(&mut self, run: &mut SyncRun) {
        if self.state.directory().joined {
            return;
        }
        // Our own manifest may be listed: a create whose answer was lost.
        let me = self.state.device;
        let others = run.listed.iter().filter(|(d, _)| *d != me).count() as u64;
        let mine = run.listed.iter().any(|(d, _)| *d == me);
        match (self.open_mode, others) {
            (OpenMode::JoinOrCreate, _) | (OpenMode::Join, 1..) => {
                self.state.directory_mut().joined = true;
            }
            // Our own manifest is there (a create whose answer was lost, reopened to join).
            (OpenMode::Join, 0) if mine => self.state.directory_mut().joined = true,
            // Joined once our manifest is written.
            (OpenMode::Create, 0) => {}
            (OpenMode::Create, devices) => run.stop(Error::VaultExists {
                store: self.store.display_name(),
                devices,
            }),
            (OpenMode::Join, 0) => {
                // Say how many other vaults the prefix holds: a wrong key and a wrong prefix
                // call for different fixes.
                let url = self.store.list_folders_url(self.store.prefix());
                let op = self.op(
                    RequestKind::ListVaults,
                    Method::Get,
                    url,
                    Pending::ListVaults,
                );
                run.push(op);
            }
        }
    }

    pub(super) fn on_list_vaults(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let prefix = self.store.prefix().to_owned();
        let vault = self.vault.to_string();
        let others = self
            .check(response, || "LIST vaults".into())
            .and_then(|r| s3::parse_list(&r.body))
            .map(|page| {
                page.prefixes
                    .iter()
                    .filter_map(|p| p.strip_prefix(&prefix)?.strip_suffix('/'))
                    .filter(|name| *name != vault)
                    .filter(|name| {
                        crate::ids::parse_hex16(name).is_some()
                            && name.bytes().all(|b| !b.is_ascii_uppercase())
                    })
                    .count() as u64
            })
            .unwrap_or(0);
        run.stop(Error::NoVault {
            store: self.store.display_name(),
            others,
        });
    }

    pub(super) fn plan_manifests(&mut self, run: &mut SyncRun) {
        run.listed_devices = run.listed.iter().map(|(d, _)| *d).collect();
        for (device, etag) in std::mem::take(&mut run.listed) {
            let known = if device == self.state.device {
                self.state.own().manifest_etag.as_deref()
            } else {
                self.state
                    .peer(&device)
                    .and_then(|p| p.manifest_etag.as_deref())
            };
            if known != Some(etag.as_str()) || etag.is_empty() {
                let name = manifest_name(device);
                self.queue_get(
                    run,
                    RequestKind::GetManifest,
                    &name,
                    Pending::Manifest { device, etag },
                );
            }
        }
    }

    pub(super) fn on_manifest(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        etag: String,
        response: Result<Response>,
    ) {
        let name = manifest_name(device);
        let own = device == self.state.device;
        let mut body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Our own log is sacred: not knowing it, we must not add to it.
            Err(e) if own => return run.own_log_failure(e),
            // Listed a moment ago and gone now: nothing to import, nothing to infer.
            Err(e) if e.category() == Category::NotFound => {
                run.unread_manifests.insert(device);
                return run.report.errors.push(e);
            }
            Err(e) => {
                run.unread_manifests.insert(device);
                return run.note_failure(e);
            }
        };
        let opened = self.unsign_from(own, &name, &mut body).and_then(|author| {
            let (format, manifest) =
                Manifest::open_versioned(&self.manifest_key, self.vault, device, body)?;
            Ok((author, format, manifest))
        });
        let (author, format, mut manifest) = match opened {
            Ok(m) => m,
            // Ours, damaged in the store: read once more (a cut answer reads well the next
            // time); damaged at both reads of one sync, it counts as gone, and this state
            // writes it again (see `check_frozen`). Nothing is pushed before. (One of a
            // version this build does not read is no damage: the sync fails, as below.)
            Err(e) if own && damaged_at_rest(&e) => {
                run.own_damaged_reads += 1;
                if run.own_damaged_reads >= 2 {
                    run.listed_devices.remove(&device);
                } else if !run.relisted {
                    self.read_again(run, device);
                } else {
                    // No second read in this sync: the next one reads it again.
                    return run.own_log_failure(e);
                }
                return run.report.errors.push(e);
            }
            Err(e) if own => return run.own_log_failure(e),
            Err(e) => {
                run.unread_manifests.insert(device);
                return run.report.errors.push(e);
            }
        };
        // Its member statements first: they may be what makes its signer a member.
        self.take_statements(&manifest.members);
        if !own {
            match self.manifest_trust(&author) {
                Some(true) => {}
                // A member who may not write: what it merged counts (tombstones wait for
                // it), nothing it says about the vault's history does.
                Some(false) => {
                    manifest.checkpoint = None;
                    manifest.retired.clear();
                    manifest.pruned = 0;
                }
                None => {
                    run.unread_manifests.insert(device);
                    return run.report.errors.push(Error::Access(format!(
                        "{name} is signed by someone who is not a member of this vault: ignored"
                    )));
                }
            }
        }
        if let Err(e) = self.note_signer(device, &author, &name) {
            run.unread_manifests.insert(device);
            return run.report.errors.push(e);
        }
        if self.too_far_ahead(manifest.clock, run.now) {
            if own {
                run.own_clock_ahead = true;
            } else {
                // What it says of its device (its clock, what it merged, its checkpoint) is
                // not taken until the clocks agree. The segments it names are read: those
                // written before its clock ran ahead (stamped within the bound) are merged,
                // the others held one by one (see `on_segment`). The devices it retired are
                // retired whatever the clock (a late PUT of one of them is no rollback).
                run.unread_manifests.insert(device);
                Self::hold_manifest(run, &name, device, manifest.clock);
                run.held_devices.insert(device);
                let retired = &mut self.state.directory_mut().retired;
                retired.extend(manifest.retired.iter().copied());
                run.held_pruned.insert(device, manifest.pruned);
                let peer = self.state.peer_mut(device);
                peer.segments = peer.segments.max(manifest.segments);
            }
            return;
        }
        self.state.clock.observe(manifest.clock);
        let rollback = |trusted: u64| Error::Rollback {
            object: name.clone(),
            trusted,
            found: manifest.seq,
        };
        if own {
            let issued = self.state.issued();
            let own = self.state.own_mut();
            if manifest.seq < own.manifest_seq
                || (manifest.seq == own.manifest_seq && manifest.segments < own.published_segments)
            {
                // The store went back on our log: our state is ahead, so we write it again.
                own.republish = true;
                return run.report.errors.push(rollback(own.manifest_seq));
            }
            if manifest.seq < issued {
                // One of our older manifest PUTs landed after a newer one was handed out (lost
                // in a crash, or late): publish again, above both.
                own.republish = true;
            }
            // Ours, from a run whose state was not saved: adopt it, and fetch back the
            // segments it names that this state does not know.
            own.manifest_seq = manifest.seq;
            own.manifest_etag = Some(etag);
            own.published_segments = own.published_segments.max(manifest.segments);
            self.note_device(format, &manifest);
        } else {
            let trusted = self.state.peer(&device).map_or(0, |p| p.manifest_seq);
            if manifest.seq < trusted {
                // A retired device writes no more: an older manifest of it is a late PUT from
                // before it left, and nobody will write a newer one to fix it. Keep what we
                // trust, quietly.
                // So does a device of a revoked member: its pushes fail from then on.
                if self.writes_no_more(device) {
                    self.state.peer_mut(device).manifest_etag = Some(etag);
                    return;
                }
                if !self.written_after_trusted(device, &manifest) {
                    return run.report.errors.push(rollback(trusted));
                }
                // Its replica's state went back (restored from a backup) and it numbers its
                // manifests from there: taken, and trusted from this number on.
            }
            // Newer than what we trusted, or the first we read of this device: either way
            // written after our last caught-up sync started (that sync read every manifest).
            if manifest.seq > trusted {
                self.suspect_own_clock(device, manifest.clock);
            }
            let peer = self.state.peer_mut(device);
            peer.manifest_seq = manifest.seq;
            peer.manifest_etag = Some(etag);
            peer.segments = peer.segments.max(manifest.segments);
            self.note_device(format, &manifest);
        }
    }

    /// Whether a peer's manifest numbered below the one we trust was still written after it:
    /// stamped later, and naming no fewer segments. An older manifest the store brought back (a
    /// late PUT, or a store that went back) cannot be: its writer's clock only moves on, and so
    /// does its log. A replica whose state was restored from a backup writes such manifests (it
    /// no longer knows the numbers it had issued, nor how far it had pruned), and would else
    /// count as rolled back until its numbers climbed past the lost one.
    fn written_after_trusted(&self, device: DeviceId, manifest: &Manifest) -> bool {
        let Some(trusted) = self.state.directory().devices.get(&device) else {
            return false;
        };
        let segments = self.state.peer(&device).map_or(0, |p| p.segments);
        manifest.clock > trusted.clock && manifest.segments >= segments
    }

    /// Keeps what a manifest says about its device (label, last push, checkpoint, what it
    /// merged) and the devices it says are retired.
    fn note_device(&mut self, format: u8, manifest: &Manifest) {
        let directory = self.state.directory_mut();
        directory.retired.extend(manifest.retired.iter().copied());
        let info = directory.devices.entry(manifest.device).or_default();
        if manifest.clock >= info.clock {
            *info = DeviceInfo {
                label: manifest.label.clone(),
                clock: manifest.clock,
                checkpoint: manifest.checkpoint.clone().or(info.checkpoint.take()),
                merged: manifest.merged.clone(),
                format,
                // What was deleted stays deleted, whatever a writer that lost its state says.
                pruned: manifest.pruned.max(info.pruned),
            };
        }
    }

    /// The checkpoint that covers the most segments, with its writer.
    /// One whose writer's manifest is held by everyone is left out: it can neither be adopted
    /// nor stand in for segments.
    pub(super) fn best_checkpoint(&self) -> Option<(DeviceId, &CheckpointRef)> {
        self.state
            .directory()
            .devices
            .iter()
            .filter(|(_, info)| !self.held_by_everyone(info))
            .filter_map(|(d, info)| Some((*d, info.checkpoint.as_ref()?)))
            .max_by_key(|(d, c)| (c.total(), c.number, *d))
    }

    /// How many segments of `device` (ourselves included) are merged here.
    pub(super) fn applied_of(&self, device: DeviceId) -> u64 {
        if device == self.state.device {
            self.state.own().segments
        } else {
            self.state.peer(&device).map_or(0, |p| p.applied)
        }
    }

    /// How many of `device`'s first segments may have been deleted, as its manifest says.
    fn pruned_of(&self, device: DeviceId) -> u64 {
        self.state
            .directory()
            .devices
            .get(&device)
            .map_or(0, |i| i.pruned)
    }

    /// Devices whose next segment to merge may have been deleted, with how far: only a
    /// checkpoint brings this replica past them.
    pub(super) fn stranded(&self) -> Vec<(DeviceId, u64)> {
        self.state
            .directory()
            .devices
            .iter()
            // Nothing of a device whose manifest is held is read at all.
            .filter(|(_, info)| !self.held_by_everyone(info))
            .map(|(d, i)| (*d, i.pruned))
            .filter(|(d, pruned)| self.applied_of(*d) < *pruned)
            .collect()
    }

    /// How many segments a checkpoint covers that this replica has not merged.
    fn missing_from(&self, checkpoint: &CheckpointRef) -> u64 {
        checkpoint
            .covers
            .iter()
            .map(|(device, n)| n.saturating_sub(self.applied_of(*device)))
            .sum()
    }

    /// Whether segment `seq` of `device` is merged (or passed over) here.
    fn merged(&self, device: DeviceId, seq: u64) -> bool {
        if device == self.state.device {
            let own = self.state.own();
            seq <= own.segments || own.beyond.contains(&seq)
        } else {
            self.state
                .peer(&device)
                .is_some_and(|p| seq <= p.applied || p.beyond.contains(&seq))
        }
    }

    /// Queues the next checkpoint to adopt, if any; returns whether it did. One is needed while
    /// segments this replica has not merged were deleted, or read damaged: the one covering
    /// the most such devices and segments (then the best). Otherwise the best checkpoint is
    /// fetched once, when that is cheaper than the segments it covers.
    pub(super) fn plan_checkpoint(&mut self, run: &mut SyncRun) -> bool {
        self.pass_over_revoked();
        let stranded = self.stranded();
        // What a checkpoint must cover to help: a stranded device up to its deleted segments,
        // a segment read damaged in this run up to itself (not by a checkpoint that failed to
        // authenticate before: it may be as big as the vault).
        let damaged: Vec<(DeviceId, u64)> = run
            .damaged_read
            .iter()
            .copied()
            .filter(|(device, seq)| !self.merged(*device, *seq))
            .collect();
        let directory = self.state.directory();
        let untried = directory.devices.iter().filter_map(|(d, info)| {
            if self.too_far_ahead(info.clock, run.now) {
                // Held by everyone (see `best_checkpoint`).
                return None;
            }
            let c = info.checkpoint.as_ref()?;
            let tried = run.tried_checkpoints.contains(&(*d, c.number))
                || self.refused_checkpoints.contains(&(*d, c.number));
            (!tried).then_some((*d, c))
        });
        let needed = untried
            .map(|(d, c)| {
                let covered = |wanted: &[(DeviceId, u64)]| {
                    wanted
                        .iter()
                        .filter(|(of, up_to)| c.covers(*of) >= *up_to)
                        .count()
                };
                let unreadable = self.unreadable_checkpoints.contains(&(d, c.number));
                let helps = covered(&stranded) + if unreadable { 0 } else { covered(&damaged) };
                (helps, d, c)
            })
            .filter(|(helps, _, _)| *helps > 0)
            .max_by_key(|(helps, d, c)| (*helps, c.total(), c.number, *d))
            .map(|(_, d, c)| (d, c.clone()));
        if needed.is_none() && !stranded.is_empty() && self.plan_unnamed_checkpoint(run) {
            return true;
        }
        let choice = match needed {
            Some(choice) => choice,
            None if run.tried_checkpoints.is_empty() => {
                let Some((writer, best)) = self.best_checkpoint() else {
                    return false;
                };
                if self.refused_checkpoints.contains(&(writer, best.number)) {
                    return false;
                }
                let missing = self.missing_from(best);
                // Nothing merged yet (what a replica that started over re-applied does not
                // count).
                let fresh = self.state.own().segments == 0
                    && self.state.peers().values().all(|p| p.applied == 0);
                let worth = if fresh {
                    missing >= 1
                } else {
                    missing >= 2 && best.bytes <= missing.saturating_mul(ADOPT_BYTES_PER_SEGMENT)
                };
                if !worth {
                    return false;
                }
                (writer, best.clone())
            }
            None => return false,
        };
        let (writer, reference) = choice;
        run.tried_checkpoints.insert((writer, reference.number));
        let name = checkpoint_name(writer, reference.number);
        self.queue_get(
            run,
            RequestKind::GetCheckpoint,
            &name,
            Pending::Checkpoint { writer, reference },
        );
        true
    }

    pub(super) fn on_checkpoint(
        &mut self,
        run: &mut SyncRun,
        writer: DeviceId,
        reference: CheckpointRef,
        response: Result<Response>,
    ) {
        let name = checkpoint_name(writer, reference.number);
        // Not fatal: the segments it covers may still be there to fetch one by one, or another
        // checkpoint covers them.
        let mut body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Swept since its writer's manifest was read: that manifest names a newer one.
            Err(e) if e.category() == Category::NotFound && !run.relisted => {
                return self.read_again(run, writer)
            }
            Err(e) => return run.report.errors.push(e),
        };
        let opened = self
            .unsign(&name, &mut body)
            .and_then(|author| {
                self.check_checkpoint(&author, writer, &reference.covers, &name)?;
                Ok(self.generation_keys(&author, &name)?.1)
            })
            .map_err(Unopened::Unauthentic)
            .and_then(|key| checkpoint::open(&key, self.vault, writer, reference.number, body));
        let checkpoint = match opened {
            Ok(c) => c,
            // Sealed so by its writer: it reads the same at every fetch (and a deflated one
            // costs up to its bound in memory each time). Not asked for again by this process.
            Err(Unopened::Sealed(e)) => {
                self.refused_checkpoints.push((writer, reference.number));
                return run.report.errors.push(e);
            }
            Err(Unopened::Unauthentic(e)) => {
                if !self
                    .unreadable_checkpoints
                    .contains(&(writer, reference.number))
                {
                    self.unreadable_checkpoints.push((writer, reference.number));
                }
                return run.report.errors.push(e);
            }
        };
        if checkpoint.covers != reference.covers {
            return run.report.errors.push(Error::corrupt(
                &name,
                "covers other segments than its writer's manifest says",
            ));
        }
        self.adopt_checkpoint(run, &name, writer, checkpoint);
    }

    /// Adopts a verified checkpoint `name` of `writer`: drops what it collected, merges its
    /// records, and passes the segments it covers. Held instead when it carries a stamp too far
    /// ahead.
    pub(super) fn adopt_checkpoint(
        &mut self,
        run: &mut SyncRun,
        name: &str,
        writer: DeviceId,
        checkpoint: checkpoint::Checkpoint,
    ) {
        let latest = checkpoint
            .records
            .iter()
            .map(|(_, r)| r.stamp.hlc)
            .chain([checkpoint.clock])
            .max()
            .unwrap_or_default();
        if self.too_far_ahead(latest, run.now) {
            // Another checkpoint, or the segments, may still do.
            return self.hold(run, name, writer, latest);
        }
        self.state.clock.observe(checkpoint.clock);
        self.note_verified(checkpoint.covers.iter().copied());
        let dropped = self.drop_collected(&checkpoint);
        run.report.changed.extend(dropped);
        let me = self.state.device;
        self.state.reserve(checkpoint.records.len());
        for (key, record) in checkpoint.records {
            if record.stamp.device != me {
                run.report.pulled += 1;
            }
            let key = key.into_vec();
            if self.merge_one(run, key.clone(), record) {
                run.report.changed.push(key);
            }
        }
        for (device, n) in checkpoint.covers {
            if device == me {
                self.own_segment_exists(n);
            } else {
                let peer = self.state.peer_mut(device);
                peer.segments = peer.segments.max(n);
                peer.pass_to(n);
            }
        }
        self.state.directory_mut().tail_bytes = 0;
    }

    /// Queues every segment not merged yet, above those that may have been deleted. Deleted
    /// segments that no checkpoint brought in are reported (for our own log: the push waits).
    pub(super) fn plan_segments(&mut self, run: &mut SyncRun) {
        self.pass_over_revoked();
        let me = self.state.device;
        // After a 404 the manifests are read again first: what is stranded then is reported.
        let stranded = if run.relist && !run.relisted {
            Vec::new()
        } else {
            self.stranded()
        };
        for (device, pruned) in stranded {
            let error = Error::Http {
                category: Category::NotFound,
                status: 404,
                code: None,
                context: format!(
                    "segments of {device} up to {pruned} were deleted, and no checkpoint in {} covers them",
                    self.store.display_name()
                ),
            };
            if device == me {
                run.own_log_failure(error);
            } else {
                run.report.errors.push(error);
            }
        }
        let own = self.state.own();
        let range = |device: DeviceId, applied: u64, known: u64| {
            let held_pruned = run.held_pruned.get(&device).copied().unwrap_or(0);
            let from = applied.max(self.pruned_of(device)).max(held_pruned) + 1;
            from..=known.min(from.saturating_add(MAX_SEGMENTS_PER_SYNC - 1))
        };
        let mut wanted: Vec<(DeviceId, u64)> = range(me, own.segments, own.published_segments)
            .filter(|seq| !own.beyond.contains(seq))
            .map(|seq| (me, seq))
            .collect();
        for (device, peer) in self.state.peers() {
            wanted.extend(
                range(*device, peer.applied, peer.segments)
                    .filter(|seq| !peer.beyond.contains(seq))
                    .map(|seq| (*device, seq)),
            );
        }
        // A segment read damaged in this run reads the same again.
        wanted.retain(|w| !run.damaged_read.contains(w));
        for (device, seq) in wanted {
            let name = segment_name(device, seq);
            self.queue_get(
                run,
                RequestKind::GetSegment,
                &name,
                Pending::Segment { device, seq },
            );
        }
    }

    /// Something `device`'s manifest promised is gone (deleted since we read it): read the
    /// manifests again once this phase is done, that one whatever its ETag.
    fn read_again(&mut self, run: &mut SyncRun, device: DeviceId) {
        run.relist = true;
        self.forget_manifest_etag(device);
    }

    /// Makes the next listing fetch `device`'s manifest whatever its ETag.
    pub(super) fn forget_manifest_etag(&mut self, device: DeviceId) {
        if device == self.state.device {
            self.state.own_mut().manifest_etag = None;
        } else if self.state.peer(&device).is_some() {
            self.state.peer_mut(device).manifest_etag = None;
        }
    }

    pub(super) fn on_segment(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        seq: u64,
        response: Result<Response>,
    ) {
        let name = segment_name(device, seq);
        let own = device == self.state.device;
        let mut body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Deleted since we read the manifest (a checkpoint covers it now): read it again.
            Err(e) if e.category() == Category::NotFound && !run.relisted => {
                return self.read_again(run, device)
            }
            // One of our published segments we cannot read back: pushing past it would publish
            // a log this state does not know. Say so on every sync until it is resolved.
            Err(e) if own => return run.own_log_failure(e),
            Err(e) if e.category() == Category::NotFound => return run.report.errors.push(e),
            Err(e) => return run.note_failure(e),
        };
        let body_len = body.len() as u64;
        let author = match self.unsign_from(own, &name, &mut body) {
            Ok(author) => author,
            Err(e) if own => return run.own_log_failure(e),
            // In a shared vault, an unsigned segment counts for no one: passed over for good,
            // so that it does not keep its device from ever being caught up. (One whose
            // signature fails, or that is not even an envelope, may be a cut-off answer:
            // fetched again.)
            Err(e) if self.is_shared() && e.category() == Category::Access => {
                run.report.errors.push(e);
                return self.segment_done(device, seq);
            }
            // Damaged (in a shared vault its signature fails first), or cut short on the way:
            // as a segment that fails to authenticate below.
            Err(e) => {
                if e.category() == Category::Corrupt {
                    run.found_damaged |= run.damaged_read.insert((device, seq));
                }
                return run.report.errors.push(e);
            }
        };
        if let Err(refused) = self.check_writer(&author, device, seq, &name) {
            // Read once, refused for good: its writes never count, whoever asks again.
            run.report.errors.push(refused);
            return self.segment_done(device, seq);
        }
        let segment_key = match self.generation_keys(&author, &name) {
            Ok((key, _)) => key,
            // Not merged: fetched again once this device holds the key (its grant may not
            // be written yet).
            Err(e) => return run.report.errors.push(e),
        };
        let segment = match open_segment(&segment_key, self.vault, device, seq, &mut body) {
            Ok(s) => s,
            Err(e) if own => return run.own_log_failure(e.into()),
            // Sealed so by its writer: it reads the same at every fetch (and a deflated one
            // costs up to its bound in memory each time). Reported once, passed over for good.
            Err(Unopened::Sealed(e)) => {
                run.report.errors.push(e);
                return self.segment_done(device, seq);
            }
            // Damaged, or cut short on the way: fetched again at the next sync, unless a
            // checkpoint that covers it brings its records first.
            Err(Unopened::Unauthentic(e)) => {
                run.found_damaged |= run.damaged_read.insert((device, seq));
                return run.report.errors.push(e);
            }
        };
        let latest = segment.changes().map(|c| c.hlc).max().unwrap_or_default();
        let held = self.too_far_ahead(latest, run.now);
        if held && own {
            return run.own_log_failure(Self::clock_ahead(run, &name, device, latest));
        }
        // What it holds within the bound is merged either way: it was written before the
        // clock ran ahead, and may be nowhere else.
        let limit = self.future_limit(run.now);
        let count = self.merge_segment(run, segment, limit);
        if held && !self.state.directory().retired.contains(&device) {
            // The rest is not applied: the segment is fetched again at the next sync. Said
            // once per device: when its manifest is held too, that says it.
            if run.held_devices.insert(device) {
                self.hold(run, &name, device, latest);
            }
            return;
        }
        // A retired device's held segment is passed over: it writes no more, and what its
        // runaway clock stamped was written again by the replica that took over.
        self.state.directory_mut().tail_bytes += body_len;
        if device != self.state.device {
            run.report.pulled += count;
        }
        self.segment_done(device, seq);
    }

    /// Segment `seq` of `device` is merged (or passed over): the next fetch starts after it.
    fn segment_done(&mut self, device: DeviceId, seq: u64) {
        let own = device == self.state.device;
        let (applied, beyond) = if own {
            let own = self.state.own_mut();
            (&mut own.segments, &mut own.beyond)
        } else {
            let peer = self.state.peer_mut(device);
            (&mut peer.applied, &mut peer.beyond)
        };
        beyond.insert(seq);
        while beyond.remove(&(*applied + 1)) {
            *applied += 1;
        }
    }

    /// Merges a verified segment; returns how many changes it held. For our own segments
    /// (found again after a crash, or after an older state was restored), the local writes it
    /// holds are no longer unpushed, and those newer than the state held are changes too.
    /// Only changes stamped at most `limit` are merged (the others are held: see
    /// [`Engine::too_far_ahead`]).
    pub(super) fn merge_segment(
        &mut self,
        run: &mut SyncRun,
        segment: SegmentView<'_>,
        limit: u64,
    ) -> u64 {
        let mut count = 0;
        self.state.reserve(segment.len());
        for change in segment.changes().filter(|c| c.hlc.wall_ms <= limit) {
            count += 1;
            let (key, record) = change.to_record(segment.device);
            if self.merge_one(run, key.clone(), record) {
                run.report.changed.push(key);
            }
        }
        count
    }

    /// Merges one write read from the store. One of ours found there (after a crash, or in a
    /// checkpoint) is no longer unpushed when it is at least as new as the local one. Returns
    /// whether the key's current record changed.
    ///
    /// A **conflict** is reported when the write comes from another device and this replica's
    /// current record is its own unpushed write: the other device cannot have seen it, so the
    /// two writes were concurrent, and one of them lost (whichever it was, it stays in the
    /// key's history). Concurrent writes that were both pushed before either side merged the
    /// other are not detected here: stamps alone cannot tell them from an overwrite.
    fn merge_one(&mut self, run: &mut SyncRun, key: Vec<u8>, record: Record) -> bool {
        self.state.clock.observe(record.stamp.hlc);
        let me = self.state.device;
        if record.stamp.device == me
            && self
                .state
                .latest_own(&key)
                .is_none_or(|own| own.stamp <= record.stamp)
        {
            self.state.mark_clean(&key);
        }
        let current = self.state.records().get(&key);
        // A version already in the key's history was seen before our write: no conflict.
        let concurrent = record.stamp.device != me
            && current.is_some_and(|c| c.stamp.device == me && *c != record)
            && self.state.dirty().contains(&key)
            && !self
                .state
                .history(&key)
                .iter()
                .any(|v| v.stamp == record.stamp);
        if concurrent {
            run.report.conflicts.push(key.clone());
        }
        self.state.merge(key, record)
    }
}

/// Whether `error` says an object's bytes are damaged (they do not authenticate, or its
/// envelope is cut or changed), rather than that it is of a version this build does not read.
fn damaged_at_rest(error: &Error) -> bool {
    matches!(
        error,
        Error::Corrupt { reason, .. } if matches!(
            reason.as_str(),
            "failed authentication" | "damaged header" | "truncated" | "its signature does not verify"
        )
    )
}
