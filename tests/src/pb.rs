//! A raw WebSocket client speaking the Protobuf protocol (binary frames of length-delimited
//! messages), with the messages this package generates from `proto/`.

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::ws::{Closed, WAIT};

/// The client protocol's messages (`proto/client.proto`).
#[allow(clippy::all, missing_docs)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifuge.protocol.rs"));
}

/// The server API's messages and client (`proto/api.proto`).
#[allow(clippy::all, missing_docs)]
pub mod api {
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.api.rs"));
}

/// The proxy API's messages and server trait (`proto/proxy.proto`), for test backends.
#[allow(clippy::all, missing_docs)]
pub mod proxy {
    include!(concat!(env!("OUT_DIR"), "/centrifugal.centrifugo.proxy.rs"));
}

pub struct PbClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<proto::Reply>,
    next_id: u32,
    /// The subprotocol the server accepted.
    pub subprotocol: Option<String>,
}

impl PbClient {
    /// Connects to `ws_url` asking for Protobuf as the SDKs do: the `cf_protocol` query
    /// parameter and the `centrifuge-protobuf` subprotocol.
    pub async fn connect(ws_url: &str) -> PbClient {
        Self::connect_with(ws_url, true).await
    }

    /// Connects with the query parameter, and the subprotocol only when `subprotocol`.
    pub async fn connect_with(ws_url: &str, subprotocol: bool) -> PbClient {
        let mut request = format!("{ws_url}?cf_protocol=protobuf").into_client_request().expect("request");
        if subprotocol {
            request.headers_mut().insert("sec-websocket-protocol", HeaderValue::from_static("centrifuge-protobuf"));
        }
        let (ws, resp) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("websocket connect timed out")
            .expect("websocket connect");
        let subprotocol =
            resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_string);
        PbClient { ws, pending: VecDeque::new(), next_id: 1, subprotocol }
    }

    /// Sends raw bytes as one binary frame.
    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.ws.send(Message::binary(bytes)).await.expect("send frame");
    }

    /// Sends one raw text frame (a protocol violation on a Protobuf connection).
    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send frame");
    }

    /// Sends several commands in one frame, numbering them; returns their ids.
    pub async fn send(&mut self, commands: Vec<proto::Command>) -> Vec<u32> {
        let mut ids = Vec::new();
        let mut frame = Vec::new();
        for mut c in commands {
            if c != proto::Command::default() {
                c.id = self.next_id;
                self.next_id += 1;
                ids.push(c.id);
            }
            frame.extend(c.encode_length_delimited_to_vec());
        }
        self.send_binary(frame).await;
        ids
    }

    /// Sends a command and waits for its reply.
    pub async fn command(&mut self, command: proto::Command) -> proto::Reply {
        let id = self.send(vec![command]).await[0];
        self.reply_to(id).await
    }

    /// Waits for the reply with `id` (other messages stay queued).
    pub async fn reply_to(&mut self, id: u32) -> proto::Reply {
        loop {
            if let Some(pos) = self.pending.iter().position(|m| m.id == id) {
                return self.pending.remove(pos).unwrap_or_default();
            }
            if let Err(closed) = self.read_frame().await {
                panic!("server closed the connection: {closed:?}");
            }
        }
    }

    /// The next message, in arrival order (a server ping is an empty reply).
    pub async fn next(&mut self) -> proto::Reply {
        loop {
            if let Some(m) = self.pending.pop_front() {
                return m;
            }
            if let Err(closed) = self.read_frame().await {
                panic!("server closed the connection: {closed:?}");
            }
        }
    }

    /// The next push (skipping pings and replies).
    pub async fn next_push(&mut self) -> proto::Push {
        loop {
            if let Some(push) = self.next().await.push {
                return push;
            }
        }
    }

    /// Waits for the server's close frame, skipping messages before it.
    pub async fn closed(&mut self) -> Closed {
        loop {
            if let Err(closed) = self.read_frame().await {
                return closed;
            }
        }
    }

    /// Reads one frame and queues its messages; the close frame as an error.
    async fn read_frame(&mut self) -> Result<(), Closed> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next()).await.expect("no message from server within the wait");
            match msg {
                Some(Ok(Message::Binary(mut frame))) => {
                    while !frame.is_empty() {
                        let reply =
                            proto::Reply::decode_length_delimited(&mut frame).expect("server sent invalid protobuf");
                        self.pending.push_back(reply);
                    }
                    return Ok(());
                }
                Some(Ok(Message::Text(t))) => panic!("text frame on a protobuf connection: {t}"),
                Some(Ok(Message::Close(frame))) => return Err(Closed::from_frame(frame)),
                None => return Err(Closed::from_frame(None)),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("websocket error: {e}"),
            }
        }
    }
}

/// `connect` with a token.
pub fn connect(token: &str) -> proto::Command {
    proto::Command {
        connect: Some(proto::ConnectRequest { token: token.to_string(), ..Default::default() }),
        ..Default::default()
    }
}

/// `subscribe` to a channel with optional recovery from `since`.
pub fn subscribe(channel: &str, since: Option<(u64, &str)>) -> proto::Command {
    let mut req = proto::SubscribeRequest { channel: channel.to_string(), ..Default::default() };
    if let Some((offset, epoch)) = since {
        req.recover = true;
        req.offset = offset;
        req.epoch = epoch.to_string();
    }
    proto::Command { subscribe: Some(req), ..Default::default() }
}

/// `publish` of raw data bytes.
pub fn publish(channel: &str, data: &[u8]) -> proto::Command {
    proto::Command {
        publish: Some(proto::PublishRequest { channel: channel.to_string(), data: data.to_vec(), r#type: 0 }),
        ..Default::default()
    }
}
