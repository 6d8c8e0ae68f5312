//! Background sync: the core's loop ([`Session::run_auto_sync`]) as a promise on the page's
//! event loop, its events handed to a JS function as plain objects. The JS layer adds the Web
//! Lock (one loop per local state across tabs), the `online`/`offline` and `visibilitychange`
//! wiring, the listeners and `events()`.

use bucketsync::auto_sync::{AutoSyncOptions, AutoSyncSeconds, Event};
use bucketsync::driver::{Progress, Transport};
use bucketsync::{Happening, Request, Response};
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

use crate::{config, js_error, set, JsTransport, Vault};

/// The timings of a background sync, checked: what `vault.autoSyncSettings(...)` gives and
/// `vault.autoSync(...)` takes (the JS layer waits for its Web Lock in between).
#[wasm_bindgen]
pub struct AutoSyncSettings(AutoSyncOptions);

/// The transport of a background sync: the app's, plus `on_idle` called before each wait
/// (after every sync of the loop), when the JS layer saves what the sync changed.
struct LoopTransport {
    inner: JsTransport,
    on_idle: Function,
}

impl Transport for LoopTransport {
    async fn send(&self, request: Request) -> bucketsync::Result<Response> {
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        let _ = self.on_idle.call0(&JsValue::NULL);
        let global = js_sys::global();
        let function = |name: &str| {
            Reflect::get(&global, &name.into())
                .ok()
                .and_then(|f| f.dyn_into::<Function>().ok())
        };
        let (Some(set_timeout), Some(clear_timeout)) =
            (function("setTimeout"), function("clearTimeout"))
        else {
            return;
        };
        let mut timer = Timer(JsValue::UNDEFINED, clear_timeout);
        let promise = Promise::new(&mut |resolve, _| {
            if let Ok(id) = set_timeout.call2(&JsValue::NULL, &resolve, &(ms as f64).into()) {
                timer.0 = id;
            }
        });
        // A stopped loop drops this wait: its timer goes too (a pending one keeps Node running).
        let _timer = timer;
        let _ = JsFuture::from(promise).await;
    }
}

/// A `setTimeout` id, cleared when dropped.
struct Timer(JsValue, Function);

impl Drop for Timer {
    fn drop(&mut self) {
        let _ = self.1.call1(&JsValue::NULL, &self.0);
    }
}

fn keys(keys: &[Vec<u8>]) -> Array {
    keys.iter()
        .map(|k| Uint8Array::from(k.as_slice()))
        .collect()
}

/// `{ kind, keys, state, category, progress }`: every field on every event (`[]` or null when
/// it does not apply), keys as `Uint8Array`s as in sync reports.
fn event_object(event: &Event) -> Object {
    let js = Object::new();
    let (kind, listed, state, category, progress) = match event {
        Event::Changed(changed) => ("changed", keys(changed), None, None, None),
        Event::Conflict(conflicts) => ("conflict", keys(conflicts), None, None, None),
        Event::State(state) => (
            "state",
            Array::new(),
            Some(state.name()),
            state.error_category().map(|c| c.as_str()),
            None,
        ),
        Event::Progress(p) => (
            "progress",
            Array::new(),
            None,
            None,
            Some(progress_object(p)),
        ),
    };
    set(&js, "kind", kind);
    set(&js, "keys", listed);
    let or_null = |v: Option<&str>| v.map_or(JsValue::NULL, JsValue::from);
    set(&js, "state", or_null(state));
    set(&js, "category", or_null(category));
    set(
        &js,
        "progress",
        progress.map_or(JsValue::NULL, JsValue::from),
    );
    js
}

fn progress_object(p: &Progress) -> Object {
    let js = Object::new();
    set(&js, "requestsDone", p.requests_done as f64);
    set(&js, "requestsTotal", p.requests_total as f64);
    set(&js, "bytesSent", p.bytes_sent as f64);
    set(&js, "bytesReceived", p.bytes_received as f64);
    js
}

#[wasm_bindgen]
impl Vault {
    /// Checks the timings of a background sync (seconds) and that the vault is open.
    #[wasm_bindgen(js_name = autoSyncSettings)]
    pub fn auto_sync_settings(
        &self,
        interval: Option<f64>,
        debounce: Option<f64>,
        full_sync_interval: Option<f64>,
        background_interval: Option<f64>,
    ) -> Result<AutoSyncSettings, JsValue> {
        self.session.device().map_err(|e| js_error(&e))?;
        let seconds =
            AutoSyncSeconds::given(interval, debounce, full_sync_interval, background_interval);
        let names = [
            "interval",
            "debounce",
            "fullSyncInterval",
            "backgroundInterval",
        ];
        AutoSyncOptions::from_seconds(seconds, names)
            .map(AutoSyncSettings)
            .map_err(|e| js_error(&e))
    }

    /// Runs the background loop until `stopAutoSync` (or the vault closes). `on_event`, if
    /// given, becomes the primary listener (beside those `addListener` added); `on_changed` is
    /// called when an event says keys changed here (the JS layer saves then); `on_error` gets
    /// what a listener throws; `on_idle` is called before each wait.
    #[wasm_bindgen(js_name = autoSync)]
    #[allow(clippy::too_many_arguments)]
    pub fn auto_sync(
        &self,
        settings: &AutoSyncSettings,
        send: Function,
        on_event: Option<Function>,
        on_idle: Function,
        on_changed: Function,
        on_error: Function,
    ) -> Result<Promise, JsValue> {
        let run = self
            .listeners
            .start_with(on_event, || self.session.prepare_auto_sync())
            .map_err(|e| js_error(&e))?;
        let session = self.session.clone();
        let listeners = self.listeners.clone();
        let options = settings.0;
        let transport = LoopTransport {
            inner: JsTransport { send },
            on_idle,
        };
        Ok(future_to_promise(async move {
            let listener = |event: Event| {
                if matches!(event, Event::Changed(_) | Event::Conflict(_)) {
                    let _ = on_changed.call0(&JsValue::NULL);
                }
                if listeners.is_empty() {
                    return;
                }
                let event = event_object(&event);
                listeners.each(|listener| {
                    // A listener that throws breaks nothing: its error is reported.
                    if let Err(e) = listener.call1(&JsValue::NULL, &event) {
                        let _ = on_error.call1(&JsValue::NULL, &e);
                    }
                });
            };
            session
                .run_auto_sync(run, &transport, options, listener)
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| js_error(&e))
        }))
    }

    /// Adds a listener of the background sync's events (an `events()` iterator); returns its
    /// id for `removeListener`.
    #[wasm_bindgen(js_name = addListener)]
    pub fn add_listener(&self, listener: Function) -> f64 {
        self.listeners.add(listener) as f64
    }

    /// Removes the listener `addListener` returned `id` for.
    #[wasm_bindgen(js_name = removeListener)]
    pub fn remove_listener(&self, id: f64) {
        self.listeners.remove(id as u64);
    }

    /// Tells every `events()` iterator that no event will come (the vault closes): each is
    /// called with `(undefined, true)`. The start's `onEvent` is dropped, not called.
    #[wasm_bindgen(js_name = endListeners)]
    pub fn end_listeners(&self) {
        self.listeners.close(|listener| {
            let _ = listener.call2(&JsValue::NULL, &JsValue::UNDEFINED, &JsValue::TRUE);
        });
    }

    #[wasm_bindgen(js_name = stopAutoSync)]
    pub fn stop_auto_sync(&self) {
        self.session.stop_auto_sync();
    }

    /// Tells the background sync what the page knows: "network-lost", "network-back",
    /// "background", "foreground" or "changed". Ignored when none runs.
    pub fn notify(&self, what: &str) -> Result<(), JsValue> {
        let happening = Happening::parse(what).map_err(|e| js_error(&e))?;
        self.session.notify(happening);
        Ok(())
    }

    /// Every record as JSON Lines (see the core's `export` module); `history` adds earlier
    /// versions. Files are left out.
    #[wasm_bindgen(js_name = exportRecords)]
    pub fn export_records(&self, history: bool) -> Result<String, JsValue> {
        let mut out = Vec::new();
        self.session
            .export_records(&mut out, history)
            .map_err(|e| js_error(&e))?;
        // Every line is JSON, so UTF-8.
        String::from_utf8(out).map_err(|_| config("the export is not UTF-8".into()))
    }

    /// Merges JSON Lines in (a malformed line: a `config` error naming it, nothing imported);
    /// `{ lines, imported, deleted, unchanged, older, history }`.
    #[wasm_bindgen(js_name = importRecords)]
    pub fn import_records(&self, input: &[u8]) -> Result<Object, JsValue> {
        let report = self
            .session
            .import_records(input)
            .map_err(|e| js_error(&e))?;
        let js = Object::new();
        set(&js, "lines", report.lines as f64);
        set(&js, "imported", report.imported as f64);
        set(&js, "deleted", report.deleted as f64);
        set(&js, "unchanged", report.unchanged as f64);
        set(&js, "older", report.older as f64);
        set(&js, "history", report.history as f64);
        Ok(js)
    }
}
