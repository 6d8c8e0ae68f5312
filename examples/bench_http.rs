//! The HTTP transport's cost, on a SeaweedFS server it starts itself:
//! `cargo run --release --example bench_http` (after `bash scripts/test.sh` installed it).
//!
//! `ReqwestTransport` runs every request on its own I/O thread (so that a connection pooled by
//! one caller is driven while another waits) and watches two deadlines. This prints it next to
//! a plain reqwest client awaited on the caller's runtime (what the transport did before), for
//! many small objects (latency) and a few large ones (throughput), eight requests in flight as
//! the driver keeps them. Figures are from one run: compare the rows with each other.

use std::time::Instant;

use bucketsync::driver::Transport;
use bucketsync::reqwest_transport::{HttpOptions, ReqwestTransport};
use bucketsync::sign::{SigV4, Signer};
use bucketsync::{Method, Request, RequestId, RequestKind, Response, Store};
use bucketsync_suite::servers::{ServerKind, TestServer};
use bucketsync_suite::wall_clock;
use futures::stream::{self, StreamExt};

const MIB: usize = 1 << 20;
const IN_FLIGHT: usize = 8;

/// A reqwest client awaited wherever the caller polls it.
struct OnCaller(reqwest::Client);

impl Transport for OnCaller {
    async fn send(&self, request: Request) -> bucketsync::Result<Response> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes()).unwrap();
        let mut builder = self.0.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = builder.body(request.body).send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(failed)?.to_vec();
        Ok(Response {
            status,
            headers: Vec::new(),
            body,
        })
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

fn failed(e: reqwest::Error) -> bucketsync::Error {
    bucketsync::Error::Transport {
        category: bucketsync::Category::Network,
        message: e.to_string(),
    }
}

fn signed(store: &Store, method: Method, key: &str, body: Vec<u8>) -> Request {
    let mut request = Request {
        id: RequestId(0),
        kind: RequestKind::PutSegment,
        method,
        url: store.object_url(key),
        headers: Vec::new(),
        body: body.into(),
    };
    SigV4::new(TestServer::credentials(), "us-east-1")
        .sign(&mut request, wall_clock())
        .unwrap();
    request
}

/// PUTs `count` objects of `size` bytes, then GETs them, `IN_FLIGHT` at a time; the seconds
/// each took.
async fn round<T: Transport>(
    t: &T,
    store: &Store,
    tag: &str,
    count: usize,
    size: usize,
) -> (f64, f64) {
    let body = vec![7u8; size];
    let mut seconds = [0.0; 2];
    for (i, method) in [Method::Put, Method::Get].into_iter().enumerate() {
        let started = Instant::now();
        let answers: Vec<u16> = stream::iter(0..count)
            .map(|n| {
                let body = if method == Method::Put {
                    body.clone()
                } else {
                    Vec::new()
                };
                let request = signed(store, method, &format!("http/{tag}/{size}/{n}"), body);
                async move { t.send(request).await.expect("answered").status }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
        seconds[i] = started.elapsed().as_secs_f64();
    }
    (seconds[0], seconds[1])
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("bench").await;
    let store = server.store("bench", "");
    let own = ReqwestTransport::new(HttpOptions::default()).unwrap();
    let caller = OnCaller(reqwest::Client::builder().build().unwrap());
    println!(
        "| {:<58} | {:>10} | {:>10} |",
        "requests (8 in flight), SeaweedFS", "PUT", "GET"
    );
    println!("|{:-<60}|{:-<12}|{:-<12}|", "", "", "");
    for (name, count, size) in [
        ("2,000 objects of 1 KiB", 2000, 1024),
        ("16 objects of 32 MiB", 16, 32 * MIB),
    ] {
        // Warm both pools first, then alternate, so neither runs on a colder server.
        round(&own, &store, "warm", 8, 1024).await;
        round(&caller, &store, "warm", 8, 1024).await;
        let (on_caller_put, on_caller_get) = round(&caller, &store, "caller", count, size).await;
        let (own_put, own_get) = round(&own, &store, "own", count, size).await;
        let unit = |s: f64| {
            if size >= MIB {
                format!("{:.0} MiB/s", (count * size) as f64 / MIB as f64 / s)
            } else {
                format!("{:.0} µs/req", s * 1e6 / count as f64)
            }
        };
        println!(
            "| {:<58} | {:>10} | {:>10} |",
            format!("{name}: client on the caller's runtime"),
            unit(on_caller_put),
            unit(on_caller_get)
        );
        println!(
            "| {:<58} | {:>10} | {:>10} |",
            format!("{name}: ReqwestTransport (own I/O thread)"),
            unit(own_put),
            unit(own_get)
        );
        println!(
            "| {:<58} | {:>9.2}x | {:>9.2}x |",
            format!("{name}: time, own / caller's"),
            own_put / on_caller_put,
            own_get / on_caller_get
        );
    }
}
