//! `backup` and `restore`: a folder into the vault under `backup/<name>/`, and back. The rules
//! (what is unchanged, what is deleted, what a restore refuses) are the core's
//! (`bucketsync::backup`); this prints what they did.

use std::path::{Path, PathBuf};

use bucketsync::backup::{
    default_name, root_of, BackupOptions, BackupReport, RestoreOptions, RestoreReport,
};
use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::files::FileProgress;
use bucketsync::Error;
use clap::Args;
use serde_json::json;

use crate::args::Global;
use crate::output::{bytes, Failure, Output};
use crate::vault;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The folder to back up.
    pub dir: PathBuf,
    /// The backup's name in the vault (default: the folder's name).
    #[arg(long = "as", value_name = "NAME")]
    pub name: Option<String>,
    /// Leave out paths matching this glob (`*.tmp`, `build/**`, `node_modules`); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Back up names starting with `.` too.
    #[arg(long)]
    pub include_hidden: bool,
    /// Show what would be stored and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete from the backup what is gone from the folder (never below a folder that could
    /// not be read).
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore (optional when the vault holds only one).
    pub name: Option<String>,
    /// Where to restore to (default: a folder named after the backup, here).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,
    /// Restore the tree as it was then (RFC 3339, e.g. 2026-11-24T18:00:00Z), as far as the
    /// history kept reaches.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<u64>,
    /// Show what would be written; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Overwrite local files newer than the backup.
    #[arg(long)]
    pub force: bool,
}

fn parse_time(text: &str) -> Result<u64, String> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("{text:?} is not a time like 2026-11-24T18:00:00Z: {e}"))?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64))
}

/// A spinner naming the file being moved (stderr, on a terminal, not with `--json`).
pub(crate) fn spinner(out: Output) -> indicatif::ProgressBar {
    if out.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg}").expect("the template is valid"),
    );
    bar
}

fn show_progress(bar: &indicatif::ProgressBar) -> impl FnMut(&str, FileProgress) + '_ {
    move |path: &str, p: FileProgress| {
        let total = p
            .bytes_total
            .map_or_else(String::new, |t| format!("/{}", bytes(t)));
        bar.set_message(format!("{path}  {}{total}", bytes(p.bytes_done)));
        bar.tick();
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
    let outcome = crate::commands::until_interrupted(
        &vault,
        vault.session.backup(
            &args.dir,
            &name,
            &options,
            &vault.transport,
            DEFAULT_CONCURRENCY,
            show_progress(&bar),
        ),
    )
    .await;
    bar.finish_and_clear();
    let report = outcome.map_err(crate::commands::interrupted(
        "what was stored so far stays; the next backup skips it",
    ))?;
    let pushed = if args.dry_run {
        false
    } else {
        crate::commands::sync_unless_offline(g, &vault, out)
            .await?
            .is_some()
    };
    print_backup(out, &args.dir, &root, &report, pushed);
    incomplete(&report.errors, out, "could not be backed up")
}

fn print_backup(out: Output, dir: &Path, root: &str, r: &BackupReport, pushed: bool) {
    out.result(
        || {
            format!(
                "{}{} as {root}: {} files stored ({}, {} chunks sent, {} already in the vault), \
                 {} unchanged, {} deleted, {} folders, {} links, {} errors, in {:.1} s{}.",
                if r.dry_run {
                    "Would back up "
                } else {
                    "Backed up "
                },
                dir.display(),
                r.files_stored,
                bytes(r.bytes_read),
                r.chunks_uploaded,
                r.chunks_reused,
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
                "files_unchanged": r.files_unchanged,
                "deleted": r.deleted,
                "dirs": r.dirs,
                "symlinks": r.symlinks,
                "bytes_read": r.bytes_read,
                "chunks_uploaded": r.chunks_uploaded,
                "chunks_reused": r.chunks_reused,
                "bytes_sent": r.bytes_sent,
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
    crate::commands::sync_unless_offline(g, &vault, out).await?;
    let name = vault.session.backup_named(args.name.as_deref())?;
    let root = root_of(&name)?;
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
    };
    let bar = spinner(out);
    let outcome = crate::commands::until_interrupted(
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
    let report = outcome.map_err(crate::commands::interrupted(
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
