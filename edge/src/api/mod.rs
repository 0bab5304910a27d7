//! Server HTTP API: `POST /api/<method>` and the legacy `POST /api` envelope, thin over the
//! node.

mod auth;
mod legacy;
mod methods;

pub use methods::{execute, ApiError};

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;

use crate::node::Node;

/// Routes of the server API (mounted on the internal listener).
pub fn router() -> Router<Arc<Node>> {
    Router::new().route("/api", post(legacy::handler)).route("/api/{method}", post(method_handler))
}

fn json_response(body: Vec<u8>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn method_handler(
    State(node): State<Arc<Node>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    if !auth::authorized(&node.config(), &headers, &uri) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !methods::is_known(&method) {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let params = match std::str::from_utf8(&body) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => text,
        _ => return (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
    };
    let out = match execute(&node, &method, params, "http").await {
        // batch replies stand at the top level, as Centrifugo (and `cent`) have them.
        Ok(result) if method == "batch" => result,
        Ok(result) => serde_json::json!({ "result": result }),
        Err(error) => serde_json::json!({ "error": error }),
    };
    json_response(serde_json::to_vec(&out).unwrap_or_default())
}
