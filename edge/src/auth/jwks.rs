//! Public keys from a JWKS endpoint: cached, refetched when a token names an unknown `kid`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::DecodingKey;
use parking_lot::RwLock;

use super::TokenError;

/// How long fetched keys are trusted before a refetch.
const TTL: Duration = Duration::from_secs(3600);
/// Unknown `kid`s trigger at most one refetch per this interval (no refetch storms).
const MIN_REFETCH: Duration = Duration::from_secs(1);

/// A JWKS endpoint and the keys last fetched from it.
pub struct Jwks {
    url: String,
    http: reqwest::Client,
    cache: RwLock<Cache>,
    fetching: tokio::sync::Mutex<()>,
}

struct Cache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

impl Jwks {
    pub fn new(url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url: url.to_string(),
            http,
            cache: RwLock::new(Cache { keys: HashMap::new(), fetched: None }),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        let c = self.cache.read();
        c.fetched.filter(|at| at.elapsed() < TTL)?;
        c.keys.get(kid).cloned()
    }

    /// The key with this `kid`, fetching the set when it is unknown or stale.
    pub async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let _single_flight = self.fetching.lock().await;
        if let Some(k) = self.cached(kid) {
            return Ok(k);
        }
        let recent = self.cache.read().fetched.is_some_and(|at| at.elapsed() < MIN_REFETCH);
        if !recent {
            self.fetch().await?;
        }
        self.cache.read().keys.get(kid).cloned().ok_or_else(|| TokenError::Invalid(format!("unknown key id {kid:?}")))
    }

    async fn fetch(&self) -> Result<(), TokenError> {
        let unavailable = |e: String| TokenError::Invalid(format!("JWKS {}: {e}", self.url));
        let resp = self.http.get(&self.url).send().await.map_err(|e| unavailable(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("HTTP {}", resp.status())));
        }
        let set: JwkSet = resp.json().await.map_err(|e| unavailable(e.to_string()))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else { continue };
            match DecodingKey::from_jwk(jwk) {
                Ok(k) => {
                    keys.insert(kid.clone(), k);
                }
                Err(err) => tracing::warn!(%err, kid, "JWKS key skipped"),
            }
        }
        *self.cache.write() = Cache { keys, fetched: Some(Instant::now()) };
        Ok(())
    }
}
