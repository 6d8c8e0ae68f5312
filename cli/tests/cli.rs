//! The `bucketsync` command end to end, against SeaweedFS: two "devices" (two key files and two
//! states) on one vault, each command as a user runs it, exit codes included.

mod common;

use std::process::Command;

use bucketsync_suite::servers::{ServerKind, Tap, TestServer, ACCESS_KEY, SECRET_KEY};
use common::{noise, show, Device};
use serde_json::Value;

/// init on a, join on b with the recovery code on stdin; records written on one are read on
/// the other; deletions, history, status, devices and retire; each failure with its exit code.
#[tokio::test]
async fn two_devices_share_a_vault_through_the_command() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("cli").await;
    let store = server.store_url("cli", "notes");
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(&store, dir.path(), "laptop");
    let b = Device::new(&store, dir.path(), "phone");

    let created = a.json(&["init"]);
    let code = created["recovery_code"].as_str().unwrap().to_owned();
    let vault = created["vault"].as_str().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&a.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's only");
    }
    // init again with the same key file: refused, nothing created.
    let again = a.run(&["init"]);
    assert_eq!(again.status.code(), Some(3), "{}", show(&again));

    a.ok(&["put", "settings/theme", "dark"]);
    let piped = a.run_with(&["put", "notes/today", "-"], b"line one\nline two\n");
    assert!(piped.status.success(), "{}", show(&piped));

    let joined = b.run_with(&["join", "--json"], format!("{code}\n").as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));
    let joined: Value = serde_json::from_slice(&joined.stdout).unwrap();
    assert_eq!(joined["vault"], vault.as_str());
    assert_eq!(joined["records"], 2);
    assert_eq!(b.ok(&["get", "settings/theme"]), "dark");
    assert_eq!(b.ok(&["get", "notes/today"]), "line one\nline two\n");
    assert_eq!(b.ok(&["ls", "notes/"]), "notes/today\n");

    // b overwrites, a reads the new value and keeps the old one in its history.
    b.ok(&["put", "settings/theme", "light"]);
    assert_eq!(a.ok(&["get", "settings/theme"]), "light");
    let history = a.json(&["history", "settings/theme"]);
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history}");
    assert_eq!(versions[0]["value"], "light");
    assert_eq!(versions[0]["device_label"], "phone");
    assert_eq!(versions[1]["value"], "dark");
    assert_eq!(versions[1]["device_label"], "laptop");

    a.ok(&["rm", "notes/today"]);
    let missing = b.run(&["get", "notes/today"]);
    assert_eq!(missing.status.code(), Some(5), "{}", show(&missing));
    let missing = b.run(&["get", "notes/today", "--json"]);
    let error: Value = serde_json::from_slice(&missing.stdout).unwrap();
    assert_eq!(error["error"]["category"], "not-found");

    let status = b.json(&["status"]);
    assert_eq!(status["vault"], vault.as_str());
    assert_eq!(status["records"], 1);
    assert_eq!(status["unpushed"], 0);
    // What the bucket holds, from a listing: both manifests, and the segments.
    let bucket = &status["bucket"];
    assert_eq!(bucket["kinds"]["manifests"]["objects"], 2, "{status}");
    assert!(
        bucket["kinds"]["segments"]["objects"].as_u64().unwrap() >= 3,
        "{status}"
    );
    let total: u64 = bucket["kinds"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(bucket["bytes"].as_u64().unwrap(), total, "{status}");
    let devices = a.json(&["devices"]);
    let devices = devices["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2, "{devices:?}");
    let phone = devices.iter().find(|d| d["label"] == "phone").unwrap();
    let phone_id = phone["id"].as_str().unwrap().to_owned();
    assert_eq!(phone["this_device"], false);
    a.ok(&["devices", "retire", &phone_id]);
    let devices = a.json(&["devices"]);
    let phone = devices["devices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["id"] == phone_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(phone["retired"], true);

    // --cost counts what the command sent, as the providers bill it.
    let costed = b.json(&["ls", "--cost"]);
    let cost = &costed["cost"];
    let count = |name: &str| cost[name].as_u64().unwrap();
    // A sync lists the manifests at least once; a LIST counts with the writes (AWS, R2).
    assert!(
        count("lists") >= 1 && count("writes") >= count("lists"),
        "{costed}"
    );
    assert!(count("bytes_down") > 0, "{costed}");
    let usd = cost["usd"].as_object().unwrap();
    assert_eq!(usd.len(), 3, "{costed}");
    let aws = usd["AWS S3 Standard (us-east-1)"].as_f64().unwrap();
    let expected = count("writes") as f64 * 0.005 / 1000.0
        + count("reads") as f64 * 0.0004 / 1000.0
        + count("bytes_down") as f64 / 1e9 * 0.09;
    assert!(
        (aws - expected).abs() < 1e-12,
        "{aws} != {expected}: {costed}"
    );
    let text = b.command(&["ls", "--cost"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&text.stderr).contains("Cloudflare R2"),
        "{}",
        show(&text)
    );

    // --offline writes locally only; the next sync pushes it.
    a.ok(&["put", "later", "x", "--offline"]);
    assert_eq!(a.json(&["status", "--offline"])["unpushed"], 1);
    let synced = a.json(&["sync"]);
    assert_eq!(synced["pushed"], 1, "{synced}");
    assert_eq!(a.json(&["status", "--offline"])["unpushed"], 0);

    // Joining with a code of another vault: no vault there (exit 5), no key file written.
    let stranger = Device::new(&store, dir.path(), "stranger");
    let other = bucketsync::VaultKey::generate().unwrap().recovery_code();
    let refused = stranger.run_with(&["join"], other.as_bytes());
    assert_eq!(refused.status.code(), Some(5), "{}", show(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no vault"));
    assert!(!stranger.key.exists());
    // A code that is not one: config (exit 3).
    let garbled = stranger.run_with(&["join"], b"not-a-code");
    assert_eq!(garbled.status.code(), Some(3), "{}", show(&garbled));
    // No store at all: config, saying how to give one.
    let nowhere = Device::new("", dir.path(), "nowhere");
    let output = nowhere
        .command(&["status"])
        .env_remove("BUCKETSYNC_STORE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--store"));
    // Wrong credentials: auth (exit 4).
    let output = a
        .command(&["sync"])
        .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", show(&output));
}

/// A file stored on one device reads back byte for byte on the other, and a second store of
/// the same bytes sends nothing.
#[tokio::test]
async fn files_move_between_devices_through_the_command() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("clifiles").await;
    let store = server.store_url("clifiles", "");
    let dir = tempfile::tempdir().unwrap();
    let a = Device::new(&store, dir.path(), "a");
    let b = Device::new(&store, dir.path(), "b");
    let code = a.json(&["init"])["recovery_code"]
        .as_str()
        .unwrap()
        .to_owned();
    let joined = b.run_with(&["join"], code.as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));

    let source = dir.path().join("source.bin");
    let bytes = noise(20 << 20, 7);
    std::fs::write(&source, &bytes).unwrap();
    let stored = a.json(&["put-file", "big.bin", source.to_str().unwrap()]);
    assert_eq!(stored["size"], bytes.len() as u64);
    assert!(stored["packs"].as_u64().unwrap() >= 1, "{stored}");
    assert_eq!(stored["pushed"], true);

    let target = dir.path().join("copy.bin");
    let read = b.json(&["get-file", "big.bin", target.to_str().unwrap()]);
    assert_eq!(read["size"], bytes.len() as u64);
    assert!(std::fs::read(&target).unwrap() == bytes, "the copy differs");
    let listed = b.json(&["ls"]);
    assert_eq!(listed["keys"][0]["file"], true);
    assert_eq!(listed["keys"][0]["size"], bytes.len() as u64);

    // The same bytes again from b: every chunk is in the vault already.
    let again = b.json(&["put-file", "copy.bin", target.to_str().unwrap()]);
    assert_eq!(again["chunks_uploaded"], 0, "{again}");
    assert_eq!(again["packs"], 0, "{again}");
    // get on a file says to use get-file (config), get-file on a record is refused too.
    let output = b.run(&["get", "big.bin"]);
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    b.ok(&["put", "plain", "value"]);
    let output = b.run(&["get-file", "plain", target.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    let output = b.run(&["get-file", "absent", target.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(5), "{}", show(&output));
}

/// Under a real terminal (tmux), put-file draws a progress bar and clears it when done.
#[tokio::test]
async fn put_file_draws_a_progress_bar_in_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    a.json(&["init"]);
    let source = dir.path().join("big.bin");
    let bytes = noise(96 << 20, 11);
    std::fs::write(&source, &bytes).unwrap();
    let session = format!("bucketsync-test-{}", std::process::id());
    let log = dir.path().join("screens.txt");
    let done = dir.path().join("done");
    let script = format!(
        "BUCKETSYNC_STORE='{}' BUCKETSYNC_KEY_FILE='{}' BUCKETSYNC_STATE='{}' '{}' put-file big '{}'; \
         echo \"exit $?\" > '{}'; sleep 30",
        store,
        a.key.display(),
        a.state.display(),
        env!("CARGO_BIN_EXE_bucketsync"),
        source.display(),
        done.display()
    );
    let started = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "10",
            &script,
        ])
        .status()
        .expect("tmux runs (scripts/test.sh installs it)");
    assert!(started.success());
    // Capture the pane until the command has ended.
    let mut screens = String::new();
    for _ in 0..600 {
        let capture = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &session])
            .output()
            .unwrap();
        screens.push_str(&String::from_utf8_lossy(&capture.stdout));
        screens.push_str("\n----\n");
        if done.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let last = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", &session])
        .output()
        .unwrap();
    let _ = Command::new("tmux")
        .args(["kill-session", "-t", &session])
        .status();
    std::fs::write(&log, &screens).unwrap();
    assert_eq!(
        std::fs::read_to_string(&done).unwrap().trim(),
        "exit 0",
        "{screens}"
    );
    // A bar with bytes, total and rate was drawn while it ran ...
    assert!(
        screens.contains("/96.00 MiB") && screens.contains("MiB/s"),
        "no progress bar in the captures:\n{screens}"
    );
    // ... and cleared at the end, leaving the summary.
    let last = String::from_utf8_lossy(&last.stdout);
    assert!(last.contains("Stored big: 96.00 MiB"), "{last}");
    assert!(!last.contains("ETA"), "{last}");
}

/// With no key in the environment, credentials come from a profile of the AWS shared
/// credentials file: `--profile`, else `AWS_PROFILE`, else `default`.
#[tokio::test]
async fn credentials_come_from_a_profile_of_the_aws_credentials_file() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("profiles").await;
    let store = server.store_url("profiles", "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = nobody\naws_secret_access_key = wrong-wrong-wrong\n\n\
             [test]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    )
    .unwrap();
    let a = Device::new(&store, dir.path(), "a");
    let run = |args: &[&str], profile_env: Option<&str>| {
        let mut command = a.command(args);
        command
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .env("AWS_SHARED_CREDENTIALS_FILE", &file);
        if let Some(profile) = profile_env {
            command.env("AWS_PROFILE", profile);
        }
        command.output().unwrap()
    };
    let created = run(&["--profile", "test", "init"], None);
    assert!(created.status.success(), "{}", show(&created));
    let synced = run(&["sync"], Some("test"));
    assert!(synced.status.success(), "{}", show(&synced));
    // The default profile holds keys the store refuses: auth.
    let refused = run(&["sync"], None);
    assert_eq!(refused.status.code(), Some(4), "{}", show(&refused));
    let missing = run(&["--profile", "nope", "sync"], None);
    assert_eq!(missing.status.code(), Some(3), "{}", show(&missing));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no profile \"nope\""));
}

/// Without a key file, init keeps the key in the OS keyring (here the Linux kernel keyring),
/// every other command finds it there, and a second init for the same store is refused.
#[test]
fn without_a_key_file_the_key_lives_in_the_os_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    let run = |args: &[&str]| {
        a.command(args)
            .env_remove("BUCKETSYNC_KEY_FILE")
            .output()
            .unwrap()
    };
    struct Forget(keyring::Entry);
    impl Drop for Forget {
        fn drop(&mut self) {
            let _ = self.0.delete_credential();
        }
    }
    let _forget = Forget(keyring::Entry::new("bucketsync", &store).unwrap());
    let created = run(&["init", "--json"]);
    assert!(created.status.success(), "{}", show(&created));
    let created: Value = serde_json::from_slice(&created.stdout).unwrap();
    assert!(created["key_place"]
        .as_str()
        .unwrap()
        .contains("OS keyring"));
    assert!(!a.key.exists());
    assert!(run(&["put", "k", "v"]).status.success());
    assert_eq!(run(&["get", "k"]).stdout, b"v");
    let again = run(&["init"]);
    assert_eq!(again.status.code(), Some(3), "{}", show(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("OS keyring"));
    // Another store has no key there: the error says how to go on.
    let other = Device::new(&format!("{store}-other"), dir.path(), "b");
    let output = other
        .command(&["ls"])
        .env_remove("BUCKETSYNC_KEY_FILE")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", show(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("run init or join"));
}

/// export writes a vault's records as JSON Lines (to a file or stdout), import reads them into
/// a new vault: the same records; importing again changes nothing; a malformed line fails with
/// exit code 3, naming the line, and imports nothing.
#[test]
fn export_and_import_move_records_into_a_new_vault() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    a.json(&["init"]);
    a.ok(&["put", "notes/a", "hello"]);
    let binary = a.run_with(&["put", "blob", "-"], b"\x00\x01\xfe\xff");
    assert!(binary.status.success(), "{}", show(&binary));
    a.ok(&["put", "gone", "soon"]);
    a.ok(&["rm", "gone"]);

    let file = dir.path().join("records.jsonl");
    let exported = a.json(&["export", file.to_str().unwrap()]);
    assert_eq!(exported["lines"], 3, "{exported}");
    assert_eq!(exported["deleted"], 1, "{exported}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains(r#""key":"blob","value_base64":"AAH+/w==""#),
        "{text}"
    );
    assert!(text.contains(r#""key":"gone","deleted":true"#), "{text}");
    // To stdout: the same lines, and what was done on stderr.
    let to_stdout = a.run(&["export", "--history"]);
    assert!(to_stdout.status.success(), "{}", show(&to_stdout));
    let with_history = String::from_utf8(to_stdout.stdout).unwrap();
    assert_eq!(with_history.lines().count(), 4, "{with_history}");
    assert!(with_history.contains(r#""value":"soon","deleted":false"#));
    assert!(String::from_utf8_lossy(&to_stdout.stderr).contains("Exported 3 records"));

    // A new vault (another key file) imports the file.
    let b = Device::new(&store, dir.path(), "b");
    b.json(&["init"]);
    let imported = b.json(&["import", file.to_str().unwrap()]);
    assert_eq!(imported["imported"], 2, "{imported}");
    assert_eq!(imported["unchanged"], 1, "{imported}");
    assert_eq!(imported["pushed"], true, "{imported}");
    assert_eq!(b.ok(&["ls"]), a.ok(&["ls"]));
    assert_eq!(b.ok(&["get", "notes/a"]), "hello");
    assert_eq!(b.run(&["get", "blob"]).stdout, b"\x00\x01\xfe\xff");
    assert_eq!(b.run(&["get", "gone"]).status.code(), Some(5));

    // Again, from stdin, with the history lines: nothing changes.
    let again = b.run_with(&["import", "-", "--json"], with_history.as_bytes());
    assert!(again.status.success(), "{}", show(&again));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(again["imported"], 0, "{again}");
    assert_eq!(again["unchanged"], 3, "{again}");
    assert_eq!(again["history"], 1, "{again}");

    // A malformed second line: exit code 3, the line named, nothing imported.
    let bad = b.run_with(
        &["import"],
        b"{\"key\":\"new\",\"value\":\"v\"}\n{\"key\":\"broken\"}\n",
    );
    assert_eq!(bad.status.code(), Some(3), "{}", show(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("line 2 of the import has no \"value\""),
        "{}",
        show(&bad)
    );
    assert_eq!(b.run(&["get", "new"]).status.code(), Some(5));
}

/// `watch` is the core's background sync: another device's put shows as a `changed` line
/// naming the key, with no other command on this device; Ctrl-C (SIGINT) ends it cleanly.
#[cfg(unix)]
#[test]
fn watch_prints_a_peers_change_as_it_arrives() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let a = Device::new(&store, dir.path(), "a");
    let created = a.json(&["init"]);
    let code = created["recovery_code"].as_str().unwrap().to_owned();
    let b = Device::new(&store, dir.path(), "b");
    let joined = b.run_with(&["join"], format!("{code}\n").as_bytes());
    assert!(joined.status.success(), "{}", show(&joined));

    let mut watching = b
        .command(&["watch", "--every", "1s", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    let stdout = watching.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut printed = Vec::new();
    let mut wait_for = |what: &str, found: &dyn Fn(&Value) -> bool| {
        let start = Instant::now();
        loop {
            let left = Duration::from_secs(15).saturating_sub(start.elapsed());
            let line = seen
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} within 15 s: {printed:?}"));
            let value: Value = serde_json::from_str(&line).unwrap();
            printed.push(value.clone());
            if found(&value) {
                return;
            }
        }
    };
    wait_for("idle state", &|v| {
        v["event"] == "state" && v["state"] == "idle"
    });
    a.ok(&["put", "notes/new", "from a"]);
    wait_for("change", &|v| {
        v["event"] == "changed"
            && v["keys"]
                .as_array()
                .is_some_and(|k| k.contains(&"notes/new".into()))
    });

    let pid = watching.id().to_string();
    let killed = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let status = watching.wait().unwrap();
    assert!(status.success(), "watch ends cleanly on Ctrl-C: {status:?}");
    // The state was saved and unlocked: the device works at once.
    assert_eq!(b.ok(&["get", "notes/new"]), "from a");
}

/// Sharing from the command line (a file:// store): Alice makes `emma` in her home and grants
/// it to Bob, who accepts and works in it with --vault; Carol cannot use Bob's invitation
/// (exit code 10), nor can Bob re-share what he may only write.
#[test]
fn a_shared_vault_is_granted_accepted_and_used_with_vault_label() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let alice = Device::new(&store, dir.path(), "alice");
    let bob = Device::new(&store, dir.path(), "bob");
    let carol = Device::new(&store, dir.path(), "carol");
    for person in [&alice, &bob, &carol] {
        person.json(&["init"]);
    }
    let bob_id = bob.json(&["whoami"]);
    let bob_public = bob_id["public"].as_str().unwrap();
    assert!(bob_public.starts_with("bsid1"), "{bob_id}");
    assert_eq!(
        bob_id["fingerprint"].as_str().unwrap().len(),
        19,
        "{bob_id}"
    );

    let made = alice.json(&["shared", "create", "emma"]);
    assert_eq!(made["role"], "owner", "{made}");
    alice.ok(&["--vault", "emma", "put", "allergies", "penicillin"]);
    let listed = alice.json(&["shared"]);
    assert_eq!(listed[0]["label"], "emma", "{listed}");

    // The public identity from stdin, as `whoami | share` would pass it.
    let shared = alice.run_with(
        &["share", "emma", "-", "--role", "write", "--json"],
        bob_public.as_bytes(),
    );
    assert!(shared.status.success(), "{}", show(&shared));
    let shared: Value = serde_json::from_slice(&shared.stdout).unwrap();
    assert_eq!(shared["to"], bob_id["fingerprint"], "{shared}");
    let invitation = shared["invitation"].as_str().unwrap();

    assert_eq!(shared["signer"], Value::Null, "{shared}");
    // An invitation may name a signer for apps without S3 keys (never one with credentials);
    // the output says which member token to give them.
    let carol_public = carol.json(&["whoami"])["public"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = "https://signer.example/sign";
    let through = alice.run(&["share", "emma", &carol_public, "--signer", url]);
    assert!(through.status.success(), "{}", show(&through));
    let text = String::from_utf8_lossy(&through.stdout);
    let vault_id = shared["vault"].as_str().unwrap();
    assert!(
        text.contains(url) && text.contains(&format!("TOKEN {vault_id} read")),
        "{text}"
    );
    let with_credentials = alice.run(&[
        "share",
        "emma",
        &carol_public,
        "--signer",
        "https://carol:secret@signer.example/sign",
    ]);
    assert_eq!(
        with_credentials.status.code(),
        Some(3),
        "{}",
        show(&with_credentials)
    );

    let stolen = carol.run(&["accept", invitation]);
    assert_eq!(stolen.status.code(), Some(10), "{}", show(&stolen));
    assert!(String::from_utf8_lossy(&stolen.stderr).contains("not for this identity"));

    // From someone else than the fingerprint Bob was told: refused before anything.
    let wrong_from = bob.run(&["accept", invitation, "--from", "0000-0000-0000-0000"]);
    assert_eq!(wrong_from.status.code(), Some(10), "{}", show(&wrong_from));
    let alice_fp = alice.json(&["whoami"])["fingerprint"]
        .as_str()
        .unwrap()
        .to_lowercase();
    let accepted = bob.json(&["accept", invitation, "--from", &alice_fp]);
    assert_eq!(accepted["label"], "emma", "{accepted}");
    assert_eq!(accepted["role"], "write", "{accepted}");
    assert_eq!(
        bob.ok(&["--vault", "emma", "get", "allergies"]),
        "penicillin"
    );
    bob.ok(&["--vault", "emma", "put", "visit", "checkup"]);
    assert_eq!(alice.ok(&["--vault", "emma", "get", "visit"]), "checkup");
    // The home's own records are apart from the shared vault's.
    assert_eq!(bob.run(&["get", "visit"]).status.code(), Some(5));

    let carol_public = carol.json(&["whoami"])["public"]
        .as_str()
        .unwrap()
        .to_owned();
    let reshare = bob.run(&["share", "emma", &carol_public]);
    assert_eq!(reshare.status.code(), Some(10), "{}", show(&reshare));
    let missing = bob.run(&["--vault", "liam", "ls"]);
    assert_eq!(missing.status.code(), Some(3), "{}", show(&missing));
    // An export of the home leaves out the record that holds emma's key.
    let exported = bob.json(&["export", dir.path().join("bob.jsonl").to_str().unwrap()]);
    assert_eq!(exported["shared_left_out"], 1, "{exported}");
    let text = std::fs::read_to_string(dir.path().join("bob.jsonl")).unwrap();
    assert!(!text.contains(".bucketsync/"), "{text}");
}

/// Where a home's keys go: a shared vault on another service (a second server accepting only
/// its own key, behind a tap that keeps every byte sent to it). Bob's home signs with the
/// AWS_* environment; accepting without --vault-profile fails as auth (exit code 4) saying
/// which credentials to pass, and the other server never sees the home's key id; with its
/// profile the vault is accepted and read.
#[tokio::test]
async fn a_homes_keys_never_reach_a_store_an_invitation_names_on_another_service() {
    let homes = TestServer::start(ServerKind::S3sFs).await;
    homes.create_bucket("homes").await;
    let other = TestServer::start_as(ServerKind::S3sFs, "their-key-id", "their-secret-0123").await;
    other.create_bucket("trips").await;
    let tap = Tap::start(&other.endpoint, None);
    let trips = format!("s3://trips/v/?endpoint={}&path_style=true", tap.endpoint);
    let dir = tempfile::tempdir().unwrap();
    let profiles = dir.path().join("credentials");
    std::fs::write(
        &profiles,
        "[trips]\naws_access_key_id = their-key-id\naws_secret_access_key = their-secret-0123\n",
    )
    .unwrap();
    let alice = Device::new(&homes.store_url("homes", "alice/"), dir.path(), "alice");
    let bob = Device::new(&homes.store_url("homes", "bob/"), dir.path(), "bob");
    let run = |who: &Device, args: &[&str]| {
        who.command(args)
            .env("AWS_SHARED_CREDENTIALS_FILE", &profiles)
            .output()
            .unwrap()
    };
    for person in [&alice, &bob] {
        let init = run(person, &["init"]);
        assert!(init.status.success(), "{}", show(&init));
    }
    let made = run(
        &alice,
        &[
            "--vault-profile",
            "trips",
            "shared",
            "create",
            "trip",
            "--in",
            &trips,
        ],
    );
    assert!(made.status.success(), "{}", show(&made));
    let put = run(
        &alice,
        &[
            "--vault-profile",
            "trips",
            "--vault",
            "trip",
            "put",
            "hotel",
            "by the lake",
        ],
    );
    assert!(put.status.success(), "{}", show(&put));
    let bob_public = bob.json(&["whoami"])["public"].as_str().unwrap().to_owned();
    let shared = run(
        &alice,
        &[
            "--vault-profile",
            "trips",
            "share",
            "trip",
            &bob_public,
            "--json",
        ],
    );
    assert!(shared.status.success(), "{}", show(&shared));
    let shared: Value = serde_json::from_slice(&shared.stdout).unwrap();
    let invitation = shared["invitation"].as_str().unwrap();
    assert!(tap.saw("their-key-id") && !tap.saw(ACCESS_KEY));

    let refused = run(&bob, &["accept", invitation]);
    assert_eq!(refused.status.code(), Some(4), "{}", show(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("pass this vault's own credentials"),
        "{}",
        show(&refused)
    );
    assert!(
        !tap.saw(ACCESS_KEY),
        "the home's key id reached the other server"
    );

    let accepted = run(&bob, &["--vault-profile", "trips", "accept", invitation]);
    assert!(accepted.status.success(), "{}", show(&accepted));
    let read = run(
        &bob,
        &[
            "--vault-profile",
            "trips",
            "--vault",
            "trip",
            "get",
            "hotel",
        ],
    );
    assert!(read.status.success(), "{}", show(&read));
    assert_eq!(String::from_utf8_lossy(&read.stdout).trim(), "by the lake");
    // Without the profile, the vault's requests go unsigned (and say why).
    let unsigned = run(&bob, &["--vault", "trip", "sync"]);
    assert_eq!(unsigned.status.code(), Some(4), "{}", show(&unsigned));
    assert!(
        !tap.saw(ACCESS_KEY),
        "the home's key id reached the other server"
    );
}

/// `members` and `revoke` on a shared vault (a file:// store): Alice lists who belongs, Bob
/// (write) cannot revoke (exit code 10), Alice revokes him; then her list shows him revoked
/// and his own syncs of the vault fail with exit code 10. Both need --vault (exit code 3).
#[test]
fn an_owner_lists_the_members_and_revokes_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().join("bucket").display());
    let alice = Device::new(&store, dir.path(), "alice");
    let bob = Device::new(&store, dir.path(), "bob");
    for person in [&alice, &bob] {
        person.json(&["init"]);
    }
    let alice_fp = alice.json(&["whoami"])["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_id = bob.json(&["whoami"]);
    let bob_fp = bob_id["fingerprint"].as_str().unwrap().to_owned();
    alice.json(&["shared", "create", "emma"]);
    alice.ok(&["--vault", "emma", "put", "allergies", "penicillin"]);
    let shared = alice.json(&[
        "share",
        "emma",
        bob_id["public"].as_str().unwrap(),
        "--role",
        "write",
    ]);
    let invitation = shared["invitation"].as_str().unwrap();
    bob.json(&["accept", invitation, "--from", &alice_fp]);
    bob.ok(&["--vault", "emma", "put", "visit", "checkup"]);

    // A home has no members: --vault is required.
    for args in [&["members"][..], &["revoke", &bob_fp]] {
        let output = alice.run(args);
        assert_eq!(output.status.code(), Some(3), "{}", show(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("--vault LABEL"),
            "{}",
            show(&output)
        );
    }

    let members = alice.json(&["--vault", "emma", "members"]);
    let members = members.as_array().unwrap();
    assert_eq!(members.len(), 2, "{members:?}");
    let find = |members: &[Value], fp: &str| {
        members
            .iter()
            .find(|m| m["fingerprint"] == fp)
            .cloned()
            .unwrap_or_else(|| panic!("no {fp} in {members:?}"))
    };
    let founder = find(members, &alice_fp);
    assert_eq!(founder["role"], "owner", "{founder}");
    assert_eq!(founder["granted_by"], alice_fp.as_str(), "{founder}");
    assert_eq!(founder["may_write"], true, "{founder}");
    let member = find(members, &bob_fp);
    assert_eq!(member["role"], "write", "{member}");
    assert_eq!(member["granted_by"], alice_fp.as_str(), "{member}");
    assert_eq!(member["may_write"], true, "{member}");
    assert_eq!(member["pins"], serde_json::json!([]), "{member}");
    assert_eq!(member["public"], bob_id["public"], "{member}");
    assert!(member["since"].as_u64().unwrap() > 0, "{member}");
    // Bob sees the same people; the text lists them with their roles.
    let seen = bob.json(&["--vault", "emma", "members"]);
    assert_eq!(find(seen.as_array().unwrap(), &alice_fp)["role"], "owner");
    let text = bob.ok(&["--vault", "emma", "members"]);
    assert!(text.contains(&format!("{bob_fp}  write")), "{text}");
    assert!(text.contains(&format!("{alice_fp}  owner")), "{text}");

    // Only an owner revokes.
    let refused = bob.json_output(&["--vault", "emma", "revoke", &alice_fp]);
    assert_eq!(refused.status.code(), Some(10), "{}", show(&refused));
    let error: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(error["error"]["category"], "access", "{error}");
    // Nobody revokes themself (nor the founder); nobody unknown is revoked.
    let own = alice.run(&["--vault", "emma", "revoke", &alice_fp]);
    assert_eq!(own.status.code(), Some(3), "{}", show(&own));
    let unknown = alice.run(&["--vault", "emma", "revoke", "0000-0000-0000-0000"]);
    assert_eq!(unknown.status.code(), Some(3), "{}", show(&unknown));

    // The fingerprint as a person types it: case and dashes do not matter.
    let typed = bob_fp.replace('-', "").to_lowercase();
    let revoked = alice.json(&["--vault", "emma", "revoke", &typed]);
    assert_eq!(revoked["revoked"], bob_fp.as_str(), "{revoked}");
    assert_eq!(revoked["was"], "write", "{revoked}");
    assert_eq!(revoked["pushed"], true, "{revoked}");
    let again = alice.run(&["--vault", "emma", "revoke", &bob_fp]);
    assert_eq!(again.status.code(), Some(3), "{}", show(&again));

    let members = alice.json(&["--vault", "emma", "members"]);
    let member = find(members.as_array().unwrap(), &bob_fp);
    assert_eq!(member["role"], "revoked", "{member}");
    assert_eq!(member["may_write"], false, "{member}");
    assert_eq!(member["granted_by"], alice_fp.as_str(), "{member}");
    // His device's write before the revocation was merged: it is pinned, and still counts.
    assert_eq!(member["pins"].as_array().map(Vec::len), Some(1), "{member}");
    assert_eq!(alice.ok(&["--vault", "emma", "get", "visit"]), "checkup");
    let text = alice.ok(&["--vault", "emma", "members"]);
    assert!(text.contains(&format!("{bob_fp}  revoked")), "{text}");

    let cut_off = bob.run(&["--vault", "emma", "sync"]);
    assert_eq!(cut_off.status.code(), Some(10), "{}", show(&cut_off));
    assert!(
        String::from_utf8_lossy(&cut_off.stderr).contains("revoked"),
        "{}",
        show(&cut_off)
    );
}
