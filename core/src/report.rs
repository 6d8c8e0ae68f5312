//! What a sync did: requests, bytes, records, and the errors it met.

use core::fmt;
use std::collections::BTreeMap;

use crate::error::{Category, Error};
use crate::http::RequestKind;

/// The account of one sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Requests sent, by kind (kinds never sent are absent).
    pub requests_by_kind: BTreeMap<RequestKind, u64>,
    /// Bytes of request bodies sent.
    pub bytes_sent: u64,
    /// Bytes of response bodies received.
    pub bytes_received: u64,
    /// Our records written to the store in new segments.
    pub pushed: u64,
    /// Records received from other devices' segments and checkpoints.
    pub pulled: u64,
    /// Keys whose value (or deletion) changed here because of this sync's pull, sorted, each
    /// once: what an app needs to refresh. Keys changed by earlier syncs of this process that
    /// failed or were cancelled are named here too, and so are those whose record was dropped
    /// when the replica started over or forgot what it merged (a revocation heard late) and
    /// differs now. May name a key whose value ends as it was.
    pub changed: Vec<Vec<u8>>,
    /// Keys where this sync met a write made concurrently with one of this replica's unpushed
    /// writes (one of the two lost; both are in the key's history), sorted, each once.
    pub conflicts: Vec<Vec<u8>>,
    /// A checkpoint of the vault was written (compaction).
    pub compacted: bool,
    /// Tombstones the checkpoint written left out (garbage collection).
    pub collected: u64,
    /// Our segments deleted because checkpoints cover them (segment collection).
    pub segments_deleted: u64,
    /// Our packs deleted because no file references them any more (pack collection).
    pub packs_deleted: u64,
    /// Our mostly-garbage packs whose live chunks this sync moved into a new pack (and wrote a
    /// redirect for); the old packs are deleted later, as unreferenced ones are.
    pub packs_repacked: u64,
    /// The replica started over under a new device id (it had been out of touch longer than
    /// the grace period, or another device retired it): the old id. Its view was rebuilt from
    /// the vault.
    pub started_over: Option<crate::ids::DeviceId>,
    /// Keys whose unpushed writes were applied again with fresh stamps when the replica started
    /// over.
    pub restamped: Vec<Vec<u8>>,
    /// A poll ([`crate::Engine::start_poll`]) found the vault's change hint as it was: nothing
    /// was listed or fetched. `changed` may still name keys that earlier syncs changed without
    /// saying so (see there).
    pub hint_unchanged: bool,
    /// Requests sent again after a failure that may pass (5xx, throttling, timeouts, a clock
    /// correction).
    pub retries: u64,
    /// Objects that could not be imported (corrupt, wrong vault, rollback, missing) and
    /// requests that failed. The sync went on past each of them.
    pub errors: Vec<Error>,
}

impl SyncReport {
    /// Total requests sent.
    pub fn requests(&self) -> u64 {
        self.requests_by_kind.values().sum()
    }

    /// Requests of one kind.
    pub fn requests_of(&self, kind: RequestKind) -> u64 {
        self.requests_by_kind.get(&kind).copied().unwrap_or(0)
    }

    /// How many errors of each category the sync met.
    pub fn errors_by_category(&self) -> Vec<(Category, usize)> {
        let mut counts: Vec<(Category, usize)> = Vec::new();
        for error in &self.errors {
            match counts.iter_mut().find(|(c, _)| *c == error.category()) {
                Some((_, n)) => *n += 1,
                None => counts.push((error.category(), 1)),
            }
        }
        counts.sort();
        counts
    }

    pub(crate) fn count_request(&mut self, kind: RequestKind, body_len: usize) {
        *self.requests_by_kind.entry(kind).or_default() += 1;
        self.bytes_sent += body_len as u64;
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pushed {} pulled {} | {} requests (",
            self.pushed,
            self.pulled,
            self.requests()
        )?;
        let mut first = true;
        for (kind, n) in &self.requests_by_kind {
            write!(f, "{}{} {n}", if first { "" } else { ", " }, kind.as_str())?;
            first = false;
        }
        write!(
            f,
            ") | sent {} B, received {} B",
            self.bytes_sent, self.bytes_received
        )?;
        if !self.errors.is_empty() {
            write!(f, " | errors:")?;
            for (category, n) in self.errors_by_category() {
                write!(f, " {category} {n}")?;
            }
        }
        Ok(())
    }
}
