//! The WebSocket JSON protocol against a real gyre process, driven by a raw client.

use std::time::Duration;

use gyre_tests::{token, Gyre, WsClient};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn code(reply: &Value) -> u64 {
    reply["error"]["code"].as_u64().unwrap_or_else(|| panic!("expected an error reply, got {reply}"))
}

#[tokio::test]
async fn connect_reply_has_client_version_and_ping_settings() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let t = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", None, json!({})).unwrap();
    let reply = c.command(json!({"connect": {"token": t}})).await;
    let r = &reply["connect"];
    assert!(!r["client"].as_str().unwrap_or("").is_empty(), "{reply}");
    assert!(!r["version"].as_str().unwrap_or("").is_empty(), "{reply}");
    assert_eq!(r["ping"], 25);
    assert_eq!(r["pong"], true);
    assert!(r.get("expires").is_none(), "a token without exp never expires: {reply}");
}

#[tokio::test]
async fn token_with_exp_reports_ttl() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 100;
    let t = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", None, json!({"exp": exp})).unwrap();
    let reply = c.command(json!({"connect": {"token": t}})).await;
    assert_eq!(reply["connect"]["expires"], true, "{reply}");
    let ttl = reply["connect"]["ttl"].as_u64().unwrap();
    assert!((95..=100).contains(&ttl), "ttl {ttl}");
}

#[tokio::test]
async fn invalid_token_closes_with_3500() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let bad = gyre_edge::auth::mint_connection_token("wrong-secret", "42", Some(60), json!({})).unwrap();
    c.send(json!({"connect": {"token": bad}})).await;
    let closed = c.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (3500, "invalid token"));
}

#[tokio::test]
async fn expired_token_gets_109_and_the_connection_is_then_unusable() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let expired = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", Some(-5), json!({})).unwrap();
    let reply = c.command(json!({"connect": {"token": expired}})).await;
    assert_eq!(code(&reply), 109);
    assert_eq!(reply["error"]["message"], "token expired");
    c.send(json!({"subscribe": {"channel": "chat:a"}})).await;
    assert_eq!(c.closed().await.code, 3501);
}

#[tokio::test]
async fn anonymous_connect_is_refused_unless_configured() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    c.send(json!({"connect": {}})).await;
    assert_eq!(c.closed().await.code, 3501);

    let open = Gyre::start(json!({"allow_anonymous_connect_without_token": true}));
    let mut c = open.ws().await;
    let reply = c.command(json!({"connect": {}})).await;
    assert!(reply["connect"]["client"].is_string(), "{reply}");
}

#[tokio::test]
async fn protocol_violations_close_with_3501() {
    let gyre = Gyre::start(json!({}));
    let cases: Vec<(&str, Value)> = vec![
        ("malformed json", json!("{not json")),
        ("command before connect", json!({"id": 1, "subscribe": {"channel": "chat:a"}})),
        ("command without method", json!({"id": 1})),
        ("empty command before connect", json!({})),
    ];
    for (what, frame) in cases {
        let mut c = gyre.ws().await;
        let text = frame.as_str().map(str::to_string).unwrap_or_else(|| frame.to_string());
        c.send_text(&text).await;
        let closed = c.closed().await;
        assert_eq!((closed.code, closed.reason.as_str()), (3501, "bad request"), "{what}");
    }
    // After connect: a request without id, an unsolicited pong, a second connect.
    for frame in [
        json!({"publish": {"channel": "pub:a", "data": {}}}),
        json!({}),
        json!({"id": 9, "connect": {"token": token("42", json!({}))}}),
    ] {
        let (mut c, _) = gyre.connected("42").await;
        c.send_text(&frame.to_string()).await;
        assert_eq!(c.closed().await.code, 3501, "{frame}");
    }
}

#[tokio::test]
async fn subscribe_errors_follow_the_protocol() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "nope:x"}})).await), 102);
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "locked:x"}})).await), 103);
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "$chat:private"}})).await), 103);
    let ok = c.command(json!({"subscribe": {"channel": "chat:a"}})).await;
    assert!(ok.get("subscribe").is_some(), "{ok}");
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "chat:a"}})).await), 105);
    // User-limited channels: only the listed users.
    let mine = c.command(json!({"subscribe": {"channel": "personal:user#42"}})).await;
    assert!(mine.get("subscribe").is_some(), "{mine}");
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "personal:user#43"}})).await), 103);
    // Unsubscribe, then the channel can be joined again.
    let r = c.command(json!({"unsubscribe": {"channel": "chat:a"}})).await;
    assert_eq!(r["unsubscribe"], json!({}));
    assert!(c.command(json!({"subscribe": {"channel": "chat:a"}})).await.get("subscribe").is_some());
    // Channel names: non-ASCII and over-long names are bad requests.
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "chat:ünï"}})).await), 107);
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "x".repeat(300)}})).await), 107);
}

#[tokio::test]
async fn channel_limit_gives_106() {
    let gyre = Gyre::start(json!({"client_channel_limit": 2}));
    let (mut c, _) = gyre.connected("42").await;
    for ch in ["chat:1", "chat:2"] {
        assert!(c.command(json!({"subscribe": {"channel": ch}})).await.get("subscribe").is_some());
    }
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "chat:3"}})).await), 106);
}

#[tokio::test]
async fn api_publications_reach_subscribers_in_order_with_offsets() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:index"}})).await;
    for n in 1..=5 {
        let (status, body) = gyre.api("publish", json!({"channel": "chat:index", "data": {"n": n}})).await;
        assert_eq!(status, 200);
        assert_eq!(body["result"]["offset"], n, "{body}");
    }
    for n in 1..=5 {
        let push = c.next_push().await;
        assert_eq!(push["channel"], "chat:index");
        assert_eq!(push["pub"]["data"], json!({"n": n}));
        assert_eq!(push["pub"]["offset"], n);
        assert!(push["pub"].get("info").is_none(), "API publications carry no publisher info");
    }
}

#[tokio::test]
async fn client_publish_respects_namespace_permissions() {
    let gyre = Gyre::start(json!({}));
    let (mut a, reply) = gyre.connected("42").await;
    let a_id = reply["connect"]["client"].clone();
    let (mut b, _) = gyre.connected("43").await;
    b.command(json!({"subscribe": {"channel": "chat:room"}})).await;

    // chat allows publishing for subscribers only.
    let r = a.command(json!({"publish": {"channel": "chat:room", "data": {"text": "x"}}})).await;
    assert_eq!(code(&r), 103);
    a.command(json!({"subscribe": {"channel": "chat:room"}})).await;
    let r = a.command(json!({"publish": {"channel": "chat:room", "data": {"text": "yo"}}})).await;
    assert_eq!(r["publish"], json!({}), "{r}");
    let push = b.next_push().await;
    assert_eq!(push["pub"]["data"], json!({"text": "yo"}));
    assert_eq!(push["pub"]["info"]["user"], "42");
    assert_eq!(push["pub"]["info"]["client"], a_id);
    // The publisher receives its own publication.
    assert_eq!(a.next_push().await["pub"]["data"], json!({"text": "yo"}));

    // pub allows any client; locked allows nobody; unknown namespaces are 102.
    assert_eq!(a.command(json!({"publish": {"channel": "pub:x", "data": 1}})).await["publish"], json!({}));
    assert_eq!(code(&a.command(json!({"publish": {"channel": "locked:x", "data": 1}})).await), 103);
    assert_eq!(code(&a.command(json!({"publish": {"channel": "nope:x", "data": 1}})).await), 102);
    assert_eq!(code(&a.command(json!({"publish": {"channel": "pub:x"}})).await), 107);
}

#[tokio::test]
async fn several_commands_per_frame_are_answered_in_order() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let frame = [
        json!({"id": 1, "connect": {"token": token("42", json!({})), "name": "js"}}).to_string(),
        json!({"id": 2, "subscribe": {"channel": "chat:a", "flag": 1}}).to_string(),
        json!({"id": 3, "subscribe": {"channel": "pub:b"}}).to_string(),
    ]
    .join("\n");
    c.send_text(&frame).await;
    let ids: Vec<Value> =
        vec![c.next().await["id"].clone(), c.next().await["id"].clone(), c.next().await["id"].clone()];
    assert_eq!(ids, vec![json!(1), json!(2), json!(3)]);
}

#[tokio::test]
async fn replies_and_pushes_are_batched_into_frames() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "pub:batch"}})).await;
    let n = 200;
    let frame: Vec<String> = (0..n)
        .map(|i| json!({"id": 100 + i, "publish": {"channel": "pub:batch", "data": {"i": i}}}).to_string())
        .collect();
    c.send_text(&frame.join("\n")).await;
    let before = c.frames.len();
    let mut seen = 0;
    while seen < n {
        if c.next_push().await["pub"]["data"]["i"] == json!(seen) {
            seen += 1;
        }
    }
    let frames = c.frames.len() - before;
    // One incoming frame's replies and pushes leave together (measured: all 400 in one frame);
    // fewer than ten messages per frame on average means batching broke.
    assert!(frames * 10 <= 2 * n as usize, "{frames} frames for {} messages: hardly anything was batched", 2 * n);
}

#[tokio::test]
async fn pings_keep_a_ponging_client_and_drop_a_silent_one() {
    let gyre = Gyre::start(json!({"ping_interval": "1s", "pong_timeout": "500ms"}));
    let (mut good, reply) = gyre.connected("42").await;
    assert_eq!(reply["connect"]["ping"], 1);
    let (mut silent, _) = gyre.connected("43").await;
    // Answer three pings.
    for _ in 0..3 {
        loop {
            if good.next().await == json!({}) {
                good.send_text("{}").await;
                break;
            }
        }
    }
    let r = good.command(json!({"publish": {"channel": "pub:x", "data": 1}})).await;
    assert_eq!(r["publish"], json!({}), "the ponging client is still connected");
    let closed = silent.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (3012, "no pong"));
}

#[tokio::test]
async fn stale_connection_without_connect_is_closed() {
    let gyre = Gyre::start(json!({"client_stale_close_delay": "300ms"}));
    let mut c = gyre.ws().await;
    assert_eq!(c.closed().await.code, 3502);
}

#[tokio::test]
async fn oversize_frame_closes_with_1009() {
    let gyre = Gyre::start(json!({"websocket_message_size_limit": 1024}));
    let (mut c, _) = gyre.connected("42").await;
    let big = json!({"id": 5, "publish": {"channel": "pub:x", "data": "x".repeat(4000)}});
    c.send_text(&big.to_string()).await;
    assert_eq!(c.closed().await.code, 1009, "{}", gyre.logs());
    // The node keeps serving others.
    let (mut other, _) = gyre.connected("43").await;
    assert_eq!(other.command(json!({"publish": {"channel": "pub:x", "data": 1}})).await["publish"], json!({}));
}

#[tokio::test]
async fn slow_consumer_is_disconnected_with_3008() {
    let gyre = Gyre::start(json!({"client_queue_max_size": 65536, "websocket_write_timeout": "30s"}));
    let (mut slow, _) = gyre.connected("42").await;
    slow.command(json!({"subscribe": {"channel": "pub:firehose"}})).await;
    // The client stops reading; publish until the node drops it.
    let payload = "x".repeat(60_000);
    let mut dropped = false;
    for _ in 0..2000 {
        gyre.api("publish", json!({"channel": "pub:firehose", "data": payload})).await;
        let (_, info) = gyre.api("info", json!({})).await;
        if info["result"]["nodes"][0]["num_clients"] == 0 {
            dropped = true;
            break;
        }
    }
    assert!(dropped, "a client that never reads was not disconnected");
    assert_eq!(slow.closed().await.code, 3008);
}

#[tokio::test]
async fn allowed_origins_are_enforced_for_browsers_only() {
    let gyre = Gyre::start(json!({"allowed_origins": ["http://good.example", "https://*.trusted.example"]}));
    let with_origin = |origin: &str| {
        let mut req = gyre.ws_url().into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        req
    };
    assert!(WsClient::connect_request(with_origin("http://good.example")).await.is_ok());
    assert!(WsClient::connect_request(with_origin("https://app.trusted.example")).await.is_ok());
    let refused = WsClient::connect_request(with_origin("http://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403 for a foreign origin, got {:?}", other.map(|_| ())),
    }
    // No Origin header: a non-browser client.
    let (_c, reply) = gyre.connected("42").await;
    assert!(reply["connect"]["client"].is_string());
}

#[tokio::test]
async fn server_side_subscriptions_from_token_channels() {
    let gyre = Gyre::start(json!({}));
    let mut c = gyre.ws().await;
    let t = token("42", json!({"channels": ["chat:news"]}));
    let reply = c.command(json!({"connect": {"token": t}})).await;
    assert!(reply["connect"]["subs"].get("chat:news").is_some(), "{reply}");
    gyre.api("publish", json!({"channel": "chat:news", "data": {"headline": 1}})).await;
    let push = c.next_push().await;
    assert_eq!(push["channel"], "chat:news");
    assert_eq!(push["pub"]["data"], json!({"headline": 1}));
    // A channel of an unknown namespace in the token fails the connect with 102.
    let mut c = gyre.ws().await;
    let r = c.command(json!({"connect": {"token": token("42", json!({"channels": ["nope:x"]}))}})).await;
    assert_eq!(code(&r), 102);
}

#[tokio::test]
async fn connection_expires_with_3005_without_refresh() {
    let gyre = Gyre::start(json!({"client_expired_close_delay": "200ms"}));
    let mut c = gyre.ws().await;
    let t = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", Some(1), json!({})).unwrap();
    let reply = c.command(json!({"connect": {"token": t}})).await;
    assert_eq!(reply["connect"]["expires"], true);
    let closed = c.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (3005, "connection expired"));
}

#[tokio::test]
async fn refresh_extends_the_connection() {
    let gyre = Gyre::start(json!({"client_expired_close_delay": "200ms"}));
    let mut c = gyre.ws().await;
    let t = gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", Some(1), json!({})).unwrap();
    c.command(json!({"connect": {"token": t}})).await;
    let r = c.command(json!({"refresh": {"token": token("42", json!({}))}})).await;
    assert_eq!(r["refresh"]["expires"], true, "{r}");
    assert!(c.quiet_for(Duration::from_millis(1800)).await.is_none(), "connection closed despite refresh");
    // A refresh token of another user is an invalid token.
    c.send(json!({"refresh": {"token": token("43", json!({}))}})).await;
    assert_eq!(c.closed().await.code, 3500);
}

#[tokio::test]
async fn sigterm_tells_clients_to_reconnect_and_exits_cleanly() {
    let mut gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let status = tokio::task::spawn_blocking(move || {
        let s = gyre.terminate();
        (s, gyre)
    });
    let closed = c.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (3001, "shutdown"));
    let (status, _gyre) = status.await.unwrap();
    assert!(status.is_some_and(|s| s.success()), "gyre did not exit 0 after SIGTERM: {status:?}");
}

#[tokio::test]
async fn sigterm_spreads_disconnects_over_the_shutdown_timeout() {
    let mut gyre = Gyre::start(json!({"shutdown_timeout": "2s"}));
    let mut clients = Vec::new();
    for i in 0..30 {
        clients.push(gyre.connected(&format!("u{i}")).await.0);
    }
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let s = gyre.terminate();
        (s, gyre)
    });
    let mut waits = Vec::new();
    for mut c in clients {
        waits.push(tokio::spawn(async move {
            let closed = c.closed().await;
            (closed.code, started.elapsed())
        }));
    }
    let mut at = Vec::new();
    for w in waits {
        let (code, elapsed) = w.await.unwrap();
        assert_eq!(code, 3001);
        at.push(elapsed);
    }
    at.sort();
    let spread = at[at.len() - 1] - at[0];
    // 30 clients over 1.5 s in 100 ms steps: two per step, the last ones ~1.4 s after the first.
    assert!(
        spread >= Duration::from_millis(700),
        "disconnects not spread: first {:?}, last {:?}",
        at[0],
        at[at.len() - 1]
    );
    let (status, _gyre) = status.await.unwrap();
    assert!(status.is_some_and(|s| s.success()), "gyre did not exit 0 after SIGTERM: {status:?}");
}

#[tokio::test]
async fn disconnect_cleans_up_hub_state() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:gone"}})).await;
    let (_, info) = gyre.api("info", json!({})).await;
    assert_eq!(info["result"]["nodes"][0]["num_subs"], 1);
    drop(c);
    let mut last = Value::Null;
    let mut ok = false;
    for _ in 0..100 {
        let (_, info) = gyre.api("info", json!({})).await;
        last = info["result"]["nodes"][0].clone();
        if last["num_clients"] == 0 && last["num_subs"] == 0 && last["num_channels"] == 0 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "state left after disconnect: {last}");
}
