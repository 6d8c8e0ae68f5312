//! The worked example of `docs/FORMAT.md` §12, computed there by an independent implementation,
//! pinned here so the document and the code cannot drift apart.

use serde_bytes::ByteBuf;

use crate::checkpoint::{self, Checkpoint};
use crate::clock::{Hlc, Stamp};
use crate::crypto::{self, ObjectAd, ObjectKind};
use crate::engine::Engine;
use crate::entropy::Entropy;
use crate::error::Error;
use crate::ids::{DeviceId, Timestamp};
use crate::key::{Purpose, VaultKey};
use crate::manifest::{CheckpointRef, Manifest};
use crate::record::{Record, Records};
use crate::segment::{self, Change, Segment};
use crate::store::Store;

fn hex(text: &str) -> Vec<u8> {
    let clean: String = text.split_whitespace().collect();
    (0..clean.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&clean[i..i + 2], 16).unwrap())
        .collect()
}

fn example_key() -> VaultKey {
    let mut bytes = [0u8; 32];
    bytes.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    VaultKey::from_bytes(bytes)
}

const D: DeviceId = DeviceId([
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
]);

#[test]
fn keys_and_recovery_code() {
    let key = example_key();
    assert_eq!(
        key.vault_id().to_string(),
        "fe4ac05cdc3f07ec56a3f7ee0d0e978b"
    );
    assert_eq!(
        key.subkey(Purpose::Segment).0.to_vec(),
        hex("1a3780353cf69425b58330b3be0b543d2c141fff2682e548285abadd11e9f4ba")
    );
    assert_eq!(
        key.subkey(Purpose::Manifest).0.to_vec(),
        hex("cbd52dd4bc39b412d795757be435bdcaca1045736d022a5197ca1fa8d3a9f7a3")
    );
    assert_eq!(
        key.subkey(Purpose::LocalState).0.to_vec(),
        hex("5bfa003a0ee7d63efa13af913e34994759c77cb80c51a94ab21dcee1d3a82775")
    );
    let code = "000G-40R4-0M30-E209-185G-R38E-1W81-24GK-2GAH-C5RR-34D1-P70X-3RFK-N67P";
    assert_eq!(key.recovery_code(), code);
    let typed = "ooog 4or4 om3o e2o9 185g r38e iw81 24gk 2gah c5rr 34d1 p7ox 3rfk n67p";
    assert_eq!(
        VaultKey::from_recovery_code(typed).unwrap().recovery_code(),
        code
    );
}

#[test]
fn manifest_object_opens_to_the_documented_manifest() {
    let object = hex("42 4b 53 59 01 02 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 22 6d 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 40 41 42 43 44 45
         46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55
         56 57 c6 ec ca 96 15 4c 1f 6a eb de 26 36 8f 38
         0d b0 ad 25 11 51 8a 1e 2e 1c ff 79 89 49 ed 43
         f5 34 24 f0 e6 ac 1d f5 0d 1c da 29 5e 7e 49 db
         a0 b8 d5 76 65 35 7c f9 fd 1b 23 57 c1 2f c8 b6
         cc 32 c8 aa a0");
    let key = example_key();
    let manifest =
        Manifest::open(&key.subkey(Purpose::Manifest), key.vault_id(), D, object).unwrap();
    let expected = Manifest {
        device: D,
        seq: 3,
        segments: 2,
        clock: Hlc {
            wall_ms: 1_767_225_600_000,
            counter: 5,
        },
        merged: vec![(
            DeviceId([
                0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d,
                0x1e, 0x0f,
            ]),
            7,
        )],
        label: String::new(),
        checkpoint: None,
        retired: vec![],
        pruned: 0,
        members: vec![],
    };
    // A version 1 manifest: read with the version 2 and 3 fields empty.
    assert_eq!(manifest, expected);
}

#[test]
fn segment_plaintext_matches_the_documented_bytes() {
    let segment = example_segment();
    let documented = hex("00112233445566778899aabbccddeeff 01 02
         07 6e6f7465732f61 80d0eab6b733 00 01 05 68656c6c6f
         07 6e6f7465732f62 80d0eab6b733 01 00");
    assert_eq!(documented.len(), 56);
    assert_eq!(postcard::to_allocvec(&segment).unwrap(), documented);
    // And what the engine's own encoder seals opens back to the same segment.
    let key = example_key();
    let sealed = seal_example_segment(&key, [3; 32]);
    assert_eq!(segment::open(&key, D, 1, sealed).unwrap(), segment);
}

/// Seals `plaintext` as segment 1 of `D` with envelope `version`, the nonce drawn from `seed`.
fn seal_segment_version(key: &VaultKey, version: u8, plaintext: &[u8], seed: [u8; 32]) -> Vec<u8> {
    let name = segment::segment_name(D, 1);
    let ad = ObjectAd {
        vault: key.vault_id(),
        kind: ObjectKind::Segment,
        name: &name,
    };
    crypto::seal_version(
        &key.subkey(Purpose::Segment),
        &ad,
        version,
        plaintext,
        &mut Entropy::from_seed(seed),
    )
    .unwrap()
}

/// Segment 1 of `D` in §12: `notes/a = "hello"` and a tombstone for `notes/b`.
fn example_segment() -> Segment {
    let wall_ms = 1_767_225_600_000;
    Segment {
        device: D,
        seq: 1,
        changes: vec![
            Change {
                key: b"notes/a".to_vec(),
                hlc: Hlc {
                    wall_ms,
                    counter: 0,
                },
                value: Some(b"hello".to_vec()),
            },
            Change {
                key: b"notes/b".to_vec(),
                hlc: Hlc {
                    wall_ms,
                    counter: 1,
                },
                value: None,
            },
        ],
    }
}

/// [`example_segment`] sealed by the engine's encoder, the nonce drawn from `seed`.
fn seal_example_segment(key: &VaultKey, seed: [u8; 32]) -> Vec<u8> {
    let records: Vec<_> = example_segment()
        .changes
        .into_iter()
        .map(|c| c.into_record(D))
        .collect();
    let pairs: Vec<(&[u8], &Record)> = records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
    segment::seal(key, D, 1, &pairs, true, &mut Entropy::from_seed(seed)).unwrap()
}

/// The previous release wrote format version 2: still read, the version 3 fields empty.
#[test]
fn version_2_checkpoint_and_manifest_open_to_the_documented_values() {
    let key = example_key();
    assert_eq!(
        key.subkey(Purpose::Checkpoint).0.to_vec(),
        hex("2aa37f7ff713cb26bd21eceba208c398820d095ae1caf12aebfc228047562069")
    );
    let checkpoint_object = hex("42 4b 53 59 02 05 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 33 63 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 2f 30 30 30 30 30
         30 30 30 30 30 30 30 30 30 30 34 40 41 42 43 44
         45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54
         55 56 57 ae 0c 54 2e 8c ce 7f 06 81 30 b7 bf dc
         65 dd 75 30 6c a7 38 1b 35 c3 04 7e fb 59 a9 51
         05 74 fa fb 1e 5c 91 1d 44 f3 cb dc 0d 4e 9e 17
         cf cb 4b ff 15 89 b7 fd 0c f1 84 e8 a1 0a 4d 00
         f9 77 61 dd 09 08 56 ca 55 14 e8 46 63 ed e6 24
         19 99 6f 4b 87 14 f4 b1 f4 f9 05 30 51 c2 d0 8b
         9c ce 33 12 d9 d0 7d 5c a6 fd 21 ca 75 55 41 2a
         7c 31 cd ad e0 4c cd f3 79 12 c2 f1 fa 55 c7 fc
         69 de 31 5b a3 5f b3 b9 d6 d2 1f 19 cf eb 4d 56
         47 84 57 4c 22 fb 51 be 5a f2 70 16 a6 7c 90 24
         fc 89 6f a7 6d 20 1d d6 99 2f ed df aa d5 e5 4c
         90 b2 0f 13 7b 67 78 81 da 0b 98 3f ac d3 84 07
         af b2 a9 7a");
    assert_eq!(checkpoint_object.len(), 292);
    assert_eq!(
        open_example_checkpoint(checkpoint_object),
        Checkpoint {
            horizon_ms: 0,
            ..example_checkpoint()
        }
    );

    let manifest_object = hex("42 4b 53 59 02 02 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 22 6d 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 40 41 42 43 44 45
         46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55
         56 57 79 1d aa 06 00 31 94 55 eb de 26 36 8f 38
         0d b0 ad 25 11 51 8a 1e 2e 1c f8 79 89 49 ed 43
         f5 34 26 f0 e6 ac 1d f5 0d 1c da 29 5e 7e 49 db
         a0 b8 d5 76 65 b1 e8 6c b6 70 04 25 f8 27 6a df
         59 d3 99 9f bc 72 1a f7 a9 91 49 6a c0 a7 3e 31
         4a 3d 3d dd 5b 0c da 20 82 30 2b 15 77 fc 9c c8
         10 75 51 32 ec 60 49 62 96 25 a1 f6 9e 8e fc 10
         d3 36 93");
    let v4 = example_manifest();
    assert_eq!(
        open_example_manifest(manifest_object),
        Manifest {
            checkpoint: Some(CheckpointRef {
                bytes: 292,
                ..v4.checkpoint.clone().unwrap()
            }),
            retired: vec![],
            pruned: 0,
            ..v4
        }
    );
}

#[test]
fn version_3_checkpoint_and_manifest_are_still_read() {
    let checkpoint_object = hex("42 4b 53 59 03 05 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 33 63 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 2f 30 30 30 30 30
         30 30 30 30 30 30 30 30 30 30 34 40 41 42 43 44
         45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54
         55 56 57 86 ac dc 87 bd f5 70 64 81 30 b7 bf dc
         65 dd 75 30 6c a7 38 1b 35 c3 04 7e fb 59 a9 51
         05 74 fa fb 1e 5c 91 1d 44 f3 cb dc 0d 4e 9e 17
         cf cb 4b ff 15 89 b7 fd 0c f1 84 e8 a1 0a 4d 00
         f9 77 61 dd 09 08 d5 0d d4 99 31 10 13 c5 e9 4a
         68 94 79 08 8a 7a 71 09 7b 23 de 6c d1 12 2b 1f
         18 b9 66 74 bf 7a d7 b2 48 57 8b ac 13 f8 94 89
         d5 ba 41 85 ec 23 39 46 e0 8b 17 c2 7b 85 3c 68
         ed a9 65 3d c5 f5 19 57 38 78 b5 7f a9 46 98 f5
         ee 0f db 64 2f 95 23 bd 5b b2 7e 37 e6 fa 20 af
         27 1e 1a 44 5f 25 79 a2 1e 89 8b b9 00 7f 0b a2
         3a 18 69 75 19 d2 77 60 89 fa f0 e7 c8 02 8e 58
         99 e6 07 50 9d 4c 57 a5 e5 cb");
    assert_eq!(checkpoint_object.len(), 298);
    assert_eq!(
        open_example_checkpoint(checkpoint_object),
        example_checkpoint()
    );

    let manifest_object = hex("42 4b 53 59 03 02 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 22 6d 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 40 41 42 43 44 45
         46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55
         56 57 10 f8 7e c6 94 39 2b 97 eb de 26 36 8f 38
         0d b0 ad 25 11 51 8a 1e 2e 1c f8 79 89 49 ed 43
         f5 34 26 f0 e6 ac 1d f5 0d 1c da 29 5e 7e 49 db
         a0 b8 d5 76 65 b1 e8 6c b6 70 04 25 f8 27 6a df
         59 d3 99 9f bc 72 1a f7 a9 91 49 6a c0 a7 3e 31
         4a 3d 3d dd 5b 0c da 20 82 30 2b 15 77 fc 9c c8
         10 7b 51 d8 24 e8 a7 d7 be d6 eb 2d 9e a6 bc b0
         50 2d 04 87 11 ae 98 f0 07 76 36 d6 76 1d 0a f5
         47 d3 0f 38");
    assert_eq!(
        open_example_manifest(manifest_object),
        Manifest {
            pruned: 0,
            ..example_manifest()
        }
    );
}

const F: DeviceId = DeviceId([
    0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
]);

/// The checkpoint of §12's version 3 and 4 examples.
fn example_checkpoint() -> Checkpoint {
    let t = 1_767_225_600_000;
    let record = |value: Option<&[u8]>, wall_ms, counter, device| Record {
        value: value.map(<[u8]>::to_vec),
        stamp: Stamp {
            hlc: Hlc { wall_ms, counter },
            device,
        },
    };
    Checkpoint {
        writer: D,
        number: 4,
        covers: vec![(D, 2), (F, 7)],
        clock: Hlc {
            wall_ms: t,
            counter: 6,
        },
        horizon_ms: t - 30 * 86_400_000,
        records: vec![
            (
                ByteBuf::from(b"notes/a".to_vec()),
                record(Some(b"hello"), t, 0, D),
            ),
            (ByteBuf::from(b"notes/b".to_vec()), record(None, t, 1, D)),
            (
                ByteBuf::from(b"notes/c".to_vec()),
                record(Some(b"from F"), t - 100_000, 3, F),
            ),
        ],
    }
}

#[test]
fn version_4_checkpoint_and_manifest_open_to_the_documented_values() {
    let checkpoint_object = hex("42 4b 53 59 04 05 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 33 63 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 2f 30 30 30 30 30
         30 30 30 30 30 30 30 30 30 30 34 40 41 42 43 44
         45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54
         55 56 57 ea e1 c6 0f 8d a3 80 46 81 30 b7 bf dc
         65 dd 75 30 6c a7 38 1b 35 c3 04 7e fb 59 a9 51
         05 74 fa fb 1e 5c 91 1d 44 f3 cb dc 0d 4e 9e 17
         cf cb 4b ff 15 89 b7 fd 0c f1 84 e8 a1 0a 4d 00
         f9 77 61 dd 09 08 d5 0d d4 99 31 10 13 c5 e9 4a
         68 94 79 08 8a 7a 71 09 7b 23 de 6c d1 12 2b 1f
         18 b9 66 74 bf 7a d7 b2 48 57 8b ac 13 f8 94 89
         d5 ba 41 85 ec 23 39 46 e0 8b 17 c2 7b 85 3c 68
         ed a9 65 3d c5 f5 19 57 38 78 b5 7f a9 46 98 f5
         ee 0f db 64 2f 95 23 bd 5b b2 7e 37 e6 fa 20 af
         27 1e 1a 44 5f 25 79 a2 1e 89 8b b9 00 7f 0b a2
         3a 18 69 75 19 d2 77 60 89 fa 28 25 f3 e0 c4 99
         a8 dc fb 40 33 cf 8e 17 4f 51");
    let expected = example_checkpoint();
    assert_eq!(open_example_checkpoint(checkpoint_object), expected);
    assert_eq!(
        postcard::to_allocvec(&expected).unwrap(),
        hex("00112233445566778899aabbccddeeff040200112233445566778899aabbccddeeff02f0e1d2c3b4a5968778695a4b3c2d1e0f0780d0eab6b7330680c0efe2ad3303076e6f7465732f61010568656c6c6f80d0eab6b7330000112233445566778899aabbccddeeff076e6f7465732f620080d0eab6b7330100112233445566778899aabbccddeeff076e6f7465732f63010666726f6d2046e0c2e4b6b73303f0e1d2c3b4a5968778695a4b3c2d1e0f")
    );

    let manifest_object = hex("42 4b 53 59 04 02 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 22 6d 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 40 41 42 43 44 45
         46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53 54 55
         56 57 ad 39 34 44 b0 e0 aa d3 eb de 26 36 8f 38
         0d b0 ad 25 11 51 8a 1e 2e 1c f8 79 89 49 ed 43
         f5 34 26 f0 e6 ac 1d f5 0d 1c da 29 5e 7e 49 db
         a0 b8 d5 76 65 b1 e8 6c b6 70 04 25 f8 27 6a df
         59 d3 99 9f bc 72 1a f7 a9 91 49 6a c0 a7 3e 31
         4a 3d 3d dd 5b 0c da 20 82 30 2b 15 77 fc 9c c8
         10 7b 51 d8 24 e8 a7 d7 be d6 eb 2d 9e a6 bc b0
         50 2d 04 87 0d 4e c0 f1 21 f6 7a 92 71 ee 35 e2
         33 2b 2d 10 d4");
    let expected = example_manifest();
    assert_eq!(open_example_manifest(manifest_object), expected);
    // The version 8 layout is the version 4 one followed by the member statements: none here,
    // one byte 00.
    let v8 = postcard::to_allocvec(&expected).unwrap();
    assert_eq!(v8.last(), Some(&0));
    assert_eq!(
        v8[..v8.len() - 1],
        hex("00112233445566778899aabbccddeeff040280d0eab6b7330701f0e1d2c3b4a5968778695a4b3c2d1e0f07066c6170746f7001040200112233445566778899aabbccddeeff02f0e1d2c3b4a5968778695a4b3c2d1e0f07aa0201eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee02")
    );
}

/// The manifest of §12's version 4 example; earlier versions lack some of its fields.
fn example_manifest() -> Manifest {
    Manifest {
        device: D,
        seq: 4,
        segments: 2,
        clock: Hlc {
            wall_ms: 1_767_225_600_000,
            counter: 7,
        },
        merged: vec![(F, 7)],
        label: "laptop".into(),
        checkpoint: Some(CheckpointRef {
            number: 4,
            covers: vec![(D, 2), (F, 7)],
            bytes: 298,
        }),
        retired: vec![DeviceId([0xee; 16])],
        pruned: 2,
        members: vec![],
    }
}

fn open_example_manifest(object: Vec<u8>) -> Manifest {
    let key = example_key();
    Manifest::open(&key.subkey(Purpose::Manifest), key.vault_id(), D, object).unwrap()
}

fn open_example_checkpoint(object: Vec<u8>) -> Checkpoint {
    let key = example_key();
    checkpoint::open(
        &key.subkey(Purpose::Checkpoint),
        key.vault_id(),
        D,
        4,
        object,
    )
    .unwrap()
}

// ---- §12's further vectors: a segment object, a folder ETag, a wrapped key, a local state and
// a merge. Where the reference's writer is checked byte for byte, the nonce is the first one
// a seeded `Entropy` draws.

const T: u64 = 1_767_225_600_000;

#[test]
fn seeded_entropy_draws_the_documented_nonces() {
    assert_eq!(
        Entropy::from_seed([3; 32]).array::<24>().to_vec(),
        hex("385553aa23a24b14d8bbc2dff606277f444e049797ae7e04")
    );
    assert_eq!(
        Entropy::from_seed([5; 32]).array::<24>().to_vec(),
        hex("8108aedfacf5cf1d73c67b6936397ba5fa72817f1b5aab94")
    );
}

/// Segment 1 of `D` sealed by a version 4 writer, nonce of seed `03`.
const SEGMENT_OBJECT: &str = "42 4b 53 59 04 01 fe 4a c0 5c dc 3f 07 ec 56 a3
    f7 ee 0d 0e 97 8b 00 33 73 2f 30 30 31 31 32 32
    33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
    62 62 63 63 64 64 65 65 66 66 2f 30 30 30 30 30
    30 30 30 30 30 30 30 30 30 30 31 38 55 53 aa 23
    a2 4b 14 d8 bb c2 df f6 06 27 7f 44 4e 04 97 97
    ae 7e 04 82 50 92 24 02 fd 23 72 12 ac eb c0 34
    15 ec cc bf 14 e3 3a b3 26 f0 4b ea 62 6c 40 bb
    17 0e b1 b3 51 e0 68 1d 90 aa d7 6c bd 97 3a 53
    49 24 e0 6a 4d 52 85 7d 2a 29 98 30 d9 26 d5 e2
    06 14 82 1b 7d ef 88 52 70 af 8f 25 a7 a9 e4 64
    59 34 f6";

/// Versions 4 to 10 wrote segments as version 4: still read.
#[test]
fn version_4_segment_object_is_sealed_and_opened_as_documented() {
    let key = example_key();
    let documented = hex(SEGMENT_OBJECT);
    assert_eq!(documented.len(), 179);
    let plain = postcard::to_allocvec(&example_segment()).unwrap();
    assert_eq!(seal_segment_version(&key, 4, &plain, [3; 32]), documented);
    assert_eq!(
        segment::open(&key, D, 1, documented.clone()).unwrap(),
        example_segment()
    );
    // Opened as the name it was fetched as: another number or device is refused.
    assert!(segment::open(&key, D, 2, documented.clone()).is_err());
    assert!(segment::open(&key, F, 1, documented).is_err());
}

/// §12's version 11 segment: segment 1 of `D` holding `notes/a` and `notes/c`, each "hello, "
/// eight times, and a tombstone for `notes/b`, deflated by the reference's writer.
fn example_segment_v11() -> Segment {
    let mut segment = example_segment();
    let hellos = b"hello, ".repeat(8);
    segment.changes[0].value = Some(hellos.clone());
    segment.changes.push(Change {
        key: b"notes/c".to_vec(),
        hlc: Hlc {
            wall_ms: T,
            counter: 2,
        },
        value: Some(hellos),
    });
    segment
}

#[test]
fn version_11_segment_object_is_sealed_and_opened_as_documented() {
    let key = example_key();
    let segment = example_segment_v11();
    let plain = postcard::to_allocvec(&segment).unwrap();
    let records: Vec<_> = segment
        .changes
        .iter()
        .cloned()
        .map(|c| c.into_record(D))
        .collect();
    let pairs: Vec<(&[u8], &Record)> = records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
    let sealed = segment::seal(
        &key,
        D,
        1,
        &pairs,
        true,
        &mut Entropy::from_seed([0x0b; 32]),
    )
    .unwrap();
    let name = segment::segment_name(D, 1);
    let ad = ObjectAd {
        vault: key.vault_id(),
        kind: ObjectKind::Segment,
        name: &name,
    };
    let (version, coded) =
        crypto::open_versioned(&key.subkey(Purpose::Segment), &ad, sealed.clone()).unwrap();
    assert_eq!(version, 11);
    assert_eq!(coded[0], crate::codec::DEFLATE);
    assert_eq!(crate::codec::inflated(&coded[1..], 1 << 20).unwrap(), plain);
    assert_eq!(plain.len(), 180);
    assert_eq!(coded[1..], hex(SEGMENT_V11_DEFLATE));
    assert_eq!(sealed, hex(SEGMENT_V11_OBJECT));
    assert_eq!(segment::open(&key, D, 1, sealed.clone()).unwrap(), segment);
    // Stored as it is (compression turned off): codec 00 and the plaintext.
    let stored = seal_segment_version(&key, 11, &[&[0][..], &plain].concat(), [0x0b; 32]);
    assert_eq!(segment::open(&key, D, 1, stored).unwrap(), segment);
    // A codec byte that is neither, or a stream that does not inflate, is corrupt.
    for bad in [[&[2][..], &plain].concat(), [&[1][..], &plain].concat()] {
        let object = seal_segment_version(&key, 11, &bad, [0x0b; 32]);
        assert!(matches!(
            segment::open(&key, D, 1, object),
            Err(Error::Corrupt { .. })
        ));
    }
}

/// The deflate stream of §12's version 11 segment (93 bytes), as the reference writes it.
const SEGMENT_V11_DEFLATE: &str = "9dcca10d80301040d13b106836206812440d03b002030029413454408245b2022b300008564074812e50d1155ad12ed0aa9f6f1ee42569bb693faffbfba53698660bdfe85af78750cf4b009b9932c6ab22381e1a1c84e07f749fc4c316";

/// §12's version 11 segment object (217 bytes), nonce of seed `0b`.
const SEGMENT_V11_OBJECT: &str = "424b53590b01fe4ac05cdc3f07ec56a3f7ee0d0e978b0033732f30303131323233333434353536363737383839396161626263636464656566662f303030303030303030303030303030316f57e9cc0e4d190d91d3f82ea9851078df5abe0a50d65197669119d8178d90e89f2ebd97bf262e769cec52849d0b7e1c3add5eeb7a3d863d824ba626e3da93d88735bae5286c2852863c72376c69e30cbf2ddd590653b2f47cb4c5875251cf654ca33988380cff3b190c90a7045aa5d9d366b1ff873ac0534255608ede1367238a3164dc934bf9f8362902abf8b0";

/// The local-folder bucket answers a PUT, a GET and a listing of §12's segment object (and of
/// an empty object) with the documented ETags.
#[cfg(feature = "folder")]
#[test]
fn folder_bucket_etags_are_the_documented_ones() {
    use crate::http::{Method, Request, RequestKind};
    use crate::ids::RequestId;
    use crate::io::folder::FolderBucket;

    let root = std::env::temp_dir().join(format!(
        "bucketsync-format-vectors-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    // Removed however the test ends.
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    let _cleanup = Cleanup(root.clone());
    let base = format!("file://{}", root.display());
    let request = |method, url: String, body: Vec<u8>| Request {
        id: RequestId(0),
        kind: RequestKind::PutSegment,
        method,
        url,
        headers: vec![],
        body: body.into(),
    };
    let folder = FolderBucket;
    let segment_key = format!("fe4ac05cdc3f07ec56a3f7ee0d0e978b/s/{D}/0000000000000001");
    let cases = [
        (
            segment_key,
            hex(SEGMENT_OBJECT),
            "\"353f911b1678d41c1708d51440b906da\"",
        ),
        (
            "empty".to_owned(),
            vec![],
            "\"af1349b9f5f9a1a6a0404dea36dcc949\"",
        ),
    ];
    for (name, body, etag) in &cases {
        let url = format!("{base}/{name}");
        let put = folder.execute(&request(Method::Put, url.clone(), body.clone()));
        assert_eq!((put.status, put.header("etag")), (200, Some(*etag)));
        let get = folder.execute(&request(Method::Get, url, vec![]));
        assert_eq!((get.status, get.header("etag")), (200, Some(*etag)));
        assert_eq!(&get.body, body);
    }
    let listing = folder.execute(&request(
        Method::Get,
        format!("{base}/?list-type=2&prefix="),
        vec![],
    ));
    let xml = String::from_utf8(listing.body).unwrap();
    for (name, _, etag) in &cases {
        let escaped = etag.replace('"', "&quot;");
        assert!(
            xml.contains(&format!("<Key>{name}</Key><ETag>{escaped}</ETag>")),
            "{xml}"
        );
    }
}

/// `K` wrapped under `Grüße, vault!` with Argon2id `m = 8`, `t = 1`, `p = 1`.
const WRAPPED_KEY: &str = "42 4b 53 57 01 00 00 00 08 00 00 00 01 00 00 00
    01 60 61 62 63 64 65 66 67 68 69 6a 6b 6c 6d 6e
    6f 42 4b 53 59 01 03 00 00 00 00 00 00 00 00 00
    00 00 00 00 00 00 00 00 0b 77 72 61 70 70 65 64
    2d 6b 65 79 40 41 42 43 44 45 46 47 48 49 4a 4b
    4c 4d 4e 4f 50 51 52 53 54 55 56 57 71 42 54 13
    9f 6c dc 80 1f 90 ce 05 35 9e b3 bb bd a3 53 ce
    bb d2 ca 52 c2 b6 d6 58 9b 3f fb 06 ad 2e c9 5e
    93 92 9c e0 37 69 01 fd ff 47 26 13 d6 20 50 a8
    40 a6 07 12";

#[test]
fn wrapped_key_unwraps_to_the_documented_key() {
    let blob = hex(WRAPPED_KEY);
    assert_eq!(blob.len(), 148);
    let passphrase = "Grüße, vault!";
    assert_eq!(passphrase.as_bytes(), hex("4772c3bcc39f652c207661756c7421"));
    let key = VaultKey::unwrap_with_passphrase(&blob, passphrase).unwrap();
    // The recovery code spells all 32 key bytes.
    assert_eq!(key.recovery_code(), example_key().recovery_code());

    let refused =
        |blob: &[u8], passphrase: &str| match VaultKey::unwrap_with_passphrase(blob, passphrase) {
            Err(Error::Config(message)) => message,
            other => panic!("unwrapped: {other:?}"),
        };
    // The passphrase's bytes as given: the same text decomposed (u + U+0308) is another one.
    assert_eq!(
        refused(&blob, "Gru\u{308}ße, vault!"),
        "wrong passphrase for this wrapped key"
    );
    // The parameters are not associated data, but they make the KEK: 2 passes open nothing.
    let mut two_passes = blob.clone();
    two_passes[12] = 2;
    assert_eq!(
        refused(&two_passes, passphrase),
        "wrong passphrase for this wrapped key"
    );
    // The reference's writer lays out the same header for these parameters (its salt and
    // nonce are random) and reads its own blob back.
    let written = example_key().wrap_with_params(passphrase, 8, 1, 1).unwrap();
    assert_eq!(written.len(), 148);
    assert_eq!(written[..17], blob[..17]);
    assert_eq!(
        VaultKey::unwrap_with_passphrase(&written, passphrase)
            .unwrap()
            .recovery_code(),
        key.recovery_code()
    );
}

/// The snapshot of a new replica of `D` after one write, `notes/a = "hello"` at `T`; nonce of
/// seed `05`.
const STATE_SNAPSHOT: &str = "42 4b 53 59 01 03 fe 4a c0 5c dc 3f 07 ec 56 a3
    f7 ee 0d 0e 97 8b 00 0b 6c 6f 63 61 6c 2d 73 74
    61 74 65 81 08 ae df ac f5 cf 1d 73 c6 7b 69 36
    39 7b a5 fa 72 81 7f 1b 5a ab 94 ef e7 42 20 13
    12 a5 0d b2 f2 43 76 d1 ce 80 34 c0 9d 47 d8 4f
    d2 83 65 46 f0 d6 c4 19 49 6e 97 b0 7e 83 64 7e
    b7 a5 16 94 96 77 fc 42 32 a8 b4 0f 85 f0 93 79
    94 2f 52 67 b3 75 82 47 e6 ef 6b 7b 6e e4 4a fd
    cf 3a 0a 44 5a 57 2a 65 2d 16 7f 5e 2c 77 97 9f
    62 23 d7 c1 3c 4f f6 03 13 d4 6b b9 70 6b 36 63
    2e a0 df fb 72 bb 12 df e0 b2 93 b3 91 ed fe c5
    05 90 f3 1e 8b 6d d8 af 79 e7 fc a1 81";
/// The same snapshot as state version 9 wrote it (the previous release): still read.
const STATE_SNAPSHOT_V9: &str = "42 4b 53 59 01 03 fe 4a c0 5c dc 3f 07 ec 56 a3
    f7 ee 0d 0e 97 8b 00 0b 6c 6f 63 61 6c 2d 73 74
    61 74 65 81 08 ae df ac f5 cf 1d 73 c6 7b 69 36
    39 7b a5 fa 72 81 7f 1b 5a ab 94 ef e7 42 20 13
    12 a5 0d b1 f2 43 76 d1 ce 80 34 c0 9d 47 d8 4f
    d2 83 65 46 f0 d6 c4 19 49 6e 97 b0 7e 83 64 7e
    b7 a5 16 94 96 77 fc 42 32 a8 b4 0f 85 f0 93 79
    94 2f 52 67 b3 75 82 47 e6 ef 6b 7b 6e e4 4a fd
    cf 3a 0a 44 5a 57 2a 65 2d 16 7f 5e 2c 77 97 9f
    62 23 d7 c1 3c 4f f6 03 13 d4 6b b9 70 6b 36 63
    2e a0 df fb 72 bb 12 df 9b 76 b8 7c 25 05 8f 6c
    d2 cf fc aa 55 c4 a4 d8";
const JOURNAL_HEADER: &str = "424b534a0a a286c2afefe82aab3fde7ad8368b634e";

#[test]
fn local_state_snapshot_and_journal_header_are_the_documented_bytes() {
    let key = example_key();
    let store = Store::parse("file:///vault").unwrap();
    let documented = hex(STATE_SNAPSHOT);
    assert_eq!(documented.len(), 189);

    let mut engine = Engine::new(&key, store.clone(), D, Entropy::from_seed([5; 32]));
    engine.put("notes/a", "hello", Timestamp(T));
    assert_eq!(engine.export_state(), documented);
    assert_eq!(engine.journal_header().unwrap(), hex(JOURNAL_HEADER));

    // The envelope holds the documented plaintext.
    let ad = ObjectAd {
        vault: key.vault_id(),
        kind: ObjectKind::LocalState,
        name: "local-state",
    };
    assert_eq!(
        crypto::open(&key.subkey(Purpose::LocalState), &ad, documented.clone()).unwrap(),
        hex("0a 00112233445566778899aabbccddeeff 80d0eab6b733 00
             01 07 6e6f7465732f61 01 05 68656c6c6f 80d0eab6b733 00 00112233445566778899aabbccddeeff
             01 07 6e6f7465732f61
             00 00 00 00 00 00  00  00  00  00
             00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  00  00  00  00 00 00 00 00")
    );

    // And the replica restored from it (and its empty journal) is the one that wrote it.
    let restored = Engine::restore(
        &key,
        store.clone(),
        &documented,
        &hex(JOURNAL_HEADER),
        Entropy::from_seed([6; 32]),
    )
    .unwrap();
    assert_eq!(restored.replayed, 0);
    let engine = restored.engine;
    assert_eq!(engine.device(), D);
    assert_eq!(
        engine.clock(),
        Hlc {
            wall_ms: T,
            counter: 0
        }
    );
    assert_eq!(engine.get(b"notes/a"), Some(&b"hello"[..]));
    assert_eq!(
        engine.record(b"notes/a").unwrap().stamp,
        Stamp {
            hlc: Hlc {
                wall_ms: T,
                counter: 0
            },
            device: D
        }
    );
    assert_eq!(engine.unpushed_keys(), vec![b"notes/a".to_vec()]);
    assert_eq!(engine.len(), 1);

    // The same replica as the previous release saved it (state version 9) reads the same.
    let v9 = Engine::from_state(
        &key,
        store.clone(),
        &hex(STATE_SNAPSHOT_V9),
        Entropy::from_seed([6; 32]),
    )
    .unwrap();
    assert_eq!(v9.get(b"notes/a"), Some(&b"hello"[..]));
    assert_eq!(v9.unpushed_keys(), vec![b"notes/a".to_vec()]);

    // Under another vault key it is another vault's state.
    let other = VaultKey::from_bytes([9; 32]);
    assert!(matches!(
        Engine::restore(&other, store, &documented, &[], Entropy::from_seed([6; 32])),
        Err(Error::WrongVault { .. })
    ));
}

#[test]
fn same_time_writes_are_merged_by_device_id_in_either_order() {
    let change = |key: &str, counter, value: Option<&str>| Change {
        key: key.as_bytes().to_vec(),
        hlc: Hlc {
            wall_ms: T,
            counter,
        },
        value: value.map(|v| v.as_bytes().to_vec()),
    };
    let from_d = Segment {
        device: D,
        seq: 1,
        changes: vec![
            change("notes/x", 2, Some("from D")),
            change("notes/y", 3, Some("from D")),
            change("notes/z", 5, Some("from D")),
        ],
    };
    let from_f = Segment {
        device: F,
        seq: 1,
        changes: vec![
            change("notes/x", 2, Some("from F")),
            change("notes/y", 3, None),
            change("notes/z", 4, Some("from F")),
        ],
    };
    // The inputs as documented: each device's segment 1.
    let decode = |text| postcard::from_bytes::<Segment>(&hex(text)).unwrap();
    assert_eq!(
        decode(
            "00112233445566778899aabbccddeeff 01 03
            07 6e6f7465732f78 80d0eab6b733 02 01 06 66726f6d2044
            07 6e6f7465732f79 80d0eab6b733 03 01 06 66726f6d2044
            07 6e6f7465732f7a 80d0eab6b733 05 01 06 66726f6d2044"
        ),
        from_d
    );
    assert_eq!(
        decode(
            "f0e1d2c3b4a5968778695a4b3c2d1e0f 01 03
            07 6e6f7465732f78 80d0eab6b733 02 01 06 66726f6d2046
            07 6e6f7465732f79 80d0eab6b733 03 00
            07 6e6f7465732f7a 80d0eab6b733 04 01 06 66726f6d2046"
        ),
        from_f
    );

    let record = |value: Option<&str>, counter, device| Record {
        value: value.map(|v| v.as_bytes().to_vec()),
        stamp: Stamp {
            hlc: Hlc {
                wall_ms: T,
                counter,
            },
            device,
        },
    };
    let expected = vec![
        (b"notes/x".to_vec(), record(Some("from F"), 2, F)),
        (b"notes/y".to_vec(), record(None, 3, F)),
        (b"notes/z".to_vec(), record(Some("from D"), 5, D)),
    ];
    for (first, second) in [(&from_d, &from_f), (&from_f, &from_d)] {
        let mut records = Records::default();
        for segment in [first, second] {
            for change in segment.changes.clone() {
                let (key, record) = change.into_record(segment.device);
                records.merge(key, record);
            }
        }
        let mut merged: Vec<(Vec<u8>, Record)> = records
            .iter()
            .map(|(k, r)| (k.clone(), r.clone()))
            .collect();
        merged.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(merged, expected, "{} first", first.device);
        // As a checkpoint's records, byte for byte.
        let as_checkpoint: Vec<(ByteBuf, Record)> = merged
            .into_iter()
            .map(|(k, r)| (ByteBuf::from(k), r))
            .collect();
        assert_eq!(
            postcard::to_allocvec(&as_checkpoint).unwrap(),
            hex("03
                 07 6e6f7465732f78 01 06 66726f6d2046 80d0eab6b733 02 f0e1d2c3b4a5968778695a4b3c2d1e0f
                 07 6e6f7465732f79 00                80d0eab6b733 03 f0e1d2c3b4a5968778695a4b3c2d1e0f
                 07 6e6f7465732f7a 01 06 66726f6d2044 80d0eab6b733 05 00112233445566778899aabbccddeeff")
        );
    }
}

// ---- Version 5: files (FORMAT.md §14, vectors in §12) ----

/// Checks the chunk, chunk-id, chunker and file-hash subkeys of `key` against the documented
/// hex, in that order.
fn assert_file_subkeys(key: &VaultKey, documented: [&str; 4]) {
    let purposes = [
        Purpose::Chunk,
        Purpose::ChunkId,
        Purpose::Chunker,
        Purpose::FileHash,
    ];
    for (purpose, documented) in purposes.into_iter().zip(documented) {
        assert_eq!(to_hex(&key.subkey(purpose).0), documented, "{purpose:?}");
    }
}

/// The reference's pack `name` of the example file's two chunks (`Hello, ` and `files!`)
/// under `key`'s file keys, bound to the vault `vault`, as a pack of `version` (6: as the
/// reference wrote it before version 10), its nonces drawn from the stream of seed `seed`.
fn build_example_pack(
    key: &VaultKey,
    vault: crate::ids::VaultId,
    name: crate::pack::PackName,
    seed: u8,
    version: u8,
) -> Vec<u8> {
    let (chunk_key, id_key) = (key.subkey(Purpose::Chunk), key.subkey(Purpose::ChunkId));
    let mut entropy = Entropy::from_seed([seed; 32]);
    let mut builder = crate::pack::PackBuilder::new(name, 512);
    builder.version = version;
    for piece in [&b"Hello, "[..], b"files!"] {
        let id = crate::pack::ChunkId::of(&id_key, piece);
        builder
            .push(&chunk_key, vault, id, piece, true, &mut entropy)
            .unwrap();
    }
    builder.finish(&chunk_key, vault, &mut entropy).unwrap()
}

#[test]
fn file_subkeys_and_gear_are_the_documented_ones() {
    let key = example_key();
    assert_file_subkeys(
        &key,
        [
            "f926b7f770a8cd45a1296e2003bcfc00d610986a883925a8f3df96f52c9552fe",
            "65dddec1a1e69ae4cf73b35ec5c0c97ce1d0521354f81b3b7cceb5ce42b843d4",
            "c299724448c05480b359ff65ea96c78f55a98b6ff16a6c47bdf4279aa2c536fc",
            "5c53f137f855520187853882c2fc263f1c12e3ed0f67b39b99efa8cbdfca778c",
        ],
    );
    let gear = crate::chunker::Gear::new(&key.subkey(Purpose::Chunker));
    assert_eq!(
        [gear.word(0), gear.word(1), gear.word(255)],
        [
            0xbe7b_1f9b_c310_a345,
            0x33fb_0968_cda4_054d,
            0xe502_8bb4_bca5_b501
        ]
    );
}

#[test]
fn the_example_file_is_cut_and_named_as_documented() {
    use crate::chunker::{Chunker, Gear};
    use crate::pack::ChunkId;
    let key = example_key();
    let mut data = vec![0u8; 3 << 20];
    blake3::Hasher::new()
        .update(b"bucketsync chunking example")
        .finalize_xof()
        .fill(&mut data);
    let mut chunker = Chunker::new(Gear::new(&key.subkey(Purpose::Chunker)));
    assert_eq!(chunker.feed(&data), data.len());
    let id_key = key.subkey(Purpose::ChunkId);
    let mut cut = Vec::new();
    while let Some(chunk) = chunker.next_chunk(true) {
        cut.push((chunk.len(), ChunkId::of(&id_key, chunk).0.to_vec()));
    }
    assert_eq!(
        cut,
        vec![
            (
                973_990,
                hex("ad5ea48985a01aaf18904ac7368c78763e8b7348e5529a0f36862a55fb0f49b6")
            ),
            (
                1_768_065,
                hex("7da73992be29525681906d5cc8ee08936d2033cb9d407057e2bc1c6c978052d5")
            ),
            (
                403_673,
                hex("77a50af3ef63e612697def85bc8002fbf7c84987f3be1060967bc2f14caa1634")
            ),
        ]
    );
    assert_eq!(
        blake3::keyed_hash(&key.subkey(Purpose::FileHash).0, &data)
            .as_bytes()
            .to_vec(),
        hex("d386e2e62810cabeae6b570727154fda66fc3cb9469ed46ab6af1f5664730735")
    );
}

/// The version 5 pack of §12 (still read): two chunks, `Hello, ` and `files!`, of device `D`,
/// as whole envelopes.
fn example_pack_v5() -> Vec<u8> {
    hex("
42 4b 53 59 05 06 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 42 6b 2f 39 62 64 33 65 36
         39 34 65 31 35 36 35 62 30 61 34 66 37 35 38 38
         37 64 64 33 64 65 39 62 64 66 36 35 37 35 38 63
         64 33 38 34 32 61 64 37 36 37 33 37 62 38 64 37
         34 31 64 34 34 37 30 35 33 65 38 55 53 aa 23 a2
         4b 14 d8 bb c2 df f6 06 27 7f 44 4e 04 97 97 ae
         7e 04 11 ea b4 7e 72 cf 5a df 18 32 3d a0 28 9b
         84 1e 77 3f c1 2d 78 42 01 e9 17 64 7e 78 9d 90
         be 42 4b 53 59 05 06 fe 4a c0 5c dc 3f 07 ec 56
         a3 f7 ee 0d 0e 97 8b 00 42 6b 2f 37 63 35 37 30
         35 31 38 62 63 33 36 34 64 32 39 31 35 32 36 31
         31 32 35 63 63 30 30 66 31 66 64 63 33 63 31 39
         36 30 62 35 31 38 30 66 62 34 61 65 30 63 35 66
         65 35 32 35 63 61 35 39 32 33 33 81 08 ae df ac
         f5 cf 1d 73 c6 7b 69 36 39 7b a5 fa 72 81 7f 1b
         5a ab 94 5e d6 f1 eb f1 3c 6f 08 c2 32 a6 c9 1e
         b5 b0 94 b2 80 23 4c 7a 94 49 3d f9 b5 25 4d 79
         76 42 4b 53 59 05 07 fe 4a c0 5c dc 3f 07 ec 56
         a3 f7 ee 0d 0e 97 8b 00 43 70 2f 30 30 31 31 32
         32 33 33 34 34 35 35 36 36 37 37 38 38 39 39 61
         61 62 62 63 63 64 64 65 65 66 66 2f 61 30 61 31
         61 32 61 33 61 34 61 35 61 36 61 37 61 38 61 39
         61 61 61 62 61 63 61 64 61 65 61 66 40 41 42 43
         44 45 46 47 48 49 4a 4b 4c 4d 4e 4f 50 51 52 53
         54 55 56 57 48 da a1 18 d8 17 b2 18 7e 44 90 05
         49 93 b9 42 2b 4a 4a 64 cb 32 40 9c cc a7 a0 eb
         9b 35 8a 01 9c 5b e7 19 41 e6 cf 02 97 ac c3 03
         50 28 b7 0a a8 8c 3b 25 a1 95 37 c6 d4 d6 35 e2
         88 30 09 29 ae df e7 bd 6a ee 06 ba e3 2c 5d 37
         93 82 b3 16 4a fb 53 1b 5a 72 27 89 02 1c 10 a5
         74 a4 83 17 57 cc 00 00 00 d5")
}

/// The version 6 pack of §12: the same chunks, sealed bare.
fn example_pack_v6() -> Vec<u8> {
    hex("
         f4 00 92 78 57 aa f6 41 14 f5 61 ba ac b3 79 70
         8c 79 a1 dc 14 76 ab 57 12 42 b6 a9 e5 a1 bf 6a
         a4 d9 0d fe 52 e5 78 41 f0 af b1 88 17 24 a0 32
         16 a4 02 07 64 bd e5 45 c1 43 db b9 60 9c 22 ab
         85 5d 60 92 5a 99 76 13 fd e7 1b 94 ce d8 bc 63
         ae a1 e2 27 a8 12 a6 f2 d9 d2 bb b0 8a 42 4b 53
         59 06 07 fe 4a c0 5c dc 3f 07 ec 56 a3 f7 ee 0d
         0e 97 8b 00 43 70 2f 30 30 31 31 32 32 33 33 34
         34 35 35 36 36 37 37 38 38 39 39 61 61 62 62 63
         63 64 64 65 65 66 66 2f 61 30 61 31 61 32 61 33
         61 34 61 35 61 36 61 37 61 38 61 39 61 61 61 62
         61 63 61 64 61 65 61 66 03 d7 8a 3f 20 d1 54 ab
         d8 dd fa 69 74 ee df 6b 37 84 29 0c 60 6b 04 fd
         a1 99 bc 2d 07 35 f5 0e ca ae 22 e9 21 5b ce 86
         b6 73 71 e1 99 be 42 44 81 7b bf cb b3 ae 8c e5
         f4 7b b5 6d 7f 91 f7 66 1e bf 7a 9c 5d 69 19 fe
         ad 97 f7 9c 1b eb ac 45 11 a3 af 9d 30 44 2e 7c
         14 33 fc 86 eb 3c 56 42 91 e3 80 ae 46 f0 1d 4b
         40 a8 61 58 94 7b 47 7e ed 98 64 42 93 42 9f 00
         00 00 d2")
}

/// Reads the example pack of `version` and the file record values that point into it, checks
/// them against what §12 documents, and returns the chunks' plaintext.
fn read_example(version: u8, mut bytes: Vec<u8>, sealed: [u32; 2], chunked: &str, inline: &str) {
    use crate::file::{Body, ChunkRef, FileValue};
    use crate::pack::{self, ChunkId, IndexEntry};
    let key = example_key();
    let (chunk_key, id_key) = (key.subkey(Purpose::Chunk), key.subkey(Purpose::ChunkId));
    let name = example_pack_name();
    let (found, entries) = pack::read_index(
        &chunk_key,
        key.vault_id(),
        &name,
        bytes.len() as u64,
        &bytes,
    )
    .unwrap();
    assert_eq!(found, version);
    let id = |text: &str| ChunkId(hex(text).try_into().unwrap());
    let hello = id("9bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e");
    let files = id("7c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca59233");
    let placed = [
        (hello, 0, sealed[0], 7),
        (files, u64::from(sealed[0]), sealed[1], 6),
    ];
    let expected: Vec<IndexEntry> = placed
        .iter()
        .map(|&(id, offset, sealed_len, len)| IndexEntry {
            id,
            offset,
            sealed_len,
            len,
        })
        .collect();
    assert_eq!(entries, expected);
    let mut plain = Vec::new();
    for e in &entries {
        let at = e.offset as usize..(e.offset + u64::from(e.sealed_len)) as usize;
        let envelope = &mut bytes[at];
        let opened = pack::open_chunk(
            &chunk_key,
            &id_key,
            key.vault_id(),
            version,
            e.id,
            e.len,
            envelope,
            "pack",
        )
        .unwrap();
        plain.extend_from_slice(opened.bytes(envelope));
    }
    assert_eq!(plain, b"Hello, files!");
    // A chunk opened under another id is corrupt.
    let mut swapped = bytes.clone();
    let err = pack::open_chunk(
        &chunk_key,
        &id_key,
        key.vault_id(),
        version,
        files,
        7,
        &mut swapped[..sealed[0] as usize],
        "pack",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");

    let hash: [u8; 32] = hex("57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855")
        .try_into()
        .unwrap();
    assert_eq!(
        blake3::keyed_hash(&key.subkey(Purpose::FileHash).0, &plain).as_bytes(),
        &hash
    );
    let value = FileValue {
        size: 13,
        hash,
        body: Body::Chunks {
            packs: vec![name],
            chunks: placed
                .iter()
                .map(|&(id, offset, sealed_len, len)| ChunkRef {
                    id,
                    len,
                    pack: 0,
                    offset,
                    sealed_len,
                })
                .collect(),
        },
        chunk_version: version,
        generation: 0,
    };
    let documented = hex(chunked);
    assert_eq!(FileValue::decode(b"f", &documented).unwrap(), value);
    assert_eq!(value.encode(), documented);
    let inline = hex(inline);
    let value = FileValue {
        size: 13,
        hash,
        body: Body::Inline(b"Hello, files!".to_vec()),
        chunk_version: version,
        generation: 0,
    };
    assert_eq!(FileValue::decode(b"f", &inline).unwrap(), value);
    assert_eq!(value.encode(), inline);
}

fn example_pack_name() -> crate::pack::PackName {
    crate::pack::PackName {
        device: D.0,
        pack: core::array::from_fn(|i| 0xa0 + i as u8),
    }
}

#[test]
fn the_version_5_example_pack_and_file_record_still_read() {
    let bytes = example_pack_v5();
    assert_eq!(bytes.len(), 506);
    read_example(
        5,
        bytes,
        [145, 144],
        "424b5346010d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855010100112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaabacadaeaf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e07000091017c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca59233060091019001",
        "424b5346010d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855000d48656c6c6f2c2066696c657321",
    );
}

#[test]
fn the_version_6_example_pack_reads_and_the_reference_writes_it_byte_for_byte() {
    let bytes = example_pack_v6();
    assert_eq!(bytes.len(), 307);
    read_example(
        6,
        bytes.clone(),
        [47, 46],
        "424b5346020d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855010100112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaabacadaeaf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e0700002f7c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca5923306002f2e",
        "424b5346020d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855000d48656c6c6f2c2066696c657321",
    );
    // The reference's pack builder, drawing its nonces from the stream of seed 07.
    let key = example_key();
    let written = build_example_pack(&key, key.vault_id(), example_pack_name(), 7, 6);
    assert_eq!(written, bytes);
    // Nothing in a version 6 pack is in clear but the index's header: no chunk id, no
    // second envelope magic.
    assert_eq!(written.windows(4).filter(|w| w == b"BKSY").count(), 1);
    let id = hex("9bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e");
    assert!(!written
        .windows(8)
        .any(|w| w == &id[..8] || w == b"9bd3e694"));
    let v5 = example_pack_v5();
    assert!(
        v5.windows(8).any(|w| w == b"9bd3e694"),
        "the check can fail"
    );
}

#[test]
fn a_replica_reads_the_example_file_from_either_version_of_the_pack() {
    for (layout, pack, value) in [
        (
            5,
            example_pack_v5(),
            "424b5346010d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855010100112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaabacadaeaf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e07000091017c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca59233060091019001",
        ),
        (
            6,
            example_pack_v6(),
            "424b5346020d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855010100112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaabacadaeaf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e0700002f7c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca5923306002f2e",
        ),
    ] {
        let key = example_key();
        let store = Store::parse("file:///vault").unwrap();
        let mut engine = Engine::new(&key, store, D, Entropy::from_seed([5; 32]));
        engine.put(b"hello.txt".to_vec(), hex(value), Timestamp(1_767_225_600_000));
        let mut download = engine.begin_download(b"hello.txt").unwrap().unwrap();
        let request = download.poll_request(Timestamp(0)).unwrap();
        assert!(request.url.ends_with(&example_pack_name().relative()), "{}", request.url);
        // One range: both chunks, back to back from the pack's start.
        let range = request.header("range").unwrap().to_owned();
        let (first, last) = range
            .strip_prefix("bytes=")
            .and_then(|r| r.split_once('-'))
            .unwrap();
        let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
        assert_eq!(first, 0, "version {layout}");
        let response = crate::http::Response {
            status: 206,
            headers: vec![],
            body: pack[first..=last].to_vec(),
        };
        download.handle_response(request.id, Ok(response), Timestamp(0));
        let mut read = Vec::new();
        while let Some(bytes) = download.poll_output() {
            read.extend_from_slice(&bytes);
        }
        assert_eq!(read, b"Hello, files!", "version {layout}");
        assert!(matches!(download.poll_outcome(), Some(Ok(()))));
    }
}

// ---- Version 9: files under a later key generation (FORMAT.md §14.4, vectors in §12) ----

/// Generation 1 of the example vault: `0x60, 0x61, …, 0x7f`.
fn generation_1_key() -> VaultKey {
    let mut bytes = [0u8; 32];
    bytes
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0x60 + i as u8);
    VaultKey::from_bytes(bytes)
}

/// The version 9 example: the 13-byte file in the pack `c0 c1 .. cf` of D, sealed under
/// generation 1.
const GENERATION_1_PACK: &str = "f2 a7 69 80 df c7 a4 92 4b 32 6a 12 9e 9e 7c 7e
     e3 81 ff 8c aa 2e 4f d1 87 d3 c2 3f 44 a7 9d 63
     91 66 f2 42 7a 7e 62 0d 15 60 6c 8b 33 5d 67 ee
     76 96 6f d1 b0 19 09 78 97 bd d7 ad 18 8a d9 3c
     e0 bb d2 15 ec fd 55 ef 0c 3a 77 ec fc 24 d7 78
     1d 52 98 92 09 79 1b 16 94 a2 eb e4 ef 42 4b 53
     59 06 07 fe 4a c0 5c dc 3f 07 ec 56 a3 f7 ee 0d
     0e 97 8b 00 43 70 2f 30 30 31 31 32 32 33 33 34
     34 35 35 36 36 37 37 38 38 39 39 61 61 62 62 63
     63 64 64 65 65 66 66 2f 63 30 63 31 63 32 63 33
     63 34 63 35 63 36 63 37 63 38 63 39 63 61 63 62
     63 63 63 64 63 65 63 66 8f db a7 8d 25 9c 45 1f
     7d 72 b4 8d 7b 03 a6 52 9e 04 be f8 93 da 54 44
     73 19 59 e5 00 27 c4 ec 74 69 70 2f a6 6c 96 8a
     c0 df 18 11 d3 f0 f3 37 b0 8f dd a7 7f d1 00 b8
     12 21 87 d8 62 bb 19 8c 52 e8 96 90 46 80 b0 dd
     c1 df 85 4d 2f a6 3d 6d 14 af 27 8a 39 a3 73 c4
     29 cc b8 d0 98 eb 51 2a aa 0b 47 ba b2 a0 d4 ec
     30 38 e0 00 19 1b c2 43 50 32 52 82 95 a0 98 00
     00 00 d2";
const GENERATION_1_VALUE: &str = "424b534603000000010d12e5ab54d231e2af02bb1c5535577350e32f1ea1822e2278ca81a1b477ba0f4d010100112233445566778899aabbccddeeffc0c1c2c3c4c5c6c7c8c9cacbcccdcecf0251c261b0602d4b6f3bc861a064a08257fb9b0034f96d73683433d65e97e93f5d0700002f14a98f2ded4abcfc6a0cebd52350e2eeaa6748c5c18567c00f259e434557cf7c06002f2e";
const GENERATION_1_INLINE: &str = "424b534603000000010d12e5ab54d231e2af02bb1c5535577350e32f1ea1822e2278ca81a1b477ba0f4d000d48656c6c6f2c2066696c657321";

#[test]
fn the_version_9_example_file_of_generation_1_is_the_documented_bytes() {
    use crate::file::FileValue;
    use crate::pack::PackName;
    let key = example_key();
    let g1 = generation_1_key();
    assert_file_subkeys(
        &g1,
        [
            "91c40132e441dffab63ef1206626ec063c00982c818013b0ad0b442fb697de9a",
            "646ef8837445d81c5e458992ba98bb39998eece9b51ebdc9f28f8ed344943ad0",
            "0677cd39db8dc8a7f470f09dc72f599d0c5f20fc6d44ed80cacb116cb07a1f36",
            "53030a4670dfa5859d138c736d1093993d1a871d194e2c0904e77065e44804f4",
        ],
    );
    // The reference's pack builder under generation 1, with the example vault's id, drawing
    // its nonces from the stream of seed 09.
    let chunk_key = g1.subkey(Purpose::Chunk);
    let name = PackName {
        device: D.0,
        pack: core::array::from_fn(|i| 0xc0 + i as u8),
    };
    let written = build_example_pack(&g1, key.vault_id(), name, 9, 6);
    assert_eq!(written, hex(GENERATION_1_PACK));
    // The record values decode to generation 1 and encode back byte for byte; the hash is
    // generation 1's.
    for documented in [GENERATION_1_VALUE, GENERATION_1_INLINE] {
        let value = FileValue::decode(b"f", &hex(documented)).unwrap();
        assert_eq!(value.generation, 1);
        assert_eq!(
            value.hash,
            *blake3::keyed_hash(&g1.subkey(Purpose::FileHash).0, b"Hello, files!").as_bytes()
        );
        assert_eq!(value.encode(), hex(documented));
    }
    // Layout 03 naming generation 0, or cut short in its generation field, is corrupt.
    let mut zero = hex(GENERATION_1_INLINE);
    zero[8] = 0;
    for damaged in [zero, hex("424b5346030000")] {
        let e = FileValue::decode(b"f", &damaged).unwrap_err();
        assert!(matches!(e, Error::Corrupt { .. }), "{e:?}");
    }
    // Generation 0's keys open neither the index nor a chunk.
    let own = key.subkey(Purpose::Chunk);
    let index = crate::pack::read_index(&own, key.vault_id(), &name, 307, &written);
    assert!(matches!(index, Err(Error::Corrupt { .. })), "{index:?}");
    let (_, entries) =
        crate::pack::read_index(&chunk_key, key.vault_id(), &name, 307, &written).unwrap();
    let first = &entries[0];
    let mut chunk = written[..first.sealed_len as usize].to_vec();
    let opened = crate::pack::open_chunk(
        &own,
        &key.subkey(Purpose::ChunkId),
        key.vault_id(),
        6,
        first.id,
        first.len,
        &mut chunk,
        "pack",
    );
    assert!(matches!(opened, Err(Error::Corrupt { .. })), "{opened:?}");
}

#[test]
fn a_replica_reads_a_file_of_generation_1_only_when_it_holds_that_generation() {
    use crate::grant::GenerationKey;
    let key = example_key();
    let pack = hex(GENERATION_1_PACK);
    let store = Store::parse("file:///vault").unwrap();
    let mut engine = Engine::new(&key, store, D, Entropy::from_seed([5; 32]));
    engine.put(
        b"hello.txt".to_vec(),
        hex(GENERATION_1_VALUE),
        Timestamp(1_767_225_600_000),
    );
    // Without generation 1 (a member revoked before it began): refused before any request.
    let e = engine.begin_download(b"hello.txt").unwrap_err();
    assert_eq!(e.category(), crate::Category::Access, "{e}");
    engine.add_keys(&[GenerationKey {
        generation: 1,
        key: generation_1_key(),
    }]);
    let mut download = engine.begin_download(b"hello.txt").unwrap().unwrap();
    let request = download.poll_request(Timestamp(0)).unwrap();
    assert!(
        request.url.ends_with("/c0c1c2c3c4c5c6c7c8c9cacbcccdcecf"),
        "{}",
        request.url
    );
    let response = crate::http::Response {
        status: 200,
        headers: vec![],
        body: pack,
    };
    download.handle_response(request.id, Ok(response), Timestamp(0));
    let mut read = Vec::new();
    while let Some(bytes) = download.poll_output() {
        read.extend_from_slice(&bytes);
    }
    assert_eq!(read, b"Hello, files!");
    assert!(matches!(download.poll_outcome(), Some(Ok(()))));
}

// ---- Version 7: repacked packs and their redirects (FORMAT.md §14.7, vectors in §12) ----

/// The version 7 example: the version 6 pack's chunks moved, second first, into the pack
/// `b0 b1 .. bf` of D.
fn example_repacked_pack() -> Vec<u8> {
    hex("32 16 a4 02 07 64 bd e5 45 c1 43 db b9 60 9c 22
         ab 85 5d 60 92 5a 99 76 13 fd e7 1b 94 ce d8 bc
         63 ae a1 e2 27 a8 12 a6 f2 d9 d2 bb b0 8a f4 00
         92 78 57 aa f6 41 14 f5 61 ba ac b3 79 70 8c 79
         a1 dc 14 76 ab 57 12 42 b6 a9 e5 a1 bf 6a a4 d9
         0d fe 52 e5 78 41 f0 af b1 88 17 24 a0 42 4b 53
         59 06 07 fe 4a c0 5c dc 3f 07 ec 56 a3 f7 ee 0d
         0e 97 8b 00 43 70 2f 30 30 31 31 32 32 33 33 34
         34 35 35 36 36 37 37 38 38 39 39 61 61 62 62 63
         63 64 64 65 65 66 66 2f 62 30 62 31 62 32 62 33
         62 34 62 35 62 36 62 37 62 38 62 39 62 61 62 62
         62 63 62 64 62 65 62 66 c2 20 6f c0 bd 31 85 94
         f8 cc 73 bc 35 10 6f ba f8 7b 28 c3 8a 8d bf c8
         ad ae 7f e6 bc a8 00 07 f4 11 ad fe e6 5c 5b 0a
         9c 89 fe 39 71 df 90 d6 21 a4 37 d1 c3 e8 3b 31
         f3 30 43 56 55 8b 0b 1e d9 2d 4e 08 da 4a 35 fe
         4f b4 56 90 26 12 3d 01 ca a3 cc 83 e5 be 1d ab
         31 fa 02 95 c1 37 67 47 22 17 69 3c ef ec 80 7e
         5b 08 9b 2f d6 ec f4 9a bd 70 ad a2 c1 93 5a 00
         00 00 d2")
}

/// The redirect of the version 6 example pack to [`example_repacked_pack`].
fn example_redirect() -> Vec<u8> {
    hex("42 4b 53 59 07 08 fe 4a c0 5c dc 3f 07 ec 56 a3
         f7 ee 0d 0e 97 8b 00 43 72 2f 30 30 31 31 32 32
         33 33 34 34 35 35 36 36 37 37 38 38 39 39 61 61
         62 62 63 63 64 64 65 65 66 66 2f 61 30 61 31 61
         32 61 33 61 34 61 35 61 36 61 37 61 38 61 39 61
         61 61 62 61 63 61 64 61 65 61 66 d9 84 82 43 03
         8f 9c 1c 84 03 48 70 a9 b6 58 32 a5 f2 ba d9 06
         3f ee be 1d 1d ee 9c d9 f3 57 4f 2f 09 d4 a3 4a
         6b f8 c7 dc 61 11 2d 1f 4e 40 8d eb ad ba 75 d5
         dd 19 8a 25 dc 66 17 a5 fc 25 82 11 44 00 82 b6")
}

fn example_repacked_name() -> crate::pack::PackName {
    crate::pack::PackName {
        device: D.0,
        pack: core::array::from_fn(|i| 0xb0 + i as u8),
    }
}

#[test]
fn the_version_7_redirect_and_repacked_pack_are_the_documented_bytes() {
    use crate::pack::{self, PackBuilder, PackName, Redirect};
    let key = example_key();
    let chunk_key = key.subkey(Purpose::Chunk);
    let (from, to) = (example_pack_name(), example_repacked_name());
    let redirect = Redirect::open(&chunk_key, key.vault_id(), &from, example_redirect()).unwrap();
    assert_eq!(
        redirect,
        Redirect {
            to: to.pack,
            moves: vec![(0, 46), (47, 0)],
        }
    );
    // The reference writer: the sealed chunks copied byte for byte, the index, then the
    // redirect, drawing nonces from the stream of seed 08.
    let v6 = example_pack_v6();
    let (_, entries) =
        pack::read_index(&chunk_key, key.vault_id(), &from, v6.len() as u64, &v6).unwrap();
    let mut entropy = Entropy::from_seed([8; 32]);
    let mut builder = PackBuilder::new(to, 512);
    // The moved chunks' version, which the new pack's index says.
    builder.version = 6;
    for e in entries.iter().rev() {
        let at = e.offset as usize..(e.offset + u64::from(e.sealed_len)) as usize;
        builder.push_sealed(e, &v6[at]);
    }
    let written = builder
        .finish(&chunk_key, key.vault_id(), &mut entropy)
        .unwrap();
    assert_eq!(written, example_repacked_pack());
    let sealed = redirect
        .seal(&chunk_key, key.vault_id(), &from, &mut entropy)
        .unwrap();
    assert_eq!(sealed, example_redirect());
    // Opened as another pack's redirect, it is corrupt (moved).
    let other = PackName {
        pack: [0x11; 16],
        ..from
    };
    let err = Redirect::open(&chunk_key, key.vault_id(), &other, example_redirect()).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
}

/// A reader whose record names the version 6 example pack finds it gone (404), reads its
/// redirect, and reads the file from the repacked pack.
#[test]
fn a_reader_that_finds_a_pack_gone_follows_its_redirect() {
    let value = "424b5346020d57cea529a5535b853dee3167ce1e92a68c1634f876c07bacf479e9d3e32b0855010100112233445566778899aabbccddeeffa0a1a2a3a4a5a6a7a8a9aaabacadaeaf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e0700002f7c570518bc364d2915261125cc00f1fdc3c1960b5180fb4ae0c5fe525ca5923306002f2e";
    let key = example_key();
    let store = Store::parse("file:///vault").unwrap();
    let mut engine = Engine::new(&key, store, D, Entropy::from_seed([5; 32]));
    engine.put(
        b"hello.txt".to_vec(),
        hex(value),
        Timestamp(1_767_225_600_000),
    );
    let mut download = engine.begin_download(b"hello.txt").unwrap().unwrap();
    let (old, new) = (
        example_pack_name().relative(),
        example_repacked_name().relative(),
    );
    let repacked = example_repacked_pack();
    let mut asked = Vec::new();
    let mut read = Vec::new();
    while let Some(request) = download.poll_request(Timestamp(0)) {
        let response = |status, body| crate::http::Response {
            status,
            headers: vec![],
            body,
        };
        let answer = if request.url.ends_with(&old) {
            asked.push("old pack");
            response(404, b"<Error><Code>NoSuchKey</Code></Error>".to_vec())
        } else if request.url.ends_with(&example_pack_name().redirect()) {
            asked.push("redirect");
            response(200, example_redirect())
        } else {
            assert!(request.url.ends_with(&new), "{}", request.url);
            asked.push("new pack");
            let range = request.header("range").unwrap().to_owned();
            let (first, last) = range
                .strip_prefix("bytes=")
                .and_then(|r| r.split_once('-'))
                .unwrap();
            let (first, last): (usize, usize) = (first.parse().unwrap(), last.parse().unwrap());
            response(206, repacked[first..=last].to_vec())
        };
        download.handle_response(request.id, Ok(answer), Timestamp(0));
        while let Some(bytes) = download.poll_output() {
            read.extend_from_slice(&bytes);
        }
    }
    assert_eq!(read, b"Hello, files!");
    assert!(matches!(download.poll_outcome(), Some(Ok(()))));
    // The two chunks are no longer neighbours in the order of the file: two ranges.
    assert_eq!(asked, ["old pack", "redirect", "new pack", "new pack"]);
}

/// The example home of §17: the example key is Alice's home; Bob's home key is the bytes
/// `0x20, 0x21, …, 0x3f`.
fn bob_home() -> VaultKey {
    let mut bytes = [0u8; 32];
    bytes
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0x20 + i as u8);
    VaultKey::from_bytes(bytes)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn identity_and_grant_are_the_documented_ones() {
    use crate::grant::{self, GenerationKey, Grant, Invitation, Role};
    use crate::identity::Identity;
    let alice = Identity::of_home(&example_key());
    let bob = Identity::of_home(&bob_home());
    let seeds = crate::identity::identity_seeds(&example_key());
    let public = alice.public().as_bytes();
    assert_eq!(
        to_hex(&seeds[0].0),
        "375ec4c2bf14c1455f0ac9c978597b4569426521baa55ee8900f0e24d9065923"
    );
    assert_eq!(
        to_hex(&seeds[1].0),
        "868da2af6941437b1a7d2910a0b6f83385eed9e063ac7c7f77bb280fe05924ea"
    );
    assert_eq!(
        to_hex(&public[1216..]),
        "f53df33a971afdeab72a6c87189ab1290ef1a5ddf157b0720d1105fe48522b8c"
    );
    assert_eq!(
        blake3::hash(&public[..]).to_hex().as_str(),
        "c4d6d428d7e180df934ca1987699bfc89ffaf737d81cba3ae924a6a16a0f470b"
    );
    assert_eq!(alice.fingerprint().to_string(), "21ZV-CDAN-2NX4-6JE3");
    assert_eq!(bob.fingerprint().to_string(), "VADH-Q15B-H5ZY-XET2");
    // The shared vault "emma": key bytes 0x40..0x5f, granted to Bob with role write.
    let mut emma = [0u8; 32];
    emma.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0x40 + i as u8);
    let emma = VaultKey::from_bytes(emma);
    let grant = Grant {
        vault: emma.vault_id(),
        label: "emma".into(),
        store: "s3://family/shared?region=eu-west-1&path_style=false".into(),
        role: Role::Write,
        keys: vec![GenerationKey {
            generation: 0,
            key: emma.clone(),
        }],
        granter: alice.public().clone(),
        granted: Timestamp(1_767_225_600_000),
        founder: alice.fingerprint(),
        statement: None,
    };
    let id = [0x77; 16];
    let mut entropy = Entropy::from_seed([0x99; 32]);
    // The version 1 grant of §17.4 (no founder, no statement), still read.
    let object = grant::seal_as(1, &grant, &id, &alice, bob.public(), &mut entropy).unwrap();
    assert_eq!(
        emma.vault_id().to_string(),
        "98d3d0e0560d39fd51502facac2bf954"
    );
    assert_eq!(object.len(), 2588);
    assert_eq!(
        to_hex(&object[..39]),
        "424b534701647a98d3d0e0560d39fd51502facac2bf95477777777777777777777777777777777"
    );
    assert_eq!(
        blake3::hash(&object).to_hex().as_str(),
        "bfc106d9a233da53ea7552e31f607d0a8edd96a70f6ef147e50c5c54181c533c"
    );
    let invitation = Invitation {
        store: "s3://family/shared?region=eu-west-1&path_style=false".into(),
        vault: emma.vault_id(),
        grant: id,
        from: alice.fingerprint(),
        signer: None,
    };
    assert_eq!(
        invitation.to_string(),
        "bsinv1NHMzOi8vZmFtaWx5L3NoYXJlZD9yZWdpb249ZXUtd2VzdC0xJnBhdGhfc3R5bGU9ZmFsc2WY09DgVg05_\
         VFQL6ysK_lUd3d3d3d3d3d3d3d3d3d3dxB_tjVVFXpDScMA"
    );
    let opened = grant::open(&object, &invitation, &bob).unwrap();
    assert_eq!(opened.key().secret_bytes(), emma.secret_bytes());
    assert_eq!(
        opened.founder,
        alice.fingerprint(),
        "a version 1 grant's granter founded"
    );
    assert_eq!(opened.statement, None);
}

/// `emma`'s key of §17.4: bytes `40 41 … 5f`.
fn emma_key() -> VaultKey {
    let mut emma = [0u8; 32];
    emma.iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b = 0x40 + i as u8);
    VaultKey::from_bytes(emma)
}

#[test]
fn a_version_2_grant_a_member_statement_and_a_signed_manifest_are_the_documented_ones() {
    use crate::grant::{self, GenerationKey, Grant, Invitation, Role};
    use crate::identity::Identity;
    use crate::membership::{Members, Standing, Statement};
    let alice = Identity::of_home(&example_key());
    let bob = Identity::of_home(&bob_home());
    let emma = emma_key();
    let vault = emma.vault_id();
    // Alice founds emma, then lets Bob in with the role write.
    let founding = Statement::sign(
        vault,
        alice.public(),
        &Standing::Member(Role::Owner),
        0,
        Timestamp(T),
        &alice,
    )
    .unwrap();
    let bobs = Statement::sign(
        vault,
        bob.public(),
        &Standing::Member(Role::Write),
        0,
        Timestamp(T + 1000),
        &alice,
    )
    .unwrap();
    let founding_bytes = postcard::to_allocvec(&founding).unwrap();
    assert_eq!(founding_bytes.len(), 1334);
    assert_eq!(
        to_hex(&founding_bytes[1250..]),
        "02000080d0eab6b733107fb63555157a4349c340bbb718b9db59c7bec4e63438991c147d7b700ac84671dc11ac639c60e94215d2ee101c116368f879fc428b7989110847f3e12eb6c7873fd5572ab0cdd01dc001"
    );
    let members = Members::resolve(
        vault,
        alice.fingerprint(),
        &[bobs.clone(), founding.clone()],
    );
    assert!(members
        .by_signing_key(&bob.public().signing_key())
        .unwrap()
        .may_write());

    // The version 2 grant of Bob's: as §17.4's, with the founder and Bob's statement.
    let grant = Grant {
        vault,
        label: "emma".into(),
        store: "s3://family/shared?region=eu-west-1&path_style=false".into(),
        role: Role::Write,
        keys: vec![GenerationKey {
            generation: 0,
            key: emma.clone(),
        }],
        granter: alice.public().clone(),
        granted: Timestamp(T),
        founder: alice.fingerprint(),
        statement: Some(bobs.clone()),
    };
    let id = [0x77; 16];
    let object = grant::seal(
        &grant,
        &id,
        &alice,
        bob.public(),
        &mut Entropy::from_seed([0x99; 32]),
    )
    .unwrap();
    assert_eq!(object.len(), 3933);
    assert_eq!(to_hex(&object[..5]), "424b534702");
    assert_eq!(
        blake3::hash(&object).to_hex().as_str(),
        "101e8ed1e5e8e701bccbb62c5937ae738db9f7b6d415162dcf9dd58e21b6803d"
    );
    let invitation = Invitation {
        store: grant.store.clone(),
        vault,
        grant: id,
        from: alice.fingerprint(),
        signer: None,
    };
    // Where the grant of key generation 1 to Bob would be (§17.9), were the revocation's
    // signature 64 bytes of 5a.
    assert_eq!(
        to_hex(&grant::rekey_id(vault, 1, &bob.fingerprint(), &[0x5a; 64])),
        "6003bed57d586d17e894b890fcac69ab"
    );
    let opened = grant::open(&object, &invitation, &bob).unwrap();
    assert_eq!(opened.statement, Some(bobs.clone()));
    assert_eq!(opened.founder, alice.fingerprint());

    // Alice's laptop D publishes its manifest 1 of emma: no segment yet, the two statements.
    let manifest = Manifest {
        device: D,
        seq: 1,
        segments: 0,
        clock: Hlc {
            wall_ms: T + 2000,
            counter: 0,
        },
        merged: vec![],
        label: "laptop".into(),
        checkpoint: None,
        retired: vec![],
        pruned: 0,
        members: members.accepted().to_vec(),
    };
    let envelope = manifest.seal(
        &emma.subkey(Purpose::Manifest),
        vault,
        &mut Entropy::from_seed([0x55; 32]),
    );
    assert_eq!(
        envelope[4], 8,
        "a manifest with statements is written as version 8"
    );
    let signed = crate::signed::sign(
        vault,
        &crate::manifest::manifest_name(D),
        0,
        &envelope,
        &alice,
    );
    assert_eq!(signed.len(), 2916);
    assert_eq!(
        to_hex(&signed[..41]),
        "424b53530100000000f53df33a971afdeab72a6c87189ab1290ef1a5ddf157b0720d1105fe48522b8c"
    );
    assert_eq!(
        blake3::hash(&signed).to_hex().as_str(),
        "8e7ecb30478a67ab209fbf2a16b7dd3ecfa3df23deeb8faad260ead0e0c1c261"
    );
    let mut read = signed.clone();
    let key = crate::signed::verify_and_strip(vault, &crate::manifest::manifest_name(D), &mut read)
        .unwrap();
    assert_eq!(
        key,
        Some(crate::signed::Signature {
            key: alice.public().signing_key(),
            generation: 0
        })
    );
    let (version, back) =
        Manifest::open_versioned(&emma.subkey(Purpose::Manifest), vault, D, read).unwrap();
    assert_eq!((version, back), (8, manifest));
}

// ---- Version 10: compressed chunks (FORMAT.md §14.2, vectors in §12) ----

/// The second chunk of the version 10 example: `files! ` ten times, 70 bytes that deflate.
fn v10_second_chunk() -> Vec<u8> {
    b"files! ".repeat(10)
}

fn v10_pack_name() -> crate::pack::PackName {
    crate::pack::PackName {
        device: D.0,
        pack: core::array::from_fn(|i| 0xd0 + i as u8),
    }
}

/// The reference's version 10 pack of the example: `Hello, ` (stored, codec 0) and
/// [`v10_second_chunk`] (deflated, codec 1), its nonces from the stream of seed 0a.
fn build_v10_pack() -> Vec<u8> {
    let key = example_key();
    let (chunk_key, id_key) = (key.subkey(Purpose::Chunk), key.subkey(Purpose::ChunkId));
    let mut entropy = Entropy::from_seed([0x0a; 32]);
    let mut builder = crate::pack::PackBuilder::new(v10_pack_name(), 512);
    for piece in [b"Hello, ".to_vec(), v10_second_chunk()] {
        let id = crate::pack::ChunkId::of(&id_key, &piece);
        builder
            .push(&chunk_key, key.vault_id(), id, &piece, true, &mut entropy)
            .unwrap();
    }
    builder
        .finish(&chunk_key, key.vault_id(), &mut entropy)
        .unwrap()
}

/// The version 10 pack of §12 (328 bytes).
const V10_PACK: &str = "32c6260c2f7e6f703491c459ec33624b5da8dfe337f77a2473eb72c314299b29f1cf34b2af4d75b9c0ae73bea24dc7c14f95de1616b60be8244e920e36c7da211167708e7c6bacba82871b691fe24adab0916582f5bd00b117484ccee0d799c6edc6b8574d77194afb682322a455ce751ff3424b53590a07fe4ac05cdc3f07ec56a3f7ee0d0e978b0043702f30303131323233333434353536363737383839396161626263636464656566662f6430643164326433643464356436643764386439646164626463646464656466481be00db2754dc2fda0862bc38dcc9c00130139e299ebca5ec8905caadcdec3363678e787e91d9c96da76cdce6e03eb2e6b3e1e2abbfde9db2e83353aa6015665e1b409e1b430c5c8e8d76805606a20f2fa85b0bd589ba608666cc09a5ae11f1ce74587527bf2e399089a284fb0eda8b722aa95a77f27000000d2";
/// The raw deflate stream of the second chunk, as the reference's compressor writes it.
const V10_DEFLATED: &str = "a5c5310900001002c02affe1140437fb83219c8e32f2c78d02";
/// Its record value, layout 04, generation 0.
const V10_VALUE: &str = "424b534604000000004d695edf64e2390b6300f4e5cecbaf8503242d171eec9c0641578605444ee85613010100112233445566778899aabbccddeeffd0d1d2d3d4d5d6d7d8d9dadbdcdddedf029bd3e694e1565b0a4f75887dd3de9bdf65758cd3842ad76737b8d741d447053e07000030256caaf431c3171fe326b720a8c8c5a74ecbeb7450b0fcd44d6b752876d17f5e46003042";

#[test]
fn the_version_10_example_pack_and_file_record_are_the_documented_bytes() {
    use crate::file::{Body, ChunkRef, FileValue};
    use crate::pack::{self, ChunkId, Opened};
    let key = example_key();
    let (chunk_key, id_key) = (key.subkey(Purpose::Chunk), key.subkey(Purpose::ChunkId));
    let written = build_v10_pack();
    assert_eq!(to_hex(&written), V10_PACK);
    let name = v10_pack_name();
    let (version, entries) = pack::read_index(
        &chunk_key,
        key.vault_id(),
        &name,
        written.len() as u64,
        &written,
    )
    .unwrap();
    assert_eq!(version, 10);
    let chunks = [b"Hello, ".to_vec(), v10_second_chunk()];
    let placed: Vec<(u64, u32, u32)> = entries
        .iter()
        .map(|e| (e.offset, e.sealed_len, e.len))
        .collect();
    assert_eq!(placed, [(0, 48, 7), (48, 66, 70)]);
    for (e, (chunk, codec)) in entries.iter().zip(chunks.iter().zip([0u8, 1])) {
        assert_eq!(e.id, ChunkId::of(&id_key, chunk));
        let at = e.offset as usize..(e.offset + u64::from(e.sealed_len)) as usize;
        // The plaintext sealed: the codec byte, then the bytes or their deflate stream.
        let mut raw = written[at.clone()].to_vec();
        let ad_name = e.id.envelope_name();
        let ad = ObjectAd {
            vault: key.vault_id(),
            kind: ObjectKind::Chunk,
            name: &ad_name,
        };
        let plain = crypto::open_bare_in_place(&chunk_key, &ad, 10, &mut raw).unwrap();
        let mut expected = vec![codec];
        match codec {
            0 => expected.extend_from_slice(chunk),
            _ => expected.extend_from_slice(&hex(V10_DEFLATED)),
        }
        assert_eq!(raw[plain].to_vec(), expected);
        let mut envelope = written[at].to_vec();
        let opened = pack::open_chunk(
            &chunk_key,
            &id_key,
            key.vault_id(),
            version,
            e.id,
            e.len,
            &mut envelope,
            "pack",
        )
        .unwrap();
        assert_eq!(opened.bytes(&envelope), &chunk[..]);
        assert_eq!(matches!(opened, Opened::Inflated(_)), codec == 1);
    }
    let whole = chunks.concat();
    let value = FileValue {
        size: 77,
        hash: *blake3::keyed_hash(&key.subkey(Purpose::FileHash).0, &whole).as_bytes(),
        body: Body::Chunks {
            packs: vec![name],
            chunks: entries
                .iter()
                .map(|e| ChunkRef {
                    id: e.id,
                    len: e.len,
                    pack: 0,
                    offset: e.offset,
                    sealed_len: e.sealed_len,
                })
                .collect(),
        },
        chunk_version: 10,
        generation: 0,
    };
    assert_eq!(to_hex(&value.encode()), V10_VALUE);
    assert_eq!(FileValue::decode(b"f", &hex(V10_VALUE)).unwrap(), value);

    // A replica reads the file: one range, both chunks, the second inflated.
    let store = Store::parse("file:///vault").unwrap();
    let mut engine = Engine::new(&key, store, D, Entropy::from_seed([5; 32]));
    engine.put(b"f".to_vec(), hex(V10_VALUE), Timestamp(T));
    let mut download = engine.begin_download(b"f").unwrap().unwrap();
    let request = download.poll_request(Timestamp(0)).unwrap();
    assert_eq!(request.header("range"), Some("bytes=0-113"));
    let response = crate::http::Response {
        status: 206,
        headers: vec![],
        body: written[..114].to_vec(),
    };
    download.handle_response(request.id, Ok(response), Timestamp(0));
    let mut read = Vec::new();
    while let Some(bytes) = download.poll_output() {
        read.extend_from_slice(&bytes);
    }
    assert_eq!(read, whole);
    assert!(matches!(download.poll_outcome(), Some(Ok(()))));
}
