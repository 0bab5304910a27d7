//! A raw WebSocket client speaking the JSON protocol frame by frame.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single wait lasts before a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// What the server did to end a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Closed {
    /// From the close frame (or its absence: the connection just ended).
    pub fn from_frame(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> Closed {
        match frame {
            Some(f) => Closed { code: u16::from(f.code), reason: f.reason.to_string() },
            None => Closed { code: u16::from(CloseCode::Status), reason: String::new() },
        }
    }
}

pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    next_id: u32,
    /// Frames received so far (to observe batching).
    pub frames: Vec<String>,
}

impl WsClient {
    pub async fn connect(url: &str) -> WsClient {
        Self::connect_request(url.into_client_request().expect("request")).await.expect("websocket connect")
    }

    /// Connects with a custom request (headers such as Origin); the HTTP error on refusal.
    pub async fn connect_request(
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<WsClient, tokio_tungstenite::tungstenite::Error> {
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("websocket connect timed out")?;
        Ok(WsClient { ws, pending: VecDeque::new(), next_id: 1, frames: Vec::new() })
    }

    /// Sends one raw text frame.
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send frame");
    }

    /// Sends a command with the next id; returns the id.
    pub async fn send(&mut self, mut command: Value) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        command["id"] = json!(id);
        self.send_text(&command.to_string()).await;
        id
    }

    /// Sends a command and waits for its reply (pushes that arrive first stay queued).
    pub async fn command(&mut self, command: Value) -> Value {
        let id = self.send(command).await;
        self.reply_to(id).await
    }

    /// Waits for the reply with `id` (other messages stay queued in arrival order).
    pub async fn reply_to(&mut self, id: u32) -> Value {
        loop {
            if let Some(pos) = self.pending.iter().position(|m| m["id"] == json!(id)) {
                return self.pending.remove(pos).unwrap_or_default();
            }
            self.read_frame().await;
        }
    }

    /// The next message (reply, push or ping), in arrival order.
    pub async fn next(&mut self) -> Value {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return m;
            }
            self.read_frame().await;
        }
    }

    /// The next message that is not a server ping.
    pub async fn next_non_ping(&mut self) -> Value {
        loop {
            let m = self.next().await;
            if m != json!({}) {
                return m;
            }
        }
    }

    /// The next `push` (skipping pings and replies).
    pub async fn next_push(&mut self) -> Value {
        loop {
            let m = self.next().await;
            if m.get("push").is_some() {
                return m["push"].clone();
            }
        }
    }

    /// Reads one frame from the socket and queues its messages.
    async fn read_frame(&mut self) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message from server within the wait")
                .expect("connection ended while waiting for a message")
                .expect("websocket error");
            match msg {
                Message::Text(t) => {
                    self.frames.push(t.to_string());
                    for line in t.split('\n') {
                        self.pending.push_back(serde_json::from_str(line).expect("server sent invalid JSON"));
                    }
                    return;
                }
                Message::Close(frame) => panic!("server closed the connection: {frame:?}"),
                _ => {}
            }
        }
    }

    /// Waits for the reply with `id`, or for the server to close the connection instead.
    pub async fn reply_or_closed(&mut self, id: u32) -> Result<Value, Closed> {
        loop {
            if let Some(pos) = self.pending.iter().position(|m| m["id"] == json!(id)) {
                return Ok(self.pending.remove(pos).unwrap_or_default());
            }
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("no reply or close within the wait");
            match msg {
                Some(Ok(Message::Text(t))) => {
                    self.frames.push(t.to_string());
                    for line in t.split('\n') {
                        self.pending.push_back(serde_json::from_str(line).expect("server sent invalid JSON"));
                    }
                }
                Some(Ok(Message::Close(frame))) => return Err(Closed::from_frame(frame)),
                None => return Err(Closed::from_frame(None)),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("websocket error: {e}"),
            }
        }
    }

    /// Waits for the server's close frame, skipping any messages before it.
    pub async fn closed(&mut self) -> Closed {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("connection not closed within the wait");
            match msg {
                Some(Ok(Message::Close(frame))) => return Closed::from_frame(frame),
                None => return Closed::from_frame(None),
                Some(Ok(Message::Text(t))) => self.frames.push(t.to_string()),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("websocket error before close: {e}"),
            }
        }
    }

    /// Asserts nothing but pings arrives within `d`.
    pub async fn quiet_for(&mut self, d: Duration) -> Option<Value> {
        if let Some(m) = self.pending.iter().find(|m| **m != json!({})) {
            return Some(m.clone());
        }
        let until = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    self.frames.push(t.to_string());
                    for line in t.split('\n') {
                        let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                        if v != json!({}) {
                            return Some(v);
                        }
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(other) => return Some(json!({"transport_end": format!("{other:?}")})),
            }
        }
    }
}
