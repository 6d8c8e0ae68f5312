//! WebAssembly bindings of bucketsync: conversions and error mapping only; every rule lives in
//! the core. The typed JavaScript surface (`Vault.open({...})`, error classes, `fetch`, state
//! helpers) is the small layer in `js/` over these exports.
#![forbid(unsafe_code)]

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bucketsync::driver::{self, Transport};
use bucketsync::listeners::Listeners;
use bucketsync::session::{Durability, Session, SessionOptions, StateLocation};
use bucketsync::settings::{days_ms, VaultDays, DEFAULT_STALE_AFTER_DAYS};
use bucketsync::sign::{SigV4, Signer};
use bucketsync::state_store::{Saved, StateWrite};
use bucketsync::{
    Category, Credentials, Method, OpenMode, Request, RequestId, RequestKind, Response, Timestamp,
};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

mod auto_sync;
mod cancel;
mod files;
mod reach;
mod sharing;

use bucketsync::io::reach::Reach;
use bucketsync::io::shared_vaults::SharedOptions;
use cancel::Cancel;
use reach::JsReach;

/// A JS `Error` carrying the core error's category in `.category`.
fn js_error(error: &bucketsync::Error) -> JsValue {
    let e = js_sys::Error::new(&error.to_string());
    let _ = Reflect::set(&e, &"category".into(), &error.category().as_str().into());
    e.into()
}

/// The message of a JS exception (an `Error`'s, a string), for the core error it becomes.
fn js_message(e: &JsValue) -> String {
    e.dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the JavaScript side failed".into())
}

fn config(message: String) -> JsValue {
    js_error(&bucketsync::Error::Config(message))
}

fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as u64)
}

fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(target, &key.into(), &value.into());
}

fn credentials(
    access_key_id: Option<String>,
    secret: Option<String>,
    token: Option<String>,
) -> Result<Option<Credentials>, JsValue> {
    match (access_key_id, secret) {
        (Some(id), Some(secret)) => Credentials::new(id, secret, token)
            .map(Some)
            .map_err(|e| js_error(&e)),
        (None, None) => Ok(None),
        _ => Err(config(
            "credentials need both accessKeyId and secretAccessKey".into(),
        )),
    }
}

/// The secret every device of a vault shares.
#[wasm_bindgen]
pub struct VaultKey(bucketsync::VaultKey);

#[wasm_bindgen]
impl VaultKey {
    /// A new random key (from `crypto.getRandomValues`).
    pub fn generate() -> Result<VaultKey, JsValue> {
        bucketsync::VaultKey::generate()
            .map(VaultKey)
            .map_err(|e| js_error(&e))
    }

    /// Reads a recovery code; a typo is a `config` error.
    #[wasm_bindgen(js_name = fromRecoveryCode)]
    pub fn from_recovery_code(code: &str) -> Result<VaultKey, JsValue> {
        bucketsync::VaultKey::from_recovery_code(code)
            .map(VaultKey)
            .map_err(|e| js_error(&e))
    }

    /// The key as a human-typable code with a checksum.
    #[wasm_bindgen(js_name = recoveryCode)]
    pub fn recovery_code(&self) -> String {
        self.0.recovery_code()
    }

    /// The vault's public id.
    #[wasm_bindgen(getter, js_name = vaultId)]
    pub fn vault_id(&self) -> String {
        self.0.vault_id().to_string()
    }
}

/// Executes requests with a JS function `(request) => Promise<response>`.
struct JsTransport {
    send: Function,
}

impl JsTransport {
    async fn call(&self, request: Request) -> Result<Response, JsValue> {
        let headers = Array::new();
        for (name, value) in &request.headers {
            headers.push(&Array::of2(&name.into(), &value.into()));
        }
        let js = Object::new();
        set(&js, "method", request.method.as_str());
        set(&js, "url", request.url.as_str());
        set(&js, "headers", headers);
        set(&js, "body", Uint8Array::from(&request.body[..]));
        let promise = self.send.call1(&JsValue::NULL, &js)?;
        let answer = JsFuture::from(Promise::resolve(&promise)).await?;
        let status = Reflect::get(&answer, &"status".into())?
            .as_f64()
            .ok_or_else(|| JsValue::from_str("the transport's response has no numeric status"))?;
        let mut headers = Vec::new();
        if let Ok(list) =
            Reflect::get(&answer, &"headers".into()).and_then(|h| h.dyn_into::<Array>())
        {
            for pair in list.iter() {
                let pair = Array::from(&pair);
                if let (Some(n), Some(v)) = (pair.get(0).as_string(), pair.get(1).as_string()) {
                    headers.push((n.to_ascii_lowercase(), v));
                }
            }
        }
        let body = Reflect::get(&answer, &"body".into())?;
        let body = if body.is_undefined() || body.is_null() {
            Vec::new()
        } else {
            Uint8Array::new(&body).to_vec()
        };
        Ok(Response {
            status: status as u16,
            headers,
            body,
        })
    }
}

impl Transport for JsTransport {
    async fn send(&self, request: Request) -> bucketsync::Result<Response> {
        self.call(request).await.map_err(|e| {
            let error = e.dyn_ref::<js_sys::Error>();
            let message = js_message(&e);
            // `AbortSignal.timeout` rejects with a DOMException named TimeoutError.
            let timed_out = error.is_some_and(|e| e.name() == "TimeoutError")
                || Reflect::get(&e, &"name".into())
                    .ok()
                    .and_then(|n| n.as_string())
                    .is_some_and(|n| n == "TimeoutError");
            bucketsync::Error::Transport {
                category: if timed_out {
                    Category::Timeout
                } else {
                    Category::Network
                },
                message,
            }
        })
    }

    async fn sleep(&self, ms: u64) {
        let promise = Promise::new(&mut |resolve, _| {
            let set_timeout = Reflect::get(&js_sys::global(), &"setTimeout".into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok());
            match set_timeout {
                Some(f) => {
                    let _ = f.call2(&JsValue::NULL, &resolve, &JsValue::from_f64(ms as f64));
                }
                None => {
                    let _ = resolve.call0(&JsValue::NULL);
                }
            }
        });
        let _ = JsFuture::from(promise).await;
    }
}

fn report_object(report: &bucketsync::SyncReport) -> Object {
    let js = Object::new();
    set(&js, "pushed", report.pushed as f64);
    set(&js, "pulled", report.pulled as f64);
    set(&js, "requests", report.requests() as f64);
    let by_kind = Object::new();
    for kind in RequestKind::ALL {
        set(&by_kind, kind.as_str(), report.requests_of(kind) as f64);
    }
    set(&js, "requestsByKind", by_kind);
    set(&js, "bytesSent", report.bytes_sent as f64);
    set(&js, "bytesReceived", report.bytes_received as f64);
    set(&js, "retries", report.retries as f64);
    set(&js, "hintUnchanged", report.hint_unchanged);
    let changed = Array::new();
    for key in &report.changed {
        changed.push(&Uint8Array::from(key.as_slice()));
    }
    set(&js, "changed", changed);
    let conflicts = Array::new();
    for key in &report.conflicts {
        conflicts.push(&Uint8Array::from(key.as_slice()));
    }
    set(&js, "conflicts", conflicts);
    set(&js, "compacted", report.compacted);
    set(&js, "collected", report.collected as f64);
    set(&js, "segmentsDeleted", report.segments_deleted as f64);
    set(&js, "packsDeleted", report.packs_deleted as f64);
    set(&js, "packsRepacked", report.packs_repacked as f64);
    match report.started_over {
        Some(old) => set(&js, "startedOver", old.to_string()),
        None => set(&js, "startedOver", JsValue::NULL),
    }
    let restamped = Array::new();
    for key in &report.restamped {
        restamped.push(&Uint8Array::from(key.as_slice()));
    }
    set(&js, "restamped", restamped);
    let errors = Array::new();
    for e in &report.errors {
        errors.push(&js_error(e));
    }
    set(&js, "errors", errors);
    js
}

/// One device's replica of a vault. Its state lives in the JS layer's storage: after every
/// call that changes it, the JS layer takes the writes with `takeStateWrites` and applies them
/// (to IndexedDB, in one transaction per batch).
#[wasm_bindgen]
pub struct Vault {
    session: Rc<Session>,
    transport: Rc<JsTransport>,
    /// The home this vault was opened through (`createShared`, `openShared`, `accept`), for
    /// `share`; `None` for a vault opened with `open`.
    home: Option<Rc<Session>>,
    /// Who hears the background sync: its `onEvent` and each `events()` iterator.
    listeners: Rc<Listeners<Function>>,
    /// How it reaches its store, for the vaults opened through it as a home (the core's rule
    /// decides what they take of it).
    reach: JsReach,
}

/// The saved state, connection and time bounds of one open, as the JS layer gives them.
struct Opening {
    device: Option<String>,
    snapshot: Option<Vec<u8>>,
    journal: Option<Vec<u8>>,
    /// `{credentials, signer, fetch, timeoutMs}` as the app gave them.
    connection: JsValue,
    /// `(fetch, signer, timeoutMs) => send`: the JS layer's transport of the pieces decided.
    make_send: Function,
    /// The vault's time bounds (graceDays, maxClockSkewDays, maxFutureDays).
    days: VaultDays,
}

/// The names the JS options give the vault's time bounds, for errors.
const DAY_NAMES: [&str; 3] = ["graceDays", "maxClockSkewDays", "maxFutureDays"];

impl Opening {
    /// What the JS layer gives: `opening` is `{device, snapshot, journal, connection,
    /// graceDays, maxClockSkewDays, maxFutureDays}`, each optional; `make_send` builds the
    /// vault's `send` of the connection's pieces the core decides on.
    ///
    /// # Errors
    /// `config` for a device that is not a string, a day bound that is not a number.
    fn from_js(opening: &JsValue, make_send: Function) -> Result<Self, JsValue> {
        let text = |name: &str| {
            reach::field(opening, name)
                .map(|v| {
                    v.as_string()
                        .ok_or_else(|| config(format!("{name} must be a string")))
                })
                .transpose()
        };
        let bytes = |name: &str| reach::field(opening, name).map(|v| Uint8Array::new(&v).to_vec());
        let days = |name: &str| {
            reach::field(opening, name)
                .map(|v| {
                    v.as_f64()
                        .ok_or_else(|| config(format!("{name} must be a number")))
                })
                .transpose()
        };
        let [grace, skew, future] = DAY_NAMES;
        Ok(Opening {
            device: text("device")?,
            snapshot: bytes("snapshot"),
            journal: bytes("journal"),
            connection: reach::field(opening, "connection").unwrap_or(JsValue::UNDEFINED),
            make_send,
            days: VaultDays::given(days(grace)?, days(skew)?, days(future)?),
        })
    }

    /// The state the JS layer loaded.
    fn saved(&mut self) -> Saved {
        Saved {
            snapshot: self.snapshot.take().unwrap_or_default(),
            journal: self.journal.take().unwrap_or_default(),
        }
    }

    /// What a shared vault keeps of its own (its state is the JS layer's).
    fn shared_options(&mut self) -> Result<SharedOptions<'_>, JsValue> {
        let saved = self.saved();
        Ok(SharedOptions {
            device: self.device.as_deref(),
            compaction: self.days.policy(DAY_NAMES).map_err(|e| js_error(&e))?,
            ..SharedOptions::new(StateLocation::Host(saved))
        })
    }

    /// Opens the replica of the vault of `store` and `key` in `mode`, on its own.
    fn open(
        mut self,
        store: &str,
        key: &bucketsync::VaultKey,
        mode: OpenMode,
    ) -> Result<Vault, JsValue> {
        let given = reach::given(&self.connection)?;
        let state = StateLocation::Host(self.saved());
        let session = Session::open(SessionOptions {
            store,
            key,
            device: self.device.as_deref(),
            mode,
            compaction: self.days.policy(DAY_NAMES).map_err(|e| js_error(&e))?,
            state,
            credentials: given.credentials,
            environment: false,
            own_transport: true,
            durability: Durability::default(),
            clock: Arc::new(now),
            entropy_seed: None,
        })
        .map_err(|e| js_error(&e))?;
        let http = reach::own_http(given.http);
        let reach = Reach::of(&session, given.transport, given.signer, http);
        Vault::new(session, reach, &self.make_send, None)
    }
}

impl Vault {
    /// The object of an open session, sending through the JS transport `make_send` builds of
    /// `reach`.
    fn new(
        session: Session,
        reach: JsReach,
        make_send: &Function,
        home: Option<Rc<Session>>,
    ) -> Result<Vault, JsValue> {
        let transport = reach::transport(make_send, &reach)?;
        Ok(Vault {
            session: Rc::new(session),
            transport: Rc::new(transport),
            home,
            listeners: Rc::default(),
            reach,
        })
    }
}

#[wasm_bindgen]
impl Vault {
    /// Opens a replica of the vault of `store` and `key` in `mode`, with what the JS layer
    /// gives in `opening` (see `Opening::from_js`; the saved state, none for a new replica)
    /// and `make_send`: `(fetch, signer, timeoutMs) => send`.
    pub fn open(
        store: &str,
        key: &VaultKey,
        mode: &str,
        opening: JsValue,
        make_send: Function,
    ) -> Result<Vault, JsValue> {
        let mode = OpenMode::parse(mode).map_err(|e| js_error(&e))?;
        Opening::from_js(&opening, make_send)?.open(store, &key.0, mode)
    }

    /// The vault's public id.
    #[wasm_bindgen(getter, js_name = vaultId)]
    pub fn vault_id(&self) -> Result<String, JsValue> {
        self.session
            .read(|e| e.vault_id().to_string())
            .map_err(|e| js_error(&e))
    }

    /// The vault's devices known here (this one included): `{id, label, lastPushMs, segments,
    /// thisDevice, stale}`; stale means silent for longer than `staleAfterDays` (default 30).
    pub fn devices(&self, stale_after_days: Option<f64>) -> Result<Array, JsValue> {
        let days = stale_after_days.unwrap_or(DEFAULT_STALE_AFTER_DAYS);
        let stale_after_ms = days_ms(days, "staleAfterDays").map_err(|e| js_error(&e))?;
        let devices = self
            .session
            .devices(stale_after_ms)
            .map_err(|e| js_error(&e))?;
        let out = Array::new();
        for d in devices {
            let js = Object::new();
            set(&js, "id", d.id.to_string());
            set(&js, "label", d.label);
            match d.last_push_ms {
                Some(ms) => set(&js, "lastPushMs", ms as f64),
                None => set(&js, "lastPushMs", JsValue::NULL),
            }
            set(&js, "segments", d.segments as f64);
            set(&js, "thisDevice", d.this_device);
            set(&js, "stale", d.stale);
            set(&js, "retired", d.retired);
            out.push(&js);
        }
        Ok(out)
    }

    /// The versions of `key` known here, newest first: `{value (undefined for a deletion),
    /// device, timeMs}`.
    pub fn history(&self, key: &[u8]) -> Result<Array, JsValue> {
        let versions = self
            .session
            .read(|e| e.history(key))
            .map_err(|e| js_error(&e))?;
        let out = Array::new();
        for v in versions {
            let js = Object::new();
            match v.value {
                Some(value) => set(&js, "value", Uint8Array::from(value.as_slice())),
                None => set(&js, "value", JsValue::UNDEFINED),
            }
            set(&js, "device", v.stamp.device.to_string());
            set(&js, "timeMs", v.stamp.hlc.wall_ms as f64);
            out.push(&js);
        }
        Ok(out)
    }

    /// This device's label.
    #[wasm_bindgen(getter)]
    pub fn label(&self) -> Result<String, JsValue> {
        self.session
            .read(|e| e.label().to_owned())
            .map_err(|e| js_error(&e))
    }

    /// Marks device `id` (32 hex digits) retired: tombstones stop waiting for it, and if it
    /// syncs again it starts over under a new id.
    pub fn retire(&self, id: &str) -> Result<(), JsValue> {
        let id = bucketsync::DeviceId::parse(id).map_err(|e| js_error(&e))?;
        self.session.retire(id).map_err(|e| js_error(&e))
    }

    /// Lets the next sync push deletions past the mass-deletion guard.
    #[wasm_bindgen(js_name = confirmDeletions)]
    pub fn confirm_deletions(&self) -> Result<(), JsValue> {
        self.session.confirm_deletions().map_err(|e| js_error(&e))
    }

    /// Sets `key` to `value` (bytes).
    pub fn put(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), JsValue> {
        self.session.put(key, value).map_err(|e| js_error(&e))
    }

    /// The value of `key`, or `undefined`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, JsValue> {
        self.session.get(key).map_err(|e| js_error(&e))
    }

    /// Deletes `key` (a tombstone).
    pub fn delete(&self, key: Vec<u8>) -> Result<(), JsValue> {
        self.session.delete(key).map_err(|e| js_error(&e))
    }

    /// Live keys starting with `prefix`, sorted, as `Uint8Array`s.
    pub fn keys(&self, prefix: &[u8]) -> Result<Array, JsValue> {
        let keys = Array::new();
        for k in self.session.keys(prefix).map_err(|e| js_error(&e))? {
            keys.push(&Uint8Array::from(&k[..]));
        }
        Ok(keys)
    }

    /// Syncs; resolves to a report object, rejects with an `Error` carrying `.category`, or
    /// with `undefined` once `cancel` is cancelled (the sync is dropped where it stands, which
    /// loses nothing: the next sync resumes).
    pub fn sync(&self, cancel: &Cancel) -> Promise {
        let session = self.session.clone();
        let transport = self.transport.clone();
        let cancel = cancel.clone();
        future_to_promise(async move {
            let sync = session.sync(&*transport, driver::DEFAULT_CONCURRENCY, |_| {});
            Ok(report_object(&cancel.run(sync).await?).into())
        })
    }

    /// The state writes since the last call, in order, for the JS layer to persist:
    /// `{ append: Uint8Array }`, `{ truncate: number }` or `{ snapshot, journal }`.
    #[wasm_bindgen(js_name = takeStateWrites)]
    pub fn take_state_writes(&self) -> Array {
        let out = Array::new();
        for write in self.session.take_state_writes() {
            let js = Object::new();
            match write {
                StateWrite::Append(bytes) => set(&js, "append", Uint8Array::from(&bytes[..])),
                StateWrite::Truncate(len) => set(&js, "truncate", len as f64),
                StateWrite::Replace { snapshot, journal } => {
                    set(&js, "snapshot", Uint8Array::from(&snapshot[..]));
                    set(&js, "journal", Uint8Array::from(&journal[..]));
                }
            }
            out.push(&js);
        }
        out
    }

    /// A whole snapshot of the state as bytes (it also starts a new journal), for
    /// `Vault.open({state})` or a backup.
    #[wasm_bindgen(js_name = exportState)]
    pub fn export_state(&self) -> Result<Vec<u8>, JsValue> {
        self.session.snapshot().map_err(|e| js_error(&e))
    }

    /// Abandons a running sync and closes the vault; later calls fail with `config`.
    pub fn close(&self) -> Result<(), JsValue> {
        self.session.close().map_err(|e| js_error(&e))
    }

    /// This replica's device id.
    #[wasm_bindgen(getter)]
    pub fn device(&self) -> Result<String, JsValue> {
        Ok(self.session.device().map_err(|e| js_error(&e))?.to_string())
    }

    /// Local writes not yet in the store.
    #[wasm_bindgen(getter)]
    pub fn unpushed(&self) -> Result<u32, JsValue> {
        self.session
            .read(|e| e.unpushed() as u32)
            .map_err(|e| js_error(&e))
    }
}

fn method(name: &str) -> Result<Method, JsValue> {
    match name.to_ascii_uppercase().as_str() {
        "GET" => Ok(Method::Get),
        "PUT" => Ok(Method::Put),
        "HEAD" => Ok(Method::Head),
        "DELETE" => Ok(Method::Delete),
        "POST" => Ok(Method::Post),
        other => Err(config(format!("unsupported method {other:?}"))),
    }
}

/// A presigned URL (SigV4 in the query) valid for `expires_secs` from now: what a page's auth
/// service hands out instead of keys.
#[wasm_bindgen]
pub fn presign(
    method_name: &str,
    url: &str,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: &str,
    expires_secs: u32,
) -> Result<String, JsValue> {
    let creds = Credentials::new(access_key_id, secret_access_key, session_token)
        .map_err(|e| js_error(&e))?;
    SigV4::new(creds, region)
        .presign(
            method(method_name)?,
            url,
            Duration::from_secs(expires_secs.into()),
            now(),
        )
        .map_err(|e| js_error(&e))
}

/// Signs a request's headers with SigV4 (for requests the app makes itself, such as setting
/// a bucket's CORS rule). Returns the headers to send, as `[name, value]` pairs.
#[wasm_bindgen(js_name = signRequest)]
#[allow(clippy::too_many_arguments)]
pub fn sign_request(
    method_name: &str,
    url: &str,
    headers: Array,
    body: Vec<u8>,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    region: &str,
) -> Result<Array, JsValue> {
    let creds = Credentials::new(access_key_id, secret_access_key, session_token)
        .map_err(|e| js_error(&e))?;
    let mut request = Request {
        id: RequestId(0),
        kind: RequestKind::List,
        method: method(method_name)?,
        url: url.to_owned(),
        headers: headers
            .iter()
            .filter_map(|pair| {
                let pair = Array::from(&pair);
                Some((pair.get(0).as_string()?, pair.get(1).as_string()?))
            })
            .collect(),
        body: body.into(),
    };
    SigV4::new(creds, region)
        .sign(&mut request, now())
        .map_err(|e| js_error(&e))?;
    let out = Array::new();
    for (n, v) in request.headers {
        out.push(&Array::of2(&n.into(), &v.into()));
    }
    Ok(out)
}

/// The line a state file's lock names its holder with (the core's lock protocol, the same as
/// native processes follow): process `pid` on `host`, since `since`.
#[wasm_bindgen(js_name = lockHolderText)]
pub fn lock_holder_text(pid: u32, host: &str, since: &str) -> String {
    bucketsync::io::state_lock::holder_text(pid, host, since, None)
}

/// Whether the holder a lock file's `text` names is gone (the core's rule), for process `pid`
/// on `host`; `alive(pid)` tells whether a process of this host runs.
#[wasm_bindgen(js_name = lockIsStale)]
pub fn lock_is_stale(
    text: &str,
    age_ms: f64,
    host: &str,
    pid: u32,
    own_is_gone: bool,
    alive: &Function,
) -> bool {
    bucketsync::io::state_lock::is_stale(text, age_ms as u64, host, pid, own_is_gone, |other| {
        // A callback that fails says nothing: the holder is taken to be alive.
        alive
            .call1(&JsValue::NULL, &JsValue::from(other))
            .map_or(true, |v| v.is_truthy())
    })
}
