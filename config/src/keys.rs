//! Public keys given in the config as PEM text, parsed where the config is checked and
//! where tokens are verified alike.

use jsonwebtoken::DecodingKey;

/// Parses an RSA public key PEM (empty: none).
pub fn rsa_key(pem: &str) -> Result<Option<DecodingKey>, jsonwebtoken::errors::Error> {
    if pem.trim().is_empty() {
        return Ok(None);
    }
    DecodingKey::from_rsa_pem(pem.as_bytes()).map(Some)
}

/// Parses an ECDSA public key PEM (empty: none).
pub fn ecdsa_key(pem: &str) -> Result<Option<DecodingKey>, jsonwebtoken::errors::Error> {
    if pem.trim().is_empty() {
        return Ok(None);
    }
    DecodingKey::from_ec_pem(pem.as_bytes()).map(Some)
}
