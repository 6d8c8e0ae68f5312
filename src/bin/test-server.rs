//! Starts a test S3 server for tests written in other languages:
//!
//! ```text
//! test-server seaweedfs|s3s [BUCKET...]
//! ```
//!
//! Creates the buckets, prints one JSON line (`{"endpoint":…,"accessKeyId":…,"secretAccessKey":…}`),
//! then runs until its standard input closes (the parent ended it, or the parent died) and stops
//! the server by PID.

use std::io::Read;

use bucketsync_suite::servers::{ServerKind, TestServer, ACCESS_KEY, SECRET_KEY};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let kind = match args.next().as_deref() {
        Some("seaweedfs") => ServerKind::SeaweedFs,
        Some("s3s") => ServerKind::S3sFs,
        _ => {
            eprintln!("usage: test-server seaweedfs|s3s [BUCKET...]");
            std::process::exit(2);
        }
    };
    let server = TestServer::start(kind).await;
    for bucket in args {
        server.create_bucket(&bucket).await;
    }
    println!(
        r#"{{"endpoint":"{}","accessKeyId":"{ACCESS_KEY}","secretAccessKey":"{SECRET_KEY}"}}"#,
        server.endpoint
    );
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    drop(server);
}
