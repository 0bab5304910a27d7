//! Unidirectional transports (no SDK needed): a connect request once, then unwrapped pushes —
//! over WebSocket, HTTP-streaming and SSE.

use std::time::Duration;

use futures_util::StreamExt;
use gyre_tests::ws::WAIT;
use gyre_tests::{token, Gyre};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// A token whose `channels` claim subscribes the connection on the server side.
fn connect_request(user: &str, channel: &str) -> Value {
    json!({"token": token(user, json!({"channels": [channel]}))})
}

/// Reads newline- or event-separated JSON messages from a streamed response.
async fn read_messages(resp: &mut reqwest::Response, buf: &mut String, sep: &str) -> Option<Value> {
    loop {
        if let Some(i) = buf.find(sep) {
            let line = buf[..i].trim().trim_start_matches("data: ").to_string();
            buf.drain(..i + sep.len());
            if line.is_empty() {
                continue;
            }
            return Some(serde_json::from_str(&line).unwrap_or_else(|e| panic!("bad push {line:?}: {e}")));
        }
        match tokio::time::timeout(WAIT, resp.chunk()).await.expect("no data within the wait").expect("stream") {
            Some(c) => buf.push_str(&String::from_utf8_lossy(&c)),
            None => return None,
        }
    }
}

#[tokio::test]
async fn uni_http_stream_delivers_unwrapped_pushes_and_ends_with_disconnect() {
    let gyre = Gyre::start(json!({}));
    let mut resp = gyre
        .http()
        .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
        .json(&connect_request("u1", "chat:uni"))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open");
    let mut buf = String::new();
    let connect = read_messages(&mut resp, &mut buf, "\n").await.expect("connect push");
    assert!(connect["connect"]["client"].is_string(), "{connect}");
    assert_eq!(connect["connect"].get("pong"), None, "a unidirectional client is never asked to pong: {connect}");
    assert!(connect["connect"]["subs"].get("chat:uni").is_some(), "server-side subscription: {connect}");
    gyre.api("publish", json!({"channel": "chat:uni", "data": {"n": 1}})).await;
    let push = read_messages(&mut resp, &mut buf, "\n").await.expect("publication");
    assert_eq!(push, json!({"channel": "chat:uni", "pub": {"data": {"n": 1}, "offset": 1}}));
    gyre.api("disconnect", json!({"user": "u1"})).await;
    let last = read_messages(&mut resp, &mut buf, "\n").await.expect("disconnect push");
    assert_eq!(last["disconnect"]["code"], 3503, "{last}");
    assert!(read_messages(&mut resp, &mut buf, "\n").await.is_none(), "the stream ends");
}

#[tokio::test]
async fn uni_sse_streams_events_and_refuses_a_bad_request() {
    let gyre = Gyre::start(json!({}));
    let url = format!("http://{}/connection/uni_sse", gyre.addr);
    let mut resp = gyre
        .http()
        .get(&url)
        .query(&[("cf_connect", connect_request("u2", "chat:sse").to_string())])
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open");
    assert_eq!(resp.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut buf = String::new();
    assert!(read_messages(&mut resp, &mut buf, "\n\n").await.expect("connect")["connect"].is_object());
    gyre.api("publish", json!({"channel": "chat:sse", "data": "hi"})).await;
    assert_eq!(read_messages(&mut resp, &mut buf, "\n\n").await.expect("pub")["pub"]["data"], "hi");
    let status = gyre.http().get(&url).query(&[("cf_connect", "[not an object]")]).send().await.expect("bad").status();
    assert_eq!(status, 400);
}

async fn uni_ws(
    gyre: &Gyre,
    query: Option<&Value>,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let mut url = format!("ws://{}/connection/uni_websocket", gyre.addr);
    if let Some(q) = query {
        url = format!(
            "{url}?cf_connect={}",
            url::form_urlencoded::byte_serialize(q.to_string().as_bytes()).collect::<String>()
        );
    }
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect timed out")
        .expect("upgrade")
        .0
}

async fn next_text(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Message {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no message within the wait")
            .expect("open")
            .expect("ws");
        if matches!(msg, Message::Text(_) | Message::Close(_)) {
            return msg;
        }
    }
}

fn json_of(msg: Message) -> Value {
    match msg {
        Message::Text(t) => {
            serde_json::from_str(t.as_str()).unwrap_or_else(|e| panic!("one push per frame: {t:?}: {e}"))
        }
        other => panic!("expected a text frame, got {other:?}"),
    }
}

#[tokio::test]
async fn uni_websocket_sends_one_push_per_frame_and_needs_no_pong() {
    let gyre = Gyre::start(json!({"ping_interval": "1s", "pong_timeout": "500ms"}));
    // The connect request in the query.
    let mut ws = uni_ws(&gyre, Some(&connect_request("u3", "chat:w"))).await;
    assert!(json_of(next_text(&mut ws).await)["connect"].is_object());
    for n in 0..3 {
        gyre.api("publish", json!({"channel": "chat:w", "data": n})).await;
    }
    let mut got = Vec::new();
    while got.len() < 3 {
        let push = json_of(next_text(&mut ws).await);
        if push != json!({}) {
            got.push(push["pub"]["data"].clone());
        }
    }
    assert_eq!(got, [0, 1, 2]);
    // Pings keep coming and no pong is expected: still open after several intervals.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    gyre.api("publish", json!({"channel": "chat:w", "data": "still"})).await;
    loop {
        let push = json_of(next_text(&mut ws).await);
        if push != json!({}) {
            assert_eq!(push["pub"]["data"], "still");
            break;
        }
    }

    // The connect request as the first message; a bad token closes with 3500.
    let mut ws = uni_ws(&gyre, None).await;
    futures_util::SinkExt::send(&mut ws, Message::text(connect_request("u4", "chat:w").to_string()))
        .await
        .expect("send");
    assert!(json_of(next_text(&mut ws).await)["connect"].is_object());
    let mut bad = uni_ws(&gyre, Some(&json!({"token": "not-a-jwt"}))).await;
    match next_text(&mut bad).await {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 3500),
        other => panic!("expected close 3500, got {other:?}"),
    }
}

#[tokio::test]
async fn uni_client_recovers_its_server_side_subscription_on_reconnect() {
    let gyre = Gyre::start(json!({}));
    let open = |request: Value| {
        gyre.http()
            .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
            .json(&request)
            .timeout(Duration::from_secs(600))
            .send()
    };
    let mut resp = open(connect_request("u5", "chat:rec")).await.expect("open");
    let mut buf = String::new();
    let connect = read_messages(&mut resp, &mut buf, "\n").await.expect("connect");
    let sub = &connect["connect"]["subs"]["chat:rec"];
    let (epoch, offset) = (sub["epoch"].clone(), sub["offset"].as_u64().unwrap_or(0));
    assert!(epoch.is_string(), "chat keeps history, so the subscription is positioned: {connect}");
    drop(resp);
    for n in 0..2 {
        gyre.api("publish", json!({"channel": "chat:rec", "data": n})).await;
    }
    // Back with the last position it saw: the missed publications come in the connect push.
    let mut request = connect_request("u5", "chat:rec");
    request["subs"] = json!({"chat:rec": {"recover": true, "epoch": epoch, "offset": offset}});
    let mut resp = open(request).await.expect("reopen");
    let mut buf = String::new();
    let connect = read_messages(&mut resp, &mut buf, "\n").await.expect("connect");
    let sub = &connect["connect"]["subs"]["chat:rec"];
    assert_eq!(sub["recovered"], true, "{connect}");
    let datas: Vec<Value> =
        sub["publications"].as_array().expect("publications").iter().map(|p| p["data"].clone()).collect();
    assert_eq!(datas, [json!(0), json!(1)]);
}

/// Opens a `uni_grpc` stream (a tonic client, server-streaming `Consume`).
async fn uni_grpc(
    gyre: &Gyre,
    connect: gyre_tests::pb::proto::ConnectRequest,
) -> tonic::Streaming<gyre_tests::pb::proto::Push> {
    let mut grpc = gyre_tests::grpc_client(gyre.uni_grpc_addr.as_ref()).await;
    let path = http::uri::PathAndQuery::from_static("/centrifugal.centrifugo.unistream.CentrifugoUniStream/Consume");
    let codec = tonic_prost::ProstCodec::<_, gyre_tests::pb::proto::Push>::default();
    grpc.server_streaming(tonic::Request::new(connect), path, codec).await.expect("Consume").into_inner()
}

async fn next_grpc_push(
    stream: &mut tonic::Streaming<gyre_tests::pb::proto::Push>,
) -> Option<gyre_tests::pb::proto::Push> {
    tokio::time::timeout(WAIT, stream.message()).await.expect("a push within the wait").expect("stream")
}

#[tokio::test]
async fn uni_grpc_streams_protobuf_pushes_and_recovers_from_the_request() {
    use gyre_tests::pb::proto;
    let gyre = Gyre::start(json!({"uni_grpc": true, "uni_grpc_port": 0}));
    let connect = |subs: std::collections::HashMap<String, proto::SubscribeRequest>| proto::ConnectRequest {
        token: token("u7", json!({"channels": ["chat:ug"]})),
        subs,
        ..Default::default()
    };
    let mut stream = uni_grpc(&gyre, connect(Default::default())).await;
    let first = next_grpc_push(&mut stream).await.expect("connect push");
    let result = first.connect.expect("the connect result comes first");
    assert!(!result.client.is_empty());
    let epoch = result.subs["chat:ug"].epoch.clone();
    gyre.api("publish", json!({"channel": "chat:ug", "data": {"n": 1}})).await;
    let push = next_grpc_push(&mut stream).await.expect("publication");
    assert_eq!(push.channel, "chat:ug");
    let publication = push.r#pub.expect("pub");
    assert_eq!((serde_json::from_slice::<Value>(&publication.data).unwrap(), publication.offset), (json!({"n": 1}), 1));
    gyre.api("disconnect", json!({"user": "u7"})).await;
    let last = next_grpc_push(&mut stream).await.expect("disconnect push");
    assert_eq!(last.disconnect.map(|d| d.code), Some(3503));
    assert!(next_grpc_push(&mut stream).await.is_none(), "the stream ends");

    // Missed publications come back from the position in the request.
    gyre.api("publish", json!({"channel": "chat:ug", "data": {"n": 2}})).await;
    let since = proto::SubscribeRequest { recover: true, offset: 1, epoch, ..Default::default() };
    let mut again = uni_grpc(&gyre, connect([("chat:ug".to_string(), since)].into())).await;
    let sub = next_grpc_push(&mut again).await.and_then(|p| p.connect).expect("connect").subs["chat:ug"].clone();
    assert!(sub.recovered, "{sub:?}");
    let data: Vec<Value> = sub.publications.iter().map(|p| serde_json::from_slice(&p.data).unwrap()).collect();
    assert_eq!(data, [json!({"n": 2})]);

    // A bad token: a disconnect push and the end.
    let bad = proto::ConnectRequest { token: "not-a-jwt".into(), ..Default::default() };
    let mut refused = uni_grpc(&gyre, bad).await;
    assert_eq!(next_grpc_push(&mut refused).await.and_then(|p| p.disconnect).map(|d| d.code), Some(3500));
    assert!(next_grpc_push(&mut refused).await.is_none());
    // An expired one: the connect fails (109), which ends a unidirectional stream at once.
    let expired = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "u7", Some(-10), json!({})).unwrap();
    let mut ended = uni_grpc(&gyre, proto::ConnectRequest { token: expired, ..Default::default() }).await;
    let last = next_grpc_push(&mut ended).await.and_then(|p| p.disconnect).expect("a disconnect push");
    assert_eq!((last.code, last.reason.as_str()), (3501, "token expired"));
    assert!(next_grpc_push(&mut ended).await.is_none());
}

#[tokio::test]
async fn centrifuge_python_protocol_reads_the_uni_grpc_stream() {
    let gyre = Gyre::start(json!({"uni_grpc": true, "uni_grpc_port": 0}));
    let out = gyre_tests::interop::run_py(&gyre, "uni_grpc.py").await;
    assert!(out.contains("uni_grpc: 2 passed, 0 failed"), "{out}");
}
