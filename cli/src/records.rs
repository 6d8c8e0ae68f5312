//! `export` and `import`: the vault's records as JSON Lines, to a file or stdout and back. The
//! line format and the merge are the core's (`bucketsync::export`, `Session::import_records`).

use std::io::{BufReader, BufWriter};
use std::path::Path;

use bucketsync::export::{ExportReport, ImportReport};
use bucketsync::Error;
use serde_json::json;

use crate::args::Global;
use crate::output::{Failure, Output};
use crate::running::sync_unless_offline;
use crate::vault;

type Outcome = std::result::Result<(), Failure>;

/// The file named, or `None` for stdin or stdout (no file, or `-`).
fn named(file: Option<&Path>) -> Option<&Path> {
    file.filter(|f| f.as_os_str() != "-")
}

pub async fn export(g: &Global, out: Output, file: Option<&Path>, history: bool) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let report = match named(file) {
        Some(path) => {
            let failed =
                |e: std::io::Error| Error::Config(format!("cannot write {}: {e}", path.display()));
            let mut writer = BufWriter::new(std::fs::File::create(path).map_err(failed)?);
            let report = vault.session.export_records(&mut writer, history)?;
            writer
                .into_inner()
                .map_err(|e| failed(e.into_error()))?
                .sync_all()
                .map_err(failed)?;
            report
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            vault.session.export_records(&mut stdout, history)?
        }
    };
    let file = named(file).map(Path::to_path_buf);
    let text = || export_text(&report, file.as_deref());
    let value = || {
        json!({
            "file": file.as_ref().map(|f| f.display().to_string()),
            "lines": report.lines,
            "deleted": report.deleted,
            "history": report.history,
            "files_left_out": report.files,
            "shared_left_out": report.shared,
        })
    };
    match &file {
        Some(_) => out.result(text, value),
        // The records are on stdout: what was done goes to stderr.
        None if out.json => eprintln!("{}", value()),
        None => eprintln!("{}", text()),
    }
    Ok(())
}

fn export_text(r: &ExportReport, file: Option<&Path>) -> String {
    let mut text = format!(
        "Exported {} records ({} deleted)",
        r.lines - r.history,
        r.deleted
    );
    if r.history > 0 {
        text.push_str(&format!(" and {} earlier versions", r.history));
    }
    if let Some(file) = file {
        text.push_str(&format!(" to {}", file.display()));
    }
    text.push('.');
    if r.files > 0 {
        text.push_str(&format!(
            " {} files were left out (copy them with get-file and put-file).",
            r.files
        ));
    }
    if r.shared > 0 {
        text.push_str(&format!(
            " {} shared vaults of this home were left out (their records hold keys).",
            r.shared
        ));
    }
    text
}

pub async fn import(g: &Global, out: Output, file: Option<&Path>) -> Outcome {
    let vault = vault::open_existing(g)?;
    let report = match named(file) {
        Some(path) => {
            let input = std::fs::File::open(path)
                .map_err(|e| Error::Config(format!("cannot open {}: {e}", path.display())))?;
            vault.session.import_records(BufReader::new(input))?
        }
        None => vault.session.import_records(std::io::stdin().lock())?,
    };
    let changed = report.imported + report.deleted > 0;
    let synced = match changed {
        true => sync_unless_offline(g, &vault, out).await?,
        false => None,
    };
    out.result(
        || {
            let mut text = import_text(&report);
            text.push_str(match (changed, &synced) {
                (false, _) => "",
                (true, Some(_)) => " Pushed.",
                (true, None) => " The next sync pushes the changes.",
            });
            text
        },
        || {
            json!({
                "lines": report.lines,
                "imported": report.imported,
                "deleted": report.deleted,
                "unchanged": report.unchanged,
                "older": report.older,
                "history": report.history,
                "pushed": synced.is_some(),
            })
        },
    );
    Ok(())
}

fn import_text(r: &ImportReport) -> String {
    let mut text = format!(
        "Read {} lines: {} records written, {} deleted, {} unchanged, {} older than the vault's",
        r.lines, r.imported, r.deleted, r.unchanged, r.older
    );
    if r.history > 0 {
        text.push_str(&format!(", {} earlier versions skipped", r.history));
    }
    text.push('.');
    text
}
