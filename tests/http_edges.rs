//! The reqwest transport against a tiny local HTTP server that answers what a hostile or
//! misconfigured endpoint might (issue 14).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use bucketsync::driver::Transport;
use bucketsync::reqwest_transport::{HttpOptions, ReqwestTransport};
use bucketsync::{Category, Method, Request, RequestId, RequestKind};

/// Serves one connection on a free port: answers it with `answer` and sends the request's
/// header lines to the returned channel.
fn serve_once(answer: String) -> (u16, mpsc::Receiver<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            lines.push(line.trim_end().to_ascii_lowercase());
        }
        let mut stream = stream;
        let _ = stream.write_all(answer.as_bytes());
        let _ = tx.send(lines);
    });
    (port, rx)
}

/// A redirect from the endpoint must not carry the signature or the session token anywhere:
/// the transport does not follow redirects, and the error says where the store pointed.
#[tokio::test]
async fn a_redirect_is_not_followed_with_credentials() {
    let (target, target_seen) = serve_once("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".into());
    let (endpoint, endpoint_seen) = serve_once(format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{target}/bucket/v/m/x\r\ncontent-length: 0\r\n\r\n"
    ));
    let transport = ReqwestTransport::new(HttpOptions::default()).unwrap();
    let request = Request {
        id: RequestId(1),
        kind: RequestKind::GetManifest,
        method: Method::Get,
        url: format!("http://127.0.0.1:{endpoint}/bucket/v/m/x"),
        headers: vec![
            (
                "authorization".into(),
                "AWS4-HMAC-SHA256 Credential=secret".into(),
            ),
            ("x-amz-security-token".into(), "session-secret".into()),
        ],
        body: Default::default(),
    };
    let response = transport.send(request).await.unwrap();
    assert_eq!(response.status, 307);
    let seen = endpoint_seen.recv().unwrap();
    assert!(seen.iter().any(|l| l.starts_with("authorization:")));
    // The redirect target was never contacted.
    assert!(target_seen
        .recv_timeout(std::time::Duration::from_millis(300))
        .is_err());
    let error = bucketsync::s3::error_from_response(&response, "GET m/x".into());
    assert_eq!(error.category(), Category::Config, "{error}");
}

/// A request for `url` with no credentials.
fn get(url: String) -> Request {
    Request {
        id: RequestId(1),
        kind: RequestKind::GetManifest,
        method: Method::Get,
        url,
        headers: Vec::new(),
        body: Default::default(),
    }
}

/// Serves every connection on a free port on a thread of its own with `serve` (given the
/// connection, with its request's header lines already read).
fn serve_each(serve: fn(BufReader<TcpStream>, TcpStream)) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let reader = BufReader::new(stream.try_clone().unwrap());
                serve(reader, stream);
            });
        }
    });
    port
}

/// Reads one request's head; false when the connection closed first.
fn read_head(reader: &mut BufReader<TcpStream>) -> bool {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return false;
        }
        if line == "\r\n" {
            return true;
        }
    }
}

/// Answers every request on a kept-alive connection with "ok".
fn keep_alive(mut reader: BufReader<TcpStream>, mut stream: TcpStream) {
    while read_head(&mut reader) {
        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if stream.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// Deadlines short enough for a test, long enough for a loaded machine's loopback.
fn quick() -> HttpOptions {
    HttpOptions {
        stall_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(6),
        ..HttpOptions::default()
    }
}

/// The Python hang (issue 37): a connection pooled by a request made on one runtime served the
/// next request made on another while the first runtime sat idle, and nothing drove it. The
/// transport now drives its own connections, so whoever waits gets the answer.
#[test]
fn a_connection_pooled_by_an_idle_runtime_serves_another_caller() {
    let port = serve_each(keep_alive);
    let transport = ReqwestTransport::new(HttpOptions::default()).unwrap();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let answer = first
        .block_on(transport.send(get(format!("http://127.0.0.1:{port}/a"))))
        .unwrap();
    assert_eq!(answer.body, b"ok");
    // `first` stays alive and idle, as a vault's runtime does between manual syncs.
    let other = transport.clone();
    let second = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(other.send(get(format!("http://127.0.0.1:{port}/b"))))
    })
    .join()
    .unwrap();
    assert_eq!(second.expect("answered, not timed out").body, b"ok");
    // And a caller with no tokio runtime at all.
    let third =
        futures::executor::block_on(transport.send(get(format!("http://127.0.0.1:{port}/c"))));
    assert_eq!(third.unwrap().body, b"ok");
    drop(first);
}

/// A server that accepts and never answers fails the request as `Timeout` after the stall
/// deadline, and the same transport's next request goes through.
#[tokio::test]
async fn a_server_that_never_answers_fails_as_a_timeout() {
    let silent = serve_each(|mut reader, _stream| {
        read_head(&mut reader);
        std::thread::sleep(Duration::from_secs(120));
    });
    let good = serve_each(keep_alive);
    let transport = ReqwestTransport::new(quick()).unwrap();
    let error = transport
        .send(get(format!("http://127.0.0.1:{silent}/x")))
        .await
        .unwrap_err();
    assert_eq!(error.category(), Category::Timeout, "{error}");
    assert!(error.to_string().contains("stall deadline"), "{error}");
    let answer = transport
        .send(get(format!("http://127.0.0.1:{good}/x")))
        .await
        .unwrap();
    assert_eq!(answer.body, b"ok");
}

/// Sends `request` with the test's short deadlines; it must fail as `Timeout`, whose error is
/// returned.
async fn timed_out(request: Request) -> bucketsync::Error {
    let transport = ReqwestTransport::new(quick()).unwrap();
    let error = transport.send(request).await.unwrap_err();
    assert_eq!(error.category(), Category::Timeout, "{error}");
    error
}

/// A server that stops halfway through a body fails the request as `Timeout`.
#[tokio::test]
async fn a_body_that_stops_halfway_fails_as_a_timeout() {
    let port = serve_each(|mut reader, mut stream| {
        read_head(&mut reader);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfifty bytes..");
        std::thread::sleep(Duration::from_secs(120));
    });
    let error = timed_out(get(format!("http://127.0.0.1:{port}/x"))).await;
    assert!(error.to_string().contains("stall deadline"), "{error}");
}

/// An answer that trickles in (a byte at a time, never stalling) meets the total deadline.
#[tokio::test]
async fn a_trickling_answer_meets_the_total_deadline() {
    let port = serve_each(|mut reader, mut stream| {
        read_head(&mut reader);
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n");
        for _ in 0..100_000 {
            if stream.write_all(b".").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let error = timed_out(get(format!("http://127.0.0.1:{port}/x"))).await;
    assert!(error.to_string().contains("request deadline"), "{error}");
}

/// An upload the server never reads stalls once the socket's buffers are full, and fails as
/// `Timeout`.
#[tokio::test]
async fn an_upload_the_server_stops_reading_fails_as_a_timeout() {
    let port = serve_each(|mut reader, _stream| {
        read_head(&mut reader);
        std::thread::sleep(Duration::from_secs(120));
    });
    let mut request = get(format!("http://127.0.0.1:{port}/x"));
    request.method = Method::Put;
    request.body = vec![7u8; 64 << 20].into();
    let error = timed_out(request).await;
    assert!(error.to_string().contains("stall deadline"), "{error}");
}

/// A transport let go inside an async context (a binding's callback, a task) does not panic
/// (tokio refuses to drop a runtime there unless told not to wait).
#[tokio::test]
async fn a_transport_dropped_inside_a_runtime_does_not_panic() {
    let port = serve_each(keep_alive);
    let transport = ReqwestTransport::new(HttpOptions::default()).unwrap();
    let answer = transport
        .send(get(format!("http://127.0.0.1:{port}/x")))
        .await
        .unwrap();
    assert_eq!(answer.body, b"ok");
    drop(transport);
}

/// A healthy upload the server reads slowly: the connection hands the body over to socket
/// buffers long before the server has read it, so the wait for the answer after the last slice
/// is longer than the stall deadline, and must not be taken for a stall. (The server reads
/// 4 MiB at about 1.3 MB/s, so draining what the buffers hold takes longer than the 1.5 s
/// deadline; the 7.5 s the transport allows after the last slice leave room for a loaded
/// machine, where a 2 MiB body read at half that rate once failed.)
#[tokio::test]
async fn a_slowly_read_upload_is_not_a_stall() {
    let port = serve_each(|mut reader, mut stream| {
        use std::io::Read;
        read_head(&mut reader);
        let mut left = 4 << 20;
        let mut buf = vec![0u8; 64 << 10];
        while left > 0 {
            std::thread::sleep(Duration::from_millis(50));
            match reader.read(&mut buf[..left.min(64 << 10)]) {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= n,
            }
        }
        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    });
    let transport = ReqwestTransport::new(HttpOptions {
        stall_timeout: Duration::from_millis(1500),
        total_timeout: Duration::from_secs(30),
        ..HttpOptions::default()
    })
    .unwrap();
    let mut request = get(format!("http://127.0.0.1:{port}/x"));
    request.method = Method::Put;
    request.body = vec![1u8; 4 << 20].into();
    let answer = transport
        .send(request)
        .await
        .expect("a slow reader is no stall");
    assert_eq!(answer.body, b"ok");
}
