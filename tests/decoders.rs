//! Issue 14: every decoder is run on arbitrary bytes, 100,000 cases each: it never panics, and
//! never allocates by what a length field claims.
//!
//! Random bytes never get past an object's authentication tag, so the decoders behind it
//! (segment, manifest, checkpoint, local state, journal delta) are given arbitrary plaintext
//! sealed with the vault key (`bucketsync::testing`). Most of their cases damage a valid
//! plaintext from a small real vault a little, so that they get past the first fields; the rest
//! are arbitrary bytes. A counting allocator checks every case: no single allocation may exceed
//! [`allowed`] for the input's size, whatever its length fields claim.
//!
//! `PROPTEST_CASES=1000 cargo test --test decoders` runs fewer cases.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::OnceLock;

use bucketsync::folder::FolderBucket;
use bucketsync::testing::{self, Kind};
use bucketsync::{
    segment, Category, CompactionPolicy, DeviceId, Engine, Entropy, Response, Store, VaultKey,
    FORMAT_VERSION,
};
use bucketsync_suite::{block_sync, bucket_files, folder_store, wall_clock};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{select, Index};

/// Cases per decoder (issue 14: at least 100,000).
const CASES: u32 = 100_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        ..ProptestConfig::default()
    }
}

// ---- The counting allocator ----

/// The system allocator, noting the largest single allocation made on each thread.
struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: an allocation while the thread is torn down is simply not noted.
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

// SAFETY: every call is passed on unchanged to the system allocator; noting a size neither
// allocates nor unwinds.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's guarantees for `layout` are the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` was allocated by `System` with `layout` (every allocation goes there).
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns what it returned with the largest single allocation it made.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

/// The most a decoder may allocate at once for an input of `len` bytes, whatever its length
/// fields claim: a copy of the input and 64 KiB. The inputs here are under 2 KiB: what they
/// decode to takes a few KiB at most (records are larger decoded than encoded; Argon2 is given
/// up to 24 KiB), while an allocation sized by a length field would take far more (serde
/// preallocates up to 1 MiB for a sequence whose length it believes).
fn allowed(len: usize) -> usize {
    len + 64 * 1024
}

/// Runs the decoder `f` on an input of `len` bytes, checking what it allocates.
fn decode<R>(len: usize, f: impl FnOnce() -> R) -> Result<R, TestCaseError> {
    let (result, largest) = largest_allocation(f);
    prop_assert!(
        largest <= allowed(len),
        "an input of {} bytes made an allocation of {} bytes",
        len,
        largest
    );
    Ok(result)
}

// ---- Valid plaintexts to damage, from a small real vault ----

const A: DeviceId = DeviceId([0xAA; 16]);
const B: DeviceId = DeviceId([0xBB; 16]);
const STATE_NAME: &str = "local-state";
const PASSPHRASE: &str = "correct horse";
/// A clock reading (ms): a six-byte varint, as real ones are.
const WALL_MS: u64 = 1_767_225_600_000;

/// A valid plaintext and what it is opened as.
#[derive(Clone, Debug)]
struct Seed {
    kind: Kind,
    /// The object's name (a journal entry's is made from the journal header).
    name: String,
    /// The device (writer) and number (segment or checkpoint) the name carries.
    device: DeviceId,
    number: u64,
    /// The envelope version it is sealed in; for a journal delta, the journal's version.
    version: u8,
    plain: Vec<u8>,
}

impl Seed {
    fn new(kind: Kind, device: DeviceId, number: u64, version: u8, plain: Vec<u8>) -> Seed {
        let name = match kind {
            Kind::Segment => format!("s/{device}/{number:016x}"),
            Kind::Manifest => format!("m/{device}"),
            Kind::Checkpoint => format!("c/{device}/{number:016x}"),
            Kind::LocalState => STATE_NAME.to_owned(),
            Kind::JournalEntry => "journal delta".to_owned(),
        };
        Seed {
            kind,
            name,
            device,
            number,
            version,
            plain,
        }
    }

    /// What it is, in messages.
    fn label(&self) -> String {
        match self.kind {
            Kind::LocalState => format!("state version {}", self.plain[0]),
            Kind::JournalEntry => format!("journal version {} delta", self.version),
            _ => format!("{} (format {})", self.name, self.version),
        }
    }

    /// This seed's kind, name and version with `plain` instead.
    fn with(&self, plain: Vec<u8>) -> Seed {
        Seed {
            plain,
            ..self.clone()
        }
    }
}

struct Fixture {
    key: VaultKey,
    segments: Vec<Seed>,
    manifests: Vec<Seed>,
    checkpoints: Vec<Seed>,
    states: Vec<Seed>,
    deltas: Vec<Seed>,
    /// A's snapshot, and the header of the journal that follows it (the deltas are its).
    snapshot: Vec<u8>,
    journal_header: Vec<u8>,
    /// A's sealed segment 1.
    segment: Vec<u8>,
    /// The key, wrapped with [`PASSPHRASE`] and cheap Argon2 parameters.
    wrapped: Vec<u8>,
    code: String,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(make_fixture)
}

/// Two devices with labels, a deletion, a conflict and a checkpoint; A's state snapshot is taken
/// in the middle, and its journal records the rest.
fn make_fixture() -> Fixture {
    let key = VaultKey::from_bytes([4; 32]);
    let dir = tempfile::tempdir().unwrap();
    let new = |device, seed| {
        let entropy = Entropy::from_seed([seed; 32]);
        Engine::new(&key, folder_store(dir.path()), device, entropy)
    };
    let (mut a, mut b) = (new(A, 1), new(B, 2));
    a.set_label("laptop").unwrap();
    b.set_label("phone \u{1F4F1}").unwrap();
    a.set_compaction(CompactionPolicy {
        min_tail_segments: 1,
        max_tail_segments: 1,
        bytes_ratio: 1,
        segment_overhead_bytes: 0,
        ..CompactionPolicy::default()
    });
    a.put("notes/a", "from a", wall_clock());
    a.put("shared", "a's", wall_clock());
    a.put("gone", "soon", wall_clock());
    a.delete("gone", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    b.put("notes/b", vec![0u8; 200], wall_clock());
    b.put("shared", "b's", wall_clock());
    block_sync(&mut b, &FolderBucket).unwrap();
    a.put("notes/a2", "", wall_clock());
    block_sync(&mut a, &FolderBucket).unwrap();
    let snapshot = a.export_state();
    let journal_header = a.journal_header().unwrap();
    let mut entries = Vec::new();
    a.put("after", "the snapshot", wall_clock());
    a.delete("notes/a", wall_clock());
    entries.extend(a.poll_journal());
    block_sync(&mut b, &FolderBucket).unwrap();
    block_sync(&mut a, &FolderBucket).unwrap();
    entries.extend(a.poll_journal());
    let b_snapshot = b.export_state();

    let mut f = Fixture {
        segments: Vec::new(),
        manifests: Vec::new(),
        checkpoints: Vec::new(),
        states: Vec::new(),
        deltas: Vec::new(),
        segment: Vec::new(),
        wrapped: key.wrap_with_params(PASSPHRASE, 8, 1, 1).unwrap(),
        code: key.recovery_code(),
        key,
        snapshot,
        journal_header,
    };
    let vault = format!("{}/", f.key.vault_id());
    for (path, object) in bucket_files(dir.path()) {
        let Some(name) = path.strip_prefix(&vault) else {
            continue;
        };
        let parts: Vec<&str> = name.split('/').collect();
        let kind = match parts[0] {
            "s" => Kind::Segment,
            "m" => Kind::Manifest,
            "c" => Kind::Checkpoint,
            _ => continue,
        };
        let (version, plain) = testing::open(&f.key, kind, name, object.clone()).unwrap();
        let device = DeviceId::parse(parts[1]).unwrap();
        let number = parts
            .get(2)
            .map_or(0, |n| u64::from_str_radix(n, 16).unwrap());
        let seed = Seed::new(kind, device, number, version, plain);
        assert_eq!(seed.name, name);
        match kind {
            Kind::Segment if (device, number) == (A, 1) => {
                f.segment = object;
                f.segments.push(seed);
            }
            Kind::Segment => f.segments.push(seed),
            Kind::Manifest => f.manifests.push(seed),
            _ => f.checkpoints.push(seed),
        }
    }
    for snapshot in [&f.snapshot, &b_snapshot] {
        let (_, plain) =
            testing::open(&f.key, Kind::LocalState, STATE_NAME, snapshot.clone()).unwrap();
        f.states.push(Seed::new(Kind::LocalState, A, 0, 1, plain)); // the device is not checked
    }
    for (index, entry) in entries.iter().enumerate() {
        let name = entry_name(&f.journal_header, index);
        let (_, plain) =
            testing::open(&f.key, Kind::JournalEntry, &name, entry[4..].to_vec()).unwrap();
        f.deltas.push(Seed::new(
            Kind::JournalEntry,
            A,
            0,
            f.journal_header[4],
            plain,
        ));
    }
    // Manifests and a checkpoint of the earlier layouts (docs/FORMAT.md §6): no pruned count
    // (3), no retired devices (2), no label or checkpoint (1); no horizon (checkpoint 2).
    for version in 1..=3 {
        let plain = manifest_layout(version, B).plain;
        f.manifests
            .push(Seed::new(Kind::Manifest, B, 0, version, plain));
    }
    let plain = checkpoint_layout(2, B, 6).plain;
    f.checkpoints
        .push(Seed::new(Kind::Checkpoint, B, 6, 2, plain));
    // A segment and a checkpoint of version 4 to 10's layout (no codec byte), and of version
    // 11's stored as they are (the engine's own may be deflated, which mutations mostly break
    // before the postcard decoder sees them).
    for version in [4, 11] {
        let plain = segment_layout(version).plain;
        f.segments
            .push(Seed::new(Kind::Segment, A, 1, version, plain));
        let plain = checkpoint_layout(version, B, 6).plain;
        f.checkpoints
            .push(Seed::new(Kind::Checkpoint, B, 6, version, plain));
    }
    // Every seed opens as it is.
    let all = [
        &f.segments,
        &f.manifests,
        &f.checkpoints,
        &f.states,
        &f.deltas,
    ];
    for seed in all.into_iter().flatten() {
        let (_, result) = open_as(&f, seed, &seed.plain);
        assert!(result.is_ok(), "{}: {:?}", seed.name, result);
    }
    assert!(f.segments.len() >= 3 && f.manifests.len() == 5);
    assert!(f.checkpoints.len() >= 2 && f.deltas.len() == 2);
    assert!(!f.segment.is_empty());
    f
}

/// `value` as postcard writes an unsigned integer (LEB128).
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
    out
}

/// Where the varint at `at` ends.
fn skip_varint(bytes: &[u8], at: usize) -> usize {
    at + 1 + bytes[at..].iter().take_while(|b| **b >= 0x80).count()
}

/// The name journal entry `index` is sealed with, in the journal that starts with `header`.
fn entry_name(header: &[u8], index: usize) -> String {
    let hex: String = header[5..21].iter().map(|b| format!("{b:02x}")).collect();
    format!("journal/{hex}/{index}")
}

/// Seals `plain` as `seed` says and opens it with the decoder of its kind (a delta as the only
/// entry of A's journal). Gives the size of the decoder's input with the result.
fn open_as(f: &Fixture, seed: &Seed, plain: &[u8]) -> (usize, bucketsync::Result<()>) {
    let key = &f.key;
    let seal = || testing::seal(key, seed.kind, seed.version, &seed.name, plain);
    match seed.kind {
        Kind::Segment => {
            let sealed = seal();
            let result = segment::open(key, seed.device, seed.number, sealed.clone());
            (sealed.len(), result.map(drop))
        }
        Kind::Manifest => {
            let sealed = seal();
            let result = testing::open_manifest(key, seed.device, sealed.clone());
            (sealed.len(), result)
        }
        Kind::Checkpoint => {
            let sealed = seal();
            let result = testing::open_checkpoint(key, seed.device, seed.number, sealed.clone());
            (sealed.len(), result)
        }
        Kind::LocalState => {
            let sealed = seal();
            let result = Engine::from_state(key, store(), &sealed, Entropy::from_seed([0; 32]));
            (sealed.len(), result.map(drop))
        }
        Kind::JournalEntry => {
            let journal = journal_of(f, seed.version, &[plain]);
            let len = journal.len() + f.snapshot.len();
            (len, restore(f, &journal).map(drop))
        }
    }
}

/// A's journal in layout `version`, of `deltas`.
fn journal_of(f: &Fixture, version: u8, deltas: &[&[u8]]) -> Vec<u8> {
    let mut journal = f.journal_header.clone();
    journal[4] = version;
    for (index, delta) in deltas.iter().enumerate() {
        let name = entry_name(&journal, index);
        let sealed = testing::seal(&f.key, Kind::JournalEntry, 1, &name, delta);
        journal.extend_from_slice(&(sealed.len() as u32).to_be_bytes());
        journal.extend_from_slice(&sealed);
    }
    journal
}

fn restore(f: &Fixture, journal: &[u8]) -> bucketsync::Result<bucketsync::Restored> {
    let entropy = Entropy::from_seed([0; 32]);
    Engine::restore(&f.key, store(), &f.snapshot, journal, entropy)
}

fn store() -> Store {
    Store::parse("file:///tmp/never-written").unwrap()
}

// ---- Layouts by hand, noting where their length fields are ----

/// A valid plaintext written field by field, noting where its length and count fields are.
#[derive(Default)]
struct Plain {
    plain: Vec<u8>,
    lengths: Vec<(usize, &'static str)>,
}

impl Plain {
    fn raw(mut self, bytes: &[u8]) -> Self {
        self.plain.extend_from_slice(bytes);
        self
    }

    fn int(self, value: u64) -> Self {
        self.raw(&varint(value))
    }

    /// A length or count field (one byte: below 128).
    fn len(mut self, what: &'static str, n: u8) -> Self {
        assert!(n < 0x80);
        self.lengths.push((self.plain.len(), what));
        self.raw(&[n])
    }

    fn bytes(self, what: &'static str, bytes: &[u8]) -> Self {
        self.len(what, bytes.len() as u8).raw(bytes)
    }
}

/// `device`'s manifest in format `version`, with one item in every list.
fn manifest_layout(version: u8, device: DeviceId) -> Plain {
    let mut p = Plain::default()
        .raw(&device.0)
        .int(7)
        .int(3)
        .int(WALL_MS)
        .int(2);
    p = p.len("merged count", 1).raw(&[0xDD; 16]).int(2);
    if version >= 2 {
        p = p.bytes("label length", b"phone");
        p = p.raw(&[1]).int(6).len("checkpoint covers count", 1);
        p = p.raw(&A.0).int(2).int(900);
    }
    if version >= 3 {
        p = p.len("retired count", 1).raw(&[0xCC; 16]);
    }
    if version >= 4 {
        p = p.int(1);
    }
    if version >= 8 {
        // One member statement (its bytes need not verify, nor its identity be whole, to
        // decode).
        p = p.len("member statements count", 1);
        p = p.bytes("member identity length", &[0x11; 40]).raw(&[3]);
        p = p.len("pins count", 1).raw(&B.0).int(4).int(1);
        p = p.int(WALL_MS).raw(&[0x22; 10]);
        p = p.bytes("signature length", &[0x33; 64]);
    }
    p
}

/// `writer`'s checkpoint `number` in format `version`, of two records (one a tombstone).
fn checkpoint_layout(version: u8, writer: DeviceId, number: u64) -> Plain {
    let mut p = Plain::default();
    if version >= 11 {
        p = p.raw(&[0]); // codec: stored
    }
    let mut p = p.raw(&writer.0).int(number);
    p = p.len("covers count", 2).raw(&A.0).int(2).raw(&B.0).int(3);
    p = p.int(WALL_MS).int(0);
    if version >= 3 {
        p = p.int(0);
    }
    p = p.len("record count", 2).bytes("key length", b"k1");
    p = p.raw(&[1]).bytes("value length", b"v1");
    p = p.int(WALL_MS).int(0).raw(&A.0);
    p.bytes("key length", b"k2")
        .raw(&[0])
        .int(WALL_MS)
        .int(1)
        .raw(&A.0)
}

/// Segment 1 of A, of two changes (one a deletion), as envelope `version` lays it out (from
/// version 11 a codec byte first: stored).
fn segment_layout(version: u8) -> Plain {
    let p = if version >= 11 {
        Plain::default().raw(&[0])
    } else {
        Plain::default()
    };
    let p = p.raw(&A.0).int(1).len("change count", 2);
    let p = p.bytes("key length", b"k1").int(WALL_MS).int(0);
    let p = p.raw(&[1]).bytes("value length", b"v1");
    p.bytes("key length", b"k2").int(WALL_MS).int(0).raw(&[0])
}

/// Where a real state snapshot's first length fields are: the record count, and the first
/// record's key and value lengths (after the version, device and clock).
fn state_lengths(plain: &[u8]) -> Vec<(usize, &'static str)> {
    let at = skip_varint(plain, skip_varint(plain, 17));
    record_lengths(plain, at)
}

/// Where a real journal delta's first length fields are: the count of removed keys, and after
/// the clock the record count and the first record's key and value lengths.
fn delta_lengths(plain: &[u8]) -> Vec<(usize, &'static str)> {
    assert_eq!(plain[17], 0, "no removed keys");
    let at = skip_varint(plain, skip_varint(plain, 18));
    let mut lengths = vec![(17, "removed count")];
    lengths.extend(record_lengths(plain, at));
    lengths
}

fn record_lengths(plain: &[u8], at: usize) -> Vec<(usize, &'static str)> {
    assert!(0 < plain[at] && plain[at] < 0x80 && plain[at + 1] < 0x80);
    let tag = at + 2 + plain[at + 1] as usize;
    let mut lengths = vec![(at, "record count"), (at + 1, "key length")];
    if plain[tag] == 1 {
        lengths.push((tag + 1, "value length"));
    }
    lengths
}

// ---- Inputs ----

/// Integers no real length or count reaches, as varints: 2^60, the largest `u64`, 2^32, one
/// beyond `u64` (out of range) and a varint that never ends.
fn hostile_varints() -> [Vec<u8>; 5] {
    [
        varint(1 << 60),
        varint(u64::MAX),
        varint(1 << 32),
        vec![0xFF; 10],
        vec![0x80; 12],
    ]
}

/// One change to a valid encoding.
#[derive(Clone, Debug)]
enum Edit {
    Set(Index, u8),
    Flip(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Cut(Index),
    /// Replaces a byte (often a one-byte length) with one of [`hostile_varints`].
    Hostile(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Set(at, b)),
        (any::<Index>(), 0u8..8).prop_map(|(at, bit)| Edit::Flip(at, bit)),
        (any::<Index>(), any::<u8>()).prop_map(|(at, b)| Edit::Insert(at, b)),
        any::<Index>().prop_map(Edit::Remove),
        any::<Index>().prop_map(Edit::Cut),
        (any::<Index>(), any::<Index>()).prop_map(|(at, which)| Edit::Hostile(at, which)),
    ]
}

fn apply(seed: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for edit in edits {
        if out.is_empty() {
            break;
        }
        let len = out.len();
        match edit {
            Edit::Set(at, b) => out[at.index(len)] = *b,
            Edit::Flip(at, bit) => out[at.index(len)] ^= 1 << bit,
            Edit::Insert(at, b) => out.insert(at.index(len + 1), *b),
            Edit::Remove(at) => {
                out.remove(at.index(len));
            }
            Edit::Cut(at) => out.truncate(at.index(len)),
            Edit::Hostile(at, which) => {
                let at = at.index(len);
                let hostile = hostile_varints();
                out.splice(at..at + 1, hostile[which.index(hostile.len())].clone());
            }
        }
    }
    out
}

/// A plaintext for the decoder of `seeds`: three times in four, a seed with one to four edits;
/// else arbitrary bytes (opened as a seed is). Gives the seed's index too.
fn plaintext(seeds: &'static [Seed]) -> impl Strategy<Value = (usize, Vec<u8>)> {
    let n = seeds.len();
    prop_oneof![
        3 => (0..n, vec(edit(), 1..5))
            .prop_map(move |(i, edits)| (i, apply(&seeds[i].plain, &edits))),
        1 => (0..n, vec(any::<u8>(), 0..300)),
    ]
}

/// Runs the decoder of `seed`'s kind on `plain`: a success or a `Corrupt` error, allocating
/// within bounds.
fn opens_or_is_corrupt(seed: &Seed, plain: &[u8]) -> Result<(), TestCaseError> {
    let ((len, result), largest) = largest_allocation(|| open_as(fixture(), seed, plain));
    // The sealing is counted too: it copies the plaintext once.
    prop_assert!(
        largest <= allowed(len),
        "an input of {} bytes made an allocation of {} bytes",
        len,
        largest
    );
    if let Err(e) = result {
        prop_assert_eq!(e.category(), Category::Corrupt, "{}", e);
    }
    Ok(())
}

// ---- Whole objects and files as they come from the bucket or the disk ----

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes as every kind of object or file: an error, never a success.
    #[test]
    fn arbitrary_bytes_are_errors_not_panics(bytes in vec(any::<u8>(), 0..400)) {
        let f = fixture();
        let key = &f.key;
        let len = bytes.len();
        prop_assert!(decode(len, || segment::open(key, A, 1, bytes.clone()))?.is_err());
        prop_assert!(decode(len, || testing::open_manifest(key, A, bytes.clone()))?.is_err());
        let checkpoint = decode(len, || testing::open_checkpoint(key, A, 1, bytes.clone()))?;
        prop_assert!(checkpoint.is_err());
        let state = decode(len, || {
            Engine::from_state(key, store(), &bytes, Entropy::from_seed([0; 32]))
        })?;
        prop_assert!(state.is_err());
        let unwrapped = decode(len, || VaultKey::unwrap_with_passphrase(&bytes, PASSPHRASE))?;
        prop_assert!(unwrapped.is_err());
        let text = String::from_utf8_lossy(&bytes);
        prop_assert!(decode(len, || VaultKey::from_recovery_code(&text))?.is_err());
        // Only a document that is a listing can parse as one, and only one with a <Code> names
        // an error code.
        let list = decode(len, || bucketsync::s3::parse_list(&bytes))?;
        prop_assert!(list.is_err() || text.contains("ListBucketResult"));
        let code = decode(len, || bucketsync::s3::error_code(&bytes))?;
        prop_assert!(code.is_none() || text.contains("Code>"));
    }

    /// A journal of arbitrary bytes, or arbitrary bytes behind the right header, replays
    /// nothing: a torn last entry is dropped, anything else is corrupt.
    #[test]
    fn a_journal_of_arbitrary_bytes_replays_nothing(bytes in vec(any::<u8>(), 0..400)) {
        let f = fixture();
        let mut framed = f.journal_header.clone();
        framed.extend_from_slice(&bytes);
        for journal in [&bytes, &framed] {
            match decode(journal.len() + f.snapshot.len(), || restore(f, journal))? {
                Ok(restored) => {
                    prop_assert_eq!(restored.replayed, 0);
                    prop_assert_eq!(restored.engine.get(b"notes/a"), Some(&b"from a"[..]));
                }
                Err(e) => prop_assert_eq!(e.category(), Category::Corrupt),
            }
        }
    }

    /// A real segment's header over random ciphertext is corrupt.
    #[test]
    fn a_valid_header_over_random_ciphertext_is_corrupt(body in vec(any::<u8>(), 0..300)) {
        let f = fixture();
        let seed = f.segments.iter().find(|s| (s.device, s.number) == (A, 1)).unwrap();
        let header_len = f.segment.len() - seed.plain.len() - 16;
        let mut forged = f.segment[..header_len].to_vec();
        forged.extend_from_slice(&body);
        let len = forged.len();
        let err = decode(len, || segment::open(&f.key, A, 1, forged))?.unwrap_err();
        prop_assert_eq!(err.category(), Category::Corrupt);
    }
}

// ---- File record values (they travel inside segments, so any device can write them) ----

proptest! {
    #![proptest_config(config())]

    /// Arbitrary bytes behind the file magic, and a real file value with random edits: a file,
    /// or corrupt; never a panic or an allocation beyond the bound.
    #[test]
    fn file_values_decode_or_are_corrupt(
        bytes in vec(any::<u8>(), 0..400),
        edits in vec(edit(), 1..4),
    ) {
        let mut framed = b"BKSF\x01".to_vec();
        framed.extend_from_slice(&bytes);
        let edited = apply(&testing::sample_file_value(), &edits);
        for value in [&framed, &edited] {
            match decode(value.len(), || testing::decode_file_value(value))? {
                // Edits that keep the layout valid (a changed id or hash byte) still decode.
                Ok(_) => {}
                Err(e) => prop_assert!(
                    matches!(e.category(), Category::Corrupt | Category::Config),
                    "{e}"
                ),
            }
        }
        prop_assert_eq!(testing::decode_file_value(&testing::sample_file_value()), Ok(1_200_000));
    }
}

// ---- The decoders behind the authentication tag ----

proptest! {
    #![proptest_config(config())]

    /// Segment plaintexts. Every change of a segment that opens reads back.
    #[test]
    fn segment_plaintexts_open_or_are_corrupt((i, plain) in plaintext(&fixture().segments)) {
        let f = fixture();
        let seed = &f.segments[i];
        opens_or_is_corrupt(seed, &plain)?;
        let mut sealed = testing::seal(&f.key, seed.kind, seed.version, &seed.name, &plain);
        if let Ok(view) = segment::open_in_place(&f.key, seed.device, seed.number, &mut sealed) {
            prop_assert_eq!(view.changes().count(), view.len());
        }
    }

    /// Manifest plaintexts of every format version.
    #[test]
    fn manifest_plaintexts_open_or_are_corrupt((i, plain) in plaintext(&fixture().manifests)) {
        opens_or_is_corrupt(&fixture().manifests[i], &plain)?;
    }

    /// Checkpoint plaintexts of every format version.
    #[test]
    fn checkpoint_plaintexts_open_or_are_corrupt(
        (i, plain) in plaintext(&fixture().checkpoints),
    ) {
        opens_or_is_corrupt(&fixture().checkpoints[i], &plain)?;
    }

    /// Local state plaintexts of every state version (their first varint: versions 1 to 4
    /// are read in the layouts they had). A state that opens is exported and read back.
    #[test]
    fn state_plaintexts_open_or_are_corrupt(
        (i, mut plain) in plaintext(&fixture().states),
        version in prop::option::weighted(0.5, 1u8..=6),
    ) {
        let f = fixture();
        if let (Some(version), Some(first)) = (version, plain.first_mut()) {
            *first = version;
        }
        let seed = &f.states[i];
        opens_or_is_corrupt(seed, &plain)?;
        let sealed = testing::seal(&f.key, seed.kind, seed.version, &seed.name, &plain);
        let opened = Engine::from_state(&f.key, store(), &sealed, Entropy::from_seed([0; 32]));
        if let Ok(mut engine) = opened {
            let again = engine.export_state();
            let entropy = Entropy::from_seed([0; 32]);
            prop_assert!(Engine::from_state(&f.key, store(), &again, entropy).is_ok());
        }
    }

    /// Journals of one or two entries, each an arbitrary delta sealed as it should be, in
    /// every journal version (the header's; versions 1 to 3 are read in their layouts).
    #[test]
    fn journal_deltas_replay_or_are_corrupt(
        deltas in vec(plaintext(&fixture().deltas), 1..3),
        version in prop_oneof![3 => Just(4u8), 1 => 1u8..=3],
    ) {
        let f = fixture();
        let deltas: Vec<&[u8]> = deltas.iter().map(|(_, d)| &d[..]).collect();
        let journal = journal_of(f, version, &deltas);
        match decode(journal.len() + f.snapshot.len(), || restore(f, &journal))? {
            Ok(restored) => prop_assert_eq!(restored.replayed, deltas.len()),
            Err(e) => prop_assert_eq!(e.category(), Category::Corrupt, "{}", e),
        }
    }
}

// ---- Keys, store URLs and S3 documents ----

/// A wrapped key: arbitrary bytes, or the real one with its Argon2 parameters replaced (by
/// small ones, or by ones beyond the limits, never by costly ones within them) and a few edits
/// after them.
fn wrapped_key() -> impl Strategy<Value = Vec<u8>> {
    let small = (0u32..=24, 0u32..=2, 0u32..=2);
    let beyond = prop_oneof![
        (2 * 1024 * 1024 + 1..=u32::MAX, any::<u32>(), any::<u32>()),
        (any::<u32>(), 17..=u32::MAX, any::<u32>()),
        (any::<u32>(), any::<u32>(), 17..=u32::MAX),
        (1024 * 1024..=2 * 1024 * 1024u32, 7u32..=16, 0u32..=16),
    ];
    let params = prop_oneof![3 => small, 1 => beyond];
    prop_oneof![
        1 => vec(any::<u8>(), 0..120),
        3 => (params, vec(edit(), 0..3), any::<bool>()).prop_map(|((m, t, p), edits, v1)| {
            let real = &fixture().wrapped;
            let mut out = real[..5].to_vec();
            if !v1 {
                out[4] = 2;
            }
            for v in [m, t, p] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend(apply(&real[17..], &edits));
            out
        }),
    ]
}

/// Text for the recovery code parser: arbitrary, or from the code's alphabet and the
/// characters it ignores or reads as digits, or the real code with a few edits.
fn recovery_code() -> impl Strategy<Value = String> {
    let chars = "0123456789ABCDEFGHJKMNPQRSTVWXYZabcxyzIiLlOoUu- \t\n\u{a0}\u{3000}é\u{1F511}";
    let chars: Vec<char> = chars.chars().collect();
    prop_oneof![
        1 => vec(any::<u8>(), 0..100).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        1 => vec(select(chars), 50..75).prop_map(|c| c.into_iter().collect()),
        2 => vec(edit(), 0..3).prop_map(|edits| {
            String::from_utf8_lossy(&apply(fixture().code.as_bytes(), &edits)).into_owned()
        }),
    ]
}

/// A store URL: arbitrary, or a scheme and pieces of real URLs.
fn store_url() -> impl Strategy<Value = String> {
    let schemes = vec!["s3://", "file://", "file:///", "s3://bucket/p?"];
    let pieces = "s3://|file://|/|?|&|=|#|%|%2F|%00|%ff|%C3%A9|%e|:|bucket|b|my-bucket.x_y|\
        region|endpoint|path_style|http://|https://|127.0.0.1:9000|true|false|1|C:|\\| |é|\
        \u{0}|\u{1F4BE}|..";
    let pieces: Vec<&str> = pieces.split('|').collect();
    prop_oneof![
        1 => vec(any::<u8>(), 0..80).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        3 => (select(schemes), vec(select(pieces), 0..12))
            .prop_map(|(scheme, pieces)| format!("{scheme}{}", pieces.concat())),
    ]
}

/// An S3 response body: arbitrary bytes, or a soup of the elements the parsers look for.
fn s3_document() -> impl Strategy<Value = Vec<u8>> {
    let tokens = "<ListBucketResult>|</ListBucketResult>|<ListBucketResult xmlns=\"x\">|\
        <Contents>|</Contents>|<Key>|</Key>|<ETag>|</ETag>|<Size>|</Size>|<LastModified>|\
        </LastModified>|<IsTruncated>|</IsTruncated>|<NextContinuationToken>|\
        </NextContinuationToken>|<CommonPrefixes>|</CommonPrefixes>|<Prefix>|</Prefix>|\
        <Error>|</Error>|<Code>|</Code>|<s3:Code>|</s3:Code>|<Empty/>|true|false|k|&amp;|\
        &quot;|&#x1F600;|&#0;|&#x110000;|&bogus;|&|<![CDATA[|]]>|<?xml version=\"1.0\"?>|\
        <!-- | -->|<!DOCTYPE x>|<|>|/|\"|=| |\u{0}|\u{1b}|é";
    let tokens: Vec<&str> = tokens.split('|').collect();
    prop_oneof![
        1 => vec(any::<u8>(), 0..300),
        3 => vec(select(tokens), 0..40).prop_map(|t| t.concat().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(config())]

    /// Wrapped keys: only the real one unwraps; parameters beyond the limits are refused
    /// before any work (the allocation check would catch Argon2's memory).
    #[test]
    fn wrapped_keys_unwrap_or_are_refused(wrapped in wrapped_key()) {
        let len = wrapped.len();
        match decode(len, || VaultKey::unwrap_with_passphrase(&wrapped, PASSPHRASE))? {
            Ok(key) => prop_assert_eq!(key.vault_id(), fixture().key.vault_id()),
            Err(e) => prop_assert_eq!(e.category(), Category::Config, "{}", e),
        }
    }

    /// Recovery codes: a code that reads is the canonical spelling of its key.
    #[test]
    fn recovery_codes_read_or_are_refused(code in recovery_code()) {
        match decode(code.len(), || VaultKey::from_recovery_code(&code))? {
            Ok(key) => {
                let canonical: String = code
                    .chars()
                    .filter(|c| *c != '-' && !c.is_whitespace())
                    .map(|c| match c.to_ascii_uppercase() {
                        'I' | 'L' => '1',
                        'O' => '0',
                        c => c,
                    })
                    .collect();
                prop_assert_eq!(canonical, key.recovery_code().replace('-', ""));
            }
            Err(e) => prop_assert_eq!(e.category(), Category::Config, "{}", e),
        }
    }

    /// Store URLs: a store that parses makes URLs; one that does not is a config error.
    #[test]
    fn store_urls_parse_or_are_refused(url in store_url()) {
        match decode(url.len(), || Store::parse(&url))? {
            Ok(store) => {
                prop_assert!(store.prefix().is_empty() || store.prefix().ends_with('/'));
                let _ = (store.display_name(), store.region(), store.bucket_url());
                let _ = (store.object_url("v/m/x"), store.list_url("v/", Some("t")));
                let _ = store.list_folders_url("");
            }
            Err(e) => prop_assert_eq!(e.category(), Category::Config, "{}", e),
        }
    }

    /// S3 listings and error documents. What a body says reaches an error message short.
    #[test]
    fn s3_documents_parse_or_are_refused(body in s3_document(), status in 200u16..600) {
        let len = body.len();
        let text = String::from_utf8_lossy(&body).into_owned();
        let list = decode(len, || bucketsync::s3::parse_list(&body))?;
        prop_assert!(list.is_err() || text.contains("ListBucketResult"));
        if let Ok(page) = list {
            prop_assert!(page.next_token.as_deref() != Some(""));
        }
        let code = decode(len, || bucketsync::s3::error_code(&body))?;
        prop_assert!(code.is_none() || text.contains("Code>"));
        let response = Response { status, headers: Vec::new(), body };
        let error = decode(len, || bucketsync::s3::error_from_response(&response, "GET x".into()))?;
        let shown = error.to_string();
        prop_assert!(shown.len() < 300, "{} bytes: {}", shown.len(), shown);
    }
}

// ---- Length fields of 2^60 ----

/// Every length-prefixed decoder given a length or count of 2^60 errors, allocating nothing by
/// it: each length field of a valid plaintext (which opens) is replaced by the varint 2^60 in
/// turn. Segments, manifests and checkpoints of every layout are written by hand; in a real
/// state snapshot and journal delta the first lengths are replaced (in every state and journal
/// version: their first fields are laid out alike).
#[test]
fn a_length_of_2_pow_60_is_an_error_that_allocates_nothing() {
    let f = fixture();
    let mut cases: Vec<(Seed, Vec<(usize, &'static str)>)> = Vec::new();
    let mut add = |seed: Seed, lengths| {
        let (_, result) = open_as(f, &seed, &seed.plain);
        assert!(result.is_ok(), "{}: {:?}", seed.name, result);
        cases.push((seed, lengths));
    };
    for version in [4, FORMAT_VERSION] {
        let Plain { plain, lengths } = segment_layout(version);
        add(Seed::new(Kind::Segment, A, 1, version, plain), lengths);
    }
    for version in 1..=FORMAT_VERSION {
        let Plain { plain, lengths } = manifest_layout(version, A);
        add(Seed::new(Kind::Manifest, A, 0, version, plain), lengths);
    }
    for version in [2, 4, FORMAT_VERSION] {
        let Plain { plain, lengths } = checkpoint_layout(version, A, 1);
        add(Seed::new(Kind::Checkpoint, A, 1, version, plain), lengths);
    }
    add(f.states[0].clone(), state_lengths(&f.states[0].plain));
    add(f.deltas[0].clone(), delta_lengths(&f.deltas[0].plain));
    // Journal versions 1 and 2: a delta of the clock, one record and nothing else (and, in
    // version 2, no directory and no history).
    for version in 1..=2 {
        let clock = Plain::default().int(WALL_MS).int(0);
        let p = clock
            .len("record count", 1)
            .bytes("key length", b"k")
            .raw(&[0]);
        let p = p.int(WALL_MS).int(0).raw(&A.0).raw(&[1, 0, 0, 0, 0]);
        let Plain { plain, lengths } = if version == 2 { p.raw(&[0, 0]) } else { p };
        add(Seed::new(Kind::JournalEntry, A, 0, version, plain), lengths);
    }
    // The earlier state versions, and journal version 3: the same first fields (no control:
    // the rest of the plaintext is in today's layout).
    for version in 1..=4 {
        let mut plain = f.states[0].plain.clone();
        plain[0] = version;
        cases.push((f.states[0].with(plain), state_lengths(&f.states[0].plain)));
    }
    let v3 = Seed {
        version: 3,
        ..f.deltas[0].clone()
    };
    cases.push((v3, delta_lengths(&f.deltas[0].plain)));

    let big = varint(1 << 60);
    for (seed, lengths) in &cases {
        assert!(!lengths.is_empty());
        for &(at, what) in lengths {
            let mut plain = seed.plain.clone();
            plain.splice(at..=at, big.iter().copied());
            let ((len, result), largest) = largest_allocation(|| open_as(f, seed, &plain));
            let what = format!("{} {what} at {at}", seed.label());
            let e = result.expect_err(&format!("{what}: a length of 2^60 decoded"));
            assert_eq!(e.category(), Category::Corrupt, "{what}: {e}");
            assert!(
                largest <= allowed(len),
                "{what}: an input of {len} bytes made an allocation of {largest} bytes"
            );
        }
    }
}

/// The fixed-width lengths at their largest: a journal entry of 4 GiB - 1 (a torn entry:
/// nothing replayed), an object name of 64 KiB - 1, Argon2 asked for 4 GiB of memory.
#[test]
fn the_largest_fixed_width_lengths_allocate_nothing() {
    let f = fixture();
    let mut torn = f.journal_header.clone();
    torn.extend_from_slice(&u32::MAX.to_be_bytes());
    torn.extend_from_slice(&[0; 40]);
    let (restored, largest) = largest_allocation(|| restore(f, &torn).unwrap());
    assert_eq!(restored.replayed, 0);
    assert!(largest <= allowed(torn.len() + f.snapshot.len()));

    let mut named = f.segment.clone();
    named[22..24].copy_from_slice(&[0xFF, 0xFF]);
    let len = named.len();
    let (result, largest) = largest_allocation(|| segment::open(&f.key, A, 1, named));
    assert_eq!(result.unwrap_err().category(), Category::Corrupt);
    assert!(largest <= allowed(len));

    let mut hungry = f.wrapped.clone();
    hungry[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
    let len = hungry.len();
    let (result, largest) =
        largest_allocation(|| VaultKey::unwrap_with_passphrase(&hungry, PASSPHRASE));
    assert_eq!(result.unwrap_err().category(), Category::Config);
    assert!(largest <= allowed(len));
}

/// Every byte of every valid plaintext replaced in turn by each hostile varint (2^60, the
/// largest `u64`, ...): every one-byte length and count of every layout claims them once. The
/// result may be a success (the byte was, say, a clock reading); it allocates within bounds.
#[test]
fn every_byte_replaced_by_a_huge_varint_allocates_within_bounds() {
    let f = fixture();
    let all = [
        &f.segments,
        &f.manifests,
        &f.checkpoints,
        &f.states,
        &f.deltas,
    ];
    for seed in all.into_iter().flatten() {
        for at in 0..seed.plain.len() {
            for value in &hostile_varints() {
                let mut plain = seed.plain.clone();
                plain.splice(at..=at, value.iter().copied());
                let ((len, result), largest) = largest_allocation(|| open_as(f, seed, &plain));
                let what = format!("{} byte {at} = {value:02x?}", seed.label());
                if let Err(e) = result {
                    assert_eq!(e.category(), Category::Corrupt, "{what}: {e}");
                }
                assert!(
                    largest <= allowed(len),
                    "{what}: an input of {len} bytes made an allocation of {largest} bytes"
                );
            }
        }
    }
}
