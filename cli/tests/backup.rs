//! `bucketsync backup` and `restore` end to end against SeaweedFS: a tree with nested folders,
//! unicode and hidden names, empty files and folders, a link and a 50 MiB file; incremental
//! backups; a restore on another device equal to the source; dry runs that change nothing;
//! deletions; crafted entries that try to write outside the target.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bucketsync::backup::{Entry, EntryKind};
use bucketsync_suite::servers::{ServerKind, TestServer};
use common::{noise, show, Device};
use serde_json::Value;

/// What a tree holds: per path, its kind, permissions, modification time (ms) and content
/// hash (or link target).
fn tree(root: &Path) -> BTreeMap<String, (char, u32, u64, String)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = BTreeMap::new();
    fn visit(dir: &Path, rel: &str, out: &mut BTreeMap<String, (char, u32, u64, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let mtime = meta
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(entry.path()).unwrap();
                out.insert(rel, ('l', 0, 0, target.display().to_string()));
            } else if meta.is_dir() {
                out.insert(
                    rel.clone(),
                    (
                        'd',
                        meta.permissions().mode() & 0o7777,
                        mtime,
                        String::new(),
                    ),
                );
                visit(&entry.path(), &rel, out);
            } else {
                let hash = blake3::hash(&std::fs::read(entry.path()).unwrap())
                    .to_hex()
                    .to_string();
                out.insert(rel, ('f', meta.permissions().mode() & 0o7777, mtime, hash));
            }
        }
    }
    visit(root, "", &mut out);
    out
}

fn set_mtime(path: &Path, secs: i64) {
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, 123_000_000)).unwrap();
}

/// Objects in the store under `prefix`.
async fn objects(server: &TestServer, bucket: &str) -> usize {
    server.list_all(&server.store(bucket, ""), "").await.len()
}

#[tokio::test]
async fn a_tree_is_backed_up_incrementally_and_restored_whole_on_another_device() {
    use std::os::unix::fs::PermissionsExt;
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("backups").await;
    let store = server.store_url("backups", "");
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(&store, dir.path(), "a");
    let b = Device::new(&store, dir.path(), "b");
    let code = a.json(&["init"])["recovery_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = b.run_with(&["join"], code.as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));

    let src = dir.path().join("Documents");
    std::fs::create_dir_all(src.join("nested/deeper/deepest")).unwrap();
    std::fs::create_dir_all(src.join("ünïcødé")).unwrap();
    std::fs::create_dir_all(src.join("empty folder")).unwrap();
    std::fs::write(src.join("a.txt"), "hello").unwrap();
    std::fs::set_permissions(src.join("a.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(src.join("empty.txt"), "").unwrap();
    std::fs::write(src.join(".hidden"), "dot file").unwrap();
    std::fs::write(src.join("ünïcødé/日本語 ファイル.txt"), "こんにちは").unwrap();
    std::fs::write(
        src.join("nested/deeper/deepest/small.bin"),
        vec![7u8; 20_000],
    )
    .unwrap();
    std::fs::write(src.join("skip.tmp"), "excluded").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link to a")).unwrap();
    // Links as a home or system folder has them: absolute, to a folder, dangling.
    std::os::unix::fs::symlink("/etc/hostname", src.join("nested/absolute")).unwrap();
    std::os::unix::fs::symlink("nested/deeper", src.join("to a folder")).unwrap();
    std::os::unix::fs::symlink("../gone/file", src.join("nested/dangling")).unwrap();
    let big = noise(50 << 20, 0x2545_F491_4F6C_DD1D);
    std::fs::write(src.join("nested/big.bin"), &big).unwrap();
    set_mtime(&src.join("a.txt"), 1_700_000_000);
    let src_arg = src.to_str().unwrap();

    // First backup: every file but the excluded one.
    let first = a.json(&["backup", src_arg, "--include-hidden", "--exclude", "*.tmp"]);
    assert_eq!(first["files_stored"], 6, "{first}");
    assert_eq!(
        (&first["files_new"], &first["files_changed"]),
        (&6.into(), &0.into())
    );
    // Files above the inline size each close a pack today (issue 39 packs them together).
    assert!(first["packs"].as_u64().unwrap() >= 1, "{first}");
    assert!(
        first["requests"].as_u64().unwrap() >= first["packs"].as_u64().unwrap(),
        "{first}"
    );
    assert_eq!(first["symlinks"], 4, "{first}");
    assert_eq!(first["dirs"], 5, "{first}");
    assert_eq!(first["errors"].as_array().unwrap().len(), 0, "{first}");
    assert_eq!(first["root"], "backup/Documents/");

    // Again, nothing changed: nothing stored, nothing sent.
    let second = a.json(&["backup", src_arg, "--include-hidden", "--exclude", "*.tmp"]);
    assert_eq!(second["files_stored"], 0, "{second}");
    assert_eq!(second["files_unchanged"], 6, "{second}");
    assert_eq!(second["bytes_sent"], 0, "{second}");

    // One byte edited in the middle of the 50 MiB file: only its changed chunks go up.
    let mut edited = big.clone();
    edited[25 << 20] ^= 0xff;
    std::fs::write(src.join("nested/big.bin"), &edited).unwrap();
    let third = a.json(&["backup", src_arg, "--include-hidden", "--exclude", "*.tmp"]);
    assert_eq!(third["files_stored"], 1, "{third}");
    assert_eq!(
        (&third["files_new"], &third["files_changed"]),
        (&0.into(), &1.into())
    );
    assert!(third["chunks_uploaded"].as_u64().unwrap() <= 2, "{third}");
    assert!(third["chunks_reused"].as_u64().unwrap() >= 30, "{third}");
    assert!(
        third["bytes_sent"].as_u64().unwrap() < 20 << 20,
        "a one-byte edit re-sent {} bytes",
        third["bytes_sent"]
    );

    // Restored on b: the same tree (less the excluded file).
    let to = dir.path().join("restored");
    let restored = b.json(&["restore", "--to", to.to_str().unwrap()]);
    assert_eq!(restored["files_written"], 6, "{restored}");
    assert_eq!(
        restored["errors"].as_array().unwrap().len(),
        0,
        "{restored}"
    );
    std::fs::remove_file(src.join("skip.tmp")).unwrap();
    assert_eq!(tree(&to), tree(&src));
    // Read back from the server and checked, nothing written: every file as stored.
    let checked = b.json(&["verify", "Documents"]);
    assert_eq!(
        (
            checked["files_ok"].as_u64(),
            checked["damaged"].as_array().map(Vec::len)
        ),
        (Some(6), Some(0)),
        "{checked}"
    );
    assert!(
        checked["bytes_checked"].as_u64().unwrap() > 50 << 20,
        "{checked}"
    );

    // Dry runs change nothing: not the bucket, not the disk.
    std::fs::write(src.join("new.txt"), "new").unwrap();
    let before = (objects(&server, "backups").await, tree(&src));
    let dry = a.json(&["backup", src_arg, "--include-hidden", "--dry-run"]);
    assert_eq!(dry["files_stored"], 1, "{dry}");
    assert_eq!(dry["dry_run"], true);
    let nowhere = dir.path().join("not made");
    let dry = b.json(&[
        "restore",
        "Documents",
        "--to",
        nowhere.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(dry["files_written"], 6, "{dry}");
    assert!(!nowhere.exists());
    assert_eq!((objects(&server, "backups").await, tree(&src)), before);

    // --delete: what is gone locally goes from the backup.
    std::fs::remove_file(src.join("empty.txt")).unwrap();
    let pruned = a.json(&["backup", src_arg, "--include-hidden", "--delete"]);
    assert_eq!(pruned["deleted"], 1, "{pruned}");
    assert_eq!(pruned["files_stored"], 1, "{pruned}");
    let again = dir.path().join("again");
    b.json(&["restore", "--to", again.to_str().unwrap()]);
    assert_eq!(tree(&again), tree(&src));

    // A local file newer than the backup is kept, unless --force.
    let mine = again.join("a.txt");
    std::fs::write(&mine, "my newer edit").unwrap();
    let kept = b.json(&["restore", "--to", again.to_str().unwrap()]);
    assert_eq!(kept["kept_newer"][0], "a.txt", "{kept}");
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "my newer edit");
    b.json(&["restore", "--to", again.to_str().unwrap(), "--force"]);
    assert_eq!(std::fs::read_to_string(&mine).unwrap(), "hello");
}

/// Entries crafted to write outside the target are refused, each named; the rest is restored.
#[tokio::test]
async fn a_restore_never_writes_outside_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    a.json(&["init"]);
    let entry = |kind, target: &str| {
        Entry {
            kind,
            size: 0,
            mtime_ms: 1_700_000_000_000,
            mode: 0o644,
            target: target.as_bytes().to_vec(),
            hash: String::new(),
            parent: String::new(),
        }
        .encode()
    };
    let put = |key: &str, value: &[u8]| {
        let output = a.run_with(&["put", key, "-"], value);
        assert!(output.status.success(), "{}", show(&output));
    };
    put("backup/evil/m/../../escaped", &entry(EntryKind::Dir, ""));
    put("backup/evil/m//etc/abs", &entry(EntryKind::Dir, ""));
    put("backup/evil/m/a/../../../x", &entry(EntryKind::Dir, ""));
    // Links come back wherever they point; what lies below one in the backup is refused.
    put("backup/evil/m/out", &entry(EntryKind::Symlink, "/etc"));
    put("backup/evil/m/out/inside", &entry(EntryKind::Dir, ""));
    put("backup/evil/m/up", &entry(EntryKind::Symlink, "../../.."));
    put("backup/evil/m/up/x", &entry(EntryKind::Dir, ""));
    put("backup/evil/m/through/file", &entry(EntryKind::Dir, ""));
    put("backup/evil/m/fine", &entry(EntryKind::Dir, ""));
    let target = dir.path().join("target");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&target).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    // A link already in the target: nothing is written through it.
    std::os::unix::fs::symlink(&outside, target.join("through")).unwrap();

    let output = a.json_output(&["restore", "evil", "--to", target.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1), "{}", show(&output));
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let refused: Vec<String> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_owned())
        .collect();
    // (A NUL cannot pass through a command line; the core's unit test refuses it.)
    for path in [
        "../../escaped",
        "/etc/abs",
        "a/../../../x",
        "out/inside",
        "up/x",
        "through/file",
    ] {
        assert!(
            refused.iter().any(|r| r == path),
            "{path:?} not refused: {report}"
        );
    }
    for e in report["errors"].as_array().unwrap() {
        assert!(
            e["message"].as_str().unwrap().contains("backup/evil/m/"),
            "{e}"
        );
    }
    assert!(target.join("fine").is_dir());
    assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!dir.path().join("escaped").exists());
    assert!(std::fs::read_link(target.join("through")).is_ok());
    assert_eq!(
        std::fs::read_link(target.join("out")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_link(target.join("up")).unwrap(),
        Path::new("../../..")
    );
    assert!(!dir.path().join("x").exists());
}
