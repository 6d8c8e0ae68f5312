//! The reqwest transport: executes request descriptions over HTTP(S) with rustls (the browser's
//! `fetch` on wasm32). Enabled by the `reqwest` feature; the core itself stays sans-IO.
//!
//! On native targets the transport owns the runtime that drives its I/O: one tokio worker
//! thread (`bucketsync-io`) per transport, on which every request, its pooled connections and
//! the backoff timer run. Whoever polls [`Transport::send`] (a binding's blocking call, the
//! background sync's thread, a host's executor) only waits for the outcome, so a connection
//! made for one caller is driven while another uses it, and the futures need no tokio context
//! of their own. Each request has two deadlines ([`HttpOptions`]): a stall (no byte moved
//! either way) and a total; both fail as `Timeout`, and the request is abandoned.

use std::time::Duration;

use crate::error::{Category, Error, Result};
use crate::http::{Request, Response};
use crate::io::driver::Transport;
pub use crate::io::http_options::HttpOptions;

/// Sends requests with a shared reqwest client (connection pooling, rustls). Clones share the
/// client and (natively) the runtime that drives it.
#[derive(Clone, Debug)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    #[cfg(not(target_arch = "wasm32"))]
    options: HttpOptions,
    #[cfg(not(target_arch = "wasm32"))]
    runtime: std::sync::Arc<native::IoRuntime>,
}

impl ReqwestTransport {
    /// A transport with `options`; natively, it starts its I/O thread.
    ///
    /// # Errors
    /// `Config` when the HTTP client cannot be built (no TLS roots, say) or its thread cannot
    /// start.
    pub fn new(options: HttpOptions) -> Result<Self> {
        let builder = reqwest::Client::builder();
        #[cfg(not(target_arch = "wasm32"))]
        let builder = builder
            .connect_timeout(options.connect_timeout)
            .pool_max_idle_per_host(16)
            // A redirect would carry the signature and the session token to wherever the
            // endpoint points; an S3 redirect (wrong region or endpoint) is a configuration
            // error to fix, not a place to follow. (On wasm32 the browser's fetch decides.)
            .redirect(reqwest::redirect::Policy::none());
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("cannot build the HTTP client: {}", chain(&e))))?;
        #[cfg(target_arch = "wasm32")]
        {
            let _ = options;
            Ok(ReqwestTransport { client })
        }
        #[cfg(not(target_arch = "wasm32"))]
        Ok(ReqwestTransport {
            client,
            options,
            runtime: std::sync::Arc::new(native::IoRuntime::start()?),
        })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Transport for ReqwestTransport {
    async fn send(&self, request: Request) -> Result<Response> {
        let exchange = native::exchange(self.client.clone(), request, self.options);
        self.runtime.run(exchange).await.unwrap_or_else(|| {
            Err(Error::Transport {
                category: Category::Network,
                message: "the HTTP runtime stopped before an answer arrived".into(),
            })
        })
    }

    async fn sleep(&self, ms: u64) {
        let _ = self
            .runtime
            .run(tokio::time::sleep(Duration::from_millis(ms)))
            .await;
    }
}

#[cfg(target_arch = "wasm32")]
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
        let headers = header_list(response.headers());
        let body = response.bytes().await.map_err(transport_error)?.to_vec();
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    async fn sleep(&self, _ms: u64) {}
}

/// The native side: the runtime a transport owns, and one request under its deadlines.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::future::Future;
    use std::pin::{pin, Pin};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use bytes::Bytes;
    use futures::future::{select, Either};
    use tokio::time::Instant;

    use super::{header_list, transport_error, HttpOptions};
    use crate::error::{Category, Error, Result};
    use crate::http::{Request, Response};

    /// The tokio runtime of one transport: a single worker thread that runs its requests and
    /// drives its pooled connections whoever waits for them. Dropping it (anywhere, an async
    /// context included) abandons what still runs there.
    #[derive(Debug)]
    pub(super) struct IoRuntime(Option<tokio::runtime::Runtime>);

    impl IoRuntime {
        pub(super) fn start() -> Result<Self> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("bucketsync-io")
                .enable_all()
                .build()
                .map_err(|e| Error::Config(format!("cannot start the HTTP runtime: {e}")))?;
            Ok(IoRuntime(Some(runtime)))
        }

        /// Runs `work` on this runtime and waits for it from wherever the caller is; `None`
        /// when the runtime stopped first. Dropping the returned future abandons `work`.
        pub(super) fn run<T: Send + 'static>(
            &self,
            work: impl Future<Output = T> + Send + 'static,
        ) -> impl Future<Output = Option<T>> + Send {
            let runtime = self.0.as_ref().expect("present until dropped");
            let task = Abandoning(runtime.spawn(work));
            async move { task.await.ok() }
        }
    }

    impl Drop for IoRuntime {
        fn drop(&mut self) {
            if let Some(runtime) = self.0.take() {
                runtime.shutdown_background();
            }
        }
    }

    /// A spawned task that is aborted when nobody waits for it any more (a cancelled sync
    /// sends nothing after it was dropped).
    struct Abandoning<T>(tokio::task::JoinHandle<T>);

    impl<T> Future for Abandoning<T> {
        type Output = std::result::Result<T, tokio::task::JoinError>;

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            Pin::new(&mut self.0).poll(cx)
        }
    }

    impl<T> Drop for Abandoning<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }

    /// When a byte last moved, in milliseconds since the request began, and how much longer
    /// than the stall deadline the wait may be right now.
    struct Activity {
        start: Instant,
        last: AtomicU64,
        /// Set once the whole body is handed over, until the answer's head arrives: the
        /// connection's and the system's buffers may still hold what it handed over, and on a
        /// slow uplink draining them takes a while before the server can answer.
        extra_ms: AtomicU64,
    }

    impl Activity {
        fn new() -> Arc<Self> {
            Arc::new(Activity {
                start: Instant::now(),
                last: AtomicU64::new(0),
                extra_ms: AtomicU64::new(0),
            })
        }

        fn touch(&self) {
            let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.last.store(ms, Ordering::Relaxed);
        }

        /// Allows `extra` beyond the stall deadline from now on (`ZERO`: no more).
        fn allow(&self, extra: Duration) {
            let ms = u64::try_from(extra.as_millis()).unwrap_or(u64::MAX);
            self.extra_ms.store(ms, Ordering::Relaxed);
            self.touch();
        }

        /// Ends once nothing moved for `limit` (plus what [`Activity::allow`] allows).
        async fn stalled(&self, limit: Duration) {
            loop {
                let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
                let extra = Duration::from_millis(self.extra_ms.load(Ordering::Relaxed));
                let idle = self.start.elapsed().saturating_sub(last);
                let limit = limit + extra;
                if idle >= limit {
                    return;
                }
                tokio::time::sleep(limit - idle).await;
            }
        }
    }

    /// A request body handed to the connection in slices, each hand-over counting as
    /// progress: the connection asks for the next slice only once its buffer has room, so an
    /// upload the server stopped reading stalls here. Handing over the last slice allows
    /// `after_body` more for the answer (see the function `after_body`).
    struct WatchedBody {
        rest: Bytes,
        activity: Arc<Activity>,
        after_body: Duration,
    }

    /// The slice size: small enough that a slow uplink still moves one every few seconds.
    const SLICE: usize = 64 * 1024;

    /// How much longer than the stall deadline the answer to a body of `len` bytes may take
    /// once the whole body is handed over: one stall deadline per MiB of the last 4 MiB (what
    /// the connection's and the system's send buffers may still hold, and must drain before
    /// the server can answer). A 1 KiB segment gets nothing noticeable; a large pack two
    /// minutes with the default stall deadline, enough to drain 4 MiB at about 35 KB/s.
    fn after_body(len: usize, stall: Duration) -> Duration {
        let buffered = len.min(4 << 20) as f64 / f64::from(1u32 << 20);
        stall.mul_f64(buffered)
    }

    impl http_body::Body for WatchedBody {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<std::result::Result<http_body::Frame<Bytes>, Self::Error>>> {
            if self.rest.is_empty() {
                return Poll::Ready(None);
            }
            let n = self.rest.len().min(SLICE);
            let slice = self.rest.split_to(n);
            if self.rest.is_empty() {
                self.activity.allow(self.after_body);
            } else {
                self.activity.touch();
            }
            Poll::Ready(Some(Ok(http_body::Frame::data(slice))))
        }

        fn is_end_stream(&self) -> bool {
            self.rest.is_empty()
        }

        fn size_hint(&self) -> http_body::SizeHint {
            http_body::SizeHint::with_exact(self.rest.len() as u64)
        }
    }

    /// One request under `options`' deadlines.
    pub(super) async fn exchange(
        client: reqwest::Client,
        request: Request,
        options: HttpOptions,
    ) -> Result<Response> {
        let activity = Activity::new();
        let work = send_and_read(&client, request, &activity, options.stall_timeout);
        let watched = async {
            match select(pin!(work), pin!(activity.stalled(options.stall_timeout))).await {
                Either::Left((outcome, _)) => outcome,
                Either::Right(((), _)) => Err(timeout(format!(
                    "no byte moved for {} s (the stall deadline)",
                    options.stall_timeout.as_secs_f64()
                ))),
            }
        };
        match tokio::time::timeout(options.total_timeout, watched).await {
            Ok(outcome) => outcome,
            Err(_) => Err(timeout(format!(
                "the request took longer than {} s (the request deadline)",
                options.total_timeout.as_secs_f64()
            ))),
        }
    }

    async fn send_and_read(
        client: &reqwest::Client,
        request: Request,
        activity: &Arc<Activity>,
        stall: Duration,
    ) -> Result<Response> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .expect("GET, PUT, HEAD and DELETE are valid methods");
        let mut builder = client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if !request.body.is_empty() {
            builder = builder.body(reqwest::Body::wrap(WatchedBody {
                after_body: after_body(request.body.len(), stall),
                rest: request.body,
                activity: activity.clone(),
            }));
        }
        let mut response = builder.send().await.map_err(transport_error)?;
        activity.allow(Duration::ZERO);
        let status = response.status().as_u16();
        let headers = header_list(response.headers());
        let capacity = response
            .content_length()
            .map_or(0, |n| usize::try_from(n.min(64 << 20)).unwrap_or(0));
        let mut body = crate::buffer::reserve(capacity);
        while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
            activity.touch();
            body.extend_from_slice(&chunk);
        }
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    fn timeout(message: String) -> Error {
        Error::Transport {
            category: Category::Timeout,
            message,
        }
    }
}

/// A response's headers whose values are text.
fn header_list(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
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
