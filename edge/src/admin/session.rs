//! Admin sign-in: the password check (constant time), the signed and expiring session tokens
//! the UI sends back in `Authorization: token <T>`, and the per-address throttle of failed
//! sign-ins. Tokens are HS256 JWTs keyed by `admin_secret`, so every node of a fleet with the
//! same secret accepts them and changing the secret signs everyone out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Failed sign-ins an address may make per [`THROTTLE_WINDOW`] before it is refused.
pub const FAILURES_ALLOWED: u32 = 5;
pub const THROTTLE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (a flood of addresses cannot grow the table without bound).
const THROTTLE_TABLE_MAX: usize = 10_000;
/// The audience that sets admin tokens apart from any other token signed with the same key.
const AUDIENCE: &str = "gyre-admin";

#[derive(Serialize, Deserialize)]
struct Claims {
    aud: String,
    iat: u64,
    exp: u64,
}

/// Whether `given` is the admin password; an empty configured password matches nothing.
pub fn password_matches(configured: &str, given: &str) -> bool {
    !configured.is_empty() && bool::from(configured.as_bytes().ct_eq(given.as_bytes()))
}

/// A session token valid for [`SESSION_TTL`] from `now` (Unix seconds).
pub fn issue(secret: &str, now: u64) -> Option<String> {
    let claims = Claims { aud: AUDIENCE.into(), iat: now, exp: now.checked_add(SESSION_TTL.as_secs())? };
    let key = EncodingKey::from_secret(secret.as_bytes()).ok()?;
    encode(&Header::new(Algorithm::HS256), &claims, &key).ok()
}

/// Whether `token` is a session this secret signed that has not expired.
pub fn valid(secret: &str, token: &str) -> bool {
    if secret.is_empty() {
        return false;
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "aud"]);
    let Ok(key) = DecodingKey::from_secret(secret.as_bytes()) else { return false };
    decode::<Claims>(token, &key, &validation).is_ok()
}

/// Failed sign-ins per address over a sliding window.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

impl Throttle {
    /// Whether `ip` may try again now.
    pub fn allows(&self, ip: IpAddr, now: Instant) -> bool {
        match self.failures.lock().get(&ip) {
            Some((since, n)) => now.duration_since(*since) >= THROTTLE_WINDOW || *n < FAILURES_ALLOWED,
            None => true,
        }
    }

    /// Records a failed sign-in of `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= THROTTLE_TABLE_MAX {
            failures.retain(|_, (since, _)| now.duration_since(*since) < THROTTLE_WINDOW);
        }
        if failures.len() >= THROTTLE_TABLE_MAX && !failures.contains_key(&ip) {
            // Still full of recent failures: refuse to remember more rather than grow.
            return;
        }
        let entry = failures.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= THROTTLE_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// Forgets `ip`'s failures after it signed in.
    pub fn succeeded(&self, ip: IpAddr) {
        self.failures.lock().remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> u64 {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
    }

    #[test]
    fn tokens_are_signed_and_expire() {
        let t = issue("s3cret", now()).unwrap();
        assert!(valid("s3cret", &t));
        assert!(!valid("other", &t));
        assert!(!valid("", &t));
        let old = issue("s3cret", now() - SESSION_TTL.as_secs() - 5).unwrap();
        assert!(!valid("s3cret", &old));
        // A token for clients signed with the same key is no admin session.
        let client = encode(
            &Header::new(Algorithm::HS256),
            &serde_json::json!({"sub": "42", "exp": now() + 60}),
            &EncodingKey::from_secret(b"s3cret").unwrap(),
        )
        .unwrap();
        assert!(!valid("s3cret", &client));
    }

    #[test]
    fn passwords() {
        assert!(password_matches("pw", "pw"));
        assert!(!password_matches("pw", "pW"));
        assert!(!password_matches("", ""));
    }

    #[test]
    fn throttle_refuses_after_five_failures_for_a_minute() {
        let t = Throttle::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..FAILURES_ALLOWED {
            assert!(t.allows(ip, start));
            t.failed(ip, start);
        }
        assert!(!t.allows(ip, start));
        assert!(t.allows("192.0.2.2".parse().unwrap(), start));
        assert!(t.allows(ip, start + THROTTLE_WINDOW));
        t.failed(ip, start);
        t.succeeded(ip);
        assert!(t.allows(ip, start));
    }
}
