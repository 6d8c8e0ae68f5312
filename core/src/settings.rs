//! The settings every binding exposes, checked and converted once: a vault's time bounds in
//! days (grace, clock skew, future stamps, when a device counts as stale), with the defaults
//! every platform shows. Bindings pass what the app gave and the names the app used, so that
//! an error names the setting as the app spelled it.

use crate::engine::{
    CompactionPolicy, DEFAULT_GRACE_MS, DEFAULT_MAX_CLOCK_SKEW_MS, DEFAULT_MAX_FUTURE_MS,
};
use crate::error::{Error, Result};

const DAY_MS: f64 = 86_400_000.0;

/// A device silent for longer than this many days is shown as stale by default.
pub const DEFAULT_STALE_AFTER_DAYS: f64 = 30.0;

/// A vault's time bounds in days, as apps give them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct VaultDays {
    /// [`CompactionPolicy::grace_ms`].
    pub grace: f64,
    /// [`CompactionPolicy::max_clock_skew_ms`].
    pub max_clock_skew: f64,
    /// [`CompactionPolicy::max_future_ms`].
    pub max_future: f64,
}

impl Default for VaultDays {
    /// 30 days of grace, clocks within a day, stamps at most 7 days ahead.
    fn default() -> Self {
        VaultDays {
            grace: DEFAULT_GRACE_MS as f64 / DAY_MS,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW_MS as f64 / DAY_MS,
            max_future: DEFAULT_MAX_FUTURE_MS as f64 / DAY_MS,
        }
    }
}

impl VaultDays {
    /// The bounds an app gave, each omitted one at its default.
    pub fn given(grace: Option<f64>, max_clock_skew: Option<f64>, max_future: Option<f64>) -> Self {
        let defaults = VaultDays::default();
        VaultDays {
            grace: grace.unwrap_or(defaults.grace),
            max_clock_skew: max_clock_skew.unwrap_or(defaults.max_clock_skew),
            max_future: max_future.unwrap_or(defaults.max_future),
        }
    }

    /// The compaction policy these bounds give (the rest at its defaults); `names` are what
    /// the app calls the three settings, in the order of the fields.
    ///
    /// # Errors
    /// `Config` naming the first setting that is not a finite number of days >= 0.
    pub fn policy(&self, names: [&str; 3]) -> Result<CompactionPolicy> {
        let [grace, skew, future] = names;
        Ok(CompactionPolicy {
            grace_ms: days_ms(self.grace, grace)?,
            max_clock_skew_ms: days_ms(self.max_clock_skew, skew)?,
            max_future_ms: days_ms(self.max_future, future)?,
            ..CompactionPolicy::default()
        })
    }
}

/// When a device counts as stale: `days` as the app gave them (`None`:
/// [`DEFAULT_STALE_AFTER_DAYS`]), in milliseconds.
///
/// # Errors
/// `Config` naming `name` when `days` is not a finite number >= 0.
pub fn stale_after_ms(days: Option<f64>, name: &str) -> Result<u64> {
    days_ms(days.unwrap_or(DEFAULT_STALE_AFTER_DAYS), name)
}

/// `days` in milliseconds.
///
/// # Errors
/// `Config` naming `name` when `days` is not a finite number >= 0.
pub fn days_ms(days: f64, name: &str) -> Result<u64> {
    if days.is_finite() && days >= 0.0 {
        Ok((days * DAY_MS).min(u64::MAX as f64) as u64)
    } else {
        Err(Error::Config(format!(
            "{name} must be a number of days >= 0, not {}",
            not_a_count(days)
        )))
    }
}

/// What a refused number was, named rather than printed (printing a float would bring its
/// formatting code into the wasm module).
pub(crate) fn not_a_count(value: f64) -> &'static str {
    if value.is_nan() {
        "NaN"
    } else if value.is_infinite() {
        "infinite"
    } else if value == 0.0 {
        "0"
    } else {
        "negative"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_policy_defaults() {
        let policy = VaultDays::default().policy(["g", "s", "f"]).unwrap();
        assert_eq!(policy, CompactionPolicy::default());
    }

    #[test]
    fn a_bad_value_is_named_as_the_app_spelled_it() {
        for (bad, given) in [
            (-1.0, "negative"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "infinite"),
        ] {
            let days = VaultDays {
                max_future: bad,
                ..VaultDays::default()
            };
            let error = days
                .policy(["graceDays", "maxClockSkewDays", "maxFutureDays"])
                .unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "configuration error: maxFutureDays must be a number of days >= 0, not {given}"
                )
            );
        }
        assert_eq!(days_ms(0.5, "x").unwrap(), 43_200_000);
    }

    #[test]
    fn an_omitted_setting_is_the_cores_default() {
        assert_eq!(
            stale_after_ms(None, "s").unwrap(),
            days_ms(DEFAULT_STALE_AFTER_DAYS, "s").unwrap()
        );
        assert_eq!(stale_after_ms(Some(1.0), "s").unwrap(), 86_400_000);
        let err = stale_after_ms(Some(-1.0), "staleAfterDays").unwrap_err();
        assert!(err.to_string().contains("staleAfterDays"), "{err}");
        assert_eq!(
            VaultDays::given(None, None, None),
            VaultDays::default(),
            "every bound omitted"
        );
    }
}
