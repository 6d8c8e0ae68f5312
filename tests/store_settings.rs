//! What a store URL asks of every write, as moto's server reports it on a HEAD of each object:
//! a vault whose store URL asks for SSE-S3 or SSE-KMS has every object it writes (manifests,
//! segments, checkpoints, the change hint, packs, and a pack sent as a multipart upload)
//! encrypted so; packs and checkpoints are in the storage classes it names, the rest in the
//! default class; and another device reads it all back.

use std::sync::Arc;

use bucketsync::driver::DEFAULT_CONCURRENCY;
use bucketsync::session::{Session, SessionOptions, StateLocation};
use bucketsync::{CompactionPolicy, Method, OpenMode, VaultKey};
use bucketsync_suite::generated::{Compare, Generated};
use bucketsync_suite::servers::{http, ServerKind, TestServer};

const MIB: u64 = 1 << 20;
const KMS_KEY: &str = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn open(store: &str, key: &VaultKey, device: &str) -> Session {
    Session::open(SessionOptions {
        device: Some(device),
        mode: OpenMode::JoinOrCreate,
        // A checkpoint at every sync with a new segment: one is written here.
        compaction: CompactionPolicy {
            min_tail_segments: 1,
            max_tail_segments: 1,
            ..CompactionPolicy::default()
        },
        credentials: Some(TestServer::credentials()),
        clock: Arc::new(bucketsync_suite::wall_clock),
        ..SessionOptions::new(store, key, StateLocation::Memory)
    })
    .unwrap()
}

#[tokio::test]
async fn every_object_is_written_as_the_store_url_asks() {
    let server = TestServer::start(ServerKind::Moto).await;
    server.create_bucket("sse").await;
    let t = http();
    let cases = [
        ("s3", "sse=AES256", "AES256", None),
        (
            "kms",
            &*format!(
                "sse=aws:kms&sse_kms_key_id={KMS_KEY}&sse_bucket_key=true\
                 &pack_class=STANDARD_IA&checkpoint_class=GLACIER_IR"
            ),
            "aws:kms",
            Some(KMS_KEY),
        ),
    ];
    for (prefix, sse, algorithm, key_id) in cases {
        let classed = key_id.is_some();
        let store = format!("{}&{sse}", server.store_url("sse", prefix));
        let key = VaultKey::generate().unwrap();
        let a = open(&store, &key, "a");
        for i in 0..20 {
            a.put(format!("note/{i}"), format!("text {i}")).unwrap();
        }
        a.sync(&t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
        // In packs big enough to go up as multipart uploads.
        let len = 24 * MIB + 3;
        a.put_file(
            "big",
            &mut Generated::new(7, len),
            &t,
            Some(32 << 20),
            DEFAULT_CONCURRENCY,
            |_| {},
        )
        .await
        .unwrap();
        a.put("note/last", "after the file").unwrap();
        let report = a.sync(&t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
        assert!(report.errors.is_empty(), "{report}: {:?}", report.errors);

        let listed = server
            .list_all(&server.store("sse", ""), &format!("{prefix}/"))
            .await;
        let kinds = |part: &str| listed.iter().filter(|k| k.contains(part)).count();
        for part in ["/m/", "/s/", "/c/", "/p/"] {
            assert!(kinds(part) > 0, "no {part} object among {listed:?}");
        }
        for object in &listed {
            let head = server
                .signed(
                    Method::Head,
                    format!("{}/sse/{object}", server.endpoint),
                    Vec::new(),
                )
                .await
                .unwrap();
            assert_eq!(head.status, 200, "{object}");
            assert_eq!(
                head.header("x-amz-server-side-encryption"),
                Some(algorithm),
                "{object}: {:?}",
                head.headers
            );
            if let Some(key_id) = key_id {
                assert_eq!(
                    head.header("x-amz-server-side-encryption-aws-kms-key-id"),
                    Some(key_id),
                    "{object}"
                );
            }
            // The default class is not named in a HEAD.
            let class = match (classed, object) {
                (true, o) if o.contains("/p/") => Some("STANDARD_IA"),
                (true, o) if o.contains("/c/") => Some("GLACIER_IR"),
                _ => None,
            };
            assert_eq!(head.header("x-amz-storage-class"), class, "{object}");
        }

        // Another device reads it all back.
        let b = open(&store, &key, "b");
        b.sync(&t, DEFAULT_CONCURRENCY, |_| {}).await.unwrap();
        assert_eq!(
            b.get(b"note/last").unwrap().as_deref(),
            Some(&b"after the file"[..])
        );
        let mut sink = Compare::new(Generated::new(7, len));
        let found = b
            .get_file(b"big", &mut sink, &t, DEFAULT_CONCURRENCY, |_| {})
            .await
            .unwrap();
        assert!(found);
        sink.assert_whole(len);
    }
}
