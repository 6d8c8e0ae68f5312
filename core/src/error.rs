//! The one error type of the core, and the categories every binding maps.

use core::fmt;

/// What kind of failure an [`Error`] is, independent of its details.
///
/// Every binding maps these to its own idiom (an exception class in Python, an `Error`
/// subclass with `.category` in JS, a sealed error type in Swift/Kotlin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Category {
    /// Bad input or configuration: a store URL, a recovery code, an argument.
    Config,
    /// The store refused our credentials or signature.
    Auth,
    /// A bucket or object that should exist does not.
    NotFound,
    /// The store asked us to slow down (503 SlowDown and friends).
    Throttled,
    /// A request did not finish in time.
    Timeout,
    /// The store could not be reached.
    Network,
    /// The store answered with an error or with something we cannot understand.
    Server,
    /// An object failed authentication or does not decode: damaged, truncated or misplaced.
    Corrupt,
    /// An object or local state belongs to another vault (another key).
    WrongVault,
    /// A manifest is older than one already trusted for that device.
    Rollback,
    /// An operation collides with another one (a sync already running, a failed precondition).
    Conflict,
    /// The local state is held by another process, tab or vault object (one writer per
    /// device).
    Locked,
    /// A device's clock runs too far ahead of this one's: what it wrote since is held here.
    Clock,
    /// Sharing: not a member of the vault, a grant meant for another identity, revoked, or
    /// writing with the read role.
    Access,
}

impl Category {
    /// The stable, kebab-case name of the category (`"wrong-vault"`), used by the bindings.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Config => "config",
            Category::Auth => "auth",
            Category::NotFound => "not-found",
            Category::Throttled => "throttled",
            Category::Timeout => "timeout",
            Category::Network => "network",
            Category::Server => "server",
            Category::Corrupt => "corrupt",
            Category::WrongVault => "wrong-vault",
            Category::Rollback => "rollback",
            Category::Conflict => "conflict",
            Category::Locked => "locked",
            Category::Clock => "clock",
            Category::Access => "access",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong in the core.
///
/// Messages name objects and stores, never a key, a secret or a record's contents.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bad configuration or argument; the message says exactly what is wrong.
    Config(String),
    /// An object failed its checks. `object` is its name inside the vault folder.
    Corrupt {
        /// The object's name inside the vault folder (`m/<device>`, `s/<device>/<seq>`).
        object: String,
        /// What failed.
        reason: String,
    },
    /// An object or a local state was made with another vault key.
    WrongVault {
        /// The object's name, or `local state`.
        object: String,
    },
    /// A device's manifest went back to an older sequence number than one already trusted.
    Rollback {
        /// The manifest's name.
        object: String,
        /// The highest sequence number trusted so far.
        trusted: u64,
        /// The sequence number found.
        found: u64,
    },
    /// A device's manifest names fewer segments than are known to exist, or is gone: the store
    /// serves an old manifest (frozen) or lost one. Category `rollback`.
    Frozen {
        /// The manifest's name.
        object: String,
        /// How many segments the manifest in the store names; `None` when it is gone.
        found: Option<u64>,
        /// How many are known to exist.
        known: u64,
        /// The device (32 hex digits) whose manifest says it merged `known` of them; `None`
        /// when this replica trusted that many itself.
        seen_by: Option<String>,
    },
    /// The store answered a request with an error status.
    Http {
        /// Category derived from the status and the S3 error code.
        category: Category,
        /// HTTP status code.
        status: u16,
        /// The S3 error code (`NoSuchKey`, `SlowDown`, …) when the body had one.
        code: Option<String>,
        /// What was being done, e.g. `GET m/0a1b…` or `LIST` with the store's name.
        context: String,
    },
    /// The transport failed before a response arrived.
    Transport {
        /// `Network` or `Timeout`.
        category: Category,
        /// What happened, from the transport.
        message: String,
    },
    /// `start_sync` was called while a sync is running.
    SyncInProgress,
    /// A background sync was started while one runs on the same vault.
    AutoSyncRunning,
    /// The app cancelled the sync.
    Cancelled,
    /// The local state is in use by another writer of the same device.
    Locked {
        /// The state, as the host names it (a path, a lock name).
        state: String,
        /// Who holds it, as far as known (device id, process id).
        holder: String,
    },
    /// A join found no vault for this key in the store: the key or the prefix is wrong, or the
    /// vault was never created.
    NoVault {
        /// The store, as shown to users.
        store: String,
        /// How many other vaults the store's prefix holds (as far as one listing page shows).
        others: u64,
    },
    /// `create` found a vault for this key in the store already.
    VaultExists {
        /// The store, as shown to users.
        store: String,
        /// How many devices its listing shows.
        devices: u64,
    },
    /// An object is stamped further ahead of this device's clock than the policy's
    /// `max_future_ms` allows: it is not merged (so it neither wins over later writes nor moves
    /// this device's clock), and is read again at each sync until the clocks agree. Reported
    /// for this replica's own id when its clock ran ahead and came back (it then starts over).
    ClockAhead {
        /// The object (`m/<device>`, `s/<device>/<seq>`, `c/…`), or `local clock`.
        object: String,
        /// The device whose clock ran ahead (32 hex digits).
        device: String,
        /// How far ahead, in milliseconds.
        ahead_ms: u64,
    },
    /// Another device's latest manifest is stamped further ahead of this device's clock than
    /// two clocks of the vault may be apart (twice the policy's `max_clock_skew_ms`: each clock
    /// within that skew of the true time), though not so far that it is held
    /// ([`Error::ClockAhead`]). Its records are merged; the report says that a clock is or was
    /// wrong: last-write-wins and the collection of tombstones assume the margin. Reported at
    /// each sync until the present reaches the stamp (a clock set right leaves its stamps, and
    /// those of the clocks that took them, ahead until then).
    ClockApart {
        /// The device whose manifest is stamped ahead (32 hex digits).
        device: String,
        /// How far ahead of this device's clock, in milliseconds.
        ahead_ms: u64,
        /// How far apart two clocks may be, in milliseconds.
        margin_ms: u64,
    },
    /// Sharing refused: the message says why (a grant sealed to another identity, a role
    /// that does not allow it). Category `access`.
    Access(String),
    /// A push would delete more of the live keys than the mass-deletion guard allows.
    MassDeletion {
        /// Live keys the push would delete.
        deleting: u64,
        /// Live keys in the store before the push.
        live: u64,
        /// The guard's limit, in percent of the live keys.
        limit_percent: u8,
    },
    /// A folder sync would delete more of the folder, on this device or in the vault, than the
    /// mass-deletion guard allows: it changed nothing.
    FolderMassDeletion {
        /// The folder's name in the vault.
        folder: String,
        /// Paths (files, folders, links) the sync would delete.
        deleting: u64,
        /// Paths of the folder as last synced.
        paths: u64,
        /// Whether they would be deleted on this device (deleted elsewhere), rather than in
        /// the vault (deleted here).
        here: bool,
        /// The guard's limit, in percent (counted in records: a file is two, a folder one).
        limit_percent: u8,
    },
}

impl Error {
    /// The category bindings map this error to.
    pub fn category(&self) -> Category {
        match self {
            Error::Config(_) => Category::Config,
            Error::Corrupt { .. } => Category::Corrupt,
            Error::WrongVault { .. } => Category::WrongVault,
            Error::Rollback { .. } | Error::Frozen { .. } => Category::Rollback,
            Error::Http { category, .. } | Error::Transport { category, .. } => *category,
            Error::SyncInProgress | Error::AutoSyncRunning => Category::Conflict,
            Error::Locked { .. } => Category::Locked,
            Error::Cancelled => Category::Conflict,
            Error::NoVault { .. } => Category::NotFound,
            Error::ClockAhead { .. } | Error::ClockApart { .. } => Category::Clock,
            Error::Access(_) => Category::Access,
            Error::VaultExists { .. }
            | Error::MassDeletion { .. }
            | Error::FolderMassDeletion { .. } => Category::Conflict,
        }
    }

    /// Whether repeating the same request later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.category(),
            Category::Throttled | Category::Timeout | Category::Network | Category::Server
        )
    }

    /// This error with `note` added to what it says, when a request failed as `auth`.
    #[cfg(feature = "driver")]
    pub(crate) fn with_auth_note(self, note: &str) -> Self {
        match self {
            Error::Http {
                category: Category::Auth,
                status,
                code,
                context,
            } if !context.contains(note) => Error::Http {
                category: Category::Auth,
                status,
                code,
                context: format!("{context} ({note})"),
            },
            other => other,
        }
    }

    pub(crate) fn corrupt(object: &str, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.to_owned(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(msg) => write!(f, "configuration error: {msg}"),
            Error::Access(msg) => write!(f, "access refused: {msg}"),
            Error::Corrupt { object, reason } => write!(f, "corrupt object {object}: {reason}"),
            Error::WrongVault { object } => {
                write!(
                    f,
                    "{object} belongs to another vault (made with another key)"
                )
            }
            Error::Rollback {
                object,
                trusted,
                found,
            } => write!(
                f,
                "rollback: {object} has sequence {found}, older than the trusted {trusted}"
            ),
            Error::Frozen {
                object,
                found,
                known,
                seen_by,
            } => {
                match found {
                    Some(n) => write!(f, "rollback: {object} names {n} segments, but ")?,
                    None => write!(f, "rollback: {object} is gone from the store, but ")?,
                }
                match seen_by {
                    Some(device) => write!(f, "device {device} merged {known} of them")?,
                    None => write!(f, "this replica trusted it with {known} segments")?,
                }
                f.write_str(" (the store serves an old manifest, or lost one)")
            }
            Error::Http {
                status,
                code,
                context,
                category,
            } => {
                write!(f, "{context}: HTTP {status}")?;
                if let Some(code) = code {
                    write!(f, " {code}")?;
                }
                write!(f, " ({category})")
            }
            Error::Transport { category, message } => write!(f, "{category} error: {message}"),
            Error::SyncInProgress => f.write_str("a sync is already running on this replica"),
            Error::AutoSyncRunning => {
                f.write_str("a background sync is already running on this vault")
            }
            Error::Cancelled => f.write_str("the sync was cancelled; the next sync resumes it"),
            Error::Locked { state, holder } => write!(
                f,
                "the local state {state} is in use by {holder}; close that vault first (one writer per device), or open with another state as a new device"
            ),
            Error::NoVault { store, others } => {
                write!(f, "no vault for this key exists in {store}; ")?;
                match others {
                    0 => f.write_str("the prefix holds no other vault (wrong prefix or bucket? use create to start a new vault)"),
                    1 => f.write_str("the prefix holds 1 other vault (wrong key?)"),
                    n => write!(f, "the prefix holds {n} other vaults (wrong key?)"),
                }
            }
            Error::VaultExists { store, devices } => write!(
                f,
                "a vault for this key already exists in {store} ({devices} device{}); open it instead of creating it",
                if *devices == 1 { "" } else { "s" }
            ),
            Error::ClockAhead {
                object,
                device,
                ahead_ms,
            } => {
                let days = span(*ahead_ms);
                if object == LOCAL_CLOCK {
                    write!(
                        f,
                        "this device's clock had run {days} ahead of the present; it started over as a new device so that its writes are not held by the others"
                    )
                } else {
                    write!(
                        f,
                        "{object} is stamped {days} ahead of this device's clock by device {device}; it is held until the clocks agree (check that device's date and time)"
                    )
                }
            }
            Error::ClockApart {
                device,
                ahead_ms,
                margin_ms,
            } => write!(
                f,
                "m/{device} is stamped {} ahead of this device's clock, more than the {} two clocks of this vault may be apart: a clock is or was wrong (this device's, that device's, or one whose stamps it took; check their date and time). Until the present reaches that stamp, the later of two writes to a key can lose, and a write of a device that is behind can fall below deletions already collected",
                span(ahead_ms.div_ceil(TENTH_OF_DAY_MS) * TENTH_OF_DAY_MS),
                span(*margin_ms)
            ),
            Error::MassDeletion {
                deleting,
                live,
                limit_percent,
            } => write!(
                f,
                "this push would delete {deleting} of the {live} live keys, more than the {limit_percent}% the mass-deletion guard allows; nothing was pushed. Confirm the deletion to push it"
            ),
            Error::FolderMassDeletion {
                folder,
                deleting,
                paths,
                here,
                limit_percent,
            } => write!(
                f,
                "syncing the folder {folder:?} would delete {deleting} of its {paths} files and folders {}, more than the {limit_percent}% the mass-deletion guard allows; nothing was changed. Confirm the deletion to go on",
                if *here { "on this device (deleted elsewhere)" } else { "in the vault (deleted here)" }
            ),
        }
    }
}

impl std::error::Error for Error {}

/// Text that someone else chose (an error code from a response body, a name found inside an
/// object), fit to quote in an error message: at most 64 characters, control characters and
/// other non-printing ones escaped.
pub(crate) fn quote(text: &str) -> String {
    const MAX: usize = 64;
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX {
            out.push('…');
            break;
        }
        if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

const TENTH_OF_DAY_MS: u64 = 8_640_000;

/// A span of time as people read it: days to a tenth, or seconds below a tenth of a day.
/// Without floating point (its formatting code would grow the wasm build by kilobytes).
fn span(ms: u64) -> String {
    match ms / TENTH_OF_DAY_MS {
        0 => format!("{} s", ms / 1000),
        tenths => format!("{}.{} days", tenths / 10, tenths % 10),
    }
}

/// The `object` of a [`Error::ClockAhead`] about this replica's own clock.
pub(crate) const LOCAL_CLOCK: &str = "local clock";

/// Shorthand for results of the core.
pub type Result<T, E = Error> = core::result::Result<T, E>;
