//! Pushing: our unpushed writes as new segments (created only if absent), then our manifest.

use super::{Pending, SyncRun, MAX_PUSH_CONFLICTS};
use crate::clock::Stamp;
use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{Method, RequestKind, Response};
use crate::manifest::{manifest_name, Manifest};
use crate::s3;
use crate::segment::{self, open_segment, seal_segment, segment_name};

impl Engine {
    /// Queues our next segment; returns `false` when nothing is left to push.
    pub(super) fn plan_push(&mut self, run: &mut SyncRun) -> bool {
        if run.push_conflicts >= MAX_PUSH_CONFLICTS {
            run.stop(Error::Http {
                category: Category::Conflict,
                status: 412,
                code: None,
                context: format!(
                    "PUT segment in {}: segment numbers keep being taken; is another replica using device id {}?",
                    self.store.display_name(),
                    self.state.device
                ),
            });
            return true;
        }
        let me = self.state.device;
        let mut keys = Vec::new();
        let mut size = 0;
        while size < segment::SEGMENT_TARGET_BYTES {
            let Some(key) = run.push_keys.pop_front() else {
                break;
            };
            if !self.state.dirty.contains(&key) {
                continue;
            }
            match self.state.records.get(&key) {
                Some(record) if record.stamp.device == me => {
                    size += segment::encoded_size_hint(&key, record);
                    keys.push(key);
                }
                // A newer write from another device won: ours need not travel.
                _ => {
                    self.state.dirty.remove(&key);
                }
            }
        }
        if keys.is_empty() {
            return false;
        }
        let seq = self.state.own.segments + 1;
        let records = &self.state.records;
        let pairs: Vec<(&[u8], &crate::record::Record)> = keys
            .iter()
            .map(|k| (k.as_slice(), records.get(k).expect("key checked above")))
            .collect();
        let written: Vec<(Vec<u8>, Stamp)> =
            pairs.iter().map(|(k, r)| (k.to_vec(), r.stamp)).collect();
        let body = match seal_segment(&self.segment_key, self.vault, me, seq, &pairs) {
            Ok(body) => body,
            Err(e) => {
                run.stop(e);
                return true;
            }
        };
        drop(pairs);
        let mut headers = Vec::new();
        if !self.state.quirks.no_conditional_put {
            headers.push(("if-none-match".to_owned(), "*".to_owned()));
        }
        let url = self
            .store
            .object_url(&format!("{}{}", self.folder, segment_name(me, seq)));
        let mut op = self.op(
            RequestKind::PutSegment,
            Method::Put,
            url,
            Pending::PutSegment { seq, written },
        );
        op.headers = headers;
        op.body = body;
        run.push(op);
        true
    }

    pub(super) fn on_put_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
        response: Result<Response>,
    ) {
        let response = match response {
            Ok(r) => r,
            Err(e) => return run.stop(e),
        };
        if response.is_success() {
            self.own_segment_exists(seq);
            run.report.pushed += written.len() as u64;
            for (key, stamp) in &written {
                if self
                    .state
                    .records
                    .get(key)
                    .is_some_and(|r| r.stamp == *stamp)
                {
                    self.state.dirty.remove(key);
                }
            }
        } else if response.status == 412 {
            // The number is taken: a previous run wrote this segment and its state was lost.
            // Read it back before choosing the next number.
            run.push_conflicts += 1;
            let name = segment_name(self.state.device, seq);
            self.queue_get(
                run,
                RequestKind::GetSegment,
                &name,
                Pending::RecoverSegment { seq, written },
            );
        } else if s3::is_not_implemented(&response) && !self.state.quirks.no_conditional_put {
            // The store refuses `If-None-Match`: remember it and send the segment without it.
            self.state.quirks.no_conditional_put = true;
            requeue(run, written);
        } else {
            let name = segment_name(self.state.device, seq);
            run.stop(s3::error_from_response(
                &response,
                format!("PUT {name} in {}", self.store.display_name()),
            ));
        }
    }

    pub(super) fn on_recover_segment(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        written: Vec<(Vec<u8>, Stamp)>,
        response: Result<Response>,
    ) {
        let name = segment_name(self.state.device, seq);
        let body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            Err(e) => return run.stop(e),
        };
        match open_segment(&self.segment_key, self.vault, self.state.device, seq, body) {
            Ok(segment) => {
                self.merge_segment(segment);
            }
            // An unreadable object holds the number: skip past it, and say so.
            Err(e) => run.report.errors.push(e),
        }
        self.own_segment_exists(seq);
        requeue(run, written);
    }

    /// Our segment `seq` is known to be in the store (the next one is `seq + 1`).
    pub(super) fn own_segment_exists(&mut self, seq: u64) {
        let own = &mut self.state.own;
        own.segments = own.segments.max(seq);
        own.beyond.retain(|s| *s > own.segments);
        while own.beyond.remove(&(own.segments + 1)) {
            own.segments += 1;
        }
    }

    pub(super) fn plan_publish(&mut self, run: &mut SyncRun) {
        let own = &self.state.own;
        if run.own_manifest_unread || (own.segments <= own.published_segments && !own.republish) {
            return;
        }
        let manifest = Manifest {
            device: self.state.device,
            seq: own.manifest_seq + 1,
            segments: own.segments,
            clock: self.state.clock,
            merged: self
                .state
                .peers
                .iter()
                .map(|(d, p)| (*d, p.applied))
                .collect(),
        };
        let body = match manifest.seal(&self.manifest_key, self.vault) {
            Ok(body) => body,
            Err(e) => return run.stop(e),
        };
        let url = self.store.object_url(&format!(
            "{}{}",
            self.folder,
            manifest_name(manifest.device)
        ));
        let pending = Pending::PutManifest {
            seq: manifest.seq,
            segments: manifest.segments,
        };
        let mut op = self.op(RequestKind::PutManifest, Method::Put, url, pending);
        op.body = body;
        run.push(op);
    }

    pub(super) fn on_put_manifest(
        &mut self,
        run: &mut SyncRun,
        seq: u64,
        segments: u64,
        response: Result<Response>,
    ) {
        let name = manifest_name(self.state.device);
        match self.check(response, || format!("PUT {name}")) {
            Ok(response) => {
                let own = &mut self.state.own;
                own.manifest_seq = seq;
                own.published_segments = segments;
                own.manifest_etag = response.header("etag").map(str::to_owned);
                own.republish = false;
            }
            Err(e) => run.stop(e),
        }
    }
}

/// Puts the keys of a segment that did not land back at the front of the push queue.
fn requeue(run: &mut SyncRun, written: Vec<(Vec<u8>, Stamp)>) {
    for (key, _) in written.into_iter().rev() {
        run.push_keys.push_front(key);
    }
}
