//! Files: stored in chunks and packs, read back between devices, deduplicated, checked; on the
//! local-folder bucket, then the S3 part against SeaweedFS and s3s-fs.

use std::path::Path;

use bucketsync::driver::{Transport, DEFAULT_CONCURRENCY};
use bucketsync::files::FileProgress;
use bucketsync::folder::FolderBucket;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::transfer::FileReport;
use bucketsync::{Category, Result, VaultKey};
use bucketsync_suite::generated::{Compare, Generated};
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use futures::executor::block_on;

fn open(store: &str, key: &VaultKey, dir: &Path, name: &str) -> Session {
    Session::open(SessionOptions {
        credentials: Some(TestServer::credentials()),
        ..SessionOptions::new(
            store,
            key,
            StateLocation::File {
                path: &dir.join(format!("{name}.state")),
                wait: false,
            },
        )
    })
    .unwrap()
}

async fn put<T: Transport>(
    session: &Session,
    t: &T,
    key: &str,
    source: Generated,
) -> Result<FileReport> {
    let mut source = source;
    session
        .put_file(key, &mut source, t, None, DEFAULT_CONCURRENCY, |_| {})
        .await
}

async fn get_compare<T: Transport>(
    session: &Session,
    t: &T,
    key: &str,
    expected: Generated,
    len: u64,
) {
    let mut sink = Compare::new(expected);
    let found = session
        .get_file(key.as_bytes(), &mut sink, t, DEFAULT_CONCURRENCY, |_| {})
        .await
        .unwrap();
    assert!(found);
    sink.assert_whole(len);
}

async fn sync<T: Transport>(session: &Session, t: &T) {
    let report = session.sync(t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
    assert!(report.errors.is_empty(), "{report}");
}

const MIB: u64 = 1 << 20;

#[test]
fn a_file_goes_between_devices_with_its_chunks_checked_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    let b = open(&store, &key, dir.path(), "b");
    let t = FolderBucket;
    block_on(async {
        let len = 40 * MIB + 12_345;
        let mut seen = Vec::new();
        let mut source = Generated::new(1, len);
        let report = a
            .put_file(
                "photos/cat.jpg",
                &mut source,
                &t,
                None,
                4,
                |p: FileProgress| seen.push(p),
            )
            .await
            .unwrap();
        assert_eq!(report.size, len);
        assert!(report.chunks >= 5 && report.chunks <= 80, "{report:?}");
        assert_eq!(report.chunks_uploaded, report.chunks);
        assert_eq!(report.chunks_reused, 0);
        // 40 MiB in packs of at least 16 MiB (a chunk may take one past it), spread over two open
        // packs that both end part-full: two to four PUTs.
        assert!((2..=4).contains(&report.packs), "{report:?}");
        // The packs, and one LIST: a process's first upload looks for packs an interrupted
        // one left.
        assert_eq!(report.requests, report.packs + 1);
        assert!(
            report.bytes_sent > len && report.bytes_sent < len + len / 100,
            "{report:?}"
        );
        assert_eq!(seen.last().unwrap().requests_done, report.requests);
        assert!(seen.windows(2).all(|w| w[0].bytes_done <= w[1].bytes_done));
        assert_eq!(seen.iter().map(|p| p.bytes_done).max(), Some(len));

        // The record is a record: it syncs like one.
        sync(&a, &t).await;
        sync(&b, &t).await;
        let info = b
            .read(|e| e.file_info(b"photos/cat.jpg"))
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(info.size, len);
        assert_eq!(info.chunks, report.chunks);
        get_compare(&b, &t, "photos/cat.jpg", Generated::new(1, len), len).await;

        // The same bytes stored again by the other device: nothing goes up but the record
        // (the one request is its process's first look for packs an interrupted upload left).
        let again = put(&b, &t, "backup/cat.jpg", Generated::new(1, len))
            .await
            .unwrap();
        assert_eq!(
            (
                again.chunks_uploaded,
                again.packs,
                again.requests,
                again.bytes_sent
            ),
            (0, 0, 1, 0),
            "{again:?}"
        );
        assert_eq!(again.chunks_reused, report.chunks);

        // One byte changed in the middle: at most two chunks and three PUTs.
        let edited = put(
            &b,
            &t,
            "photos/cat.jpg",
            Generated::new(1, len).edited(len / 2, 7),
        )
        .await
        .unwrap();
        assert!(
            edited.chunks_uploaded <= 2 && edited.requests <= 3,
            "{edited:?}"
        );
        assert!(edited.bytes_sent <= 16 * MIB + MIB, "{edited:?}");
        get_compare(
            &b,
            &t,
            "photos/cat.jpg",
            Generated::new(1, len).edited(len / 2, 7),
            len,
        )
        .await;
        sync(&b, &t).await;
        sync(&a, &t).await;
        get_compare(
            &a,
            &t,
            "photos/cat.jpg",
            Generated::new(1, len).edited(len / 2, 7),
            len,
        )
        .await;
    });
}

#[test]
fn small_files_live_in_their_record_and_odd_keys_say_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    let t = FolderBucket;
    block_on(async {
        for len in [0, 1, 4096] {
            let name = format!("small/{len}");
            let report = put(&a, &t, &name, Generated::new(2, len)).await.unwrap();
            assert_eq!(
                (report.chunks, report.packs, report.requests),
                (0, 0, 0),
                "{report:?}"
            );
            get_compare(&a, &t, &name, Generated::new(2, len), len).await;
        }
        let just_over = put(&a, &t, "small/4097", Generated::new(2, 4097))
            .await
            .unwrap();
        assert_eq!((just_over.chunks, just_over.packs), (1, 1));
        get_compare(&a, &t, "small/4097", Generated::new(2, 4097), 4097).await;
        assert!(!bucketsync_suite::bucket_files(&dir.path().join("bucket")).is_empty());

        let mut sink = Compare::new(Generated::new(0, 0));
        let absent = a
            .get_file(b"nothing here", &mut sink, &t, 2, |_| {})
            .await
            .unwrap();
        assert!(!absent);
        a.put("plain", "a record").unwrap();
        let err = a
            .get_file(b"plain", &mut sink, &t, 2, |_| {})
            .await
            .unwrap_err();
        assert_eq!(err.category(), Category::Config, "{err}");
        assert!(err.to_string().contains("is a record, not a file"), "{err}");
        assert_eq!(
            a.read(|e| e.file_info(b"nothing here")).unwrap().unwrap(),
            None
        );
    });
}

#[test]
fn a_damaged_or_swapped_chunk_fails_that_file_only_and_the_bucket_holds_no_plaintext() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let store = format!("file://{}", bucket.display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    let t = FolderBucket;
    block_on(async {
        // A file whose bytes are easy to spot if they were stored in the clear.
        let marker = b"PLAINTEXT-MARKER-0123456789".repeat(100_000);
        let packs = || -> Vec<std::path::PathBuf> {
            bucketsync_suite::bucket_files(&bucket)
                .into_iter()
                .filter(|(name, _)| name.contains("/p/"))
                .map(|(name, _)| bucket.join(name))
                .collect()
        };
        let mut source = bucketsync::files::ReadSource::new(&marker[..], None);
        a.put_file("secret-name.txt", &mut source, &t, None, 2, |_| {})
            .await
            .unwrap();
        let marker_packs = packs();
        put(&a, &t, "other", Generated::new(3, 3 * MIB))
            .await
            .unwrap();
        let other_packs: Vec<_> = packs()
            .into_iter()
            .filter(|p| !marker_packs.contains(p))
            .collect();
        assert!(!marker_packs.is_empty() && !other_packs.is_empty());
        sync(&a, &t).await;
        for (name, bytes) in bucketsync_suite::bucket_files(&bucket) {
            assert!(!name.contains("secret-name"), "{name}");
            let found = bytes.windows(16).any(|w| w == &marker[..16]);
            assert!(!found, "plaintext in {name}");
            assert!(
                !bytes.windows(11).any(|w| w == b"secret-name"),
                "file name in {name}"
            );
            // Nothing in a pack tells where its chunks start or what they are: the only
            // envelope header in clear is the index's, at the end (chunks are sealed bare).
            if name.contains("/p/") {
                let vault = key.vault_id().0;
                let headers = |kind: u8| {
                    bytes
                        .windows(22)
                        .filter(|w| &w[..4] == b"BKSY" && w[5] == kind && w[6..] == vault)
                        .count()
                };
                assert_eq!((headers(6), headers(7)), (0, 1), "{name}");
            }
        }

        // Flip one byte in the middle of the marker file's largest pack.
        let marker_pack = marker_packs
            .iter()
            .max_by_key(|p| std::fs::metadata(p).unwrap().len())
            .unwrap()
            .clone();
        let mut bytes = std::fs::read(&marker_pack).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 1;
        std::fs::write(&marker_pack, &bytes).unwrap();
        let mut sink = Vec::new();
        let err = a
            .get_file(
                b"secret-name.txt",
                &mut bucketsync::files::WriteSink(&mut sink),
                &t,
                2,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.category(), Category::Corrupt, "{err}");
        assert!(sink.is_empty(), "no unchecked byte was handed out");
        get_compare(&a, &t, "other", Generated::new(3, 3 * MIB), 3 * MIB).await;

        // Swap the two packs' contents: each chunk is found where the other file's was.
        let other_pack = other_packs[0].clone();
        let (x, y) = (
            std::fs::read(&marker_pack).unwrap(),
            std::fs::read(&other_pack).unwrap(),
        );
        std::fs::write(&marker_pack, &y).unwrap();
        std::fs::write(&other_pack, &x).unwrap();
        let mut sink = Vec::new();
        let err = a
            .get_file(
                b"other",
                &mut bucketsync::files::WriteSink(&mut sink),
                &t,
                2,
                |_| {},
            )
            .await
            .unwrap_err();
        assert_eq!(err.category(), Category::Corrupt, "{err}");
    });
}

#[tokio::test]
async fn a_256_mib_file_goes_between_devices_on_s3_and_a_second_copy_costs_nothing() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("files").await;
        let store = server.store_url("files", "big/");
        let key = VaultKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let t = http();
        let a = open(&store, &key, dir.path(), "a");
        let b = open(&store, &key, dir.path(), "b");
        let len = 256 * MIB;
        let report = put(&a, &t, "video.mp4", Generated::new(9, len))
            .await
            .unwrap();
        assert_eq!(report.size, len);
        // One PUT per pack of about 16 MiB (two are left part-full at the end), and a
        // process's first upload lists its packs and its multipart uploads in progress; the
        // bench measures requests per GiB (bar 70).
        assert!(report.packs <= 256 / 16 + 2, "{kind:?}: {report:?}");
        assert_eq!(report.requests, report.packs + 2, "{kind:?}: {report:?}");
        sync(&a, &t).await;
        sync(&b, &t).await;
        let mut sink = Compare::new(Generated::new(9, len));
        let mut gets = 0;
        let found = b
            .get_file(b"video.mp4", &mut sink, &t, DEFAULT_CONCURRENCY, |p| {
                gets = p.requests_done
            })
            .await
            .unwrap();
        assert!(found);
        sink.assert_whole(len);
        // One GET per pack (the bench measures requests per GiB).
        assert!(
            gets <= report.packs,
            "{kind:?}: {gets} GETs for {} packs",
            report.packs
        );
        // A second device storing the same bytes sends none: its first upload's two listings
        // are all it costs.
        let copy = put(&b, &t, "copy.mp4", Generated::new(9, len))
            .await
            .unwrap();
        assert_eq!(
            (copy.chunks_uploaded, copy.requests, copy.bytes_sent),
            (0, 2, 0),
            "{kind:?}: {copy:?}"
        );
        // What the bucket holds: manifests, segments, and the packs.
        let names = server
            .list_all(&bucketsync::Store::parse(&store).unwrap(), "")
            .await;
        assert!(names.iter().any(|n| n.contains("/p/")), "{names:?}");
    }
}

/// A source that fails after `after` bytes, like a disk or a process going away mid-file.
struct FailingAfter {
    inner: Generated,
    after: u64,
    read: u64,
}

impl bucketsync::files::Source for FailingAfter {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        let left = self.after - self.read;
        if left == 0 {
            return Err(bucketsync::Error::Config("the disk went away".into()));
        }
        let n = buf.len().min(left as usize);
        let n = self.inner.fill(&mut buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Stores 56 MiB from a source that fails at 48 MiB, then the whole file from a new session
/// on the same state (a new process): the packs the first one stored are found and not sent
/// again, and the file reads back whole.
async fn interrupted_then_resumed<T: Transport>(store: &str, t: &T) {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let len = 56 * MIB;
    {
        let a = open(store, &key, dir.path(), "a");
        let mut source = FailingAfter {
            inner: Generated::new(5, len),
            after: 48 * MIB,
            read: 0,
        };
        let err = a
            .put_file("movie", &mut source, t, None, 2, |_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the disk went away"), "{err}");
        assert_eq!(
            a.get(b"movie").unwrap(),
            None,
            "a failed upload stores no record"
        );
        a.close().unwrap();
    }
    // A new process: nothing in memory says what the first one stored.
    let a = open(store, &key, dir.path(), "a");
    let report = put(&a, t, "movie", Generated::new(5, len)).await.unwrap();
    // Chunks go into the packs in batches of 8 MiB, so at least 39 MiB were in the two open
    // packs when the source failed: one was full (16 MiB), and was stored before more was
    // read. Its chunks are not sent again.
    assert!(report.chunks_reused >= 2, "{report:?}");
    assert!(report.bytes_sent + 15 * MIB <= len, "{report:?}");
    get_compare(&a, t, "movie", Generated::new(5, len), len).await;
    // The same process does not list again.
    let again = put(&a, t, "movie 2", Generated::new(6, 5 * MIB))
        .await
        .unwrap();
    assert_eq!(again.requests, again.packs, "{again:?}");
}

#[test]
fn an_interrupted_upload_is_resumed_by_a_new_process_without_sending_its_packs_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    block_on(interrupted_then_resumed(&store, &FolderBucket));
}

#[tokio::test]
async fn an_interrupted_upload_is_resumed_on_s3() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("resume").await;
        interrupted_then_resumed(&server.store_url("resume", "r/"), &http()).await;
    }
}

/// A transport that counts the body bytes of the answers to GETs.
struct Counting<'t, T> {
    inner: &'t T,
    got: std::sync::atomic::AtomicU64,
}

impl<T: Transport> Transport for Counting<'_, T> {
    async fn send(&self, request: bucketsync::Request) -> Result<bucketsync::Response> {
        let get = request.method == bucketsync::Method::Get;
        let response = self.inner.send(request).await?;
        if get {
            self.got.fetch_add(
                response.body.len() as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        Ok(response)
    }

    async fn sleep(&self, ms: u64) {
        self.inner.sleep(ms).await;
    }
}

/// The partial files beside `target`.
fn partials(target: &Path) -> Vec<std::path::PathBuf> {
    let name = target.file_name().unwrap().to_str().unwrap();
    let mut found: Vec<_> = std::fs::read_dir(target.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_str().unwrap();
            n.starts_with(&format!(".{name}.")) && n.ends_with(".part")
        })
        .collect();
    found.sort();
    found
}

/// Reads a 40 MiB file to a path and cancels it half-way: nothing at the path, a partial file
/// beside it. The next read resumes from the partial file's last whole chunk and fetches only
/// the rest; then a partial file damaged early on resumes from before the damage. Both end with
/// the exact file at the path and no partial file left.
async fn read_interrupted_then_resumed<T: Transport>(store: &str, t: &T) {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let len = 40 * MIB;
    let a = open(store, &key, dir.path(), "a");
    put(&a, t, "big.bin", Generated::new(11, len))
        .await
        .unwrap();
    let mut expected = vec![0u8; len as usize];
    Generated::new(11, len).fill(&mut expected);
    let out = tempfile::tempdir().unwrap();

    for damage in [None, Some(MIB + 5)] {
        let target = out.path().join(format!("big {damage:?}.bin"));
        let err = a
            .get_file_to_path(b"big.bin", &target, t, 2, |p| {
                if p.bytes_done >= 20 * MIB {
                    a.cancel_sync();
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, bucketsync::Error::Cancelled), "{err}");
        assert!(!target.exists());
        let partial = partials(&target);
        assert_eq!(partial.len(), 1, "{partial:?}");
        let kept = std::fs::metadata(&partial[0]).unwrap().len();
        assert!(kept >= 20 * MIB, "{kept}");
        if let Some(at) = damage {
            let mut bytes = std::fs::read(&partial[0]).unwrap();
            bytes[at as usize] ^= 1;
            std::fs::write(&partial[0], bytes).unwrap();
        }

        let counting = Counting {
            inner: t,
            got: 0.into(),
        };
        let mut first = None;
        let found = a
            .get_file_to_path(b"big.bin", &target, &counting, 2, |p| {
                first.get_or_insert(p.bytes_done);
            })
            .await
            .unwrap();
        assert!(found);
        assert!(std::fs::read(&target).unwrap() == expected, "{damage:?}");
        assert_eq!(partials(&target), Vec::<std::path::PathBuf>::new());
        let got = counting.got.into_inner();
        match damage {
            // Resumed within one chunk (at most 8 MiB) of where it stopped: at least 12 MiB of
            // the 20 it had are not fetched again.
            None => {
                assert!(first.unwrap() >= 12 * MIB, "{first:?}");
                assert!(got <= len - 12 * MIB, "fetched {got} bytes again");
            }
            // It resumes at the start of the chunk holding the damaged byte, at most 1 MiB + 5
            // in: everything from there on is fetched.
            Some(_) => assert!(got >= len - 2 * MIB, "fetched only {got} bytes"),
        }
    }
    // A failure that is not worth resuming removes the partial file: the key holds a record,
    // not a file.
    a.put("plain", "just a record").unwrap();
    let target = out.path().join("plain.bin");
    let err = a
        .get_file_to_path(b"plain", &target, t, 2, |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.category(), Category::Config, "{err}");
    assert!(!target.exists());
    assert_eq!(partials(&target), Vec::<std::path::PathBuf>::new());
    // An absent key writes nothing.
    let absent = out.path().join("absent.bin");
    assert!(!a
        .get_file_to_path(b"absent", &absent, t, 2, |_| {})
        .await
        .unwrap());
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 2);
}

#[test]
fn an_interrupted_read_to_a_path_resumes_at_a_chunk_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    block_on(read_interrupted_then_resumed(&store, &FolderBucket));
}

#[tokio::test]
async fn an_interrupted_read_resumes_on_s3() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("reread").await;
        read_interrupted_then_resumed(&server.store_url("reread", "r/"), &http()).await;
    }
}

/// A file opened for reading at any offset: reads anywhere return the file's bytes, fetching
/// only what they need (sequential small reads are served from the read-ahead), and the reader
/// keeps reading the version it opened when the key is overwritten.
async fn random_access<T: Transport>(store: &str, t: &T) {
    let dir = tempfile::tempdir().unwrap();
    let key = VaultKey::generate().unwrap();
    let a = open(store, &key, dir.path(), "a");
    let len = 20 * MIB;
    put(&a, t, "video", Generated::new(21, len)).await.unwrap();
    let mut expected = vec![0u8; len as usize];
    Generated::new(21, len).fill(&mut expected);
    assert!(a.open_file(b"absent").unwrap().is_none());
    let mut reader = a.open_file(b"video").unwrap().unwrap();
    assert_eq!(reader.size(), len);
    let counting = Counting {
        inner: t,
        got: 0.into(),
    };
    // Here and there, across chunk and pack boundaries, and past the end.
    for (offset, n) in [
        (0, 10),
        (len - 5, 100),
        (7 * MIB + 12_345, 3 << 20),
        (MIB / 2, 1),
        (len, 10),
        (len + 7, 10),
        (15 * MIB, 6 << 20),
    ] {
        let got = reader.read_at(&a, offset, n, &counting, 4).await.unwrap();
        let from = offset.min(len) as usize;
        let to = (offset + n as u64).min(len) as usize;
        assert!(got == expected[from..to], "{offset} {n}");
    }
    // 12 MiB in 64 KiB reads: one fetch per 4 MiB of read-ahead, not one per read.
    let before = counting.got.load(std::sync::atomic::Ordering::Relaxed);
    let mut at = 2 * MIB;
    while at < 14 * MIB {
        let got = reader
            .read_at(&a, at, 64 << 10, &counting, 4)
            .await
            .unwrap();
        assert!(
            got == expected[at as usize..at as usize + (64 << 10)],
            "{at}"
        );
        at += 64 << 10;
    }
    let fetched = counting.got.load(std::sync::atomic::Ordering::Relaxed) - before;
    assert!(
        fetched < 40 * MIB,
        "fetched {fetched} bytes for 12 MiB read"
    );
    // Another version under the key: the open reader still reads the one it opened.
    put(&a, t, "video", Generated::new(22, len)).await.unwrap();
    let got = reader.read_at(&a, 19 * MIB, 1000, t, 4).await.unwrap();
    assert!(got == expected[19 * MIB as usize..19 * MIB as usize + 1000]);
    // A record that is not a file.
    a.put("plain", "x").unwrap();
    let err = a.open_file(b"plain").unwrap_err();
    assert_eq!(err.category(), Category::Config, "{err}");
}

#[test]
fn a_file_is_read_at_any_offset() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    block_on(random_access(&store, &FolderBucket));
}

#[tokio::test]
async fn a_file_is_read_at_any_offset_on_s3() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("seek").await;
        random_access(&server.store_url("seek", "r/"), &http()).await;
    }
}

/// Packs of 32 MiB and more go up to S3 as multipart uploads, in equal parts sent as each
/// pack fills; the file reads back whole, and no upload is left in progress. A folder store
/// gets whole packs.
#[tokio::test]
async fn big_packs_go_up_in_parts_on_s3() {
    let len = 80 * MIB;
    let pack_size = 32 << 20;
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("parts").await;
        let store = server.store_url("parts", "mp/");
        let dir = tempfile::tempdir().unwrap();
        let key = VaultKey::generate().unwrap();
        let a = open(&store, &key, dir.path(), "a");
        let t = http();
        let mut source = Generated::new(31, len);
        let report = a
            .put_file("big", &mut source, &t, Some(pack_size), 4, |_| {})
            .await
            .unwrap();
        // 80 MiB in packs of at least 32 MiB, two open at a time: two to four packs, in parts
        // of 8 MiB (a part-full pack may be one part, or a plain PUT when it never reached
        // 8 MiB), each multipart pack costing a start and a completion besides its parts:
        // at least 10 parts, and at most one part more per pack plus those two, and the first
        // upload's listings of packs and of uploads in progress.
        assert!((2..=4).contains(&report.packs), "{kind:?}: {report:?}");
        let parts_at_least = len / (8 * MIB);
        assert!(
            report.requests >= parts_at_least
                && report.requests <= parts_at_least + 3 * report.packs + 2,
            "{kind:?}: {report:?}"
        );
        get_compare(&a, &t, "big", Generated::new(31, len), len).await;
        // Every pack is a whole object; nothing is left half-uploaded.
        let names = server
            .list_all(&bucketsync::Store::parse(&store).unwrap(), "")
            .await;
        let packs = names.iter().filter(|n| n.contains("/p/")).count() as u64;
        assert_eq!(packs, report.packs, "{kind:?}: {names:?}");
        let uploads = server
            .signed(
                bucketsync::Method::Get,
                format!("{}/parts?uploads", server.endpoint),
                Vec::new(),
            )
            .await
            .unwrap();
        // s3s-fs does not list multipart uploads (501); SeaweedFS does, and lists one started
        // by hand (so the check above it can fail).
        if uploads.status != 501 || kind != ServerKind::S3sFs {
            assert_eq!(uploads.status, 200, "{kind:?}");
            let listing = String::from_utf8_lossy(&uploads.body);
            assert!(!listing.contains("<UploadId>"), "{kind:?}: {listing}");
            let url = format!("{}/parts/left-over?uploads", server.endpoint);
            let started = server
                .signed(bucketsync::Method::Post, url, Vec::new())
                .await
                .unwrap();
            assert_eq!(started.status, 200, "{kind:?}");
            let url = format!("{}/parts?uploads", server.endpoint);
            let listed = server
                .signed(bucketsync::Method::Get, url, Vec::new())
                .await
                .unwrap();
            assert!(String::from_utf8_lossy(&listed.body).contains("<UploadId>"));

            // An upload that fails half-way leaves its packs' multipart uploads in progress;
            // the next process's first upload completes those it noted (see the kill test
            // below) and aborts the rest (the one started by hand).
            let uploads_of_packs = || async {
                let url = format!("{}/parts?uploads", server.endpoint);
                let listed = server
                    .signed(bucketsync::Method::Get, url, Vec::new())
                    .await
                    .unwrap();
                let text = String::from_utf8_lossy(&listed.body).into_owned();
                text.matches("/p/").count()
            };
            {
                let mut source = FailingAfter {
                    inner: Generated::new(33, len),
                    after: 40 * MIB,
                    read: 0,
                };
                let err = a
                    .put_file("broken", &mut source, &t, Some(pack_size), 4, |_| {})
                    .await
                    .unwrap_err();
                assert!(err.to_string().contains("the disk went away"), "{err}");
                a.close().unwrap();
            }
            assert!(
                uploads_of_packs().await > 0,
                "parts of the failed upload are listed"
            );
            let a = open(&store, &key, dir.path(), "a");
            put(&a, &t, "small", Generated::new(34, 100_000))
                .await
                .unwrap();
            assert_eq!(
                uploads_of_packs().await,
                0,
                "completed or aborted by the next process"
            );
        }
    }
}

/// A transport whose part uploads after the first `parts` never answer (a process frozen, then
/// killed), counting the parts answered.
struct PartsThenSilence<'t, T> {
    inner: &'t T,
    parts: u64,
    sent: std::sync::atomic::AtomicU64,
    answered: std::sync::atomic::AtomicU64,
}

impl<T: Transport> Transport for PartsThenSilence<'_, T> {
    async fn send(&self, request: bucketsync::Request) -> Result<bucketsync::Response> {
        use std::sync::atomic::Ordering::SeqCst;
        let part = request.url.contains("partNumber=");
        if part && self.sent.fetch_add(1, SeqCst) >= self.parts {
            return std::future::pending().await;
        }
        let response = self.inner.send(request).await;
        if part {
            self.answered.fetch_add(1, SeqCst);
        }
        response
    }

    async fn sleep(&self, ms: u64) {
        self.inner.sleep(ms).await;
    }
}

/// An upload of big packs (96 MiB in packs of 64 MiB: parts of 8 MiB, no pack whole yet) is
/// killed once five parts are stored: its task is never dropped, and the state is copied off
/// the disk as it is at that moment. A new process on that state completes the packs in parts
/// the first one left, does not send those parts again, and the file reads back whole; no
/// multipart upload is left in progress.
#[tokio::test]
async fn an_upload_killed_mid_multipart_resumes_without_sending_its_parts_again() {
    use std::sync::atomic::Ordering::SeqCst;
    let len = 96 * MIB;
    let pack_size = 64 << 20;
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("resume-parts").await;
        let store = server.store_url("resume-parts", "rp/");
        let dir = tempfile::tempdir().unwrap();
        let copy = tempfile::tempdir().unwrap();
        let key = VaultKey::generate().unwrap();
        let t = http();
        let freezing = PartsThenSilence {
            inner: &t,
            parts: 5,
            sent: 0.into(),
            answered: 0.into(),
        };
        let a = open(&store, &key, dir.path(), "a");
        let mut source = Generated::new(41, len);
        let mut upload =
            Box::pin(a.put_file("big", &mut source, &freezing, Some(pack_size), 4, |_| {}));
        let started = std::time::Instant::now();
        while freezing.answered.load(SeqCst) < 5 {
            assert!(
                started.elapsed().as_secs() < 120,
                "{kind:?}: five parts in two minutes"
            );
            let _ = tokio::time::timeout(std::time::Duration::from_millis(50), &mut upload).await;
        }
        // The last answer is handled (and its note saved) by the next poll.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(200), &mut upload).await;
        for name in ["a.state", "a.state.journal"] {
            std::fs::copy(dir.path().join(name), copy.path().join(name)).unwrap();
        }
        // Killed: nothing of the upload runs again, not even its drop.
        std::mem::forget(upload);
        let names = server
            .list_all(&bucketsync::Store::parse(&store).unwrap(), "")
            .await;
        assert!(
            !names.iter().any(|n| n.contains("/p/")),
            "{kind:?}: no pack was whole yet: {names:?}"
        );

        // A new process, on the state as the kill left it.
        let b = open(&store, &key, copy.path(), "a");
        let mut source = Generated::new(41, len);
        let report = b
            .put_file("big", &mut source, &t, Some(pack_size), 4, |_| {})
            .await
            .unwrap();
        eprintln!("{kind:?}: resumed: {report:?}");
        // Five parts of 8 MiB were stored, less a chunk cut by a part's end in each of the
        // two packs (at most 8 MiB each, 1 MiB on average).
        assert!(report.bytes_sent + 24 * MIB <= len, "{kind:?}: {report:?}");
        assert!(report.chunks_reused >= 10, "{kind:?}: {report:?}");
        get_compare(&b, &t, "big", Generated::new(41, len), len).await;
        let url = format!("{}/resume-parts?uploads", server.endpoint);
        let uploads = server
            .signed(bucketsync::Method::Get, url, Vec::new())
            .await
            .unwrap();
        if uploads.status != 501 || kind != ServerKind::S3sFs {
            let listing = String::from_utf8_lossy(&uploads.body);
            assert!(!listing.contains("<UploadId>"), "{kind:?}: {listing}");
        }
    }
}

#[test]
fn big_packs_go_to_a_folder_whole() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    block_on(async {
        let len = 48 * MIB;
        let mut source = Generated::new(32, len);
        let report = a
            .put_file("big", &mut source, &FolderBucket, Some(32 << 20), 2, |_| {})
            .await
            .unwrap();
        // One PUT per pack and the first upload's LIST.
        assert_eq!(report.requests, report.packs + 1, "{report:?}");
        get_compare(&a, &FolderBucket, "big", Generated::new(32, len), len).await;
    });
}

/// A read interrupted while the key held an older version leaves that version's partial file;
/// the next whole read of the key to the same path removes it, but not a partial file that
/// another read holds, nor files that only look alike.
#[test]
fn a_whole_read_removes_partial_files_of_older_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    let t = FolderBucket;
    let out = tempfile::tempdir().unwrap();
    let target = out.path().join("doc.bin");
    block_on(async {
        put(&a, &t, "doc", Generated::new(41, 3 * MIB))
            .await
            .unwrap();
        let err = a
            .get_file_to_path(b"doc", &target, &t, 1, |p| {
                if p.bytes_done > 0 {
                    a.cancel_sync();
                }
            })
            .await
            .unwrap_err();
        assert!(matches!(err, bucketsync::Error::Cancelled), "{err}");
        let old = partials(&target);
        assert_eq!(old.len(), 1, "{old:?}");
        // Another version's partial file that a read holds, and a file that only looks alike.
        let held = out.path().join(".doc.bin.00112233aabbccdd.part");
        let held_file = std::fs::File::create(&held).unwrap();
        held_file.lock().unwrap();
        let alike = out.path().join(".doc.bin.not-a-tag.part");
        std::fs::write(&alike, b"x").unwrap();

        put(&a, &t, "doc", Generated::new(42, 3 * MIB))
            .await
            .unwrap();
        assert!(a
            .get_file_to_path(b"doc", &target, &t, 1, |_| {})
            .await
            .unwrap());
        let mut expected = vec![0u8; 3 * MIB as usize];
        Generated::new(42, 3 * MIB).fill(&mut expected);
        assert!(std::fs::read(&target).unwrap() == expected);
        assert!(!old[0].exists(), "the older version's partial file is gone");
        assert!(held.exists(), "a held partial file stays");
        assert!(alike.exists());
        drop(held_file);
    });
}

/// A source that gives `len` bytes of `Generated::new(seed, len)` up to `stall_at`, then never
/// answers (an app whose stream hangs, until the task is dropped).
struct Stalling {
    inner: Generated,
    given: u64,
    stall_at: u64,
    stalled: std::rc::Rc<std::cell::Cell<bool>>,
}

impl bucketsync::files::Source for Stalling {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.given >= self.stall_at {
            self.stalled.set(true);
            futures::future::pending::<()>().await;
        }
        let room = buf.len().min((self.stall_at - self.given) as usize);
        let n = self.inner.fill(&mut buf[..room]);
        self.given += n as u64;
        Ok(n)
    }
}

/// An upload whose task is dropped half-way (a cancelled coroutine) still tells the replica
/// what it stored, and only that (not the chunks of packs still waiting to go): the next upload
/// of the same bytes in the same process references the first and sends the rest.
#[test]
fn an_upload_dropped_half_way_leaves_its_packs_to_the_next_one() {
    use std::future::Future;
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, dir.path(), "a");
    let t = FolderBucket;
    let len = 36 * MIB;
    let stalled = std::rc::Rc::new(std::cell::Cell::new(false));
    // Past 16 MiB of sealed packs waiting, input waits for them to be stored: by 28 MiB in,
    // some are, and the last ones sealed are not.
    let mut source = Stalling {
        inner: Generated::new(51, len),
        given: 0,
        stall_at: 28 * MIB,
        stalled: stalled.clone(),
    };
    {
        let mut task = Box::pin(a.put_file("big", &mut source, &t, Some(1 << 20), 2, |_| {}));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // The folder bucket answers at once: polling drives the upload until the source hangs.
        for _ in 0..10_000 {
            assert!(task.as_mut().poll(&mut cx).is_pending());
            if stalled.get() {
                break;
            }
        }
        assert!(stalled.get());
        // Dropped here, as a cancelled task is.
    }
    let report = block_on(put(&a, &t, "big", Generated::new(51, len))).unwrap();
    // What was stored is referenced, and nothing that was not: the file reads back whole.
    assert!(report.chunks_reused > 0, "{report:?}");
    assert!(report.bytes_sent < len, "{report:?}");
    block_on(get_compare(&a, &t, "big", Generated::new(51, len), len));
}

/// This repository's own sources and documents, concatenated: a compressible tree of real
/// text (about 2 MiB), always the same bytes for one checkout.
fn source_tree() -> Vec<u8> {
    fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "md" || e == "py")
            {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for dir in ["core/src", "docs", "scripts", "tests"] {
        walk(&root.join(dir), &mut paths);
    }
    paths.sort();
    paths
        .iter()
        .flat_map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// The bytes of every pack in a folder bucket.
fn pack_bytes(bucket: &Path) -> u64 {
    fn walk(dir: &Path, packs: bool) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for entry in entries {
            let entry = entry.unwrap();
            let path = entry.path();
            let is_packs = packs || path.file_name().is_some_and(|n| n == "p");
            if path.is_dir() {
                total += walk(&path, is_packs);
            } else if packs {
                total += entry.metadata().unwrap().len();
            }
        }
        total
    }
    walk(bucket, false)
}

/// Format version 10 deflates chunks where that makes them shorter: a text file takes far
/// fewer bytes in the bucket than it has, and reads back the same on another device; with
/// compression turned off, it takes at least its size.
#[test]
fn a_compressible_file_is_stored_in_fewer_bytes_unless_compression_is_off() {
    let tree = source_tree();
    let len = tree.len() as u64;
    assert!(len > 1 << 20, "{len}");
    let mut stored = Vec::new();
    for compress in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let store = format!("file://{}", bucket.display());
        let key = VaultKey::generate().unwrap();
        let a = open(&store, &key, dir.path(), "a");
        a.configure(|e| e.set_compression(compress)).unwrap();
        let t = FolderBucket;
        let mut source = bucketsync::files::ReadSource::new(&tree[..], Some(len));
        let report = block_on(a.put_file("tree.txt", &mut source, &t, None, 2, |_| {})).unwrap();
        assert_eq!(report.size, len);
        let in_packs = pack_bytes(&bucket);
        eprintln!(
            "compression {compress}: {len} bytes stored in {in_packs} bytes of packs ({} sent, {} chunks)",
            report.bytes_sent, report.chunks
        );
        if compress {
            assert!(in_packs < len / 2, "{in_packs} of {len}");
        } else {
            assert!(in_packs >= len, "{in_packs} of {len}");
        }
        stored.push(in_packs);
        block_on(sync(&a, &t));
        let b = open(&store, &key, dir.path(), "b");
        block_on(sync(&b, &t));
        let mut read = Vec::new();
        let found = block_on(b.get_file(
            b"tree.txt",
            &mut bucketsync::files::WriteSink(&mut read),
            &t,
            DEFAULT_CONCURRENCY,
            |_| {},
        ))
        .unwrap();
        assert!(found && read == tree, "compression {compress}");
    }
    assert!(stored[0] < stored[1]);
}

/// Format version 11 deflates segments as a whole: records that repeat themselves (paths, text)
/// take far fewer bytes in their segment than they have, and read back the same on another
/// device; with compression turned off the segment is stored as it is (codec 00).
#[test]
fn segments_are_deflated_unless_compression_is_off() {
    let mut sizes = Vec::new();
    for compress in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let store = format!("file://{}", bucket.display());
        let key = VaultKey::generate().unwrap();
        let a = open(&store, &key, dir.path(), "a");
        a.configure(|e| e.set_compression(compress)).unwrap();
        let t = FolderBucket;
        let mut written = 0;
        for i in 0..500 {
            let k = format!("folder/notes/2026/november/entry-{i:04}.md");
            let v = format!("# Entry {i}\n\nThe same words in every entry, and its number: {i}.\n");
            written += k.len() + v.len();
            a.put(k, v).unwrap();
        }
        block_on(sync(&a, &t));
        // The one segment the push wrote: its envelope version and codec byte.
        let vault = format!("{}/", key.vault_id());
        let segments: Vec<(String, Vec<u8>)> = bucketsync_suite::bucket_files(&bucket)
            .into_iter()
            .filter_map(|(path, bytes)| Some((path.strip_prefix(&vault)?.to_owned(), bytes)))
            .filter(|(name, _)| name.starts_with("s/"))
            .collect();
        assert_eq!(
            segments.len(),
            1,
            "{:?}",
            segments.iter().map(|s| &s.0).collect::<Vec<_>>()
        );
        let (name, object) = segments.into_iter().next().unwrap();
        let (version, plain) = bucketsync::testing::open(
            &key,
            bucketsync::testing::Kind::Segment,
            &name,
            object.clone(),
        )
        .unwrap();
        assert_eq!(version, 11);
        assert_eq!(plain[0], u8::from(compress), "codec byte");
        eprintln!(
            "compression {compress}: {written} bytes of keys and values in a segment of {}",
            object.len()
        );
        if compress {
            assert!(object.len() * 4 < written, "{} of {written}", object.len());
        } else {
            assert!(object.len() > written, "{} of {written}", object.len());
        }
        sizes.push(object.len());
        let b = open(&store, &key, dir.path(), "b");
        block_on(sync(&b, &t));
        assert_eq!(
            b.get(b"folder/notes/2026/november/entry-0499.md")
                .unwrap()
                .unwrap(),
            b"# Entry 499\n\nThe same words in every entry, and its number: 499.\n"
        );
        assert_eq!(b.keys(b"folder/").unwrap().len(), 500);
    }
    assert!(sizes[0] < sizes[1]);
}
