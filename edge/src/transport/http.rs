//! Transports over plain HTTP responses that stay open.
//!
//! Bidirectional emulation, the fallback transports of centrifuge-js: the client opens a
//! stream (`POST /connection/http_stream`, JSON or Protobuf; `GET|POST /connection/sse`, JSON)
//! carrying its connect command, the server streams replies and pushes down it, and every later
//! command arrives as `POST /emulation` naming the session — on any node: one that does not
//! serve the session hands it on through the engine.
//!
//! Unidirectional (`/connection/uni_http_stream`, `/connection/uni_sse`): the client sends a
//! connect request once and only receives pushes, unwrapped.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use bytes::{BufMut, BytesMut};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::emulation::Sessions;
use crate::connection::{Batch, Outbox};
use crate::node::Node;
use crate::protocol::{Disconnect, Encoding, Push, PushBody, Reply};
use crate::session::{Incoming, Session, TransportInfo};

/// How a stream frames what the session sends.
#[derive(Clone, Copy)]
enum Framing {
    /// HTTP-streaming: JSON lines, or varint-delimited Protobuf.
    Stream(Encoding),
    /// SSE: `data: <json>` events.
    Sse(Encoding),
}

impl Framing {
    fn encoding(self) -> Encoding {
        match self {
            Self::Stream(e) | Self::Sse(e) => e,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Self::Stream(Encoding::Protobuf) => "application/octet-stream",
            Self::Stream(_) => "application/json",
            Self::Sse(_) => "text/event-stream; charset=utf-8",
        }
    }

    /// One write of queued messages.
    fn frame(self, messages: Vec<Bytes>) -> Bytes {
        let mut buf = BytesMut::with_capacity(messages.iter().map(|m| m.len() + 8).sum());
        for m in messages {
            match self {
                Self::Stream(Encoding::Protobuf) => buf.put_slice(&m),
                Self::Stream(_) => {
                    buf.put_slice(&m);
                    buf.put_u8(b'\n');
                }
                Self::Sse(_) => {
                    buf.put_slice(b"data: ");
                    buf.put_slice(&m);
                    buf.put_slice(b"\n\n");
                }
            }
        }
        buf.freeze()
    }
}

fn no_cache(mut resp: Response, content_type: &'static str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-cache, no-store, must-revalidate, max-age=0"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn refuse(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

/// The method gate of a POST endpoint: 204 for OPTIONS (browser preflights were answered by
/// the origin gate, [`super::cors`]), 405 for anything but POST, `None` to go on.
pub(super) fn post_only(method: &Method, what: &'static str) -> Option<Response> {
    if *method == Method::OPTIONS {
        return Some(options());
    }
    (*method != Method::POST).then(|| refuse(StatusCode::METHOD_NOT_ALLOWED, what))
}

/// What an SSE client sent: `cf_connect` of a GET (inner `None` without one) or a POST body;
/// `None` for any other method.
fn sse_request(method: &Method, query: SseQuery, body: Bytes) -> Option<Option<Bytes>> {
    match *method {
        Method::GET => Some(query.cf_connect.map(Bytes::from)),
        Method::POST => Some(Some(body)),
        _ => None,
    }
}

fn not_get_or_post() -> Response {
    refuse(StatusCode::METHOD_NOT_ALLOWED, "GET or POST a connect request")
}

/// Answers a plain OPTIONS request for a POST endpoint.
fn options() -> Response {
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"));
    resp
}

pub(super) fn is_protobuf(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/octet-stream"))
}

/// `POST /connection/http_stream`: the body is the connect command (Content-Type selects JSON
/// or Protobuf); the response streams replies.
pub async fn http_stream(
    State(node): State<Arc<Node>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(resp) = post_only(&method, "POST a connect command") {
        return resp;
    }
    let limit = node.config().http_stream_max_request_body_size;
    let body = match read_body(&node, &headers, body, limit, "http_stream").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let encoding = if is_protobuf(&headers) { Encoding::Protobuf } else { Encoding::Json };
    open(node, Some(&sessions), &headers, body, limit, Framing::Stream(encoding), "http_stream", None)
}

/// A request body under `limit` and `http_body_timeout`; the refusal as a response.
pub(super) async fn read_body(
    node: &Node,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    endpoint: &'static str,
) -> Result<Bytes, Response> {
    let timeout = node.config().http_body_timeout.0;
    crate::listener::body::read(headers, body, limit, timeout, endpoint, &node.metrics)
        .await
        .map_err(IntoResponse::into_response)
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct SseQuery {
    cf_connect: Option<String>,
}

/// `GET /connection/sse?cf_connect=<connect command>` (or `POST` with it as the body).
pub async fn sse(
    State(node): State<Arc<Node>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    method: Method,
    Query(query): Query<SseQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = node.config().sse_max_request_body_size;
    let body = match read_body(&node, &headers, body, limit, "sse").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match sse_request(&method, query, body) {
        Some(Some(connect)) => {
            open(node, Some(&sessions), &headers, connect, limit, Framing::Sse(Encoding::Json), "sse", None)
        }
        Some(None) => refuse(StatusCode::BAD_REQUEST, "cf_connect query parameter required"),
        None => not_get_or_post(),
    }
}

/// `POST /connection/uni_http_stream` with a JSON connect request (may be `{}`): pushes as
/// JSON lines.
pub async fn uni_http_stream(
    State(node): State<Arc<Node>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(resp) = post_only(&method, "POST a connect request") {
        return resp;
    }
    let limit = node.config().uni_http_stream_max_request_body_size;
    let body = match read_body(&node, &headers, body, limit, "uni_http_stream").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    match uni_connect_command(&body) {
        Some(connect) => {
            open(node, None, &headers, connect, usize::MAX, Framing::Stream(Encoding::JsonUni), "uni_http_stream", None)
        }
        None => refuse(StatusCode::BAD_REQUEST, "malformed connect request"),
    }
}

/// `GET /connection/uni_sse[?cf_connect=<connect request>]` or `POST` with it as the body.
pub async fn uni_sse(
    State(node): State<Arc<Node>>,
    method: Method,
    Query(query): Query<SseQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = node.config().uni_sse_max_request_body_size;
    let body = match read_body(&node, &headers, body, limit, "uni_sse").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let Some(request) = sse_request(&method, query, body) else { return not_get_or_post() };
    let request = request.unwrap_or_default();
    if request.len() > limit {
        return crate::listener::body::BodyError::TooLarge(limit).into_response();
    }
    match uni_connect_command(&request) {
        Some(connect) => {
            open(node, None, &headers, connect, usize::MAX, Framing::Sse(Encoding::JsonUni), "uni_sse", None)
        }
        None => refuse(StatusCode::BAD_REQUEST, "malformed connect request"),
    }
}

/// A unidirectional client's connect request (a JSON object; empty means `{}`) as a connect
/// command, its text kept as it is (the `data` payload stays byte-exact).
pub fn uni_connect_command(request: &[u8]) -> Option<Bytes> {
    let text = if request.iter().all(u8::is_ascii_whitespace) {
        "{}"
    } else {
        let raw: &serde_json::value::RawValue = serde_json::from_slice(request).ok()?;
        raw.get()
    };
    // Raw newlines in valid JSON are whitespace; the command must stay one line of the JSON
    // protocol.
    let text = text.replace(['\n', '\r'], " ");
    text.starts_with('{').then(|| Bytes::from(format!(r#"{{"id":1,"connect":{text}}}"#)))
}

/// Starts a session for a stream and returns the streaming response.
/// `limit` caps the connect command (a GET's query parameter was not read as a body).
/// `preset` authenticates the connect for the server's own streams (user, channels).
/// Opens a stream; bidirectional ones register a session in `sessions` (unidirectional
/// ones pass `None`: nothing is ever posted for them).
#[allow(clippy::too_many_arguments)]
fn open(
    node: Arc<Node>,
    sessions: Option<&Arc<Sessions>>,
    headers: &HeaderMap,
    connect: Bytes,
    limit: usize,
    framing: Framing,
    name: &'static str,
    preset: Option<(&str, Vec<String>)>,
) -> Response {
    let config = node.config();
    if node.is_shutting_down() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    if connect.len() > limit {
        return crate::listener::body::BodyError::TooLarge(limit).into_response();
    }
    // Bidirectional streams get a session id their posted commands are routed by.
    let emulation = sessions.map(|sessions| {
        let (id, rx) = sessions.open();
        (sessions.clone(), id, rx)
    });
    let outbox = Arc::new(Outbox::new(config.client_queue_max_size));
    let transport = TransportInfo {
        name,
        encoding: framing.encoding(),
        emulation_session: emulation.as_ref().map(|(_, id, _)| id.clone()),
        headers: node.rules().proxies.forwarded_headers(headers),
    };
    let mut session = Session::new(node.clone(), outbox.clone(), transport);
    if let Some((user, channels)) = preset {
        session = session.preset(user, channels);
    }
    tokio::spawn(run(session, connect, emulation));
    let stream = futures_util::stream::unfold(
        Some(StreamState { outbox: outbox.clone(), framing, started: false, _guard: CloseOnDrop(outbox) }),
        next_chunk,
    );
    no_cache(Response::new(Body::from_stream(stream)), framing.content_type())
}

/// The admin UI's live tail: a unidirectional JSON stream of `channel` for `user`, subscribed
/// by the server (the caller checked the admin session).
pub fn server_stream(node: Arc<Node>, user: &str, channel: String) -> Response {
    let connect = Bytes::from_static(br#"{"id":1,"connect":{}}"#);
    let headers = HeaderMap::new();
    open(
        node,
        None,
        &headers,
        connect,
        usize::MAX,
        Framing::Stream(Encoding::JsonUni),
        "admin_tail",
        Some((user, vec![channel])),
    )
}

/// Closes the session when the response is dropped (the client went away).
pub(super) struct CloseOnDrop(pub(super) Arc<Outbox>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.close(Disconnect { code: 3000, reason: "connection closed".into() });
    }
}

struct StreamState {
    outbox: Arc<Outbox>,
    framing: Framing,
    started: bool,
    _guard: CloseOnDrop,
}

/// The next chunk of the response: queued messages, or the disconnect push and the end.
async fn next_chunk(state: Option<StreamState>) -> Option<(Result<Bytes, Infallible>, Option<StreamState>)> {
    let mut st = state?;
    if !st.started && matches!(st.framing, Framing::Sse(_)) {
        st.started = true;
        return Some((Ok(Bytes::from_static(b"\r\n")), Some(st)));
    }
    match st.outbox.next_batch().await {
        Batch::Messages(messages) => {
            let chunk = st.framing.frame(messages);
            Some((Ok(chunk), Some(st)))
        }
        Batch::Close(d) if d.code != 3000 => {
            let push = Reply::push(Push { channel: String::new(), body: PushBody::Disconnect(d) });
            let chunk = st.framing.frame(vec![st.framing.encoding().encode_reply(&push)]);
            Some((Ok(chunk), None))
        }
        Batch::Close(_) => None,
    }
}

/// The session of a stream: the connect command first, then (bidirectional) posted frames.
pub(super) async fn run(
    mut session: Session,
    connect: Bytes,
    emulation: Option<(Arc<Sessions>, Arc<str>, mpsc::Receiver<Bytes>)>,
) {
    let (registered, mut frames) = match emulation {
        Some((sessions, id, rx)) => (Some((sessions, id)), Some(rx)),
        None => (None, None),
    };
    let mut disconnect = Box::pin(session.handle_frame(&connect)).await.err();
    if disconnect.is_none() {
        let mut incoming = match frames.take() {
            Some(rx) => futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|frame| (Incoming::Frame(frame), rx))
            })
            .boxed(),
            // Unidirectional: nothing ever comes in.
            None => futures_util::stream::pending().boxed(),
        };
        disconnect = session.drive(&mut incoming).await;
    }
    if let Some((sessions, id)) = registered {
        sessions.remove(&id);
    }
    Box::pin(session.close(disconnect)).await;
}
