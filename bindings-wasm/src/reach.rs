//! How a JS vault reaches its store: what the JS layer gives (`{credentials, signer, fetch,
//! timeoutMs}`) converted for the core, whose rule decides what a vault opened through a home
//! takes of it (`bucketsync::io::reach`), and the `send` the JS layer builds of what was
//! decided.

use std::time::Duration;

use bucketsync::http_options::HttpOptions;
use bucketsync::io::reach::{Given, Reach};
use js_sys::{Function, Reflect};
use wasm_bindgen::prelude::*;

use crate::{config, credentials, JsTransport};

/// The JS pieces of a vault's reach: its `fetch` (the transport) and its `signer`.
pub(crate) type JsReach = Reach<JsValue, JsValue>;

/// What every request may take when the app says nothing (`timeoutMs`).
const DEFAULT_TIMEOUT_MS: f64 = 30_000.0;

/// `value[name]`, or `None` when it is missing, undefined or null.
pub(crate) fn field(value: &JsValue, name: &str) -> Option<JsValue> {
    if value.is_undefined() || value.is_null() {
        return None;
    }
    Reflect::get(value, &name.into())
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

fn text(value: &JsValue, name: &str) -> Option<String> {
    field(value, name).and_then(|v| v.as_string())
}

/// What the app gives in `connection` (`{credentials: {accessKeyId, secretAccessKey,
/// sessionToken}, signer, fetch, timeoutMs}`, each optional).
///
/// # Errors
/// `config` for half a key pair, a signer or fetch that is not a function, or a `timeoutMs`
/// that is not a number of milliseconds > 0.
pub(crate) fn given(connection: &JsValue) -> Result<Given<JsValue, JsValue>, JsValue> {
    let keys = field(connection, "credentials");
    let credentials = match keys {
        Some(keys) => credentials(
            text(&keys, "accessKeyId"),
            text(&keys, "secretAccessKey"),
            text(&keys, "sessionToken"),
        )?,
        None => None,
    };
    let function = |name: &str| match field(connection, name) {
        Some(f) if f.is_function() => Ok(Some(f)),
        Some(_) => Err(config(format!("{name} must be a function"))),
        None => Ok(None),
    };
    let http = match field(connection, "timeoutMs") {
        None => None,
        Some(ms) => match ms.as_f64() {
            Some(ms) if ms.is_finite() && ms > 0.0 && ms < 1e12 => Some(HttpOptions {
                total_timeout: Duration::from_millis(ms as u64),
                ..HttpOptions::default()
            }),
            _ => {
                return Err(config(
                    "timeoutMs must be a number of milliseconds > 0".into(),
                ))
            }
        },
    };
    Ok(Given {
        credentials,
        signer: function("signer")?,
        transport: function("fetch")?,
        http,
    })
}

/// The deadlines of a vault opened on its own (not through a home), the app giving `http`.
pub(crate) fn own_http(http: Option<HttpOptions>) -> HttpOptions {
    http.unwrap_or(HttpOptions {
        total_timeout: Duration::from_millis(DEFAULT_TIMEOUT_MS as u64),
        ..HttpOptions::default()
    })
}

/// The transport of a vault that reaches its store as `reach` says: the `send` the JS layer's
/// `make(fetch, signer, timeoutMs)` builds of those pieces.
pub(crate) fn transport(make: &Function, reach: &JsReach) -> Result<JsTransport, JsValue> {
    let none = JsValue::UNDEFINED;
    let ms = reach.http.total_timeout.as_millis() as f64;
    let send = make.call3(
        &JsValue::NULL,
        reach.transport.as_ref().unwrap_or(&none),
        reach.signer.as_ref().unwrap_or(&none),
        &ms.into(),
    )?;
    let send = send
        .dyn_into::<Function>()
        .map_err(|_| config("the transport maker must return a function".into()))?;
    Ok(JsTransport { send })
}
