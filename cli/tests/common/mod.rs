//! What the command's end-to-end tests share: a "device" (a key file and a state beside each
//! other, one store), running the built binary as a user would.

#![allow(dead_code)] // each test file uses its part

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use bucketsync_suite::servers::{ACCESS_KEY, SECRET_KEY};
use serde_json::Value;

/// One device: its key file and state in a folder, its name, the store shared.
pub struct Device {
    pub store: String,
    pub key: PathBuf,
    pub state: PathBuf,
    pub name: String,
}

impl Device {
    pub fn new(store: &str, dir: &Path, name: &str) -> Device {
        Device {
            store: store.into(),
            key: dir.join(format!("{name}.key")),
            state: dir.join(format!("{name}.state")),
            name: name.into(),
        }
    }

    /// The command with this device's environment (and the test servers' credentials).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bucketsync"));
        command
            .args(args)
            .env("BUCKETSYNC_STORE", &self.store)
            .env("BUCKETSYNC_KEY_FILE", &self.key)
            .env("BUCKETSYNC_STATE", &self.state)
            .env("BUCKETSYNC_DEVICE", &self.name)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .stdin(Stdio::null());
        command
    }

    /// Runs the command with `input` on stdin.
    pub fn run_with(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs the command, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", show(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs the command with `--json`; its output, whatever the exit code.
    pub fn json_output(&self, args: &[&str]) -> Output {
        let mut with = args.to_vec();
        with.push("--json");
        self.run_with(&with, b"")
    }

    /// Runs the command with `--json`, which must succeed; its JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let output = self.json_output(args);
        assert!(output.status.success(), "{args:?}: {}", show(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

pub fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `len` pseudo-random bytes (xorshift from `seed`): content-defined chunking cuts them about
/// every MiB.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}
