//! The load's WebSocket clients: connect, subscribe, then count publications and record
//! their latency from the embedded send time.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::pb::proto;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use prost::Message as _;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{Options, Protocol};

/// What all clients saw.
pub struct Stats {
    delivered: AtomicU64,
    latency_us: Mutex<Histogram<u64>>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            delivered: AtomicU64::new(0),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds")),
        }
    }
}

impl Stats {
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn latencies(&self) -> Histogram<u64> {
        self.latency_us.lock().clone()
    }

    /// Adds what another process's clients saw (several load processes, one report).
    pub fn merge(&self, delivered: u64, latency_us: &[(u64, u64)]) {
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        let mut hist = self.latency_us.lock();
        for &(value, count) in latency_us {
            let _ = hist.record_n(value, count);
        }
    }

    /// The recorded latencies as (value µs, count) pairs, for [`Stats::merge`] elsewhere.
    pub fn latency_counts(&self) -> Vec<(u64, u64)> {
        self.latency_us.lock().iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    }
}

pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Finds `"t":<digits>` in a publication push without parsing the whole JSON (also inside
/// a JSON-encoded string, `\"t\":`, as Pusher sends data).
fn sent_at(line: &str) -> Option<u64> {
    let i = match line.find("\"t\":") {
        Some(i) => i + 4,
        None => line.find("\\\"t\\\":")? + 6,
    };
    let digits: &str = &line[i..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// Live clients; dropping it closes them.
pub struct Clients(Vec<JoinHandle<()>>);

impl Drop for Clients {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

fn token(secret: &str, user: &str) -> String {
    if secret.is_empty() {
        return String::new();
    }
    gyre_edge::auth::mint_connection_token(secret, user, Some(3600), serde_json::Value::Null).unwrap_or_default()
}

/// Opens every connection (bounded concurrency) and waits until all are subscribed.
pub async fn open_all(o: &Options, sources: &[IpAddr], stats: Arc<Stats>) -> anyhow::Result<Clients> {
    // Clients spread round robin over the servers (several nodes: comma-separated URLs).
    let mut targets: Vec<(String, SocketAddr)> = Vec::new();
    for ws in o.ws.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = url::Url::parse(ws)?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_string();
        let port = url.port().unwrap_or(80);
        targets.push((ws.to_string(), format!("{host}:{port}").parse()?));
    }
    anyhow::ensure!(!targets.is_empty(), "--ws names no server");
    let sem = Arc::new(tokio::sync::Semaphore::new(o.connect_concurrency.max(1)));
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    // This process's share of the clients: every `count`-th from `index` (one process: all).
    let (index, count) = o.share();
    let mine: Vec<usize> = (index..o.connections).step_by(count).collect();
    let mut tasks = Vec::with_capacity(mine.len());
    for &i in &mine {
        let permit = sem.clone().acquire_owned().await?;
        let source = sources[i % sources.len()];
        let (base, target) = targets[i % targets.len()].clone();
        let ws_url = match o.protocol {
            Protocol::Socketio => {
                format!("{base}?EIO=4&transport=websocket&channel={}{}", o.channel_prefix, i % o.channels.max(1))
            }
            Protocol::Pusher => format!("{base}/app/{}?protocol=7&client=gyre-bench&version=1.0", o.pusher_key),
            Protocol::CentrifugoProtobuf => format!("{base}?cf_protocol=protobuf"),
            _ => base,
        };
        let protocol = o.protocol;
        let channel = format!("{}{}", o.channel_prefix, i % o.channels.max(1));
        let tok = token(&o.secret, &format!("u{i}"));
        let stats = stats.clone();
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let ws = match connect(protocol, source, target, &ws_url, &tok, &channel).await {
                Ok(ws) => {
                    drop(permit);
                    let _ = ready.send(Ok(()));
                    ws
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                    return;
                }
            };
            read_loop(protocol, ws, stats).await;
        }));
    }
    for _ in 0..mine.len() {
        match ready_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => anyhow::bail!("client failed: {e}"),
            None => anyhow::bail!("clients ended early"),
        }
    }
    Ok(Clients(tasks))
}

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Leaves choosing the source port to `connect` (Linux `IP_BIND_ADDRESS_NO_PORT`): choosing
/// it at `bind` scans the port range in the kernel, which grows with every port in use or in
/// TIME_WAIT and made the connect rate a measure of the tool, not the server.
fn bind_without_port(socket: &TcpSocket) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let one: libc::c_int = 1;
    // SAFETY: `socket` owns a valid descriptor; the option value is a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

async fn connect(
    protocol: Protocol,
    source: IpAddr,
    target: SocketAddr,
    url: &str,
    token: &str,
    channel: &str,
) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    // Ports of earlier runs may still be in TIME_WAIT.
    socket.set_reuseaddr(true).map_err(|e| e.to_string())?;
    bind_without_port(&socket).map_err(|e| format!("IP_BIND_ADDRESS_NO_PORT: {e}"))?;
    socket.bind(SocketAddr::new(source, 0)).map_err(|e| format!("bind {source}: {e}"))?;
    let stream = socket.connect(target).await.map_err(|e| format!("connect: {e}"))?;
    let (mut ws, _) = tokio_tungstenite::client_async(url, stream).await.map_err(|e| format!("handshake: {e}"))?;
    // What the client sends to subscribe, and the reply that says it is subscribed.
    let (hello, done): (String, &str) = match protocol {
        Protocol::CentrifugoProtobuf => return subscribe_protobuf(ws, token, channel).await,
        Protocol::Centrifugo => {
            let connect = serde_json::json!({"id": 1, "connect": {"token": token}}).to_string();
            let subscribe = serde_json::json!({"id": 2, "subscribe": {"channel": channel}}).to_string();
            (format!("{connect}\n{subscribe}"), "\"id\":2")
        }
        Protocol::NatsWs => {
            (format!("CONNECT {{\"verbose\":false,\"pedantic\":false}}\r\nSUB {channel} 1\r\nPING\r\n"), "PONG")
        }
        // engine.io open packet first, then the default namespace's connect.
        Protocol::Socketio => ("40".to_string(), "40{"),
        Protocol::Pusher => (
            serde_json::json!({"event": "pusher:subscribe", "data": {"channel": channel}}).to_string(),
            "subscription_succeeded",
        ),
    };
    ws.send(Message::text(hello)).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                if t.contains("\"error\"") || t.starts_with("-ERR") || t.starts_with("44") || t.contains("pusher:error")
                {
                    return Err(format!("server refused: {t}"));
                }
                if t.contains(done) {
                    return Ok(ws);
                }
            }
            Some(Ok(Message::Binary(b))) => {
                if String::from_utf8_lossy(&b).contains(done) {
                    return Ok(ws);
                }
            }
            Some(Ok(Message::Close(f))) => return Err(format!("closed: {f:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

/// Connect and subscribe over Protobuf: both commands in one binary frame, then wait for the
/// subscribe reply (id 2).
async fn subscribe_protobuf(mut ws: Ws, token: &str, channel: &str) -> Result<Ws, String> {
    let connect = proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest { token: token.to_string(), ..Default::default() }),
        ..Default::default()
    };
    let subscribe = proto::Command {
        id: 2,
        subscribe: Some(proto::SubscribeRequest { channel: channel.to_string(), ..Default::default() }),
        ..Default::default()
    };
    let mut frame = connect.encode_length_delimited_to_vec();
    frame.extend(subscribe.encode_length_delimited_to_vec());
    ws.send(Message::binary(frame)).await.map_err(|e| e.to_string())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(mut b))) => {
                while !b.is_empty() {
                    let reply = proto::Reply::decode_length_delimited(&mut b).map_err(|e| e.to_string())?;
                    if let Some(e) = reply.error {
                        return Err(format!("server refused: {} {}", e.code, e.message));
                    }
                    if reply.id == 2 {
                        return Ok(ws);
                    }
                }
            }
            Some(Ok(Message::Close(f))) => return Err(format!("closed: {f:?}")),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("connection ended".into()),
        }
    }
}

/// Reads Protobuf frames: empty replies are pings (answered with an empty command),
/// publication data carries the send time.
async fn read_loop_protobuf(mut ws: Ws, stats: Arc<Stats>) {
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Binary(mut frame) = msg else { continue };
        let now = now_us();
        let (mut n, mut pinged) = (0, false);
        {
            let mut hist = stats.latency_us.lock();
            while !frame.is_empty() {
                let Ok(reply) = proto::Reply::decode_length_delimited(&mut frame) else { break };
                match reply.push.and_then(|p| p.r#pub) {
                    Some(publication) => {
                        if let Some(at) = sent_at(&String::from_utf8_lossy(&publication.data)) {
                            let _ = hist.record(now.saturating_sub(at).max(1));
                            n += 1;
                        }
                    }
                    None => pinged |= reply.id == 0,
                }
            }
        }
        stats.delivered.fetch_add(n, Ordering::Relaxed);
        if pinged {
            let _ = ws.send(Message::binary(vec![0u8])).await;
        }
    }
}

async fn read_loop(protocol: Protocol, mut ws: Ws, stats: Arc<Stats>) {
    let (ping, pong) = match protocol {
        Protocol::CentrifugoProtobuf => return read_loop_protobuf(ws, stats).await,
        Protocol::Centrifugo => ("{}", "{}"),
        Protocol::NatsWs => ("PING", "PONG\r\n"),
        Protocol::Socketio => ("2", "3"),
        Protocol::Pusher => (r#"{"event":"pusher:ping","data":{}}"#, r#"{"event":"pusher:pong","data":{}}"#),
    };
    while let Some(Ok(msg)) = ws.next().await {
        let text = match &msg {
            Message::Text(t) => t.as_str().to_string(),
            Message::Binary(b) => String::from_utf8_lossy(b).into_owned(),
            _ => continue,
        };
        let now = now_us();
        let (mut n, mut pinged) = (0, false);
        {
            let mut hist = stats.latency_us.lock();
            for line in text.split(['\n']) {
                let line = line.trim_end_matches('\r');
                if line == ping {
                    pinged = true;
                } else if let Some(at) = sent_at(line) {
                    let _ = hist.record(now.saturating_sub(at).max(1));
                    n += 1;
                }
            }
        }
        stats.delivered.fetch_add(n, Ordering::Relaxed);
        if pinged {
            let _ = ws.send(Message::text(pong)).await;
        }
    }
}
