//! Checkpoints no manifest names. Segments are deleted only once a checkpoint covers them
//! (FORMAT 8.9), and a manifest names that checkpoint as long as its writer remembers it. A
//! replica whose state went back (restored from a backup) forgets it: the manifest it writes
//! next names an older checkpoint, or none, and the one that covered the deleted segments is
//! still in the store under a name nobody reads. A reader left with deleted segments that no
//! named checkpoint covers lists the vault's checkpoints, once per sync, and tries those no
//! manifest names, newest first, adopting the first that covers what it misses.

use super::{Pending, SyncRun, MAX_LIST_PAGES};
use crate::checkpoint::{self, checkpoint_name, parse_checkpoint_name, CHECKPOINT_FOLDER};
use crate::crypto::Unopened;
use crate::engine::Engine;
use crate::error::{Category, Result};
use crate::http::{Method, RequestKind, Response};
use crate::ids::DeviceId;
use crate::s3;

/// At most this many unnamed checkpoints are fetched in one sync.
const MAX_TRIES: usize = 8;

impl Engine {
    /// With deleted segments that no named checkpoint covers: queues the listing of the
    /// checkpoints (once per sync), or the next unnamed one to try. Returns whether it queued
    /// anything.
    pub(super) fn plan_unnamed_checkpoint(&mut self, run: &mut SyncRun) -> bool {
        let Some(left) = &mut run.unnamed_checkpoints else {
            run.unnamed_checkpoints = Some(Vec::new());
            self.queue_checkpoint_list(run, None);
            return true;
        };
        if run.unnamed_tried >= MAX_TRIES {
            return false;
        }
        let Some((writer, number)) = left.pop() else {
            return false;
        };
        run.unnamed_tried += 1;
        run.tried_checkpoints.insert((writer, number));
        let name = checkpoint_name(writer, number);
        let pending = Pending::UnnamedCheckpoint { writer, number };
        self.queue_get(run, RequestKind::GetCheckpoint, &name, pending);
        true
    }

    /// Whether `writer`'s checkpoint `number` is worth trying: no manifest read here names it,
    /// nor one of that writer numbered as high (a writer whose state went back names a lower
    /// one; the one before its named one is kept for readers a moment behind, and covers
    /// less).
    fn unnamed_and_newer(&self, writer: DeviceId, number: u64) -> bool {
        let devices = &self.state.directory().devices;
        devices
            .get(&writer)
            .and_then(|i| i.checkpoint.as_ref())
            .is_none_or(|c| number > c.number)
    }

    fn queue_checkpoint_list(&mut self, run: &mut SyncRun, token: Option<&str>) {
        let prefix = format!("{}{CHECKPOINT_FOLDER}", self.folder);
        let url = self.store.list_url(&prefix, token);
        let op = self.op(
            RequestKind::ListCheckpoints,
            Method::Get,
            url,
            Pending::ListCheckpoints,
        );
        run.push(op);
    }

    pub(super) fn on_checkpoint_list(&mut self, run: &mut SyncRun, response: Result<Response>) {
        let page = match self
            .check(response, || "LIST checkpoints".into())
            .and_then(|r| s3::parse_list(&r.body))
        {
            Ok(page) => page,
            // The deleted segments are reported as they would be without it.
            Err(e) => return run.report.errors.push(e),
        };
        let prefix = format!("{}{CHECKPOINT_FOLDER}", self.folder);
        let found: Vec<(DeviceId, u64)> = page
            .objects
            .iter()
            .filter_map(|(key, _)| parse_checkpoint_name(key.strip_prefix(&prefix)?))
            .filter(|(d, n)| {
                self.unnamed_and_newer(*d, *n)
                    && !run.tried_checkpoints.contains(&(*d, *n))
                    && !self.refused_checkpoints.contains(&(*d, *n))
            })
            .collect();
        let left = run.unnamed_checkpoints.get_or_insert_with(Vec::new);
        left.extend(found);
        // Tried from the end: the highest numbers (the latest a writer wrote) first.
        left.sort_unstable_by_key(|(d, n)| (*n, *d));
        left.dedup();
        if let Some(token) = page.next_token {
            if run.seen_tokens.len() < MAX_LIST_PAGES && run.seen_tokens.insert(token.clone()) {
                self.queue_checkpoint_list(run, Some(&token));
            }
        }
    }

    /// An unnamed checkpoint fetched: adopted when it is sound (signed by a member who may
    /// write it, as a named one) and covers a device whose deleted segments we miss that far.
    pub(super) fn on_unnamed_checkpoint(
        &mut self,
        run: &mut SyncRun,
        writer: DeviceId,
        number: u64,
        response: Result<Response>,
    ) {
        let name = checkpoint_name(writer, number);
        let mut body = match self.check(response, || format!("GET {name}")) {
            Ok(r) => r.body,
            // Swept since the listing: its writer had a newer one.
            Err(e) if e.category() == Category::NotFound => return,
            Err(e) => return run.report.errors.push(e),
        };
        let opened = self
            .unsign(&name, &mut body)
            .and_then(|author| Ok((self.generation_keys(&author, &name)?.1, author)))
            .map_err(Unopened::Unauthentic)
            .and_then(|(key, author)| {
                let checkpoint = checkpoint::open(&key, self.vault, writer, number, body)?;
                self.check_checkpoint(&author, writer, &checkpoint.covers, &name)
                    .map_err(Unopened::Unauthentic)?;
                Ok(checkpoint)
            });
        let checkpoint = match opened {
            Ok(c) => c,
            // Sealed so by its writer: not asked for again by this process.
            Err(Unopened::Sealed(e)) => {
                self.refused_checkpoints.push((writer, number));
                return run.report.errors.push(e);
            }
            Err(Unopened::Unauthentic(e)) => return run.report.errors.push(e),
        };
        let helps = self.stranded().iter().any(|(device, pruned)| {
            let covered = checkpoint.covers.iter().find(|(d, _)| d == device);
            covered.is_some_and(|(_, n)| n >= pruned)
        });
        if helps {
            self.adopt_checkpoint(run, &name, writer, checkpoint);
        }
    }
}
