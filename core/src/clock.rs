//! The hybrid logical clock that orders every write.

use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, Timestamp};

/// A hybrid logical clock reading: wall-clock milliseconds plus a counter.
///
/// Ordered by `(wall_ms, counter)`. A device's clock never goes backwards, and it moves past
/// every reading it observes, so a write made after seeing another write always sorts after it,
/// however wrong the device's own wall clock is.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the greatest wall time seen).
    pub wall_ms: u64,
    /// Orders readings that share `wall_ms`.
    pub counter: u32,
}

impl Hlc {
    /// The reading at wall time `now`, counter 0.
    pub fn at(now: Timestamp) -> Hlc {
        Hlc {
            wall_ms: now.0,
            counter: 0,
        }
    }

    /// Advances the clock for a local event at wall time `now` and returns the new reading,
    /// which is greater than every reading this clock returned or observed before.
    pub fn tick(&mut self, now: Timestamp) -> Hlc {
        if now.0 > self.wall_ms {
            *self = Hlc {
                wall_ms: now.0,
                counter: 0,
            };
        } else if self.counter == u32::MAX {
            // At the very end of time (a hostile reading), stay put rather than wrap.
            if self.wall_ms < u64::MAX {
                *self = Hlc {
                    wall_ms: self.wall_ms + 1,
                    counter: 0,
                };
            }
        } else {
            self.counter += 1;
        }
        *self
    }

    /// Moves the clock past a reading received from another device.
    pub fn observe(&mut self, seen: Hlc) {
        if seen > *self {
            *self = seen;
        }
    }
}

/// The version stamp of one write: the clock reading, then the writer's device id as the
/// tiebreak. The greatest stamp wins.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Stamp {
    /// When, in hybrid logical time.
    pub hlc: Hlc,
    /// Who.
    pub device: DeviceId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_is_monotonic_when_wall_clock_goes_back() {
        let mut clock = Hlc::default();
        let a = clock.tick(Timestamp(1000));
        let b = clock.tick(Timestamp(500));
        let c = clock.tick(Timestamp(1000));
        assert!(a < b && b < c);
        assert_eq!(b.wall_ms, 1000);
    }

    #[test]
    fn observe_orders_later_local_writes_after_remote_ones() {
        let mut slow = Hlc::default();
        slow.tick(Timestamp(1_000));
        let remote = Hlc {
            wall_ms: 86_400_000 + 1_000,
            counter: 7,
        };
        slow.observe(remote);
        assert!(slow.tick(Timestamp(1_001)) > remote);
    }

    #[test]
    fn counter_overflow_moves_wall_forward() {
        let mut clock = Hlc {
            wall_ms: 5,
            counter: u32::MAX,
        };
        let next = clock.tick(Timestamp(0));
        assert_eq!(
            next,
            Hlc {
                wall_ms: 6,
                counter: 0
            }
        );
    }
}
