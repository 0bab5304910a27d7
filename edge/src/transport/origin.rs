//! Browser origin checks for connection endpoints.

use axum::http::{header, HeaderMap};

use crate::node::channels::wildcard_match;

/// Requests without an `Origin` (non-browser clients) pass; browsers must match
/// `allowed_origins` (`*` wildcards allowed) or, when it is empty, be same-origin.
pub fn allowed(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let origin = origin.to_ascii_lowercase();
    if !allowed_origins.is_empty() {
        return allowed_origins.iter().any(|p| wildcard_match(&p.to_ascii_lowercase(), &origin));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin.as_str(), |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        assert!(allowed(&h, &[]));
        h.insert(header::ORIGIN, "https://app.example.com".parse().unwrap());
        assert!(!allowed(&h, &[]));
        assert!(allowed(&h, &["https://*.example.com".into()]));
        assert!(!allowed(&h, &["https://other.com".into()]));
        h.insert(header::HOST, "app.example.com".parse().unwrap());
        assert!(allowed(&h, &[]));
    }
}
