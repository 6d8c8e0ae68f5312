//! Checking what a backup or a synced folder stores: every file's chunks read back from the
//! bucket and checked against their ids, and each whole file against its hash, as a restore
//! would (and as `restic check --read-data` does), with nothing written. What is damaged is
//! reported per file.

use std::time::{Duration, Instant};

use super::backup::{content_key, root_for};
use crate::error::{Category, Error, Result};
use crate::io::driver::Transport;
use crate::io::files::FileProgress;
use crate::io::session::Session;
use crate::io::streams::Sink;

/// What to check.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    /// The name is a two-way synced folder's (`folder/<name>/`), not a backup's.
    pub synced_folder: bool,
    /// The share of the files to read, in percent (1 to 100), drawn anew at random each run
    /// (ten runs at 10% read about two thirds of the files; 100 reads all).
    pub sample_percent: u32,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            synced_folder: false,
            sample_percent: 100,
        }
    }
}

/// What a check found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Files read back whole and found as stored.
    pub files_ok: u64,
    /// Files not drawn for this run's sample.
    pub files_skipped: u64,
    /// Bytes of the files read back.
    pub bytes_checked: u64,
    /// The files that could not be read back as stored, with why (`corrupt`: a chunk or the
    /// whole file failed its check; `not-found`: a pack is gone).
    pub damaged: Vec<(String, Error)>,
    /// How long it took.
    pub duration: Duration,
}

/// Takes the bytes, keeps none.
struct Discard;

impl Sink for Discard {
    async fn write(&mut self, _data: &[u8]) -> Result<()> {
        Ok(())
    }
}

impl Session {
    /// Reads back every file of the backup (or, with `synced_folder`, the synced folder)
    /// `name`, or a random share of them, from the bucket and checks each chunk and each whole
    /// file, writing nothing. `progress` is called with each file's path as its bytes arrive.
    ///
    /// # Errors
    /// `Config` for a bad name or share; `Cancelled` after [`Session::cancel_sync`]; a request
    /// error that is not about what is stored (network, credentials, throttling) stops the
    /// check. A file whose chunks are damaged (`corrupt`) or missing (`not-found`) is in the
    /// report's `damaged`, and the rest goes on.
    pub async fn verify<T: Transport + ?Sized>(
        &self,
        name: &str,
        options: &VerifyOptions,
        transport: &T,
        concurrency: usize,
        mut progress: impl FnMut(&str, FileProgress),
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        if !(1..=100).contains(&options.sample_percent) {
            return Err(Error::Config(format!(
                "a sample of {}%: give 1 to 100",
                options.sample_percent
            )));
        }
        let root = root_for(name, options.synced_folder)?;
        let prefix = content_key(&root, "");
        let seed: [u8; 32] = crate::entropy::Entropy::from_os()?.array();
        let drawn = |rel: &str| {
            let mut hasher = blake3::Hasher::new_keyed(&seed);
            hasher.update(rel.as_bytes());
            let roll = u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().unwrap());
            roll % 100 < u64::from(options.sample_percent)
        };
        let mut report = VerifyReport::default();
        self.clear_cancel();
        for key in self.keys(prefix.as_bytes())? {
            let rel = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            if !drawn(&rel) {
                report.files_skipped += 1;
                continue;
            }
            if self.take_cancel() {
                return Err(Error::Cancelled);
            }
            let read = self
                .get_file(&key, &mut Discard, transport, concurrency, |p| {
                    progress(&rel, p)
                })
                .await;
            match read {
                Ok(_) => {
                    report.files_ok += 1;
                    let info = self.read(|e| e.file_info(&key))?;
                    report.bytes_checked += info.ok().flatten().map_or(0, |i| i.size);
                }
                // What the bucket holds is damaged or missing.
                Err(e) if matches!(e.category(), Category::Corrupt | Category::NotFound) => {
                    report.damaged.push((rel, e))
                }
                // The check itself failed (network, credentials, cancelled): nothing is known
                // of the rest.
                Err(e) => return Err(e),
            }
        }
        report.duration = started.elapsed();
        Ok(report)
    }
}
