//! `backup`, `restore` and `verify`: a folder into the vault under `backup/<name>/`, back,
//! and read back to check it. The rules (what is unchanged, what is deleted, what a restore
//! refuses) are the core's (`bucketsync::backup`, `bucketsync::verify`); this prints what
//! they did.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bucketsync::backup::{
    default_name, root_for, root_of, BackupOptions, BackupReport, RestoreOptions, RestoreReport,
};
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::files::FileProgress;
use bucketsync::Error;
use serde_json::json;

use crate::args::{BackupArgs, Global, RestoreArgs, VerifyArgs};
use crate::output::{Failure, Output};
use crate::running::{interrupted, spinner, sync_unless_offline, until_interrupted};
use crate::text::bytes;
use crate::vault;

fn show_progress(bar: &indicatif::ProgressBar) -> impl FnMut(&str, FileProgress) + '_ {
    move |path: &str, p: FileProgress| {
        let total = p
            .bytes_total
            .map_or_else(String::new, |t| format!("/{}", bytes(t)));
        bar.set_message(format!("{path}  {}{total}", bytes(p.bytes_done)));
        bar.tick();
    }
}

/// A backup's progress as a whole, against the totals a dry run found first: files and bytes
/// done, the rate so far, and the time left at that rate.
struct Tally {
    files_total: u64,
    bytes_total: u64,
    /// Files finished, and their bytes.
    files_done: u64,
    bytes_before: u64,
    /// The file being stored, and its bytes done.
    current: Option<(String, u64)>,
}

impl Tally {
    fn new(totals: &BackupReport) -> Tally {
        Tally {
            files_total: totals.files_stored,
            bytes_total: totals.bytes_read,
            files_done: 0,
            bytes_before: 0,
            current: None,
        }
    }

    /// Takes `path`'s progress `elapsed` after the start; the line to show.
    fn line(&mut self, path: &str, p: FileProgress, elapsed: Duration) -> String {
        match &mut self.current {
            Some((at, done)) if at == path => *done = p.bytes_done,
            current => {
                if let Some((_, done)) = current.take() {
                    self.files_done += 1;
                    self.bytes_before += done;
                }
                *current = Some((path.to_owned(), p.bytes_done));
            }
        }
        let done = self.bytes_before + p.bytes_done;
        let secs = elapsed.as_secs_f64();
        let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
        let left = match rate > 0.0 {
            true => {
                let left = self.bytes_total.saturating_sub(done) as f64 / rate;
                format!(
                    ", {} left",
                    indicatif::HumanDuration(Duration::from_secs_f64(left))
                )
            }
            false => String::new(),
        };
        format!(
            "{}/{} files, {}/{}, {}/s{left}  {path}",
            (self.files_done + 1).min(self.files_total.max(1)),
            self.files_total,
            bytes(done),
            bytes(self.bytes_total),
            bytes(rate as u64),
        )
    }
}

/// Progress on the bar: against `totals` when known, else the file's own.
fn show_totals<'a>(
    bar: &'a indicatif::ProgressBar,
    totals: Option<&BackupReport>,
) -> impl FnMut(&str, FileProgress) + 'a {
    let mut tally = totals.map(Tally::new);
    let mut each = show_progress(bar);
    let started = Instant::now();
    move |path: &str, p: FileProgress| match &mut tally {
        Some(tally) => {
            bar.set_message(tally.line(path, p, started.elapsed()));
            bar.tick();
        }
        None => each(path, p),
    }
}

fn errors_json(errors: &[(String, Error)]) -> Vec<serde_json::Value> {
    errors
        .iter()
        .map(|(path, e)| json!({"path": path, "category": e.category().as_str(), "message": e.to_string()}))
        .collect()
}

pub async fn backup(g: &Global, out: Output, args: &BackupArgs) -> Result<(), Failure> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => default_name(&args.dir)?,
    };
    let root = root_of(&name)?;
    let vault = vault::open_existing(g)?;
    let options = BackupOptions {
        exclude: args.exclude.clone(),
        include_hidden: args.include_hidden,
        dry_run: args.dry_run,
        delete: args.delete,
    };
    let bar = spinner(out);
    // On a terminal, a dry run first (it reads no file) gives the totals the bar shows the
    // rate and the time left against.
    let totals = if bar.is_hidden() || args.dry_run {
        None
    } else {
        let dry = BackupOptions {
            dry_run: true,
            ..options.clone()
        };
        vault
            .session
            .backup(&args.dir, &name, &dry, &vault.transport, 1, |_, _| {})
            .await
            .ok()
    };
    let outcome = until_interrupted(
        &vault,
        vault.session.backup(
            &args.dir,
            &name,
            &options,
            &vault.transport,
            DEFAULT_CONCURRENCY,
            show_totals(&bar, totals.as_ref()),
        ),
    )
    .await;
    bar.finish_and_clear();
    let report = outcome.map_err(interrupted(
        "what was stored so far stays; the next backup skips it",
    ))?;
    let pushed = if args.dry_run {
        false
    } else {
        sync_unless_offline(g, &vault, out).await?.is_some()
    };
    print_backup(out, &args.dir, &root, &report, pushed);
    incomplete(&report.errors, out, "could not be backed up")
}

fn print_backup(out: Output, dir: &Path, root: &str, r: &BackupReport, pushed: bool) {
    out.result(
        || {
            format!(
                "{}{} as {root}: {} files stored ({} new, {} changed; {} read, {} chunks sent \
                 in {} packs, {} already in the vault, {} sent in {} requests), {} unchanged, \
                 {} deleted, {} folders, {} links, {} errors, in {:.1} s{}.",
                if r.dry_run {
                    "Would back up "
                } else {
                    "Backed up "
                },
                dir.display(),
                r.files_stored,
                r.files_new,
                r.files_changed,
                bytes(r.bytes_read),
                r.chunks_uploaded,
                r.packs,
                r.chunks_reused,
                bytes(r.bytes_sent),
                r.requests,
                r.files_unchanged,
                r.deleted,
                r.dirs,
                r.symlinks,
                r.errors.len(),
                r.duration.as_secs_f64(),
                match (r.dry_run, pushed) {
                    (true, _) => " (dry run: nothing changed)",
                    (false, true) => "",
                    (false, false) => "; the next sync pushes it",
                }
            )
        },
        || {
            json!({
                "root": root,
                "dry_run": r.dry_run,
                "files_stored": r.files_stored,
                "files_new": r.files_new,
                "files_changed": r.files_changed,
                "files_unchanged": r.files_unchanged,
                "deleted": r.deleted,
                "dirs": r.dirs,
                "symlinks": r.symlinks,
                "bytes_read": r.bytes_read,
                "chunks_uploaded": r.chunks_uploaded,
                "chunks_reused": r.chunks_reused,
                "bytes_sent": r.bytes_sent,
                "packs": r.packs,
                "requests": r.requests,
                "seconds": r.duration.as_secs_f64(),
                "pushed": pushed,
                "errors": errors_json(&r.errors),
            })
        },
    );
}

/// Each path's error as a warning, and a failure when there were any.
fn incomplete(errors: &[(String, Error)], out: Output, what: &str) -> Result<(), Failure> {
    for (path, e) in errors {
        out.warn(&format!("{path}: {e}"));
    }
    match errors.len() {
        0 => Ok(()),
        n => Err(Failure::Incomplete(format!("{n} paths {what}"))),
    }
}

pub async fn restore(g: &Global, out: Output, args: &RestoreArgs) -> Result<(), Failure> {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let name = vault
        .session
        .source_named(args.name.as_deref(), args.synced_folder)?;
    let root = root_for(&name, args.synced_folder)?;
    if vault
        .session
        .keys(format!("{root}m/").as_bytes())?
        .is_empty()
        && args.at.is_none()
    {
        return Err(Failure::NoSuchKey(root));
    }
    let target = args.to.clone().unwrap_or_else(|| PathBuf::from(&name));
    let options = RestoreOptions {
        at_ms: args.at,
        dry_run: args.dry_run,
        force: args.force,
        only: args.only.clone(),
        synced_folder: args.synced_folder,
    };
    let bar = spinner(out);
    let outcome = until_interrupted(
        &vault,
        vault.session.restore(
            &name,
            &target,
            &options,
            &vault.transport,
            DEFAULT_CONCURRENCY,
            show_progress(&bar),
        ),
    )
    .await;
    bar.finish_and_clear();
    let report = outcome.map_err(interrupted(
        "files written so far stay; the next restore goes on",
    ))?;
    print_restore(out, &root, &target, &report);
    for path in &report.kept_newer {
        out.warn(&format!(
            "{path}: the local file is newer than the backup; kept (--force overwrites it)"
        ));
    }
    incomplete(&report.errors, out, "could not be restored")
}

fn print_restore(out: Output, root: &str, target: &Path, r: &RestoreReport) {
    out.result(
        || {
            format!(
                "{} {root} to {}: {} files written ({}), {} unchanged, {} newer kept, {} \
                 folders, {} links, {} errors, in {:.1} s{}.",
                if r.dry_run {
                    "Would restore"
                } else {
                    "Restored"
                },
                target.display(),
                r.files_written,
                bytes(r.bytes_written),
                r.files_unchanged,
                r.kept_newer.len(),
                r.dirs,
                r.symlinks,
                r.errors.len(),
                r.duration.as_secs_f64(),
                if r.dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            )
        },
        || {
            json!({
                "root": root,
                "to": target.display().to_string(),
                "dry_run": r.dry_run,
                "files_written": r.files_written,
                "files_unchanged": r.files_unchanged,
                "kept_newer": r.kept_newer,
                "dirs": r.dirs,
                "symlinks": r.symlinks,
                "bytes_written": r.bytes_written,
                "seconds": r.duration.as_secs_f64(),
                "errors": errors_json(&r.errors),
            })
        },
    );
}

pub async fn verify(g: &Global, out: Output, args: &VerifyArgs) -> Result<(), Failure> {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let name = vault
        .session
        .source_named(args.name.as_deref(), args.synced_folder)?;
    let options = bucketsync::verify::VerifyOptions {
        synced_folder: args.synced_folder,
        sample_percent: args.sample.into(),
    };
    let bar = spinner(out);
    let outcome = until_interrupted(
        &vault,
        vault.session.verify(
            &name,
            &options,
            &vault.transport,
            DEFAULT_CONCURRENCY,
            show_progress(&bar),
        ),
    )
    .await;
    bar.finish_and_clear();
    let r = outcome.map_err(interrupted("nothing was changed"))?;
    out.result(
        || {
            format!(
                "Checked {name}: {} files read back as stored ({}), {} damaged, {} not in this \
                 sample, in {:.1} s.",
                r.files_ok,
                bytes(r.bytes_checked),
                r.damaged.len(),
                r.files_skipped,
                r.duration.as_secs_f64()
            )
        },
        || {
            json!({
                "name": name,
                "files_ok": r.files_ok,
                "files_skipped": r.files_skipped,
                "bytes_checked": r.bytes_checked,
                "seconds": r.duration.as_secs_f64(),
                "damaged": r.damaged.iter().map(|(path, e)| json!({
                    "path": path, "category": e.category().as_str(), "message": e.to_string(),
                })).collect::<Vec<_>>(),
            })
        },
    );
    for (path, e) in &r.damaged {
        out.warn(&format!("{path}: {e}"));
    }
    match r.damaged.is_empty() {
        true => Ok(()),
        false => Err(Failure::Reported(bucketsync::Category::Corrupt)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_files_and_bytes_across_files_and_says_what_is_left() {
        let totals = BackupReport {
            files_stored: 3,
            bytes_read: 4_000,
            ..BackupReport::default()
        };
        let mut tally = Tally::new(&totals);
        let at = |n| FileProgress {
            bytes_done: n,
            ..FileProgress::default()
        };
        let line = tally.line("a", at(500), Duration::from_secs(1));
        assert_eq!(
            line,
            "1/3 files, 500 B/3.91 KiB, 500 B/s, 7 seconds left  a"
        );
        tally.line("a", at(1_000), Duration::from_secs(2));
        // The next file: the first one's bytes stay counted.
        let line = tally.line("b", at(1_000), Duration::from_secs(4));
        assert_eq!(
            line,
            "2/3 files, 1.95 KiB/3.91 KiB, 500 B/s, 4 seconds left  b"
        );
        let line = tally.line("c", at(2_000), Duration::from_secs(8));
        assert!(line.starts_with("3/3 files, 3.91 KiB/3.91 KiB"), "{line}");
        assert!(line.ends_with("0 seconds left  c"), "{line}");
    }
}
