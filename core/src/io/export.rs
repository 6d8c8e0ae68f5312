//! Export and import of a session's records as JSON Lines (the line format is in
//! [`crate::export`]): how a user moves data out of a vault, or in from another tool.
//!
//! An import reads the whole input before it changes anything, so a malformed line imports
//! nothing. Then each key's line merges by the vault's rule, the newer write wins: a line older
//! than (or as old as) the vault's version of its key is left out, and every other line is
//! written as a new local write (a put or a delete, journaled and pushed by the next sync). A
//! line that says no time is a write made now. Importing the same input twice changes nothing
//! the second time.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use crate::error::{Error, Result};
use crate::export::{ExportReport, ImportReport, RecordLine};
use crate::file::FileValue;
use crate::home::SHARED_PREFIX;
use crate::io::session::Session;
use crate::record::Record;

impl Session {
    /// Writes every record of the replica to `out` as JSON Lines, one key a line in key order
    /// (deleted keys included, as deletions); with `history`, each key's earlier versions
    /// kept here follow it, newest first, marked `"history": true`. Files (stored with
    /// `put_file`) are left out and counted: their records point at chunks that only this
    /// vault can read; so are a home's shared-vault records, which hold other vaults' keys.
    ///
    /// # Errors
    /// `Config` when the vault is closed or `out` fails.
    pub fn export_records(&self, out: &mut impl Write, history: bool) -> Result<ExportReport> {
        let failed = |e: std::io::Error| Error::Config(format!("writing the export failed: {e}"));
        let mut report = ExportReport::default();
        for key in self.read(|e| e.keys_ever(b""))? {
            if key.starts_with(SHARED_PREFIX.as_bytes()) {
                report.shared += 1;
                continue;
            }
            // Key by key, so that `out` is never written while the replica is held.
            let versions = self.read(|e| e.history(&key))?;
            let wanted = if history { versions.len() } else { 1 };
            for (i, version) in versions.iter().take(wanted).enumerate() {
                if version.value.as_deref().is_some_and(FileValue::is_file) {
                    report.files += u64::from(i == 0);
                    continue;
                }
                let line = RecordLine::of(&key, version, i > 0);
                out.write_all(line.to_json().as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(failed)?;
                report.lines += 1;
                report.history += u64::from(i > 0);
                report.deleted += u64::from(i == 0 && version.value.is_none());
            }
        }
        out.flush().map_err(failed)?;
        Ok(report)
    }

    /// Reads JSON Lines from `input` (see [`crate::export`]) and merges them into the vault:
    /// per key, the newest line of the input is written as a local put or delete unless the
    /// vault holds a version at least as new, or that value already. Earlier versions
    /// (`"history": true`) are never written. Made durable before it returns.
    ///
    /// # Errors
    /// `Config` naming the line (counted from 1) and what is wrong with it when a line is
    /// malformed or cannot be read: nothing is imported then. `Config` when the vault is
    /// closed or its state cannot be written (the lines written so far stay).
    pub fn import_records(&self, input: impl BufRead) -> Result<ImportReport> {
        let mut report = ImportReport::default();
        // The newest line of each key, with its place in the input.
        let mut newest: BTreeMap<Vec<u8>, (usize, RecordLine)> = BTreeMap::new();
        for (index, line) in input.split(b'\n').enumerate() {
            let number = index + 1;
            let bytes = line.map_err(|e| {
                Error::Config(format!(
                    "reading line {number} of the import failed: {e}; nothing was imported"
                ))
            })?;
            let line = match RecordLine::parse(&bytes) {
                Ok(Some(line)) => line,
                Ok(None) => continue,
                Err(e) => {
                    return Err(Error::Config(format!(
                        "line {number} of the import {e}; nothing was imported"
                    )))
                }
            };
            report.lines += 1;
            if line.history {
                report.history += 1;
                continue;
            }
            match newest.get(&line.key) {
                Some((place, kept)) if !newer(&line, number, kept, *place) => report.older += 1,
                Some(_) => {
                    report.older += 1;
                    newest.insert(line.key.clone(), (number, line));
                }
                None => {
                    newest.insert(line.key.clone(), (number, line));
                }
            }
        }
        for (key, (_, line)) in newest {
            let local = self.read(|e| e.record(&key).cloned())?;
            match decide(&line, local.as_ref()) {
                Decision::Unchanged => report.unchanged += 1,
                Decision::Older => report.older += 1,
                Decision::Write => match line.value {
                    Some(value) => {
                        self.put(key, value)?;
                        report.imported += 1;
                    }
                    None => {
                        self.delete(key)?;
                        report.deleted += 1;
                    }
                },
            }
        }
        self.save()?;
        Ok(report)
    }
}

/// Whether `line` (at `place` in the input) wins over `kept` (at `kept_place`), two lines of
/// one key: the greater stamp, a line without a time counting as written now; on a tie, the
/// later line.
fn newer(line: &RecordLine, place: usize, kept: &RecordLine, kept_place: usize) -> bool {
    // `None` (no time: now) sorts after every stamp.
    let order = |l: &RecordLine| (l.stamp().is_none(), l.stamp());
    (order(line), place) > (order(kept), kept_place)
}

/// What an import does with a key's newest line.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// The vault holds that value already, or the key is absent or deleted for a deletion.
    Unchanged,
    /// The vault's version is at least as new as the line.
    Older,
    /// Write the line's value, or its deletion, as a new local write.
    Write,
}

fn decide(line: &RecordLine, local: Option<&Record>) -> Decision {
    let local_value = local.and_then(|r| r.value.as_deref());
    match (&line.value, local_value) {
        (Some(value), Some(held)) if value.as_slice() == held => return Decision::Unchanged,
        (None, None) => return Decision::Unchanged,
        _ => {}
    }
    match (line.stamp(), local) {
        (Some(stamp), Some(local)) if local.stamp >= stamp => Decision::Older,
        _ => Decision::Write,
    }
}
