//! The S3 suite, run against real servers: SeaweedFS, then the stricter s3s-fs (which checks
//! signed payload hashes). Each test starts its own servers and stops them, also on failure.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bucketsync::driver::Transport;
use bucketsync::reqwest_transport::ReqwestTransport;
use bucketsync::sign::SigV4;
use bucketsync::{
    segment, Category, Credentials, DeviceId, Engine, Error, Method, Request, RequestId,
    RequestKind, Response, Result, RetryPolicy, Stamp, Store, Timestamp, VaultKey,
};
use bucketsync_suite::servers::{http, ServerKind, TestServer};
use bucketsync_suite::{sync, wall_clock};

fn device(key: &VaultKey, store: &Store, n: u8) -> Engine {
    let mut engine = Engine::new(
        key,
        store.clone(),
        DeviceId([n; 16]),
        bucketsync_suite::entropy(),
    );
    engine.set_credentials(TestServer::credentials());
    engine
}

#[tokio::test]
async fn two_and_five_devices_converge_and_a_new_device_catches_up() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("converge").await;
        for count in [2u8, 5] {
            let store = server.store("converge", &format!("fleet-{count}/"));
            let key = VaultKey::generate().unwrap();
            let transport = http();
            let mut devices: Vec<Engine> = (1..=count).map(|n| device(&key, &store, n)).collect();
            for (i, d) in devices.iter_mut().enumerate() {
                for j in 0..20 {
                    d.put(
                        format!("dev{i}/item{j}"),
                        format!("value {i}.{j}"),
                        wall_clock(),
                    );
                }
                d.put("shared/setting", format!("from device {i}"), wall_clock());
                d.delete(format!("dev{i}/item0"), wall_clock());
            }
            for _ in 0..2 {
                for d in devices.iter_mut() {
                    let report = sync(d, &transport).await.unwrap();
                    assert!(report.errors.is_empty(), "{kind:?}: {report}");
                }
            }
            let expected = devices[0].keys(b"");
            assert_eq!(expected.len(), count as usize * 19 + 1);
            for d in &devices {
                assert_eq!(d.keys(b""), expected, "{kind:?}");
                assert_eq!(d.get(b"shared/setting"), devices[0].get(b"shared/setting"));
            }
            let mut newcomer = device(&key, &store, 99);
            let report = sync(&mut newcomer, &transport).await.unwrap();
            assert_eq!(report.pulled, count as u64 * 21, "{kind:?}: {report}");
            assert_eq!(newcomer.keys(b""), expected);
            let noop = sync(&mut newcomer, &transport).await.unwrap();
            assert_eq!(noop.requests(), 1, "{kind:?}: {noop}");
        }
    }
}

#[tokio::test]
async fn auth_not_found_and_network_errors_have_their_category_and_lose_nothing() {
    for kind in ServerKind::ALL {
        let mut server = TestServer::start(kind).await;
        server.create_bucket("errors").await;
        let store = server.store("errors", "v/");
        let key = VaultKey::generate().unwrap();
        let transport = http();

        let mut wrong = Engine::new(
            &key,
            store.clone(),
            DeviceId([1; 16]),
            bucketsync_suite::entropy(),
        );
        let secret = "definitely-not-the-secret-42";
        wrong.set_credentials(
            Credentials::new(bucketsync_suite::servers::ACCESS_KEY, secret, None).unwrap(),
        );
        wrong.put("k", "v", wall_clock());
        let error = sync(&mut wrong, &transport).await.unwrap_err();
        assert_eq!(error.category(), Category::Auth, "{kind:?}: {error}");
        let text = error.to_string();
        assert!(
            text.contains(&store.display_name()),
            "names the store: {text}"
        );
        assert!(!text.contains(secret) && !format!("{error:?}").contains(secret));

        let missing = server.store("no-such-bucket-here", "");
        let mut lost = device(&key, &missing, 2);
        lost.put("k", "v", wall_clock());
        let error = sync(&mut lost, &transport).await.unwrap_err();
        assert_eq!(error.category(), Category::NotFound, "{kind:?}: {error}");

        let mut d = device(&key, &store, 3);
        d.put("before", "1", wall_clock());
        sync(&mut d, &transport).await.unwrap();
        d.put("after", "2", wall_clock());
        server.stop();
        d.set_retry_policy(RetryPolicy {
            max_attempts: 2,
            base_delay_ms: 10,
            max_delay_ms: 20,
        });
        let error = sync(&mut d, &transport).await.unwrap_err();
        assert_eq!(error.category(), Category::Network, "{kind:?}: {error}");
        assert_eq!(d.get(b"before"), Some(&b"1"[..]));
        assert_eq!(d.get(b"after"), Some(&b"2"[..]));
        assert_eq!(
            d.unpushed(),
            1,
            "the unpushed write waits for the next sync"
        );
    }
}

#[tokio::test]
async fn more_than_a_thousand_listed_objects_are_all_seen() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("pages").await;
        let store = server.store("pages", "");
        let key = VaultKey::generate().unwrap();
        let transport = http();
        let mut real = device(&key, &store, 1);
        real.put("real", "record", wall_clock());
        sync(&mut real, &transport).await.unwrap();
        // 1,050 more objects in the manifest folder, none of them a real manifest.
        let folder = format!("{}/m/", key.vault_id());
        let started = std::time::Instant::now();
        for chunk in (0..1050u32).collect::<Vec<_>>().chunks(64) {
            let uploads = chunk.iter().map(|i| {
                let url = store.object_url(&format!("{folder}{:032x}", i + 1_000_000));
                server.signed(Method::Put, url, b"junk".to_vec())
            });
            for r in futures::future::join_all(uploads).await {
                assert_eq!(r.unwrap().status, 200);
            }
        }
        eprintln!("{kind:?}: 1,050 uploads took {:?}", started.elapsed());
        let started = std::time::Instant::now();
        let mut reader = device(&key, &store, 2);
        let report = sync(&mut reader, &transport).await.unwrap();
        eprintln!(
            "{kind:?}: reading 1,051 manifests took {:?}",
            started.elapsed()
        );
        assert_eq!(
            report.requests_of(RequestKind::List),
            2,
            "{kind:?}: two pages: {report}"
        );
        assert_eq!(
            report.errors.len(),
            1050,
            "every listed object was looked at"
        );
        assert!(report
            .errors
            .iter()
            .all(|e| e.category() == Category::Corrupt));
        assert_eq!(reader.get(b"real"), Some(&b"record"[..]));
    }
}

/// Wraps the real transport and, while on, injects faults at random: 500s, 503 SlowDown,
/// timeouts before or after the store acted, truncated and corrupted bodies.
struct Faulty {
    inner: ReqwestTransport,
    on: AtomicBool,
    state: AtomicU64,
    injected: AtomicU64,
}

impl Faulty {
    fn roll(&self) -> u64 {
        // xorshift, seeded: the same run of faults every time.
        let mut s = self.state.load(Ordering::Relaxed);
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        self.state.store(s, Ordering::Relaxed);
        s % 100
    }
}

impl Transport for Faulty {
    async fn send(&self, request: Request) -> Result<Response> {
        if !self.on.load(Ordering::Relaxed) {
            return self.inner.send(request).await;
        }
        let roll = self.roll();
        let fault = |status: u16, code: &str| Response {
            status,
            headers: vec![],
            body: format!("<Error><Code>{code}</Code></Error>").into_bytes(),
        };
        let timeout = Error::Transport {
            category: Category::Timeout,
            message: "injected timeout".into(),
        };
        if roll < 35 {
            self.injected.fetch_add(1, Ordering::Relaxed);
        }
        match roll {
            0..=5 => Ok(fault(500, "InternalError")),
            6..=11 => Ok(fault(503, "SlowDown")),
            12..=17 => Err(timeout),
            18..=23 => {
                // The store acted, but the answer was lost.
                let _ = self.inner.send(request).await;
                Err(timeout)
            }
            24..=29 => self.inner.send(request).await.map(|mut r| {
                r.body.truncate(r.body.len() / 2);
                r
            }),
            30..=34 => self.inner.send(request).await.map(|mut r| {
                let middle = r.body.len() / 2;
                if let Some(b) = r.body.get_mut(middle) {
                    *b ^= 0x20;
                }
                r
            }),
            _ => self.inner.send(request).await,
        }
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[tokio::test]
async fn after_injected_faults_stop_every_device_converges_with_nothing_lost_or_duplicated() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("faults").await;
        let store = server.store("faults", "chaos/");
        let key = VaultKey::generate().unwrap();
        let faulty = Faulty {
            inner: http(),
            on: AtomicBool::new(true),
            state: AtomicU64::new(0x9E37_79B9_7F4A_7C15),
            injected: AtomicU64::new(0),
        };
        let mut devices: Vec<Engine> = (1..=3).map(|n| device(&key, &store, n)).collect();
        for d in devices.iter_mut() {
            d.set_retry_policy(RetryPolicy {
                max_attempts: 3,
                base_delay_ms: 5,
                max_delay_ms: 40,
            });
        }
        let mut model: std::collections::BTreeMap<Vec<u8>, (Stamp, Option<Vec<u8>>)> =
            Default::default();
        let mut record = |k: Vec<u8>, stamp: Stamp, v: Option<Vec<u8>>| {
            let e = model.entry(k).or_insert((stamp, v.clone()));
            if stamp > e.0 {
                *e = (stamp, v);
            }
        };
        for round in 0..12u32 {
            for (i, d) in devices.iter_mut().enumerate() {
                for j in 0..3 {
                    let k = format!("k{}", (round * 7 + i as u32 * 3 + j) % 20).into_bytes();
                    let v = format!("r{round} d{i} j{j}").into_bytes();
                    if (round + j) % 5 == 4 {
                        let stamp = d.delete(k.clone(), wall_clock());
                        record(k, stamp, None);
                    } else {
                        let stamp = d.put(k.clone(), v.clone(), wall_clock());
                        record(k, stamp, Some(v));
                    }
                }
                // Errors are expected while faults are on; nothing may be lost.
                let _ = sync(d, &faulty).await;
            }
        }
        assert!(
            faulty.injected.load(Ordering::Relaxed) > 20,
            "faults were injected"
        );
        faulty.on.store(false, Ordering::Relaxed);
        for _ in 0..2 {
            for d in devices.iter_mut() {
                sync(d, &faulty).await.unwrap();
            }
        }
        let live: Vec<Vec<u8>> = model
            .iter()
            .filter(|(_, (_, v))| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        for d in &devices {
            assert_eq!(d.keys(b""), live, "{kind:?}");
            for (k, (stamp, value)) in &model {
                let r = d.record(k).unwrap();
                assert_eq!(
                    (&r.stamp, &r.value),
                    (stamp, value),
                    "{kind:?}: no write lost"
                );
            }
            assert_eq!(d.unpushed(), 0);
        }
        // No write is stored twice: read every segment back and count (key, stamp) pairs.
        let mut seen = std::collections::HashSet::new();
        let prefix = format!("chaos/{}/s/", key.vault_id());
        let keys = server.list_all(&store, &prefix).await;
        assert!(!keys.is_empty());
        for object in keys {
            let mut parts = object.rsplit('/');
            let seq = u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
            let device = DeviceId::parse(parts.next().unwrap()).unwrap();
            let body = server
                .signed(Method::Get, store.object_url(&object), Vec::new())
                .await
                .unwrap()
                .body;
            for change in segment::open(&key, device, seq, body).unwrap().changes {
                assert!(
                    seen.insert((change.key.clone(), change.hlc, device)),
                    "{kind:?}: duplicated in {object}"
                );
            }
        }
    }
}

#[tokio::test]
async fn presigned_urls_work_with_a_plain_client_and_tampered_or_expired_ones_are_refused() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("presign").await;
        let store = server.store("presign", "");
        let signer = SigV4::new(TestServer::credentials(), "us-east-1");
        let url = store.object_url("shared/photo.jpg");
        let plain = |method: Method, url: String, body: &[u8]| Request {
            id: RequestId(0),
            kind: RequestKind::GetSegment,
            method,
            url,
            headers: vec![],
            body: body.to_vec().into(),
        };
        let transport = http();
        let put = signer
            .presign(Method::Put, &url, Duration::from_secs(300), wall_clock())
            .unwrap();
        let r = transport
            .send(plain(Method::Put, put, b"jpeg bytes"))
            .await
            .unwrap();
        assert_eq!(
            r.status,
            200,
            "{kind:?}: {}",
            String::from_utf8_lossy(&r.body)
        );
        let get = signer
            .presign(Method::Get, &url, Duration::from_secs(300), wall_clock())
            .unwrap();
        let r = transport
            .send(plain(Method::Get, get.clone(), b""))
            .await
            .unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"jpeg bytes"[..]),
            "{kind:?}"
        );

        let mut tampered = get.clone().into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
        let r = transport
            .send(plain(
                Method::Get,
                String::from_utf8(tampered).unwrap(),
                b"",
            ))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{kind:?}: tampered signature");
        let other_key = get.replace("shared/photo.jpg", "shared/other.jpg");
        let r = transport
            .send(plain(Method::Get, other_key, b""))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{kind:?}: signature for another object");

        let two_hours_ago = Timestamp(wall_clock().0 - 2 * 3600 * 1000);
        let expired = signer
            .presign(Method::Get, &url, Duration::from_secs(60), two_hours_ago)
            .unwrap();
        let r = transport
            .send(plain(Method::Get, expired, b""))
            .await
            .unwrap();
        assert_eq!(r.status, 403, "{kind:?}: expired");
    }
}

#[tokio::test]
async fn the_quickstart_runs_against_s3() {
    let server = TestServer::start(ServerKind::SeaweedFs).await;
    server.create_bucket("quickstart").await;
    let work = tempfile::tempdir().unwrap();
    let url = server.store_url("quickstart", "demo/");
    let mut out = Vec::new();
    bucketsync_suite::quickstart::run(&url, Some(TestServer::credentials()), work.path(), &mut out)
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("notes/groceries") && text.contains("eggs, milk, bread"),
        "{text}"
    );
    assert!(text.contains("s3://quickstart/demo/"), "{text}");
}

#[tokio::test]
async fn a_device_clock_an_hour_off_is_corrected_from_the_stores_date() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("skew").await;
        let store = server.store("skew", "");
        let key = VaultKey::generate().unwrap();
        let mut d = device(&key, &store, 1);
        d.put("k", "v", wall_clock());
        let an_hour_behind = || Timestamp(wall_clock().0 - 3_600_000);
        let report = bucketsync::driver::sync(&mut d, &http(), an_hour_behind, 4)
            .await
            .unwrap();
        assert_eq!(
            report.retries, 1,
            "{kind:?}: the store refused the skewed signature once, then never again: {report}"
        );
        let offset = d.clock_offset_ms();
        assert!(
            (3_500_000..3_700_000).contains(&offset),
            "{kind:?}: offset {offset}"
        );
        // From then on, requests are signed with the corrected time at once.
        d.put("k2", "v", wall_clock());
        let report = bucketsync::driver::sync(&mut d, &http(), an_hour_behind, 4)
            .await
            .unwrap();
        assert_eq!(report.retries, 0, "{kind:?}: {report}");
    }
}

/// The objects under `folder` of the vault (one page: tests keep below 1,000).
async fn list(
    store: &Store,
    key: &VaultKey,
    folder: &str,
    transport: &impl Transport,
) -> Vec<(String, String)> {
    let mut listing = Request {
        id: RequestId(1),
        kind: RequestKind::List,
        method: Method::Get,
        url: store.list_url(
            &format!("{}{}/{folder}", store.prefix(), key.vault_id()),
            None,
        ),
        headers: Vec::new(),
        body: Default::default(),
    };
    bucketsync::sign::Signer::sign(
        &SigV4::new(TestServer::credentials(), "us-east-1"),
        &mut listing,
        wall_clock(),
    )
    .unwrap();
    bucketsync::s3::parse_list(&transport.send(listing).await.unwrap().body)
        .unwrap()
        .objects
}

#[tokio::test]
async fn covered_segments_are_deleted_and_a_new_device_starts_from_the_checkpoint() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("pruning").await;
        let store = server.store("pruning", "");
        let key = VaultKey::generate().unwrap();
        let transport = http();
        let mut writer = device(&key, &store, 1);
        // A short grace period, so that segments go a heartbeat (grace / 8) after the
        // manifest says they may.
        writer.set_compaction(bucketsync::CompactionPolicy {
            min_tail_segments: 3,
            max_tail_segments: 3,
            bytes_ratio: 1,
            segment_overhead_bytes: 0,
            grace_ms: 4_000,
            max_clock_skew_ms: 100,
            ..bucketsync::CompactionPolicy::default()
        });
        // The writer's clock moves only when the test says: a loaded machine whose syncs take
        // longer than a heartbeat must not see segments go before the test means them to.
        let now = AtomicU64::new(wall_clock().0);
        let clock = || Timestamp(now.load(Ordering::SeqCst));
        for i in 0..9 {
            writer.put(format!("k{i}"), format!("v{i}"), clock());
            let report = bucketsync::driver::sync(
                &mut writer,
                &transport,
                clock,
                bucketsync::driver::DEFAULT_CONCURRENCY,
            )
            .await
            .unwrap();
            assert!(report.errors.is_empty(), "{kind:?}: {report}");
        }
        assert_eq!(list(&store, &key, "s/", &transport).await.len(), 9);
        now.fetch_add(600, Ordering::SeqCst);
        writer.put("k9", "v9", clock());
        let report = bucketsync::driver::sync(
            &mut writer,
            &transport,
            clock,
            bucketsync::driver::DEFAULT_CONCURRENCY,
        )
        .await
        .unwrap();
        assert!(report.errors.is_empty(), "{kind:?}: {report}");
        assert!(report.segments_deleted >= 6, "{kind:?}: {report}");
        let left = list(&store, &key, "s/", &transport).await;
        assert_eq!(
            left.len() as u64,
            10 - report.segments_deleted,
            "{kind:?}: {left:?}"
        );

        let mut new = device(&key, &store, 2);
        let report = sync(&mut new, &transport).await.unwrap();
        assert!(report.errors.is_empty(), "{kind:?}: {report}");
        assert_eq!(
            report.requests_of(RequestKind::GetCheckpoint),
            1,
            "{kind:?}: {report}"
        );
        assert_eq!(new.keys(b"").len(), 10, "{kind:?}");
    }
}

#[tokio::test]
async fn checkpoints_are_written_adopted_and_swept_and_join_and_create_are_checked() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("lifecycle").await;
        let store = server.store("lifecycle", "vaults/");
        let key = VaultKey::generate().unwrap();
        let transport = http();

        // A join where no vault exists: not found, with the other vaults under the prefix
        // counted by a delimiter listing.
        let other = VaultKey::generate().unwrap();
        let mut elsewhere = device(&other, &store, 9);
        elsewhere.set_open_mode(bucketsync::OpenMode::Create);
        sync(&mut elsewhere, &transport).await.unwrap();
        let mut lost = device(&key, &store, 8);
        lost.set_open_mode(bucketsync::OpenMode::Join);
        let err = sync(&mut lost, &transport).await.unwrap_err();
        assert!(
            matches!(err, Error::NoVault { others: 1, .. }),
            "{kind:?}: {err}"
        );

        let mut writer = device(&key, &store, 1);
        writer.set_open_mode(bucketsync::OpenMode::Create);
        writer.set_compaction(bucketsync::CompactionPolicy {
            min_tail_segments: 3,
            max_tail_segments: 3,
            bytes_ratio: 1,
            segment_overhead_bytes: 0,
            ..bucketsync::CompactionPolicy::default()
        });
        let mut compactions = 0;
        for i in 0..20 {
            writer.put(format!("k{i}"), format!("v{i}"), wall_clock());
            let report = sync(&mut writer, &transport).await.unwrap();
            assert!(report.errors.is_empty(), "{kind:?}: {report}");
            compactions += u32::from(report.compacted);
        }
        assert!(compactions >= 5, "{kind:?}: {compactions}");
        // Swept: two checkpoints of the writer are left in the bucket.
        let checkpoints = list(&store, &key, "c/", &transport).await;
        assert_eq!(checkpoints.len(), 2, "{kind:?}: {checkpoints:?}");

        // A new device starts from the checkpoint; the join succeeds now.
        let report = sync(&mut lost, &transport).await.unwrap();
        assert_eq!(
            report.requests_of(RequestKind::GetCheckpoint),
            1,
            "{kind:?}: {report}"
        );
        assert_eq!(lost.keys(b"").len(), 20);
        assert!(report.errors.is_empty(), "{kind:?}: {report}");
    }
}

/// One signed request for the vault's object `name` (`m/<device>`), as someone holding the
/// bucket's credentials but not the vault key could send it.
async fn raw(
    store: &Store,
    key: &VaultKey,
    method: Method,
    name: &str,
    body: Vec<u8>,
    transport: &impl Transport,
) -> Response {
    let mut request = Request {
        id: RequestId(1),
        kind: RequestKind::GetManifest,
        method,
        url: store.object_url(&format!("{}{}/{name}", store.prefix(), key.vault_id())),
        headers: Vec::new(),
        body: body.into(),
    };
    bucketsync::sign::Signer::sign(
        &SigV4::new(TestServer::credentials(), "us-east-1"),
        &mut request,
        wall_clock(),
    )
    .unwrap();
    let response = transport.send(request).await.unwrap();
    assert!(
        (200..300).contains(&response.status),
        "{method:?} {name}: {}",
        response.status
    );
    response
}

/// The rollback errors of a report, as the names of the manifests they are about.
fn rollbacks(report: &bucketsync::SyncReport) -> Vec<String> {
    report
        .errors
        .iter()
        .filter(|e| e.category() == Category::Rollback)
        .map(|e| match e {
            Error::Rollback { object, .. } | Error::Frozen { object, .. } => object.clone(),
            other => panic!("a rollback that names no manifest: {other}"),
        })
        .collect()
}

#[tokio::test]
async fn a_frozen_or_deleted_manifest_is_a_rollback_even_for_a_new_device() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("freeze").await;
        let store = server.store("freeze", "");
        let key = VaultKey::generate().unwrap();
        let transport = http();
        let mut a = device(&key, &store, 1);
        let mut b = device(&key, &store, 2);
        let a_manifest = format!("m/{}", a.device());

        a.put("a1", "first", wall_clock());
        sync(&mut a, &transport).await.unwrap();
        let old = raw(
            &store,
            &key,
            Method::Get,
            &a_manifest,
            Vec::new(),
            &transport,
        )
        .await
        .body;
        a.put("a2", "second", wall_clock());
        sync(&mut a, &transport).await.unwrap();
        // B merges both of A's segments and says so in its manifest.
        b.put("b1", "from b", wall_clock());
        let report = sync(&mut b, &transport).await.unwrap();
        assert!(report.errors.is_empty(), "{kind:?}: {report}");
        assert_eq!(b.get(b"a2"), Some(&b"second"[..]));

        // Someone with the bucket's credentials puts A's older manifest back. B trusted the
        // newer one; a new device C never saw it, but B's manifest says what B merged.
        raw(&store, &key, Method::Put, &a_manifest, old, &transport).await;
        let report = sync(&mut b, &transport).await.unwrap();
        assert_eq!(
            rollbacks(&report),
            [a_manifest.as_str()],
            "{kind:?}: {report}"
        );
        let mut c = device(&key, &store, 3);
        let report = sync(&mut c, &transport).await.unwrap();
        assert_eq!(
            rollbacks(&report),
            [a_manifest.as_str()],
            "{kind:?}: {report}"
        );
        assert_eq!(c.get(b"b1"), Some(&b"from b"[..]), "the rest imports");

        // Deleted: C trusted the old one, a new device D trusted none.
        raw(
            &store,
            &key,
            Method::Delete,
            &a_manifest,
            Vec::new(),
            &transport,
        )
        .await;
        let report = sync(&mut c, &transport).await.unwrap();
        assert_eq!(
            rollbacks(&report),
            [a_manifest.as_str()],
            "{kind:?}: {report}"
        );
        let mut d = device(&key, &store, 4);
        let report = sync(&mut d, &transport).await.unwrap();
        assert_eq!(
            rollbacks(&report),
            [a_manifest.as_str()],
            "{kind:?}: {report}"
        );

        // A writes again: its manifest is back, newer than any, and the reports are clean.
        a.put("a3", "third", wall_clock());
        sync(&mut a, &transport).await.unwrap();
        for replica in [&mut b, &mut c, &mut d] {
            let report = sync(replica, &transport).await.unwrap();
            assert!(report.errors.is_empty(), "{kind:?}: {report}");
            assert_eq!(replica.get(b"a3"), Some(&b"third"[..]));
        }
    }
}

/// A proxy in front of the store that answers 501 NotImplemented to any request carrying
/// `If-None-Match` while `refuse` is set, and counts the conditional requests that reach the
/// store.
struct ConditionalRefuser {
    inner: ReqwestTransport,
    refuse: AtomicBool,
    conditional_sent: AtomicU64,
}

impl Transport for ConditionalRefuser {
    async fn send(&self, request: Request) -> Result<Response> {
        let conditional = request
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("if-none-match"));
        if conditional && self.refuse.load(Ordering::Relaxed) {
            return Ok(Response {
                status: 501,
                headers: vec![],
                body: b"<Error><Code>NotImplemented</Code></Error>".to_vec(),
            });
        }
        if conditional {
            self.conditional_sent.fetch_add(1, Ordering::Relaxed);
        }
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[tokio::test]
async fn one_501_to_a_conditional_create_does_not_disable_it_for_later_syncs() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("conditional").await;
        let store = server.store("conditional", "");
        let key = VaultKey::generate().unwrap();
        let proxy = ConditionalRefuser {
            inner: http(),
            refuse: AtomicBool::new(true),
            conditional_sent: AtomicU64::new(0),
        };
        let mut a = device(&key, &store, 1);
        a.put("k1", "v1", wall_clock());
        let report = sync(&mut a, &proxy).await.unwrap();
        assert_eq!(report.pushed, 1, "{kind:?}: pushed without the header");
        // The proxy is fixed: the next sync asks for conditional create again.
        proxy.refuse.store(false, Ordering::Relaxed);
        a.put("k2", "v2", wall_clock());
        let report = sync(&mut a, &proxy).await.unwrap();
        assert_eq!(report.pushed, 1, "{kind:?}: {report}");
        assert!(
            proxy.conditional_sent.load(Ordering::Relaxed) >= 1,
            "{kind:?}: the segment PUT carried If-None-Match again"
        );
    }
}

/// A store that ignores `If-None-Match`: a proxy in front of the real store drops the header
/// (and signs the request again without it), so a create of an existing object answers 200.
struct ConditionIgnorer {
    inner: ReqwestTransport,
}

impl Transport for ConditionIgnorer {
    async fn send(&self, request: Request) -> Result<Response> {
        let resigned = [
            "authorization",
            "x-amz-date",
            "x-amz-content-sha256",
            "if-none-match",
        ];
        let mut request = Request {
            headers: request
                .headers
                .into_iter()
                .filter(|(name, _)| !resigned.iter().any(|r| name.eq_ignore_ascii_case(r)))
                .collect(),
            ..request
        };
        bucketsync::sign::Signer::sign(
            &SigV4::new(TestServer::credentials(), "us-east-1"),
            &mut request,
            wall_clock(),
        )?;
        self.inner.send(request).await
    }

    async fn sleep(&self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
}

#[tokio::test]
async fn a_store_that_ignores_if_none_match_is_named_in_the_report() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("exclusive").await;
        let store = server.store("exclusive", "");
        let key = VaultKey::generate().unwrap();
        let transport = http();

        // The real store refuses a second create: checked once, with the first small push.
        let mut a = device(&key, &store, 1);
        a.put("a1", "first", wall_clock());
        let report = sync(&mut a, &transport).await.unwrap();
        assert_eq!(
            report.requests_of(RequestKind::CheckCreate),
            1,
            "{kind:?}: {report}"
        );
        assert!(report.errors.is_empty(), "{kind:?}: {report}");
        a.put("a2", "second", wall_clock());
        let report = sync(&mut a, &transport).await.unwrap();
        assert_eq!(
            report.requests_of(RequestKind::CheckCreate),
            0,
            "{kind:?}: {report}"
        );
        assert_eq!(
            report.requests_of(RequestKind::PutSegment),
            1,
            "{kind:?}: {report}"
        );

        // Behind the proxy, the second create answers 200: the report says so, and nothing
        // is lost (the check sends the very bytes just stored).
        let ignorer = ConditionIgnorer { inner: http() };
        let mut b = device(&key, &store, 2);
        b.put("b1", "behind the proxy", wall_clock());
        let report = sync(&mut b, &ignorer).await.unwrap_err();
        assert_eq!(report.category(), Category::Config, "{kind:?}: {report}");
        assert!(
            report.to_string().contains("If-None-Match"),
            "{kind:?}: {report}"
        );
        let report = b.last_report().unwrap();
        assert_eq!(report.pushed, 1, "{kind:?}: {report}");
        assert_eq!(
            report.requests_of(RequestKind::CheckCreate),
            1,
            "{kind:?}: {report}"
        );

        let mut c = device(&key, &store, 3);
        sync(&mut c, &transport).await.unwrap();
        for (k, v) in [
            ("a1", "first"),
            ("a2", "second"),
            ("b1", "behind the proxy"),
        ] {
            assert_eq!(c.get(k.as_bytes()), Some(v.as_bytes()), "{kind:?}: {k}");
        }
    }
}

async fn poll(engine: &mut Engine, transport: &ReqwestTransport) -> bucketsync::SyncReport {
    bucketsync::driver::poll(engine, transport, wall_clock, false)
        .await
        .unwrap()
}

/// The change hint on real stores: a publish writes it, a quiet poll is one conditional GET
/// (SeaweedFS answers 304; s3s-fs ignores `If-None-Match` on GET and answers 200 with the
/// same ETag, which counts as unmoved: the test failed there before that rule), a publish
/// moves it.
#[tokio::test]
async fn a_quiet_poll_is_one_conditional_get_and_a_publish_moves_the_hint() {
    for kind in ServerKind::ALL {
        let server = TestServer::start(kind).await;
        server.create_bucket("hint").await;
        let store = server.store("hint", "v/");
        let key = VaultKey::generate().unwrap();
        let transport = http();
        let mut a = device(&key, &store, 1);
        let mut b = device(&key, &store, 2);
        a.put("k", "1", wall_clock());
        let pushed = sync(&mut a, &transport).await.unwrap();
        assert_eq!(
            pushed.requests_of(RequestKind::PutHint),
            1,
            "{kind:?}: {pushed}"
        );
        let first = poll(&mut b, &transport).await;
        assert!(!first.hint_unchanged && first.changed == vec![b"k".to_vec()]);
        let quiet = poll(&mut b, &transport).await;
        assert!(quiet.hint_unchanged, "{kind:?}: {quiet}");
        assert_eq!(quiet.requests(), 1, "{kind:?}: {quiet}");
        a.put("k", "2", wall_clock());
        sync(&mut a, &transport).await.unwrap();
        let moved = poll(&mut b, &transport).await;
        assert!(!moved.hint_unchanged, "{kind:?}: {moved}");
        assert_eq!(b.get(b"k"), Some(&b"2"[..]), "{kind:?}");
    }
}
