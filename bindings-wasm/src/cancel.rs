//! The core's cancel as a JS class: the JS layer makes one per call and cancels it when the
//! call's `AbortSignal` aborts (or its `onProgress` throws).

use std::future::Future;

use wasm_bindgen::prelude::*;

use crate::js_error;

/// The cancel of one call (a sync, a transfer, a read of an opened file).
#[wasm_bindgen]
#[derive(Clone, Default)]
pub struct Cancel(bucketsync::cancel::Cancel);

#[wasm_bindgen]
impl Cancel {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Cancel {
        Cancel::default()
    }

    /// Stops the call at once: it rejects with `undefined`, for the JS layer to reject with
    /// the reason it stopped for.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

impl Cancel {
    /// Runs `call` until it ends or this is cancelled; then it is dropped where it stands
    /// (which the core keeps safe) and this fails with `undefined`. Otherwise a failure is
    /// the core's error as a JS error.
    pub(crate) async fn run<T>(
        &self,
        call: impl Future<Output = bucketsync::Result<T>>,
    ) -> Result<T, JsValue> {
        match self.0.run(call).await {
            Ok(value) => Ok(value),
            Err(_) if self.0.is_cancelled() => Err(JsValue::UNDEFINED),
            Err(e) => Err(js_error(&e)),
        }
    }
}
