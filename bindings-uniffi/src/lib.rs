//! Swift and Kotlin bindings of bucketsync: conversions, locking and error mapping only; every
//! rule lives in the core. Methods that do I/O are async (Swift `async throws`, Kotlin
//! `suspend`); an app may execute requests itself through [`HostTransport`].
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::Arc;

use bucketsync::auto_sync_thread::AutoSyncThread;
use bucketsync::builtin_transport::BuiltinTransport;
use bucketsync::driver::{self, Transport};
use bucketsync::http_options::HttpOptions;
use bucketsync::io::reach::{Nothing, Reach};
use bucketsync::session::{self, Durability, Session, SessionOptions, StateLocation};
use bucketsync::settings::{stale_after_ms, VaultDays};
use bucketsync::{
    redacted_url, shown_header_value, Category, CompactionPolicy, OpenMode, RequestKind,
};

mod auto_sync;
mod folders;
mod records;
mod sharing;

pub use auto_sync::{
    AutoSyncSettings, Event, EventKind, EventListener, Happening, ListenerError, SyncProgress,
    SyncState,
};
pub use records::{ExportReport, ImportReport};
pub use sharing::{Identity, Member, RevocationPin, Role, SharedVaultInfo};

uniffi::setup_scaffolding!();

/// A bucketsync failure; the variant is its category, the text says what happened.
#[derive(Debug, uniffi::Error)]
#[uniffi(flat_error)]
pub enum BucketsyncError {
    /// Bad input or configuration.
    Config(String),
    /// The store refused the credentials or signature.
    Auth(String),
    /// A bucket or object that should exist does not.
    NotFound(String),
    /// The store asked to slow down.
    Throttled(String),
    /// A request did not finish in time.
    Timeout(String),
    /// The store could not be reached (or the host transport failed).
    Network(String),
    /// The store answered with an error or something not understood.
    Server(String),
    /// An object or state failed its checks.
    Corrupt(String),
    /// An object or state belongs to another vault.
    WrongVault(String),
    /// A manifest went back to an older version.
    Rollback(String),
    /// An operation collided with another, such as a second sync at once.
    Conflict(String),
    /// The local state is in use by another process or vault object (one writer per device).
    Locked(String),
    /// A device's clock runs too far ahead: what it wrote since is held until the clocks agree.
    /// Also, with nothing held, a device's manifest stamped further ahead of this clock than
    /// two clocks may be apart (twice the allowed skew): a clock is or was wrong.
    Clock(String),
    /// Not allowed in a shared vault: an invitation sealed to another identity, sharing or
    /// revoking without the role owner (or through a vault not opened from its home), writing
    /// with the role read, syncing after an owner revoked you. In a sync report (category
    /// `access`): a write ignored because its member may not write or was revoked.
    Access(String),
}

impl std::fmt::Display for BucketsyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use BucketsyncError::*;
        match self {
            Config(m) | Auth(m) | NotFound(m) | Throttled(m) | Timeout(m) | Network(m)
            | Server(m) | Corrupt(m) | WrongVault(m) | Rollback(m) | Conflict(m) | Locked(m)
            | Clock(m) | Access(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for BucketsyncError {}

impl From<bucketsync::Error> for BucketsyncError {
    fn from(e: bucketsync::Error) -> Self {
        let m = e.to_string();
        match e.category() {
            Category::Config => Self::Config(m),
            Category::Auth => Self::Auth(m),
            Category::NotFound => Self::NotFound(m),
            Category::Throttled => Self::Throttled(m),
            Category::Timeout => Self::Timeout(m),
            Category::Network => Self::Network(m),
            Category::Corrupt => Self::Corrupt(m),
            Category::WrongVault => Self::WrongVault(m),
            Category::Rollback => Self::Rollback(m),
            Category::Conflict => Self::Conflict(m),
            Category::Locked => Self::Locked(m),
            Category::Clock => Self::Clock(m),
            Category::Access => Self::Access(m),
            _ => Self::Server(m),
        }
    }
}

/// What a host transport throws when no response arrived.
#[derive(Debug, uniffi::Error)]
pub enum TransportError {
    /// The store could not be reached.
    Network { reason: String },
    /// No answer in time.
    Timeout { reason: String },
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TransportError::Network { reason } | TransportError::Timeout { reason } => {
                f.write_str(reason)
            }
        }
    }
}

impl std::error::Error for TransportError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for TransportError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        TransportError::Network {
            reason: format!("the host transport failed: {}", e.reason),
        }
    }
}

/// One HTTP header. Printed (Kotlin `toString()`, Swift `description`) with the value of
/// `authorization` and `x-amz-security-token` hidden; the field holds the real value.
#[derive(Clone, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// A request for the host transport to execute exactly as given (it is already signed).
///
/// Its printed form (Kotlin `toString()`, Swift `description` and `debugDescription`) hides,
/// as the core's `Debug` of a request does, the values of the `authorization` and
/// `x-amz-security-token` headers and of the presigned-URL query parameters
/// `X-Amz-Signature`, `X-Amz-Credential` and `X-Amz-Security-Token`, so that logging a request
/// leaks neither the signature nor the session token. The fields hold the real values: send
/// those.
#[derive(Clone, uniffi::Record)]
#[uniffi::export(Debug, Display)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

impl Header {
    fn shown_value(&self) -> &str {
        shown_header_value(&self.name, &self.value)
    }
}

impl std::fmt::Debug for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Header")
            .field("name", &self.name)
            .field("value", &self.shown_value())
            .finish()
    }
}

impl std::fmt::Display for Header {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|h| (h.name.as_str(), h.shown_value()))
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &redacted_url(&self.url))
            .field("headers", &headers)
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}

impl std::fmt::Display for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// What the host transport answers, whatever the status.
#[derive(Clone, uniffi::Record)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<Header>,
    pub body: Vec<u8>,
}

/// Executes requests with the platform's HTTP stack (URLSession, OkHttp): background
/// sessions, proxies, certificate pinning.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait HostTransport: Send + Sync {
    /// Sends the request and returns the response; throws only when no response arrived.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError>;
}

/// The secret every device of a vault shares.
#[derive(uniffi::Object)]
pub struct VaultKey(bucketsync::VaultKey);

#[uniffi::export]
impl VaultKey {
    /// A new random key.
    #[uniffi::constructor]
    pub fn generate() -> Result<Arc<Self>, BucketsyncError> {
        Ok(Arc::new(VaultKey(bucketsync::VaultKey::generate()?)))
    }

    /// Reads a recovery code; a typo is a `Config` error.
    #[uniffi::constructor]
    pub fn from_recovery_code(code: String) -> Result<Arc<Self>, BucketsyncError> {
        Ok(Arc::new(VaultKey(
            bucketsync::VaultKey::from_recovery_code(&code)?,
        )))
    }

    /// The key as a human-typable code with a checksum.
    pub fn recovery_code(&self) -> String {
        self.0.recovery_code()
    }

    /// The vault's public id.
    pub fn vault_id(&self) -> String {
        self.0.vault_id().to_string()
    }
}

/// S3 credentials, held in memory only (an object, so that no generated `toString` shows them).
#[derive(uniffi::Object)]
pub struct Credentials(bucketsync::Credentials);

#[uniffi::export]
impl Credentials {
    #[uniffi::constructor]
    pub fn new(
        access_key_id: String,
        secret_access_key: String,
        session_token: Option<String>,
    ) -> Result<Arc<Self>, BucketsyncError> {
        Ok(Arc::new(Credentials(bucketsync::Credentials::new(
            access_key_id,
            secret_access_key,
            session_token,
        )?)))
    }
}

/// An object the last sync could not import, or a request that failed.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncIssue {
    pub category: String,
    pub message: String,
}

/// What one sync did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct SyncReport {
    pub pushed: u64,
    pub pulled: u64,
    pub requests: u64,
    pub list_requests: u64,
    pub get_requests: u64,
    pub put_requests: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub retries: u64,
    pub errors: Vec<SyncIssue>,
    /// Keys whose value or deletion changed here because of this sync (or of an earlier one
    /// that failed or was cancelled), sorted.
    pub changed: Vec<Vec<u8>>,
    /// Keys where a write concurrent with an unpushed write of this device arrived (one lost;
    /// `history` has both).
    pub conflicts: Vec<Vec<u8>>,
    /// This sync wrote a checkpoint of the vault (compaction).
    pub compacted: bool,
    /// Tombstones that checkpoint left out (older than the grace period, merged everywhere).
    pub collected: u64,
    /// This device's segments deleted because a checkpoint covers them.
    pub segments_deleted: u64,
    /// This device's packs deleted because no file references them any more.
    pub packs_deleted: u64,
    /// This device's mostly-garbage packs whose live chunks were moved into a new pack.
    pub packs_repacked: u64,
    /// The old device id when this device started over under a new id (out of touch longer
    /// than the grace period, or retired by another device).
    pub started_over: Option<String>,
    /// Keys whose unpushed writes were applied again with fresh stamps when it started over.
    pub restamped: Vec<Vec<u8>>,
    /// A poll (the background sync's) found the vault's change hint unmoved: nothing was
    /// published since the last poll, and the sync ended after that one conditional GET.
    /// Always false for `sync()`, which lists. `changed` may still name keys that an earlier
    /// sync that failed changed.
    pub hint_unchanged: bool,
}

/// One version of a key.
#[derive(Clone, Debug, uniffi::Record)]
pub struct Version {
    /// The value; none for a deletion.
    pub value: Option<Vec<u8>>,
    /// The device that wrote it.
    pub device: String,
    /// When, in milliseconds since the Unix epoch, by the writer's clock.
    pub time_ms: u64,
}

/// One device of the vault, as its latest manifest describes it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct DeviceInfo {
    pub id: String,
    pub label: String,
    /// Its last push, in milliseconds since the Unix epoch (by its clock); none if it never
    /// pushed.
    pub last_push_ms: Option<u64>,
    pub segments: u64,
    pub this_device: bool,
    /// Silent for longer than the `stale_after_days` asked for.
    pub stale: bool,
    /// Retired: nobody waits for it, and if it syncs again it starts over.
    pub retired: bool,
}

impl From<&bucketsync::SyncReport> for SyncReport {
    fn from(r: &bucketsync::SyncReport) -> Self {
        SyncReport {
            pushed: r.pushed,
            pulled: r.pulled,
            requests: r.requests(),
            list_requests: r.requests_of(RequestKind::List)
                + r.requests_of(RequestKind::ListVaults)
                + r.requests_of(RequestKind::ListCheckpoints)
                + r.requests_of(RequestKind::ListSegments),
            get_requests: r.requests_of(RequestKind::GetManifest)
                + r.requests_of(RequestKind::GetSegment)
                + r.requests_of(RequestKind::GetCheckpoint),
            put_requests: r.requests_of(RequestKind::PutSegment)
                + r.requests_of(RequestKind::PutManifest)
                + r.requests_of(RequestKind::PutCheckpoint)
                + r.requests_of(RequestKind::CheckCreate),
            changed: r.changed.clone(),
            conflicts: r.conflicts.clone(),
            compacted: r.compacted,
            collected: r.collected,
            segments_deleted: r.segments_deleted,
            packs_deleted: r.packs_deleted,
            packs_repacked: r.packs_repacked,
            started_over: r.started_over.map(|d| d.to_string()),
            restamped: r.restamped.clone(),
            hint_unchanged: r.hint_unchanged,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            retries: r.retries,
            errors: r
                .errors
                .iter()
                .map(|e| SyncIssue {
                    category: e.category().as_str().to_owned(),
                    message: e.to_string(),
                })
                .collect(),
        }
    }
}

enum AnyTransport {
    Builtin(BuiltinTransport),
    Host(Arc<dyn HostTransport>),
}

impl AnyTransport {
    /// The app's transport, when this is one.
    fn host(&self) -> Option<Arc<dyn HostTransport>> {
        match self {
            AnyTransport::Host(host) => Some(host.clone()),
            AnyTransport::Builtin(_) => None,
        }
    }

    /// The transport `reach` says for `store`: the app's, else the built-in one.
    fn for_reach(reach: &VaultReach, store: &bucketsync::Store) -> bucketsync::Result<Self> {
        Ok(match &reach.transport {
            Some(host) => AnyTransport::Host(host.clone()),
            None => AnyTransport::Builtin(BuiltinTransport::for_store_with(store, reach.http)?),
        })
    }
}

impl Transport for AnyTransport {
    async fn send(&self, request: bucketsync::Request) -> bucketsync::Result<bucketsync::Response> {
        match self {
            AnyTransport::Builtin(t) => t.send(request).await,
            AnyTransport::Host(t) => {
                let request = HttpRequest {
                    method: request.method.as_str().to_owned(),
                    url: request.url,
                    headers: request
                        .headers
                        .into_iter()
                        .map(|(name, value)| Header { name, value })
                        .collect(),
                    body: request.body.into(),
                };
                match t.send(request).await {
                    Ok(r) => Ok(bucketsync::Response {
                        status: r.status,
                        headers: r
                            .headers
                            .into_iter()
                            .map(|h| (h.name.to_ascii_lowercase(), h.value))
                            .collect(),
                        body: r.body,
                    }),
                    Err(e) => Err(bucketsync::Error::Transport {
                        category: match e {
                            TransportError::Timeout { .. } => Category::Timeout,
                            TransportError::Network { .. } => Category::Network,
                        },
                        message: e.to_string(),
                    }),
                }
            }
        }
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// One device's replica of a vault.
///
/// Every `put` and `delete` is in the state's journal when it returns (a killed app loses
/// nothing). The state file is locked while the vault is open; a second opener gets
/// `Locked`. Cancelling a `sync` (a Kotlin coroutine, a Swift task) leaves the vault usable and
/// its state saved; the next sync resumes where it stopped. Releasing the object (Kotlin
/// `close()`/`use {}`, Swift `deinit`) stops its background sync, saves the state and lets go
/// of its lock.
#[derive(uniffi::Object)]
pub struct Vault {
    session: Arc<Session>,
    transport: Arc<AnyTransport>,
    /// The background sync's thread, while one runs (see `start_auto_sync`).
    auto_thread: AutoSyncThread,
    listeners: auto_sync::SharedListeners,
    /// The home's session, for a shared vault opened through its home (`share` needs it).
    home: Option<Arc<Session>>,
    /// How it reaches its store, for the vaults opened through it as a home (the core's rule
    /// decides what they take of it).
    reach: VaultReach,
}

/// How a vault reaches its store: the app's host transport is its only piece of its own.
type VaultReach = Reach<Arc<dyn HostTransport>, Nothing>;

/// What `Vault::open` and the shared-vault openers (`sharing`) pass to [`Vault::open_as`].
struct Opening<'a> {
    store: &'a str,
    key: &'a bucketsync::VaultKey,
    device: Option<String>,
    state_path: Option<String>,
    credentials: Option<bucketsync::Credentials>,
    /// None: the built-in transport for the store.
    transport: Option<Arc<AnyTransport>>,
    wait_for_lock: bool,
    mode: OpenMode,
    settings: VaultSettings,
}

/// A vault's time bounds and the built-in HTTP client's deadlines; every field has a default
/// (Kotlin `VaultSettings(graceDays = 7.0)`, Swift `VaultSettings(graceDays: 7)`).
#[derive(Clone, Debug, PartialEq, uniffi::Record)]
pub struct VaultSettings {
    /// Tombstones older than this (plus twice `maxClockSkewDays`) that every active device has
    /// merged are dropped from checkpoints, and a device out of touch longer than this starts
    /// over when it returns; use the same value on every device of a vault.
    #[uniffi(default = 30.0)]
    pub grace_days: f64,
    /// How far a device's clock may be off the true time, in days (two clocks up to twice this
    /// apart; further is reported with category clock).
    #[uniffi(default = 1.0)]
    pub max_clock_skew_days: f64,
    /// What another device stamped further ahead of this clock is held (reported with category
    /// `clock`) until the clocks agree.
    #[uniffi(default = 7.0)]
    pub max_future_days: f64,
    /// The built-in HTTP client (not a `transport` of the app's): seconds a request may go
    /// with no byte moving before it fails as `Timeout`; null for the default (30 s).
    #[uniffi(default = None)]
    pub stall_timeout_seconds: Option<f64>,
    /// The built-in HTTP client: seconds one request may take in all; null for the default
    /// (900 s).
    #[uniffi(default = None)]
    pub request_timeout_seconds: Option<f64>,
}

impl Default for VaultSettings {
    /// The core's defaults (the literals above show them to Kotlin and Swift; the Kotlin test
    /// checks they agree with `default_vault_settings`).
    fn default() -> Self {
        let days = VaultDays::default();
        VaultSettings {
            grace_days: days.grace,
            max_clock_skew_days: days.max_clock_skew,
            max_future_days: days.max_future,
            stall_timeout_seconds: None,
            request_timeout_seconds: None,
        }
    }
}

/// The core's default vault settings: what `VaultSettings()` with no arguments holds.
#[uniffi::export]
pub fn default_vault_settings() -> VaultSettings {
    VaultSettings::default()
}

impl VaultSettings {
    /// The built-in HTTP client's deadlines these say.
    pub(crate) fn http(&self) -> Result<HttpOptions, BucketsyncError> {
        Ok(HttpOptions::from_seconds(
            self.stall_timeout_seconds,
            self.request_timeout_seconds,
            ["stallTimeoutSeconds", "requestTimeoutSeconds"],
        )?)
    }

    fn compaction(&self) -> Result<CompactionPolicy, BucketsyncError> {
        let days = VaultDays {
            grace: self.grace_days,
            max_clock_skew: self.max_clock_skew_days,
            max_future: self.max_future_days,
        };
        Ok(days.policy(["graceDays", "maxClockSkewDays", "maxFutureDays"])?)
    }
}

impl Vault {
    /// Opens a session as `opening` says and wraps it.
    fn open_as(opening: Opening<'_>) -> Result<Arc<Self>, BucketsyncError> {
        let state_path = opening.state_path.map(PathBuf::from);
        let http = opening.settings.http()?;
        let session = Session::open(SessionOptions {
            store: opening.store,
            key: opening.key,
            device: opening.device.as_deref(),
            mode: opening.mode,
            compaction: opening.settings.compaction()?,
            state: StateLocation::file_or_memory(state_path.as_deref(), opening.wait_for_lock),
            credentials: opening.credentials,
            environment: true,
            own_transport: matches!(opening.transport.as_deref(), Some(AnyTransport::Host(_))),
            durability: Durability::default(),
            clock: session::system_clock(),
            entropy_seed: None,
        })?;
        let host = opening.transport.as_deref().and_then(AnyTransport::host);
        let reach = Reach::of(&session, host, None, http);
        Vault::wrap(session, reach, None)
    }

    /// The object of an open session, with the transport `reach` says for its store.
    fn wrap(
        session: Session,
        reach: VaultReach,
        home: Option<Arc<Session>>,
    ) -> Result<Arc<Self>, BucketsyncError> {
        let transport = Arc::new(session.read(|e| AnyTransport::for_reach(&reach, e.store()))??);
        Ok(Arc::new(Vault {
            session: Arc::new(session),
            transport,
            auto_thread: AutoSyncThread::default(),
            listeners: auto_sync::SharedListeners::default(),
            home,
            reach,
        }))
    }
}

impl Drop for Vault {
    /// Stops the background sync (its thread holds the session too) so that the state is
    /// saved and its lock released now.
    fn drop(&mut self) {
        self.auto_thread.stop(&self.session);
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Vault {
    /// Opens a replica. `store`: `s3://bucket/prefix?region=…&endpoint=…&path_style=true` or
    /// `file:///abs/dir`. `state_path`: the local state file (created when missing, with
    /// `.journal` and `.lock` files beside it). `credentials`: for s3:// stores, else the
    /// AWS_* environment. `transport`: execute requests with the platform's HTTP stack instead
    /// of the built-in one. `wait_for_lock`: wait for another holder of the state instead of
    /// failing with `Locked`. `device`: a name for this device ("Anna's phone", kept as its
    /// label; its id is random and kept in the state) or a stable id (32 hex digits).
    /// `create`: start a new vault (the first sync fails with `Conflict` when one exists for
    /// this key); otherwise join one (a new device's first sync fails with `NotFound` when the
    /// store holds no vault for this key, so a wrong key never starts an empty vault).
    /// `settings`: the vault's time bounds and the built-in HTTP client's deadlines (null: the
    /// defaults).
    #[uniffi::constructor(default(device = None, state_path = None, credentials = None, transport = None, wait_for_lock = false, create = false, settings = None))]
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        store: String,
        key: Arc<VaultKey>,
        device: Option<String>,
        state_path: Option<String>,
        credentials: Option<Arc<Credentials>>,
        transport: Option<Arc<dyn HostTransport>>,
        wait_for_lock: bool,
        create: bool,
        settings: Option<VaultSettings>,
    ) -> Result<Arc<Self>, BucketsyncError> {
        Vault::open_as(Opening {
            store: &store,
            key: &key.0,
            device,
            state_path,
            credentials: credentials.map(|c| c.0.clone()),
            transport: transport.map(|host| Arc::new(AnyTransport::Host(host))),
            wait_for_lock,
            mode: if create {
                OpenMode::Create
            } else {
                OpenMode::Join
            },
            settings: settings.unwrap_or_default(),
        })
    }

    /// The vault's devices known here, this one included; stale: silent for longer than
    /// `stale_after_days` (null: the core's default, 30). `Config` for a negative or
    /// non-finite number.
    #[uniffi::method(default(stale_after_days = None))]
    pub fn devices(
        &self,
        stale_after_days: Option<f64>,
    ) -> Result<Vec<DeviceInfo>, BucketsyncError> {
        let stale_after = stale_after_ms(stale_after_days, "staleAfterDays")?;
        let devices = self.session.devices(stale_after)?;
        Ok(devices
            .into_iter()
            .map(|d| DeviceInfo {
                id: d.id.to_string(),
                label: d.label,
                last_push_ms: d.last_push_ms,
                segments: d.segments,
                this_device: d.this_device,
                stale: d.stale,
                retired: d.retired,
            })
            .collect())
    }

    /// The versions of `key` known here, newest first: the current one, then earlier ones
    /// (overwritten, or concurrent writes that lost).
    pub fn history(&self, key: Vec<u8>) -> Result<Vec<Version>, BucketsyncError> {
        let versions = self.session.read(|e| e.history(&key))?;
        Ok(versions
            .into_iter()
            .map(|v| Version {
                value: v.value,
                device: v.stamp.device.to_string(),
                time_ms: v.stamp.hlc.wall_ms,
            })
            .collect())
    }

    /// This device's label (empty when it has none).
    pub fn label(&self) -> Result<String, BucketsyncError> {
        Ok(self.session.read(|e| e.label().to_owned())?)
    }

    /// Lets the next sync push deletions past the mass-deletion guard (a push deleting more
    /// than half of the live keys, and at least 10, otherwise fails with `Conflict`).
    pub fn confirm_deletions(&self) -> Result<(), BucketsyncError> {
        Ok(self.session.confirm_deletions()?)
    }

    /// Marks device `id` (32 hex digits) retired, from another device: tombstones stop waiting
    /// for it, and if it syncs again it starts over under a new id. Said in this device's
    /// manifest at the next sync.
    pub fn retire(&self, id: String) -> Result<(), BucketsyncError> {
        let id = bucketsync::DeviceId::parse(&id)?;
        Ok(self.session.retire(id)?)
    }

    /// Sets `key` to `value`; in the journal when it returns.
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), BucketsyncError> {
        Ok(self.session.put(key, value)?)
    }

    /// Sets `key` to `value`, both stored as UTF-8.
    pub fn put_text(&self, key: String, value: String) -> Result<(), BucketsyncError> {
        self.put(key.into_bytes(), value.into_bytes())
    }

    /// The value of `key`, or null when absent or deleted.
    pub fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>, BucketsyncError> {
        Ok(self.session.get(&key)?)
    }

    /// The value of `key` decoded as UTF-8 (invalid bytes replaced), or null.
    pub fn get_text(&self, key: String) -> Result<Option<String>, BucketsyncError> {
        Ok(self
            .get(key.into_bytes())?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Deletes `key` (a tombstone that reaches every device).
    pub fn delete(&self, key: Vec<u8>) -> Result<(), BucketsyncError> {
        Ok(self.session.delete(key)?)
    }

    /// Live keys starting with `prefix`, sorted.
    pub fn keys(&self, prefix: Vec<u8>) -> Result<Vec<Vec<u8>>, BucketsyncError> {
        Ok(self.session.keys(&prefix)?)
    }

    /// Pulls and pushes; the state is saved either way. Cancelling it is safe.
    pub async fn sync(&self) -> Result<SyncReport, BucketsyncError> {
        let report = self
            .session
            .sync(&*self.transport, driver::DEFAULT_CONCURRENCY, |_| {})
            .await?;
        Ok(SyncReport::from(&report))
    }

    /// Syncs the journal to disk now (also done after every sync and on close).
    pub fn save(&self) -> Result<(), BucketsyncError> {
        Ok(self.session.save()?)
    }

    /// This replica's device id.
    pub fn device(&self) -> Result<String, BucketsyncError> {
        Ok(self.session.device()?.to_string())
    }

    /// Local writes not yet in the store.
    pub fn unpushed(&self) -> Result<u64, BucketsyncError> {
        Ok(self.session.read(|e| e.unpushed() as u64)?)
    }
}

/// How far a file transfer has come.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FileProgress {
    /// File bytes read from the file (put) or written to it (get) so far.
    pub bytes_done: u64,
    /// The file's length, when known.
    pub bytes_total: Option<u64>,
    pub requests_done: u64,
    pub requests_total: u64,
}

impl From<bucketsync::files::FileProgress> for FileProgress {
    fn from(p: bucketsync::files::FileProgress) -> Self {
        FileProgress {
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            requests_done: p.requests_done,
            requests_total: p.requests_total,
        }
    }
}

/// What one `put_file` did.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FileReport {
    pub size: u64,
    /// Chunks of the file (0: it lives inside its record).
    pub chunks: u64,
    /// Chunks sealed and sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault already held, not sent again.
    pub chunks_reused: u64,
    pub packs: u64,
    pub bytes_sent: u64,
    pub requests: u64,
}

/// A stored file, without fetching it.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FileInfo {
    pub size: u64,
    /// Chunks it is stored in (0: it lives inside its record).
    pub chunks: u64,
    pub packs: u64,
    /// Hex of the keyed content hash: equal for equal content within a vault and
    /// key generation (a revocation starts a new one).
    pub content_hash: String,
}

/// Told how a file transfer goes (Kotlin: implement the interface; Swift: the protocol).
/// Called on the transfer's thread: keep it short.
#[uniffi::export(with_foreign)]
pub trait FileListener: Send + Sync {
    fn on_progress(&self, progress: FileProgress);
}

/// What a `FileSource` or `FileSink` throws to stop a transfer.
#[derive(Debug, uniffi::Error)]
pub enum StreamError {
    /// Reading or writing the stream failed; the reason is kept in the transfer's error.
    Io { reason: String },
}

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamError::Io { reason } => f.write_str(reason),
        }
    }
}

impl std::error::Error for StreamError {}

impl From<uniffi::UnexpectedUniFFICallbackError> for StreamError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        StreamError::Io { reason: e.reason }
    }
}

/// Where `put_file_from` reads a file's bytes, for content with no path (an Android
/// `ContentResolver` stream, bytes made in memory). Kotlin: `InputStream.asFileSource()`;
/// Swift: `InputStreamFileSource`; or implement it.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait FileSource: Send + Sync {
    /// The next bytes, at most `max` of them; empty at the end. Throwing stops the put, and
    /// the key stays as it was.
    async fn read(&self, max: u32) -> Result<Vec<u8>, StreamError>;
}

/// Where `get_file_to` writes a file's bytes, in order. Kotlin: `OutputStream.asFileSink()`;
/// Swift: `OutputStreamFileSink`; or implement it.
#[uniffi::export(with_foreign)]
#[async_trait::async_trait]
pub trait FileSink: Send + Sync {
    /// Takes the next bytes. Throwing stops the read.
    async fn write(&self, data: Vec<u8>) -> Result<(), StreamError>;
}

/// A foreign [`FileSource`] as the core reads sources; bytes beyond what the core asked for
/// (a source that returns more than `max`) wait for the next read. The size, when given, is
/// declared: the core fails a put whose source ends before it or runs past it.
struct ForeignSource {
    source: Arc<dyn FileSource>,
    size: Option<u64>,
    /// The last piece the source gave, and how much of it was handed on.
    piece: Vec<u8>,
    used: usize,
}

impl bucketsync::files::Source for ForeignSource {
    async fn read(&mut self, buf: &mut [u8]) -> bucketsync::Result<usize> {
        if self.used == self.piece.len() {
            let max = u32::try_from(buf.len()).unwrap_or(u32::MAX);
            self.piece = self.source.read(max).await.map_err(|e| {
                bucketsync::Error::Config(format!("reading the file's source failed: {e}"))
            })?;
            self.used = 0;
        }
        let n = (self.piece.len() - self.used).min(buf.len());
        buf[..n].copy_from_slice(&self.piece[self.used..self.used + n]);
        self.used += n;
        Ok(n)
    }

    fn len_hint(&self) -> Option<u64> {
        self.size
    }

    fn declared_len(&self) -> Option<u64> {
        self.size
    }
}

/// A foreign [`FileSink`] as the core writes sinks.
struct ForeignSink(Arc<dyn FileSink>);

impl bucketsync::files::Sink for ForeignSink {
    async fn write(&mut self, data: &[u8]) -> bucketsync::Result<()> {
        self.0.write(data.to_vec()).await.map_err(|e| {
            bucketsync::Error::Config(format!("writing the file to its sink failed: {e}"))
        })
    }
}

/// One file for `put_files`: the file at `path`, stored under `key`.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FileToPut {
    pub key: Vec<u8>,
    pub path: String,
}

/// A file `put_files` stored: its size and chunks (its `packs`, `requests` and `bytes_sent`
/// are the batch's, in [`PutFilesReport`]).
#[derive(Clone, Debug, uniffi::Record)]
pub struct StoredFile {
    pub key: Vec<u8>,
    pub report: FileReport,
}

/// A file `put_files` left out, and why: `category` and `message` as a thrown
/// `BucketsyncError` would have them (`config`: it could not be read, or changed length while
/// read). Its key holds what it held before.
#[derive(Clone, Debug, uniffi::Record)]
pub struct FailedFile {
    pub key: Vec<u8>,
    pub category: String,
    pub message: String,
}

/// What one `put_files` did: each file stored or left out (lists, not maps: a Kotlin
/// `ByteArray` is not a usable map key), and what the whole batch cost.
#[derive(Clone, Debug, uniffi::Record)]
pub struct PutFilesReport {
    /// The files stored, in the order their records were written.
    pub stored: Vec<StoredFile>,
    /// The files left out. A key given twice may be in both: the file given later is the one
    /// stored, and if it fails the earlier one may be stored already.
    pub failed: Vec<FailedFile>,
    /// Chunks sealed and sent.
    pub chunks_uploaded: u64,
    /// Chunks the vault (or the batch) already held, not sent again.
    pub chunks_reused: u64,
    /// Packs written: the batch's files share them.
    pub packs: u64,
    /// Request body bytes sent (retries included).
    pub bytes_sent: u64,
    /// Requests made (retries included).
    pub requests: u64,
}

/// Told how a `put_files` goes: the file being read, `key`, is this far (Kotlin: implement
/// the interface; Swift: the protocol). Called on the transfer's thread: keep it short.
#[uniffi::export(with_foreign)]
pub trait FilesListener: Send + Sync {
    fn on_progress(&self, key: Vec<u8>, progress: FileProgress);
}

/// The files of a `put_files`, as the core's batch asks for them: each opened only then (one
/// that cannot be opened by then is left out).
struct PathBatch {
    files: std::vec::IntoIter<FileToPut>,
    listener: Option<Arc<dyn FilesListener>>,
    stored: Vec<StoredFile>,
    failed: Vec<FailedFile>,
}

impl bucketsync::files::FileBatch for PathBatch {
    type Source = bucketsync::files::ReadSource<std::fs::File>;

    fn next_file(&mut self) -> Option<(Vec<u8>, Self::Source)> {
        while let Some(FileToPut { key, path }) = self.files.next() {
            match bucketsync::files::ReadSource::open(std::path::Path::new(&path)) {
                Ok(source) => return Some((key, source)),
                Err(e) => self.failed(&key, &e),
            }
        }
        None
    }

    fn stored(&mut self, key: &[u8], report: &bucketsync::transfer::FileReport) {
        self.stored.push(StoredFile {
            key: key.to_vec(),
            report: report.clone().into(),
        });
    }

    fn failed(&mut self, key: &[u8], error: &bucketsync::Error) {
        self.failed.push(FailedFile {
            key: key.to_vec(),
            category: error.category().as_str().to_owned(),
            message: error.to_string(),
        });
    }

    fn progress(&mut self, key: &[u8], progress: bucketsync::files::FileProgress) {
        if let Some(listener) = &self.listener {
            listener.on_progress(key.to_vec(), progress.into());
        }
    }
}

impl From<bucketsync::transfer::FileReport> for FileReport {
    fn from(r: bucketsync::transfer::FileReport) -> Self {
        FileReport {
            size: r.size,
            chunks: r.chunks,
            chunks_uploaded: r.chunks_uploaded,
            chunks_reused: r.chunks_reused,
            packs: r.packs,
            bytes_sent: r.bytes_sent,
            requests: r.requests,
        }
    }
}

impl Vault {
    /// What `put_file` and `put_file_from` share: `source` stored under `key`.
    async fn store<S: bucketsync::files::Source>(
        &self,
        key: Vec<u8>,
        source: &mut S,
        listener: Option<Arc<dyn FileListener>>,
    ) -> Result<FileReport, BucketsyncError> {
        let r = self
            .session
            .put_file(
                key,
                source,
                &*self.transport,
                None,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?;
        Ok(r.into())
    }
}

#[uniffi::export(async_runtime = "tokio")]
impl Vault {
    /// Stores the file at `path` under `key`: it is cut into chunks by content, chunks the
    /// vault already holds are not sent again, the rest go up in packs; then the record is
    /// written (journaled; the next sync pushes it). A transfer that fails or is cancelled
    /// (`cancel_transfer`, or cancelling the coroutine or task) leaves `key` as it was.
    #[uniffi::method(default(listener = None))]
    pub async fn put_file(
        &self,
        key: Vec<u8>,
        path: String,
        listener: Option<Arc<dyn FileListener>>,
    ) -> Result<FileReport, BucketsyncError> {
        let mut source = bucketsync::files::ReadSource::open(std::path::Path::new(&path))?;
        self.store(key, &mut source, listener).await
    }

    /// Stores what `source` gives, up to its end, under `key`, as `put_file` stores a path's
    /// bytes. `size`, when known, shows in progress and is checked: a source that ends before
    /// it or gives more fails the put. A source that throws stops the put (`Config`, with its
    /// reason); a failed put leaves `key` as it was.
    #[uniffi::method(default(size = None, listener = None))]
    pub async fn put_file_from(
        &self,
        key: Vec<u8>,
        source: Arc<dyn FileSource>,
        size: Option<u64>,
        listener: Option<Arc<dyn FileListener>>,
    ) -> Result<FileReport, BucketsyncError> {
        let mut source = ForeignSource {
            source,
            size,
            piece: Vec::new(),
            used: 0,
        };
        self.store(key, &mut source, listener).await
    }

    /// Stores many files in one upload: small files share packs, so a folder of them costs a
    /// few requests rather than one or more per file. Each file's record is written (journaled;
    /// the next sync pushes it) once every pack holding its bytes is stored. Every path is
    /// checked before anything is sent: one that is missing or not a regular file throws
    /// `Config` and nothing is stored. A file that cannot be read later, or changes length
    /// while read, is left out (in the report's `failed`, its key as it was) and the rest go
    /// on. A key given twice stores the file given later. `pack_size`: packs are closed at about
    /// this many bytes (default 16 MiB). A request error that stops the upload, or a cancel
    /// (`cancel_transfer`, or cancelling the coroutine or task), throws; files stored before
    /// stay stored.
    #[uniffi::method(default(listener = None, pack_size = None))]
    pub async fn put_files(
        &self,
        files: Vec<FileToPut>,
        listener: Option<Arc<dyn FilesListener>>,
        pack_size: Option<u64>,
    ) -> Result<PutFilesReport, BucketsyncError> {
        bucketsync::files::check_paths(files.iter().map(|f| std::path::Path::new(&f.path)))?;
        let mut batch = PathBatch {
            files: files.into_iter(),
            listener,
            stored: Vec::new(),
            failed: Vec::new(),
        };
        let totals = self
            .session
            .put_files(
                &mut batch,
                &*self.transport,
                pack_size.map(|s| usize::try_from(s).unwrap_or(usize::MAX)),
                driver::DEFAULT_CONCURRENCY,
            )
            .await?;
        Ok(PutFilesReport {
            stored: batch.stored,
            failed: batch.failed,
            chunks_uploaded: totals.chunks_uploaded,
            chunks_reused: totals.chunks_reused,
            packs: totals.packs,
            bytes_sent: totals.bytes_sent,
            requests: totals.requests,
        })
    }

    /// Writes the file stored under `key` to `sink`, in order, each chunk checked before it is
    /// handed over (the whole-file hash is checked at the end: on `Corrupt` discard what the
    /// sink took). `false`, and nothing written, when the key is absent or deleted.
    #[uniffi::method(default(listener = None))]
    pub async fn get_file_to(
        &self,
        key: Vec<u8>,
        sink: Arc<dyn FileSink>,
        listener: Option<Arc<dyn FileListener>>,
    ) -> Result<bool, BucketsyncError> {
        Ok(self
            .session
            .get_file(
                &key,
                &mut ForeignSink(sink),
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?)
    }

    /// Reads the file stored under `key` to `path`; `false` (and nothing written) when the key
    /// is absent or deleted. Nothing appears at `path` until the whole file was read and
    /// checked; an interrupted read leaves a partial file beside it that the next `get_file`
    /// to the same path resumes from. `Corrupt` when the file's bytes fail their checks.
    #[uniffi::method(default(listener = None))]
    pub async fn get_file(
        &self,
        key: Vec<u8>,
        path: String,
        listener: Option<Arc<dyn FileListener>>,
    ) -> Result<bool, BucketsyncError> {
        Ok(self
            .session
            .get_file_to_path(
                &key,
                std::path::Path::new(&path),
                &*self.transport,
                driver::DEFAULT_CONCURRENCY,
                progress_to(listener),
            )
            .await?)
    }

    /// What the file under `key` is, without fetching it; null when absent or deleted.
    /// `Config` when the key holds a record that is not a file.
    pub fn file_info(&self, key: Vec<u8>) -> Result<Option<FileInfo>, BucketsyncError> {
        Ok(self
            .session
            .read(|e| e.file_info(&key))??
            .map(|i| FileInfo {
                size: i.size,
                chunks: i.chunks,
                packs: i.packs,
                content_hash: i.content_hash,
            }))
    }

    /// Stops the running sync or file transfer at its next step (it fails with `Cancelled`).
    pub fn cancel_transfer(&self) {
        self.session.cancel_sync();
    }

    /// Opens the file under `key` for reading at any offset (see [`OpenedFile`]): it keeps
    /// reading the version stored now, whatever a sync brings in later. Null when absent or
    /// deleted; `Config` when the key holds a record that is not a file.
    pub fn open_file(
        self: Arc<Self>,
        key: Vec<u8>,
    ) -> Result<Option<Arc<OpenedFile>>, BucketsyncError> {
        let Some(reader) = self.session.open_file(&key)? else {
            return Ok(None);
        };
        Ok(Some(Arc::new(OpenedFile {
            size: reader.size(),
            reader: tokio::sync::Mutex::new(reader),
            vault: self,
        })))
    }
}

/// A file opened with `open_file`: a read fetches only the chunks it overlaps (at least
/// 4 MiB, kept for the next read), each checked against its id; the whole-file hash is checked
/// only by whole reads (`get_file`). Reads of one opened file run one after the other. Kotlin:
/// `inputStream()` wraps it as a `java.io.InputStream`; Swift: `bytes(from:pieceSize:)` as an
/// `AsyncSequence` of `Data`.
#[derive(uniffi::Object)]
pub struct OpenedFile {
    size: u64,
    reader: tokio::sync::Mutex<bucketsync::files::FileReader>,
    vault: Arc<Vault>,
}

#[uniffi::export(async_runtime = "tokio")]
impl OpenedFile {
    /// The file's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Up to `max` bytes from `offset`: fewer only at the end of the file, none past it.
    /// `Corrupt` when a chunk fails its check, `NotFound` when its pack is gone, the request's
    /// error otherwise; `Cancelled` after `cancel_transfer`.
    pub async fn read_at(&self, offset: u64, max: u32) -> Result<Vec<u8>, BucketsyncError> {
        let mut reader = self.reader.lock().await;
        Ok(reader
            .read_at(
                &self.vault.session,
                offset,
                max as usize,
                &*self.vault.transport,
                driver::DEFAULT_CONCURRENCY,
            )
            .await?)
    }
}

fn progress_to(
    listener: Option<Arc<dyn FileListener>>,
) -> impl FnMut(bucketsync::files::FileProgress) {
    move |p| {
        if let Some(listener) = &listener {
            listener.on_progress(p.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn a_printed_request_hides_the_signature_and_session_token() {
        let request = HttpRequest {
            method: "PUT".into(),
            url:
                "http://127.0.0.1:9000/bucket/v/s/x?X-Amz-Credential=AKID%2Fscope&X-Amz-Expires=60\
                  &x-amz-security-token=qtoken&X-Amz-Signature=qsig#frag"
                    .into(),
            headers: vec![
                header("Authorization", "AWS4-HMAC-SHA256 Signature=hsig"),
                header("X-AMZ-SECURITY-TOKEN", "htoken"),
                header("x-amz-date", "20260101T000000Z"),
            ],
            body: vec![0; 5],
        };
        for printed in [format!("{request:?}"), request.to_string()] {
            for secret in ["AKID", "qtoken", "qsig", "hsig", "htoken"] {
                assert!(!printed.contains(secret), "{secret} in {printed}");
            }
            assert_eq!(
                printed,
                "HttpRequest { method: \"PUT\", url: \"http://127.0.0.1:9000/bucket/v/s/x?\
                 X-Amz-Credential=<redacted>&X-Amz-Expires=60&x-amz-security-token=<redacted>\
                 &X-Amz-Signature=<redacted>#frag\", headers: [(\"Authorization\", \"<redacted>\"), \
                 (\"X-AMZ-SECURITY-TOKEN\", \"<redacted>\"), (\"x-amz-date\", \"20260101T000000Z\")], \
                 body: 5 bytes }"
            );
        }
        assert_eq!(
            header("authorization", "secret").to_string(),
            "Header { name: \"authorization\", value: \"<redacted>\" }"
        );
        assert_eq!(
            format!("{:?}", header("range", "bytes=0-1")),
            "Header { name: \"range\", value: \"bytes=0-1\" }"
        );
        // The fields keep the real values, for the transport to send.
        assert_eq!(request.headers[0].value, "AWS4-HMAC-SHA256 Signature=hsig");
        assert!(request.url.contains("X-Amz-Signature=qsig"));
    }

    #[test]
    fn a_url_without_presigned_parameters_prints_as_it_is() {
        for url in [
            "http://h/bucket/key",
            "http://h/bucket?list-type=2&prefix=v%2Fm%2F",
            "http://h/bucket?uploads",
            "http://h/bucket?X-Amz-Signaturex=kept&&=&x",
        ] {
            assert_eq!(redacted_url(url), url);
        }
    }
}
