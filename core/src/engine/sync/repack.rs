//! Repacking: moving the live chunks of our mostly-garbage packs into a new pack.
//!
//! A record names the pack and offset of each of its chunks, and records are never rewritten
//! for this (another device's record may name our chunks, and a rewrite would be a write that
//! can win over a concurrent one). Instead, at a look (`packs.rs`), the packs of ours that
//! hold less than [`CompactionPolicy::repack_live_percent`] live bytes are read (one ranged
//! GET per run of live chunks), their live chunks checked and copied byte for byte into one
//! new pack, and, once that pack is stored, a redirect is written for each old pack
//! (`r/<device>/<pack>`): where each moved chunk starts in the new pack. A reader that finds an
//! old pack gone reads its redirect and goes on in the new pack. From then on every reference
//! to a moved chunk counts as a reference to the new pack, so the old pack goes the way of any
//! unreferenced pack: noted at a look, deleted a grace period after a confirmation.
//!
//! Nothing is lost on a failure: the new pack is stored before any redirect names it, and a
//! pack no redirect names is unreferenced (collected like any other). A chunk that fails its
//! check stays where it is, and so does its pack.
//!
//! Only packs of chunks sealed bare (versions 6 and 10; a repacked pack keeps its chunks'
//! version) are repacked, only packs with no redirect yet,
//! and only once every active device writes manifests of version 5 or later (it follows
//! redirects).
//!
//! [`CompactionPolicy::repack_live_percent`]: crate::CompactionPolicy::repack_live_percent

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{Pending, SyncRun};
use crate::crypto::MANIFEST_VERSION;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::http::{Method, RequestKind, Response};
use crate::pack::{self, ChunkId, IndexEntry, PackBuilder, PackName, Redirect, BARE_SINCE};

/// At most this many live bytes are moved in one sync (unless one pack alone holds more): the
/// new pack is about the default pack size, and a repack holds about three times this.
const MAX_REPACK_BYTES: u64 = crate::transfer::DEFAULT_PACK_SIZE as u64;
/// One ranged GET reads at most this many bytes of a pack.
const MAX_RANGE: u64 = 16 << 20;

/// A chunk a record references, where it lies now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiveChunk {
    pub id: ChunkId,
    pub len: u32,
    pub offset: u64,
    pub sealed_len: u32,
    /// The envelope version of the pack (from the file record's layout).
    pub version: u8,
    /// The key generation it is sealed under (from the file record's layout).
    pub generation: u32,
    /// How many redirects lead from a record's reference to here (the longest chain).
    pub hops: usize,
}

/// The key generation of a chunk that records disagree about: none is held, so it is never
/// moved.
pub(crate) const UNKNOWN_GENERATION: u32 = u32::MAX;

/// A chunk this many redirects away from a record that names it is not moved again: readers
/// follow at most [`crate::pack::MAX_REDIRECTS`], and every repack adds one.
const MAX_HOPS_TO_MOVE: usize = crate::pack::MAX_REDIRECTS / 2;

/// A repack in progress.
pub(crate) struct Repacking {
    /// The key generation of every chunk moved: a pack holds chunks of one generation, its
    /// index and its redirects are sealed under it.
    generation: u32,
    /// The envelope version of every chunk moved: they are copied sealed (their associated
    /// data holds it), so the new pack's index says it, and a pack holds one version only.
    version: u8,
    /// Ranged GETs not answered yet.
    waiting: usize,
    /// The sealed chunks read and checked, by old pack and old offset.
    read: BTreeMap<([u8; 16], u64), (LiveChunk, Vec<u8>)>,
    /// A read failed: nothing is written.
    failed: bool,
}

impl Engine {
    /// At a look: reads the live chunks of the packs that are mostly garbage. `listed` are our
    /// packs (sorted, with their sizes when listed); `references` the live chunks by pack.
    pub(super) fn plan_repack(
        &mut self,
        run: &mut SyncRun,
        listed: &[([u8; 16], Option<u64>)],
        references: &HashMap<[u8; 16], BTreeMap<u64, LiveChunk>>,
    ) {
        let percent = self.compaction.repack_live_percent.min(100);
        if percent == 0 || !self.all_follow_redirects(run.now.0) {
            return;
        }
        let me = self.state.device.0;
        let mut chosen: Vec<([u8; 16], Vec<LiveChunk>)> = Vec::new();
        // The key generation and chunk version of the chunks moved.
        let mut generation: Option<(u32, u8)> = None;
        let mut total = 0u64;
        for (pack, size) in listed {
            let (Some(size), Some(live)) = (size, references.get(pack)) else {
                // Unknown size, or nothing live: collected, not repacked.
                continue;
            };
            let name = PackName {
                device: me,
                pack: *pack,
            };
            // One repack moves chunks of one key generation and one chunk version (the first
            // chosen pack's).
            let of = live.values().next().map(|c| (c.generation, c.version));
            if self.redirects.contains_key(&name)
                || live.values().any(|c| {
                    c.version < BARE_SINCE
                        || c.hops >= MAX_HOPS_TO_MOVE
                        || Some((c.generation, c.version)) != generation.or(of)
                })
                || of.is_none_or(|(g, _)| !self.holds_generation(g))
            {
                continue;
            }
            let live_bytes: u64 = live.values().map(|c| u64::from(c.sealed_len)).sum();
            if live_bytes.saturating_mul(100) >= size.saturating_mul(percent) {
                continue;
            }
            if total + live_bytes > MAX_REPACK_BYTES && !chosen.is_empty() {
                break;
            }
            total += live_bytes;
            generation = generation.or(of);
            chosen.push((*pack, live.values().copied().collect()));
        }
        let Some((generation, version)) = generation.filter(|_| !chosen.is_empty()) else {
            return;
        };
        let mut repacking = Repacking {
            generation,
            version,
            waiting: 0,
            read: BTreeMap::new(),
            failed: false,
        };
        for (pack, chunks) in chosen {
            // Runs of chunks that lie back to back, one GET each.
            let mut runs: Vec<Vec<LiveChunk>> = Vec::new();
            for chunk in chunks {
                match runs.last_mut() {
                    Some(run)
                        if run.last().is_some_and(|l| {
                            l.offset + u64::from(l.sealed_len) == chunk.offset
                                && chunk.offset + u64::from(chunk.sealed_len) - run[0].offset
                                    <= MAX_RANGE
                        }) =>
                    {
                        run.push(chunk)
                    }
                    _ => runs.push(vec![chunk]),
                }
            }
            for chunks in runs {
                let start = chunks[0].offset;
                let last = chunks.last().expect("runs are not empty");
                let end = last.offset + u64::from(last.sealed_len);
                let name = PackName { device: me, pack }.relative();
                let url = self.vault_url(&name);
                let mut op = self.op(
                    RequestKind::GetChunks,
                    Method::Get,
                    url,
                    Pending::RepackChunks {
                        pack,
                        start,
                        chunks,
                    },
                );
                op.headers
                    .push(("range".into(), format!("bytes={start}-{}", end - 1)));
                repacking.waiting += 1;
                run.push(op);
            }
        }
        run.repacking = Some(repacking);
    }

    /// Whether every active device other than us writes manifests that say it follows
    /// redirects.
    pub(super) fn all_follow_redirects(&self, now: u64) -> bool {
        !self.unread_peer_manifest()
            && self
                .peers_heard_from(now)
                .all(|(_, info)| info.format >= MANIFEST_VERSION)
    }

    pub(super) fn on_repack_chunks(
        &mut self,
        run: &mut SyncRun,
        pack: [u8; 16],
        start: u64,
        chunks: Vec<LiveChunk>,
        response: Result<Response>,
    ) {
        let name = PackName {
            device: self.state.device.0,
            pack,
        };
        let read = self
            .check(response, || format!("GET {} to repack it", name.relative()))
            .and_then(|r| self.check_repacked(&name, start, &chunks, r));
        let Some(repacking) = run.repacking.as_mut() else {
            return;
        };
        repacking.waiting -= 1;
        match read {
            Ok(sealed) => {
                for (chunk, bytes) in chunks.into_iter().zip(sealed) {
                    repacking.read.insert((pack, chunk.offset), (chunk, bytes));
                }
            }
            Err(e) => {
                repacking.failed = true;
                run.report.errors.push(e);
            }
        }
        if repacking.waiting == 0 {
            self.write_repacked(run);
        }
    }

    /// The sealed bytes of each chunk of a ranged GET from `start`, each checked (opened on a
    /// copy) before it is moved.
    fn check_repacked(
        &self,
        name: &PackName,
        start: u64,
        chunks: &[LiveChunk],
        response: Response,
    ) -> Result<Vec<Vec<u8>>> {
        let object = name.relative();
        let last = chunks.last().expect("runs are not empty");
        let want = (last.offset + u64::from(last.sealed_len) - start) as usize;
        let mut body = response.body;
        if response.status != 206 {
            // A store that ignores Range sends the whole pack.
            let from = start as usize;
            if body.len() < from + want {
                return Err(Error::corrupt(&object, "shorter than its files say"));
            }
            body.truncate(from + want);
            body.drain(..from);
        }
        if body.len() != want {
            return Err(Error::corrupt(
                &object,
                "a chunk range came back with another length",
            ));
        }
        let generation = chunks.last().expect("runs are not empty").generation;
        let [chunk_key, id_key, ..] = &self
            .file_keys(generation)
            .ok_or_else(|| crate::engine::sharing::not_given(&object, generation))?;
        let mut sealed = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            let at = (chunk.offset - start) as usize;
            let bytes = body[at..at + chunk.sealed_len as usize].to_vec();
            let mut copy = bytes.clone();
            pack::open_chunk(
                chunk_key,
                id_key,
                self.vault,
                chunk.version,
                chunk.id,
                chunk.len,
                &mut copy,
                &object,
            )?;
            sealed.push(bytes);
        }
        Ok(sealed)
    }

    /// With every live chunk read: the new pack, then (once it is stored) the redirects.
    fn write_repacked(&mut self, run: &mut SyncRun) {
        let Some(repacking) = run.repacking.take() else {
            return;
        };
        if repacking.failed || repacking.read.is_empty() {
            return;
        }
        let me = self.state.device;
        let to = PackName::random(me, &mut self.entropy);
        let capacity: usize = repacking.read.values().map(|(_, b)| b.len()).sum();
        let mut builder = PackBuilder::new(to, capacity + 4096);
        builder.version = repacking.version;
        let mut redirects: Vec<([u8; 16], Redirect)> = Vec::new();
        for ((pack, offset), (chunk, bytes)) in &repacking.read {
            let entry = IndexEntry {
                id: chunk.id,
                offset: *offset,
                sealed_len: chunk.sealed_len,
                len: chunk.len,
            };
            let moved = builder.push_sealed(&entry, bytes);
            match redirects.last_mut() {
                Some((from, redirect)) if from == pack => {
                    redirect.moves.push((*offset, moved.offset))
                }
                _ => redirects.push((
                    *pack,
                    Redirect {
                        to: to.pack,
                        moves: vec![(*offset, moved.offset)],
                    },
                )),
            }
        }
        let Some([chunk_key, ..]) = self.file_keys(repacking.generation) else {
            return;
        };
        let bytes = match builder.finish(&chunk_key, self.vault, &mut self.entropy) {
            Ok(bytes) => bytes,
            Err(e) => return run.report.errors.push(e),
        };
        // The name is new and random: a plain PUT overwrites nothing.
        let url = self.vault_url(&to.relative());
        let mut op = self.op(
            RequestKind::PutPack,
            Method::Put,
            url,
            Pending::PutRepacked {
                generation: repacking.generation,
                redirects,
            },
        );
        op.body = bytes.into();
        run.push(op);
    }

    pub(super) fn on_put_repacked(
        &mut self,
        run: &mut SyncRun,
        generation: u32,
        redirects: Vec<([u8; 16], Redirect)>,
        response: Result<Response>,
    ) {
        if let Err(e) = self.check(response, || "PUT of a repacked pack".into()) {
            // Unreferenced: collected like any other.
            return run.report.errors.push(e);
        }
        let Some([chunk_key, ..]) = self.file_keys(generation) else {
            return;
        };
        let me = self.state.device.0;
        for (pack, redirect) in redirects {
            let from = PackName { device: me, pack };
            let sealed = match redirect.seal(&chunk_key, self.vault, &from, &mut self.entropy) {
                Ok(sealed) => sealed,
                Err(e) => {
                    run.report.errors.push(e);
                    continue;
                }
            };
            let url = self.vault_url(&from.redirect());
            let mut op = self.op(
                RequestKind::PutRedirect,
                Method::Put,
                url,
                Pending::PutRedirect { pack, redirect },
            );
            op.body = sealed.into();
            run.push(op);
        }
    }

    pub(super) fn on_put_redirect(
        &mut self,
        run: &mut SyncRun,
        pack: [u8; 16],
        redirect: Redirect,
        response: Result<Response>,
    ) {
        let from = PackName {
            device: self.state.device.0,
            pack,
        };
        if let Err(e) = self.check(response, || format!("PUT {}", from.redirect())) {
            // The old pack stays referenced; the new one holds copies no redirect names yet.
            return run.report.errors.push(e);
        }
        self.redirects.insert(from, Arc::new(redirect));
        run.report.packs_repacked += 1;
    }
}

#[cfg(test)]
mod tests {
    use crate::clock::Hlc;
    use crate::crypto::MANIFEST_VERSION;
    use crate::engine::state::DeviceInfo;
    use crate::engine::Engine;
    use crate::entropy::Entropy;
    use crate::ids::DeviceId;
    use crate::key::VaultKey;
    use crate::store::Store;

    /// A device that writes manifests older than version 5 does not follow redirects: while it
    /// is active (not retired, heard from within the grace period and a heartbeat), nothing is
    /// repacked.
    #[test]
    fn nothing_is_repacked_while_an_active_device_writes_older_manifests() {
        let key = VaultKey::from_bytes([1; 32]);
        let store = Store::parse("file:///vault").unwrap();
        let mut engine = Engine::new(&key, store, DeviceId([1; 16]), Entropy::from_seed([2; 32]));
        let now = 1_767_225_600_000;
        let peer = DeviceId([2; 16]);
        let silence = engine.grace_with_margin_ms() + engine.heartbeat_ms();
        let mut set = |format: u8, wall_ms: u64| {
            let info = DeviceInfo {
                clock: Hlc {
                    wall_ms,
                    counter: 0,
                },
                format,
                ..DeviceInfo::default()
            };
            engine.state.directory_mut().devices.insert(peer, info);
            engine.all_follow_redirects(now)
        };
        assert!(!set(4, now - 1000), "an active version 4 device");
        assert!(
            set(MANIFEST_VERSION, now - 1000),
            "an active version 5 device"
        );
        // Not read since an upgrade: not known to follow them.
        assert!(!set(0, now - 1000));
        // Silent longer than it may be: it starts over (a new release reads again) when it
        // returns.
        assert!(!set(4, now - silence));
        assert!(set(4, now - silence - 1));
        assert!(!set(4, now - 1000));
        engine.state.directory_mut().retired.insert(peer);
        assert!(engine.all_follow_redirects(now), "a retired device");
    }
}
