//! A backup never stores a file torn: a file saved in place while the backup reads it (a
//! database, a disk image, a log appended to) is read again, and one that keeps changing is
//! reported and left as the backup had it. On the local-folder bucket.

use std::io::Write;
use std::path::Path;

use bucketsync::backup::{BackupOptions, BackupReport, RestoreOptions};
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{OpenMode, VaultKey};
use bucketsync_suite::generated::Generated;
use futures::executor::block_on;

/// Bytes that neither deflate nor repeat (read in many steps), `len` of them, from `seed`.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    Generated::new(seed, len as u64).to_vec()
}

fn session(dir: &Path) -> Session {
    let store = format!("file://{}", dir.join("bucket").display());
    let key = VaultKey::generate().unwrap();
    Session::open(SessionOptions {
        device: Some("laptop"),
        mode: OpenMode::Create,
        ..SessionOptions::new(&store, &key, StateLocation::Memory)
    })
    .unwrap()
}

/// Backs `from` up as "disks", calling `saving` with the bytes read so far of `disk.img`.
fn backup_while(session: &Session, from: &Path, mut saving: impl FnMut(u64)) -> BackupReport {
    block_on(session.backup(
        from,
        "disks",
        &BackupOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |rel, progress| {
            if rel == "disk.img" {
                saving(progress.bytes_done);
            }
        },
    ))
    .unwrap()
}

/// The backup's `disk.img`, restored.
fn restored(session: &Session, dir: &Path) -> Option<Vec<u8>> {
    let to = dir.join("restored");
    let _ = std::fs::remove_dir_all(&to);
    block_on(session.restore(
        "disks",
        &to,
        &RestoreOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    std::fs::read(to.join("disk.img")).ok()
}

/// Writes `bytes` over the file at `path`, in place.
fn save_in_place(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

const LEN: usize = 8 << 20;

#[test]
fn a_file_saved_once_while_it_is_read_is_stored_as_saved() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("from");
    std::fs::create_dir_all(&from).unwrap();
    let path = from.join("disk.img");
    let (first, second) = (noise(1, LEN), noise(2, LEN));
    std::fs::write(&path, &first).unwrap();
    let a = session(dir.path());
    let mut saved = false;
    let report = backup_while(&a, &from, |done| {
        if !saved && done >= (LEN / 2) as u64 {
            save_in_place(&path, &second);
            saved = true;
        }
    });
    assert!(saved, "the backup read the file");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files_stored, 1);
    // Stored whole: the version saved, not the old head with the new tail.
    let back = restored(&a, dir.path()).expect("disk.img restored");
    assert!(back == second, "the backup holds neither version whole");
}

#[test]
fn a_file_that_keeps_changing_while_it_is_read_is_reported_and_not_stored_torn() {
    let dir = tempfile::tempdir().unwrap();
    let from = dir.path().join("from");
    std::fs::create_dir_all(&from).unwrap();
    let path = from.join("disk.img");
    let first = noise(1, LEN);
    std::fs::write(&path, &first).unwrap();
    let a = session(dir.path());
    assert!(backup_while(&a, &from, |_| {}).errors.is_empty());
    // Touched (so the next backup reads it), then saved again at every read, half way through.
    let file = std::fs::File::options().write(true).open(&path).unwrap();
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(file);
    let mut saves = 0u64;
    let mut armed = true;
    let report = backup_while(&a, &from, |done| {
        if armed && done >= (LEN / 2) as u64 {
            saves += 1;
            save_in_place(&path, &noise(10 + saves, LEN));
            armed = false;
        } else if done < (LEN / 2) as u64 {
            armed = true;
        }
    });
    assert_eq!(saves, 3, "read three times, saved during each read");
    assert_eq!(report.files_stored, 0);
    assert!(
        report
            .errors
            .iter()
            .any(|(rel, e)| rel == "disk.img" && e.to_string().contains("changed while")),
        "{:?}",
        report.errors
    );
    // The backup keeps the version it had, whole.
    let back = restored(&a, dir.path()).expect("disk.img restored");
    assert!(back == first, "the backup lost its whole version");
}
