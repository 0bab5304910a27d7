//! Bidirectional emulation's return path: the sessions of this node's HTTP-streaming and SSE
//! connections by id, and `POST /emulation`, which hands a posted frame of commands to its
//! session here or forwards it through the engine to the node serving it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::sync::mpsc;

use super::http::{is_protobuf, post_only, read_body};
use crate::internode::UserCommand;
use crate::node::{EmulationInbox, Node};
use crate::protocol::proto;

/// Posted frames waiting for one session.
const FRAME_QUEUE: usize = 64;

/// What became of a frame posted for an emulated connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// The connection has too many frames waiting: the client sends faster than it is served.
    Busy,
    /// No such connection on this node.
    NotHere,
}

/// This node's emulated connections by session id: where their posted frames go.
#[derive(Default)]
pub struct Sessions {
    senders: Mutex<HashMap<Arc<str>, mpsc::Sender<Bytes>>>,
}

impl Sessions {
    /// Registers a new session; its frames arrive on the receiver until [`Sessions::remove`].
    pub fn open(&self) -> (Arc<str>, mpsc::Receiver<Bytes>) {
        let id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
        let (tx, rx) = mpsc::channel(FRAME_QUEUE);
        self.senders.lock().insert(id.clone(), tx);
        (id, rx)
    }

    pub fn remove(&self, session: &str) {
        self.senders.lock().remove(session);
    }

    /// Hands a posted frame to the session if it lives on this node.
    pub fn deliver(&self, session: &str, frame: Bytes) -> Delivery {
        let Some(sender) = self.senders.lock().get(session).cloned() else { return Delivery::NotHere };
        match sender.try_send(frame) {
            Ok(()) => Delivery::Delivered,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Busy,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::NotHere,
        }
    }
}

impl EmulationInbox for Sessions {
    fn deliver_forwarded(&self, session: &str, frame: Bytes) {
        // A forwarded frame has no one to answer: a busy or gone session drops it, as a
        // frame posted here directly would have been refused or ignored.
        let _ = self.deliver(session, frame);
    }
}

/// `POST /emulation`: a frame of commands for a session's connection (JSON
/// `{"session","node","data"}` with `data` the newline-joined commands, or a Protobuf
/// `EmulationRequest`). The frame goes to the node named in the request alone: this one, or
/// another live node over its own engine subject. 204 whether or not the session still
/// exists; 400 for a malformed request or node id, 404 for a node that is not live, 429 over
/// `emulation_ip_rate_limit`.
pub async fn handler(
    State(node): State<Arc<Node>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    ConnectInfo(peer): ConnectInfo<std::net::SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(resp) = post_only(&method, "POST commands") {
        return resp;
    }
    if !node.emulation_limiter.check(peer.ip()) {
        node.metrics.body_refused.with_label_values(&["emulation", "ip_rate_limit"]).inc();
        return json_error(StatusCode::TOO_MANY_REQUESTS, "too many emulation requests from this address");
    }
    let limit = node.config().emulation_max_request_body_size;
    let body = match read_body(&node, &headers, body, limit, "emulation").await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let EmulationBody { session, node: target_node, frame } = match decode_emulation(&body, is_protobuf(&headers)) {
        Ok(b) => b,
        Err(message) => return json_error(StatusCode::BAD_REQUEST, message),
    };
    if target_node == node.id {
        return match sessions.deliver(&session, frame) {
            Delivery::Busy => json_error(StatusCode::TOO_MANY_REQUESTS, "too many commands waiting for this session"),
            Delivery::Delivered | Delivery::NotHere => StatusCode::NO_CONTENT.into_response(),
        };
    }
    if uuid::Uuid::try_parse(&target_node).is_err() {
        return json_error(StatusCode::BAD_REQUEST, "malformed node id");
    }
    match node.nodes().await {
        Ok(nodes) if nodes.iter().any(|n| n.uid == target_node) => {}
        Ok(_) => return json_error(StatusCode::NOT_FOUND, "node not found"),
        Err(_) => return json_error(StatusCode::SERVICE_UNAVAILABLE, "cannot reach the session's node"),
    }
    let data = base64::engine::general_purpose::STANDARD.encode(&frame);
    if let Err(code) = node.node_command(&target_node, UserCommand::Emulation { session, data }).await {
        tracing::debug!(%code, "emulation frame not forwarded");
        return json_error(StatusCode::SERVICE_UNAVAILABLE, "cannot reach the session's node");
    }
    StatusCode::NO_CONTENT.into_response()
}

fn json_error(status: StatusCode, message: &str) -> Response {
    crate::listener::body::json_error(status, serde_json::json!({ "error": message }))
}

#[derive(serde::Deserialize)]
struct JsonEmulation {
    session: String,
    #[serde(default)]
    node: String,
    data: String,
}

/// One emulation POST: the command frame for `session`, which lives on `node`.
#[derive(Debug, PartialEq, Eq)]
pub struct EmulationBody {
    pub session: String,
    pub node: String,
    pub frame: Bytes,
}

/// Decodes an emulation POST body (Protobuf `EmulationRequest` or its JSON form); `Err` is
/// the 400 answer's message. Pure, so the fuzzer can reach it.
pub fn decode_emulation(body: &[u8], protobuf: bool) -> Result<EmulationBody, &'static str> {
    if protobuf {
        let r = proto::EmulationRequest::decode(body).map_err(|_| "malformed EmulationRequest")?;
        Ok(EmulationBody { session: r.session, node: r.node, frame: Bytes::from(r.data) })
    } else {
        let r =
            serde_json::from_slice::<JsonEmulation>(body).map_err(|_| "expected {\"session\",\"node\",\"data\"}")?;
        Ok(EmulationBody { session: r.session, node: r.node, frame: Bytes::from(r.data) })
    }
}
