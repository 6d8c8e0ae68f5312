//! The worked example of `docs/FORMAT.md` §12, computed there by an independent implementation,
//! pinned here so the document and the code cannot drift apart.

use crate::clock::Hlc;
use crate::ids::DeviceId;
use crate::key::{Purpose, VaultKey};
use crate::manifest::Manifest;
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
    };
    // A version 1 manifest: read with the version 2 fields empty.
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
