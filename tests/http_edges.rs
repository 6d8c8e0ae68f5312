//! The reqwest transport against a tiny local HTTP server that answers what a hostile or
//! misconfigured endpoint might (issue 14).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::mpsc;

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
