//! The worked example of `docs/FORMAT.md` §12, computed there by an independent implementation,
//! pinned here so the document and the code cannot drift apart.

use serde_bytes::ByteBuf;

use crate::checkpoint::{self, Checkpoint};
use crate::clock::{Hlc, Stamp};
use crate::ids::DeviceId;
use crate::key::{Purpose, VaultKey};
use crate::manifest::{CheckpointRef, Manifest};
use crate::record::Record;
use crate::segment::{self, Change, Segment};

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
    };
    // A version 1 manifest: read with the version 2 and 3 fields empty.
    assert_eq!(manifest, expected);
}

#[test]
fn segment_plaintext_matches_the_documented_bytes() {
    let wall_ms = 1_767_225_600_000;
    let segment = Segment {
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
    };
    let documented = hex("00112233445566778899aabbccddeeff 01 02
         07 6e6f7465732f61 80d0eab6b733 00 01 05 68656c6c6f
         07 6e6f7465732f62 80d0eab6b733 01 00");
    assert_eq!(documented.len(), 56);
    assert_eq!(postcard::to_allocvec(&segment).unwrap(), documented);
    // And what the engine's own encoder seals opens back to the same segment.
    let key = example_key();
    let records: Vec<_> = segment
        .changes
        .iter()
        .cloned()
        .map(|c| c.into_record(D))
        .collect();
    let pairs: Vec<(&[u8], &crate::record::Record)> =
        records.iter().map(|(k, r)| (k.as_slice(), r)).collect();
    let sealed = segment::seal(
        &key,
        D,
        1,
        &pairs,
        &mut crate::entropy::Entropy::from_seed([3; 32]),
    )
    .unwrap();
    assert_eq!(segment::open(&key, D, 1, sealed).unwrap(), segment);
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
    assert_eq!(
        postcard::to_allocvec(&expected).unwrap(),
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
