//! JWT verification of connection tokens, and minting for `gentoken` and tests.

mod claims;

pub use claims::{ConnectClaims, SubOverride};

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};

use crate::config::Config;

/// Why a token was refused: an invalid one closes the connection (3500), an expired one is
/// answered with error 109 so the SDK fetches a fresh token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
}

/// Verifies tokens with the keys and claim rules of the config.
#[derive(Clone)]
pub struct TokenVerifier {
    hmac: Option<DecodingKey>,
    audience: String,
    issuer: String,
}

impl TokenVerifier {
    pub fn new(config: &Config) -> Self {
        let hmac = (!config.token_hmac_secret_key.is_empty())
            .then(|| DecodingKey::from_secret(config.token_hmac_secret_key.as_bytes()).ok())
            .flatten();
        Self { hmac, audience: config.token_audience.clone(), issuer: config.token_issuer.clone() }
    }

    /// Verifies a connection token and returns its claims.
    pub fn verify_connect(&self, token: &str) -> Result<ConnectClaims, TokenError> {
        let key =
            self.hmac.as_ref().ok_or_else(|| TokenError::Invalid("no token verification key configured".into()))?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        let data = decode::<ConnectClaims>(token, key, &validation).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        if claims.channel.is_some() {
            return Err(TokenError::Invalid("connection token must not have a channel claim".into()));
        }
        if !self.audience.is_empty() && !claims.aud.contains(&self.audience) {
            return Err(TokenError::Invalid("audience mismatch".into()));
        }
        if !self.issuer.is_empty() && claims.iss.as_deref() != Some(self.issuer.as_str()) {
            return Err(TokenError::Invalid("issuer mismatch".into()));
        }
        let now = unix_now();
        if claims.exp.is_some_and(|exp| exp <= now) || claims.nbf.is_some_and(|nbf| nbf > now) {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
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
        claims["exp"] = (unix_now() + ttl).into();
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

    #[test]
    fn verifies_minted_tokens_and_reports_expiry() {
        let v = verifier("s");
        let t = mint_connection_token("s", "42", Some(60), serde_json::json!({"info": {"n": 1}})).unwrap();
        let c = v.verify_connect(&t).unwrap();
        assert_eq!(c.sub, "42");
        assert_eq!(c.info.unwrap().as_str(), "{\"n\":1}");
        let t = mint_connection_token("s", "42", Some(-10), serde_json::Value::Null).unwrap();
        assert!(matches!(v.verify_connect(&t), Err(TokenError::Expired)));
        let t = mint_connection_token("other", "42", None, serde_json::Value::Null).unwrap();
        assert!(matches!(v.verify_connect(&t), Err(TokenError::Invalid(_))));
        assert!(matches!(v.verify_connect("garbage"), Err(TokenError::Invalid(_))));
    }
}
