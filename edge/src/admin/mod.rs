//! The admin web UI (Centrifugo's `admin*` keys): a page and its assets, embedded in the binary
//! so it works offline, and the endpoints it calls: `/admin/init`, `/admin/auth` (sign-in),
//! `/admin/api` (the legacy server API envelope, for the console and the fleet view) and
//! `/admin/namespaces`. Mounted on the internal listener unless `admin_external`.
//!
//! Sessions are bearer tokens the page keeps in `sessionStorage` and sends as
//! `Authorization: token <T>`: nothing is sent by the browser on its own, so another site cannot
//! act with an admin's session (CSRF), and POSTs from another origin are refused outright.

mod assets;
pub mod session;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::json;

use crate::config::Config;
use crate::listener::body::json_error;
use crate::node::Node;
use session::Throttle;

/// The largest sign-in request read.
const AUTH_BODY_MAX: usize = 4096;

/// Content-Security-Policy of every admin answer: only this origin's own scripts, styles and
/// requests; no inline code, no frames, no plugins.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Routes of the admin UI under `admin_handler_prefix`.
pub fn router(config: &Config) -> Router<Arc<Node>> {
    let prefix = config.admin_handler_prefix.trim_end_matches('/');
    let mut r = Router::new()
        .route(&format!("{prefix}/"), get(index))
        .route(&format!("{prefix}/admin/ui/{{file}}"), get(asset))
        .route(&format!("{prefix}/admin/init"), get(init))
        .route(&format!("{prefix}/admin/auth"), post(auth))
        .route(&format!("{prefix}/admin/api"), post(api))
        .route(&format!("{prefix}/admin/namespaces"), get(namespaces))
        .route(&format!("{prefix}/admin/tail"), post(tail));
    if !prefix.is_empty() {
        // The page's relative asset URLs need the trailing slash.
        let to = format!("{prefix}/");
        r = r.route(prefix, get(move || async move { axum::response::Redirect::permanent(&to) }));
    }
    r.layer(axum::middleware::from_fn(secure_headers)).layer(Extension(Arc::new(Throttle::default())))
}

/// Headers every admin answer carries: CSP, no sniffing, no framing, no referrer, no caching
/// of API answers.
async fn secure_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn index() -> Response {
    let mut resp = assets::INDEX.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::find(&file) {
        Some((content_type, text)) => ([(header::CONTENT_TYPE, content_type)], text).into_response(),
        None => json_error(StatusCode::NOT_FOUND, json!({"error": "no such admin asset"})),
    }
}

/// Whether the request carries a valid session (or the UI runs with `admin_insecure`).
fn signed_in(config: &Config, headers: &HeaderMap) -> bool {
    if config.admin_insecure {
        return true;
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("token "))
        .is_some_and(|t| session::valid(&config.admin_secret, t.trim()))
}

/// A state-changing request from a page of another origin: refused whatever it carries.
fn cross_origin(headers: &HeaderMap) -> Option<Response> {
    (!crate::transport::origin::allowed(headers, &[]))
        .then(|| json_error(StatusCode::FORBIDDEN, json!({"error": "cross-origin admin request refused"})))
}

async fn init(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let config = node.config();
    axum::Json(json!({
        "insecure": config.admin_insecure,
        "edition": "oss",
        "authenticated": signed_in(&config, &headers),
        "node": node.name,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

/// `POST /admin/auth` with the password as a form field or JSON `{"password": …}`: a session
/// token, or 401; at most [`session::FAILURES_ALLOWED`] failures a minute per address (429).
async fn auth(
    State(node): State<Arc<Node>>,
    Extension(throttle): Extension<Arc<Throttle>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = cross_origin(&headers) {
        return refused;
    }
    let ip: IpAddr = peer.ip();
    let now = Instant::now();
    if !throttle.allows(ip, now) {
        node.metrics.admin_logins.with_label_values(&["throttled"]).inc();
        return json_error(StatusCode::TOO_MANY_REQUESTS, json!({"error": "too many failed sign-ins; wait a minute"}));
    }
    let config = node.config();
    let timeout = config.http_body_timeout.0;
    let body = match crate::listener::body::read(&headers, body, AUTH_BODY_MAX, timeout, "admin", &node.metrics).await {
        Ok(b) => b,
        Err(refused) => return refused.into_response(),
    };
    let Some(password) = password_of(&headers, &body) else {
        return json_error(StatusCode::BAD_REQUEST, json!({"error": "send the password as form field `password`"}));
    };
    if !session::password_matches(&config.admin_password, &password) {
        throttle.failed(ip, now);
        node.metrics.admin_logins.with_label_values(&["refused"]).inc();
        tracing::warn!(%ip, "admin sign-in refused: wrong password");
        return json_error(StatusCode::UNAUTHORIZED, json!({"error": "wrong password"}));
    }
    throttle.succeeded(ip);
    let now_unix = u64::try_from(crate::auth::times::unix_now()).unwrap_or(0);
    match session::issue(&config.admin_secret, now_unix) {
        Some(token) => {
            node.metrics.admin_logins.with_label_values(&["ok"]).inc();
            tracing::info!(%ip, "admin signed in");
            axum::Json(json!({"token": token})).into_response()
        }
        None => json_error(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "cannot sign a session"})),
    }
}

/// The `password` of a form-encoded or JSON body.
fn password_of(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    let json = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json {
        let value: serde_json::Value = serde_json::from_slice(body).ok()?;
        return value.get("password")?.as_str().map(str::to_string);
    }
    form_urlencoded::parse(body).find(|(k, _)| k == "password").map(|(_, v)| v.into_owned())
}

/// `POST /admin/api`: the legacy `{"method","params"}` commands, for a signed-in admin.
async fn api(State(node): State<Arc<Node>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refused) = cross_origin(&headers) {
        return refused;
    }
    if !signed_in(&node.config(), &headers) {
        return json_error(StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}));
    }
    crate::api::legacy_commands(&node, &headers, body, "admin").await
}

/// The user the admin's tail streams appear as (in presence, and in `info` client counts).
pub const TAIL_USER: &str = "gyre-admin";
/// The longest channel name a tail asks for.
const CHANNEL_MAX: usize = 255;

/// `POST /admin/tail` with `{"channel": …}`: newline-delimited JSON of the channel as a
/// unidirectional client sees it (the connect, then each publication, join and leave), for as
/// long as the page reads it.
async fn tail(State(node): State<Arc<Node>>, headers: HeaderMap, body: Body) -> Response {
    if let Some(refused) = cross_origin(&headers) {
        return refused;
    }
    let config = node.config();
    if !signed_in(&config, &headers) {
        return json_error(StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}));
    }
    let timeout = config.http_body_timeout.0;
    let body = match crate::listener::body::read(&headers, body, AUTH_BODY_MAX, timeout, "admin", &node.metrics).await {
        Ok(b) => b,
        Err(refused) => return refused.into_response(),
    };
    let channel = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("channel")?.as_str().map(str::to_string))
        .filter(|c| !c.is_empty() && c.len() <= CHANNEL_MAX);
    let Some(channel) = channel else {
        return json_error(
            StatusCode::BAD_REQUEST,
            json!({"error": "send {\"channel\": \"…\"} (1 to 255 characters)"}),
        );
    };
    if let Err(code) = node.rules().channels.resolve(&config, &channel) {
        return json_error(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("cannot tail {channel:?}: {}", code.message)}),
        );
    }
    tracing::info!(%channel, "admin tail started");
    crate::transport::http::server_stream(node, TAIL_USER, channel)
}

/// `GET /admin/namespaces`: the channel options in effect on this node (the file's, the
/// operator's and those of channels without a namespace, under the name "").
async fn namespaces(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    let config = node.config();
    if !signed_in(&config, &headers) {
        return json_error(StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}));
    }
    let mut list = vec![json!({"name": "", "options": config.channel})];
    list.extend(config.namespaces.iter().map(|n| json!({"name": n.name, "options": n.options})));
    axum::Json(json!({"namespaces": list})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_from_forms_and_json() {
        let mut h = HeaderMap::new();
        assert_eq!(password_of(&h, b"password=p%40ss+word&x=1").as_deref(), Some("p@ss word"));
        assert_eq!(password_of(&h, b"x=1"), None);
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(password_of(&h, br#"{"password":"pw"}"#).as_deref(), Some("pw"));
        assert_eq!(password_of(&h, br#"{"password":1}"#), None);
    }
}
