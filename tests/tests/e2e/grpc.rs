//! Centrifugo's gRPC server API: a tonic client (HTTP/2, protobuf) calls Gyre's
//! `centrifugal.centrifugo.api.CentrifugoApi`; what it does reaches real WebSocket clients.

use std::str::FromStr;

use gyre_tests::pb::api::*;
use gyre_tests::pb::{self, PbClient};
use gyre_tests::{token, Gyre, API_KEY};
use serde_json::{json, Value};
use tonic::Code;

use crate::exact::EXACT;

/// The tests give the gRPC API the HTTP API's key (the interop scripts read it so).
const KEY: &str = API_KEY;

fn start() -> Gyre {
    Gyre::start(json!({"grpc_api": true, "grpc_api_port": 0, "grpc_api_key": KEY}))
}

/// One unary call with `key` (if any) as the API key.
async fn call<Req, Resp>(gyre: &Gyre, method: &str, req: Req, key: Option<&str>) -> Result<Resp, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = gyre_tests::grpc_client(gyre.grpc_addr.as_ref()).await;
    let mut request = tonic::Request::new(req);
    if let Some(key) = key {
        request.metadata_mut().insert("authorization", format!("apikey {key}").parse().expect("metadata"));
    }
    let path = http::uri::PathAndQuery::from_str(&format!("/centrifugal.centrifugo.api.CentrifugoApi/{method}"))
        .expect("path");
    grpc.unary(request, path, tonic_prost::ProstCodec::default()).await.map(tonic::Response::into_inner)
}

fn publish(channel: &str, data: &[u8]) -> PublishRequest {
    PublishRequest { channel: channel.into(), data: data.to_vec(), ..Default::default() }
}

#[tokio::test]
async fn grpc_calls_act_on_real_clients() {
    let gyre = start();
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:g"}})).await;

    let r: PublishResponse = call(&gyre, "Publish", publish("chat:g", br#"{"via":"grpc"}"#), Some(KEY)).await.unwrap();
    let result = r.result.expect("publish result");
    assert_eq!((r.error, result.offset), (None, 1));
    assert!(!result.epoch.is_empty());
    assert_eq!(c.next_push().await["pub"]["data"], json!({"via": "grpc"}));

    let req = BroadcastRequest {
        channels: vec!["chat:g".into(), "chat:other".into()],
        data: b"2".to_vec(),
        ..Default::default()
    };
    let r: BroadcastResponse = call(&gyre, "Broadcast", req, Some(KEY)).await.unwrap();
    assert_eq!(r.result.expect("broadcast result").responses.len(), 2);
    assert_eq!(c.next_push().await["pub"]["data"], json!(2));

    let stats: PresenceStatsResponse =
        call(&gyre, "PresenceStats", PresenceStatsRequest { channel: "chat:g".into() }, Some(KEY)).await.unwrap();
    assert_eq!(stats.result.map(|s| (s.num_clients, s.num_users)), Some((1, 1)));
    let presence: PresenceResponse =
        call(&gyre, "Presence", PresenceRequest { channel: "chat:g".into() }, Some(KEY)).await.unwrap();
    let who: Vec<String> = presence.result.unwrap().presence.into_values().map(|i| i.user).collect();
    assert_eq!(who, ["42"]);

    let req = HistoryRequest { channel: "chat:g".into(), limit: -1, ..Default::default() };
    let history: HistoryResponse = call(&gyre, "History", req, Some(KEY)).await.unwrap();
    let history = history.result.expect("history result");
    let data: Vec<Value> = history.publications.iter().map(|p| serde_json::from_slice(&p.data).unwrap()).collect();
    assert_eq!(data, [json!({"via": "grpc"}), json!(2)]);
    assert_eq!(history.offset, 2);

    let info: InfoResponse = call(&gyre, "Info", InfoRequest {}, Some(KEY)).await.unwrap();
    let nodes = info.result.expect("info result").nodes;
    assert_eq!((nodes.len(), nodes[0].num_clients), (1, 1));
    let channels: ChannelsResponse =
        call(&gyre, "Channels", ChannelsRequest { pattern: "chat:*".into() }, Some(KEY)).await.unwrap();
    assert_eq!(channels.result.unwrap().channels["chat:g"].num_clients, 1);

    // Errors are in the body; the connection and the call succeed.
    let r: PublishResponse = call(&gyre, "Publish", publish("nowhere:x", b"1"), Some(KEY)).await.unwrap();
    assert_eq!(r.error.map(|e| e.code), Some(102));
    assert!(r.result.is_none());

    // A server-side disconnect through gRPC closes the user's connection.
    let req = DisconnectRequest {
        user: "42".into(),
        disconnect: Some(Disconnect { code: 4507, reason: "bye".into() }),
        ..Default::default()
    };
    let r: DisconnectResponse = call(&gyre, "Disconnect", req, Some(KEY)).await.unwrap();
    assert_eq!(r.error, None);
    assert_eq!(c.closed().await.code, 4507);
}

#[tokio::test]
async fn batch_runs_commands_in_order_with_an_error_per_failed_one() {
    let gyre = start();
    let commands = vec![
        Command { publish: Some(publish("chat:batch", b"{\"n\":1}")), ..Default::default() },
        Command { presence_stats: Some(PresenceStatsRequest { channel: "chat:batch".into() }), ..Default::default() },
        Command { publish: Some(publish("nowhere:x", b"1")), ..Default::default() },
        Command::default(),
        Command {
            history: Some(HistoryRequest { channel: "chat:batch".into(), limit: -1, ..Default::default() }),
            ..Default::default()
        },
    ];
    let r: BatchResponse = call(&gyre, "Batch", BatchRequest { commands, parallel: false }, Some(KEY)).await.unwrap();
    let replies = r.replies;
    assert_eq!(replies.len(), 5);
    assert_eq!(replies[0].publish.as_ref().map(|p| p.offset), Some(1));
    assert_eq!(replies[1].presence_stats.as_ref().map(|p| p.num_clients), Some(0));
    assert_eq!(replies[2].error.as_ref().map(|e| e.code), Some(102));
    assert_eq!(replies[3].error.as_ref().map(|e| e.code), Some(107), "an empty command");
    let history = replies[4].history.as_ref().expect("history reply");
    assert_eq!(serde_json::from_slice::<Value>(&history.publications[0].data).unwrap(), json!({"n": 1}));
}

#[tokio::test]
async fn the_key_is_required_and_unknown_methods_are_unimplemented() {
    let gyre = start();
    let denied = call::<_, PublishResponse>(&gyre, "Publish", publish("chat:k", b"1"), None).await.unwrap_err();
    assert_eq!(denied.code(), Code::Unauthenticated);
    let wrong = call::<_, PublishResponse>(&gyre, "Publish", publish("chat:k", b"1"), Some("nope")).await.unwrap_err();
    assert_eq!(wrong.code(), Code::Unauthenticated);
    let missing = call::<_, InfoResponse>(&gyre, "BlockUser", InfoRequest {}, Some(KEY)).await.unwrap_err();
    assert_eq!(missing.code(), Code::Unimplemented);
}

#[tokio::test]
async fn binary_data_published_over_grpc_reaches_protobuf_clients_intact() {
    let gyre = start();
    let mut c = PbClient::connect(&gyre.ws_url()).await;
    assert!(c.command(pb::connect(&token("42", json!({})))).await.connect.is_some());
    assert!(c.command(pb::subscribe("chat:bin", None)).await.subscribe.is_some());
    let bytes = [0xff, 0x00, 0x10, 0x80];
    let r: PublishResponse = call(&gyre, "Publish", publish("chat:bin", &bytes), Some(KEY)).await.unwrap();
    assert_eq!(r.error, None);
    let push = c.next_push().await;
    assert_eq!(push.r#pub.expect("publication").data, bytes);
}

#[tokio::test]
async fn python_grpcio_calls_the_api() {
    let gyre = start();
    let out = gyre_tests::interop::run_py(&gyre, "grpc_api.py").await;
    assert!(out.contains("grpc_api: 4 passed, 0 failed"), "{out}");
}

#[test]
fn grpc_api_without_a_key_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.json"), json!({"grpc_api": true}).to_string()).unwrap();
    let (ok, _, err) = gyre_tests::run_cli(&["checkconfig", "c.json"], dir.path());
    assert!(!ok && err.contains("c.json: key `grpc_api_key`: the gRPC API needs a key"), "{err}");
}

#[tokio::test]
async fn payloads_cross_the_grpc_api_byte_exact() {
    let gyre = start();
    let r: PublishResponse = call(&gyre, "Publish", publish("chat:exact", EXACT.as_bytes()), Some(KEY)).await.unwrap();
    assert_eq!(r.error, None);

    // Channel info given to a server-side subscription comes back in presence as it was.
    let (mut c, _) = gyre.connected("42").await;
    let req = SubscribeRequest {
        channel: "chat:exact-info".into(),
        user: "42".into(),
        info: EXACT.as_bytes().to_vec(),
        ..Default::default()
    };
    let r: SubscribeResponse = call(&gyre, "Subscribe", req, Some(KEY)).await.unwrap();
    assert_eq!(r.error, None);
    assert_eq!(c.next_push().await["channel"], "chat:exact-info");
    let req = PresenceRequest { channel: "chat:exact-info".into() };
    let presence: PresenceResponse = call(&gyre, "Presence", req, Some(KEY)).await.unwrap();
    let infos: Vec<Vec<u8>> = presence.result.expect("presence").presence.into_values().map(|i| i.chan_info).collect();
    assert_eq!(infos, [EXACT.as_bytes().to_vec()]);

    // Through the gRPC history and a batch of it, and the HTTP API's history.
    let history = || HistoryRequest { channel: "chat:exact".into(), limit: 10, ..Default::default() };
    let r: HistoryResponse = call(&gyre, "History", history(), Some(KEY)).await.unwrap();
    assert_eq!(r.result.expect("history").publications[0].data, EXACT.as_bytes());
    let batch =
        BatchRequest { commands: vec![Command { history: Some(history()), ..Default::default() }], parallel: false };
    let r: BatchResponse = call(&gyre, "Batch", batch, Some(KEY)).await.unwrap();
    assert_eq!(r.replies[0].history.as_ref().expect("history reply").publications[0].data, EXACT.as_bytes());
    let reply = gyre
        .http()
        .post(format!("{}/history", gyre.api_url()))
        .header("X-API-Key", API_KEY)
        .body(r#"{"channel":"chat:exact","limit":10}"#)
        .send()
        .await
        .expect("history over HTTP")
        .text()
        .await
        .expect("reply text");
    assert!(reply.contains(&format!(r#""data":{EXACT}"#)), "HTTP history rewrote the payload: {reply}");
}
