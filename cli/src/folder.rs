//! `folder`: a local folder synced both ways between devices. The rules (what changed where,
//! conflict copies, what is never deleted) are the core's (`bucketsync::folder_sync`).

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::files::FileProgress;
use bucketsync::folder_sync::{FolderOptions, FolderReport};
use serde_json::json;

use crate::args::{FolderArgs, Global};
use crate::output::{Failure, Output};
use crate::running::{interrupted, now_ms, spinner, until_interrupted};
use crate::text::{bytes, time};
use crate::vault::{self, Vault};

fn report_text(r: &FolderReport) -> String {
    let mut text = format!(
        "{} up, {} down, {} deleted here, {} deleted there, {} conflicts, {} sent ({} chunks \
         new, {} already in the vault), {} errors, in {:.1} s",
        r.uploaded,
        r.downloaded,
        r.deleted_here,
        r.deleted_there,
        r.conflicts.len(),
        bytes(r.bytes_sent),
        r.chunks_uploaded,
        r.chunks_reused,
        r.errors.len(),
        r.duration.as_secs_f64()
    );
    if r.dry_run {
        for (path, change) in &r.changes {
            text.push_str(&format!("\n  {:<12} {path}", change.as_str()));
        }
    }
    for copy in &r.conflicts {
        text.push_str(&format!("\n  conflict copy: {copy}"));
    }
    text
}

fn report_json(name: &str, r: &FolderReport) -> serde_json::Value {
    json!({
        "name": name,
        "uploaded": r.uploaded,
        "downloaded": r.downloaded,
        "deleted_here": r.deleted_here,
        "deleted_there": r.deleted_there,
        "conflicts": r.conflicts,
        "bytes_sent": r.bytes_sent,
        "chunks_uploaded": r.chunks_uploaded,
        "chunks_reused": r.chunks_reused,
        "seconds": r.duration.as_secs_f64(),
        "dry_run": r.dry_run,
        "changes": r.changes.iter().map(|(path, change)| json!({
            "path": path, "change": change.as_str(),
        })).collect::<Vec<_>>(),
        "errors": r.errors.iter().map(|(path, e)| json!({
            "path": path, "category": e.category().as_str(), "message": e.to_string(),
        })).collect::<Vec<_>>(),
    })
}

async fn once(
    vault: &Vault,
    args: &FolderArgs,
    name: &str,
    out: Output,
) -> Result<FolderReport, Failure> {
    let bar = spinner(out);
    let outcome = until_interrupted(
        vault,
        vault.session.sync_folder(
            &args.dir,
            name,
            &FolderOptions {
                exclude: args.exclude.clone(),
                dry_run: args.dry_run,
            },
            &vault.transport,
            DEFAULT_CONCURRENCY,
            |path: &str, p: FileProgress| {
                bar.set_message(format!("{path}  {}", bytes(p.bytes_done)));
                bar.tick();
            },
        ),
    )
    .await;
    bar.finish_and_clear();
    outcome.map_err(interrupted(
        "what was synced so far stays; the next run goes on",
    ))
}

pub async fn folder(g: &Global, out: Output, args: &FolderArgs) -> Result<(), Failure> {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => bucketsync::backup::default_name(&args.dir)?,
    };
    let vault = vault::open_existing(g)?;
    vault
        .session
        .set_mass_deletion_limit(Some(args.max_delete))?;
    if args.confirm_deletions {
        vault.session.confirm_deletions()?;
    }
    loop {
        let report = match once(&vault, args, &name, out).await {
            Err(Failure::Core(e @ bucketsync::Error::FolderMassDeletion { .. })) => {
                out.warn(
                    "if the deletions were meant, run again with --confirm-deletions \
                     (or set --max-delete)",
                );
                return Err(Failure::Core(e));
            }
            outcome => outcome?,
        };
        out.result(
            || match args.every {
                Some(_) => format!("{}  {}", time(now_ms()), report_text(&report)),
                None => format!(
                    "{} {} as folder {name}: {}",
                    if report.dry_run {
                        "Would sync (dry run, nothing changed)"
                    } else {
                        "Synced"
                    },
                    args.dir.display(),
                    report_text(&report)
                ),
            },
            || report_json(&name, &report),
        );
        for (path, e) in &report.errors {
            out.warn(&format!("{path}: {e}"));
        }
        let Some(every) = args.every else {
            return match report.errors.len() {
                0 => Ok(()),
                n => Err(Failure::Incomplete(format!(
                    "{n} paths could not be synced"
                ))),
            };
        };
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}
