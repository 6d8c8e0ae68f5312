//! What every command that talks to the store shares: a sync, Ctrl-C, progress on the
//! terminal.

use std::future::Future;

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::{Error, SyncReport};

use crate::args::Global;
use crate::output::{Failure, Output};
use crate::vault::Vault;

/// Runs `work` until it ends; a Ctrl-C meanwhile asks the session to stop (the work then ends
/// with `Cancelled`, having lost nothing).
pub(crate) async fn until_interrupted<T>(
    vault: &Vault,
    work: impl Future<Output = bucketsync::Result<T>>,
) -> bucketsync::Result<T> {
    tokio::pin!(work);
    tokio::select! {
        result = &mut work => result,
        _ = tokio::signal::ctrl_c() => {
            vault.session.cancel_sync();
            work.await
        }
    }
}

/// A sync; the errors it met without failing are shown as warnings.
pub(crate) async fn sync(vault: &Vault, out: Output) -> std::result::Result<SyncReport, Failure> {
    let report = until_interrupted(
        vault,
        vault
            .session
            .sync(&vault.transport, DEFAULT_CONCURRENCY, |_| {}),
    )
    .await
    .map_err(interrupted("the sync stopped; the next one goes on"))?;
    for e in &report.errors {
        out.warn(&e.to_string());
    }
    Ok(report)
}

/// A sync unless `--offline`.
pub(crate) async fn sync_unless_offline(
    g: &Global,
    vault: &Vault,
    out: Output,
) -> std::result::Result<Option<SyncReport>, Failure> {
    if g.offline {
        return Ok(None);
    }
    sync(vault, out).await.map(Some)
}

pub(crate) fn interrupted(what: &'static str) -> impl Fn(Error) -> Failure {
    move |e| match e {
        Error::Cancelled => Failure::Interrupted(what.into()),
        e => Failure::Core(e),
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A progress bar for a transfer of `total` bytes on stderr (drawn only on a terminal, and
/// not with `--json`).
pub(crate) fn progress_bar(out: Output, total: Option<u64>) -> indicatif::ProgressBar {
    if out.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar =
        indicatif::ProgressBar::with_draw_target(total, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes}  {binary_bytes_per_sec}  ETA {eta}",
    )
    .expect("the template is valid");
    bar.set_style(style);
    bar
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
