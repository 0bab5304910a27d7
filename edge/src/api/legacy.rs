//! The legacy single endpoint: newline-separated `{"id","method","params"}` commands.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{auth, execute, json_response, methods};
use crate::node::Node;

#[derive(Deserialize)]
struct LegacyCommand {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    method: Option<Value>,
    #[serde(default)]
    params: Option<Box<serde_json::value::RawValue>>,
}

/// Method numbers of the legacy enum.
const NUMBERED: &[(u64, &str)] = &[
    (0, "publish"),
    (1, "broadcast"),
    (2, "unsubscribe"),
    (3, "disconnect"),
    (4, "presence"),
    (5, "presence_stats"),
    (6, "history"),
    (7, "history_remove"),
    (8, "channels"),
    (9, "info"),
    (10, "rpc"),
    (11, "subscribe"),
    (12, "refresh"),
];

pub async fn handler(State(node): State<Arc<Node>>, headers: HeaderMap, uri: Uri, body: Body) -> Response {
    if !auth::authorized(&node.config(), &headers, &uri) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    commands(&node, &headers, body, "http_legacy").await
}

/// Runs the commands of a legacy request body (already authorized) and answers their replies;
/// `protocol` labels the API metrics (`http_legacy`, or `admin` for the admin UI's console).
pub async fn commands(node: &Arc<Node>, headers: &HeaderMap, body: Body, protocol: &str) -> Response {
    let body = match super::read_body(node, headers, body).await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
    };
    let mut commands = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Ok(cmd) = serde_json::from_str::<LegacyCommand>(line) else {
            return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
        };
        // A string names a method (any case); a number is the legacy enum; absent = publish.
        let method = match &cmd.method {
            None | Some(Value::Null) => Ok("publish".to_string()),
            Some(Value::String(s)) => {
                let m = s.to_ascii_lowercase();
                if !methods::is_known(&m) {
                    return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
                }
                Ok(m)
            }
            Some(Value::Number(n)) => {
                NUMBERED.iter().find(|(k, _)| Some(*k) == n.as_u64()).map(|(_, m)| m.to_string()).ok_or(())
            }
            Some(_) => return (StatusCode::BAD_REQUEST, "Bad Request").into_response(),
        };
        commands.push((cmd.id, method, cmd.params));
    }
    if commands.is_empty() {
        return (StatusCode::BAD_REQUEST, "Bad Request").into_response();
    }
    let mut out = Vec::new();
    for (id, method, params) in commands {
        let result = match method {
            Ok(m) => execute(node, &m, params.as_deref().map_or("{}", |p| p.get()), protocol).await,
            Err(()) => Err(methods::ApiError::method_not_found()),
        };
        if !out.is_empty() {
            out.push(b'\n');
        }
        out.extend(super::envelope(Some(id), result));
    }
    json_response(out)
}
