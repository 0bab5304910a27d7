//! Browser origin checks for connection endpoints.

use axum::http::{header, HeaderMap};

use crate::node::channels::wildcard_match;

/// Requests without an `Origin` (non-browser clients) pass; browsers must match
/// `allowed_origins` (Centrifugo's patterns: `*` matches any run of characters, so `*` allows
/// every origin and `https://*.example.com` every subdomain) or, when it is empty, be
/// same-origin. An `Origin` that is not `scheme://host[:port]` (or `null`) matches nothing.
pub fn allowed(headers: &HeaderMap, allowed_origins: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let Ok(origin) = origin.to_str() else { return false };
    let origin = origin.to_ascii_lowercase();
    if !well_formed(&origin) {
        return false;
    }
    if !allowed_origins.is_empty() {
        return allowed_origins.iter().any(|p| wildcard_match(&p.to_ascii_lowercase(), &origin));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin.as_str(), |(_, rest)| rest);
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// What a browser sends: `null`, or a scheme, `://`, a host name or bracketed IPv6 address,
/// and an optional port; no path, user or query that a pattern's `*` could be fooled by.
fn well_formed(origin: &str) -> bool {
    if origin == "null" {
        return true;
    }
    let Some((scheme, authority)) = origin.split_once("://") else { return false };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (h.starts_with('[') || !h.contains(':')) => (h, Some(p)),
        _ => (authority, None),
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.chars().all(|c| c.is_ascii_digit()));
    let host_ok = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        !v6.is_empty() && v6.chars().all(|c| c.is_ascii_hexdigit() || matches!(c, ':' | '.'))
    } else {
        !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    };
    scheme_ok && port_ok && host_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_origin(origin: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ORIGIN, origin.parse().unwrap());
        h
    }

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

    #[test]
    fn patterns() {
        let sub = ["https://*.example.com".to_string()];
        assert!(allowed(&with_origin("https://a.b.example.com"), &sub));
        assert!(allowed(&with_origin("HTTPS://App.Example.com"), &sub));
        assert!(!allowed(&with_origin("https://example.com"), &sub));
        assert!(!allowed(&with_origin("http://a.example.com"), &sub));
        assert!(!allowed(&with_origin("https://evil.com/.example.com"), &sub));
        assert!(!allowed(&with_origin("https://evil.com?.example.com"), &sub));
        let port = ["http://localhost:*".to_string()];
        assert!(allowed(&with_origin("http://localhost:3000"), &port));
        assert!(!allowed(&with_origin("http://localhost:3000@evil.com"), &port));
        let all = ["*".to_string()];
        assert!(allowed(&with_origin("https://anything.test"), &all));
        assert!(allowed(&with_origin("null"), &all));
        assert!(allowed(&with_origin("http://[::1]:8000"), &all));
        assert!(!allowed(&with_origin("not an origin"), &all));
    }
}
