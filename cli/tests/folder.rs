//! `bucketsync folder`: a folder synced both ways between two devices on SeaweedFS: edits,
//! deletions and new files both ways, a rename that sends no content, a concurrent edit that
//! leaves the same conflict copy on both, and a missing folder that deletes nothing.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use bucketsync_suite::servers::{ServerKind, TestServer};
use common::{noise, show, Device};
use serde_json::Value;

trait Folder {
    fn folder(&self, dir: &Path) -> Value;
}

impl Folder for Device {
    fn folder(&self, dir: &Path) -> Value {
        self.json(&["folder", dir.to_str().unwrap(), "--as", "shared"])
    }
}

/// Each path below `root` (the base file aside): its kind and content (or link target).
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    fn visit(dir: &Path, rel: &str, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            if name == ".bucketsync-folder" {
                continue;
            }
            let rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                out.insert(rel.clone(), "folder".into());
                visit(&entry.path(), &rel, out);
            } else {
                let bytes = std::fs::read(entry.path()).unwrap();
                out.insert(rel, blake3::hash(&bytes).to_hex().to_string());
            }
        }
    }
    visit(root, "", &mut out);
    out
}

fn write_at(path: &Path, text: &str, secs: i64) {
    std::fs::write(path, text).unwrap();
    filetime::set_file_mtime(path, filetime::FileTime::from_unix_time(secs, 0)).unwrap();
}

#[tokio::test]
async fn a_folder_syncs_both_ways_between_two_devices() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("folders").await;
    let store = server.store_url("folders", "");
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (
        Device::new(&store, dir.path(), "laptop"),
        Device::new(&store, dir.path(), "phone"),
    );
    let code = a.json(&["init"])["recovery_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = b.run_with(&["join"], code.as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));

    let on_a = dir.path().join("on a");
    let on_b = dir.path().join("on b");
    std::fs::create_dir_all(on_a.join("notes")).unwrap();
    std::fs::create_dir_all(on_a.join("drafts")).unwrap();
    std::fs::create_dir_all(&on_b).unwrap();
    write_at(&on_a.join("notes/a.txt"), "alpha", 1_790_000_000);
    write_at(&on_a.join("notes/b.txt"), "beta", 1_790_000_000);
    let big = noise(3 << 20, 0x9E37_79B9_7F4A_7C15);
    std::fs::write(on_a.join("big.bin"), &big).unwrap();

    // a sends its folder; b, empty, receives it.
    let first = a.folder(&on_a);
    assert_eq!(first["uploaded"], 5, "{first}");
    let received = b.folder(&on_b);
    assert_eq!(received["downloaded"], 5, "{received}");
    assert_eq!(received["deleted_there"], 0, "{received}");
    assert_eq!(tree(&on_b), tree(&on_a));

    // b edits, deletes and adds; a gets all three.
    write_at(
        &on_b.join("notes/a.txt"),
        "alpha, edited on b",
        1_790_000_100,
    );
    std::fs::remove_file(on_b.join("notes/b.txt")).unwrap();
    std::fs::write(on_b.join("c.txt"), "new on b").unwrap();
    let sent = b.folder(&on_b);
    assert_eq!(
        (sent["uploaded"].as_u64(), sent["deleted_there"].as_u64()),
        (Some(2), Some(1)),
        "{sent}"
    );
    let got = a.folder(&on_a);
    assert_eq!(
        (got["downloaded"].as_u64(), got["deleted_here"].as_u64()),
        (Some(2), Some(1)),
        "{got}"
    );
    assert_eq!(tree(&on_a), tree(&on_b));
    assert!(!on_a.join("notes/b.txt").exists());

    // A rename on a: no content sent again.
    std::fs::rename(on_a.join("big.bin"), on_a.join("drafts/moved.bin")).unwrap();
    let renamed = a.folder(&on_a);
    assert_eq!(renamed["chunks_uploaded"], 0, "{renamed}");
    assert!(
        renamed["bytes_sent"].as_u64().unwrap() < 64 << 10,
        "{renamed}"
    );
    b.folder(&on_b);
    assert_eq!(tree(&on_b), tree(&on_a));
    assert!(on_b.join("drafts/moved.bin").exists() && !on_b.join("big.bin").exists());

    // Both edit notes/a.txt; b's edit is the later one. a syncs first, then b, then a: both
    // end with b's text under the name and a's in the same conflict copy.
    write_at(&on_a.join("notes/a.txt"), "from a", 1_790_000_200);
    write_at(&on_b.join("notes/a.txt"), "from b", 1_790_000_300);
    a.folder(&on_a);
    let clash = b.folder(&on_b);
    let copies = clash["conflicts"].as_array().unwrap();
    assert_eq!(copies.len(), 1, "{clash}");
    let copy = copies[0].as_str().unwrap().to_owned();
    assert!(copy.starts_with("notes/a (conflict laptop "), "{copy}");
    assert!(copy.ends_with(").txt"), "{copy}");
    let settled = a.folder(&on_a);
    assert_eq!(
        settled["conflicts"].as_array().unwrap().len(),
        0,
        "{settled}"
    );
    for side in [&on_a, &on_b] {
        assert_eq!(
            std::fs::read_to_string(side.join("notes/a.txt")).unwrap(),
            "from b"
        );
        assert_eq!(std::fs::read_to_string(side.join(&copy)).unwrap(), "from a");
    }
    assert_eq!(tree(&on_a), tree(&on_b));

    // a's folder goes missing (an unmounted disk): an error, and nothing deleted anywhere.
    let before = tree(&on_b);
    let moved_away = dir.path().join("on a, unmounted");
    std::fs::rename(&on_a, &moved_away).unwrap();
    let missing = a.run_with(&["folder", on_a.to_str().unwrap(), "--as", "shared"], b"");
    assert_eq!(missing.status.code(), Some(3), "{}", show(&missing));
    // An empty folder in its place (never synced here) only receives.
    std::fs::create_dir_all(&on_a).unwrap();
    let refilled = a.folder(&on_a);
    assert_eq!(refilled["deleted_there"], 0, "{refilled}");
    b.folder(&on_b);
    assert_eq!(tree(&on_b), before);
    assert_eq!(tree(&on_a), before);
}

/// What `--exclude` leaves out is neither sent nor fetched, whichever device has it.
#[test]
fn excluded_paths_are_neither_sent_nor_fetched() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let (a, b) = (
        Device::new(&store, dir.path(), "a"),
        Device::new(&store, dir.path(), "b"),
    );
    let code = a.json(&["init"])["recovery_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = b.run_with(&["join"], code.as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));
    let (on_a, on_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&on_a).unwrap();
    std::fs::create_dir_all(&on_b).unwrap();
    std::fs::write(on_a.join("keep.txt"), "kept").unwrap();
    std::fs::write(on_a.join("scratch.tmp"), "a's scratch").unwrap();
    // a excludes nothing: both go up.
    assert_eq!(a.folder(&on_a)["uploaded"], 2);
    // b leaves *.tmp out: it is not fetched, and b's own is not sent.
    std::fs::write(on_b.join("mine.tmp"), "b's scratch").unwrap();
    let got = b.json(&[
        "folder",
        on_b.to_str().unwrap(),
        "--as",
        "shared",
        "--exclude",
        "*.tmp",
    ]);
    assert_eq!(
        (got["downloaded"].as_u64(), got["uploaded"].as_u64()),
        (Some(1), Some(0)),
        "{got}"
    );
    assert!(on_b.join("keep.txt").exists() && !on_b.join("scratch.tmp").exists());
    a.folder(&on_a);
    assert!(!on_a.join("mine.tmp").exists());
    assert!(
        on_a.join("scratch.tmp").exists(),
        "nothing deleted for an exclusion"
    );
}

#[test]
fn a_sync_deleting_most_of_a_folder_stops_until_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    a.json(&["init"]);
    let on_a = dir.path().join("a");
    std::fs::create_dir_all(&on_a).unwrap();
    for n in 0..12 {
        std::fs::write(on_a.join(format!("{n}.txt")), format!("note {n}")).unwrap();
    }
    assert_eq!(a.folder(&on_a)["uploaded"], 12);
    for n in 0..10 {
        std::fs::remove_file(on_a.join(format!("{n}.txt"))).unwrap();
    }
    let args = ["folder", on_a.to_str().unwrap(), "--as", "shared"];
    // A dry run lists the deletions, changes nothing, and is not stopped.
    let dry = a.json(&[&args[..], &["--dry-run"]].concat());
    assert_eq!(
        (dry["dry_run"].as_bool(), dry["deleted_there"].as_u64()),
        (Some(true), Some(10)),
        "{dry}"
    );
    assert_eq!(
        dry["changes"][0],
        serde_json::json!({"path": "0.txt", "change": "delete-there"})
    );
    let told = a.ok(&[&args[..], &["--dry-run"]].concat());
    assert!(
        told.contains("Would sync (dry run, nothing changed)")
            && told.contains("delete-there 9.txt"),
        "{told}"
    );
    // 10 of 12 is past the default 50%: stopped, exit code 8 (conflict), with the way on.
    let stopped = a.json_output(&args);
    assert_eq!(stopped.status.code(), Some(8), "{}", show(&stopped));
    let said = show(&stopped);
    assert!(said.contains("would delete 10 of its 12 files"), "{said}");
    let told = a.run(&args);
    assert!(
        show(&told).contains("--confirm-deletions"),
        "{}",
        show(&told)
    );
    // Nothing was deleted in the vault meanwhile; confirmed, the deletions go.
    let confirmed = a.json(&[&args[..], &["--confirm-deletions"]].concat());
    assert_eq!(confirmed["deleted_there"], 10, "{confirmed}");
    // A higher limit lets such a sync through as well.
    for n in 0..10 {
        std::fs::write(on_a.join(format!("{n}.txt")), format!("again {n}")).unwrap();
    }
    assert_eq!(a.folder(&on_a)["uploaded"], 10);
    for n in 0..10 {
        std::fs::remove_file(on_a.join(format!("{n}.txt"))).unwrap();
    }
    let raised = a.json(&[&args[..], &["--max-delete", "90"]].concat());
    assert_eq!(raised["deleted_there"], 10, "{raised}");
}

#[test]
fn a_file_deleted_in_a_synced_folder_is_restored_by_path_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    a.json(&["init"]);
    let on_a = dir.path().join("a");
    std::fs::create_dir_all(on_a.join("notes")).unwrap();
    std::fs::write(on_a.join("notes/plan.txt"), "the plan").unwrap();
    std::fs::write(on_a.join("todo.txt"), "todo").unwrap();
    assert_eq!(a.folder(&on_a)["uploaded"], 3);
    // A moment after that sync, the plan is deleted (stamps are in milliseconds).
    let before = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    std::thread::sleep(std::time::Duration::from_millis(5));
    std::fs::remove_file(on_a.join("notes/plan.txt")).unwrap();
    assert_eq!(a.folder(&on_a)["deleted_there"], 1);
    let to = dir.path().join("back");
    let restored = a.json(&[
        "restore",
        "shared",
        "--synced-folder",
        "--at",
        &before,
        "--only",
        "notes/plan.txt",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(restored["files_written"], 1, "{restored}");
    assert_eq!(
        std::fs::read_to_string(to.join("notes/plan.txt")).unwrap(),
        "the plan"
    );
    assert!(!to.join("todo.txt").exists(), "only what was asked for");
}
