//! Property test: 3–5 replicas doing random puts, deletes and syncs in random orders, with wall
//! clocks skewed by up to ±1 day, converge to exactly the state of a reference LWW model.

use std::collections::BTreeMap;

use bucketsync::folder::FolderBucket;
use bucketsync::{DeviceId, Engine, Stamp, Timestamp, VaultKey};
use bucketsync_suite::folder_store;
use futures::executor::block_on;
use proptest::prelude::*;

const DAY_MS: i64 = 86_400_000;

#[derive(Clone, Debug)]
enum Op {
    Put { replica: usize, key: u8, value: u8 },
    Delete { replica: usize, key: u8 },
    Sync { replica: usize },
    Wait { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..5usize, 0..8u8, any::<u8>()).prop_map(|(replica, key, value)| Op::Put { replica, key, value }),
        2 => (0..5usize, 0..8u8).prop_map(|(replica, key)| Op::Delete { replica, key }),
        3 => (0..5usize).prop_map(|replica| Op::Sync { replica }),
        1 => (0..5_000u64).prop_map(|ms| Op::Wait { ms }),
    ]
}

struct Replica {
    engine: Engine,
    skew_ms: i64,
}

fn sync_at(replica: &mut Replica, now: Timestamp) {
    let report = block_on(bucketsync::driver::sync(
        &mut replica.engine,
        &FolderBucket,
        || now,
        4,
    ))
    .expect("sync through the local-folder bucket succeeds");
    assert!(report.errors.is_empty(), "{report}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_to_the_lww_model(
        skews in proptest::collection::vec(-DAY_MS..=DAY_MS, 3..=5),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let key = VaultKey::generate().unwrap();
        let mut replicas: Vec<Replica> = skews
            .iter()
            .enumerate()
            .map(|(i, &skew_ms)| Replica {
                engine: Engine::new(&key, folder_store(dir.path()), DeviceId([i as u8 + 1; 16]), bucketsync_suite::entropy()),
                skew_ms,
            })
            .collect();
        // The reference model: every write ever made, reduced by last-write-wins.
        let mut model: BTreeMap<Vec<u8>, (Stamp, Option<Vec<u8>>)> = BTreeMap::new();
        let mut global: i64 = 1_800_000_000_000;
        let now_of = |global: i64, r: &Replica| Timestamp((global + r.skew_ms) as u64);

        for op in ops {
            let (replica, key, value) = match op {
                Op::Wait { ms } => {
                    global += ms as i64;
                    continue;
                }
                Op::Sync { replica } => {
                    if let Some(r) = replicas.get_mut(replica) {
                        let now = now_of(global, r);
                        sync_at(r, now);
                    }
                    continue;
                }
                Op::Put { replica, key, value } => (replica, key, Some(vec![value])),
                Op::Delete { replica, key } => (replica, key, None),
            };
            let Some(r) = replicas.get_mut(replica) else { continue };
            let now = now_of(global, r);
            // Whatever this replica has seen, its new write must sort after it.
            let seen = (0..8u8).filter_map(|k| r.engine.record(&[k]).map(|rec| rec.stamp)).max();
            let stamp = match &value {
                Some(v) => r.engine.put(vec![key], v.clone(), now),
                None => r.engine.delete(vec![key], now),
            };
            if let Some(seen) = seen {
                prop_assert!(stamp > seen, "new write {stamp:?} does not sort after seen {seen:?}");
            }
            let entry = model.entry(vec![key]).or_insert((stamp, value.clone()));
            if stamp > entry.0 {
                *entry = (stamp, value);
            }
            global += 1;
        }
        // Quiesce: one round pushes everything, the next pulls everything.
        for _ in 0..2 {
            for r in replicas.iter_mut() {
                let now = now_of(global, r);
                sync_at(r, now);
            }
        }
        let live: Vec<Vec<u8>> = model.iter().filter(|(_, (_, v))| v.is_some()).map(|(k, _)| k.clone()).collect();
        for r in &replicas {
            prop_assert_eq!(&r.engine.keys(b""), &live);
            for (k, (stamp, value)) in &model {
                let record = r.engine.record(k).expect("every written key is known");
                prop_assert_eq!(&record.stamp, stamp);
                prop_assert_eq!(&record.value, value);
            }
            prop_assert_eq!(r.engine.unpushed(), 0);
        }
    }
}
