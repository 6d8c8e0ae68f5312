//! Two-way folder sync when two devices' syncs overlap: both push a change to the same file,
//! the vault keeps one, and the device whose change lost keeps it as a conflict copy (it is
//! not replaced by the winner). The overlap is made exact: device b's push waits, at its first
//! segment PUT, for device a's whole folder sync.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use bucketsync::driver::{Transport, DEFAULT_CONCURRENCY};
use bucketsync::folder::FolderBucket;
use bucketsync::folder_sync::FolderOptions;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{Error, HistoryPolicy, Method, OpenMode, Request, Response, Result, VaultKey};
use bucketsync_suite::generated::Generated;
use futures::executor::block_on;

/// The folder bucket, running `before` once, just before the first request that `at` picks.
struct Interleaved<'a> {
    at: fn(&Request) -> bool,
    before: Box<dyn Fn() + Sync + 'a>,
    done: AtomicBool,
}

/// A segment PUT: a sync's push landing.
fn segment_put(request: &Request) -> bool {
    request.method == Method::Put && request.url.contains("/s/")
}

/// A pack GET: a sync reading files it decided to write, after its walk.
fn pack_read(request: &Request) -> bool {
    request.method == Method::Get && request.url.contains("/p/")
}

impl Transport for Interleaved<'_> {
    async fn send(&self, request: Request) -> Result<Response> {
        if (self.at)(&request) && !self.done.swap(true, Ordering::SeqCst) {
            (self.before)();
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

fn open(store: &str, key: &VaultKey, name: &str, mode: OpenMode) -> Session {
    Session::open(SessionOptions {
        device: Some(name),
        mode,
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
    .unwrap()
}

fn sync_folder<T: Transport>(session: &Session, dir: &Path, t: &T) -> Vec<String> {
    let report = block_on(session.sync_folder(
        dir,
        "shared",
        &FolderOptions::default(),
        t,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report.conflicts
}

/// A vault in a folder bucket under `dir` and two devices ("laptop" and "phone") syncing a
/// folder each (`dir/a`, `dir/b`), both holding `todo.txt` with `content` once synced.
fn two_devices_agreeing_on(
    dir: &Path,
    content: &str,
) -> (Session, Session, std::path::PathBuf, std::path::PathBuf) {
    let store = format!("file://{}", dir.join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);
    let (on_a, on_b) = (dir.join("a"), dir.join("b"));
    std::fs::create_dir_all(&on_a).unwrap();
    std::fs::create_dir_all(&on_b).unwrap();
    std::fs::write(on_a.join("todo.txt"), content).unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    (a, b, on_a, on_b)
}

/// Both devices edit `todo.txt`. b's sync pulls (nothing new), decides to send its edit, and
/// just before its push lands, a's whole sync runs: a's edit is written later, so it wins in
/// the vault. b's sync sees no conflict yet.
fn edit_both_and_let_a_win(a: &Session, on_a: &Path, b: &Session, on_b: &Path) {
    std::fs::write(on_b.join("todo.txt"), "b's edit").unwrap();
    std::fs::write(on_a.join("todo.txt"), "a's edit, a bit longer").unwrap();
    let meddling = Interleaved {
        at: segment_put,
        before: Box::new(|| {
            std::thread::scope(|s| {
                s.spawn(|| {
                    // a's clock reads later than b's write.
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    assert!(sync_folder(a, on_a, &FolderBucket).is_empty());
                });
            });
        }),
        done: AtomicBool::new(false),
    };
    assert!(
        sync_folder(b, on_b, &meddling).is_empty(),
        "b saw no conflict yet"
    );
    assert!(meddling.done.load(Ordering::SeqCst));
}

#[test]
fn when_two_syncs_overlap_the_losing_edit_becomes_a_conflict_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "v0"
    );

    // Both edit, and a's edit wins while b's sync runs.
    edit_both_and_let_a_win(&a, &on_a, &b, &on_b);

    // b's next sync finds a's version, not made from b's: b's edit is kept as a copy.
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].starts_with("todo (conflict phone "), "{copies:?}");
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "a's edit, a bit longer"
    );
    assert_eq!(
        std::fs::read_to_string(on_b.join(&copies[0])).unwrap(),
        "b's edit"
    );
    // a gets the copy, and sees no conflict of its own.
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    assert_eq!(
        std::fs::read_to_string(on_a.join(&copies[0])).unwrap(),
        "b's edit"
    );
    assert_eq!(
        std::fs::read_to_string(on_a.join("todo.txt")).unwrap(),
        "a's edit, a bit longer"
    );
}

/// The folder bucket, counting the GETs of packs.
#[derive(Default)]
struct CountingPackReads(std::sync::atomic::AtomicUsize);

impl Transport for CountingPackReads {
    async fn send(&self, request: Request) -> Result<Response> {
        if request.method == Method::Get && request.url.contains("/p/") {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

/// A device that syncs a folder of many small files for the first time reads them by pack:
/// files side by side in a pack come down in a few ranged GETs, not one GET each.
#[test]
fn a_new_device_reads_a_folder_of_small_files_by_pack() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let (on_a, on_b) = (dir.path().join("a"), dir.path().join("b"));
    let mut written = Vec::new();
    for i in 0..120 {
        let folder = on_a.join(format!("d{}", i % 7));
        std::fs::create_dir_all(&folder).unwrap();
        // Over the 4 KiB kept inline: each file's bytes are chunks in a pack.
        let text: String = (0..400).map(|l| format!("file {i} line {l}\n")).collect();
        let path = folder.join(format!("f{i}.txt"));
        std::fs::write(&path, &text).unwrap();
        written.push((path.strip_prefix(&on_a).unwrap().to_owned(), text));
    }
    sync_folder(&a, &on_a, &FolderBucket);

    let b = open(&store, &key, "phone", OpenMode::Join);
    std::fs::create_dir_all(&on_b).unwrap();
    let counting = CountingPackReads::default();
    let report = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &counting,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.downloaded, 127, "120 files and 7 folders");
    for (rel, text) in &written {
        assert_eq!(&std::fs::read_to_string(on_b.join(rel)).unwrap(), text);
    }
    let reads = counting.0.load(Ordering::SeqCst);
    assert!(
        reads <= 8,
        "120 files in one or two packs: {reads} GETs of packs"
    );
}

/// Sets the file's modification time.
fn set_mtime(path: &Path, at: std::time::SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(at).unwrap();
}

/// Two devices edit the same file to different contents of the same size, stamped with the
/// same modification time (files unpacked from an archive, or built reproducibly, have one).
/// Size and time say nothing about whose bytes these are: the second to sync must see that
/// both changed and keep the loser as a conflict copy, not take its own bytes for the vault's
/// and keep them apart for good.
#[test]
fn edits_of_the_same_size_and_time_on_two_devices_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "version 0");

    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    std::fs::write(on_a.join("todo.txt"), "a's edit!").unwrap();
    std::fs::write(on_b.join("todo.txt"), "b's edit!").unwrap();
    set_mtime(&on_a.join("todo.txt"), when);
    set_mtime(&on_b.join("todo.txt"), when);
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "b sees both changed: {copies:?}");
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);

    // Both folders hold both edits, one under the name and one as the copy, the same way.
    let contents = |on: &Path| {
        let mut found: Vec<(String, String)> = std::fs::read_dir(on)
            .unwrap()
            .map(|e| e.unwrap())
            // The sync's own record of what was last agreed.
            .filter(|e| e.file_name() != ".bucketsync-folder")
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let bytes = std::fs::read(e.path()).unwrap();
                (name, String::from_utf8_lossy(&bytes).into_owned())
            })
            .collect();
        found.sort();
        found
    };
    let (on_a, on_b) = (contents(&on_a), contents(&on_b));
    assert_eq!(on_a, on_b);
    let mut edits: Vec<&str> = on_a.iter().map(|(_, c)| c.as_str()).collect();
    edits.sort_unstable();
    assert_eq!(edits, ["a's edit!", "b's edit!"], "{on_a:?}");
}

/// A conflict between edits of the same size and time, settled by the user the usual way:
/// the copy moved over the name. The file under the name then has the size and time the base
/// holds for the other edit; the move must still count as a change, or the two devices keep
/// different files for good (and a later edit elsewhere overwrites the moved one unseen).
#[test]
fn a_conflict_copy_moved_over_the_name_is_a_change_after_a_same_size_and_time_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "version 0");
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    std::fs::write(on_a.join("todo.txt"), "a's edit!").unwrap();
    std::fs::write(on_b.join("todo.txt"), "b's edit!").unwrap();
    set_mtime(&on_a.join("todo.txt"), when);
    set_mtime(&on_b.join("todo.txt"), when);
    sync_folder(&a, &on_a, &FolderBucket);
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    sync_folder(&a, &on_a, &FolderBucket);
    let copy = &copies[0];
    // On a, the user keeps the copy's edit under the name.
    let kept = std::fs::read_to_string(on_a.join(copy)).unwrap();
    std::fs::rename(on_a.join(copy), on_a.join("todo.txt")).unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    for on in [&on_a, &on_b] {
        assert_eq!(std::fs::read_to_string(on.join("todo.txt")).unwrap(), kept);
        assert!(!on.join(copy).exists());
    }
}

/// Another file moved over a synced one, of the same size and modification time (two files
/// unpacked from one archive, or built reproducibly, have one): size and time match what was
/// agreed, but the bytes under the name are others. The move is a change, and reaches the other
/// device; before, it was never seen, and the two folders stayed different for good.
#[cfg(unix)]
#[test]
fn a_file_of_the_same_size_and_time_moved_over_a_synced_one_is_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "version 0");
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    std::fs::write(on_a.join("todo.txt"), "a's edit!").unwrap();
    set_mtime(&on_a.join("todo.txt"), when);
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "a's edit!"
    );
    // On b, a file of the same size and time, made elsewhere, replaces it.
    let elsewhere = dir.path().join("unpacked.txt");
    std::fs::write(&elsewhere, "b's file!").unwrap();
    set_mtime(&elsewhere, when);
    std::fs::rename(&elsewhere, on_b.join("todo.txt")).unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    sync_folder(&a, &on_a, &FolderBucket);
    for on in [&on_a, &on_b] {
        assert_eq!(
            std::fs::read_to_string(on.join("todo.txt")).unwrap(),
            "b's file!",
            "{}",
            on.display()
        );
    }
}

/// The folder bucket, refusing every pack PUT (as a store whose policy forbids them would).
struct NoPacks;

impl Transport for NoPacks {
    async fn send(&self, request: Request) -> Result<Response> {
        if request.method == Method::Put && request.url.contains("/p/") {
            return Ok(Response {
                status: 403,
                headers: Vec::new(),
                body: b"<Error><Code>AccessDenied</Code></Error>".to_vec(),
            });
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

/// As above, but the first sync after the move cannot send the file (its pack PUT refused):
/// the next one must still see the move, though the base kept the old version for the path.
#[cfg(unix)]
#[test]
fn a_file_moved_over_a_synced_one_whose_upload_failed_is_sent_by_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "version 0");
    let noise = |seed| Generated::new(seed, 100_000).to_vec();
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    std::fs::write(on_a.join("disk.img"), noise(1)).unwrap();
    set_mtime(&on_a.join("disk.img"), when);
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    let elsewhere = dir.path().join("unpacked.img");
    std::fs::write(&elsewhere, noise(2)).unwrap();
    set_mtime(&elsewhere, when);
    std::fs::rename(&elsewhere, on_b.join("disk.img")).unwrap();
    let failed = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &NoPacks,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(
        failed.errors.iter().any(|(rel, _)| rel == "disk.img"),
        "{:?}",
        failed.errors
    );
    sync_folder(&b, &on_b, &FolderBucket);
    sync_folder(&a, &on_a, &FolderBucket);
    assert!(std::fs::read(on_a.join("disk.img")).unwrap() == noise(2));
}

/// Sets `path`'s modification time `ms` milliseconds after the epoch (edits in a test come
/// within one millisecond: their times are made distinct).
fn touch(path: &Path, ms: u64) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .unwrap();
}

#[test]
fn a_device_that_left_a_file_alone_takes_every_later_version_without_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // a edits twice, syncing each time, while b is away.
    for (n, text) in ["first edit", "second edit"].iter().enumerate() {
        std::fs::write(on_a.join("todo.txt"), text).unwrap();
        touch(&on_a.join("todo.txt"), 1_900_000_000_000 + n as u64 * 1000);
        assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    }
    // b never touched its copy: it takes the latest, and keeps no stale copy of its own.
    assert!(sync_folder(&b, &on_b, &FolderBucket).is_empty());
    let names: Vec<_> = std::fs::read_dir(&on_b)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| !n.starts_with(".bucketsync"))
        .collect();
    assert_eq!(names, ["todo.txt"]);
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "second edit"
    );

    // a deletes the file, syncs, and makes a new one at the same path: b, which held the
    // deleted version unchanged, takes the new one too.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    std::fs::write(on_a.join("todo.txt"), "made again").unwrap();
    touch(&on_a.join("todo.txt"), 1_900_000_010_000);
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    assert!(sync_folder(&b, &on_b, &FolderBucket).is_empty());
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "made again"
    );
}

#[test]
fn a_device_that_keeps_no_history_keeps_its_version_when_it_cannot_tell_it_was_seen() {
    // b keeps no earlier versions (as after 30 days away, when the default policy has dropped
    // them): of the versions between its own and the vault's, it holds none, so it cannot tell
    // a later edit from one that overlapped its own and won. Its version is kept as a copy:
    // a copy too many, never an edit lost.
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    b.configure(|e| {
        e.set_history_policy(HistoryPolicy {
            versions: 0,
            max_age_ms: 0,
        })
    })
    .unwrap();
    for (n, text) in ["first edit", "second edit"].iter().enumerate() {
        std::fs::write(on_a.join("todo.txt"), text).unwrap();
        touch(&on_a.join("todo.txt"), 1_900_000_000_000 + n as u64 * 1000);
        assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    }
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        std::fs::read_to_string(on_b.join(&copies[0])).unwrap(),
        "v0"
    );
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "second edit"
    );
}

/// The folder bucket, failing every manifest PUT (the push that ends a sync).
struct NoPublish;

impl Transport for NoPublish {
    async fn send(&self, request: Request) -> Result<Response> {
        if request.method == Method::Put && request.url.contains("/m/") {
            return Ok(Response {
                status: 503,
                headers: Vec::new(),
                body: b"<Error><Code>SlowDown</Code></Error>".to_vec(),
            });
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, _ms: u64) {}
}

#[test]
fn an_edit_whose_push_failed_survives_a_deletion_made_elsewhere_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // b edits; its sync sends the file, and the push that ends it fails.
    std::fs::write(on_b.join("todo.txt"), "b's edit").unwrap();
    touch(&on_b.join("todo.txt"), 1_900_000_000_000);
    let failed = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &NoPublish,
        4,
        |_, _| {},
    ));
    assert!(failed.is_err(), "{failed:?}");
    // Meanwhile a deletes the file.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    // b's edit was never agreed on: it stays (edited here, deleted there), and reaches a.
    sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "b's edit"
    );
    sync_folder(&a, &on_a, &FolderBucket);
    assert_eq!(
        std::fs::read_to_string(on_a.join("todo.txt")).unwrap(),
        "b's edit"
    );
}

#[test]
fn a_file_deleted_after_a_sync_whose_push_failed_stays_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    std::fs::write(on_b.join("todo.txt"), "b's edit").unwrap();
    touch(&on_b.join("todo.txt"), 1_900_000_000_000);
    let failed = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &NoPublish,
        4,
        |_, _| {},
    ));
    assert!(failed.is_err(), "{failed:?}");
    // The user deletes the file; the next sync pushes the edit it had sent, then the deletion.
    std::fs::remove_file(on_b.join("todo.txt")).unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    assert!(!on_b.join("todo.txt").exists(), "the deletion stands here");
    sync_folder(&a, &on_a, &FolderBucket);
    assert!(!on_a.join("todo.txt").exists(), "and there");
}

#[test]
fn a_sync_that_would_delete_most_of_a_folder_stops_until_confirmed_on_each_side() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    for n in 0..11 {
        std::fs::write(on_a.join(format!("note{n}.txt")), format!("note {n}")).unwrap();
    }
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    let count = |dir: &Path| {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_str()
                    .unwrap()
                    .ends_with(".txt")
            })
            .count()
    };
    assert_eq!(count(&on_b), 12);

    // a's folder looks emptied (a drive not mounted, a script gone wrong): 11 of its 12 files.
    for n in 0..11 {
        std::fs::remove_file(on_a.join(format!("note{n}.txt"))).unwrap();
    }
    let sync = |s: &Session, d: &Path| {
        block_on(s.sync_folder(
            d,
            "shared",
            &FolderOptions::default(),
            &FolderBucket,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        ))
    };
    match sync(&a, &on_a) {
        Err(Error::FolderMassDeletion {
            deleting: 11,
            paths: 12,
            here: false,
            limit_percent: 50,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    // Nothing changed: b still gets every file.
    sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(count(&on_b), 12);

    // a's user confirms: the deletions go to the vault.
    a.confirm_deletions().unwrap();
    let report = sync(&a, &on_a).unwrap();
    assert_eq!(report.deleted_there, 11, "{report:?}");
    // b is stopped too before it deletes most of its folder, and goes on once confirmed.
    match sync(&b, &on_b) {
        Err(Error::FolderMassDeletion {
            deleting: 11,
            here: true,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(count(&on_b), 12);
    b.confirm_deletions().unwrap();
    assert_eq!(sync(&b, &on_b).unwrap().deleted_here, 11);
    assert_eq!(count(&on_b), 1);
}

#[test]
fn a_dry_run_lists_what_a_sync_would_change_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    std::fs::write(on_a.join("todo.txt"), "a's edit").unwrap();
    std::fs::write(on_a.join("new.txt"), "new on a").unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    std::fs::write(on_b.join("mine.txt"), "b's own").unwrap();
    let base = std::fs::read(on_b.join(".bucketsync-folder")).unwrap();
    let dry = |s: &Session, d: &Path| {
        let options = FolderOptions {
            dry_run: true,
            ..FolderOptions::default()
        };
        block_on(s.sync_folder(d, "shared", &options, &FolderBucket, 4, |_, _| {})).unwrap()
    };
    let plan = dry(&b, &on_b);
    assert!(plan.dry_run);
    let changes: Vec<(&str, &str)> = plan
        .changes
        .iter()
        .map(|(path, change)| (path.as_str(), change.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("mine.txt", "upload"),
            ("new.txt", "download"),
            ("todo.txt", "download")
        ]
    );
    assert_eq!((plan.uploaded, plan.downloaded), (1, 2));
    // Nothing changed here, nor in the vault: a sees nothing of b's, and b's base is as it was.
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "v0"
    );
    assert!(!on_b.join("new.txt").exists());
    assert_eq!(
        std::fs::read(on_b.join(".bucketsync-folder")).unwrap(),
        base
    );
    sync_folder(&a, &on_a, &FolderBucket);
    assert!(!on_a.join("mine.txt").exists());
    // The sync then does what the dry run said.
    let done = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &FolderBucket,
        4,
        |_, _| {},
    ))
    .unwrap();
    assert!(!done.dry_run);
    assert_eq!(done.changes, plan.changes);
    assert_eq!((done.uploaded, done.downloaded), (1, 2));
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "a's edit"
    );
}

#[test]
fn a_file_deleted_in_a_synced_folder_comes_back_by_path_and_time() {
    use bucketsync::backup::RestoreOptions;
    use std::sync::atomic::AtomicU64;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let now = Arc::new(AtomicU64::new(1_900_000_000_000));
    let clock = Arc::clone(&now);
    let a = Session::open(SessionOptions {
        device: Some("laptop"),
        mode: OpenMode::Create,
        clock: Arc::new(move || bucketsync::Timestamp(clock.load(Ordering::SeqCst))),
        ..SessionOptions::new(&store, &key, StateLocation::Memory)
    })
    .unwrap();
    let on_a = dir.path().join("a");
    std::fs::create_dir_all(on_a.join("notes")).unwrap();
    std::fs::write(on_a.join("notes/plan.txt"), "first plan").unwrap();
    std::fs::write(on_a.join("notes/other.txt"), "other").unwrap();
    std::fs::write(on_a.join("todo.txt"), "todo").unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    let first = now.fetch_add(60_000, Ordering::SeqCst) + 30_000;
    std::fs::write(on_a.join("notes/plan.txt"), "second plan").unwrap();
    touch(&on_a.join("notes/plan.txt"), 1_900_000_060_000);
    sync_folder(&a, &on_a, &FolderBucket);
    now.fetch_add(60_000, Ordering::SeqCst);
    std::fs::remove_file(on_a.join("notes/plan.txt")).unwrap();
    sync_folder(&a, &on_a, &FolderBucket);

    // The plan as it was before its edit, and nothing else, into a folder of its own.
    let to = dir.path().join("back");
    let restore = |at_ms, only: &str| {
        let options = RestoreOptions {
            at_ms,
            only: vec![only.to_owned()],
            synced_folder: true,
            ..RestoreOptions::default()
        };
        block_on(a.restore("shared", &to, &options, &FolderBucket, 4, |_, _| {})).unwrap()
    };
    let report = restore(Some(first), "notes/plan.txt");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.files_written, 1);
    assert_eq!(
        std::fs::read_to_string(to.join("notes/plan.txt")).unwrap(),
        "first plan"
    );
    assert!(!to.join("notes/other.txt").exists() && !to.join("todo.txt").exists());
    // A folder named brings what lies below it; now, the deleted plan is not there.
    std::fs::remove_dir_all(&to).unwrap();
    let report = restore(None, "notes");
    assert_eq!(report.files_written, 1);
    assert!(to.join("notes/other.txt").exists() && !to.join("notes/plan.txt").exists());

    // What every platform's restore and check call name: a synced folder needs its name (the
    // vault's only backup is no stand-in for it), and a bad name is refused as a folder's.
    assert_eq!(a.source_named(Some("shared"), true).unwrap(), "shared");
    let nameless = a.source_named(None, true).unwrap_err();
    assert_eq!(nameless.category(), bucketsync::Category::Config);
    assert!(
        nameless.to_string().contains("the name it syncs under"),
        "{nameless}"
    );
    let bad = a.source_named(Some("a/b"), true).unwrap_err();
    assert!(bad.to_string().contains("folder name \"a/b\""), "{bad}");
    assert!(
        a.source_named(None, false).is_err(),
        "the vault holds no backup"
    );
}

#[test]
fn a_file_made_again_after_a_deletion_agreed_one_run_late_follows_the_deleted_version() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // a deletes the file; the push that ends its sync fails, and the next sync agrees it.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    let failed = block_on(a.sync_folder(
        &on_a,
        "shared",
        &FolderOptions::default(),
        &NoPublish,
        4,
        |_, _| {},
    ));
    assert!(failed.is_err(), "{failed:?}");
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    // Then a makes the file again, knowing the version it deleted.
    std::fs::write(on_a.join("todo.txt"), "made again").unwrap();
    touch(&on_a.join("todo.txt"), 1_900_000_010_000);
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    // b, which left its v0 alone, takes the new file: v0 was deleted knowingly, and is no
    // edit to keep as a conflict copy.
    assert_eq!(sync_folder(&b, &on_b, &FolderBucket), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "made again"
    );
}

#[test]
fn an_overlapped_edit_is_kept_when_the_versions_after_it_are_not_held_here() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    b.configure(|e| {
        e.set_history_policy(HistoryPolicy {
            versions: 0,
            max_age_ms: 0,
        })
    })
    .unwrap();
    // Both edit; a's whole sync runs just before b's push lands, and a's edit wins.
    edit_both_and_let_a_win(&a, &on_a, &b, &on_b);
    // a edits again: b holds none of the versions between its own and the vault's.
    std::fs::write(on_a.join("todo.txt"), "a's second edit").unwrap();
    touch(&on_a.join("todo.txt"), 1_900_000_020_000);
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    // b's edit lost in the vault and nobody saw it: it is kept as a copy, not overwritten.
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert_eq!(
        std::fs::read_to_string(on_b.join(&copies[0])).unwrap(),
        "b's edit"
    );
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "a's second edit"
    );
}

/// Every file under `root` with its contents, by relative path, the folder sync's own file
/// left out.
fn tree(root: &Path) -> std::collections::BTreeMap<String, String> {
    fn visit(root: &Path, dir: &Path, out: &mut std::collections::BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                out.insert(format!("{rel}/"), String::new());
                visit(root, &path, out);
            } else if !rel.starts_with(".bucketsync") {
                out.insert(rel, std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    visit(root, root, &mut out);
    out
}

/// Syncs `a`, `b`, `a`, `b` (enough to settle), each sync meeting no error.
fn settle(a: &Session, on_a: &Path, b: &Session, on_b: &Path) {
    for _ in 0..2 {
        sync_folder(a, on_a, &FolderBucket);
        sync_folder(b, on_b, &FolderBucket);
    }
}

/// A path that is a file on one device and a folder on another: both are kept (the folder
/// under the name, the file as a conflict copy beside it), the same on both devices, and
/// nothing is lost; then each way of turning one into the other on a single device reaches
/// the other device.
#[test]
fn a_path_that_is_a_file_here_and_a_folder_there_settles_with_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // Made at once: a file `x` on a, a folder `x` with a file in it on b.
    std::fs::write(on_a.join("x"), "a's file").unwrap();
    std::fs::create_dir_all(on_b.join("x")).unwrap();
    std::fs::write(on_b.join("x/inside.txt"), "b's file inside").unwrap();
    settle(&a, &on_a, &b, &on_b);
    let (got_a, got_b) = (tree(&on_a), tree(&on_b));
    assert_eq!(got_a, got_b);
    assert_eq!(
        got_a.get("x/inside.txt").map(String::as_str),
        Some("b's file inside")
    );
    let copies: Vec<&String> = got_a
        .iter()
        .filter(|(p, v)| p.starts_with("x (conflict") && v.as_str() == "a's file")
        .map(|(p, _)| p)
        .collect();
    assert_eq!(copies.len(), 1, "a's file kept as a copy: {got_a:?}");

    // One device turns the folder into a file: the other follows.
    std::fs::remove_dir_all(on_a.join("x")).unwrap();
    std::fs::write(on_a.join("x"), "now a file").unwrap();
    settle(&a, &on_a, &b, &on_b);
    assert_eq!(tree(&on_b), tree(&on_a));
    assert_eq!(
        std::fs::read_to_string(on_b.join("x")).unwrap(),
        "now a file"
    );
    // And back into a folder, from the other device.
    std::fs::remove_file(on_b.join("x")).unwrap();
    std::fs::create_dir_all(on_b.join("x/deeper")).unwrap();
    std::fs::write(on_b.join("x/deeper/y.txt"), "a folder again").unwrap();
    settle(&a, &on_a, &b, &on_b);
    assert_eq!(tree(&on_a), tree(&on_b));
    assert_eq!(
        std::fs::read_to_string(on_a.join("x/deeper/y.txt")).unwrap(),
        "a folder again"
    );
}

/// One device turns a folder into a file while the other adds a file inside it: the folder
/// stays (with what was added, and without what the first device deleted from it), and the
/// file becomes a conflict copy beside it; nothing is lost, on either side of the race.
#[test]
fn a_folder_turned_into_a_file_while_a_file_was_added_inside_stays_a_folder() {
    for first in ["turned", "added"] {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
        std::fs::create_dir_all(on_a.join("x")).unwrap();
        std::fs::write(on_a.join("x/old.txt"), "old").unwrap();
        settle(&a, &on_a, &b, &on_b);
        assert_eq!(
            std::fs::read_to_string(on_b.join("x/old.txt")).unwrap(),
            "old"
        );
        // a: the folder goes, a file takes its name; b: a file is added in the folder.
        std::fs::remove_dir_all(on_a.join("x")).unwrap();
        std::fs::write(on_a.join("x"), "a's file").unwrap();
        std::fs::write(on_b.join("x/new.txt"), "b's new file").unwrap();
        match first {
            "turned" => settle(&a, &on_a, &b, &on_b),
            _ => settle(&b, &on_b, &a, &on_a),
        }
        let got = tree(&on_a);
        assert_eq!(got, tree(&on_b), "{first} first");
        assert_eq!(
            got.get("x/new.txt").map(String::as_str),
            Some("b's new file"),
            "{first} first: {got:?}"
        );
        assert!(!got.contains_key("x/old.txt"), "{first} first: {got:?}");
        let copies = got
            .iter()
            .filter(|(p, v)| p.starts_with("x (conflict") && v.as_str() == "a's file")
            .count();
        assert_eq!(copies, 1, "{first} first: {got:?}");
    }
}

/// A folder deleted on one device while a file in it was edited on another stays in the vault
/// as the edited file alone (no entry of its own); a file then made at the folder's name is
/// set apart as a conflict copy, and the folder the edit needs takes the name.
#[test]
fn a_file_made_where_a_deleted_folder_still_holds_an_edit_is_set_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    std::fs::create_dir_all(on_a.join("x")).unwrap();
    std::fs::write(on_a.join("x/old.txt"), "old").unwrap();
    settle(&a, &on_a, &b, &on_b);
    std::fs::remove_dir_all(on_a.join("x")).unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    std::fs::write(on_b.join("x/old.txt"), "b's edit").unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    // a, which deleted the folder, makes a file of its name.
    std::fs::write(on_a.join("x"), "a's file").unwrap();
    settle(&a, &on_a, &b, &on_b);
    let got = tree(&on_a);
    assert_eq!(got, tree(&on_b));
    assert_eq!(
        got.get("x/old.txt").map(String::as_str),
        Some("b's edit"),
        "{got:?}"
    );
    let copies = got
        .iter()
        .filter(|(p, v)| p.starts_with("x (conflict laptop") && v.as_str() == "a's file")
        .count();
    assert_eq!(copies, 1, "{got:?}");
}

/// A file whose folder sync failed to push is pushed by a later sync of the records; another
/// device, whose folder of the same name wins, keeps the file as a conflict copy. The file's
/// own device then finds its version kept already: it takes the folder, and its file comes
/// back as that copy, with no second copy made (which met the first at every sync).
#[test]
fn a_file_another_device_kept_as_a_copy_is_not_copied_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    std::fs::write(on_a.join("x"), "a's file").unwrap();
    let failed = block_on(a.sync_folder(
        &on_a,
        "shared",
        &FolderOptions::default(),
        &NoPublish,
        4,
        |_, _| {},
    ));
    assert!(failed.is_err(), "{failed:?}");
    // The records go out with a sync of the vault alone (an app's background sync).
    block_on(a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    std::fs::create_dir_all(on_b.join("x")).unwrap();
    std::fs::write(on_b.join("x/inside.txt"), "b's file inside").unwrap();
    let copies = sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    // a: no error, no second copy; its file is there as b's copy of it.
    assert_eq!(sync_folder(&a, &on_a, &FolderBucket), Vec::<String>::new());
    settle(&a, &on_a, &b, &on_b);
    let got = tree(&on_a);
    assert_eq!(got, tree(&on_b));
    assert_eq!(
        got.get(&copies[0]).map(String::as_str),
        Some("a's file"),
        "{got:?}"
    );
    assert_eq!(
        got.get("x/inside.txt").map(String::as_str),
        Some("b's file inside")
    );
}

/// A conflict copy of a name without an extension, moved back over the name by the user, and
/// the name edited again elsewhere: the moved version is kept as the copy again, and not
/// deleted by the same sync for having been moved away (its copy sorts after the name).
#[test]
fn a_copy_moved_back_over_a_name_without_extension_is_kept_when_it_loses_again() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    std::fs::write(on_a.join("Makefile"), "v0").unwrap();
    settle(&a, &on_a, &b, &on_b);
    std::fs::write(on_a.join("Makefile"), "a's edit").unwrap();
    touch(&on_a.join("Makefile"), 1_900_000_000_000);
    std::fs::write(on_b.join("Makefile"), "b's edit").unwrap();
    touch(&on_b.join("Makefile"), 1_900_000_060_000);
    sync_folder(&b, &on_b, &FolderBucket);
    let copies = sync_folder(&a, &on_a, &FolderBucket);
    assert_eq!(copies.len(), 1, "{copies:?}");
    // The user on a takes its version back under the name (mv keeps the time); b edits again.
    std::fs::rename(on_a.join(&copies[0]), on_a.join("Makefile")).unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    std::fs::write(on_b.join("Makefile"), "b's second edit").unwrap();
    touch(&on_b.join("Makefile"), 1_900_000_120_000);
    sync_folder(&b, &on_b, &FolderBucket);
    settle(&a, &on_a, &b, &on_b);
    let got = tree(&on_a);
    assert_eq!(got, tree(&on_b));
    assert_eq!(
        got.get("Makefile").map(String::as_str),
        Some("b's second edit")
    );
    assert!(
        got.values().any(|v| v == "a's edit"),
        "a's edit was lost: {got:?}"
    );
}

/// Folder seed 1273's shape: an edit that lost in the vault to a concurrent one, whose
/// writer then deleted the file before the loser's device saw the winner. The deletion named
/// what it deleted (the winner, made from the version before the loser's): the loser's edit
/// was never seen by the deleting device, and it stays, on both devices.
#[test]
fn an_edit_that_lost_to_a_version_deleted_since_is_not_deleted_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // Both edit; a's whole sync runs just before b's push lands, and a's edit wins.
    edit_both_and_let_a_win(&a, &on_a, &b, &on_b);
    // a deletes its version, the one the vault kept; b has not synced since.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    // b's edit was never seen by a: it is not deleted with a's version.
    sync_folder(&b, &on_b, &FolderBucket);
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "b's edit"
    );
    settle(&a, &on_a, &b, &on_b);
    assert_eq!(tree(&on_a), tree(&on_b));
    assert_eq!(
        tree(&on_a).get("todo.txt").map(String::as_str),
        Some("b's edit")
    );
}

/// Deletions by the previous release were plain record deletions, with no note naming the
/// version deleted: they still delete the file on a device that left it alone. A deletion
/// by this release leaves a note (FORMAT §15), which a restore of the folder reads as gone.
#[test]
fn a_deletion_without_a_note_as_the_previous_release_wrote_it_still_deletes() {
    use bucketsync::backup::{Stored, FOLDERS};
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    let entry = format!("{FOLDERS}shared/m/todo.txt");
    let content = format!("{FOLDERS}shared/f/todo.txt");
    // a deletes as the previous release did.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    a.delete(entry.as_bytes()).unwrap();
    a.delete(content.as_bytes()).unwrap();
    block_on(a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    assert!(!on_b.join("todo.txt").exists());
    assert_eq!(tree(&on_a), tree(&on_b));

    // This release leaves a note where it deletes.
    std::fs::write(on_b.join("notes.txt"), "n").unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    std::fs::remove_file(on_b.join("notes.txt")).unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    let key = format!("{FOLDERS}shared/m/notes.txt");
    let value = b
        .get(key.as_bytes())
        .unwrap()
        .expect("a note, not a tombstone");
    let Stored::Deleted(note) = Stored::decode("notes.txt", &value).unwrap() else {
        panic!("an entry where a note was expected");
    };
    assert_eq!(note.hash.len(), 64, "{note:?}");
    // A restore of the folder reads the note as gone.
    let report = block_on(b.restore(
        "shared",
        &dir.path().join("restored"),
        &bucketsync::backup::RestoreOptions {
            synced_folder: true,
            ..Default::default()
        },
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(!dir.path().join("restored/notes.txt").exists());
}

/// A folder that still holds what this device does not sync (here a file its patterns leave
/// out), turned into a file on another device: the folder cannot go, so it keeps the name and
/// the file becomes its conflict copy, on both devices. Before, every sync of the first device
/// failed with "cannot make way", for good.
#[test]
fn a_folder_holding_what_is_not_synced_stays_when_another_device_turns_it_into_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    let sync_a = || {
        let options = FolderOptions {
            exclude: vec!["*.tmp".into()],
            ..FolderOptions::default()
        };
        let report = block_on(a.sync_folder(
            &on_a,
            "shared",
            &options,
            &FolderBucket,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        ))
        .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    };
    std::fs::create_dir_all(on_a.join("x")).unwrap();
    std::fs::write(on_a.join("x/keep.txt"), "synced").unwrap();
    std::fs::write(on_a.join("x/scratch.tmp"), "left out").unwrap();
    sync_a();
    sync_folder(&b, &on_b, &FolderBucket);
    assert!(on_b.join("x/keep.txt").exists());
    assert!(!on_b.join("x/scratch.tmp").exists());

    std::fs::remove_dir_all(on_b.join("x")).unwrap();
    std::fs::write(on_b.join("x"), "b's file").unwrap();
    sync_folder(&b, &on_b, &FolderBucket);
    // a's syncs meet no error (`sync_a` checks), and a keeps what it does not sync.
    for _ in 0..2 {
        sync_a();
        sync_folder(&b, &on_b, &FolderBucket);
    }
    assert_eq!(
        std::fs::read_to_string(on_a.join("x/scratch.tmp")).unwrap(),
        "left out"
    );
    let mut on_a_synced = tree(&on_a);
    on_a_synced.remove("x/scratch.tmp");
    let on_b_tree = tree(&on_b);
    assert_eq!(on_a_synced, on_b_tree);
    assert!(on_b.join("x").is_dir(), "{on_b_tree:?}");
    let copies: Vec<&String> = on_b_tree
        .iter()
        .filter(|(p, v)| p.starts_with("x (conflict") && v.as_str() == "b's file")
        .map(|(p, _)| p)
        .collect();
    assert_eq!(copies.len(), 1, "b's file kept as a copy: {on_b_tree:?}");
}

/// Two new files of the same size and time made at one path on two devices of a folder
/// synced before (folder seed 6357, by moving conflict copies there): the second device's
/// sync compares the bytes, and both files are kept. Only a device's very first sync of the
/// folder trusts size and time for a path it never agreed on (a copy of the tree made
/// beforehand is not read whole).
#[test]
fn new_files_of_the_same_size_and_time_at_one_path_are_both_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "version 0");
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_790_000_000);
    std::fs::write(on_a.join("new.txt"), "a's file!").unwrap();
    std::fs::write(on_b.join("new.txt"), "b's file!").unwrap();
    set_mtime(&on_a.join("new.txt"), when);
    set_mtime(&on_b.join("new.txt"), when);
    settle(&a, &on_a, &b, &on_b);
    let (got_a, got_b) = (tree(&on_a), tree(&on_b));
    assert_eq!(got_a, got_b);
    let mut files: Vec<&str> = got_a
        .iter()
        .filter(|(p, _)| p.starts_with("new"))
        .map(|(_, c)| c.as_str())
        .collect();
    files.sort_unstable();
    assert_eq!(files, ["a's file!", "b's file!"], "{got_a:?}");
}

/// A user saves a file while the sync that downloads another device's version of it reads
/// the packs: the save is not replaced (the sync reports the path changed meanwhile), and the
/// next sync keeps both versions. Before, the fetched file was renamed over the save.
#[test]
fn a_file_saved_while_its_download_reads_the_packs_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // Too big to live in its record: its bytes go into a pack.
    let big = "a's version ".repeat(1_000);
    std::fs::write(on_a.join("todo.txt"), &big).unwrap();
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    let saving = Interleaved {
        at: pack_read,
        before: Box::new(|| std::fs::write(on_b.join("todo.txt"), "b's save").unwrap()),
        done: AtomicBool::new(false),
    };
    let report = block_on(b.sync_folder(
        &on_b,
        "shared",
        &FolderOptions::default(),
        &saving,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(saving.done.load(Ordering::SeqCst), "a pack was read");
    assert_eq!(
        std::fs::read_to_string(on_b.join("todo.txt")).unwrap(),
        "b's save"
    );
    assert!(
        report
            .errors
            .iter()
            .any(|(rel, e)| rel == "todo.txt" && e.to_string().contains("changed during the sync")),
        "{:?}",
        report.errors
    );
    settle(&a, &on_a, &b, &on_b);
    let got = tree(&on_b);
    assert_eq!(got, tree(&on_a));
    let mut contents: Vec<&str> = got
        .iter()
        .filter(|(p, _)| p.starts_with("todo"))
        .map(|(_, c)| c.as_str())
        .collect();
    contents.sort_unstable();
    assert_eq!(contents, [big.as_str(), "b's save"], "{got:?}");
}

/// A big file saved again in place while a sync reads it to send it: what goes out is never
/// the first part of one version and the rest of the other (the other device would write that
/// under the file's name). The sync says the file changed and sends none of it; the next one
/// sends the new version whole. The save happens when the sync has read half of the file (its
/// progress says so), whatever the packs are doing meanwhile.
#[test]
fn a_file_saved_while_it_is_read_to_be_sent_never_goes_out_torn() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (a, b, on_a, on_b) = two_devices_agreeing_on(dir.path(), "v0");
    // Bytes that neither deflate nor repeat: read in many steps.
    let first = Generated::new(1, 8 << 20).to_vec();
    let second: Vec<u8> = first.iter().map(|b| b ^ 0x5a).collect();
    let path = on_a.join("disk.img");
    std::fs::write(&path, &first).unwrap();
    let mut saved = false;
    let report = block_on(a.sync_folder(
        &on_a,
        "shared",
        &FolderOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |rel, progress| {
            if rel == "disk.img" && !saved && progress.bytes_done >= 4 << 20 {
                // In place, as a database or a disk image is written: the same file, other
                // bytes.
                let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                file.write_all(&second).unwrap();
                file.sync_all().unwrap();
                saved = true;
            }
        },
    ))
    .unwrap();
    assert!(saved, "the sync read the file");
    assert!(
        report
            .errors
            .iter()
            .any(|(rel, e)| rel == "disk.img" && e.to_string().contains("changed during the sync")),
        "{:?}",
        report.errors
    );
    // b writes nothing of it: no version of it was sent whole.
    sync_folder(&b, &on_b, &FolderBucket);
    assert!(!on_b.join("disk.img").exists());
    // The next run sends the version saved, and b holds it byte for byte.
    assert!(sync_folder(&a, &on_a, &FolderBucket).is_empty());
    sync_folder(&b, &on_b, &FolderBucket);
    assert!(std::fs::read(on_b.join("disk.img")).unwrap() == second);
}

/// Three devices. a's edit wins in the vault over b's (their syncs overlapped), c takes a's,
/// then a deletes it. b's edit was never seen by a, so b writes it again; c, which still holds
/// a's version, must take b's as made after that deletion, not as an overlap: a's version,
/// deleted by its user, does not come back as a conflict copy.
#[test]
fn an_edit_written_again_after_a_deletion_that_missed_it_brings_back_nothing_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);
    let c = open(&store, &key, "tablet", OpenMode::Join);
    let [on_a, on_b, on_c] = ["a", "b", "c"].map(|d| dir.path().join(d));
    for on in [&on_a, &on_b, &on_c] {
        std::fs::create_dir_all(on).unwrap();
    }
    std::fs::write(on_a.join("todo.txt"), "v1").unwrap();
    for (session, on) in [(&a, &on_a), (&b, &on_b), (&c, &on_c)] {
        sync_folder(session, on, &FolderBucket);
    }
    // Both edit; a's whole sync runs just before b's push lands, and a's edit wins.
    edit_both_and_let_a_win(&a, &on_a, &b, &on_b);
    sync_folder(&c, &on_c, &FolderBucket);
    assert_eq!(
        std::fs::read_to_string(on_c.join("todo.txt")).unwrap(),
        "a's edit, a bit longer"
    );
    // a's user deletes a's version; b's edit, never seen by a, is written again.
    std::fs::remove_file(on_a.join("todo.txt")).unwrap();
    sync_folder(&a, &on_a, &FolderBucket);
    sync_folder(&b, &on_b, &FolderBucket);
    sync_folder(&c, &on_c, &FolderBucket);
    for _ in 0..2 {
        for (session, on) in [(&a, &on_a), (&b, &on_b), (&c, &on_c)] {
            sync_folder(session, on, &FolderBucket);
        }
    }
    let got = tree(&on_c);
    assert_eq!(got, tree(&on_a));
    assert_eq!(got, tree(&on_b));
    assert_eq!(got.get("todo.txt").map(String::as_str), Some("b's edit"));
    assert!(
        !got.values().any(|c| c == "a's edit, a bit longer"),
        "a's deleted version came back: {got:?}"
    );
}
