//! `bucketsync signer` against SeaweedFS: a client holding no S3 keys, only the bearer token,
//! writes, reads and lists under the vault's prefix with the URLs it hands out; everything
//! else is refused with its status; the log names no secret.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use bucketsync_suite::servers::{ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};
use serde_json::{json, Value};

const TOKEN: &str = "signer-test-token-0123456789";

/// The running service, killed when dropped (a failed assertion included).
struct Signer {
    child: Child,
    /// `http://127.0.0.1:PORT/sign`
    url: String,
    /// Everything it wrote on stderr so far.
    log: Arc<Mutex<String>>,
}

impl Signer {
    fn start(store: &str, token_file: &std::path::Path) -> Signer {
        Signer::start_with(store, token_file, &[])
    }

    fn start_with(store: &str, token_file: &std::path::Path, more: &[&str]) -> Signer {
        let mut child = Command::new(env!("CARGO_BIN_EXE_bucketsync"))
            .args([
                "--store",
                store,
                "--json",
                "signer",
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--token-file")
            .arg(token_file)
            .args(["--expires", "2m"])
            .args(more)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .env_remove("AWS_SESSION_TOKEN")
            .env_remove("AWS_PROFILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let mut stderr = child.stderr.take().unwrap();
        let into = Arc::clone(&log);
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buffer) {
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let mut signer = Signer {
            child,
            url: String::new(),
            log,
        };
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = signer.child.wait();
            panic!("no start line ({e}): {line:?}\n{}", signer.log())
        });
        assert_eq!(started["expires_seconds"], 120);
        signer.url = started["sign"].as_str().unwrap().to_owned();
        signer
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asks the service to sign `method` on `url` with `token`: the status and the JSON answer.
async fn ask(
    client: &reqwest::Client,
    signer: &Signer,
    token: Option<&str>,
    method: &str,
    url: &str,
) -> (u16, Value) {
    let mut request = client
        .post(&signer.url)
        .header("content-type", "application/json")
        .body(json!({"method": method, "url": url, "headers": []}).to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn presigned(client: &reqwest::Client, signer: &Signer, method: &str, url: &str) -> String {
    let (status, answer) = ask(client, signer, Some(TOKEN), method, url).await;
    assert_eq!(status, 200, "{method} {url}: {answer}");
    assert_eq!(answer["headers"], json!([]));
    answer["url"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_keys_reads_writes_and_lists_under_the_prefix_only() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("signed").await;
    server.create_bucket("other").await;
    let store = server.store("signed", "clinic/records");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("  {TOKEN}\n")).unwrap();
    let signer = Signer::start(&server.store_url("signed", "clinic/records"), &token_file);
    // A plain client: no credentials, no signing.
    let client = reqwest::Client::new();

    // PUT then GET of a key under the prefix, with the URLs the service handed out.
    let key = "clinic/records/0a1b/s/0001";
    let put = presigned(&client, &signer, "PUT", &store.object_url(key)).await;
    assert!(put.contains("X-Amz-Expires=120"), "{put}");
    assert!(put.contains("X-Amz-Signature="));
    let stored = client.put(&put).body("hello").send().await.unwrap();
    assert_eq!(stored.status(), 200, "{}", stored.text().await.unwrap());
    let get = presigned(&client, &signer, "GET", &store.object_url(key)).await;
    let read = client.get(&get).send().await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(read.text().await.unwrap(), "hello");
    let head = presigned(&client, &signer, "HEAD", &store.object_url(key)).await;
    assert_eq!(client.head(&head).send().await.unwrap().status(), 200);
    // A URL is for its method only: the PUT's URL does not read.
    assert_eq!(client.get(&put).send().await.unwrap().status(), 403);

    // A listing under the prefix.
    let list = presigned(
        &client,
        &signer,
        "GET",
        &store.list_url("clinic/records/", None),
    )
    .await;
    let listed = client.get(&list).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    let page = bucketsync::s3::parse_list(&listed.bytes().await.unwrap()).unwrap();
    let keys: Vec<&str> = page.objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, [key]);
    // The uploads in progress under the prefix (what a device looks for to abort a killed
    // run's), signed and answered by the store.
    let uploads = presigned(
        &client,
        &signer,
        "GET",
        &store.uploads_url("clinic/records/"),
    )
    .await;
    assert_eq!(client.get(&uploads).send().await.unwrap().status(), 200);

    // Each refusal, with its status.
    let endpoint = &server.endpoint;
    let other_bucket = server.store("other", "clinic/records");
    let outside = server.store("signed", "elsewhere");
    let refused = [
        (
            Some("wrong-token-0123456789"),
            "GET",
            store.object_url(key),
            401,
        ),
        (None, "GET", store.object_url(key), 401),
        (Some(TOKEN), "DELETE", store.object_url(key), 403),
        (
            Some(TOKEN),
            "POST",
            format!("{}?uploads", store.object_url(key)),
            403,
        ),
        (Some(TOKEN), "GET", other_bucket.object_url(key), 403),
        (Some(TOKEN), "PUT", outside.object_url("elsewhere/k"), 403),
        (
            Some(TOKEN),
            "GET",
            format!("{endpoint}/signed/clinic/records/%2e%2e/%2e%2e/elsewhere/k"),
            403,
        ),
        (
            Some(TOKEN),
            "GET",
            outside.list_url("elsewhere/", None),
            403,
        ),
        (
            Some(TOKEN),
            "GET",
            format!("{}?acl", store.object_url(key)),
            403,
        ),
        (
            Some(TOKEN),
            "GET",
            format!("{endpoint}/signed?uploads&prefix=elsewhere%2F"),
            403,
        ),
        (Some(TOKEN), "PUT", store.bucket_url(), 403),
        (
            Some(TOKEN),
            "GET",
            format!("{}?X-Amz-Expires=604800", store.object_url(key)),
            403,
        ),
    ];
    for (token, method, url, status) in refused {
        let (got, answer) = ask(&client, &signer, token, method, &url).await;
        assert_eq!(got, status, "{method} {url}: {answer}");
        assert!(answer["error"].is_string(), "{method} {url}: {answer}");
        assert!(answer.get("url").is_none());
    }
    let (_, answer) = ask(
        &client,
        &signer,
        Some(TOKEN),
        "DELETE",
        &store.object_url(key),
    )
    .await;
    assert!(
        answer["error"].as_str().unwrap().contains("DELETE"),
        "{answer}"
    );

    // Not the JSON it wants: 400; other methods and paths.
    let bad = client
        .post(&signer.url)
        .header("authorization", format!("Bearer {TOKEN}"))
        .body("GET please")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert_eq!(client.get(&signer.url).send().await.unwrap().status(), 405);
    let elsewhere = signer.url.replace("/sign", "/presign");
    assert_eq!(client.post(&elsewhere).send().await.unwrap().status(), 404);

    // A page of another origin may call it: the preflight, and the origin on every answer.
    let preflight = client
        .request(reqwest::Method::OPTIONS, &signer.url)
        .header("origin", "https://records.example")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    let header = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        header(&preflight, "access-control-allow-origin").as_deref(),
        Some("https://records.example")
    );
    assert_eq!(
        header(&preflight, "access-control-allow-methods").as_deref(),
        Some("POST")
    );
    let allowed = header(&preflight, "access-control-allow-headers").unwrap();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"));
    let refusal = client
        .post(&signer.url)
        .header("origin", "https://records.example")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal.status(), 401);
    assert_eq!(
        header(&refusal, "access-control-allow-origin").as_deref(),
        Some("https://records.example")
    );

    // One line per request, naming no token and no signature. (Each line is written before
    // its answer, but read here by another thread.)
    let requests = 5 + 12 + 1 + 3 + 2;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while signer.log().lines().count() < requests && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = signer.log();
    assert!(
        log.contains("200 PUT \"clinic/records/0a1b/s/0001\""),
        "{log}"
    );
    assert!(log.contains(" 403 "), "{log}");
    assert!(!log.contains(TOKEN) && !log.contains("wrong-token") && !log.contains("Signature"));
    assert_eq!(log.lines().count(), requests, "{log}");
}

#[test]
fn refuses_to_start_without_a_long_token() {
    let dir = tempfile::tempdir().unwrap();
    let store = "s3://signed/clinic?endpoint=http://127.0.0.1:9";
    for (name, content) in [("empty", "\n"), ("short", "fifteen-chars-x")] {
        let token_file = dir.path().join(name);
        std::fs::write(&token_file, content).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_bucketsync"))
            .args(["--store", store, "signer", "--listen", "127.0.0.1:0"])
            .arg("--token-file")
            .arg(&token_file)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{name}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("shorter than 16 characters"), "{stderr}");
    }
    let output = Command::new(env!("CARGO_BIN_EXE_bucketsync"))
        .args(["--store", store, "signer", "--listen", "127.0.0.1:0"])
        .args(["--token-file", "/nonexistent/token", "--expires", "2h"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

/// A member's token (`--member-tokens`): signed for under its vault's folder only, and with
/// `read` for reading only, against SeaweedFS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_token_reads_its_vault_only() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("family").await;
    let store = server.store("family", "shared");
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let emma = "ab".repeat(16);
    let carol = "carol-reads-emma-0123456789";
    let members = dir.path().join("members");
    std::fs::write(&members, format!("{carol} {emma} read\n")).unwrap();
    let signer = Signer::start_with(
        &server.store_url("family", "shared"),
        &token_file,
        &["--member-tokens", members.to_str().unwrap()],
    );
    let client = reqwest::Client::new();
    // The owner (the store's token) writes a record object into emma's folder.
    let key = format!("shared/{emma}/m/{}", "01".repeat(16));
    let put = presigned(&client, &signer, "PUT", &store.object_url(&key)).await;
    assert_eq!(
        client.put(&put).body("m").send().await.unwrap().status(),
        200
    );

    let (status, answer) = ask(
        &client,
        &signer,
        Some(carol),
        "GET",
        &store.object_url(&key),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let read = client
        .get(answer["url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(read.text().await.unwrap(), "m");
    let list_url = store.list_url(&format!("shared/{emma}/"), None);
    let (status, answer) = ask(&client, &signer, Some(carol), "GET", &list_url).await;
    assert_eq!(status, 200, "{answer}");

    for (method, url, why) in [
        ("PUT", store.object_url(&key), "this token may only read"),
        (
            "GET",
            store.object_url(&format!("shared/{}/m/x", "cd".repeat(16))),
            "outside the vault this token is for",
        ),
        (
            "GET",
            store.list_url("shared/", None),
            "outside the vault this token is for",
        ),
    ] {
        let (status, answer) = ask(&client, &signer, Some(carol), method, &url).await;
        assert_eq!(
            (status, answer["error"].as_str()),
            (403, Some(why)),
            "{method} {url}"
        );
    }
    assert!(!signer.log().contains(carol), "the log names no token");
}
