//! A home vault's own records (a record convention, FORMAT §17.5): each shared vault the person
//! made or accepted is the record `.bucketsync/shared/<label>`, holding its store, its keys and
//! the person's role. Every device of the person reads them after a sync of the home, so a
//! vault shared once opens on all of them.

use serde::{Deserialize, Serialize};

use crate::engine::OpenMode;
use crate::error::{Error, Result};
use crate::grant::{GenerationKey, Role};
use crate::identity::{Fingerprint, FINGERPRINT_LEN};
use crate::ids::Timestamp;
use crate::key::VaultKey;
use crate::membership::Statement;

/// The key prefix of a home's shared-vault records.
pub const SHARED_PREFIX: &str = ".bucketsync/shared/";
/// What a shared-vault record's value starts with.
const ENTRY_MAGIC: &[u8; 4] = b"BKSV";
/// Version 2 adds the founder; version 1 entries are still read.
const ENTRY_VERSION: u8 = 2;
/// The longest label, in bytes.
const MAX_LABEL: usize = 200;

/// A vault shared with or by the person whose home this is.
#[derive(Clone, Debug)]
pub struct SharedVault {
    /// The person's name for it (unique in the home).
    pub label: String,
    /// Its store URL.
    pub store: String,
    /// What the person may do in it.
    pub role: Role,
    /// Its key generations, oldest first; the first one is the vault's own key.
    pub keys: Vec<GenerationKey>,
    /// Who granted it; `None` for a vault the person made.
    pub from: Option<Fingerprint>,
    /// Who made it, the person its membership is traced back to; `None` for this home's
    /// person. (Version 1 records, which lack it, read their granter here.)
    pub founder: Option<Fingerprint>,
    /// When it was made or accepted.
    pub since: Timestamp,
    /// The statement that let this person in, from the grant (version 2; `None` for a vault
    /// the person made and in version 1 records): every device of the person passes it on.
    pub statement: Option<Statement>,
}

#[derive(Serialize, Deserialize)]
struct EntryWire {
    store: String,
    role: u8,
    keys: Vec<(u32, [u8; 32])>,
    from: Option<[u8; FINGERPRINT_LEN]>,
    since_ms: u64,
    /// Version 2.
    founder: Option<[u8; FINGERPRINT_LEN]>,
    /// Version 2.
    statement: Option<Statement>,
}

/// A version 1 entry: no founder.
#[derive(Serialize, Deserialize)]
struct EntryWireV1 {
    store: String,
    role: u8,
    keys: Vec<(u32, [u8; 32])>,
    from: Option<[u8; FINGERPRINT_LEN]>,
    since_ms: u64,
}

impl Drop for EntryWireV1 {
    fn drop(&mut self) {
        GenerationKey::wipe_wire(&mut self.keys);
    }
}

impl Drop for EntryWire {
    fn drop(&mut self) {
        GenerationKey::wipe_wire(&mut self.keys);
    }
}

/// Checks a label: 1 to 200 bytes of UTF-8, no `/`, no control characters.
///
/// # Errors
/// `Config` saying what is wrong.
pub fn check_label(label: &str) -> Result<()> {
    if label.is_empty() || label.len() > MAX_LABEL {
        return Err(Error::Config(format!(
            "a shared vault's label has 1 to {MAX_LABEL} bytes"
        )));
    }
    if label.contains('/') || label.chars().any(char::is_control) {
        return Err(Error::Config(format!(
            "a shared vault's label has no '/' and no control characters: {label:?}"
        )));
    }
    Ok(())
}

impl SharedVault {
    /// The record key of the vault labelled `label`.
    pub fn record_key(label: &str) -> Vec<u8> {
        format!("{SHARED_PREFIX}{label}").into_bytes()
    }

    /// How a device opens this vault when it has not synced it yet: a vault the person made
    /// is joined, or created when the device that made it never got to publish (the key comes
    /// from the home, so it cannot be a wrong one); a vault granted by someone else is joined.
    pub fn open_mode(&self) -> OpenMode {
        match self.from {
            None => OpenMode::default(),
            Some(_) => OpenMode::Join,
        }
    }

    /// The vault's own key (generation 0).
    pub fn key(&self) -> &VaultKey {
        &self.keys[0].key
    }

    /// The record's value: `BKSV 01` and the postcard encoding.
    pub fn encode(&self) -> Vec<u8> {
        let wire = EntryWire {
            store: self.store.clone(),
            role: self.role.code(),
            keys: GenerationKey::to_wire(&self.keys),
            from: self.from.map(|f| f.0),
            since_ms: self.since.0,
            founder: self.founder.map(|f| f.0),
            statement: self.statement.clone(),
        };
        let mut value = ENTRY_MAGIC.to_vec();
        value.push(ENTRY_VERSION);
        value.extend_from_slice(&postcard::to_allocvec(&wire).unwrap_or_default());
        value
    }

    /// The vault of the record `key` whose value is `value`.
    ///
    /// # Errors
    /// `Corrupt` when the key is not a shared-vault record or the value does not decode.
    pub fn decode(key: &[u8], value: &[u8]) -> Result<Self> {
        let name = String::from_utf8_lossy(key).into_owned();
        let corrupt = |why: &str| Error::corrupt(&format!("record {name}"), why);
        let label = name
            .strip_prefix(SHARED_PREFIX)
            .ok_or_else(|| corrupt("not a shared-vault record"))?
            .to_owned();
        let Some(body) = value.strip_prefix(&ENTRY_MAGIC[..]) else {
            return Err(corrupt("not a shared-vault entry"));
        };
        let wire: EntryWire = match body.split_first() {
            Some((&ENTRY_VERSION, rest)) => match postcard::take_from_bytes(rest) {
                Ok((wire, [])) => wire,
                _ => return Err(corrupt("a shared-vault entry that does not decode")),
            },
            Some((1, rest)) => match postcard::take_from_bytes::<EntryWireV1>(rest) {
                Ok((v1, [])) => EntryWire {
                    store: v1.store.clone(),
                    role: v1.role,
                    keys: v1.keys.clone(),
                    from: v1.from,
                    since_ms: v1.since_ms,
                    // Version 1 knew no founder: the granter made the vault, as far as it knows.
                    founder: v1.from,
                    statement: None,
                },
                _ => return Err(corrupt("a shared-vault entry that does not decode")),
            },
            Some((version, _)) => {
                return Err(corrupt(&format!(
                    "shared-vault entry version {version} is not supported (this build reads 1 to {ENTRY_VERSION})"
                )))
            }
            None => return Err(corrupt("a shared-vault entry that does not decode")),
        };
        let role = Role::from_code(wire.role)
            .ok_or_else(|| corrupt("a shared-vault entry with an unknown role"))?;
        let keys = GenerationKey::from_wire(&wire.keys);
        if keys.first().map(|g| g.generation) != Some(0) {
            return Err(corrupt("a shared-vault entry without the vault's key"));
        }
        Ok(SharedVault {
            label,
            store: wire.store.clone(),
            role,
            keys,
            from: wire.from.map(Fingerprint),
            since: Timestamp(wire.since_ms),
            founder: wire.founder.map(Fingerprint),
            statement: wire.statement.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_and_damage_is_corrupt() {
        let key = VaultKey::from_bytes([5; 32]);
        let shared = SharedVault {
            label: "emma".into(),
            store: "s3://family/records?region=eu-west-1".into(),
            role: Role::Owner,
            keys: vec![GenerationKey {
                generation: 0,
                key: key.clone(),
            }],
            from: Some(Fingerprint([1; FINGERPRINT_LEN])),
            since: Timestamp(1_767_225_600_000),
            founder: Some(Fingerprint([2; FINGERPRINT_LEN])),
            statement: None,
        };
        let record = SharedVault::record_key("emma");
        assert_eq!(record, b".bucketsync/shared/emma");
        let value = shared.encode();
        assert!(value.starts_with(b"BKSV\x02"));
        let back = SharedVault::decode(&record, &value).unwrap();
        assert_eq!(back.label, "emma");
        assert_eq!(back.store, shared.store);
        assert_eq!(back.role, Role::Owner);
        assert_eq!(back.key().secret_bytes(), key.secret_bytes());
        assert_eq!(back.from, shared.from);
        assert_eq!(back.since, shared.since);
        assert_eq!(back.founder, shared.founder);
        // A version 1 record (no founder, no statement): its granter made the vault.
        let v1 = EntryWireV1 {
            store: shared.store.clone(),
            role: Role::Write.code(),
            keys: GenerationKey::to_wire(&shared.keys),
            from: shared.from.map(|f| f.0),
            since_ms: shared.since.0,
        };
        let mut old = b"BKSV\x01".to_vec();
        old.extend_from_slice(&postcard::to_allocvec(&v1).unwrap());
        let read = SharedVault::decode(&record, &old).unwrap();
        assert_eq!(
            (read.role, read.from, read.founder),
            (Role::Write, shared.from, shared.from)
        );
        assert_eq!(read.statement, None);
        for bad in [&b""[..], b"BKSV", b"BKSV\x03", &value[..value.len() - 1]] {
            let e = SharedVault::decode(&record, bad).unwrap_err();
            assert_eq!(e.category(), crate::Category::Corrupt);
        }
        assert!(SharedVault::decode(b"notes/emma", &value).is_err());
    }

    #[test]
    fn labels_are_checked() {
        for good in ["emma", "Anna's notes", "été 2026"] {
            check_label(good).unwrap();
        }
        for bad in ["", "a/b", "tab\there", &"x".repeat(201)] {
            assert!(check_label(bad).is_err(), "{bad:?}");
        }
    }
}
