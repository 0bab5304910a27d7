//! The Protobuf protocol over WebSocket against a real gyre process: our raw client, with JSON
//! clients on the same channels.

use std::time::Duration;

use gyre_tests::pb::{self, proto, PbClient};
use gyre_tests::{token, Gyre};
use serde_json::json;

#[tokio::test]
async fn protobuf_and_json_clients_share_channels() {
    let gyre = Gyre::start(json!({}));
    let mut p = PbClient::connect(&gyre.ws_url()).await;
    assert_eq!(p.subprotocol.as_deref(), Some("centrifuge-protobuf"));

    // Connect and subscribe in one frame, as the SDKs batch them.
    let mut subscribe = pb::subscribe("chat:mixed", None);
    if let Some(s) = subscribe.subscribe.as_mut() {
        s.join_leave = true;
    }
    let ids = p.send(vec![pb::connect(&token("pb-user", json!({}))), subscribe]).await;
    let connect = p.reply_to(ids[0]).await.connect.expect("connect result");
    assert!(!connect.client.is_empty());
    assert_eq!((connect.ping, connect.pong), (25, true));
    let sub = p.reply_to(ids[1]).await.subscribe.expect("subscribe result");
    assert!(sub.recoverable, "chat has force_recovery");

    let (mut j, _) = gyre.connected("json-user").await;
    let r = j.command(json!({"subscribe": {"channel": "chat:mixed"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    // Joins (its own first, then the JSON client's) reach the Protobuf client with their info.
    for user in ["pb-user", "json-user"] {
        let join = p.next_push().await;
        assert_eq!(join.join.and_then(|j| j.info).map(|i| i.user).as_deref(), Some(user));
    }

    // An API publication reaches both, each in its own encoding.
    let (status, body) = gyre.api("publish", json!({"channel": "chat:mixed", "data": {"n": 1}})).await;
    assert_eq!(status, 200, "{body}");
    let push = p.next_push().await;
    assert_eq!(push.channel, "chat:mixed");
    let publication = push.r#pub.expect("publication push");
    assert_eq!(publication.data, br#"{"n":1}"#);
    assert!(publication.offset > 0);
    let jpush = j.next_push().await;
    assert_eq!(jpush["pub"]["data"], json!({"n": 1}));

    // A Protobuf client's publication reaches the JSON client as JSON, with publisher info.
    let r = p.command(pb::publish("chat:mixed", br#"{"from":"pb"}"#)).await;
    assert!(r.error.is_none() && r.publish.is_some(), "{r:?}");
    let jpush = j.next_push().await;
    assert_eq!(jpush["pub"]["data"], json!({"from": "pb"}));
    assert_eq!(jpush["pub"]["info"]["user"], "pb-user");
    let own = p.next_push().await.r#pub.expect("own publication");
    assert_eq!(own.data, br#"{"from":"pb"}"#);

    // History, presence and errors come back as Protobuf replies.
    let history = p
        .command(proto::Command {
            history: Some(proto::HistoryRequest { channel: "chat:mixed".into(), limit: 10, ..Default::default() }),
            ..Default::default()
        })
        .await
        .history
        .expect("history result");
    let datas: Vec<&[u8]> = history.publications.iter().map(|p| p.data.as_slice()).collect();
    assert_eq!(datas, vec![&br#"{"n":1}"#[..], &br#"{"from":"pb"}"#[..]]);
    let presence = p
        .command(proto::Command {
            presence: Some(proto::PresenceRequest { channel: "chat:mixed".into() }),
            ..Default::default()
        })
        .await
        .presence
        .expect("presence result");
    let mut users: Vec<String> = presence.presence.values().map(|i| i.user.clone()).collect();
    users.sort();
    assert_eq!(users, vec!["json-user", "pb-user"]);
    let err = p.command(pb::subscribe("locked:x", None)).await.error.expect("error reply");
    assert_eq!(err.code, 103);
}

#[tokio::test]
async fn protobuf_recovery_returns_missed_publications() {
    let gyre = Gyre::start(json!({}));
    // The query parameter alone selects Protobuf too.
    let mut p = PbClient::connect_with(&gyre.ws_url(), false).await;
    assert_eq!(p.subprotocol, None);
    p.command(pb::connect(&token("u", json!({})))).await.connect.expect("connect");
    let sub = p.command(pb::subscribe("chat:rec", None)).await.subscribe.expect("subscribe");
    drop(p);
    for n in 0..3 {
        let (status, _) = gyre.api("publish", json!({"channel": "chat:rec", "data": {"n": n}})).await;
        assert_eq!(status, 200);
    }
    let mut p = PbClient::connect(&gyre.ws_url()).await;
    p.command(pb::connect(&token("u", json!({})))).await.connect.expect("connect");
    let rec = p.command(pb::subscribe("chat:rec", Some((sub.offset, &sub.epoch)))).await.subscribe.expect("resub");
    assert!(rec.recovered && rec.was_recovering, "{rec:?}");
    let datas: Vec<String> = rec.publications.iter().map(|p| String::from_utf8_lossy(&p.data).into_owned()).collect();
    assert_eq!(datas, vec![r#"{"n":0}"#, r#"{"n":1}"#, r#"{"n":2}"#]);
}

#[tokio::test]
async fn protobuf_ping_is_answered_by_an_empty_command() {
    let gyre = Gyre::start(json!({"ping_interval": "1s", "pong_timeout": "500ms"}));
    let mut p = PbClient::connect(&gyre.ws_url()).await;
    p.command(pb::connect(&token("u", json!({})))).await.connect.expect("connect");
    for _ in 0..3 {
        let ping = p.next().await;
        assert_eq!(ping, proto::Reply::default(), "a server ping is an empty reply");
        p.send(vec![proto::Command::default()]).await;
    }
    // Without a pong the server closes with 3012.
    assert_eq!(p.next().await, proto::Reply::default());
    let closed = tokio::time::timeout(Duration::from_secs(5), p.closed()).await.expect("closed after no pong");
    assert_eq!(closed.code, 3012);
}

#[tokio::test]
async fn malformed_protobuf_frames_close_with_bad_request() {
    let gyre = Gyre::start(json!({}));
    // A truncated message.
    let mut p = PbClient::connect(&gyre.ws_url()).await;
    let mut frame = prost::Message::encode_length_delimited_to_vec(&pb::connect(&token("u", json!({}))));
    frame.truncate(frame.len() - 3);
    p.send_binary(frame).await;
    assert_eq!(p.closed().await.code, 3501);
    // A text frame on a Protobuf connection.
    let mut p = PbClient::connect(&gyre.ws_url()).await;
    p.send_text(r#"{"id":1,"connect":{}}"#).await;
    assert_eq!(p.closed().await.code, 3501);
    // The node keeps serving.
    let (mut j, _) = gyre.connected("still-up").await;
    let r = j.command(json!({"subscribe": {"channel": "chat:after"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
}

/// Binary data from a Protobuf client: the same bytes for Protobuf subscribers and in history,
/// base64 for JSON subscribers (their protocol cannot carry raw bytes).
async fn binary_round_trip(publisher_node: &Gyre, subscriber_node: &Gyre) {
    let binary: &[u8] = &[0xff, 0x00, 0x01, 0x80];
    let mut sub = PbClient::connect(&subscriber_node.ws_url()).await;
    sub.command(pb::connect(&token("s", json!({})))).await.connect.expect("connect");
    sub.command(pb::subscribe("chat:bin", None)).await.subscribe.expect("subscribe");
    let (mut j, _) = subscriber_node.connected("json").await;
    assert!(j.command(json!({"subscribe": {"channel": "chat:bin"}})).await.get("subscribe").is_some());

    let mut p = PbClient::connect(&publisher_node.ws_url()).await;
    p.command(pb::connect(&token("p", json!({})))).await.connect.expect("connect");
    p.command(pb::subscribe("chat:bin", None)).await.subscribe.expect("subscribe");
    let r = p.command(pb::publish("chat:bin", binary)).await;
    assert!(r.error.is_none(), "{r:?}");
    let got = loop {
        if let Some(publication) = sub.next_push().await.r#pub {
            break publication;
        }
    };
    assert_eq!(got.data, binary);
    let jp = j.next_push().await;
    assert_eq!(jp["pub"]["data"], "/wABgA==", "JSON clients get base64: {jp}");
    // The server API can publish binary too (b64data), and history keeps the bytes.
    let (status, body) = publisher_node.api("publish", json!({"channel": "chat:bin", "b64data": "AAEC"})).await;
    assert_eq!(status, 200, "{body}");
    let history = sub
        .command(proto::Command {
            history: Some(proto::HistoryRequest { channel: "chat:bin".into(), limit: 10, ..Default::default() }),
            ..Default::default()
        })
        .await
        .history
        .expect("history");
    let datas: Vec<&[u8]> = history.publications.iter().map(|p| p.data.as_slice()).collect();
    assert_eq!(datas, vec![binary, &[0u8, 1, 2][..]]);
}

#[tokio::test]
async fn binary_data_reaches_protobuf_clients_intact() {
    let gyre = Gyre::start(json!({}));
    binary_round_trip(&gyre, &gyre).await;
}

#[tokio::test]
async fn binary_data_crosses_nats_nodes_intact() {
    let nats = gyre_tests::nats::NatsServer::start();
    let node = |name: &str| {
        Gyre::start(json!({"engine": "nats", "nats_url": nats.url(), "nats_storage": "memory", "name": name}))
    };
    let (a, b) = (node("a"), node("b"));
    a.wait_ready().await;
    b.wait_ready().await;
    binary_round_trip(&a, &b).await;
}
