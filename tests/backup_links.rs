//! Links in a backup come back as they were (absolute, relative, to folders, dangling, outside
//! the tree), as tar and restic restore them; and a hostile backup that holds a link and an
//! entry below it (`a -> /outside`, then `a/x`) has that entry refused, writes nothing outside
//! the target, and restores the rest. Through the Rust API on the local-folder bucket (the CLI
//! runs the same cases in `cli/tests/backup.rs`).
#![cfg(unix)]

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::Path;

use bucketsync::backup::{BackupOptions, Entry, EntryKind, RestoreOptions};
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::folder::FolderBucket;
use bucketsync::folder_sync::FolderOptions;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{OpenMode, VaultKey};
use futures::executor::block_on;

fn open(store: &str, key: &VaultKey, name: &str, mode: OpenMode) -> Session {
    Session::open(SessionOptions {
        device: Some(name),
        mode,
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
    .unwrap()
}

/// Each path below `root`: a link's target, a folder, or a file's bytes.
fn tree(root: &Path) -> BTreeMap<String, String> {
    fn visit(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name == ".bucketsync-folder" {
                // The folder sync's own state: each device's, with its own inode numbers
                // (compared as lossy text, two devices' states matched only by chance).
                continue;
            }
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(entry.path()).unwrap();
                out.insert(rel, format!("link to {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel.clone(), "folder".into());
                visit(&entry.path(), &rel, out);
            } else {
                let bytes = std::fs::read(entry.path()).unwrap();
                out.insert(rel, format!("file {}", String::from_utf8_lossy(&bytes)));
            }
        }
    }
    let mut out = BTreeMap::new();
    visit(root, "", &mut out);
    out
}

fn backup(session: &Session, dir: &Path, name: &str) {
    let report = block_on(session.backup(
        dir,
        name,
        &BackupOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
}

fn restore(session: &Session, name: &str, to: &Path) -> bucketsync::backup::RestoreReport {
    block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    block_on(session.restore(
        name,
        to,
        &RestoreOptions::default(),
        &FolderBucket,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap()
}

#[test]
fn links_come_back_as_they_were_wherever_they_point() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);

    let src = dir.path().join("home");
    std::fs::create_dir_all(src.join("lib/python3/site")).unwrap();
    std::fs::write(src.join("lib/python3/site/real.py"), "print(1)").unwrap();
    std::fs::write(src.join("notes.txt"), "notes").unwrap();
    // An absolute link out of the tree (as `sitecustomize.py -> /etc/...` in a system tree).
    symlink("/etc/hostname", src.join("lib/python3/sitecustomize.py")).unwrap();
    // Relative links: to a file, to a folder, and one that climbs out of the tree.
    symlink("site/real.py", src.join("lib/python3/alias.py")).unwrap();
    symlink("lib/python3", src.join("py")).unwrap();
    symlink("../../outside/thing", src.join("lib/up")).unwrap();
    // Dangling, and an absolute link to a folder.
    symlink("no/such/file", src.join("dangling")).unwrap();
    symlink("/tmp", src.join("tmp")).unwrap();
    backup(&a, &src, "home");

    let target = dir.path().join("restored");
    let report = restore(&b, "home", &target);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.symlinks, 6, "{report:?}");
    assert_eq!(tree(&target), tree(&src));
    // Links to folders were made as links, not followed: nothing was restored into /tmp.
    assert!(std::fs::symlink_metadata(target.join("py"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[test]
fn a_hostile_backup_cannot_write_through_its_own_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);

    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(src.join("a/x"), "would land outside").unwrap();
    std::fs::write(src.join("kept.txt"), "kept").unwrap();
    backup(&a, &src, "evil");
    // Rewrite the entry of folder `a` as a link to a folder outside the target: the backup
    // now holds `a -> outside` and a file `a/x` below it.
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let link = Entry {
        kind: EntryKind::Symlink,
        size: 0,
        mtime_ms: 1_700_000_000_000,
        mode: 0o777,
        target: outside.to_str().unwrap().as_bytes().to_vec(),
        hash: String::new(),
        parent: String::new(),
    };
    a.put(b"backup/evil/m/a".to_vec(), link.encode()).unwrap();
    block_on(a.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();

    let target = dir.path().join("restored");
    let report = restore(&b, "evil", &target);
    let refused: Vec<&str> = report.errors.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(refused, ["a/x"], "{:?}", report.errors);
    let message = report.errors[0].1.to_string();
    assert!(
        message.contains("backup/evil/m/a/x") && message.contains("link"),
        "{message}"
    );
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert_eq!(std::fs::read_link(target.join("a")).unwrap(), outside);
    assert_eq!(
        std::fs::read_to_string(target.join("kept.txt")).unwrap(),
        "kept"
    );
}

#[test]
fn a_synced_folder_carries_links_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);
    let (on_a, on_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&on_a).unwrap();
    std::fs::create_dir_all(&on_b).unwrap();
    std::fs::write(on_a.join("notes.txt"), "notes").unwrap();
    symlink("/etc", on_a.join("config")).unwrap();
    symlink("../elsewhere/x", on_a.join("up")).unwrap();
    for (session, folder) in [(&a, &on_a), (&b, &on_b)] {
        let report = block_on(session.sync_folder(
            folder,
            "shared",
            &FolderOptions::default(),
            &FolderBucket,
            DEFAULT_CONCURRENCY,
            |_, _| {},
        ))
        .unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    assert_eq!(tree(&on_b), tree(&on_a));
}

/// The folder bucket, counting the GETs of packs.
#[derive(Default)]
struct CountingPackReads(std::sync::atomic::AtomicUsize);

impl bucketsync::driver::Transport for CountingPackReads {
    async fn send(&self, request: bucketsync::Request) -> bucketsync::Result<bucketsync::Response> {
        if request.method == bucketsync::Method::Get && request.url.contains("/p/") {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        FolderBucket.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        FolderBucket.sleep(ms).await
    }
}

/// `session` syncs, then restores the backup `name` to `target`: its report, and how many GETs
/// of packs the restore made.
fn restore_counting_pack_reads(
    session: &Session,
    name: &str,
    target: &Path,
) -> (bucketsync::backup::RestoreReport, usize) {
    block_on(session.sync(&FolderBucket, DEFAULT_CONCURRENCY, |_| {})).unwrap();
    let counting = CountingPackReads::default();
    let report = block_on(session.restore(
        name,
        target,
        &RestoreOptions::default(),
        &counting,
        DEFAULT_CONCURRENCY,
        |_, _| {},
    ))
    .unwrap();
    let reads = counting.0.load(std::sync::atomic::Ordering::SeqCst);
    (report, reads)
}

/// Links among the files do not cut a restore's reading into many small batches: links are
/// made after every file, and the files side by side in a pack come down in a few ranged GETs
/// (a system tree has a link every few hundred files).
#[test]
fn links_between_files_do_not_cut_the_restores_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..40 {
        // Over the 4 KiB kept inline, and a link after each file in the walk's order.
        let text: String = (0..400).map(|l| format!("file {i} line {l}\n")).collect();
        std::fs::write(src.join(format!("f{i:02}.txt")), text).unwrap();
        symlink(
            format!("f{i:02}.txt"),
            src.join(format!("f{i:02}.txt.link")),
        )
        .unwrap();
    }
    backup(&a, &src, "many");

    let target = dir.path().join("restored");
    let (report, reads) = restore_counting_pack_reads(&b, "many", &target);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.symlinks, 40, "{report:?}");
    assert_eq!(tree(&target), tree(&src));
    assert!(
        (1..=4).contains(&reads),
        "40 files in one pack: {reads} GETs of packs"
    );
}

/// Files edited since the first backup do not split a restore's reads: their old chunks lie
/// between the live ones in the first pack, and the small gaps they leave are fetched and
/// thrown away rather than costing a GET each.
#[test]
fn chunks_no_longer_named_do_not_split_the_restores_reads() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let key = VaultKey::generate().unwrap();
    let a = open(&store, &key, "laptop", OpenMode::Create);
    let b = open(&store, &key, "phone", OpenMode::Join);
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let write = |i: usize, edit: &str| {
        // Over the 4 KiB kept inline.
        let text: String = (0..400)
            .map(|l| format!("file {i}{edit} line {l}\n"))
            .collect();
        std::fs::write(src.join(format!("f{i:02}.txt")), text).unwrap();
    };
    for i in 0..40 {
        write(i, "");
    }
    backup(&a, &src, "many");
    // Every other file changes: its old chunk stays in the first pack, named by no one.
    for i in (0..40).step_by(2) {
        write(i, " edited");
    }
    backup(&a, &src, "many");

    let target = dir.path().join("restored");
    let (report, reads) = restore_counting_pack_reads(&b, "many", &target);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(tree(&target), tree(&src));
    // Each backup fills one or two packs (an upload keeps two open); with a GET for every
    // run of live chunks between the gaps, this was 16 here.
    assert!(
        (2..=4).contains(&reads),
        "40 files, 20 of them edited: {reads} GETs of packs"
    );
}
