//! Request bodies read under a size cap and a deadline, both enforced while reading: a body
//! that is too large is refused at the cap (413; up to 1 MiB more is read and dropped so the
//! sender sees the answer), one that trickles in is cut at the deadline (408). Errors are JSON, as every HTTP error of Gyre's.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;

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
/// the limit is refused without keeping anything. Refusals are counted in
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

/// After refusing a body as too large, up to this much more of it is read and thrown away so
/// the client, still sending, reads the 413 instead of a reset connection (a lingering close).
const DRAIN_CAP: u64 = 1 << 20;
/// The longest that drain takes.
const DRAIN_WAIT: Duration = Duration::from_secs(1);

async fn read_inner(headers: &HeaderMap, body: Body, limit: usize, timeout: Duration) -> Result<Bytes, BodyError> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let cap = u64::try_from(limit).unwrap_or(u64::MAX);
    if let Some(n) = declared.filter(|n| *n > cap) {
        // A small excess is read and dropped; a huge one is refused without reading.
        if n <= DRAIN_CAP {
            drain(body, DRAIN_CAP).await;
        }
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = body;
    match tokio::time::timeout(timeout, collect_limited(&mut body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(BodyError::TooLarge(_))) => {
            drain(body, DRAIN_CAP).await;
            Err(BodyError::TooLarge(limit))
        }
        Ok(Err(e)) => Err(e),
        Err(_) => Err(BodyError::Timeout),
    }
}

/// The body's data frames concatenated, refused as soon as they pass `limit` bytes.
async fn collect_limited(body: &mut Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit.saturating_sub(out.len()) {
                return Err(BodyError::TooLarge(limit));
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out.freeze())
}

/// Reads and discards at most `cap` bytes of what is left of `body`, for at most `DRAIN_WAIT`.
async fn drain(mut body: Body, cap: u64) {
    let discard = async {
        let mut seen: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len() as u64);
                if seen > cap {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_WAIT, discard).await;
}
