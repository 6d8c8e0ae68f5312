//! Key generations in a shared vault. Between reading the manifests and the segments, this
//! device fetches its grant of every generation a revocation started that it does not hold
//! (one GET each, once). After pushing its segments and before publishing its manifest, an
//! owner holding the newest generation writes its grant for each member left that has none
//! yet (one PUT each): the manifest that publishes a revocation is never read before the
//! members left can read what follows it. Nothing is asked when nothing changed.

use super::{Pending, SyncRun};
use crate::engine::Engine;
use crate::error::{Category, Error, Result};
use crate::http::{Method, RequestKind, Response};

impl Engine {
    /// Queues the key grants to read.
    pub(super) fn plan_key_reads(&mut self, run: &mut SyncRun) {
        let Some(me) = self.own_fingerprint() else {
            return;
        };
        for generation in self.missing_generations() {
            let Some(name) = self.rekey_name(generation, &me) else {
                continue;
            };
            self.queue_get(
                run,
                RequestKind::GetGrant,
                &name,
                Pending::KeyGrant { generation },
            );
        }
    }

    /// Queues the key grants to write (when this device may push).
    pub(super) fn plan_key_writes(&mut self, run: &mut SyncRun) {
        if !run.may_push {
            return;
        }
        for (generation, member, role) in self.rekeys_to_write() {
            let body = match self.seal_rekey(generation, &member, role, run.now) {
                Ok(body) => body,
                Err(e) => {
                    run.report.errors.push(e);
                    continue;
                }
            };
            let fingerprint = member.fingerprint();
            let Some(name) = self.rekey_name(generation, &fingerprint) else {
                continue;
            };
            let url = self.vault_url(&name);
            let mut op = self.op(
                RequestKind::PutGrant,
                Method::Put,
                url,
                Pending::PutKeyGrant {
                    generation,
                    member: fingerprint.0,
                },
            );
            // Made once: a grant already there (an earlier try whose answer was lost, or
            // another owner's) is as good.
            op.headers = vec![("if-none-match".to_owned(), "*".to_owned())];
            op.body = body.into();
            run.push(op);
        }
    }

    pub(super) fn on_key_grant(
        &mut self,
        run: &mut SyncRun,
        generation: u32,
        response: Result<Response>,
    ) {
        let what = || format!("GET the grant of key generation {generation}");
        let opened = self
            .check(response, what)
            .and_then(|r| self.open_rekey(generation, &r.body));
        match opened {
            Ok(()) => {}
            // No grant for us: we are not among the members the revoking owner sealed the
            // key to (or it is not written yet). Segments sealed with it stay unread, and say
            // so.
            Err(e) if e.category() == Category::NotFound => {
                run.report.errors.push(Error::Access(format!(
                    "no grant of key generation {generation} for this person in the vault: what is written under it stays unread here"
                )))
            }
            Err(e) => run.report.errors.push(e),
        }
    }

    pub(super) fn on_put_key_grant(
        &mut self,
        run: &mut SyncRun,
        generation: u32,
        member: [u8; 10],
        response: Result<Response>,
    ) {
        let what = || format!("PUT the grant of key generation {generation}");
        match self.check(response, what) {
            Ok(_) | Err(Error::Http { status: 412, .. }) => {
                self.state
                    .directory_mut()
                    .sharing
                    .rekeyed
                    .insert((generation, member));
            }
            // The revocation is not published until every member left can read what follows.
            Err(e) => run.stop(e),
        }
    }
}
