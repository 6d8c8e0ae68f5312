//! `bucketsync doctor` against SeaweedFS and s3s-fs (what each really does, check by check), a
//! local folder, refused credentials and CORS rules.

use std::process::{Command, Output};

use bucketsync::driver::Transport;
use bucketsync::sign::{SigV4, Signer};
use bucketsync::{Method, Request, RequestId, RequestKind};
use bucketsync_suite::servers::{http, ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};
use bucketsync_suite::wall_clock;
use serde_json::Value;

/// Runs `bucketsync --store STORE doctor ARGS` with the S3 credentials `key` and `secret`.
fn doctor(store: &str, args: &[&str], key: &str, secret: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bucketsync"))
        .args(["--store", store, "doctor"])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .unwrap()
}

fn show(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The doctor's JSON (its whole stdout: one object), and its exit code.
fn doctor_json(store: &str, args: &[&str], key: &str, secret: &str) -> (Value, Option<i32>) {
    let mut with = args.to_vec();
    with.push("--json");
    let output = doctor(store, &with, key, secret);
    let report =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&output)));
    (report, output.status.code())
}

/// `check`'s row.
fn row<'a>(report: &'a Value, check: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["check"] == check)
        .unwrap_or_else(|| panic!("no {check} row in {report:#}"))
}

/// Asserts each named check's result.
fn assert_results(report: &Value, expected: &[(&str, &str)]) {
    for (check, result) in expected {
        assert_eq!(row(report, check)["result"], *result, "{check}: {report:#}");
    }
}

/// Sets the README's CORS rule for `origin` on `bucket`; the store's status.
async fn allow_origin(server: &TestServer, bucket: &str, origin: &str) -> u16 {
    let body = format!(
        "<CORSConfiguration><CORSRule><AllowedOrigin>{origin}</AllowedOrigin>\
         <AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod>\
         <AllowedMethod>HEAD</AllowedMethod><AllowedMethod>POST</AllowedMethod>\
         <AllowedMethod>DELETE</AllowedMethod><AllowedHeader>*</AllowedHeader>\
         <ExposeHeader>ETag</ExposeHeader><ExposeHeader>Content-Range</ExposeHeader>\
         <MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>"
    );
    let mut request = Request {
        id: RequestId(0),
        kind: RequestKind::List,
        method: Method::Put,
        url: format!("{}/{bucket}?cors", server.endpoint),
        headers: vec![("content-type".into(), "application/xml".into())],
        body: body.into_bytes().into(),
    };
    SigV4::new(TestServer::credentials(), "us-east-1")
        .sign(&mut request, wall_clock())
        .unwrap();
    http().send(request).await.unwrap().status
}

/// Every check passes on both servers; what the probe wrote is gone; refused credentials and
/// a missing bucket fail the auth check with the exit code of their category.
#[tokio::test]
async fn doctor_passes_on_both_servers() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("doctor").await;
        let store = server.store_url("doctor", "notes");

        let text = doctor(&store, &[], ACCESS_KEY, SECRET_KEY);
        assert!(text.status.success(), "{kind:?}: {}", show(&text));
        let table = String::from_utf8(text.stdout).unwrap();
        eprintln!("{kind:?}:\n{table}");
        assert!(table.starts_with("CHECK"), "{table}");
        assert!(table.contains("\nVerdict: ok: "), "{table}");

        let (report, code) = doctor_json(&store, &[], ACCESS_KEY, SECRET_KEY);
        assert_eq!(code, Some(0), "{kind:?}: {report:#}");
        assert_eq!(report["verdict"], "ok", "{kind:?}: {report:#}");
        // Both honour If-None-Match: * (the second create answers 412), page with max-keys=1
        // (3 pages for 3 objects), complete multipart uploads and answer Range with 206.
        assert_results(
            &report,
            &[
                ("auth", "ok"),
                ("clock skew", "ok"),
                ("conditional create", "ok"),
                ("pagination", "ok"),
                ("multipart", "ok"),
                ("range GET", "ok"),
                ("conditional GET", "ok"),
                ("CORS", "n/a"),
                ("latency", "info"),
                ("throughput", "info"),
                ("cleanup", "ok"),
            ],
        );
        let detail = |check: &str| row(&report, check)["detail"].as_str().unwrap().to_owned();
        assert!(detail("conditional create").contains("412"), "{report:#}");
        assert!(detail("pagination").contains("3 pages"), "{report:#}");
        assert!(detail("range GET").starts_with("206"), "{report:#}");
        // SeaweedFS answers 304; s3s-fs ignores the condition (200, the same ETag).
        let conditional = detail("conditional GET");
        assert!(
            conditional.starts_with(match kind {
                ServerKind::SeaweedFs => "304",
                _ => "ignores",
            }),
            "{kind:?}: {report:#}"
        );
        assert!(
            detail("cleanup").contains("notes/.bucketsync-doctor-"),
            "{report:#}"
        );
        assert!(row(&report, "auth")["fix"].is_null());
        // Everything the two runs wrote is gone.
        let left = server.list_all(&server.store("doctor", ""), "").await;
        assert!(left.is_empty(), "{kind:?} left {left:?}");

        // A wrong secret: auth fails (exit 4), nothing else runs, nothing is written.
        let (report, code) = doctor_json(&store, &[], ACCESS_KEY, "wrong-secret-0123456789");
        assert_eq!(code, Some(4), "{kind:?}: {report:#}");
        assert_eq!(report["verdict"], "fail");
        let auth = row(&report, "auth");
        assert_eq!(auth["result"], "fail", "{report:#}");
        assert!(auth["detail"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch"));
        assert!(auth["fix"]
            .as_str()
            .unwrap()
            .contains("AWS_SECRET_ACCESS_KEY"));
        assert_results(
            &report,
            &[
                ("pagination", "n/a"),
                ("throughput", "n/a"),
                ("cleanup", "n/a"),
            ],
        );
        // An unknown access key (SeaweedFS: InvalidAccessKeyId, s3s: NotSignedUp).
        let (report, code) = doctor_json(&store, &[], "nobody", SECRET_KEY);
        assert_eq!(code, Some(4), "{kind:?}: {report:#}");
        let fix = row(&report, "auth")["fix"].as_str().unwrap().to_owned();
        assert!(fix.contains("AWS_ACCESS_KEY_ID"), "{fix}");
        // The text says the same on stdout, and nothing more on stderr.
        let text = doctor(&store, &[], ACCESS_KEY, "wrong-secret-0123456789");
        assert_eq!(text.status.code(), Some(4));
        let table = String::from_utf8_lossy(&text.stdout);
        assert!(
            table.contains("fix: check AWS_SECRET_ACCESS_KEY"),
            "{table}"
        );
        assert!(
            table.contains("Verdict: fail: 1 check failed (first: auth)"),
            "{table}"
        );
        assert!(text.stderr.is_empty(), "{}", show(&text));

        // No such bucket: not found (exit 5), saying to create it.
        let (report, code) = doctor_json(
            &server.store_url("no-such-bucket", ""),
            &[],
            ACCESS_KEY,
            SECRET_KEY,
        );
        assert_eq!(code, Some(5), "{kind:?}: {report:#}");
        let fix = row(&report, "auth")["fix"].as_str().unwrap().to_owned();
        assert!(fix.contains("create the bucket"), "{fix}");
        assert!(server
            .list_all(&server.store("doctor", ""), "")
            .await
            .is_empty());
    }
}

/// `--origin`: SeaweedFS answers CORS headers without a rule (it echoes any Origin and exposes
/// ETag, Content-Length, Content-Type, Last-Modified, x-amz-request-id and x-amz-version-id,
/// not Content-Range: a warning), and takes the README's rule (then that origin passes and
/// another fails); s3s-fs implements no CORS (PutBucketCors answers 501, no CORS headers): a
/// failure whatever the origin.
#[tokio::test]
async fn doctor_checks_the_cors_rule_for_an_origin() {
    let origin = "https://notes.example";
    let weed = TestServer::start(ServerKind::SeaweedFs).await;
    weed.create_bucket("cors").await;
    let store = weed.store_url("cors", "");
    let (report, code) = doctor_json(&store, &["--origin", origin], ACCESS_KEY, SECRET_KEY);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verdict"], "warn", "{report:#}");
    let cors = row(&report, "CORS");
    assert_eq!(cors["result"], "warn", "{report:#}");
    let detail = cors["detail"].as_str().unwrap();
    assert!(detail.contains("Content-Range is not exposed"), "{detail}");
    assert!(
        detail.contains(&format!("Access-Control-Allow-Origin {origin}")),
        "{detail}"
    );

    assert_eq!(allow_origin(&weed, "cors", origin).await, 200);
    let (report, code) = doctor_json(&store, &["--origin", origin], ACCESS_KEY, SECRET_KEY);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verdict"], "ok", "{report:#}");
    let other = "https://elsewhere.example";
    let (report, code) = doctor_json(&store, &["--origin", other], ACCESS_KEY, SECRET_KEY);
    assert_eq!(code, Some(3), "{report:#}");
    let cors = row(&report, "CORS");
    assert_eq!(cors["result"], "fail", "{report:#}");
    let fix = cors["fix"].as_str().unwrap();
    assert!(
        fix.contains(other) && fix.contains("put-bucket-cors --bucket cors"),
        "{fix}"
    );
    drop(weed);

    let s3s = TestServer::start(ServerKind::S3sFs).await;
    s3s.create_bucket("cors").await;
    assert_eq!(allow_origin(&s3s, "cors", origin).await, 501);
    let store = s3s.store_url("cors", "");
    let (report, code) = doctor_json(&store, &["--origin", origin], ACCESS_KEY, SECRET_KEY);
    assert_eq!(code, Some(3), "{report:#}");
    let cors = row(&report, "CORS");
    assert_eq!(cors["result"], "fail", "{report:#}");
    assert!(cors["detail"]
        .as_str()
        .unwrap()
        .contains("Access-Control-Allow-Origin none"));
    assert!(s3s.list_all(&s3s.store("cors", ""), "").await.is_empty());
}

/// A local folder: no credentials, clock, multipart or CORS to check; the rest passes, and the
/// folder is as empty afterwards as before.
#[test]
fn doctor_on_a_local_folder() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let text = doctor(&store, &[], "", "");
    assert!(text.status.success(), "{}", show(&text));
    eprintln!("{}", String::from_utf8_lossy(&text.stdout));
    let (report, code) = doctor_json(&store, &["--origin", "https://notes.example"], "", "");
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["verdict"], "ok", "{report:#}");
    assert_results(
        &report,
        &[
            ("auth", "n/a"),
            ("clock skew", "n/a"),
            ("conditional create", "ok"),
            ("pagination", "ok"),
            ("multipart", "n/a"),
            ("range GET", "ok"),
            ("conditional GET", "ok"),
            ("CORS", "n/a"),
            ("latency", "info"),
            ("throughput", "info"),
            ("cleanup", "ok"),
        ],
    );
    assert_eq!(row(&report, "auth")["detail"], "n/a (local folder)");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
