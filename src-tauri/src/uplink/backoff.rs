//! Capped exponential backoff between reconnection attempts.
//!
//! Attempt 1 waits `initial`, each further attempt doubles, never beyond `max`. A jitter takes
//! up to `jitter` (a fraction) off each delay, so many recorders cut off by the same gateway
//! restart do not all knock again in the same millisecond; it only ever shortens a delay, so
//! `max` stays a hard upper bound.

use std::time::Duration;

/// Reconnection delays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Upper bound of every delay.
    pub max: Duration,
    /// Fraction in `[0, 1)` that may be taken off a delay at random.
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(200),
            max: Duration::from_secs(5),
            jitter: 0.2,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (from 1), without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(32);
        self.initial
            .saturating_mul(1u32 << doublings.min(31))
            .min(self.max)
    }

    /// The delay before retry number `attempt`, with `unit` in `[0, 1)` choosing the jitter.
    pub fn delay_with(&self, attempt: u32, unit: f64) -> Duration {
        let base = self.base_delay(attempt);
        let cut = self.jitter.clamp(0.0, 0.99) * unit.clamp(0.0, 1.0);
        base.mul_f64(1.0 - cut)
    }

    /// The delay before retry number `attempt`, with fresh jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_unit())
    }
}

/// A number in `[0, 1)` that differs between calls and processes; good enough for jitter.
fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded per process and per instance from the OS; hashing the clock mixes in
    // a per-call value.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_200_ms_and_cap_at_5_s() {
        let b = Backoff::default();
        let ms: Vec<u128> = (1..=8).map(|a| b.base_delay(a).as_millis()).collect();
        assert_eq!(ms, vec![200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(b.base_delay(u32::MAX), Duration::from_secs(5));
        assert_eq!(b.base_delay(0), Duration::from_millis(200));
    }

    #[test]
    fn jitter_only_shortens_within_its_fraction() {
        let b = Backoff::default();
        assert_eq!(b.delay_with(3, 0.0), Duration::from_millis(800));
        assert_eq!(b.delay_with(3, 0.5), Duration::from_millis(720));
        for attempt in 1..20 {
            let d = b.delay(attempt);
            let base = b.base_delay(attempt);
            assert!(d <= base && d >= base.mul_f64(0.8), "{attempt}: {d:?}");
        }
    }

    #[test]
    fn random_units_stay_in_range() {
        for _ in 0..1000 {
            let u = random_unit();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
