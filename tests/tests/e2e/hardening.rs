//! Hostile clients against a real node: half-sent headers, too many sockets, connection and
//! command floods, oversized and trickling bodies, racing connects at the limits, emulation
//! POSTs naming other nodes, absurd stream positions. Every limit is shown to hold while
//! well-behaved clients keep being served.

use std::time::{Duration, Instant};

use futures_util::future::join_all;
use gyre_tests::nats::NatsServer;
use gyre_tests::ws::WAIT;
use gyre_tests::{token, Gyre, API_KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw socket that sends half a request header and nothing more.
async fn half_header(gyre: &Gyre) -> TcpStream {
    let mut s = TcpStream::connect(&gyre.addr).await.expect("tcp connect");
    s.write_all(b"GET /connection/websocket HTTP/1.1\r\nHost: x\r\n").await.expect("write");
    s
}

/// Waits (bounded) until the server closes `s`; what it sent first, if anything.
async fn closed_by_server(s: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&got).to_string(),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server kept the socket open for {within:?}"),
        }
    }
}

/// Polls `/metrics` until `series` reaches `at_least`.
async fn wait_metric(gyre: &Gyre, series: &str, at_least: f64) {
    let deadline = Instant::now() + WAIT;
    loop {
        let v = gyre.metric(series).await;
        if v >= at_least {
            return;
        }
        assert!(Instant::now() < deadline, "{series} stayed at {v} (< {at_least})");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A WebSocket upgrade to the node: the HTTP status of a refusal as `Err`.
async fn try_ws(gyre: &Gyre) -> Result<gyre_tests::WsClient, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let request = gyre.ws_url().into_client_request().expect("request");
    match gyre_tests::WsClient::connect_request(request).await {
        Ok(c) => Ok(c),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn half_sent_headers_are_closed_while_clients_keep_connecting() {
    let gyre = Gyre::start(json!({"internal_port": 0, "http_header_timeout": "1s"}));
    let mut slow = join_all((0..50).map(|_| half_header(&gyre))).await;
    // A real client is served while the slow sockets hang.
    let (mut c, _) = gyre.connected("42").await;
    for s in &mut slow {
        closed_by_server(s, WAIT).await;
    }
    wait_metric(&gyre, "gyre_listener_refused_total{listener=\"client\",reason=\"header_timeout\"}", 50.0).await;
    let reply = c.command(json!({"subscribe": {"channel": "chat:x"}})).await;
    assert!(reply.get("subscribe").is_some(), "{reply}");
}

#[tokio::test]
async fn a_half_sent_header_is_closed_within_about_ten_seconds_by_default() {
    let gyre = Gyre::start(json!({}));
    let mut s = half_header(&gyre).await;
    closed_by_server(&mut s, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn the_socket_over_the_listener_cap_is_refused_while_existing_clients_receive() {
    let gyre = Gyre::start(json!({"internal_port": 0, "max_connections": 4}));
    let mut clients = Vec::new();
    for user in ["a", "b", "c", "d"] {
        let (mut c, _) = gyre.connected(user).await;
        c.command(json!({"subscribe": {"channel": "chat:cap"}})).await;
        clients.push(c);
    }
    let mut extra = TcpStream::connect(&gyre.addr).await.expect("tcp connect");
    let said = closed_by_server(&mut extra, WAIT).await;
    assert!(said.is_empty() || said.starts_with("HTTP/1.1 503"), "{said}");
    wait_metric(&gyre, "gyre_listener_refused_total{listener=\"client\",reason=\"connection_limit\"}", 1.0).await;
    let (status, _) = gyre.api("publish", json!({"channel": "chat:cap", "data": {"n": 1}})).await;
    assert_eq!(status, 200);
    for c in &mut clients {
        assert_eq!(c.next_push().await["pub"]["data"], json!({"n": 1}));
    }
    // A freed slot takes the next client.
    drop(clients.pop());
    let deadline = Instant::now() + WAIT;
    while try_ws(&gyre).await.is_err() {
        assert!(Instant::now() < deadline, "the freed slot was never reused");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn new_connections_over_the_per_ip_rate_get_429_unless_exempt() {
    let gyre = Gyre::start(json!({"internal_port": 0, "client_connection_ip_rate_limit": 5}));
    let results = join_all((0..30).map(|_| try_ws(&gyre))).await;
    let refused = results.iter().filter(|r| matches!(r, Err(s) if s == "429")).count();
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert!(refused > 0 && (1..=10).contains(&accepted), "accepted {accepted}, refused {refused}");
    wait_metric(&gyre, "gyre_listener_refused_total{listener=\"client\",reason=\"ip_rate_limit\"}", 1.0).await;

    let exempt = Gyre::start(json!({"client_connection_ip_rate_limit": 5, "ip_rate_limit_exempt": ["127.0.0.0/8"]}));
    let results = join_all((0..30).map(|_| try_ws(&exempt))).await;
    assert!(
        results.iter().all(Result::is_ok),
        "{:?}",
        results.iter().filter_map(|r| r.as_ref().err()).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn the_node_wide_connection_rate_answers_503() {
    let gyre = Gyre::start(json!({"internal_port": 0, "client_connection_rate_limit": 3}));
    let results = join_all((0..20).map(|_| try_ws(&gyre))).await;
    let refused = results.iter().filter(|r| matches!(r, Err(s) if s == "503")).count();
    assert!(refused > 0 && results.iter().filter(|r| r.is_ok()).count() <= 6, "{refused} refused");
}

/// Sends `body` to `url` with a declared or a chunked (undeclared) length.
async fn post(gyre: &Gyre, url: &str, body: Vec<u8>, chunked: bool) -> (u16, Value) {
    let req = gyre.http().post(url).header("X-API-Key", API_KEY).header("content-type", "application/json");
    let req = if chunked {
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = body.chunks(1000).map(|c| Ok(c.to_vec())).collect();
        req.body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)))
    } else {
        req.body(body)
    };
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn oversized_bodies_get_413_with_a_json_error() {
    let gyre = Gyre::start(json!({"internal_port": 0, "api_max_request_body_size": 4096}));
    let big = json!({"channel": "chat:x", "data": {"s": "x".repeat(10_000)}}).to_string().into_bytes();
    for chunked in [false, true] {
        let (status, body) = post(&gyre, &format!("{}/publish", gyre.api_url()), big.clone(), chunked).await;
        assert_eq!((status, &body["limit"]), (413, &json!(4096)), "chunked {chunked}: {body}");
        assert!(body["error"].is_string());
    }
    let small = json!({"channel": "chat:x", "data": {}}).to_string().into_bytes();
    assert_eq!(post(&gyre, &format!("{}/publish", gyre.api_url()), small, true).await.0, 200);

    let emulation = format!("http://{}/emulation", gyre.addr);
    let frame = json!({"session": "s", "node": "n", "data": "x".repeat(70_000)}).to_string().into_bytes();
    for chunked in [false, true] {
        let (status, body) = post(&gyre, &emulation, frame.clone(), chunked).await;
        assert_eq!((status, &body["limit"]), (413, &json!(65536)), "emulation, chunked {chunked}: {body}");
    }
    wait_metric(&gyre, "gyre_http_body_refused_total{endpoint=\"emulation\",reason=\"body_too_large\"}", 2.0).await;
}

#[tokio::test]
async fn a_trickling_body_is_cut_at_the_body_timeout() {
    let gyre = Gyre::start(json!({"internal_port": 0, "http_body_timeout": "1s"}));
    let internal = gyre.internal_addr.clone().expect("internal listener");
    let mut s = TcpStream::connect(&internal).await.expect("tcp connect");
    let head = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"chan"
    );
    s.write_all(head.as_bytes()).await.expect("write");
    let said = closed_by_server(&mut s, WAIT).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    assert!(said.contains("request body not received in time"), "{said}");
}

#[tokio::test]
async fn a_grpc_request_over_the_size_limit_is_resource_exhausted() {
    let gyre = Gyre::start(json!({
        "grpc_api": true, "grpc_api_port": 0, "grpc_api_key": API_KEY, "grpc_api_max_receive_message_size": 1024
    }));
    let mut grpc = gyre_tests::grpc_client(gyre.grpc_addr.as_ref()).await;
    let path = |m: &str| {
        use std::str::FromStr;
        http::uri::PathAndQuery::from_str(&format!("/centrifugal.centrifugo.api.CentrifugoApi/{m}")).expect("path")
    };
    let request = |data: Vec<u8>| {
        let mut r = tonic::Request::new(gyre_tests::pb::api::PublishRequest {
            channel: "chat:g".into(),
            data,
            ..Default::default()
        });
        r.metadata_mut().insert("authorization", format!("apikey {API_KEY}").parse().expect("metadata"));
        r
    };
    let codec = || tonic_prost::ProstCodec::<_, gyre_tests::pb::api::PublishResponse>::default();
    grpc.ready().await.expect("ready");
    let err = grpc.unary(request(vec![b'1'; 5000]), path("Publish"), codec()).await.expect_err("refused");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    grpc.ready().await.expect("ready");
    let ok = grpc.unary(request(b"{}".to_vec()), path("Publish"), codec()).await.expect("small publish");
    assert!(ok.into_inner().error.is_none());
}

#[tokio::test]
async fn a_command_flood_is_answered_111_then_disconnected_while_others_receive() {
    // One command a second after a burst of five: the burst below is spent long before a
    // token comes back, however slow the machine.
    let gyre = Gyre::start(json!({"internal_port": 0, "client_command_rate_limit": 1, "client_command_rate_burst": 5}));
    let (mut reader, _) = gyre.connected("reader").await;
    reader.command(json!({"subscribe": {"channel": "chat:flood"}})).await;
    let (mut flooder, _) = gyre.connected("flooder").await;

    // A burst of 8: five answered, three refused as temporary.
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(flooder.send(json!({"presence": {"channel": "chat:flood"}})).await);
    }
    let mut refused = 0;
    for id in ids {
        let r = flooder.reply_to(id).await;
        if r["error"]["code"] == 111 {
            assert_eq!(r["error"]["temporary"], true, "{r}");
            refused += 1;
        }
    }
    assert!((2..=3).contains(&refused), "{refused} refused");

    // Sustained abuse ends the connection with 3013 (reconnect later); the reader's
    // publications keep arriving during it.
    let publisher = async {
        for n in 0..20 {
            let (status, _) = gyre.api("publish", json!({"channel": "chat:flood", "data": {"n": n}})).await;
            assert_eq!(status, 200);
        }
    };
    let flood = async {
        let command = json!({"id": 1000, "history": {"channel": "chat:flood"}}).to_string();
        flooder.send_text(&vec![command; 50].join("\n")).await;
        flooder.closed().await
    };
    let ((), closed) = tokio::join!(publisher, flood);
    assert_eq!(closed.code, 3013, "{closed:?}");
    for n in 0..20 {
        assert_eq!(reader.next_push().await["pub"]["data"]["n"], n);
    }
}

/// Connects `n` clients at once as `user`; how many got in and the close codes of the rest.
async fn concurrent_connects(gyre: &Gyre, users: impl Fn(usize) -> String, n: usize) -> (usize, Vec<u16>) {
    let attempts = (0..n).map(|i| {
        let user = users(i);
        async move {
            let mut c = match try_ws(gyre).await {
                Ok(c) => c,
                Err(status) => return Err(status.parse::<u16>().unwrap_or(0)),
            };
            let id = c.send(json!({"connect": {"token": token(&user, json!({}))}})).await;
            match c.reply_or_closed(id).await {
                Ok(r) if r.get("connect").is_some() => Ok(c),
                Ok(r) => panic!("unexpected reply {r}"),
                Err(closed) => Err(closed.code),
            }
        }
    });
    let results = join_all(attempts).await;
    let codes = results.iter().filter_map(|r| r.as_ref().err().copied()).collect();
    let connected = results.into_iter().filter_map(Result::ok).count();
    (connected, codes)
}

#[tokio::test]
async fn concurrent_connects_never_pass_the_user_and_node_limits() {
    let gyre = Gyre::start(json!({"internal_port": 0, "client_user_connection_limit": 3}));
    let (connected, codes) = concurrent_connects(&gyre, |_| "same".into(), 20).await;
    assert_eq!(connected, 3, "codes {codes:?}");
    assert!(codes.iter().all(|c| *c == 3504), "{codes:?}");

    let gyre = Gyre::start(json!({"internal_port": 0, "client_connection_limit": 5}));
    let (connected, codes) = concurrent_connects(&gyre, |i| format!("u{i}"), 20).await;
    assert_eq!(connected, 5, "codes {codes:?}");
    // Refused before the upgrade (503) or, having raced past it, at connect (3504).
    assert!(codes.iter().all(|c| *c == 503 || *c == 3504), "{codes:?}");
}

#[tokio::test]
async fn emulation_posts_go_only_to_a_live_node_they_name() {
    let gyre = Gyre::start(json!({"internal_port": 0, "emulation_ip_rate_limit": 20}));
    let url = format!("http://{}/emulation", gyre.addr);
    let frame = |node: &str| json!({"session": "nope", "node": node, "data": "{}"}).to_string().into_bytes();
    let (status, body) = post(&gyre, &url, frame(""), false).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(post(&gyre, &url, frame("not-a-node"), false).await.0, 400);
    let (status, body) = post(&gyre, &url, frame("0b7d7a5e-2f7a-4c55-9b1a-3f8a1c2d9e10"), false).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("node not found")));

    // The node's own id (from a stream's connect reply): delivered here, 204.
    let (own, _) = {
        let resp = gyre
            .http()
            .post(format!("http://{}/connection/http_stream", gyre.addr))
            .header("content-type", "application/json")
            .body(json!({"id": 1, "connect": {"token": token("e", json!({}))}}).to_string())
            .send()
            .await
            .expect("stream");
        let mut resp = resp;
        let chunk = tokio::time::timeout(WAIT, resp.chunk()).await.expect("connect reply").expect("chunk");
        let reply: Value =
            serde_json::from_slice(chunk.unwrap_or_default().split(|b| *b == b'\n').next().unwrap_or(b""))
                .expect("json reply");
        (reply["connect"]["node"].as_str().unwrap_or_default().to_string(), resp)
    };
    assert!(!own.is_empty());
    assert_eq!(post(&gyre, &url, frame(&own), false).await.0, 204);

    // The per-IP limit answers 429 once a burst is spent.
    let statuses = join_all((0..60).map(|_| post(&gyre, &url, frame(&own), false))).await;
    assert!(statuses.iter().any(|(s, _)| *s == 429), "{:?}", statuses.iter().map(|s| s.0).collect::<Vec<_>>());
}

#[tokio::test]
async fn u64_max_positions_are_answered_without_harm_on_nats() {
    let nats = NatsServer::start();
    let gyre = Gyre::start(json!({"engine": "nats", "nats_url": nats.url(), "nats_storage": "memory"}));
    gyre.wait_ready().await;
    let (status, _) = gyre.api("publish", json!({"channel": "chat:max", "data": {"n": 1}})).await;
    assert_eq!(status, 200);
    let (_, h) = gyre.api("history", json!({"channel": "chat:max", "limit": 0})).await;
    let epoch = h["result"]["epoch"].clone();
    let (status, h) = gyre
        .api("history", json!({"channel": "chat:max", "limit": 10, "since": {"offset": u64::MAX, "epoch": epoch}}))
        .await;
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["result"]["publications"].as_array().map_or(0, Vec::len), 0, "{h}");

    let (mut c, _) = gyre.connected("42").await;
    let r = c
        .command(json!({"subscribe": {"channel": "chat:max", "recover": true, "epoch": epoch, "offset": u64::MAX}}))
        .await;
    assert!(r.get("subscribe").is_some() || r.get("error").is_some(), "{r}");
    // The node is alive and serving.
    let (status, _) = gyre.api("publish", json!({"channel": "chat:max", "data": {"n": 2}})).await;
    assert_eq!(status, 200);
}
