//! A real folder tree backed up, edited, backed up again and restored on a fresh device, with
//! the release `bucketsync` command and with restic, each against its own SeaweedFS server, in
//! one run; printed as a table of ratios (issue 39). Nothing here asserts anything about speed:
//! the figures are from one run on whatever machine runs it.
//!
//! `cargo run --release --example bench_tree` (optionally `-- --tree DIR`).
//!
//! - SeaweedFS comes from `BUCKETSYNC_WEED` (or what `bash scripts/test.sh` installed).
//! - The command is `BUCKETSYNC_CLI` when set; otherwise this runs
//!   `cargo build --release -p bucketsync-cli` itself and takes `target/release/bucketsync`.
//! - restic is taken from `PATH` (`apt-get install restic`); without it its column says so.
//! - Peak RSS needs GNU time at `/usr/bin/time` (`apt-get install time`); without it, "n/a".
//! - `BENCH_TREE_KEEP=1` leaves the work folder in place (see `main`), for runs one after
//!   another.
//!
//! The default tree is a copy of this machine's Python standard library (without
//! `site-packages`) and `/usr/include`, made in a temporary folder so the edits touch nothing
//! of the system. `--tree DIR` copies DIR instead. Links are copied as links; unreadable
//! entries and special files are skipped.
//!
//! Each tool works on its own copy of the tree and its own server, and the same edit is made
//! to each copy between its two backups.
//!
//! The first backup is timed [`FIRST_BACKUPS`] times for each tool, each into a new, empty
//! vault or repository on the same server, and its row gives the median: on this project's
//! 2-core machines the same backup varied by up to a fifth from one run to the next. Its
//! requests, bytes stored and peak RSS are the first one's.
//!
//! Requests are counted by a small HTTP proxy on loopback that this program puts between each
//! tool and its server: it reads each request's framing (headers, then a `Content-Length` or
//! chunked body) on its way to the server and passes the answers back untouched. Bytes stored
//! are the sizes a ListObjectsV2 of the whole bucket reports.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bucketsync_suite::servers::{ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};
use support::{
    bucket_usage, bucketsync_cli, check_errors, copy_tree, device_env, differences, gnu_time,
    json_field, mib, ratio, rss, run, snapshot, Copied, Cost, Counter, Node, Xorshift,
};

const BUCKET: &str = "bench";
const RESTIC_PASSWORD: &str = "bench-tree-password";
const CHANGED: usize = 50;
const ADDED: usize = 10;
const DELETED: usize = 10;
/// How many times the first backup is timed (see the module's docs).
const FIRST_BACKUPS: usize = 3;

/// The median time of a first backup that took `first` seconds and of the same backup made
/// again [`FIRST_BACKUPS`] - 1 times, `again(n)` timing the `n`th (from 1).
fn first_backup_median(first: f64, again: impl FnMut(usize) -> f64) -> f64 {
    let mut seconds: Vec<f64> = std::iter::once(first)
        .chain((1..FIRST_BACKUPS).map(again))
        .collect();
    seconds.sort_by(f64::total_cmp);
    seconds[seconds.len() / 2]
}

/// The edit: `CHANGED` files get bytes flipped in place, `ADDED` new files appear beside
/// others, `DELETED` files go; chosen from the sorted list of regular files by a fixed seed.
fn edit_tree(root: &Path) -> String {
    let snapshot = snapshot(root);
    let mut files: Vec<&String> = snapshot
        .iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| p)
        .collect();
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    // A partial Fisher-Yates shuffle: the first CHANGED + DELETED are the chosen ones.
    let wanted = (CHANGED + DELETED).min(files.len());
    for i in 0..wanted {
        let j = i + (rng.next() % (files.len() - i) as u64) as usize;
        files.swap(i, j);
    }
    let (changed, rest) = files[..wanted].split_at(CHANGED.min(wanted));
    for path in changed {
        let path = root.join(path);
        let mut bytes = std::fs::read(&path).unwrap_or_default();
        if bytes.is_empty() {
            bytes.extend_from_slice(b"edited\n");
        } else {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            bytes[0] ^= 0x01;
        }
        std::fs::write(&path, bytes).expect("an edit");
    }
    for path in rest {
        std::fs::remove_file(root.join(path)).expect("a deletion");
    }
    for (n, near) in changed.iter().take(ADDED).enumerate() {
        let parent = root.join(near).parent().unwrap().to_path_buf();
        let len = 2_000 + (rng.next() % 60_000) as usize;
        let text: String = (0..len)
            .map(|_| (b'a' + (rng.next() % 26) as u8) as char)
            .collect();
        std::fs::write(parent.join(format!("bench-tree-new-{n}.txt")), text).expect("a new file");
    }
    format!(
        "{} files changed, {ADDED} added, {} deleted",
        changed.len(),
        rest.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The two tools.

/// What one tool's runs cost, row by row.
#[derive(Default)]
struct Results {
    first: Cost,
    first_stored: u64,
    first_objects: u64,
    edit: Cost,
    edit_added: i64,
    restore: Cost,
    identical: Option<bool>,
    diffs: Vec<String>,
}

fn bucketsync_rows(
    runtime: &tokio::runtime::Runtime,
    cli: &Path,
    tree: &Path,
    work: &Path,
    edit: &mut dyn FnMut(),
) -> (Results, Vec<(String, Cost)>) {
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    runtime.block_on(server.create_bucket("folder"));
    runtime.block_on(server.create_bucket("again"));
    let counter = Counter::start(&server.endpoint);
    let store = |bucket: &str, prefix: &str| {
        format!(
            "s3://{bucket}/{prefix}?endpoint={}&path_style=true&region=us-east-1",
            counter.endpoint()
        )
    };
    let device = |store: &str, name: &str| device_env(store, work, name);
    let backups = store(BUCKET, "vault");
    let a = device(&backups, "a");
    let b = device(&backups, "b");
    let tree_arg = tree.to_str().unwrap();
    let mut r = Results::default();

    let (_, init) = run(
        "bucketsync init",
        cli,
        &["--json", "init"],
        &a,
        None,
        &counter,
    );
    let code = json_field(&init, "recovery_code").expect("init prints the recovery code");
    let backup_args = [
        "--json",
        "backup",
        tree_arg,
        "--as",
        "tree",
        "--include-hidden",
        "--delete",
    ];
    let (cost, json) = run(
        "bucketsync backup (first)",
        cli,
        &backup_args,
        &a,
        None,
        &counter,
    );
    check_errors("bucketsync backup (first)", &json);
    r.first = cost;
    let (objects, bytes) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.first_stored = bytes;
    r.first_objects = objects;
    println!(
        "bucketsync first backup: {} files stored, {} packs, {} objects in the bucket; the \
         command's own request count: {}",
        json_field(&json, "files_stored").unwrap_or_default(),
        json_field(&json, "packs").unwrap_or_default(),
        objects,
        json_field(&json, "requests").unwrap_or_default(),
    );
    // The same first backup again, each into a new vault of its own bucket.
    r.first.seconds = first_backup_median(r.first.seconds, |n| {
        let again = device(
            &store("again", &format!("vault-{n}")),
            &format!("again-{n}"),
        );
        run(
            "bucketsync init (again)",
            cli,
            &["--json", "init"],
            &again,
            None,
            &counter,
        );
        let what = format!("bucketsync backup (first, again {n})");
        let (cost, json) = run(&what, cli, &backup_args, &again, None, &counter);
        check_errors(&what, &json);
        cost.seconds
    });

    edit();
    let (cost, json) = run(
        "bucketsync backup (edit)",
        cli,
        &backup_args,
        &a,
        None,
        &counter,
    );
    check_errors("bucketsync backup (edit)", &json);
    r.edit = cost;
    let (_, after) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.edit_added = after as i64 - bytes as i64;
    println!(
        "bucketsync edit backup: {} stored ({} new, {} changed), {} deleted; the command's own \
         request count: {}",
        json_field(&json, "files_stored").unwrap_or_default(),
        json_field(&json, "files_new").unwrap_or_default(),
        json_field(&json, "files_changed").unwrap_or_default(),
        json_field(&json, "deleted").unwrap_or_default(),
        json_field(&json, "requests").unwrap_or_default(),
    );

    let target = work.join("restored");
    let (join, _) = run(
        "bucketsync join",
        cli,
        &["--json", "join"],
        &b,
        Some(&format!("{code}\n")),
        &counter,
    );
    let (restore, json) = run(
        "bucketsync restore",
        cli,
        &[
            "--json",
            "restore",
            "tree",
            "--to",
            target.to_str().unwrap(),
        ],
        &b,
        None,
        &counter,
    );
    check_errors("bucketsync restore", &json);
    println!(
        "bucketsync fresh device: join {:.1} s, {} requests; restore {:.1} s, {} requests, {} \
         files written",
        join.seconds,
        join.requests,
        restore.seconds,
        restore.requests,
        json_field(&json, "files_written").unwrap_or_default()
    );
    r.restore = join.then(restore);
    let diffs = differences(&snapshot(tree), &snapshot(&target));
    r.identical = Some(diffs.is_empty());
    r.diffs = diffs;

    // `folder`: the tree synced both ways into a new vault, then once more after one edit.
    let mut folder_rows = Vec::new();
    let has_folder = Command::new(cli)
        .args(["folder", "--help"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_folder {
        let copy = work.join("folder-copy");
        copy_tree(tree, &copy, &[], &mut Copied::default());
        let folders = store("folder", "vault");
        let f = device(&folders, "f");
        run(
            "bucketsync init (folder)",
            cli,
            &["--json", "init"],
            &f,
            None,
            &counter,
        );
        let copy_arg = copy.to_str().unwrap();
        let args = ["--json", "folder", copy_arg, "--as", "tree"];
        let (first, json) = run("bucketsync folder (first)", cli, &args, &f, None, &counter);
        check_errors("bucketsync folder (first)", &json);
        folder_rows.push(("first sync of the tree, new vault".to_owned(), first));
        let one = snapshot(&copy)
            .into_iter()
            .find(|(p, n)| matches!(n, Node::File { .. }) && !p.contains(".bucketsync"))
            .map(|(p, _)| copy.join(p))
            .expect("a file in the tree");
        let mut bytes = std::fs::read(&one).unwrap();
        bytes.extend_from_slice(b"\none more line\n");
        std::fs::write(&one, bytes).unwrap();
        let (again, json) = run("bucketsync folder (edit)", cli, &args, &f, None, &counter);
        check_errors("bucketsync folder (edit)", &json);
        folder_rows.push(("then one file changed".to_owned(), again));
    }
    (r, folder_rows)
}

fn restic_rows(
    runtime: &tokio::runtime::Runtime,
    tree: &Path,
    work: &Path,
    edit: &mut dyn FnMut(),
) -> Results {
    let restic = PathBuf::from("restic");
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    runtime.block_on(server.create_bucket("again"));
    let counter = Counter::start(&server.endpoint);
    let repo = format!("s3:{}/{BUCKET}/restic", counter.endpoint());
    let env: Vec<(&str, String)> = vec![
        ("RESTIC_REPOSITORY", repo),
        ("RESTIC_PASSWORD", RESTIC_PASSWORD.to_owned()),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
    ];
    let cache = work.join("restic-cache");
    let cache_arg = format!("--cache-dir={}", cache.display());
    let tree_arg = tree.to_str().unwrap();
    let mut r = Results::default();

    run(
        "restic init",
        &restic,
        &["init", &cache_arg],
        &env,
        None,
        &counter,
    );
    let backup_args = ["backup", "--quiet", "--host", "bench", &cache_arg, tree_arg];
    let (cost, _) = run(
        "restic backup (first)",
        &restic,
        &backup_args,
        &env,
        None,
        &counter,
    );
    r.first = cost;
    let (objects, bytes) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.first_stored = bytes;
    r.first_objects = objects;
    println!("restic first backup: {objects} objects in the bucket");
    // The same first backup again, each into a new repository of its own bucket, with its own
    // cache.
    r.first.seconds = first_backup_median(r.first.seconds, |n| {
        let mut again = env.clone();
        for (name, value) in &mut again {
            if *name == "RESTIC_REPOSITORY" {
                *value = format!("s3:{}/again/restic-{n}", counter.endpoint());
            }
        }
        let cache = format!(
            "--cache-dir={}",
            work.join(format!("restic-cache-again-{n}")).display()
        );
        run(
            "restic init (again)",
            &restic,
            &["init", &cache],
            &again,
            None,
            &counter,
        );
        let args = ["backup", "--quiet", "--host", "bench", &cache, tree_arg];
        let what = format!("restic backup (first, again {n})");
        let (cost, _) = run(&what, &restic, &args, &again, None, &counter);
        cost.seconds
    });

    edit();
    let (cost, _) = run(
        "restic backup (edit)",
        &restic,
        &backup_args,
        &env,
        None,
        &counter,
    );
    r.edit = cost;
    let (_, after) = runtime.block_on(bucket_usage(&server, BUCKET));
    r.edit_added = after as i64 - bytes as i64;

    let fresh_cache = format!("--cache-dir={}", work.join("restic-cache-2").display());
    let target = work.join("restic-restored");
    let (cost, _) = run(
        "restic restore",
        &restic,
        &[
            "restore",
            "latest",
            "--quiet",
            &fresh_cache,
            "--target",
            target.to_str().unwrap(),
        ],
        &env,
        None,
        &counter,
    );
    r.restore = cost;
    // restic restores the absolute path below the target.
    let inside = target.join(tree.strip_prefix("/").unwrap_or(tree));
    let diffs = differences(&snapshot(tree), &snapshot(&inside));
    r.identical = Some(diffs.is_empty());
    r.diffs = diffs;
    r
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let given = args
        .iter()
        .position(|a| a == "--tree")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from);

    let cli = bucketsync_cli();
    assert!(
        cli.exists(),
        "no bucketsync command at {} (set BUCKETSYNC_CLI)",
        cli.display()
    );
    let restic_found = Command::new("restic")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());

    let mut work = tempfile::Builder::new()
        .prefix("bench-tree-")
        .tempdir()
        .unwrap();
    // BENCH_TREE_KEEP=1 leaves the work folder (about 1 GB) for the caller to remove: on ext4
    // without a journal, files made within minutes of a removal of thousands cost several
    // times more system time, so a run right after another would start slowed.
    if std::env::var_os("BENCH_TREE_KEEP").is_some_and(|v| v == "1") {
        work.disable_cleanup(true);
        println!("BENCH_TREE_KEEP=1: {} stays", work.path().display());
    }
    let pristine = work.path().join("pristine");
    let mut copied = Copied::default();
    let sources: Vec<(PathBuf, &str, Vec<&str>)> = match &given {
        Some(dir) => vec![(dir.clone(), "tree", vec![])],
        None => {
            let stdlib = Command::new("python3")
                .args([
                    "-c",
                    "import sysconfig;print(sysconfig.get_paths()['stdlib'])",
                ])
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                .filter(|s| !s.is_empty())
                .expect("python3 prints its standard library's path (or give --tree DIR)");
            vec![
                (
                    PathBuf::from(stdlib),
                    "python-stdlib",
                    vec!["site-packages"],
                ),
                (PathBuf::from("/usr/include"), "include", vec![]),
            ]
        }
    };
    let started = Instant::now();
    for (source, name, leave_out) in &sources {
        copy_tree(source, &pristine.join(name), leave_out, &mut copied);
    }
    println!(
        "tree: {} ({}): {} files, {} folders, {} links, {}; {} entries skipped; copied in {:.1} s",
        sources
            .iter()
            .map(|(s, _, l)| if l.is_empty() {
                s.display().to_string()
            } else {
                format!("{} without {}", s.display(), l.join(", "))
            })
            .collect::<Vec<_>>()
            .join(" + "),
        pristine.display(),
        copied.files,
        copied.dirs,
        copied.links,
        mib(copied.bytes as f64),
        copied.skipped,
        started.elapsed().as_secs_f64()
    );

    // Each tool works on its own copy of the tree, edited the same way between its backups.
    // Nothing is removed before the end (the work folder goes as a whole): on ext4, making
    // files soon after thousands were removed costs several times more system time (new
    // inodes are checked against those recently freed), and a tool that ran after removals
    // would pay for them. About 1 GB on the disk meanwhile.
    let mut edits = String::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let ours_tree = work.path().join("b").join("tree");
    copy_tree(&pristine, &ours_tree, &[], &mut Copied::default());
    let ours_work = work.path().join("b-work");
    std::fs::create_dir_all(&ours_work).unwrap();
    println!("running bucketsync ({})", cli.display());
    let (ours, folder_rows) = bucketsync_rows(&runtime, &cli, &ours_tree, &ours_work, &mut || {
        edits = edit_tree(&ours_tree)
    });

    let theirs = if restic_found {
        let their_tree = work.path().join("r").join("tree");
        copy_tree(&pristine, &their_tree, &[], &mut Copied::default());
        let their_work = work.path().join("r-work");
        std::fs::create_dir_all(&their_work).unwrap();
        println!("running restic");
        let r = restic_rows(&runtime, &their_tree, &their_work, &mut || {
            edit_tree(&their_tree);
        });
        Some(r)
    } else {
        println!("restic is not on PATH (apt-get install restic): its column is skipped");
        None
    };

    println!();
    println!("edit between the backups: {edits}");
    println!(
        "requests: counted by a loopback proxy in front of each tool's own SeaweedFS server; \
         bytes stored: object sizes from a ListObjectsV2 of the bucket; peak RSS: GNU time's \
         %M (max resident set) of the tool's process{}",
        if gnu_time().is_none() {
            " (not installed here: n/a)"
        } else {
            ""
        }
    );
    println!();
    let t = theirs.as_ref();
    let mut rows: Vec<[String; 4]> = Vec::new();
    let mut add = |name: &str, ours: (String, f64), theirs: Option<(String, f64)>| {
        let (text, value) = ours;
        let (their_text, their_value) = theirs.unwrap_or(("skipped".into(), 0.0));
        let r = if their_text == "skipped" || value == 0.0 && their_value == 0.0 {
            "-".into()
        } else {
            ratio(value, their_value)
        };
        rows.push([name.to_owned(), text, their_text, r]);
    };
    let secs = |c: &Cost| (format!("{:.1} s", c.seconds), c.seconds);
    let reqs = |c: &Cost| (c.requests.to_string(), c.requests as f64);
    add(
        &format!("first backup: time (median of {FIRST_BACKUPS})"),
        secs(&ours.first),
        t.map(|r| secs(&r.first)),
    );
    add(
        "first backup: requests",
        reqs(&ours.first),
        t.map(|r| reqs(&r.first)),
    );
    let stored = |r: &Results| {
        (
            format!(
                "{} in {} objects",
                mib(r.first_stored as f64),
                r.first_objects
            ),
            r.first_stored as f64,
        )
    };
    add("first backup: bytes stored", stored(&ours), t.map(stored));
    add(
        "first backup: peak RSS",
        rss(&ours.first),
        t.map(|r| rss(&r.first)),
    );
    add(
        "edit backup: time",
        secs(&ours.edit),
        t.map(|r| secs(&r.edit)),
    );
    add(
        "edit backup: requests",
        reqs(&ours.edit),
        t.map(|r| reqs(&r.edit)),
    );
    let added = |r: &Results| {
        (
            format!("{:.1} KiB", r.edit_added as f64 / 1024.0),
            r.edit_added as f64,
        )
    };
    add("edit backup: bytes added", added(&ours), t.map(added));
    add(
        "edit backup: peak RSS",
        rss(&ours.edit),
        t.map(|r| rss(&r.edit)),
    );
    add(
        "restore, fresh device: time",
        secs(&ours.restore),
        t.map(|r| secs(&r.restore)),
    );
    add(
        "restore, fresh device: requests",
        reqs(&ours.restore),
        t.map(|r| reqs(&r.restore)),
    );
    add(
        "restore, fresh device: peak RSS",
        rss(&ours.restore),
        t.map(|r| rss(&r.restore)),
    );
    let same = |r: &Results| {
        let text = match r.identical {
            Some(true) => "yes".to_owned(),
            Some(false) => format!("no ({} paths differ)", r.diffs.len()),
            None => "not checked".to_owned(),
        };
        (text, 0.0)
    };
    add("restored tree = edited tree", same(&ours), t.map(same));

    let widths: Vec<usize> = (0..4)
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([["tree", "bucketsync", "restic", "bucketsync/restic"][i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let line = |cells: [&str; 4]| {
        println!(
            "| {:<w0$} | {:>w1$} | {:>w2$} | {:>w3$} |",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    line(["tree", "bucketsync", "restic", "bucketsync/restic"]);
    println!(
        "|{}|{}:|{}:|{}:|",
        "-".repeat(widths[0] + 2),
        "-".repeat(widths[1] + 1),
        "-".repeat(widths[2] + 1),
        "-".repeat(widths[3] + 1)
    );
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3]]);
    }

    if !folder_rows.is_empty() {
        println!();
        println!("| bucketsync folder (two-way)        | time     | requests | peak RSS   |");
        println!("|------------------------------------|---------:|---------:|-----------:|");
        for (name, cost) in &folder_rows {
            println!(
                "| {name:<34} | {:>6.1} s | {:>8} | {:>10} |",
                cost.seconds,
                cost.requests,
                rss(cost).0
            );
        }
    } else {
        println!("(this bucketsync has no `folder` command: no folder rows)");
    }

    for (tool, r) in [("bucketsync", Some(&ours)), ("restic", t)] {
        if let Some(r) = r {
            if !r.diffs.is_empty() {
                println!();
                println!("{tool}: the restored tree differs from the edited tree:");
                for d in r.diffs.iter().take(40) {
                    println!("  {d}");
                }
                if r.diffs.len() > 40 {
                    println!("  ... and {} more", r.diffs.len() - 40);
                }
            }
        }
    }
}
