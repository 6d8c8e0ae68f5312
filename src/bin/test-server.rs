//! Starts a test S3 server for tests written in other languages:
//!
//! ```text
//! test-server seaweedfs|s3s [--as KEY:SECRET] [--tap FILE] [BUCKET...]
//! ```
//!
//! Creates the buckets, prints one JSON line (`{"endpoint":…,"accessKeyId":…,"secretAccessKey":…}`),
//! then runs until its standard input closes (the parent ended it, or the parent died) and stops
//! the server by PID. `--as` makes it accept that key only (another service than the usual
//! test server); `--tap` puts a tap in front of it (the endpoint printed is the tap's) that
//! appends every byte the clients send to FILE, so that a test can tell which key ids reached
//! this server.

use std::io::Read;
use std::path::PathBuf;

use bucketsync_suite::servers::{ServerKind, Tap, TestServer, ACCESS_KEY, SECRET_KEY};

fn usage() -> ! {
    eprintln!("usage: test-server seaweedfs|s3s [--as KEY:SECRET] [--tap FILE] [BUCKET...]");
    std::process::exit(2);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let kind = match args.next().as_deref() {
        Some("seaweedfs") => ServerKind::SeaweedFs,
        Some("s3s") => ServerKind::S3sFs,
        _ => usage(),
    };
    let (mut access, mut secret) = (ACCESS_KEY.to_owned(), SECRET_KEY.to_owned());
    let mut tap_log = None;
    let mut buckets = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--as" => {
                let pair = args.next().unwrap_or_else(|| usage());
                let (a, s) = pair.split_once(':').unwrap_or_else(|| usage());
                (access, secret) = (a.to_owned(), s.to_owned());
            }
            "--tap" => tap_log = Some(PathBuf::from(args.next().unwrap_or_else(|| usage()))),
            _ => buckets.push(arg),
        }
    }
    let server = TestServer::start_as(kind, &access, &secret).await;
    for bucket in buckets {
        server.create_bucket(&bucket).await;
    }
    let tap = tap_log.map(|log| Tap::start(&server.endpoint, Some(log)));
    let endpoint = tap.as_ref().map_or(&server.endpoint, |t| &t.endpoint);
    println!(
        r#"{{"endpoint":"{endpoint}","accessKeyId":"{access}","secretAccessKey":"{secret}"}}"#
    );
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(tap);
    drop(server);
}
