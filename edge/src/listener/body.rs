//! Request bodies read under a size cap and a deadline, both enforced while reading: a body
//! that is too large stops being read at the cap (413), one that trickles in is cut at the
//! deadline (408). Errors are JSON, as every HTTP error of Gyre's.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::metrics::Metrics;

/// Why a body was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the limit (bytes).
    TooLarge(usize),
    /// Not complete within the deadline.
    Timeout,
    /// The connection failed while reading.
    Broken,
}

impl BodyError {
    fn reason(self) -> &'static str {
        match self {
            Self::TooLarge(_) => "body_too_large",
            Self::Timeout => "body_timeout",
            Self::Broken => "body_broken",
        }
    }
}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            Self::TooLarge(limit) => {
                (StatusCode::PAYLOAD_TOO_LARGE, serde_json::json!({"error": "request body too large", "limit": limit}))
            }
            Self::Timeout => {
                (StatusCode::REQUEST_TIMEOUT, serde_json::json!({"error": "request body not received in time"}))
            }
            Self::Broken => (StatusCode::BAD_REQUEST, serde_json::json!({"error": "request body could not be read"})),
        };
        json_error(status, body)
    }
}

/// A JSON error response.
pub fn json_error(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// Reads `body` whole: at most `limit` bytes within `timeout`. A declared Content-Length over
/// the limit is refused before anything is read. Refusals are counted in
/// `gyre_http_body_refused_total{endpoint,reason}`.
pub async fn read(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
    endpoint: &'static str,
    metrics: &Metrics,
) -> Result<Bytes, BodyError> {
    let result = read_inner(headers, body, limit, timeout).await;
    if let Err(e) = result {
        metrics.body_refused.with_label_values(&[endpoint, e.reason()]).inc();
    }
    result
}

async fn read_inner(headers: &HeaderMap, body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(BodyError::TooLarge(limit));
    }
    match tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Ok(Err(_)) => Err(BodyError::Broken),
        Err(_) => Err(BodyError::Timeout),
    }
}
