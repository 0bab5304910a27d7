//! What the fuzz targets share: the fixed keys and tags they check input against.

/// The HMAC secret the `jwt` target's verifier (and the seed tokens) use.
pub const HMAC_SECRET: &str = "gyre-fuzz-secret";

/// A config for the `jwt` target: HS* tokens verified with `HMAC_SECRET`.
pub fn jwt_config() -> gyre_edge::config::Config {
    gyre_edge::config::Config { token_hmac_secret_key: HMAC_SECRET.into(), ..Default::default() }
}

/// Publication tags the `tag_filter` target evaluates filters against.
pub fn sample_tags() -> std::collections::HashMap<String, String> {
    [("kind", "goal"), ("score", "42"), ("team", "red"), ("empty", "")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
