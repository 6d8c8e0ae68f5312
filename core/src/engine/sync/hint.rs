//! The change hint: one small object, `<vault>/h`, that every device overwrites with 16 random
//! bytes after it publishes a manifest. An idle device polls it with a conditional GET
//! (`If-None-Match` on the ETag it last saw): `304 Not Modified` means no device published
//! since, and the poll ends there, one cheap request instead of a listing. Any other answer
//! (the hint moved, is gone, or could not be read) goes on into an ordinary sync.
//!
//! The hint says nothing secret (random bytes, no envelope) and decides nothing: a device that
//! does not write it (an older replica, a failed PUT), a hint deleted or put back by someone
//! with bucket access, only delays what a poller sees until its next full sync, which the
//! caller runs every so often whatever the hint says ([`crate::io::auto_sync`]).
//!
//! The hint is read before the manifests are listed, and written after our manifest: so a
//! publish that a listing missed changes the hint after the poller read it.

use super::{Pending, Phase, SyncRun};
use crate::engine::{Engine, Lifecycle};
use crate::error::Result;
use crate::http::{Method, RequestKind, Response};
use crate::ids::Timestamp;

/// The hint's name inside the vault folder.
pub(crate) const HINT_NAME: &str = "h";

impl Engine {
    /// Starts a sync that first reads the vault's change hint, conditionally on the ETag this
    /// process last saw of it, and ends there when the hint has not moved, nothing waits to be
    /// pushed and `list_anyway` is false. Otherwise it goes on as [`Engine::start_sync`] does.
    /// The first poll of a process (no ETag seen yet), one with unpushed writes, and one of a
    /// replica that has not joined its vault yet always go on.
    ///
    /// # Errors
    /// `SyncInProgress` (category `conflict`) when a sync is already running.
    pub fn start_poll(&mut self, now: Timestamp, list_anyway: bool) -> Result<()> {
        // A replica that starts over lists at once.
        let starts_over = self.own_clock_ran_ahead(now) || self.silent_too_long(now);
        let list_anyway = list_anyway
            || !self.state.directory().joined
            || !self.state.dirty().is_empty()
            || self.state.pending().is_some()
            || self.state.own().republish;
        self.start_sync(now)?;
        if starts_over {
            return Ok(());
        }
        let url = self.vault_url(HINT_NAME);
        let mut op = self.op(RequestKind::GetHint, Method::Get, url, Pending::Hint);
        if let Some(etag) = &self.hint_etag {
            op.headers.push(("if-none-match".into(), etag.clone()));
        }
        if let Lifecycle::Syncing(run) = &mut self.lifecycle {
            run.queue.clear();
            run.phase = Phase::Hint;
            run.list_anyway = list_anyway;
            run.queue.push_back(op);
        }
        Ok(())
    }

    /// The answer to the hint's GET: the poll ends on `304`, else the sync lists.
    pub(super) fn on_hint(&mut self, run: &mut SyncRun, response: Result<Response>) {
        // A store that ignores `If-None-Match` on GET (s3s-fs does) answers 200 with the
        // same ETag: as unchanged, for the price of 16 bytes.
        let unmoved = |r: &Response| {
            r.status == 304
                || (r.status == 200
                    && self.hint_etag.is_some()
                    && r.header("etag") == self.hint_etag.as_deref())
        };
        match response {
            Ok(r) if unmoved(&r) && !run.list_anyway => {
                run.report.hint_unchanged = true;
                run.phase = Phase::Done;
                return;
            }
            Ok(r) if unmoved(&r) => {}
            Ok(r) if r.is_success() => self.hint_etag = r.header("etag").map(str::to_owned),
            // Never written (a vault of older replicas), or deleted: this sync writes it, so
            // that the next polls have one to ask for.
            Ok(r) if r.status == 404 => {
                self.hint_etag = None;
                run.hint_missing = true;
            }
            // Anything else: the listing meets the same trouble, and reports it.
            _ => {}
        }
        run.phase = Phase::Listing;
        self.queue_list(run, None);
    }

    /// After our manifest is stored (or when the hint was missing): moves the hint, so
    /// pollers list.
    pub(super) fn plan_hint_write(&mut self, run: &mut SyncRun) {
        if !(run.published || run.hint_missing) || run.hint_written {
            return;
        }
        run.hint_written = true;
        let body: [u8; 16] = self.entropy.array();
        let url = self.vault_url(HINT_NAME);
        let mut op = self.op(RequestKind::PutHint, Method::Put, url, Pending::PutHint);
        op.body = body.to_vec().into();
        run.push(op);
    }

    /// The answer to the hint's PUT. A failure only delays other devices (until their next
    /// full sync): it is reported, and the sync still succeeds.
    pub(super) fn on_put_hint(&mut self, run: &mut SyncRun, response: Result<Response>) {
        // Our own write moved the hint: the next poll sees a new ETag and lists once. Taking
        // the ETag of our PUT instead could hide a publish by another device that came just
        // before it.
        if let Err(e) = self.check(response, || format!("PUT {HINT_NAME}")) {
            run.report.errors.push(e);
        }
    }
}
