//! The retry policy every platform shares: exponential backoff with jitter, capped, for
//! idempotent requests that failed in a way that may pass.

use crate::error::Category;

/// How failed requests are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included (1 = never retry).
    pub max_attempts: u32,
    /// The delay before the first retry, in milliseconds (before jitter).
    pub base_delay_ms: u64,
    /// No delay grows past this, in milliseconds.
    pub max_delay_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay_ms: 200,
            max_delay_ms: 10_000,
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1 for the first), between half and all of
    /// `base · 2^(retry-1)` capped at the maximum. `seed` picks the point in that range, so two
    /// clients that failed together do not retry together.
    pub fn delay_ms(&self, retry: u32, seed: u64) -> u64 {
        let exp = self
            .base_delay_ms
            .saturating_mul(1u64 << retry.saturating_sub(1).min(32))
            .min(self.max_delay_ms);
        let half = exp / 2;
        let hash = blake3::hash(&[seed.to_le_bytes(), u64::from(retry).to_le_bytes()].concat());
        let r = u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"));
        half + if half == 0 { 0 } else { r % (exp - half + 1) }
    }

    /// Whether a failure of this category may pass on another try.
    pub fn retries(category: Category) -> bool {
        matches!(
            category,
            Category::Throttled | Category::Timeout | Category::Network | Category::Server
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_and_capped() {
        let policy = RetryPolicy::default();
        for retry in 1..12 {
            let exp = (200u64 << (retry - 1)).min(10_000);
            let delays: Vec<u64> = (0..50).map(|seed| policy.delay_ms(retry, seed)).collect();
            assert!(
                delays.iter().all(|d| *d >= exp / 2 && *d <= exp),
                "retry {retry}: {delays:?}"
            );
            assert!(delays.iter().any(|d| *d != delays[0]), "jittered");
        }
        assert!(policy.delay_ms(40, 1) <= 10_000);
    }
}
