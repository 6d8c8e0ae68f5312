//! Records and their last-write-wins merge.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::clock::Stamp;

/// The current version of one key: its value (`None` for a tombstone) and the stamp of the
/// write that produced it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The value, or `None` when the key was deleted (a tombstone, kept forever).
    #[serde(with = "serde_bytes")]
    pub value: Option<Vec<u8>>,
    /// Which write this is.
    pub stamp: Stamp,
}

impl Record {
    /// Whether `self` wins over `other` under last-write-wins: the greater stamp wins; equal
    /// stamps (the same write seen twice) fall back to comparing values so the result never
    /// depends on the order of arrival.
    pub fn wins_over(&self, other: &Record) -> bool {
        (self.stamp, &self.value) > (other.stamp, &other.value)
    }
}

/// The merged key → record map of a replica.
///
/// [`Records::merge`] is commutative, associative and idempotent: any set of writes applied in
/// any order, any number of times, gives the same map.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Records {
    map: HashMap<Vec<u8>, Record>,
}

impl Records {
    /// Merges one write; returns `true` when it became the key's current version.
    pub fn merge(&mut self, key: Vec<u8>, record: Record) -> bool {
        match self.map.get_mut(&key) {
            Some(current) => {
                if record.wins_over(current) {
                    *current = record;
                    true
                } else {
                    false
                }
            }
            None => {
                self.map.insert(key, record);
                true
            }
        }
    }

    /// Sets `key`'s record as it is, without comparing (replaying a journal of final values).
    pub(crate) fn replace(&mut self, key: Vec<u8>, record: Record) {
        self.map.insert(key, record);
    }

    /// Forgets `key` altogether (a collected tombstone, or what it deleted).
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Record> {
        self.map.remove(key)
    }

    /// The current record of `key`, tombstones included.
    pub fn get(&self, key: &[u8]) -> Option<&Record> {
        self.map.get(key)
    }

    /// Live (not deleted) keys starting with `prefix`, sorted.
    pub fn live_keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        let mut keys: Vec<Vec<u8>> = self
            .map
            .iter()
            .filter(|(k, r)| r.value.is_some() && k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort_unstable();
        keys
    }

    /// Number of live (not deleted) keys.
    pub fn live_count(&self) -> usize {
        self.map.values().filter(|r| r.value.is_some()).count()
    }

    /// Number of keys, tombstones included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map has no keys at all.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// All entries in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Record)> {
        self.map.iter()
    }

    /// Reserves room for `additional` more keys.
    pub fn reserve(&mut self, additional: usize) {
        self.map.reserve(additional);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Hlc;
    use crate::ids::DeviceId;
    use proptest::prelude::*;

    fn write() -> impl Strategy<Value = (Vec<u8>, Record)> {
        (
            0u8..4,
            0u64..5,
            0u32..3,
            0u8..3,
            proptest::option::of(0u8..3),
        )
            .prop_map(|(k, wall, counter, dev, v)| {
                (
                    vec![k],
                    Record {
                        value: v.map(|v| vec![v]),
                        stamp: Stamp {
                            hlc: Hlc {
                                wall_ms: wall,
                                counter,
                            },
                            device: DeviceId([dev; 16]),
                        },
                    },
                )
            })
    }

    fn merged(writes: &[(Vec<u8>, Record)]) -> Records {
        let mut r = Records::default();
        for (k, rec) in writes {
            r.merge(k.clone(), rec.clone());
        }
        r
    }

    proptest! {
        #[test]
        fn merge_is_order_independent_and_idempotent(
            writes in proptest::collection::vec(write(), 0..40),
            seed in any::<u64>(),
        ) {
            let forward = merged(&writes);
            // A permutation, with every write applied twice.
            let mut shuffled: Vec<_> = writes.iter().chain(writes.iter()).cloned().collect();
            let mut s = seed | 1;
            for i in (1..shuffled.len()).rev() {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                shuffled.swap(i, (s % (i as u64 + 1)) as usize);
            }
            prop_assert_eq!(&forward, &merged(&shuffled));
        }

        #[test]
        fn merge_is_associative(
            a in proptest::collection::vec(write(), 0..15),
            b in proptest::collection::vec(write(), 0..15),
            c in proptest::collection::vec(write(), 0..15),
        ) {
            // (a ∪ b) ∪ c == a ∪ (b ∪ c), merging whole replicas into each other.
            let join = |x: &Records, y: &Records| {
                let mut out = x.clone();
                for (k, r) in y.iter() { out.merge(k.clone(), r.clone()); }
                out
            };
            let (ra, rb, rc) = (merged(&a), merged(&b), merged(&c));
            prop_assert_eq!(join(&join(&ra, &rb), &rc), join(&ra, &join(&rb, &rc)));
        }
    }
}
