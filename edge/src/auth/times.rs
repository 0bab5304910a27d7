//! Token and credential times (Unix seconds from tokens, proxies and the server API) turned
//! into TTLs and deadlines without overflow: any `i64` a client or backend sends is safe.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// Timers are never set further ahead than this; an expiry beyond it is checked again when
/// the timer fires (a far-future `Instant` could overflow).
pub const MAX_AHEAD: Duration = Duration::from_secs(365 * 24 * 3600);

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// Whole seconds from `now` until `at`, 0 when `at` has passed.
pub fn secs_until(at: i64, now: i64) -> u64 {
    u64::try_from(at.saturating_sub(now)).unwrap_or(0)
}

/// The `ttl` a reply announces for an expiry at `at`: at least 1, at most `u32::MAX`.
pub fn ttl_until(at: i64, now: i64) -> u32 {
    u32::try_from(secs_until(at, now)).unwrap_or(u32::MAX).max(1)
}

/// When a timer for an expiry at `at` (plus `grace`) fires, at most [`MAX_AHEAD`] from now.
pub fn deadline_at(at: i64, now: i64, grace: Duration) -> Instant {
    let ahead = Duration::from_secs(secs_until(at, now)).saturating_add(grace).min(MAX_AHEAD);
    Instant::now() + ahead
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_times_neither_overflow_nor_wrap() {
        let now = unix_now();
        assert_eq!(secs_until(i64::MIN, now), 0);
        assert_eq!(secs_until(i64::MAX, i64::MIN), u64::MAX >> 1);
        assert_eq!(ttl_until(i64::MAX, now), u32::MAX);
        assert_eq!(ttl_until(now - 5, now), 1);
        assert_eq!(ttl_until(now + 30, now), 30);
        let far = deadline_at(i64::MAX, now, Duration::MAX);
        assert!(far <= Instant::now() + MAX_AHEAD);
        assert!(deadline_at(i64::MIN, now, Duration::ZERO) <= Instant::now());
    }
}
