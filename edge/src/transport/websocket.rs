//! Bidirectional WebSocket transport (`/connection/websocket`): JSON in text frames, or
//! Protobuf in binary frames when the client asks for it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};

use crate::connection::{Batch, Outbox};
use crate::node::Node;
use crate::protocol::{Disconnect, Encoding};
use crate::session::{Incoming, Session, TransportInfo};

/// Read buffer per connection; small so idle connections stay cheap (client commands are
/// small; a larger message is read in several chunks).
const READ_BUFFER: usize = 1024;

#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub struct WsQuery {
    format: String,
    cf_protocol: String,
    /// Unidirectional: the connect request (else the first message).
    cf_connect: Option<String>,
}

/// Upgrades an HTTP request to a client connection (`/connection/websocket`).
pub async fn handler(
    State(node): State<Arc<Node>>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let wants_protobuf = query.format == "protobuf"
        || query.cf_protocol == "protobuf"
        || ws.requested_protocols().any(|p| p.as_bytes() == b"centrifuge-protobuf");
    let (encoding, subprotocol) =
        if wants_protobuf { (Encoding::Protobuf, "centrifuge-protobuf") } else { (Encoding::Json, "centrifuge-json") };
    upgrade(node, &headers, ws.protocols([subprotocol]), encoding, None)
}

/// Upgrades to a unidirectional connection (`/connection/uni_websocket`): the connect request
/// in `cf_connect` or as the first message, then pushes only, one per frame.
pub async fn uni_handler(
    State(node): State<Arc<Node>>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let connect = match query.cf_connect {
        Some(request) => match super::http::uni_connect_command(request.as_bytes()) {
            Some(c) => Some(c),
            None => return (StatusCode::BAD_REQUEST, "malformed cf_connect").into_response(),
        },
        None => None,
    };
    upgrade(node, &headers, ws, Encoding::JsonUni, connect)
}

fn upgrade(
    node: Arc<Node>,
    headers: &HeaderMap,
    ws: WebSocketUpgrade,
    encoding: Encoding,
    connect: Option<Bytes>,
) -> Response {
    let config = node.config();
    if node.is_shutting_down() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let limit = config.websocket_message_size_limit;
    let write_timeout = config.websocket_write_timeout.0;
    let queue_limit = config.client_queue_max_size;
    let proxy_headers = node.rules().proxies.forwarded_headers(headers);
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(socket, node, encoding, connect, proxy_headers, queue_limit, write_timeout))
}

async fn serve(
    socket: WebSocket,
    node: Arc<Node>,
    encoding: Encoding,
    connect: Option<Bytes>,
    headers: HeaderMap,
    queue_limit: usize,
    write_timeout: Duration,
) {
    let outbox = Arc::new(Outbox::new(queue_limit));
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(sink, outbox.clone(), encoding, write_timeout));
    let uni = encoding == Encoding::JsonUni;
    let name = if uni { "uni_websocket" } else { "websocket" };
    let mut session =
        Session::new(node, outbox.clone(), TransportInfo { name, encoding, emulation_session: None, headers });
    // A unidirectional client that gave no cf_connect sends its request as the first message.
    let mut awaiting_connect = uni && connect.is_none();
    let messages = stream.map(move |msg| match msg {
        Err(err) => {
            tracing::debug!(%err, "websocket read error");
            Incoming::End(is_capacity_error(err).then(Disconnect::message_too_big))
        }
        Ok(Message::Close(_)) => Incoming::End(None),
        Ok(Message::Ping(_) | Message::Pong(_)) => Incoming::Nothing,
        // Later messages of a unidirectional client are ignored.
        Ok(Message::Text(text)) if uni => {
            if !std::mem::take(&mut awaiting_connect) {
                return Incoming::Nothing;
            }
            match super::http::uni_connect_command(text.as_bytes()) {
                Some(connect) => Incoming::Frame(connect),
                None => Incoming::End(Some(Disconnect::bad_request())),
            }
        }
        Ok(Message::Text(text)) if encoding == Encoding::Json => Incoming::Frame(Bytes::from(text)),
        Ok(Message::Binary(frame)) if encoding == Encoding::Protobuf => Incoming::Frame(frame),
        Ok(Message::Text(_) | Message::Binary(_)) => Incoming::End(Some(Disconnect::bad_request())),
    });
    // A connect request from the query comes first, as if it were the first message.
    let mut incoming = futures_util::stream::iter(connect.map(Incoming::Frame)).chain(messages);
    let disconnect = session.drive(&mut incoming).await;
    Box::pin(session.close(disconnect)).await;
    // The writer flushes what is queued, sends the close frame and ends.
    if tokio::time::timeout(Duration::from_secs(5), writer).await.is_err() {
        tracing::debug!("websocket writer did not finish in time");
    }
}

/// Drains the outbox: every batch becomes one frame (text for JSON, binary for Protobuf);
/// unidirectional clients get one push per frame.
async fn write_loop(
    mut sink: SplitSink<WebSocket, Message>,
    outbox: Arc<Outbox>,
    encoding: Encoding,
    write_timeout: Duration,
) {
    loop {
        let messages = match outbox.next_batch().await {
            Batch::Messages(messages) => messages,
            Batch::Close(d) => {
                if d.code != 3000 {
                    let frame = CloseFrame { code: d.code as u16, reason: Utf8Bytes::from(truncate_reason(&d.reason)) };
                    let sent = tokio::time::timeout(write_timeout, sink.send(Message::Close(Some(frame)))).await;
                    tracing::debug!(code = d.code, ?sent, "close frame sent");
                }
                let _ = tokio::time::timeout(write_timeout, sink.close()).await;
                return;
            }
        };
        // One send site for every frame: each await point of this loop costs every
        // connection its space.
        for frame in frames(encoding, messages) {
            if !send_within(&mut sink, frame, write_timeout).await {
                outbox.close(Disconnect::write_error());
                return;
            }
        }
    }
}

/// The frames of a batch: one joined frame, or one per push for unidirectional clients.
fn frames(encoding: Encoding, messages: Vec<Bytes>) -> Vec<Message> {
    let text = |bytes: Bytes| match Utf8Bytes::try_from(bytes) {
        Ok(t) => Some(Message::Text(t)),
        Err(_) => {
            tracing::error!("non-UTF-8 JSON frame dropped");
            None
        }
    };
    match encoding {
        Encoding::JsonUni => messages.into_iter().filter_map(text).collect(),
        // Not served over WebSocket; one binary frame per push if it were.
        Encoding::ProtobufUni => messages.into_iter().map(Message::Binary).collect(),
        Encoding::Protobuf => vec![Message::Binary(encoding.join(messages))],
        Encoding::Json => text(encoding.join(messages)).into_iter().collect(),
    }
}

/// Sends one frame; a timer is armed only when the socket does not take it at once, so the
/// common case costs no timer registration.
async fn send_within(sink: &mut SplitSink<WebSocket, Message>, msg: Message, limit: Duration) -> bool {
    let send = sink.send(msg);
    tokio::pin!(send);
    match futures_util::poll!(send.as_mut()) {
        std::task::Poll::Ready(r) => r.is_ok(),
        std::task::Poll::Pending => matches!(tokio::time::timeout(limit, send).await, Ok(Ok(()))),
    }
}

/// Whether a read failed because a message exceeded the size limit.
fn is_capacity_error(err: axum::Error) -> bool {
    matches!(err.into_inner().downcast_ref::<tungstenite::Error>(), Some(tungstenite::Error::Capacity(_)))
}

/// Close reasons are limited to 123 bytes by RFC 6455.
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}
