//! Decoders never panic on arbitrary bytes: objects, local state, listings, error documents.

use bucketsync::{segment, DeviceId, Engine, Store, VaultKey};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = VaultKey::from_bytes([4; 32]);
        prop_assert!(segment::open(&key, DeviceId([1; 16]), 1, bytes.clone()).is_err());
        let store = Store::parse("file:///tmp/never-written").unwrap();
        prop_assert!(Engine::from_state(&key, store, &bytes, bucketsync_suite::entropy()).is_err());
        let text = String::from_utf8_lossy(&bytes);
        // Only a document that is a listing can parse as one, and only one with a <Code> names
        // an error code.
        prop_assert!(bucketsync::s3::parse_list(&bytes).is_err() || text.contains("ListBucketResult"));
        prop_assert!(bucketsync::s3::error_code(&bytes).is_none() || text.contains("Code>"));
        prop_assert!(VaultKey::unwrap_with_passphrase(&bytes, "p").is_err());
        prop_assert!(VaultKey::from_recovery_code(&text).is_err());
    }

    #[test]
    fn a_journal_of_arbitrary_bytes_replays_nothing(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let key = VaultKey::from_bytes([4; 32]);
        let store = Store::parse("file:///tmp/never-written").unwrap();
        let mut engine = Engine::new(&key, store.clone(), DeviceId([1; 16]), bucketsync_suite::entropy());
        engine.put("k", "v", bucketsync::Timestamp(1));
        let snapshot = engine.export_state();
        // Random bytes, and random bytes behind the right header.
        let mut framed = engine.journal_header().unwrap();
        framed.extend_from_slice(&bytes);
        for journal in [&bytes, &framed] {
            match Engine::restore(&key, store.clone(), &snapshot, journal, bucketsync_suite::entropy()) {
                Ok(restored) => {
                    prop_assert_eq!(restored.replayed, 0);
                    prop_assert_eq!(restored.engine.get(b"k"), Some(&b"v"[..]));
                }
                Err(e) => prop_assert_eq!(e.category(), bucketsync::Category::Corrupt),
            }
        }
    }

    #[test]
    fn a_valid_header_over_random_ciphertext_is_corrupt(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        // A real segment's header with the ciphertext replaced.
        let key = VaultKey::from_bytes([4; 32]);
        let device = DeviceId([1; 16]);
        let real = segment::seal(&key, device, 1, &[], &mut bucketsync_suite::entropy()).unwrap();
        let header_len = real.len() - 16 - 1 - 16 - 1; // tag, count, device, seq
        let mut forged = real[..header_len].to_vec();
        forged.extend_from_slice(&body);
        let err = segment::open(&key, device, 1, forged).unwrap_err();
        prop_assert_eq!(err.category(), bucketsync::Category::Corrupt);
    }
}
