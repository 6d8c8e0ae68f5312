//! The replica: its records, its local state, and the sync state machine (in [`sync`]).
//!
//! # Contract
//!
//! [`Engine`] never performs I/O and never reads a clock. The caller:
//!
//! - changes records with [`Engine::put`] and [`Engine::delete`], passing the wall time;
//! - reads them with [`Engine::get`] and [`Engine::keys`];
//! - starts a sync with [`Engine::start_sync`], then repeatedly drains
//!   [`Engine::poll_request`] (several requests may be out at once: run them concurrently),
//!   feeds every answer back with [`Engine::handle_response`] (by [`RequestId`], in any order),
//!   and, when nothing is out and nothing is handed out, waits until [`Engine::poll_timeout`]
//!   (a retry's backoff), until [`Engine::poll_outcome`] returns the [`SyncReport`] or the
//!   error that stopped it;
//! - saves [`Engine::export_state`] whenever it likes (after every response is safest). Every
//!   exported state is consistent: a crash between any two steps loses nothing, and the next
//!   sync neither duplicates nor skips anything.
//!
//! Records may be changed while a sync runs; changes made after the push started go out with
//! the next sync.

mod state;
mod sync;

use std::collections::{BTreeMap, BTreeSet};

use crate::clock::{Hlc, Stamp};
use crate::credentials::Credentials;
use crate::crypto::SecretKey;
use crate::error::Result;
use crate::ids::{DeviceId, RequestId, Timestamp, VaultId};
use crate::key::{Purpose, VaultKey};
use crate::record::{Record, Records};
use crate::report::SyncReport;
use crate::retry::RetryPolicy;
use crate::sign::{SigV4, Signer};
use crate::store::Store;

use state::{LocalState, OwnLog, Quirks};
use sync::SyncRun;

/// One device's replica of a vault. See the [module documentation](self) for the contract.
pub struct Engine {
    vault: VaultId,
    segment_key: SecretKey,
    manifest_key: SecretKey,
    state_key: SecretKey,
    store: Store,
    /// The vault's folder in the bucket, `"<vault id>/"`.
    folder: String,
    state: LocalState,
    sync: Option<SyncRun>,
    outcome: Option<Result<SyncReport>>,
    last_report: Option<SyncReport>,
    next_request: u64,
    /// Signs requests; never persisted.
    signer: Option<Box<dyn Signer>>,
    /// Store time minus our time, learnt from a RequestTimeTooSkewed answer.
    clock_offset_ms: i64,
    retry: RetryPolicy,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("vault", &self.vault)
            .field("device", &self.state.device)
            .field("store", &self.store.display_name())
            .field("records", &self.state.records.len())
            .field("unpushed", &self.state.dirty.len())
            .field("syncing", &self.sync.is_some())
            .finish()
    }
}

impl Engine {
    /// A new, empty replica of the vault `key` opens, as device `device`, in `store`.
    pub fn new(key: &VaultKey, store: Store, device: DeviceId) -> Self {
        Self::with_state(
            key,
            store,
            LocalState {
                device,
                clock: Hlc::default(),
                records: Records::default(),
                dirty: BTreeSet::new(),
                own: OwnLog::default(),
                peers: BTreeMap::new(),
                quirks: Quirks::default(),
            },
        )
    }

    /// A replica restored from bytes made by [`Engine::export_state`].
    ///
    /// # Errors
    /// `WrongVault` when the state was made with another key; `Corrupt` when it is damaged.
    pub fn from_state(key: &VaultKey, store: Store, state: &[u8]) -> Result<Self> {
        let state_key = key.subkey(Purpose::LocalState);
        let state = LocalState::import(&state_key, key.vault_id(), state)?;
        Ok(Self::with_state(key, store, state))
    }

    fn with_state(key: &VaultKey, store: Store, state: LocalState) -> Self {
        let vault = key.vault_id();
        Engine {
            vault,
            segment_key: key.subkey(Purpose::Segment),
            manifest_key: key.subkey(Purpose::Manifest),
            state_key: key.subkey(Purpose::LocalState),
            folder: format!("{}{vault}/", store.prefix()),
            store,
            state,
            sync: None,
            outcome: None,
            last_report: None,
            next_request: 0,
            signer: None,
            clock_offset_ms: 0,
            retry: RetryPolicy::default(),
        }
    }

    /// Signs every request with AWS Signature Version 4 and `credentials`, for the store's
    /// region. Credentials stay in memory: they are never part of the exported state. A
    /// `file://` store signs nothing and ignores them.
    pub fn set_credentials(&mut self, credentials: Credentials) {
        if let Some(region) = self.store.region() {
            self.signer = Some(Box::new(SigV4::new(credentials, region.to_owned())));
        }
    }

    /// Signs every request with `signer` (or sends them unsigned with `None`, for a transport
    /// that signs or presigns them itself).
    pub fn set_signer(&mut self, signer: Option<Box<dyn Signer>>) {
        self.signer = signer;
    }

    /// Replaces the retry policy (default: [`RetryPolicy::default`]).
    pub fn set_retry_policy(&mut self, policy: RetryPolicy) {
        self.retry = policy;
    }

    /// How far the store's clock is ahead of ours, in milliseconds, as learnt from a
    /// RequestTimeTooSkewed answer (0 until then). Requests are signed with the corrected time.
    pub fn clock_offset_ms(&self) -> i64 {
        self.clock_offset_ms
    }

    /// The replica's local state as encrypted bytes, for [`Engine::from_state`].
    pub fn export_state(&self) -> Vec<u8> {
        self.state.export(&self.state_key, self.vault)
    }

    /// This replica's device id.
    pub fn device(&self) -> DeviceId {
        self.state.device
    }

    /// The vault's public id (its folder name in the bucket).
    pub fn vault_id(&self) -> VaultId {
        self.vault
    }

    /// The store this replica syncs with.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Sets `key` to `value`; returns the write's stamp.
    pub fn put(
        &mut self,
        key: impl Into<Vec<u8>>,
        value: impl Into<Vec<u8>>,
        now: Timestamp,
    ) -> Stamp {
        self.write(key.into(), Some(value.into()), now)
    }

    /// Deletes `key` by writing a tombstone (also when the key is unknown here: another device
    /// may have it). Returns the write's stamp.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>, now: Timestamp) -> Stamp {
        self.write(key.into(), None, now)
    }

    fn write(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, now: Timestamp) -> Stamp {
        let stamp = Stamp {
            hlc: self.state.clock.tick(now),
            device: self.state.device,
        };
        self.state.dirty.insert(key.clone());
        self.state.records.merge(key, Record { value, stamp });
        stamp
    }

    /// The value of `key`, or `None` when it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.state.records.get(key)?.value.as_deref()
    }

    /// The current record of `key`, tombstones included.
    pub fn record(&self, key: &[u8]) -> Option<&Record> {
        self.state.records.get(key)
    }

    /// Live keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        self.state.records.live_keys(prefix)
    }

    /// How many local writes are not yet in the store.
    pub fn unpushed(&self) -> usize {
        self.state.dirty.len()
    }

    /// The report of the last finished sync, also when it failed.
    pub fn last_report(&self) -> Option<&SyncReport> {
        self.last_report.as_ref()
    }

    /// The current hybrid logical clock reading.
    pub fn clock(&self) -> Hlc {
        self.state.clock
    }

    fn next_request_id(&mut self) -> RequestId {
        self.next_request += 1;
        RequestId(self.next_request)
    }
}
