//! Pulling: the listing, the manifests whose ETag changed, the segments not yet merged.

use super::{Pending, SyncRun, MAX_LIST_PAGES, MAX_SEGMENTS_PER_SYNC};
use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{RequestKind, Response};
use crate::ids::DeviceId;
use crate::manifest::{manifest_name, Manifest, MANIFEST_FOLDER};
use crate::s3;
use crate::segment::{open_segment, segment_name, Segment};

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
                    &key,
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

    pub(super) fn plan_manifests(&mut self, run: &mut SyncRun) {
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
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Our own log is sacred: not knowing it, we must not add to it.
            Err(e) if own => return run.own_log_failure(e),
            // Listed a moment ago and gone now: nothing to import, nothing to infer.
            Err(e) if e.category() == Category::NotFound => return run.report.errors.push(e),
            Err(e) => return run.note_failure(e),
        };
        let manifest = match Manifest::open(&self.manifest_key, self.vault, device, body) {
            Ok(m) => m,
            Err(e) if own => return run.own_log_failure(e),
            Err(e) => return run.report.errors.push(e),
        };
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
        } else {
            let trusted = self.state.peer(&device).map_or(0, |p| p.manifest_seq);
            if manifest.seq < trusted {
                return run.report.errors.push(rollback(trusted));
            }
            let peer = self.state.peer_mut(device);
            peer.manifest_seq = manifest.seq;
            peer.manifest_etag = Some(etag);
            peer.segments = peer.segments.max(manifest.segments);
        }
    }

    pub(super) fn plan_segments(&mut self, run: &mut SyncRun) {
        let me = self.state.device;
        let own = self.state.own();
        let range = |applied: u64, known: u64| {
            applied + 1..=known.min(applied.saturating_add(MAX_SEGMENTS_PER_SYNC))
        };
        let mut wanted: Vec<(DeviceId, u64)> = range(own.segments, own.published_segments)
            .filter(|seq| !own.beyond.contains(seq))
            .map(|seq| (me, seq))
            .collect();
        for (device, peer) in self.state.peers() {
            wanted.extend(
                range(peer.applied, peer.segments)
                    .filter(|seq| !peer.beyond.contains(seq))
                    .map(|seq| (*device, seq)),
            );
        }
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

    pub(super) fn on_segment(
        &mut self,
        run: &mut SyncRun,
        device: DeviceId,
        seq: u64,
        response: Result<Response>,
    ) {
        let name = segment_name(device, seq);
        let own = device == self.state.device;
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // One of our published segments we cannot read back: pushing past it would publish
            // a log this state does not know. Say so on every sync until it is resolved.
            Err(e) if own => return run.own_log_failure(e),
            Err(e) if e.category() == Category::NotFound => return run.report.errors.push(e),
            Err(e) => return run.note_failure(e),
        };
        let segment = match open_segment(&self.segment_key, self.vault, device, seq, body) {
            Ok(s) => s,
            Err(e) if own => return run.own_log_failure(e),
            Err(e) => return run.report.errors.push(e),
        };
        let count = self.merge_segment(segment);
        if device != self.state.device {
            run.report.pulled += count;
        }
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
    /// (found again after a crash), the local writes it holds are no longer unpushed.
    pub(super) fn merge_segment(&mut self, segment: Segment) -> u64 {
        let own = segment.device == self.state.device;
        let count = segment.changes.len() as u64;
        self.state.reserve(segment.changes.len());
        for change in segment.changes {
            self.state.clock.observe(change.hlc);
            let (key, record) = change.into_record(segment.device);
            if own
                && self
                    .state
                    .records()
                    .get(&key)
                    .is_none_or(|c| c.stamp <= record.stamp)
            {
                self.state.mark_clean(&key);
            }
            self.state.merge(key, record);
        }
        count
    }
}
