//! API key check: `X-API-Key`, then `Authorization: apikey KEY`, then `?api_key=`.

use axum::http::{HeaderMap, Uri};
use subtle::ConstantTimeEq;

use crate::config::Config;

fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Whether the request carries the configured API key (or the API is insecure).
pub fn authorized(config: &Config, headers: &HeaderMap, uri: &Uri) -> bool {
    if config.api_insecure {
        return true;
    }
    let key = config.api_key.as_str();
    if key.is_empty() {
        return false;
    }
    if let Some(v) = headers.get("x-api-key").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        return same(v, key);
    }
    if let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        let parts: Vec<&str> = v.split_whitespace().collect();
        if parts.len() == 2 && parts[0].eq_ignore_ascii_case("apikey") && same(parts[1], key) {
            return true;
        }
    }
    uri.query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == "api_key" && same(v, key))
}
