//! HTTP-streaming and SSE with bidirectional emulation against real gyre nodes: the stream
//! carries replies and pushes, `POST /emulation` carries commands (to any node).

use std::time::Duration;

use gyre_tests::pb::proto;
use gyre_tests::ws::WAIT;
use gyre_tests::{nats::NatsServer, token, Gyre};
use prost::Message as _;
use serde_json::{json, Value};

/// A streamed response read chunk by chunk into messages.
struct Stream {
    resp: reqwest::Response,
    buf: Vec<u8>,
    sse: bool,
}

impl Stream {
    async fn open(gyre: &Gyre, path: &str, connect: Value, sse: bool) -> Stream {
        let url = format!("http://{}{path}", gyre.addr);
        let req = if sse {
            gyre.http().get(url).query(&[("cf_connect", connect.to_string())])
        } else {
            gyre.http().post(url).header("content-type", "application/json").body(connect.to_string())
        };
        // The client's overall timeout would cut a long stream: per-read waits instead.
        let resp = req.timeout(Duration::from_secs(600)).send().await.expect("open stream");
        assert_eq!(resp.status(), 200);
        Stream { resp, buf: Vec::new(), sse }
    }

    /// The next JSON message, `None` when the stream ended.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let text = String::from_utf8_lossy(&self.buf).to_string();
            let (sep, skip) = if self.sse { ("\n\n", 2) } else { ("\n", 1) };
            if let Some(i) = text.find(sep) {
                let line = text[..i].trim().trim_start_matches("data: ").to_string();
                self.buf.drain(..i + skip);
                if line.is_empty() {
                    continue;
                }
                return Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad message {line:?}: {e}")));
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk()).await.expect("no data within the wait");
            match chunk.expect("stream error") {
                Some(c) => self.buf.extend_from_slice(&c),
                None => return None,
            }
        }
    }

    async fn next_where(&mut self, f: impl Fn(&Value) -> bool) -> Value {
        loop {
            let m = self.next().await.expect("stream ended");
            if f(&m) {
                return m;
            }
        }
    }
}

async fn emulate(gyre: &Gyre, session: &Value, node: &Value, commands: &[Value]) -> u16 {
    let data = commands.iter().map(Value::to_string).collect::<Vec<_>>().join("\n");
    let body = json!({"session": session, "node": node, "data": data});
    let resp = gyre.http().post(format!("http://{}/emulation", gyre.addr)).json(&body).send().await.expect("emulation");
    resp.status().as_u16()
}

fn connect_cmd(user: &str) -> Value {
    json!({"id": 1, "connect": {"token": token(user, json!({}))}})
}

#[tokio::test]
async fn http_stream_carries_replies_and_emulation_carries_commands() {
    let gyre = Gyre::start(json!({}));
    let mut s = Stream::open(&gyre, "/connection/http_stream", connect_cmd("42"), false).await;
    let connect = s.next().await.expect("connect reply");
    let (session, node) = (connect["connect"]["session"].clone(), connect["connect"]["node"].clone());
    assert!(session.as_str().is_some_and(|v| v.len() >= 32) && node.is_string(), "{connect}");
    assert_ne!(session, connect["connect"]["client"], "the session id is not the public client id");

    let status = emulate(&gyre, &session, &node, &[json!({"id": 2, "subscribe": {"channel": "chat:e"}})]).await;
    assert_eq!(status, 204);
    let sub = s.next_where(|m| m["id"] == 2).await;
    assert!(sub.get("subscribe").is_some(), "{sub}");
    gyre.api("publish", json!({"channel": "chat:e", "data": {"n": 1}})).await;
    let push = s.next_where(|m| m.get("push").is_some()).await;
    assert_eq!(push["push"]["pub"]["data"], json!({"n": 1}));

    // Several commands in one post, answered in order.
    let cmds = [
        json!({"id": 3, "presence_stats": {"channel": "chat:e"}}),
        json!({"id": 4, "publish": {"channel": "locked:x", "data": 1}}),
    ];
    assert_eq!(emulate(&gyre, &session, &node, &cmds).await, 204);
    assert_eq!(s.next_where(|m| m["id"] == 3).await["presence_stats"]["num_clients"], 1);
    assert_eq!(s.next_where(|m| m["id"] == 4).await["error"]["code"], 103);

    // A server disconnect (targeting this session) ends the stream with a disconnect push;
    // naming another session leaves it alone.
    let (_, body) = gyre.api("disconnect", json!({"user": "42", "session": "not-this-one"})).await;
    assert!(body.get("error").is_none(), "{body}");
    assert_eq!(
        emulate(&gyre, &session, &node, &[json!({"id": 6, "presence_stats": {"channel": "chat:e"}})]).await,
        204
    );
    assert_eq!(s.next_where(|m| m["id"] == 6).await["presence_stats"]["num_clients"], 1);
    let (_, body) = gyre.api("disconnect", json!({"user": "42", "session": session})).await;
    assert!(body.get("error").is_none(), "{body}");
    let last = s.next_where(|m| m.get("push").is_some_and(|p| p.get("disconnect").is_some())).await;
    assert_eq!(last["push"]["disconnect"]["code"], 3503);
    assert!(s.next().await.is_none(), "the stream ends after the disconnect");
    // The session is gone: posts still answer 204.
    assert_eq!(emulate(&gyre, &session, &node, &[json!({"id": 5, "presence": {"channel": "chat:e"}})]).await, 204);
}

#[tokio::test]
async fn sse_streams_events_and_a_dropped_stream_leaves_the_node() {
    let gyre = Gyre::start(json!({}));
    let mut s = Stream::open(&gyre, "/connection/sse", connect_cmd("43"), true).await;
    let connect = s.next().await.expect("connect reply");
    let (session, node) = (connect["connect"]["session"].clone(), connect["connect"]["node"].clone());
    assert_eq!(s.resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    assert_eq!(emulate(&gyre, &session, &node, &[json!({"id": 2, "subscribe": {"channel": "chat:sse"}})]).await, 204);
    s.next_where(|m| m["id"] == 2).await;
    gyre.api("publish", json!({"channel": "chat:sse", "data": "hi"})).await;
    assert_eq!(s.next_where(|m| m.get("push").is_some()).await["push"]["pub"]["data"], "hi");

    drop(s);
    let mut clients = Value::Null;
    for _ in 0..100 {
        clients = gyre.api("info", json!({})).await.1["result"]["nodes"][0]["num_clients"].clone();
        if clients == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(clients, 0, "a client that went away is removed");

    // Bad requests.
    let base = format!("http://{}", gyre.addr);
    let status = gyre.http().get(format!("{base}/connection/sse")).send().await.expect("sse").status();
    assert_eq!(status, 400, "SSE without cf_connect");
    let status = gyre.http().post(format!("{base}/emulation")).body("{nope").send().await.expect("post").status();
    assert_eq!(status, 400, "undecodable emulation body");
    let status = gyre.http().get(format!("{base}/emulation")).send().await.expect("get").status();
    assert_eq!(status, 405);
}

/// The next varint-delimited reply of a Protobuf stream.
async fn next_reply(resp: &mut reqwest::Response, buf: &mut bytes::BytesMut) -> proto::Reply {
    loop {
        let mut view = &buf[..];
        if let Ok(reply) = proto::Reply::decode_length_delimited(&mut view) {
            let used = buf.len() - view.len();
            let _ = buf.split_to(used);
            return reply;
        }
        let chunk = tokio::time::timeout(WAIT, resp.chunk()).await.expect("no data within the wait");
        buf.extend_from_slice(&chunk.expect("stream error").expect("stream ended"));
    }
}

#[tokio::test]
async fn protobuf_http_stream_and_emulation() {
    let gyre = Gyre::start(json!({}));
    let connect = proto::Command {
        id: 1,
        connect: Some(proto::ConnectRequest { token: token("44", json!({})), ..Default::default() }),
        ..Default::default()
    };
    let mut resp = gyre
        .http()
        .post(format!("http://{}/connection/http_stream", gyre.addr))
        .header("content-type", "application/octet-stream")
        .body(connect.encode_length_delimited_to_vec())
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open");
    let mut buf = bytes::BytesMut::new();
    let reply = next_reply(&mut resp, &mut buf).await;
    let c = reply.connect.expect("connect result");
    let subscribe = proto::Command {
        id: 2,
        subscribe: Some(proto::SubscribeRequest { channel: "chat:pbe".into(), ..Default::default() }),
        ..Default::default()
    };
    let request = proto::EmulationRequest {
        node: c.node.clone(),
        session: c.session.clone(),
        data: subscribe.encode_length_delimited_to_vec(),
    };
    let status = gyre
        .http()
        .post(format!("http://{}/emulation", gyre.addr))
        .header("content-type", "application/octet-stream")
        .body(request.encode_to_vec())
        .send()
        .await
        .expect("emulation")
        .status();
    assert_eq!(status, 204);
    assert!(next_reply(&mut resp, &mut buf).await.subscribe.is_some());
    gyre.api("publish", json!({"channel": "chat:pbe", "b64data": "/wAB"})).await;
    let publication = next_reply(&mut resp, &mut buf).await.push.and_then(|p| p.r#pub).expect("publication");
    assert_eq!(publication.data, [0xff, 0x00, 0x01]);
}

#[tokio::test]
async fn emulation_posted_to_another_node_reaches_the_session() {
    let nats = NatsServer::start();
    let node = |name: &str| {
        Gyre::start(json!({"engine": "nats", "nats_url": nats.url(), "nats_storage": "memory", "name": name}))
    };
    let (a, b) = (node("a"), node("b"));
    a.wait_ready().await;
    b.wait_ready().await;
    let mut s = Stream::open(&a, "/connection/http_stream", connect_cmd("45"), false).await;
    let connect = s.next().await.expect("connect reply");
    let (session, node_id) = (connect["connect"]["session"].clone(), connect["connect"]["node"].clone());
    // The load balancer sent the command to node b.
    assert_eq!(emulate(&b, &session, &node_id, &[json!({"id": 2, "subscribe": {"channel": "chat:x"}})]).await, 204);
    assert!(s.next_where(|m| m["id"] == 2).await.get("subscribe").is_some());
    b.api("publish", json!({"channel": "chat:x", "data": 7})).await;
    assert_eq!(s.next_where(|m| m.get("push").is_some()).await["push"]["pub"]["data"], 7);
}
