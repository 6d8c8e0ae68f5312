//! `Session::verify`: a backup's files read back from the bucket and checked, nothing
//! written; a damaged pack is found, and named by the files it touches.

use std::path::Path;

use bucketsync::backup::BackupOptions;
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::verify::VerifyOptions;
use bucketsync::{Category, OpenMode, VaultKey};
use futures::executor::block_on;

fn open(store: &str, key: &VaultKey, mode: OpenMode) -> Session {
    Session::open(SessionOptions {
        mode,
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
    .unwrap()
}

/// Files of `n` random-looking bytes each (not deflated, so a pack's bytes are the chunks').
fn write_files(dir: &Path, count: usize, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..count {
        let bytes: Vec<u8> = (0..n)
            .map(|j| blake3::hash(&[i as u8, (j % 251) as u8, (j / 251) as u8]).as_bytes()[0])
            .collect();
        std::fs::write(dir.join(format!("{i:03}.bin")), bytes).unwrap();
    }
}

fn verify(session: &Session, options: &VerifyOptions) -> bucketsync::verify::VerifyReport {
    block_on(session.verify(
        "docs",
        options,
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap()
}

#[test]
fn a_damaged_pack_is_found_and_named_by_the_files_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, OpenMode::Create);
    let docs = dir.path().join("docs");
    write_files(&docs, 6, 300_000);
    let report = block_on(a.backup(
        &docs,
        "docs",
        &BackupOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert_eq!(report.files_stored, 6);
    block_on(a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();

    // Read back on another device: all as stored.
    let b = open(&store, &key, OpenMode::Join);
    block_on(b.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    let whole = verify(&b, &VerifyOptions::default());
    assert_eq!((whole.files_ok, whole.files_skipped), (6, 0));
    assert_eq!(whole.bytes_checked, 6 * 300_000);
    assert!(whole.damaged.is_empty(), "{:?}", whole.damaged);

    // One byte of one pack flips in the bucket (bit rot): the files with a chunk there are
    // named, as corrupt, and the others read as stored.
    let packs: Vec<_> = walk(&dir.path().join("bucket"))
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/p/"))
        .collect();
    assert!(!packs.is_empty());
    let pack = &packs[0];
    let mut bytes = std::fs::read(pack).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(pack, bytes).unwrap();
    let found = verify(&b, &VerifyOptions::default());
    assert!(!found.damaged.is_empty(), "the flipped byte was found");
    assert_eq!(found.files_ok + found.damaged.len() as u64, 6);
    for (path, e) in &found.damaged {
        assert!(path.ends_with(".bin"), "{path}");
        assert_eq!(e.category(), Category::Corrupt, "{path}: {e}");
    }
}

#[test]
fn a_sample_reads_a_share_of_the_files_and_a_bad_share_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, OpenMode::Create);
    let docs = dir.path().join("docs");
    write_files(&docs, 60, 100);
    block_on(a.backup(
        &docs,
        "docs",
        &BackupOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    let share = VerifyOptions {
        sample_percent: 10,
        ..VerifyOptions::default()
    };
    let sampled = verify(&a, &share);
    assert_eq!(sampled.files_ok + sampled.files_skipped, 60);
    // At 10%, all 60 drawn happens once in 10^60 runs.
    assert!(sampled.files_skipped > 0, "{sampled:?}");
    assert!(sampled.damaged.is_empty());
    for bad in [0, 101] {
        let options = VerifyOptions {
            sample_percent: bad,
            ..VerifyOptions::default()
        };
        let refused = block_on(a.verify("docs", &options, &FolderBucket, 4, |_, _| {}));
        assert!(
            matches!(refused, Err(ref e) if e.category() == Category::Config),
            "{refused:?}"
        );
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
