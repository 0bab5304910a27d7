//! The browser gate of the client listener: requests whose `Origin` is not allowed are refused
//! before any work, preflights are answered here, and answers to allowed cross-origin requests
//! carry the CORS headers a page needs to read them (HTTP-streaming, SSE and their emulation
//! are fetch/XHR/EventSource requests; WebSocket upgrades only need the refusal).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::origin;
use crate::node::Node;

/// How long a browser may cache a preflight answer (seconds).
const PREFLIGHT_MAX_AGE: &str = "600";
/// The longest `Access-Control-Request-Headers` echoed back; a longer list is refused.
const MAX_REQUEST_HEADERS: usize = 1024;

/// Refuses disallowed origins (403 with a JSON error), answers preflights of allowed ones and
/// adds `Access-Control-Allow-Origin` (the origin itself, never `*`) to everything else.
pub async fn gate(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let Some(origin) = request.headers().get(header::ORIGIN).cloned() else {
        // Not a browser: nothing to check or to add.
        return next.run(request).await;
    };
    let allowed = origin::allowed(request.headers(), &node.config().allowed_origins);
    if !allowed {
        tracing::info!(origin = ?origin, path = request.uri().path(), "request refused: origin not allowed");
        node.metrics.listener_refused.with_label_values(&["client", "origin"]).inc();
        let body = serde_json::json!({"error": "origin not allowed (key `allowed_origins`)"});
        let mut refused = crate::listener::body::json_error(StatusCode::FORBIDDEN, body);
        vary(refused.headers_mut());
        return refused;
    }
    let preflight =
        request.method() == Method::OPTIONS && request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if preflight {
        return answer_preflight(origin, request.headers());
    }
    let mut response = next.run(request).await;
    allow(response.headers_mut(), origin);
    response
}

/// 204 allowing the origin, GET/POST, the headers the page asked for, cached for a while.
fn answer_preflight(origin: HeaderValue, request: &HeaderMap) -> Response {
    let asked = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS).filter(|v| listed_headers(v.as_bytes()));
    if request.contains_key(header::ACCESS_CONTROL_REQUEST_HEADERS) && asked.is_none() {
        let body = serde_json::json!({"error": "malformed or too long Access-Control-Request-Headers"});
        let mut refused = crate::listener::body::json_error(StatusCode::BAD_REQUEST, body);
        vary(refused.headers_mut());
        return refused;
    }
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let h = response.headers_mut();
    allow(h, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    if let Some(asked) = asked {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static(PREFLIGHT_MAX_AGE));
    h.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Method"));
    h.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
    response
}

/// The headers of an allowed cross-origin answer. Credentials are allowed (cookies may carry a
/// session the connect proxy reads), which is why the origin is echoed and never `*`.
fn allow(h: &mut HeaderMap, origin: HeaderValue) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
    vary(h);
}

/// Caches must keep answers to different origins apart.
fn vary(h: &mut HeaderMap) {
    h.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// A comma-separated list of header names, short enough to echo.
fn listed_headers(value: &[u8]) -> bool {
    value.len() <= MAX_REQUEST_HEADERS
        && value.split(|b| *b == b',').all(|name| {
            let name = name.trim_ascii();
            name.is_empty() || HeaderName::from_bytes(name).is_ok()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_lists() {
        assert!(listed_headers(b"content-type"));
        assert!(listed_headers(b"Content-Type, Authorization,x-trace"));
        assert!(!listed_headers(b"content type"));
        assert!(!listed_headers(&[b'a'; 2000]));
    }
}
