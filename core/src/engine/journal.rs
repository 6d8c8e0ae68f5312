//! The local journal: sealed state deltas appended after every change, so that a write is
//! durable when `put` returns and saving costs what changed, not what the vault holds.
//!
//! A journal belongs to exactly one snapshot: its header carries the first 16 bytes of the
//! BLAKE3 hash of that snapshot's bytes, and entry `i` is sealed with the name
//! `journal/<that hash in hex>/<i>` in its associated data, so entries cannot be reordered,
//! dropped from the middle or replayed onto another snapshot. Layout (`docs/FORMAT.md`):
//!
//! ```text
//! "BKSJ" | version u8 = 10 | snapshot hash [16]
//! then per entry: length u32 BE | sealed object (kind 4) holding one postcard delta
//! ```
//!
//! A crash while appending leaves a short last entry: reading stops there and the host cuts the
//! file back to the last whole entry. A whole entry that fails authentication in the middle is
//! damage, reported as `corrupt`.

use crate::crypto::{self, ObjectAd, ObjectKind, SealBuffer, SecretKey};
use crate::entropy::Entropy;
use crate::error::{Error, Result};
use crate::ids::VaultId;

const MAGIC: &[u8; 4] = b"BKSJ";
/// The journal layout this build writes: version 2 deltas carry the directory, version 3 the
/// directory of state version 4, version 4 that of state version 5, version 5 the quirks of
/// state version 6 (laid out as version 4's), version 6 the directory of state version 7 (with
/// the clock leap), version 7 that of state version 8 (with the pack collection), version 8 that
/// of state version 9 (with the packs in parts), version 9 that of state version 10 (with the
/// sharing state), version 10 lists the keys a push cleaned instead of writing their records
/// again. Versions 1 to 9 are still read (and then replaced, after a new snapshot).
pub(crate) const VERSION: u8 = 10;
/// Bytes of the header: magic, version, snapshot hash.
pub const HEADER_LEN: usize = 4 + 1 + 16;

/// Where the next entry goes: which snapshot the journal follows, and the entry's index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cursor {
    base: [u8; 16],
    next: u64,
}

impl Cursor {
    /// A new, empty journal following `snapshot`.
    pub fn after(snapshot: &[u8]) -> Self {
        let mut base = [0u8; 16];
        base.copy_from_slice(&blake3::hash(snapshot).as_bytes()[..16]);
        Cursor { base, next: 0 }
    }

    /// The journal file's header.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.base);
        out
    }

    /// Starts the next entry, for a delta of `len` bytes: its length's four bytes (filled by
    /// [`Cursor::finish`]), then the envelope, into which the delta is written and sealed in
    /// place.
    pub fn begin(
        &mut self,
        key: &SecretKey,
        vault: VaultId,
        len: usize,
        entropy: &mut Entropy,
    ) -> SealBuffer {
        let name = self.entry_name(self.next);
        self.next += 1;
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::JournalEntry,
            name: &name,
        };
        crypto::begin_seal_after(key, &ad, &[0; 4], len, entropy)
            .expect("a journal entry's name is short")
    }

    /// The entry [`Cursor::begin`] started, sealed and framed with its length.
    pub fn finish(sealing: SealBuffer) -> Vec<u8> {
        let mut framed = crypto::finish_seal(sealing);
        let len = u32::try_from(framed.len() - 4).expect("a delta under 4 GiB");
        framed[..4].copy_from_slice(&len.to_be_bytes());
        framed
    }

    fn entry_name(&self, index: u64) -> String {
        let mut hex = String::with_capacity(32);
        for b in self.base {
            hex.push_str(&format!("{b:02x}"));
        }
        format!("journal/{hex}/{index}")
    }
}

/// What a journal read back holds.
pub(crate) struct Replay {
    /// How many deltas were applied.
    pub replayed: usize,
    /// How many bytes of the file are whole entries (header included); the host cuts the file
    /// to this length before appending. `None`: the journal is absent or follows another
    /// snapshot (a crash after a snapshot was written but before the journal was reset), and a
    /// new one must be started.
    pub keep: Option<usize>,
    /// Where the next entry goes.
    pub cursor: Cursor,
}

/// Reads the journal `bytes` that should follow the snapshot `cursor` was made of
/// ([`Cursor::after`]) and hands each delta in order to `apply`, with the journal's layout
/// version, as soon as it is opened (the journal of a big change can be tens of megabytes:
/// only one delta is held open at a time).
///
/// # Errors
/// `Corrupt` when a whole entry before the last one fails authentication, or the header is
/// damaged; `WrongVault` when entries were sealed with another key.
pub(crate) fn read_after(
    key: &SecretKey,
    vault: VaultId,
    mut cursor: Cursor,
    bytes: &[u8],
    mut apply: impl FnMut(u8, Vec<u8>) -> Result<()>,
) -> Result<Replay> {
    let fresh = |cursor| Replay {
        replayed: 0,
        keep: None,
        cursor,
    };
    if bytes.len() < HEADER_LEN {
        // Absent, or torn while its header was written: nothing was journaled after it.
        return Ok(fresh(cursor));
    }
    let version = bytes[4];
    if &bytes[..4] != MAGIC || !(1..=VERSION).contains(&version) {
        return Err(Error::corrupt(
            "local journal",
            "not a bucketsync journal of a known version",
        ));
    }
    if bytes[5..HEADER_LEN] != cursor.base {
        return Ok(fresh(cursor));
    }
    let mut replayed = 0;
    let mut at = HEADER_LEN;
    while bytes.len() - at >= 4 {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let Some(end) = (at + 4).checked_add(len).filter(|end| *end <= bytes.len()) else {
            break; // a torn last entry
        };
        let name = cursor.entry_name(cursor.next);
        let ad = ObjectAd {
            vault,
            kind: ObjectKind::JournalEntry,
            name: &name,
        };
        match crypto::open(key, &ad, bytes[at + 4..end].to_vec()) {
            Ok(delta) => {
                apply(version, delta)?;
                replayed += 1;
            }
            // The last entry, damaged by a power loss before it was synced: as if never written.
            Err(Error::Corrupt { .. }) if end == bytes.len() => break,
            Err(Error::WrongVault { .. }) => {
                return Err(Error::WrongVault {
                    object: "local journal".into(),
                })
            }
            Err(e) => {
                return Err(Error::corrupt(
                    "local journal",
                    format!("entry {} is damaged: {e}", cursor.next),
                ))
            }
        }
        cursor.next += 1;
        at = end;
    }
    Ok(Replay {
        replayed,
        // An older layout is replayed, never appended to: a new snapshot replaces it.
        keep: (version == VERSION).then_some(at),
        cursor,
    })
}
