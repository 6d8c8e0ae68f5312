//! Many files in one upload: small files share packs, so a folder of them costs a few PUTs
//! rather than one per file; a file's record is written only once every pack holding its
//! chunks is stored; a source that fails drops that file only. Through `Session::put_files`
//! and `Session::backup`, on the local-folder bucket and against SeaweedFS and s3s-fs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use bucketsync::backup::{BackupOptions, RestoreOptions};
use bucketsync::driver::{Transport, DEFAULT_CONCURRENCY};
use bucketsync::files::{FileBatch, FileProgress, Source};
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::transfer::FileReport;
use bucketsync::{Error, Method, Request, Response, Result, VaultKey};
use bucketsync_suite::generated::Generated;
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use futures::executor::block_on;

fn open(store: &str, key: &VaultKey, name: &str) -> Session {
    Session::open(SessionOptions {
        credentials: Some(TestServer::credentials()),
        device: Some(name),
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
    .unwrap()
}

/// A transport that counts the PUTs and GETs it passes on.
struct Counting<'t, T> {
    inner: &'t T,
    puts: AtomicU64,
    gets: AtomicU64,
}

impl<'t, T> Counting<'t, T> {
    fn new(inner: &'t T) -> Self {
        Counting {
            inner,
            puts: AtomicU64::new(0),
            gets: AtomicU64::new(0),
        }
    }

    /// PUTs and GETs since the last call.
    fn take(&self) -> (u64, u64) {
        (
            self.puts.swap(0, Ordering::SeqCst),
            self.gets.swap(0, Ordering::SeqCst),
        )
    }
}

impl<T: Transport> Transport for Counting<'_, T> {
    async fn send(&self, request: Request) -> Result<Response> {
        match request.method {
            Method::Put => self.puts.fetch_add(1, Ordering::SeqCst),
            Method::Get => self.gets.fetch_add(1, Ordering::SeqCst),
            _ => 0,
        };
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        self.inner.sleep(ms).await;
    }
}

/// A tree of `files` small files (1 to 40 kB, a few in subfolders) and two of 1 MiB; its
/// contents by path.
fn small_tree(dir: &Path, files: u64) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for i in 0..files + 2 {
        let len = match i {
            _ if i >= files => 1 << 20,
            _ => 1_000 + (i * 7_919) % 40_000,
        };
        let rel = format!("d{}/f{i}.txt", i % 7);
        let mut bytes = vec![0u8; len as usize];
        Generated::new(i, len).fill(&mut bytes);
        std::fs::create_dir_all(dir.join(format!("d{}", i % 7))).unwrap();
        std::fs::write(dir.join(&rel), &bytes).unwrap();
        out.insert(rel, bytes);
    }
    out
}

/// Every file below `dir` with its bytes.
fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for sub in std::fs::read_dir(dir).unwrap() {
        let sub = sub.unwrap();
        if !sub.file_type().unwrap().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(sub.path()).unwrap() {
            let file = file.unwrap();
            let rel = format!(
                "{}/{}",
                sub.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            );
            out.insert(rel, std::fs::read(file.path()).unwrap());
        }
    }
    out
}

async fn backup_then_restore<T: Transport>(store: &str, t: &T, what: &str) {
    let key = VaultKey::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("tree");
    let tree = small_tree(&source, 300);
    let counting = Counting::new(t);
    let a = open(store, &key, "a");
    let report = a
        .backup(
            &source,
            "tree",
            &BackupOptions::default(),
            &counting,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        )
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{what}: {:?}", report.errors);
    assert_eq!(report.files_stored, 302, "{what}");
    // About 8 MB of new chunks in packs of 16 MiB: two packs (chunks go to one of two open
    // packs), where a pack per file made 302.
    let (puts, _) = counting.take();
    assert!(report.packs <= 2, "{what}: {} packs", report.packs);
    assert_eq!(puts, report.packs, "{what}: PUTs of the backup");
    a.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();

    // An edit of five files: one or two small packs.
    for i in [3u64, 50, 120, 200, 299] {
        let rel = format!("d{}/f{i}.txt", i % 7);
        let mut bytes = tree[&rel].clone();
        bytes.extend_from_slice(b" and an edit");
        std::fs::write(source.join(&rel), &bytes).unwrap();
    }
    // Modification times have a millisecond's resolution: the entry differs by size anyway.
    let edited = read_tree(&source);
    counting.take();
    let report = a
        .backup(
            &source,
            "tree",
            &BackupOptions::default(),
            &counting,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        )
        .await
        .unwrap();
    assert!(report.errors.is_empty(), "{what}: {:?}", report.errors);
    assert_eq!(
        (report.files_changed, report.files_unchanged),
        (5, 297),
        "{what}"
    );
    assert!(report.packs <= 2, "{what}: {} packs", report.packs);
    assert_eq!(counting.take().0, report.packs, "{what}: PUTs of the edit");
    a.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();

    // A fresh device restores every file as it is now.
    let b = open(store, &key, "b");
    b.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
    let target = dir.path().join("restored");
    counting.take();
    let restored = b
        .restore(
            "tree",
            &target,
            &RestoreOptions::default(),
            &counting,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        )
        .await
        .unwrap();
    assert!(restored.errors.is_empty(), "{what}: {:?}", restored.errors);
    assert_eq!(restored.files_written, 302, "{what}");
    // Files side by side in a pack come down together: a few ranged GETs per pack (the edit
    // left holes), where a read per file made 302.
    let (_, gets) = counting.take();
    assert!(gets <= 20, "{what}: the restore made {gets} GETs");
    assert!(
        read_tree(&target) == edited,
        "{what}: the restored tree differs"
    );
}

#[test]
fn a_backup_of_small_files_fills_shared_packs_and_restores_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    block_on(backup_then_restore(&store, &FolderBucket, "folder bucket"));
}

#[tokio::test]
async fn a_backup_of_small_files_fills_shared_packs_on_s3() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("batch").await;
        let store = server.store_url("batch", "b/");
        backup_then_restore(&store, &http(), &format!("{kind:?}")).await;
    }
}

/// A source that fails after `fail_after` bytes, or that says it holds more than it gives.
struct Flaky {
    inner: Generated,
    given: u64,
    fail_after: Option<u64>,
    declared: Option<u64>,
}

impl Source for Flaky {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.fail_after.is_some_and(|at| self.given >= at) {
            return Err(Error::Config("the disk went away".into()));
        }
        let n = self.inner.fill(buf);
        self.given += n as u64;
        Ok(n)
    }

    fn declared_len(&self) -> Option<u64> {
        self.declared
    }
}

/// Files handed over in order; what became of each.
struct Listed {
    files: Vec<(String, Flaky)>,
    stored: Vec<(String, FileReport)>,
    failed: Vec<(String, Error)>,
    progress: u64,
}

impl FileBatch for Listed {
    type Source = Flaky;

    fn next_file(&mut self) -> Option<(Vec<u8>, Flaky)> {
        (!self.files.is_empty()).then(|| {
            let (key, source) = self.files.remove(0);
            (key.into_bytes(), source)
        })
    }

    fn records(&mut self, key: &[u8], _report: &FileReport) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let key = String::from_utf8(key.to_vec()).unwrap();
        vec![(format!("seen/{key}").into_bytes(), Some(b"yes".to_vec()))]
    }

    fn stored(&mut self, key: &[u8], report: &FileReport) {
        let key = String::from_utf8(key.to_vec()).unwrap();
        self.stored.push((key, report.clone()));
    }

    fn failed(&mut self, key: &[u8], error: &Error) {
        let key = String::from_utf8(key.to_vec()).unwrap();
        self.failed.push((key, error.clone()));
    }

    fn progress(&mut self, _key: &[u8], _progress: FileProgress) {
        self.progress += 1;
    }
}

fn file(seed: u64, len: u64) -> Flaky {
    Flaky {
        inner: Generated::new(seed, len),
        given: 0,
        fail_after: None,
        declared: Some(len),
    }
}

/// The bytes of file `key`, read back.
fn read_back(session: &Session, key: &str) -> Vec<u8> {
    let mut sink = Vec::new();
    let found = block_on(session.get_file(
        key.as_bytes(),
        &mut bucketsync::files::WriteSink(&mut sink),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_| {},
    ))
    .unwrap();
    assert!(found, "{key} is not stored");
    sink
}

fn generated(seed: u64, len: u64) -> Vec<u8> {
    let mut out = vec![0u8; len as usize];
    Generated::new(seed, len).fill(&mut out);
    out
}

#[test]
fn a_failing_source_drops_its_file_only_and_a_key_given_twice_keeps_the_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "a");
    a.put("broken", "what it held before").unwrap();
    let mut batch = Listed {
        files: vec![
            ("one".into(), file(1, 30_000)),
            (
                "broken".into(),
                Flaky {
                    fail_after: Some(2 << 20),
                    ..file(2, 5 << 20)
                },
            ),
            ("twice".into(), file(3, 20_000)),
            (
                "short".into(),
                Flaky {
                    declared: Some(50_000),
                    ..file(4, 40_000)
                },
            ),
            ("tiny".into(), file(5, 100)),
            ("twice".into(), file(6, 25_000)),
            ("big".into(), file(7, 3 << 20)),
        ],
        stored: Vec::new(),
        failed: Vec::new(),
        progress: 0,
    };
    let totals =
        block_on(a.put_files(&mut batch, &FolderBucket, None, DEFAULT_CONCURRENCY)).unwrap();
    let failed: Vec<&str> = batch.failed.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(failed, ["broken", "short"], "{:?}", batch.failed);
    assert!(batch
        .failed
        .iter()
        .all(|(_, e)| matches!(e, Error::Config(_))));
    let mut stored: Vec<&str> = batch.stored.iter().map(|(k, _)| k.as_str()).collect();
    stored.sort_unstable();
    assert_eq!(stored, ["big", "one", "tiny", "twice"]);
    assert!(batch.progress > 0);
    assert!(totals.packs <= 2, "{totals:?}");

    assert_eq!(read_back(&a, "one"), generated(1, 30_000));
    assert_eq!(read_back(&a, "twice"), generated(6, 25_000));
    assert_eq!(read_back(&a, "tiny"), generated(5, 100));
    assert_eq!(read_back(&a, "big"), generated(7, 3 << 20));
    // The failed files left their keys as they were; the stored ones' records came with the
    // batch's own.
    assert_eq!(
        a.get(b"broken").unwrap().as_deref(),
        Some(&b"what it held before"[..])
    );
    assert_eq!(a.get(b"short").unwrap(), None);
    for key in ["one", "twice", "tiny", "big"] {
        assert_eq!(
            a.get(format!("seen/{key}").as_bytes()).unwrap().as_deref(),
            Some(&b"yes"[..])
        );
    }
    assert_eq!(a.get(b"seen/broken").unwrap(), None);

    // Another device reads them all after a sync.
    block_on(a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    let b = open(&store, &key, "b");
    block_on(b.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    assert_eq!(read_back(&b, "twice"), generated(6, 25_000));
    assert_eq!(read_back(&b, "big"), generated(7, 3 << 20));
}

/// A restore whose pack is gone restores the files of the other packs, and names each file of
/// the missing one as not found.
#[test]
fn a_restore_missing_a_pack_names_its_files_and_restores_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let source = dir.path().join("tree");
    let tree = small_tree(&source, 120);
    let a = open(&store, &key, "a");
    block_on(async {
        let report = a
            .backup(
                &source,
                "tree",
                &BackupOptions::default(),
                &FolderBucket,
                DEFAULT_CONCURRENCY,
                |_, _| {},
            )
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        assert_eq!(report.packs, 2, "chunks go to either of two packs");
        a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
    });
    // The smaller pack goes.
    let packs: Vec<std::path::PathBuf> = bucketsync_suite::bucket_files(&bucket)
        .into_iter()
        .filter(|(rel, _)| rel.split('/').nth(1) == Some("p"))
        .map(|(rel, _)| bucket.join(rel))
        .collect();
    assert_eq!(packs.len(), 2, "{packs:?}");
    let gone = packs
        .iter()
        .min_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    std::fs::remove_file(gone).unwrap();

    let b = open(&store, &key, "b");
    let target = dir.path().join("restored");
    let restored = block_on(async {
        b.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
        b.restore(
            "tree",
            &target,
            &RestoreOptions::default(),
            &FolderBucket,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        )
        .await
        .unwrap()
    });
    assert!(!restored.errors.is_empty(), "a pack is gone");
    assert!(restored
        .errors
        .iter()
        .all(|(_, e)| e.category() == bucketsync::Category::NotFound));
    assert_eq!(restored.files_written + restored.errors.len() as u64, 122);
    // What was written is whole; what failed is not there at all.
    let back = read_tree(&target);
    for (rel, bytes) in &back {
        assert!(tree[rel] == *bytes, "{rel} came back different");
    }
    assert_eq!(back.len() as u64, restored.files_written);
    for (rel, _) in &restored.errors {
        assert!(!back.contains_key(rel), "{rel} failed and is there");
    }
}

/// A batch whose session closes while a file's records are being made (as another thread
/// closing the vault would): the file whose records could not be written is told failed, not
/// stored, and the batch ends with the error.
struct Closing<'s> {
    session: &'s Session,
    files: Vec<(String, Flaky)>,
    stored: Vec<String>,
    failed: Vec<String>,
}

impl FileBatch for Closing<'_> {
    type Source = Flaky;

    fn next_file(&mut self) -> Option<(Vec<u8>, Flaky)> {
        (!self.files.is_empty()).then(|| {
            let (key, source) = self.files.remove(0);
            (key.into_bytes(), source)
        })
    }

    fn records(&mut self, key: &[u8], _report: &FileReport) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        self.session.close().unwrap();
        vec![(
            format!("seen/{}", String::from_utf8_lossy(key)).into_bytes(),
            None,
        )]
    }

    fn stored(&mut self, key: &[u8], _report: &FileReport) {
        self.stored.push(String::from_utf8(key.to_vec()).unwrap());
    }

    fn failed(&mut self, key: &[u8], _error: &Error) {
        self.failed.push(String::from_utf8(key.to_vec()).unwrap());
    }
}

#[test]
fn a_file_whose_records_cannot_be_written_is_told_failed_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "a");
    let mut batch = Closing {
        session: &a,
        files: vec![
            ("one".into(), file(1, 30_000)),
            ("two".into(), file(2, 30_000)),
        ],
        stored: Vec::new(),
        failed: Vec::new(),
    };
    let outcome = block_on(a.put_files(&mut batch, &FolderBucket, None, DEFAULT_CONCURRENCY));
    assert!(outcome.is_err(), "the vault closed mid-batch");
    assert!(batch.stored.is_empty(), "{:?}", batch.stored);
    let mut failed = batch.failed.clone();
    failed.sort();
    assert_eq!(failed, ["one", "two"]);
}

/// Files that share chunks (copies of one file, a file that repeats a chunk) are restored
/// from one read of each chunk: a tree of copies costs no more GETs than its distinct files.
#[test]
fn copies_in_a_tree_are_read_once_and_restored_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let source = dir.path().join("tree");
    let mut tree = BTreeMap::new();
    // 200 copies of five files, and one file that is one of them twice over.
    for i in 0..200u64 {
        let rel = format!("d{}/copy{i}", i % 3);
        let bytes = generated(i % 5, 20_000 + (i % 5) * 1_000);
        std::fs::create_dir_all(source.join(format!("d{}", i % 3))).unwrap();
        std::fs::write(source.join(&rel), &bytes).unwrap();
        tree.insert(rel, bytes);
    }
    let mut twice = generated(1, 600_000);
    twice.extend_from_within(..);
    std::fs::write(source.join("d0/twice"), &twice).unwrap();
    tree.insert("d0/twice".into(), twice);
    let a = open(&store, &key, "a");
    let b = open(&store, &key, "b");
    let counting = Counting::new(&FolderBucket);
    let target = dir.path().join("restored");
    let restored = block_on(async {
        let report = a
            .backup(
                &source,
                "copies",
                &BackupOptions::default(),
                &FolderBucket,
                DEFAULT_CONCURRENCY,
                |_, _| {},
            )
            .await
            .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
        b.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
        b.restore(
            "copies",
            &target,
            &RestoreOptions::default(),
            &counting,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        )
        .await
        .unwrap()
    });
    assert!(restored.errors.is_empty(), "{:?}", restored.errors);
    assert_eq!(restored.files_written, 201);
    let (_, gets) = counting.take();
    assert!(
        gets <= 4,
        "the restore made {gets} GETs for 6 distinct files"
    );
    assert!(read_tree(&target) == tree, "the restored tree differs");
}

#[test]
fn an_upload_of_many_files_leaves_the_state_snapshot_to_the_first_save_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let state = dir.path().join("a.state");
    let journal = dir.path().join("a.state.journal");
    let a = Session::open(SessionOptions {
        device: Some("a"),
        durability: Durability {
            flush_interval_ms: 0,
            compact_min_bytes: 64 << 10,
        },
        ..SessionOptions::new(
            &store,
            &key,
            StateLocation::File {
                path: &state,
                wait: false,
            },
        )
    })
    .unwrap();
    a.put("first", "v").unwrap();
    let snapshot = std::fs::read(&state).unwrap();

    // 400 files of 2 KiB, kept in their records: 800 KiB through the journal, twelve times the
    // bound, and the snapshot is not rewritten while they go up.
    let mut batch = Listed {
        files: (0..400)
            .map(|i| (format!("f{i:03}"), file(i, 2_000)))
            .collect(),
        stored: Vec::new(),
        failed: Vec::new(),
        progress: 0,
    };
    block_on(a.put_files(&mut batch, &FolderBucket, None, DEFAULT_CONCURRENCY)).unwrap();
    assert_eq!(batch.stored.len(), 400, "{:?}", batch.failed);
    assert!(
        std::fs::read(&state).unwrap() == snapshot,
        "the snapshot was rewritten during the upload"
    );
    let journal_len = std::fs::metadata(&journal).unwrap().len();
    assert!(journal_len > 800_000, "journal {journal_len}");

    // The first save after it folds the journal into the snapshot.
    a.put("after", "v").unwrap();
    assert!(
        std::fs::read(&state).unwrap() != snapshot,
        "the snapshot was not rewritten"
    );
    let journal_len = std::fs::metadata(&journal).unwrap().len();
    assert!(journal_len < 64 << 10, "journal {journal_len}");
    a.close().unwrap();
    let again = Session::open(SessionOptions::new(
        &store,
        &key,
        StateLocation::File {
            path: &state,
            wait: false,
        },
    ))
    .unwrap();
    assert_eq!(read_back(&again, "f399"), generated(399, 2_000));
    assert_eq!(
        again.get(b"seen/f000").unwrap().as_deref(),
        Some(&b"yes"[..])
    );
}
