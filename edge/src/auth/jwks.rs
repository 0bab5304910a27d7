//! Public keys from a JWKS endpoint, kept usable through an outage of that endpoint.
//!
//! Keys are cached; a token naming an unknown `kid` (or keys older than [`TTL`]) triggers a
//! refetch. Fetches are single-flight; after a failure the next one waits (1 s, doubling to
//! 60 s) and keys already known keep verifying tokens meanwhile. While the endpoint is down a
//! token whose key is not known is a temporary refusal ([`TokenError::Unavailable`]), so
//! SDKs retry instead of giving up. The response is capped at [`MAX_BODY`]; redirects are
//! not followed; symmetric (`oct`) keys are never taken from an endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use parking_lot::RwLock;
use prometheus::IntCounterVec;

use super::TokenError;

/// Fetched keys are refreshed after this long (they keep serving if the refresh fails).
const TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the set at most this often while the endpoint is healthy.
const MIN_REFETCH: Duration = Duration::from_secs(1);
/// First wait after a failed fetch; doubled per further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Largest JWKS document read.
pub const MAX_BODY: usize = 1 << 20;
/// One fetch may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// A JWKS endpoint and what is known about it; shared across config reloads while the URL
/// stays the same.
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    /// [`TTL`], shorter in tests.
    ttl: Duration,
    state: RwLock<State>,
    /// Held by the one fetch in progress.
    fetching: tokio::sync::Mutex<()>,
    /// `gyre_token_jwks_events_total{event}` when the node exports metrics.
    events: RwLock<Option<IntCounterVec>>,
}

struct Key {
    key: DecodingKey,
    family: AlgorithmFamily,
    /// The `alg` the JWK names, if any: a token must use exactly that one.
    alg: Option<Algorithm>,
}

#[derive(Default)]
struct State {
    keys: HashMap<String, Arc<Key>>,
    /// Last successful fetch.
    fetched: Option<Instant>,
    /// Fetches failed in a row, and no fetch before `retry_at`.
    failures: u32,
    retry_at: Option<Instant>,
}

impl State {
    fn in_backoff(&self, now: Instant) -> bool {
        self.retry_at.is_some_and(|at| now < at)
    }

    fn stale(&self, now: Instant, ttl: Duration) -> bool {
        self.fetched.is_none_or(|at| now.duration_since(at) >= ttl)
    }
}

impl Jwks {
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url: url.to_string(),
            http,
            ttl: TTL,
            state: RwLock::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
            events: RwLock::new(None),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Counts fetches, failures and stale keys served in `counter` (label `event`).
    pub fn observe(&self, counter: IntCounterVec) {
        *self.events.write() = Some(counter);
    }

    fn event(&self, name: &str) {
        if let Some(c) = &*self.events.read() {
            c.with_label_values(&[name]).inc();
        }
    }

    /// The key for a token signed with `alg` naming `kid`.
    pub async fn key(self: &Arc<Self>, kid: &str, alg: Algorithm) -> Result<DecodingKey, TokenError> {
        let (known, stale) = {
            let s = self.state.read();
            (s.keys.get(kid).cloned(), s.stale(Instant::now(), self.ttl))
        };
        if let Some(key) = known {
            if stale {
                // Serve the key we have; refresh it in the background.
                self.event("stale_served");
                self.refresh_in_background();
            }
            return checked(&key, kid, alg);
        }
        // Unknown kid: one fetch at a time, callers wait for it and then look again.
        let _single_flight = self.fetching.lock().await;
        let now = Instant::now();
        let (known, fetched_recently, backoff) = {
            let s = self.state.read();
            (
                s.keys.get(kid).cloned(),
                s.fetched.is_some_and(|at| now.duration_since(at) < MIN_REFETCH),
                s.in_backoff(now),
            )
        };
        if let Some(key) = known {
            return checked(&key, kid, alg);
        }
        if backoff {
            self.event("unavailable");
            return Err(self.unavailable("endpoint failing, retry later"));
        }
        if fetched_recently {
            return Err(TokenError::Invalid(format!("unknown key id {kid:?}")));
        }
        if let Err(why) = self.fetch().await {
            self.event("unavailable");
            return Err(self.unavailable(&why));
        }
        let known = self.state.read().keys.get(kid).cloned();
        match known {
            Some(key) => checked(&key, kid, alg),
            None => Err(TokenError::Invalid(format!("unknown key id {kid:?}"))),
        }
    }

    fn unavailable(&self, why: &str) -> TokenError {
        TokenError::Unavailable(format!("JWKS {}: {why}", self.url))
    }

    /// Starts a refetch unless one is running or the endpoint is in backoff.
    fn refresh_in_background(self: &Arc<Self>) {
        if self.state.read().in_backoff(Instant::now()) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let Ok(_single_flight) = this.fetching.try_lock() else { return };
            let due = {
                let s = this.state.read();
                s.stale(Instant::now(), this.ttl) && !s.in_backoff(Instant::now())
            };
            if due {
                let _ = this.fetch().await;
            }
        });
    }

    /// Fetches the key set; the caller holds `fetching`. On failure the old keys stay and the
    /// backoff grows.
    async fn fetch(&self) -> Result<(), String> {
        match self.download().await {
            Ok(set) => {
                let keys = usable_keys(&set);
                let mut s = self.state.write();
                *s = State { keys, fetched: Some(Instant::now()), failures: 0, retry_at: None };
                drop(s);
                self.event("fetched");
                Ok(())
            }
            Err(why) => {
                let mut s = self.state.write();
                s.failures = s.failures.saturating_add(1);
                let shift = s.failures.saturating_sub(1).min(16);
                let wait = FIRST_BACKOFF.saturating_mul(1 << shift).min(MAX_BACKOFF);
                s.retry_at = Some(Instant::now() + wait);
                let failures = s.failures;
                drop(s);
                self.event("fetch_failed");
                tracing::warn!(url = %self.url, failures, retry_in = ?wait, %why, "JWKS fetch failed; known keys keep serving");
                Err(why)
            }
        }
    }

    async fn download(&self) -> Result<JwkSet, String> {
        let mut resp = self.http.get(&self.url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
            return Err(format!("response larger than {MAX_BODY} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("response larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| format!("not a JWK set: {e}"))
    }
}

/// The asymmetric keys of a set that have a `kid`, with their family.
fn usable_keys(set: &JwkSet) -> HashMap<String, Arc<Key>> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = &jwk.common.key_id else { continue };
        let Some(family) = jwk_family(jwk) else {
            tracing::warn!(kid, "JWKS key skipped: only RSA, EC and OKP public keys are accepted from an endpoint");
            continue;
        };
        let alg = jwk.common.key_algorithm.and_then(|a| Algorithm::try_from(a).ok());
        match DecodingKey::from_jwk(jwk) {
            Ok(key) => {
                keys.insert(kid.clone(), Arc::new(Key { key, family, alg }));
            }
            Err(err) => tracing::warn!(%err, kid, "JWKS key skipped"),
        }
    }
    keys
}

fn jwk_family(jwk: &Jwk) -> Option<AlgorithmFamily> {
    match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Some(AlgorithmFamily::Rsa),
        AlgorithmParameters::EllipticCurve(_) => Some(AlgorithmFamily::Ec),
        AlgorithmParameters::OctetKeyPair(_) => Some(AlgorithmFamily::Ed),
        _ => None,
    }
}

/// The key, if it may verify a token signed with `alg`.
fn checked(key: &Key, kid: &str, alg: Algorithm) -> Result<DecodingKey, TokenError> {
    if alg.family() != key.family || key.alg.is_some_and(|a| a != alg) {
        return Err(TokenError::Invalid(format!("key {kid:?} is not for {alg:?} tokens")));
    }
    Ok(key.key.clone())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

    use axum::response::IntoResponse;
    use jsonwebtoken::EncodingKey;

    use super::*;

    fn ec_jwk(file: &str, kid: &str) -> Jwk {
        let path = format!("{}/../tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        let pem = std::fs::read(path).expect("fixture");
        let key = EncodingKey::from_ec_pem(&pem).expect("EC key");
        let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        jwk
    }

    /// A real endpoint on loopback: `up` 0 = 503, 1 = set `a`, 2 = sets `a` and `b`.
    async fn endpoint(up: Arc<AtomicU8>, hits: Arc<AtomicU32>) -> String {
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (up, hits) = (up.clone(), hits.clone());
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let keys = match up.load(Ordering::SeqCst) {
                        0 => return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                        1 => vec![ec_jwk("ec_private.pem", "a")],
                        _ => vec![ec_jwk("ec_private.pem", "a"), ec_jwk("ec2_private.pem", "b")],
                    };
                    axum::Json(JwkSet { keys }).into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/jwks")
    }

    async fn eventually(mut check: impl AsyncFnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if check().await {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    #[tokio::test]
    async fn stale_keys_serve_through_an_outage_and_fetches_back_off() {
        let (up, hits) = (Arc::new(AtomicU8::new(1)), Arc::new(AtomicU32::new(0)));
        let url = endpoint(up.clone(), hits.clone()).await;
        let mut jwks = Jwks::new(&url);
        jwks.ttl = Duration::from_millis(100);
        let jwks = Arc::new(jwks);
        assert!(jwks.key("a", Algorithm::ES256).await.is_ok());
        assert_eq!(hits.load(Ordering::SeqCst), 1);

        // Down, and the keys are past their refresh time: a still verifies; one background
        // refetch fails and starts the backoff.
        up.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(jwks.key("a", Algorithm::ES256).await.is_ok());
        assert!(eventually(async || jwks.state.read().failures == 1).await);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
        for _ in 0..20 {
            assert!(jwks.key("a", Algorithm::ES256).await.is_ok());
            assert!(matches!(jwks.key("b", Algorithm::ES256).await, Err(TokenError::Unavailable(_))));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 2, "no fetch during the backoff");

        // Back with a rotated set: b verifies once the backoff is over.
        up.store(2, Ordering::SeqCst);
        assert!(eventually(async || jwks.key("b", Algorithm::ES256).await.is_ok()).await);
        assert_eq!(jwks.state.read().failures, 0);
        // A key is only for its own family and the alg it names.
        assert!(matches!(jwks.key("a", Algorithm::RS256).await, Err(TokenError::Invalid(_))));
        assert!(matches!(jwks.key("a", Algorithm::ES384).await, Err(TokenError::Invalid(_))));
    }

    #[tokio::test]
    async fn concurrent_unknown_kids_share_one_fetch() {
        let (up, hits) = (Arc::new(AtomicU8::new(0)), Arc::new(AtomicU32::new(0)));
        let jwks = Arc::new(Jwks::new(&endpoint(up, hits.clone()).await));
        let tries = (0..50).map(|_| {
            let jwks = jwks.clone();
            tokio::spawn(async move { jwks.key("a", Algorithm::ES256).await })
        });
        for t in tries {
            assert!(matches!(t.await.expect("task"), Err(TokenError::Unavailable(_))));
        }
        assert_eq!(hits.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn symmetric_keys_are_never_taken_from_an_endpoint() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"}
        ]}))
        .expect("set");
        assert!(usable_keys(&set).is_empty());
    }
}
