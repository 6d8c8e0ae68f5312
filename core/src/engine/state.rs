//! The replica's local state: what survives a restart, exported and imported as bytes.
//!
//! The bytes are sealed with the vault's local-state subkey, so a state file reveals nothing
//! without the key and a state made with another key is refused as `wrong-vault`.

use std::collections::{BTreeMap, BTreeSet};

use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

use crate::clock::Hlc;
use crate::crypto::{self, ObjectAd, ObjectKind, SecretKey};
use crate::error::{Error, Result};
use crate::ids::{DeviceId, VaultId};
use crate::record::{Record, Records};

const STATE_NAME: &str = "local-state";
const STATE_VERSION: u32 = 1;

/// How far our own log has gone.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OwnLog {
    /// The sequence number of our last manifest written (or adopted from the store).
    pub manifest_seq: u64,
    /// The ETag the store gave that manifest, to skip fetching it back.
    pub manifest_etag: Option<String>,
    /// Our segments `1..=segments` exist in the store.
    pub segments: u64,
    /// How many of them our last manifest names.
    pub published_segments: u64,
    /// Our manifest must be written again (it was found rolled back or damaged).
    pub republish: bool,
    /// Our segments above `segments` found again after a crash (see [`PeerLog::beyond`]).
    #[serde(default)]
    pub beyond: BTreeSet<u64>,
}

/// What we know of another device's log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PeerLog {
    /// The highest manifest sequence number trusted; anything lower is a rollback.
    pub manifest_seq: u64,
    /// The ETag of that manifest, to skip fetching it again.
    pub manifest_etag: Option<String>,
    /// Its segments `1..=segments` exist, per its manifest.
    pub segments: u64,
    /// Segments `1..=applied` are merged here.
    pub applied: u64,
    /// Segments above `applied` merged already (a gap below them is still missing), so a
    /// segment that cannot be read does not make every later one be fetched again.
    #[serde(default)]
    pub beyond: BTreeSet<u64>,
}

/// What we learned about the store's behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Quirks {
    /// The store answered NotImplemented to `If-None-Match: *`: do not send it again.
    pub no_conditional_put: bool,
}

/// Everything a replica keeps between runs.
pub(crate) struct LocalState {
    pub device: DeviceId,
    pub clock: Hlc,
    pub records: Records,
    pub dirty: BTreeSet<Vec<u8>>,
    pub own: OwnLog,
    pub peers: BTreeMap<DeviceId, PeerLog>,
    pub quirks: Quirks,
}

struct RecordsOut<'a>(&'a Records);

impl Serialize for RecordsOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for (key, record) in self.0.iter() {
            seq.serialize_element(&(serde_bytes::Bytes::new(key), record))?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct StateOut<'a> {
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: RecordsOut<'a>,
    dirty: Vec<&'a serde_bytes::Bytes>,
    own: &'a OwnLog,
    peers: &'a BTreeMap<DeviceId, PeerLog>,
    quirks: &'a Quirks,
}

#[derive(Deserialize)]
struct StateIn {
    version: u32,
    device: DeviceId,
    clock: Hlc,
    records: Vec<(ByteBuf, Record)>,
    dirty: Vec<ByteBuf>,
    own: OwnLog,
    peers: BTreeMap<DeviceId, PeerLog>,
    quirks: Quirks,
}

impl LocalState {
    pub fn export(&self, key: &SecretKey, vault: VaultId) -> Vec<u8> {
        let out = StateOut {
            version: STATE_VERSION,
            device: self.device,
            clock: self.clock,
            records: RecordsOut(&self.records),
            dirty: self
                .dirty
                .iter()
                .map(|k| serde_bytes::Bytes::new(k))
                .collect(),
            own: &self.own,
            peers: &self.peers,
            quirks: &self.quirks,
        };
        let ad = state_ad(vault);
        let mut sealing = crypto::begin_seal(&ad, self.records.len() * 64)
            // begin_seal fails only without randomness, which the engine already needed.
            .expect("randomness available");
        sealing.buf =
            postcard::to_extend(&out, sealing.buf).expect("postcard serializes into a Vec");
        crypto::finish_seal(key, sealing)
    }

    pub fn import(key: &SecretKey, vault: VaultId, bytes: &[u8]) -> Result<Self> {
        let plain = crypto::open(key, &state_ad(vault), bytes.to_vec()).map_err(|e| match e {
            Error::WrongVault { .. } => Error::WrongVault {
                object: "local state".into(),
            },
            Error::Corrupt { reason, .. } => Error::corrupt("local state", reason),
            other => other,
        })?;
        let state: StateIn = crypto::decode_exact(&plain)
            .map_err(|e| Error::corrupt("local state", format!("does not decode: {e}")))?;
        if state.version != STATE_VERSION {
            return Err(Error::corrupt(
                "local state",
                format!("state version {} is not supported", state.version),
            ));
        }
        let mut records = Records::default();
        records.reserve(state.records.len());
        for (key, record) in state.records {
            records.merge(key.into_vec(), record);
        }
        Ok(LocalState {
            device: state.device,
            clock: state.clock,
            records,
            dirty: state.dirty.into_iter().map(ByteBuf::into_vec).collect(),
            own: state.own,
            peers: state.peers,
            quirks: state.quirks,
        })
    }
}

fn state_ad(vault: VaultId) -> ObjectAd<'static> {
    ObjectAd {
        vault,
        kind: ObjectKind::LocalState,
        name: STATE_NAME,
    }
}
