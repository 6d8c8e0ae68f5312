//! The lock protocol of a state file, one for every platform: a native process (Python, the
//! command line, Swift/Kotlin, Rust) and a Node process opening the same state exclude each
//! other. These are its rules; each host does the file operations (`file_system::OsFs` natively,
//! `fileStorage` in the npm package's JS layer, which calls these through the wasm module).
//!
//! - **Taking it.** The lock is the file `<state>.lock`, created exclusively (`O_EXCL`: of two
//!   processes creating it at once, one succeeds), holding one line naming its holder
//!   ([`holder_text`]). Native processes also take the OS's advisory lock on that file while
//!   they hold it, which keeps out releases before this protocol (they only took that one).
//! - **Letting go.** The holder removes the file, if it still names it.
//! - **A holder that is gone** (a process killed before it let go): a lock file is stale when
//!   [`is_stale`] says so, and is then removed under a guard file `<state>.lock.takeover`
//!   (created exclusively, stale by the same rule) by a taker that reads it again and removes
//!   it only if it still names the same holder. Then the lock is taken as above.
//! - **Within one process**, each host keeps the set of the lock files it holds: a second vault
//!   of the same process is refused as any other holder is.

/// The line a holder writes into the lock file: `process PID on host HOST, since SINCE`, with
/// what it holds the state for after it (`, device …`), which other openers are shown.
pub fn holder_text(pid: u32, host: &str, since: &str, what: Option<&str>) -> String {
    let host: String = host
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == ',' {
                '_'
            } else {
                c
            }
        })
        .collect();
    let host = if host.is_empty() { "unknown" } else { &host };
    match what {
        Some(what) => format!("process {pid} on host {host}, since {since}, {what}"),
        None => format!("process {pid} on host {host}, since {since}"),
    }
}

/// Who a lock file's text names: the process, and its host when the text says (releases
/// before this protocol wrote `device … (process PID)`, with no host).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    /// The process id.
    pub pid: u32,
    /// The host it runs on.
    pub host: Option<String>,
}

/// The holder `text` names, if it names one.
pub fn holder(text: &str) -> Option<Holder> {
    let at = text.find("process ")?;
    let rest = &text[at + "process ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let pid = rest[..digits].parse().ok()?;
    let host = rest[digits..]
        .strip_prefix(" on host ")
        .and_then(|h| h.split(',').next())
        .map(str::to_owned);
    Some(Holder { pid, host })
}

/// How long a lock file that names nobody may stay: its maker died between creating and
/// writing it.
pub const UNNAMED_GRACE_MS: u64 = 10_000;

/// Whether the holder that a lock file's `text` names is gone, for a process `pid` on `host`:
/// a process of this host that no longer runs (`alive` says), or, when `own_is_gone`, this
/// process's own id in a lock file this process does not hold (left by an earlier process that
/// had the same id, as in a restarted container). A file that names nobody is gone once it is
/// `age_ms` > [`UNNAMED_GRACE_MS`] old. A holder on another host is never taken for gone.
pub fn is_stale(
    text: &str,
    age_ms: u64,
    host: &str,
    pid: u32,
    own_is_gone: bool,
    alive: impl FnOnce(u32) -> bool,
) -> bool {
    let text = text.trim();
    if text.is_empty() {
        return age_ms > UNNAMED_GRACE_MS;
    }
    let Some(named) = holder(text) else {
        return false;
    };
    if named
        .host
        .as_deref()
        .is_some_and(|h| h != holder_host(host))
    {
        return false;
    }
    if named.pid == pid {
        return own_is_gone;
    }
    !alive(named.pid)
}

/// `host` as [`holder_text`] writes it.
fn holder_host(host: &str) -> String {
    let text = holder_text(0, host, "", None);
    holder(&text).and_then(|h| h.host).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_named_and_read_back() {
        let text = holder_text(4242, "lab one", "2026-11-28T09:00:00Z", Some("device ab12"));
        assert_eq!(
            text,
            "process 4242 on host lab_one, since 2026-11-28T09:00:00Z, device ab12"
        );
        assert_eq!(
            holder(&text),
            Some(Holder {
                pid: 4242,
                host: Some("lab_one".into())
            })
        );
        // What releases before this protocol wrote: no host.
        assert_eq!(
            holder("device 00ff (process 77)"),
            Some(Holder {
                pid: 77,
                host: None
            })
        );
        assert_eq!(holder("someone"), None);
    }

    #[test]
    fn only_a_holder_of_this_host_that_no_longer_runs_is_gone() {
        let mine = holder_text(10, "here", "t", None);
        let other = holder_text(20, "here", "t", None);
        let elsewhere = holder_text(20, "there", "t", None);
        let dead = |_| false;
        let alive = |_| true;
        assert!(is_stale(&other, 0, "here", 10, false, dead));
        assert!(!is_stale(&other, 0, "here", 10, false, alive));
        assert!(!is_stale(&elsewhere, 0, "here", 10, false, dead));
        // This process's own id: gone only when this process does not hold it.
        assert!(!is_stale(&mine, 0, "here", 10, false, dead));
        assert!(is_stale(&mine, 0, "here", 10, true, alive));
        // A file that names nobody, after the grace; a text that names no process, never.
        assert!(!is_stale("", UNNAMED_GRACE_MS, "here", 10, false, alive));
        assert!(is_stale(
            "  ",
            UNNAMED_GRACE_MS + 1,
            "here",
            10,
            false,
            alive
        ));
        assert!(!is_stale("someone", u64::MAX, "here", 10, false, dead));
        // The old native text (no host): gone when its process is.
        assert!(is_stale(
            "device 00ff (process 20)",
            0,
            "here",
            10,
            false,
            dead
        ));
    }
}
