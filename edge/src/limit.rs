//! Rate limits: a token bucket small enough to live inside a session (8 bytes, no locks), and
//! the same bucket keyed by source IP for listeners and endpoints.
//!
//! Written here rather than taken from a crate: per-connection state must be one plain field
//! of the session (no `Arc`, atomics or heap object per connection), and the keyed form needs
//! a hard cap on how many addresses it remembers; both fit in a page.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

/// How fast and how far a bucket may be drawn: `rate` events per second on average, up to
/// `burst` at once. `rate == 0` means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub rate: u32,
    pub burst: u32,
}

impl Quota {
    /// `rate` per second with a burst of one second's worth.
    pub fn per_second(rate: u32) -> Self {
        Self { rate, burst: rate }
    }

    pub fn is_unlimited(&self) -> bool {
        self.rate == 0
    }

    /// Time one event costs, in nanoseconds.
    fn interval_nanos(&self) -> u64 {
        1_000_000_000 / u64::from(self.rate.max(1))
    }

    /// How far ahead of now the bucket's schedule may run before events are refused.
    fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos().saturating_mul(u64::from(self.burst.max(1)))
    }
}

/// A token bucket in GCRA form: the theoretical arrival time of the next event, in
/// nanoseconds since a shared origin.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokenBucket {
    tat: u64,
}

impl TokenBucket {
    /// Takes one token at `now`; `false` when the bucket is empty (nothing is taken then).
    pub fn try_take(&mut self, quota: Quota, now: Instant) -> bool {
        if quota.is_unlimited() {
            return true;
        }
        let now = nanos_since_origin(now);
        let tat = self.tat.max(now);
        let next = tat.saturating_add(quota.interval_nanos());
        if next.saturating_sub(now) > quota.tolerance_nanos() {
            return false;
        }
        self.tat = next;
        true
    }

    /// Whether the bucket has refilled completely by `now` (an entry that can be forgotten).
    fn is_full(&self, now: Instant) -> bool {
        self.tat <= nanos_since_origin(now)
    }
}

/// The instant bucket times count from; anything before it counts as the origin.
fn origin() -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn nanos_since_origin(now: Instant) -> u64 {
    u64::try_from(now.saturating_duration_since(origin()).as_nanos()).unwrap_or(u64::MAX)
}

/// Buckets per source IP, sharded; at most `max_keys` addresses are remembered (full buckets
/// are forgotten first), so a flood of spoofed sources cannot grow memory.
pub struct KeyedLimiter {
    quota: Quota,
    /// Sources never limited (trusted proxies, load balancers).
    exempt: Vec<ipnet::IpNet>,
    shards: Box<[Mutex<HashMap<IpAddr, TokenBucket>>]>,
    max_per_shard: usize,
}

const SHARDS: usize = 16;

impl KeyedLimiter {
    pub fn new(quota: Quota, max_keys: usize) -> Self {
        Self {
            quota,
            exempt: Vec::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            max_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// A limiter for source IPs with the `ip_rate_limit_exempt` networks (entries that do not
    /// parse were refused at config load) and the default cap on remembered addresses.
    pub fn for_ips(quota: Quota, exempt: &[String]) -> Self {
        let mut limiter = Self::new(quota, MAX_TRACKED_IPS);
        limiter.exempt = exempt.iter().filter_map(|n| crate::config::parse_network(n).ok()).collect();
        limiter
    }

    pub fn quota(&self) -> Quota {
        self.quota
    }

    /// Takes one token for `ip`; `false` when that address is over its quota. An address seen
    /// for the first time while its shard is full of active senders is refused too: a source
    /// cannot escape its limit by hiding among many others.
    pub fn check(&self, ip: IpAddr) -> bool {
        if self.quota.is_unlimited() || self.exempt.iter().any(|n| n.contains(&ip)) {
            return true;
        }
        let now = Instant::now();
        let mut shard = self.shards[shard_of(&ip)].lock();
        if let Some(bucket) = shard.get_mut(&ip) {
            return bucket.try_take(self.quota, now);
        }
        if shard.len() >= self.max_per_shard {
            shard.retain(|_, b| !b.is_full(now));
            if shard.len() >= self.max_per_shard {
                return false;
            }
        }
        let mut bucket = TokenBucket::default();
        let allowed = bucket.try_take(self.quota, now);
        shard.insert(ip, bucket);
        allowed
    }

    /// Forgets addresses whose buckets have refilled (called periodically).
    pub fn sweep(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            shard.lock().retain(|_, b| !b.is_full(now));
        }
    }

    /// Addresses currently remembered.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn shard_of(ip: &IpAddr) -> usize {
    use std::hash::{BuildHasher, Hasher};
    static HASHER: std::sync::OnceLock<std::collections::hash_map::RandomState> = std::sync::OnceLock::new();
    let mut h = HASHER.get_or_init(Default::default).build_hasher();
    match ip {
        IpAddr::V4(v4) => h.write(&v4.octets()),
        IpAddr::V6(v6) => h.write(&v6.octets()),
    }
    // Masked to the shard count first: the cast cannot truncate.
    (h.finish() % SHARDS as u64) as usize
}

/// Source addresses a per-IP limiter remembers at most.
pub const MAX_TRACKED_IPS: usize = 65_536;

/// How often keyed limiters forget idle addresses.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let q = Quota { rate: 10, burst: 3 };
        let mut b = TokenBucket::default();
        let t0 = Instant::now();
        assert!((0..3).all(|_| b.try_take(q, t0)));
        assert!(!b.try_take(q, t0));
        assert!(b.try_take(q, t0 + Duration::from_millis(101)));
        assert!(!b.try_take(q, t0 + Duration::from_millis(101)));
        // Refusals take nothing: after a full second the whole burst is back.
        let later = t0 + Duration::from_secs(2);
        assert!((0..3).all(|_| b.try_take(q, later)));
        assert!(!b.try_take(q, later));
    }

    #[test]
    fn unlimited_quota_always_allows() {
        let mut b = TokenBucket::default();
        assert!((0..10_000).all(|_| b.try_take(Quota::per_second(0), Instant::now())));
    }

    #[test]
    fn keyed_limiter_limits_each_address_and_caps_its_memory() {
        let l = KeyedLimiter::new(Quota { rate: 1, burst: 2 }, 32);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check(a) && l.check(a) && !l.check(a));
        assert!(l.check(b));
        for i in 0..10_000u32 {
            l.check(IpAddr::V4(i.into()));
        }
        assert!(l.len() <= 32 + SHARDS, "{}", l.len());
        assert!(!l.check(a), "a busy address stays limited while others come and go");
    }
}
