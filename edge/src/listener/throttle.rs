//! Log throttling: a refusal storm writes one line a second per kind, with the count of the
//! lines it held back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

const EVERY: Duration = Duration::from_secs(1);

/// (scope, kind) of a logged event.
type Key = (&'static str, &'static str);

/// Decides which refusals are logged.
#[derive(Default)]
pub struct Throttle {
    /// When each kind was last logged, and how many were held back since.
    last: Mutex<HashMap<Key, (Instant, u64)>>,
}

impl Throttle {
    /// `Some(suppressed)` when this event should be logged (with how many were held back since
    /// the last logged one), `None` when it is held back.
    pub fn allow(&self, scope: &'static str, kind: &'static str) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock();
        match last.get_mut(&(scope, kind)) {
            Some((at, held)) if now.duration_since(*at) < EVERY => {
                *held = held.saturating_add(1);
                None
            }
            Some((at, held)) => {
                let suppressed = *held;
                *at = now;
                *held = 0;
                Some(suppressed)
            }
            None => {
                last.insert((scope, kind), (now, 0));
                Some(0)
            }
        }
    }
}
