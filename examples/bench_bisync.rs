//! Two-way folder sync between two devices, with the release `bucketsync folder` command and
//! with `rclone bisync` (issue 55), each against its own SeaweedFS server, in one run; printed as
//! a table of ratios, followed by what each tool did with a conflict. Nothing here asserts
//! anything about speed: the figures are from one run on whatever machine runs it.
//!
//! `cargo run --release --example bench_bisync` (optionally `-- --tree DIR`).
//!
//! - SeaweedFS comes from `BUCKETSYNC_WEED` (or what `bash scripts/test.sh` installed).
//! - The command is `BUCKETSYNC_CLI` when set; otherwise this builds `bucketsync-cli` itself.
//! - rclone is taken from `PATH` (`apt-get install rclone`: Debian's has `bisync`); without it
//!   its column says so. It runs with its defaults, as a new user would; it is configured
//!   through environment variables only (no config file of the user's is read).
//! - Peak RSS needs GNU time at `/usr/bin/time`; without it, "n/a".
//!
//! The default tree is a copy of this machine's `/usr/include` (`--tree DIR` copies DIR
//! instead), without its links: `rclone bisync` does not sync links, so both tools get the
//! same regular files and folders.
//!
//! Each tool has two devices, two folders `A` and `B` of its own, and the same schedule:
//! 1. A syncs the tree into a new vault (rclone: `--resync`, which its first run needs);
//! 2. B, an empty folder, syncs and gets the tree;
//! 3. A syncs with nothing changed;
//! 4. a line is added to one file on A, A syncs, then B syncs;
//! 5. another file is edited on A and on B (different contents, B's written last), then A,
//!    B and A again sync.
//!
//! At the end the two folders are compared (the tools' own bookkeeping files left out), and
//! the report says where each of the two conflicting edits ended up on each device. Requests
//! are counted by a loopback proxy in front of each tool's server (see `support`).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bucketsync_suite::servers::{ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};
use support::{
    bucketsync_cli, check_errors, copy_tree, device_env, differences, gnu_time, json_field, mib,
    rss, run, snapshot, Copied, Cost, Counter, Node,
};

const BUCKET: &str = "bisync";

/// The rows of the table, one sync each, in the order the schedule runs them.
const STEPS: [&str; 8] = [
    "first sync, A (uploads the tree)",
    "first sync, B (empty: gets the tree)",
    "sync with nothing changed, A",
    "one file changed on A: sync A",
    "  then sync B (gets the change)",
    "one file edited on A and B: sync A",
    "  then sync B",
    "  then sync A again",
];

#[derive(Clone, Copy, PartialEq)]
enum Device {
    A,
    B,
}

/// How one tool fared with the schedule.
struct Outcome {
    costs: Vec<Cost>,
    /// Whether B had A's one-file change after step 4.
    change_arrived: bool,
    /// Where the conflicting edits are, on each device.
    conflict: Vec<String>,
    /// The differences between A's and B's folders at the end.
    apart: Vec<String>,
}

/// The tree without the tools' own files: bucketsync's folder state (`.bucketsync-folder`).
fn user_tree(root: &Path) -> BTreeMap<String, Node> {
    let mut tree = snapshot(root);
    tree.retain(|path, _| !path.ends_with(bucketsync::folder_sync::BASE_FILE));
    tree
}

fn file_hash(tree: &BTreeMap<String, Node>, path: &str) -> Option<String> {
    match tree.get(path) {
        Some(Node::File { hash, .. }) => Some(hash.clone()),
        _ => None,
    }
}

/// Runs the schedule on folders `a` and `b`, `sync(device, step)` syncing one of them.
fn schedule(a: &Path, b: &Path, sync: &mut dyn FnMut(Device, usize) -> Cost) -> Outcome {
    let mut costs = Vec::new();
    costs.push(sync(Device::A, 0));
    costs.push(sync(Device::B, 1));
    costs.push(sync(Device::A, 2));

    let files: Vec<String> = user_tree(a)
        .into_iter()
        .filter(|(_, n)| matches!(n, Node::File { .. }))
        .map(|(p, _)| p)
        .collect();
    assert!(files.len() >= 2, "the tree needs at least two files");
    let changed = &files[files.len() / 3];
    let mut bytes = std::fs::read(a.join(changed)).unwrap();
    bytes.extend_from_slice(b"\n/* one more line, written on A */\n");
    std::fs::write(a.join(changed), &bytes).unwrap();
    costs.push(sync(Device::A, 3));
    costs.push(sync(Device::B, 4));
    let change_arrived = std::fs::read(b.join(changed)).is_ok_and(|got| got == bytes);

    let contested = &files[2 * files.len() / 3];
    let before = user_tree(a);
    let original = std::fs::read(a.join(contested)).unwrap();
    let edit = |device: &str| {
        let mut bytes = original.clone();
        bytes.extend_from_slice(format!("\n/* edited on {device} */\n").as_bytes());
        bytes
    };
    let (on_a, on_b) = (edit("A"), edit("B, a little later"));
    std::fs::write(a.join(contested), &on_a).unwrap();
    std::fs::write(b.join(contested), &on_b).unwrap();
    costs.push(sync(Device::A, 5));
    costs.push(sync(Device::B, 6));
    costs.push(sync(Device::A, 7));

    let hash_of = |bytes: &[u8]| blake3::hash(bytes).to_hex().to_string();
    let (a_hash, b_hash) = (hash_of(&on_a), hash_of(&on_b));
    let whose = |hash: Option<String>| match hash {
        Some(h) if h == a_hash => "A's edit",
        Some(h) if h == b_hash => "B's edit",
        Some(h) if h == hash_of(&original) => "the version before both edits",
        Some(_) => "other contents",
        None => "nothing",
    };
    let mut conflict = Vec::new();
    for (device, root) in [("A", a), ("B", b)] {
        let tree = user_tree(root);
        let mut line = format!(
            "on {device}: {contested} holds {}",
            whose(file_hash(&tree, contested))
        );
        for path in tree.keys().filter(|p| !before.contains_key(*p)) {
            line.push_str(&format!(
                "; new {path} holds {}",
                whose(file_hash(&tree, path))
            ));
        }
        for path in before.keys().filter(|p| !tree.contains_key(*p)) {
            line.push_str(&format!("; {path} is gone"));
        }
        conflict.push(line);
    }
    Outcome {
        costs,
        change_arrived,
        conflict,
        apart: differences(&user_tree(a), &user_tree(b)),
    }
}

fn bucketsync_outcome(runtime: &tokio::runtime::Runtime, cli: &Path, work: &Path) -> Outcome {
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    let counter = Counter::start(&server.endpoint);
    let store = format!(
        "s3://{BUCKET}/vault?endpoint={}&path_style=true&region=us-east-1",
        counter.endpoint()
    );
    let device = |name: &str| device_env(&store, work, name);
    let (env_a, env_b) = (device("a"), device("b"));
    let (_, init) = run(
        "bucketsync init",
        cli,
        &["--json", "init"],
        &env_a,
        None,
        &counter,
    );
    let code = json_field(&init, "recovery_code").expect("init prints the recovery code");
    run(
        "bucketsync join",
        cli,
        &["--json", "join"],
        &env_b,
        Some(&format!("{code}\n")),
        &counter,
    );
    let (a, b) = (work.join("A"), work.join("B"));
    std::fs::create_dir_all(&b).unwrap();
    schedule(&a.clone(), &b.clone(), &mut |device, step| {
        let (dir, env) = match device {
            Device::A => (&a, &env_a),
            Device::B => (&b, &env_b),
        };
        let what = format!("bucketsync folder: {}", STEPS[step].trim());
        let args = ["--json", "folder", dir.to_str().unwrap(), "--as", "tree"];
        let (cost, json) = run(&what, cli, &args, env, None, &counter);
        check_errors(&what, &json);
        cost
    })
}

fn rclone_outcome(runtime: &tokio::runtime::Runtime, work: &Path) -> Outcome {
    let server = runtime.block_on(TestServer::start(ServerKind::SeaweedFs));
    runtime.block_on(server.create_bucket(BUCKET));
    let counter = Counter::start(&server.endpoint);
    let config = work.join("rclone.conf");
    std::fs::write(&config, "").unwrap();
    let env: Vec<(&str, String)> = vec![
        ("RCLONE_CONFIG", config.display().to_string()),
        ("RCLONE_CONFIG_BENCH_TYPE", "s3".into()),
        ("RCLONE_CONFIG_BENCH_PROVIDER", "Other".into()),
        ("RCLONE_CONFIG_BENCH_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("RCLONE_CONFIG_BENCH_ENDPOINT", counter.endpoint()),
        ("RCLONE_CONFIG_BENCH_REGION", "us-east-1".into()),
        ("RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE", "true".into()),
    ];
    let remote = format!("bench:{BUCKET}/tree");
    let (a, b) = (work.join("A"), work.join("B"));
    std::fs::create_dir_all(&b).unwrap();
    let rclone = PathBuf::from("rclone");
    schedule(&a.clone(), &b.clone(), &mut |device, step| {
        let (dir, listings) = match device {
            Device::A => (&a, work.join("listings-a")),
            Device::B => (&b, work.join("listings-b")),
        };
        let mut args = vec![
            "bisync".to_owned(),
            dir.display().to_string(),
            remote.clone(),
            "--workdir".to_owned(),
            listings.display().to_string(),
        ];
        // Each device's first run must be a resync: bisync refuses to start without one.
        if step < 2 {
            args.push("--resync".to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let what = format!("rclone bisync: {}", STEPS[step].trim());
        run(&what, &rclone, &args, &env, None, &counter).0
    })
}

/// `a / b`, with enough digits to tell ratios far below one apart.
fn ratio(a: f64, b: f64) -> String {
    match a / b {
        _ if b <= 0.0 => "-".into(),
        r if r < 0.1 => format!("{r:.4}x"),
        r => format!("{r:.2}x"),
    }
}

/// Removes every link under `root`: rclone bisync leaves links out, so neither tool gets any.
fn remove_links(root: &Path) -> u64 {
    let mut removed = 0;
    for (path, node) in snapshot(root) {
        if matches!(node, Node::Link(_)) {
            std::fs::remove_file(root.join(path)).unwrap();
            removed += 1;
        }
    }
    removed
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let source = args
        .iter()
        .position(|a| a == "--tree")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/include"));
    let cli = bucketsync_cli();
    assert!(
        cli.exists(),
        "no bucketsync command at {} (set BUCKETSYNC_CLI)",
        cli.display()
    );
    let rclone_found = Command::new("rclone")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());

    let work = tempfile::Builder::new()
        .prefix("bench-bisync-")
        .tempdir()
        .unwrap();
    let pristine = work.path().join("pristine");
    let mut copied = Copied::default();
    let started = Instant::now();
    copy_tree(&source, &pristine, &[], &mut copied);
    let links = remove_links(&pristine);
    println!(
        "tree: {} ({}): {} files, {} folders, {}; {} links and {} unreadable entries left out; \
         copied in {:.1} s",
        source.display(),
        pristine.display(),
        copied.files,
        copied.dirs,
        mib(copied.bytes as f64),
        links,
        copied.skipped,
        started.elapsed().as_secs_f64()
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();

    let ours_work = work.path().join("bucketsync");
    copy_tree(&pristine, &ours_work.join("A"), &[], &mut Copied::default());
    println!("running bucketsync ({})", cli.display());
    let ours = bucketsync_outcome(&runtime, &cli, &ours_work);

    let theirs = if rclone_found {
        let their_work = work.path().join("rclone");
        copy_tree(
            &pristine,
            &their_work.join("A"),
            &[],
            &mut Copied::default(),
        );
        println!("running rclone bisync");
        Some(rclone_outcome(&runtime, &their_work))
    } else {
        println!("rclone is not on PATH (apt-get install rclone): its column is skipped");
        None
    };

    println!();
    println!(
        "requests: counted by a loopback proxy in front of each tool's own SeaweedFS server; \
         peak RSS: GNU time's %M of the tool's process{}",
        if gnu_time().is_none() {
            " (not installed here: n/a)"
        } else {
            ""
        }
    );
    println!();
    println!(
        "| {:<36} | {:>17} | {:>17} | {:>10} | {:>10} |",
        "step", "bucketsync", "rclone bisync", "time ratio", "req. ratio"
    );
    println!(
        "|{}|{}:|{}:|{}:|{}:|",
        "-".repeat(38),
        "-".repeat(18),
        "-".repeat(18),
        "-".repeat(11),
        "-".repeat(11)
    );
    let cell = |c: &Cost| format!("{:.1} s, {} req", c.seconds, c.requests);
    for (step, name) in STEPS.iter().enumerate() {
        let mine = &ours.costs[step];
        let (their_cell, time_ratio, request_ratio) = match &theirs {
            Some(t) => {
                let other = &t.costs[step];
                (
                    cell(other),
                    ratio(mine.seconds, other.seconds),
                    ratio(mine.requests as f64, other.requests as f64),
                )
            }
            None => ("skipped".into(), "-".into(), "-".into()),
        };
        println!(
            "| {name:<36} | {:>17} | {their_cell:>17} | {time_ratio:>10} | {request_ratio:>10} |",
            cell(mine)
        );
    }
    let peak = |o: &Outcome| {
        o.costs
            .iter()
            .filter_map(|c| c.rss_kib)
            .max()
            .map(|k| Cost {
                rss_kib: Some(k),
                ..Cost::default()
            })
            .unwrap_or_default()
    };
    println!(
        "| {:<36} | {:>17} | {:>17} | {:>10} | {:>10} |",
        "peak RSS, any step",
        rss(&peak(&ours)).0,
        theirs
            .as_ref()
            .map_or("skipped".into(), |t| rss(&peak(t)).0),
        theirs
            .as_ref()
            .map_or("-".into(), |t| ratio(rss(&peak(&ours)).1, rss(&peak(t)).1)),
        "",
    );

    for (tool, outcome) in [
        ("bucketsync", Some(&ours)),
        ("rclone bisync", theirs.as_ref()),
    ] {
        let Some(o) = outcome else { continue };
        println!();
        println!("{tool}:");
        println!(
            "  the one-file change reached B: {}",
            if o.change_arrived { "yes" } else { "NO" }
        );
        for line in &o.conflict {
            println!("  conflict {line}");
        }
        match o.apart.len() {
            0 => println!("  A and B hold the same tree at the end"),
            n => {
                println!("  A and B differ at the end ({n} paths):");
                for d in o.apart.iter().take(20) {
                    println!("    {d}");
                }
            }
        }
    }
}
