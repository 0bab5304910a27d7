//! Server HTTP API: `POST /api/<method>` and the legacy `POST /api` envelope, thin over the
//! node.

mod auth;
mod legacy;
mod methods;

pub use legacy::commands as legacy_commands;
pub use methods::{execute, ApiError, Reply};

use std::sync::Arc;

use axum::body::{Body, Bytes};
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

/// The request body, read under `api_max_request_body_size` and `http_body_timeout`.
async fn read_body(node: &Node, headers: &HeaderMap, body: Body) -> Result<Bytes, Response> {
    let config = node.config();
    let (limit, timeout) = (config.api_max_request_body_size, config.http_body_timeout.0);
    crate::listener::body::read(headers, body, limit, timeout, "api", &node.metrics)
        .await
        .map_err(IntoResponse::into_response)
}

fn json_response(body: Vec<u8>) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn method_handler(
    State(node): State<Arc<Node>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> Response {
    if !auth::authorized(&node.config(), &headers, &uri) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !methods::is_known(&method) {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    }
    let body = match read_body(&node, &headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let params = match std::str::from_utf8(&body) {
        Ok(text) if serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() => text,
        _ => return (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
    };
    let out = match execute(&node, &method, params, "http").await {
        // batch replies stand at the top level, as Centrifugo (and `cent`) have them.
        Ok(result) if method == "batch" => result.get().as_bytes().to_vec(),
        out => envelope(None, out),
    };
    json_response(out)
}

/// `{"id": …, "result": …}` or `{"id": …, "error": …}` (no `id` when 0 or absent), with the
/// result's text written as it is.
fn envelope(id: Option<u32>, out: Result<Reply, ApiError>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Envelope {
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<Reply>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<ApiError>,
    }
    let (result, error) = match out {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    serde_json::to_vec(&Envelope { id: id.filter(|id| *id != 0), result, error }).unwrap_or_default()
}
