//! JWT verification of connection and subscription tokens, and minting for `gentoken` and
//! tests.

mod claims;
mod jwks;
pub mod times;

pub use crate::internode::{BoolValue, SubOverride};
pub use claims::{ConnectClaims, SubOptions, SubscribeClaims};
pub use times::unix_now;

use std::sync::Arc;

use jsonwebtoken::{decode, encode, Algorithm, AlgorithmFamily, DecodingKey, EncodingKey, Header, Validation};

use crate::config::Config;

/// Why a token was refused, mapped as Centrifugo maps it: an invalid one closes a connect
/// with 3500 (SDKs stop), an expired or not-yet-valid one gets error 109 (SDKs fetch a fresh
/// token). `Unavailable` is Gyre's: the keys could not be fetched, a temporary error 100 so
/// SDKs retry and get in once the JWKS endpoint is back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("token keys unavailable: {0}")]
    Unavailable(String),
}

/// Verifies tokens with the keys and claim rules of the config.
#[derive(Clone)]
pub struct TokenVerifier {
    hmac: Option<DecodingKey>,
    rsa: Option<DecodingKey>,
    ecdsa: Option<DecodingKey>,
    jwks: Option<Arc<jwks::Jwks>>,
    audience: String,
    issuer: String,
    leeway: i64,
}

impl TokenVerifier {
    pub fn new(config: &Config) -> Self {
        let hmac = (!config.token_hmac_secret_key.is_empty())
            .then(|| DecodingKey::from_secret(config.token_hmac_secret_key.as_bytes()).ok())
            .flatten();
        // PEM keys are validated at config load; an unparsable one simply verifies nothing.
        let rsa = crate::config::keys::rsa_key(&config.token_rsa_public_key).ok().flatten();
        let ecdsa = crate::config::keys::ecdsa_key(&config.token_ecdsa_public_key).ok().flatten();
        let jwks = (!config.token_jwks_public_endpoint.is_empty())
            .then(|| Arc::new(jwks::Jwks::new(&config.token_jwks_public_endpoint)));
        Self {
            hmac,
            rsa,
            ecdsa,
            jwks,
            audience: config.token_audience.clone(),
            issuer: config.token_issuer.clone(),
            leeway: i64::try_from(config.token_leeway.0.as_secs()).unwrap_or(0),
        }
    }

    /// The verifier for a reloaded config: the JWKS cache carries over while its URL is the
    /// same, so a reload during an endpoint outage keeps the known keys.
    pub fn reloaded(&self, config: &Config) -> Self {
        let mut next = Self::new(config);
        if let (Some(old), Some(new)) = (&self.jwks, &next.jwks) {
            if old.url() == new.url() {
                next.jwks = Some(old.clone());
            }
        }
        next
    }

    /// Counts JWKS fetches, failures and stale keys served (`gyre_token_jwks_events_total`).
    pub fn observe(self, events: &prometheus::IntCounterVec) -> Self {
        if let Some(jwks) = &self.jwks {
            jwks.observe(events.clone());
        }
        self
    }

    /// The key for the token: the HMAC secret for HS*; for RS*/PS*/ES*/EdDSA the JWKS key
    /// named by `kid` when an endpoint is configured, else the configured RSA or ECDSA key.
    /// A key only ever verifies tokens of its own family.
    async fn key_for(&self, header: &jsonwebtoken::Header) -> Result<DecodingKey, TokenError> {
        let alg = header.alg;
        if alg.family() == AlgorithmFamily::Hmac {
            return self.hmac.clone().ok_or_else(|| TokenError::Invalid("no HMAC secret configured".into()));
        }
        if let (Some(jwks), Some(kid)) = (&self.jwks, &header.kid) {
            return jwks.key(kid, alg).await;
        }
        let key = match alg.family() {
            AlgorithmFamily::Rsa => self.rsa.clone(),
            AlgorithmFamily::Ec => self.ecdsa.clone(),
            _ => None,
        };
        key.ok_or_else(|| TokenError::Invalid(format!("no key configured for {alg:?} tokens")))
    }

    /// Checks the signature and decodes the claims; time and audience checks are ours.
    async fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        // `alg: none` and unknown algorithms fail here: there is no such `Algorithm`.
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let key = &self.key_for(&header).await?;
        let mut validation = Validation::new(header.alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        decode::<T>(token, key, &validation).map(|d| d.claims).map_err(|e| TokenError::Invalid(e.to_string()))
    }

    fn check_common(
        &self,
        aud: &[String],
        iss: Option<&str>,
        exp: Option<i64>,
        nbf: Option<i64>,
    ) -> Result<(), TokenError> {
        if !self.audience.is_empty() && !aud.contains(&self.audience) {
            return Err(TokenError::Invalid("audience mismatch".into()));
        }
        if !self.issuer.is_empty() && iss != Some(self.issuer.as_str()) {
            return Err(TokenError::Invalid("issuer mismatch".into()));
        }
        let now = unix_now();
        // Centrifugo answers both a passed `exp` and a future `nbf` with 109.
        if exp.is_some_and(|exp| self.has_passed(exp, now))
            || nbf.is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now)
        {
            return Err(TokenError::Expired);
        }
        Ok(())
    }

    /// Whether credentials expiring at `at` have expired, allowing the configured leeway.
    pub fn has_passed(&self, at: i64, now: i64) -> bool {
        at.saturating_add(self.leeway) <= now
    }

    /// Verifies a connection token and returns its claims.
    pub async fn verify_connect(&self, token: &str) -> Result<ConnectClaims, TokenError> {
        let claims: ConnectClaims = self.decode(token).await?;
        if claims.channel.is_some() {
            return Err(TokenError::Invalid("connection token must not have a channel claim".into()));
        }
        self.check_common(&claims.aud, claims.iss.as_deref(), claims.exp, claims.nbf)?;
        Ok(claims)
    }

    /// Verifies a subscription token's signature, audience, issuer and time; the caller
    /// matches `sub`, `channel` and `client` against the connection.
    pub async fn verify_subscribe(&self, token: &str) -> Result<SubscribeClaims, TokenError> {
        let claims: SubscribeClaims = self.decode(token).await?;
        if claims.channel.is_empty() {
            return Err(TokenError::Invalid("subscription token without channel claim".into()));
        }
        self.check_common(&claims.aud, claims.iss.as_deref(), claims.exp, claims.nbf)?;
        Ok(claims)
    }
}

/// Mints an HS256 subscription token for `user` and `channel`.
pub fn mint_subscription_token(
    secret: &str,
    user: &str,
    channel: &str,
    ttl_secs: Option<i64>,
    extra: serde_json::Value,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut extra = match extra {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    extra.insert("channel".into(), channel.into());
    mint_connection_token(secret, user, ttl_secs, serde_json::Value::Object(extra))
}

/// Mints an HS256 connection token for `user`, valid for `ttl_secs` (none: never expires).
pub fn mint_connection_token(
    secret: &str,
    user: &str,
    ttl_secs: Option<i64>,
    extra: serde_json::Value,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut claims = serde_json::json!({ "sub": user });
    if let Some(ttl) = ttl_secs {
        claims["exp"] = unix_now().saturating_add(ttl).into();
    }
    if let (Some(map), serde_json::Value::Object(extra)) = (claims.as_object_mut(), extra) {
        map.extend(extra);
    }
    encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(secret: &str) -> TokenVerifier {
        TokenVerifier::new(&Config { token_hmac_secret_key: secret.into(), ..Config::default() })
    }

    #[tokio::test]
    async fn verifies_minted_tokens_and_reports_expiry() {
        let v = verifier("s");
        let t = mint_connection_token("s", "42", Some(60), serde_json::json!({"info": {"n": 1}})).unwrap();
        let c = v.verify_connect(&t).await.unwrap();
        assert_eq!(c.sub, "42");
        assert_eq!(c.info.unwrap().as_json(), Some("{\"n\":1}"));
        let t = mint_connection_token("s", "42", Some(-10), serde_json::Value::Null).unwrap();
        assert!(matches!(v.verify_connect(&t).await, Err(TokenError::Expired)));
        let t = mint_connection_token("other", "42", None, serde_json::Value::Null).unwrap();
        assert!(matches!(v.verify_connect(&t).await, Err(TokenError::Invalid(_))));
        assert!(matches!(v.verify_connect("garbage").await, Err(TokenError::Invalid(_))));
    }
}
