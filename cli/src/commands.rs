//! One function per command: open the replica, call the core, print what happened.

use std::io::{IsTerminal, Read, Write};

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::files::{FileProgress, ReadSource};
use bucketsync::{DeviceId, DeviceSummary, Error, OpenMode, SyncReport, VaultKey};
use serde_json::{json, Value};

use crate::args::{Cli, Command, DevicesAction, Global, SharedAction};
use crate::output::{Failure, Output};
use crate::running::{
    interrupted, now_ms, progress_bar, sync, sync_unless_offline, until_interrupted,
};
use crate::text::{bytes, shown, time};
use crate::vault::{self, Vault};

type Outcome = std::result::Result<(), Failure>;

/// A device silent this long is shown as stale (the default grace period).
const STALE_AFTER_MS: u64 = 30 * 86_400_000;

pub async fn run(cli: &Cli, out: Output) -> Outcome {
    let g = &cli.global;
    match &cli.command {
        Command::Init => init(g, out).await,
        Command::Join => join(g, out).await,
        Command::Status => status(g, out).await,
        Command::Devices { action: None } => devices(g, out).await,
        Command::Devices {
            action: Some(DevicesAction::Retire { id }),
        } => retire(g, out, id).await,
        Command::History { key } => history(g, out, key).await,
        Command::Put { key, value } => put(g, out, key, value.as_deref()).await,
        Command::Get { key } => get(g, out, key).await,
        Command::Ls { prefix } => ls(g, out, prefix.as_deref().unwrap_or("")).await,
        Command::Rm { key } => rm(g, out, key).await,
        Command::Sync => {
            let vault = vault::open_existing(g)?;
            let report = sync(&vault, out).await?;
            out.result(|| report_text(&report), || report_json(&report));
            Ok(())
        }
        Command::Watch { every } => watch(g, out, *every).await,
        Command::Export { file, history } => {
            crate::records::export(g, out, file.as_deref(), *history).await
        }
        Command::Import { file } => crate::records::import(g, out, file.as_deref()).await,
        Command::PutFile { key, path } => put_file(g, out, key, path).await,
        Command::GetFile { key, path } => get_file(g, out, key, path).await,
        Command::Doctor(args) => crate::doctor::run(g, out, args).await,
        Command::Backup(args) => crate::backup::backup(g, out, args).await,
        Command::Restore(args) => crate::backup::restore(g, out, args).await,
        Command::Verify(args) => crate::backup::verify(g, out, args).await,
        Command::Folder(args) => crate::folder::folder(g, out, args).await,
        Command::Signer(args) => crate::signer::run(g, out, args).await,
        Command::Whoami => crate::sharing::whoami(g, out),
        Command::Shared { action: None } => crate::sharing::list(g, out).await,
        Command::Shared {
            action: Some(SharedAction::Create { label, store }),
        } => crate::sharing::create(g, out, label, store.as_deref()).await,
        Command::Share {
            label,
            public,
            role,
            signer,
        } => crate::sharing::share(g, out, label, public, *role, signer.as_deref()).await,
        Command::Accept { invitation, from } => {
            crate::sharing::accept(g, out, invitation, from.as_deref()).await
        }
        Command::Members => crate::sharing::members(g, out).await,
        Command::Revoke { fingerprint } => crate::sharing::revoke(g, out, fingerprint).await,
    }
}

async fn init(g: &Global, out: Output) -> Outcome {
    let place = vault::KeyPlace::of(g)?;
    if place.exists()? {
        return Err(Error::Config(format!(
            "{place} holds a vault key already (it may be another vault's): name a new key \
             file with --key-file, or use join"
        ))
        .into());
    }
    let key = VaultKey::generate()?;
    let vault = vault::open(g, key.clone(), OpenMode::Create)?;
    // The key is kept before the vault exists: a vault nobody holds the key of is never
    // left behind. If the vault cannot be created, the key goes again.
    place.write(&key)?;
    if let Err(e) = sync(&vault, out).await {
        let _ = vault.session.close();
        place.remove();
        return Err(e);
    }
    let device = vault.session.device()?;
    let code = key.recovery_code();
    out.result(
        || {
            format!(
                "Created vault {} in {} (this device: {device}).\nThe key is in {place}.\n\n\
                 Recovery code (shown once; keep it safe: it joins the vault from another \
                 device, and anyone who has it can read the vault):\n\n    {code}\n",
                key.vault_id(),
                vault.store.display_name(),
            )
        },
        || {
            json!({
                "vault": key.vault_id().to_string(),
                "device": device.to_string(),
                "key_place": place.to_string(),
                "recovery_code": code,
            })
        },
    );
    Ok(())
}

/// The recovery code: at a prompt without echo on a terminal, else the first line of stdin.
fn read_recovery_code() -> std::result::Result<String, Failure> {
    let failed = |e: std::io::Error| Error::Config(format!("cannot read the recovery code: {e}"));
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("Recovery code: ").map_err(failed)?
    } else {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(failed)?;
        text
    };
    Ok(text.trim().to_owned())
}

async fn join(g: &Global, out: Output) -> Outcome {
    let place = vault::KeyPlace::of(g)?;
    let key = VaultKey::from_recovery_code(&read_recovery_code()?)?;
    let existing = place.exists()?;
    if existing && place.read()?.vault_id() != key.vault_id() {
        return Err(Error::Config(format!(
            "{place} holds another vault's key: name a new key file with --key-file"
        ))
        .into());
    }
    let vault = vault::open(g, key.clone(), OpenMode::Join)?;
    let report = sync(&vault, out).await?;
    if !existing {
        place.write(&key)?;
    }
    let device = vault.session.device()?;
    let records = vault.session.keys(b"")?.len();
    out.result(
        || {
            format!(
                "Joined vault {} in {} as device {device}: {records} records. The key is in \
                 {place}.",
                key.vault_id(),
                vault.store.display_name(),
            )
        },
        || {
            json!({
                "vault": key.vault_id().to_string(),
                "device": device.to_string(),
                "records": records,
                "key_place": place.to_string(),
                "sync": report_json(&report),
            })
        },
    );
    Ok(())
}

fn device_json(d: &DeviceSummary) -> Value {
    json!({
        "id": d.id.to_string(),
        "label": d.label,
        "last_push": d.last_push_ms.map(time),
        "segments": d.segments,
        "this_device": d.this_device,
        "stale": d.stale,
        "retired": d.retired,
    })
}

fn devices_table(devices: &[DeviceSummary]) -> String {
    let mut text = format!(
        "{:<32}  {:<20}  {:<20}  {:>8}  STATE\n",
        "ID", "LABEL", "LAST PUSH", "SEGMENTS"
    );
    for d in devices {
        let state = [
            (d.this_device, "this device"),
            (d.stale, "stale"),
            (d.retired, "retired"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(", ");
        text.push_str(&format!(
            "{:<32}  {:<20}  {:<20}  {:>8}  {state}\n",
            d.id.to_string(),
            d.label,
            d.last_push_ms.map_or_else(|| "never".into(), time),
            d.segments,
        ));
    }
    text
}

async fn status(g: &Global, out: Output) -> Outcome {
    let vault = vault::open_existing(g)?;
    let report = sync_unless_offline(g, &vault, out).await?;
    let session = &vault.session;
    let device = session.device()?;
    let (label, unpushed) = session.read(|e| (e.label().to_owned(), e.unpushed()))?;
    let keys = session.keys(b"")?;
    let records = keys.len();
    let (mut files, mut file_bytes) = (0u64, 0u64);
    for key in &keys {
        if let Ok(Some(info)) = session.read(|e| e.file_info(key))? {
            files += 1;
            file_bytes += info.size;
        }
    }
    let devices = session.devices(STALE_AFTER_MS)?;
    let usage = match report {
        Some(_) => Some(
            until_interrupted(&vault, session.usage(&vault.transport))
                .await
                .map_err(interrupted("the listing stopped"))?,
        ),
        None => None,
    };
    let usage_text = |u: &bucketsync::usage::Usage| {
        let kinds: Vec<String> = u
            .kinds
            .iter()
            .map(|(kind, c)| format!("{} {kind} {}", c.objects, bytes(c.bytes)))
            .collect();
        format!(
            "{} objects, {} ({})",
            u.total.objects,
            bytes(u.total.bytes),
            kinds.join(", ")
        )
    };
    out.result(
        || {
            let mut text = format!(
                "Vault     {}\nStore     {}\nDevice    {} ({device})\nRecords   {records} \
                 ({files} files, {})\nUnpushed  {unpushed}\n",
                vault.key.vault_id(),
                vault.store.display_name(),
                if label.is_empty() { "unnamed" } else { &label },
                bytes(file_bytes),
            );
            match &report {
                Some(r) => text.push_str(&format!("Synced    {}\n", report_text(r))),
                None => text.push_str("Synced    no (--offline)\n"),
            }
            if let Some(u) = &usage {
                text.push_str(&format!("Bucket    {}\n", usage_text(u)));
            }
            text.push('\n');
            text.push_str(&devices_table(&devices));
            text
        },
        || {
            json!({
                "vault": vault.key.vault_id().to_string(),
                "store": vault.store.display_name(),
                "device": {"id": device.to_string(), "label": label},
                "records": records,
                "files": files,
                "file_bytes": file_bytes,
                "unpushed": unpushed,
                "sync": report.as_ref().map(report_json),
                "bucket": usage.as_ref().map(|u| json!({
                    "objects": u.total.objects,
                    "bytes": u.total.bytes,
                    "kinds": u.kinds.iter().map(|(kind, c)| {
                        ((*kind).to_owned(), json!({"objects": c.objects, "bytes": c.bytes}))
                    }).collect::<serde_json::Map<_, _>>(),
                })),
                "devices": devices.iter().map(device_json).collect::<Vec<_>>(),
            })
        },
    );
    Ok(())
}

async fn devices(g: &Global, out: Output) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let devices = vault.session.devices(STALE_AFTER_MS)?;
    out.result(
        || devices_table(&devices),
        || json!({"devices": devices.iter().map(device_json).collect::<Vec<_>>()}),
    );
    Ok(())
}

async fn retire(g: &Global, out: Output, id: &str) -> Outcome {
    let device = DeviceId::parse(id)?;
    let vault = vault::open_existing(g)?;
    vault.session.retire(device)?;
    sync_unless_offline(g, &vault, out).await?;
    out.result(
        || format!("Retired device {device}: nobody waits for it any more."),
        || json!({"retired": device.to_string()}),
    );
    Ok(())
}

/// How a value is shown in a listing: text up to 60 characters, or what it is.
fn value_summary(vault: &Vault, key: &[u8], value: Option<&[u8]>) -> String {
    let Some(value) = value else {
        return "(deleted)".into();
    };
    if bucketsync::files::is_file_value(value) {
        return match vault.session.read(|e| e.file_info(key)) {
            Ok(Ok(Some(info))) => format!("(file, {})", bytes(info.size)),
            _ => "(file)".into(),
        };
    }
    match std::str::from_utf8(value) {
        Ok(text) if text.chars().count() > 60 => {
            format!("{}…", text.chars().take(60).collect::<String>())
        }
        Ok(text) => text.to_owned(),
        Err(_) => format!("({} bytes)", value.len()),
    }
}

async fn history(g: &Global, out: Output, key: &str) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let versions = vault.session.read(|e| e.history(key.as_bytes()))?;
    if versions.is_empty() {
        return Err(Failure::NoSuchKey(key.into()));
    }
    let labels: std::collections::HashMap<DeviceId, String> = vault
        .session
        .devices(STALE_AFTER_MS)?
        .into_iter()
        .map(|d| (d.id, d.label))
        .collect();
    let label = |d: &DeviceId| {
        labels
            .get(d)
            .filter(|l| !l.is_empty())
            .cloned()
            .unwrap_or_else(|| d.to_string())
    };
    out.result(
        || {
            versions
                .iter()
                .map(|r| {
                    format!(
                        "{}  {:<20}  {}\n",
                        time(r.stamp.hlc.wall_ms),
                        label(&r.stamp.device),
                        value_summary(&vault, key.as_bytes(), r.value.as_deref())
                    )
                })
                .collect()
        },
        || {
            json!({
                "key": key,
                "versions": versions.iter().map(|r| json!({
                    "time": time(r.stamp.hlc.wall_ms),
                    "device": r.stamp.device.to_string(),
                    "device_label": label(&r.stamp.device),
                    "deleted": r.value.is_none(),
                    "value": value_summary(&vault, key.as_bytes(), r.value.as_deref()),
                })).collect::<Vec<_>>(),
            })
        },
    );
    Ok(())
}

async fn put(g: &Global, out: Output, key: &str, value: Option<&str>) -> Outcome {
    let value = match value {
        Some(v) if v != "-" => v.as_bytes().to_vec(),
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .map_err(|e| Error::Config(format!("cannot read the value from stdin: {e}")))?;
            bytes
        }
    };
    let vault = vault::open_existing(g)?;
    let len = value.len();
    vault.session.put(key, value)?;
    let report = sync_unless_offline(g, &vault, out).await?;
    out.result(
        || match &report {
            Some(_) => format!("Wrote {key} ({len} bytes) and pushed it."),
            None => format!("Wrote {key} ({len} bytes); the next sync pushes it."),
        },
        || json!({"key": key, "bytes": len, "pushed": report.is_some()}),
    );
    Ok(())
}

async fn get(g: &Global, out: Output, key: &str) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let Some(value) = vault.session.get(key.as_bytes())? else {
        return Err(Failure::NoSuchKey(key.into()));
    };
    if bucketsync::files::is_file_value(&value) {
        return Err(Error::Config(format!("{key:?} is a file: read it with get-file")).into());
    }
    if out.json {
        let shown = match std::str::from_utf8(&value) {
            Ok(text) => json!({"key": key, "value": text}),
            Err(_) => json!({"key": key, "value_hex": hex(&value)}),
        };
        println!("{shown}");
    } else {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&value)
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::Config(format!("cannot write to stdout: {e}")))?;
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn ls(g: &Global, out: Output, prefix: &str) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let keys = vault.session.keys(prefix.as_bytes())?;
    out.result(
        || keys.iter().map(|k| format!("{}\n", shown(k))).collect(),
        || {
            let entries: Vec<Value> = keys
                .iter()
                .map(|k| match vault.session.read(|e| e.file_info(k)) {
                    Ok(Ok(Some(info))) => json!({"key": shown(k), "file": true, "size": info.size}),
                    _ => {
                        let len = vault.session.get(k).ok().flatten().map_or(0, |v| v.len());
                        json!({"key": shown(k), "file": false, "size": len})
                    }
                })
                .collect();
            json!({"keys": entries})
        },
    );
    Ok(())
}

async fn rm(g: &Global, out: Output, key: &str) -> Outcome {
    let vault = vault::open_existing(g)?;
    if vault.session.get(key.as_bytes())?.is_none() {
        return Err(Failure::NoSuchKey(key.into()));
    }
    vault.session.delete(key)?;
    let report = sync_unless_offline(g, &vault, out).await?;
    out.result(
        || match &report {
            Some(_) => format!("Deleted {key} and pushed the deletion."),
            None => format!("Deleted {key}; the next sync pushes the deletion."),
        },
        || json!({"deleted": key, "pushed": report.is_some()}),
    );
    Ok(())
}

async fn watch(g: &Global, out: Output, every: std::time::Duration) -> Outcome {
    use bucketsync::auto_sync::{AutoSyncOptions, Event};
    use bucketsync::SchedulePolicy;
    let vault = vault::open_existing(g)?;
    let options = AutoSyncOptions {
        policy: SchedulePolicy {
            interval_ms: every.as_millis().max(1) as u64,
            ..SchedulePolicy::default()
        },
        ..AutoSyncOptions::default()
    };
    // What the background sync says, one line an event (progress left out).
    let show = |event: Event| {
        let (what, keys, state) = match &event {
            Event::Changed(keys) => ("changed", keys.as_slice(), None),
            Event::Conflict(keys) => ("conflict", keys.as_slice(), None),
            Event::State(state) => ("state", &[][..], Some(*state)),
            Event::Progress(_) => return,
        };
        let shown: Vec<String> = keys.iter().map(|k| shown(k)).collect();
        let state_name = state.map(|s| s.name());
        let category = state.and_then(|s| s.error_category()).map(|c| c.as_str());
        out.result(
            || match (state_name, category) {
                (Some(_), Some(category)) => {
                    format!(
                        "{}  sync failed ({category}); trying again later",
                        time(now_ms())
                    )
                }
                (Some(state), None) => format!("{}  {state}", time(now_ms())),
                _ => format!("{}  {what}: {}", time(now_ms()), shown.join(", ")),
            },
            || match state_name {
                Some(state) => json!({"event": "state", "state": state, "category": category}),
                None => json!({"event": what, "keys": shown}),
            },
        );
    };
    tokio::select! {
        ended = vault.session.auto_sync(&vault.transport, options, show) => ended?,
        // Dropping the loop abandons a sync in flight safely; the next run resumes it.
        _ = tokio::signal::ctrl_c() => vault.session.stop_auto_sync(),
    }
    Ok(())
}

fn on_progress(bar: &indicatif::ProgressBar) -> impl FnMut(FileProgress) + '_ {
    move |p: FileProgress| {
        if let Some(total) = p.bytes_total {
            bar.set_length(total);
        }
        bar.set_position(p.bytes_done);
    }
}

async fn put_file(g: &Global, out: Output, key: &str, path: &std::path::Path) -> Outcome {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::Config(format!("cannot open {}: {e}", path.display())))?;
    let len = file
        .metadata()
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?
        .len();
    let vault = vault::open_existing(g)?;
    let mut source = ReadSource::new(file, Some(len));
    let bar = progress_bar(out, Some(len));
    let stored = until_interrupted(
        &vault,
        vault.session.put_file(
            key,
            &mut source,
            &vault.transport,
            None,
            DEFAULT_CONCURRENCY,
            on_progress(&bar),
        ),
    )
    .await;
    bar.finish_and_clear();
    let report = stored.map_err(interrupted(
        "nothing was stored; packs already sent are not sent again by the next put-file",
    ))?;
    let synced = sync_unless_offline(g, &vault, out).await?;
    out.result(
        || {
            format!(
                "Stored {key}: {}, {} chunks ({} new, {} already in the vault), {} packs, {} \
                 sent{}.",
                bytes(report.size),
                report.chunks,
                report.chunks_uploaded,
                report.chunks_reused,
                report.packs,
                bytes(report.bytes_sent),
                if synced.is_some() {
                    ""
                } else {
                    "; the next sync pushes its record"
                }
            )
        },
        || {
            json!({
                "key": key,
                "size": report.size,
                "chunks": report.chunks,
                "chunks_uploaded": report.chunks_uploaded,
                "chunks_reused": report.chunks_reused,
                "packs": report.packs,
                "bytes_sent": report.bytes_sent,
                "requests": report.requests,
                "pushed": synced.is_some(),
            })
        },
    );
    Ok(())
}

async fn get_file(g: &Global, out: Output, key: &str, path: &std::path::Path) -> Outcome {
    let vault = vault::open_existing(g)?;
    sync_unless_offline(g, &vault, out).await?;
    let size = match vault.session.read(|e| e.file_info(key.as_bytes()))? {
        Ok(Some(info)) => info.size,
        Ok(None) => return Err(Failure::NoSuchKey(key.into())),
        Err(e) => return Err(e.into()),
    };
    let bar = progress_bar(out, Some(size));
    let found = until_interrupted(
        &vault,
        vault.session.get_file_to_path(
            key.as_bytes(),
            path,
            &vault.transport,
            DEFAULT_CONCURRENCY,
            on_progress(&bar),
        ),
    )
    .await;
    bar.finish_and_clear();
    if !found.map_err(interrupted(
        "the next get-file to the same path resumes where this one stopped",
    ))? {
        return Err(Failure::NoSuchKey(key.into()));
    }
    out.result(
        || format!("Wrote {key} to {} ({}).", path.display(), bytes(size)),
        || json!({"key": key, "path": path.display().to_string(), "size": size}),
    );
    Ok(())
}

fn report_text(r: &SyncReport) -> String {
    let mut parts = vec![format!("pulled {} changes, pushed {}", r.pulled, r.pushed)];
    if !r.conflicts.is_empty() {
        parts.push(format!("{} conflicts", r.conflicts.len()));
    }
    if !r.errors.is_empty() {
        parts.push(format!("{} errors", r.errors.len()));
    }
    parts.push(format!(
        "{} requests, {} up, {} down",
        r.requests(),
        bytes(r.bytes_sent),
        bytes(r.bytes_received)
    ));
    parts.join(", ")
}

fn report_json(r: &SyncReport) -> Value {
    json!({
        "pulled": r.pulled,
        "pushed": r.pushed,
        "changed": r.changed.iter().map(|k| shown(k)).collect::<Vec<_>>(),
        "conflicts": r.conflicts.iter().map(|k| shown(k)).collect::<Vec<_>>(),
        "requests": r.requests(),
        "bytes_sent": r.bytes_sent,
        "bytes_received": r.bytes_received,
        "errors": r.errors.iter().map(|e| json!({
            "category": e.category().as_str(),
            "message": e.to_string(),
        })).collect::<Vec<_>>(),
    })
}
