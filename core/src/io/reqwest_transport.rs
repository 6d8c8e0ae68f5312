//! The reqwest transport: executes request descriptions over HTTP(S) with rustls (the browser's
//! `fetch` on wasm32). Enabled by the `reqwest` feature; the core itself stays sans-IO.
//!
//! On native targets its futures need a tokio runtime (reqwest's I/O runs on it).

use std::time::Duration;

use crate::error::{Category, Error, Result};
use crate::http::{Request, Response};
use crate::io::driver::Transport;

/// Timeouts for [`ReqwestTransport`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpOptions {
    /// The longest wait for the next bytes of an answer. There is no limit on a whole request:
    /// a 32 MiB segment on a slow uplink must still get through.
    pub timeout: Duration,
    /// Establishing a connection.
    pub connect_timeout: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Sends requests with a shared reqwest client (connection pooling, rustls).
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// A transport with `options`.
    ///
    /// # Errors
    /// `Config` when the HTTP client cannot be built (no TLS roots, say).
    pub fn new(options: HttpOptions) -> Result<Self> {
        let builder = reqwest::Client::builder();
        #[cfg(not(target_arch = "wasm32"))]
        let builder = builder
            .read_timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(16)
            // A redirect would carry the signature and the session token to wherever the
            // endpoint points; an S3 redirect (wrong region or endpoint) is a configuration
            // error to fix, not a place to follow. (On wasm32 the browser's fetch decides.)
            .redirect(reqwest::redirect::Policy::none());
        #[cfg(target_arch = "wasm32")]
        let _ = options;
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", chain(&e))))?;
        Ok(ReqwestTransport { client })
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: Request) -> Result<Response> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .expect("GET, PUT, HEAD and DELETE are valid methods");
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .body(request.body)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn sleep(&self, ms: u64) {
        #[cfg(not(target_arch = "wasm32"))]
        tokio::time::sleep(Duration::from_millis(ms)).await;
        #[cfg(target_arch = "wasm32")]
        let _ = ms;
    }
}

/// A reqwest error as a `Network` or `Timeout` error. The URL is left out: a presigned URL
/// carries a signature.
fn transport_error(e: reqwest::Error) -> Error {
    let category = if e.is_timeout() {
        Category::Timeout
    } else {
        Category::Network
    };
    Error::Transport {
        category,
        message: chain(&e.without_url()),
    }
}

/// An error and its causes, joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
