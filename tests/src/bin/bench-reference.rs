//! The reference point of BENCHMARKS.md: the least a server must do to broadcast over
//! WebSocket with tokio-tungstenite (via axum): answer the Centrifugo connect and subscribe
//! commands, and on `POST /api/publish` encode the push once and hand the same bytes to every
//! subscriber's queue, whose writer sends everything queued as one frame. No auth, no
//! history, no limits: what Gyre costs above this is the price of its features.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::routing::{any, post};
use axum::Router;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use parking_lot::RwLock;
use tokio::sync::mpsc;

type Subscribers = Arc<RwLock<HashMap<String, Vec<mpsc::UnboundedSender<Bytes>>>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8100".into());
    let subs: Subscribers = Arc::default();
    let app = Router::new()
        .route("/connection/websocket", any(upgrade))
        .route("/api/publish", post(publish))
        .with_state(subs);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("reference server on {addr}");
    axum::serve(listener, app).await?;
    Ok(())
}

async fn upgrade(State(subs): State<Subscribers>, ws: WebSocketUpgrade) -> axum::response::Response {
    ws.read_buffer_size(4096).write_buffer_size(0).on_upgrade(move |socket| serve(socket, subs))
}

async fn serve(socket: WebSocket, subs: Subscribers) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut frame = BytesMut::from(&first[..]);
            while let Ok(next) = rx.try_recv() {
                frame.extend_from_slice(b"\n");
                frame.extend_from_slice(&next);
            }
            let Ok(text) = Utf8Bytes::try_from(frame.freeze()) else { continue };
            if sink.send(Message::Text(text)).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(Message::Text(text))) = stream.next().await {
        for line in text.split('\n') {
            let Ok(cmd) = serde_json::from_str::<serde_json::Value>(line) else { continue };
            let id = cmd["id"].as_u64().unwrap_or(0);
            if cmd.get("connect").is_some() {
                let reply = format!(r#"{{"id":{id},"connect":{{"client":"ref","version":"ref","ping":25}}}}"#);
                let _ = tx.send(Bytes::from(reply));
            } else if let Some(ch) = cmd["subscribe"]["channel"].as_str() {
                subs.write().entry(ch.to_string()).or_default().push(tx.clone());
                let _ = tx.send(Bytes::from(format!(r#"{{"id":{id},"subscribe":{{}}}}"#)));
            }
        }
    }
    drop(tx);
    writer.abort();
}

async fn publish(State(subs): State<Subscribers>, body: Bytes) -> &'static str {
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(&body) else { return r#"{"error":{"code":107}}"# };
    let channel = req["channel"].as_str().unwrap_or("");
    let push = Bytes::from(format!(r#"{{"push":{{"channel":"{channel}","pub":{{"data":{}}}}}}}"#, req["data"]));
    let mut subs = subs.write();
    if let Some(list) = subs.get_mut(channel) {
        list.retain(|tx| tx.send(push.clone()).is_ok());
    }
    r#"{"result":{}}"#
}
