//! The session's one multiplexed timer: stale connect, pings, pong checks, expiry.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;

/// Deadlines of one connection; the transport sleeps until the earliest.
pub struct Timers {
    /// Close 3502 when no connect arrived by then.
    pub stale: Option<Instant>,
    pub next_ping: Option<Instant>,
    /// Close 3012 when no pong arrived by then.
    pub pong_deadline: Option<Instant>,
    /// Close 3005 when the credentials were not refreshed by then.
    pub expire: Option<Instant>,
    /// Check subscription token expiry then.
    pub sub_expire: Option<Instant>,
    pub ping_interval: Duration,
    pub pong_timeout: Duration,
}

impl Timers {
    pub fn new(config: &Config, now: Instant) -> Self {
        Self {
            stale: Some(now + config.client_stale_close_delay.0),
            next_ping: None,
            pong_deadline: None,
            expire: None,
            sub_expire: None,
            ping_interval: config.ping_interval.0,
            pong_timeout: config.pong_timeout.0,
        }
    }

    /// The connection is established: stop the stale timer and start pinging at a random
    /// point of the first interval, so pings of many connections do not bunch up.
    pub fn connected(&mut self, now: Instant) {
        self.stale = None;
        let half = self.ping_interval / 2;
        let jitter = half.mul_f64(rand::random::<f64>());
        self.next_ping = Some(now + half + jitter);
    }

    pub fn next(&self) -> Instant {
        [self.stale, self.next_ping, self.pong_deadline, self.expire, self.sub_expire]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
    }

    pub fn pong_enabled(&self) -> bool {
        !self.pong_timeout.is_zero()
    }
}
