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
        let _ = bucketsync::s3::parse_list(&bytes);
        let _ = bucketsync::s3::error_code(&bytes);
        let _ = VaultKey::unwrap_with_passphrase(&bytes, "p");
        let _ = VaultKey::from_recovery_code(&String::from_utf8_lossy(&bytes));
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
