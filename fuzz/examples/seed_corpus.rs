//! Writes the seed corpus (`fuzz/corpus/<target>/`) from the inputs the test suite sends:
//! the commands, tokens, configs, filters and deltas of `tests/`. Run it after the protocol
//! changes (`cargo run --example seed-corpus -- corpus` in `fuzz/`); the fuzzer adds what it finds.

use std::path::{Path, PathBuf};

use gyre_edge::auth::{mint_connection_token, mint_subscription_token};
use gyre_edge::protocol::filter::FilterNode;
use gyre_edge::protocol::proto;
use prost::Message;
use serde_json::{json, Value};

fn main() -> std::io::Result<()> {
    let root = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "corpus".into()));
    let json_frames = json_frames();
    for (i, frame) in json_frames.iter().enumerate() {
        write(&root, "json_commands", i, frame.as_bytes())?;
    }
    let pb = protobuf_frames();
    for (i, frame) in pb.iter().enumerate() {
        write(&root, "protobuf_commands", i, frame)?;
    }
    for (i, frame) in json_frames.iter().take(6).enumerate() {
        let body = json!({"session": "7d9c2f4e-1b7a-4c3e-9d4f-2a8b6c1e0f35", "node": "3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b", "data": frame});
        write(&root, "emulation_body", i, &[&[0u8][..], body.to_string().as_bytes()].concat())?;
    }
    for (i, frame) in pb.iter().take(6).enumerate() {
        let req = proto::EmulationRequest { node: "".into(), session: "s".into(), data: frame.clone() };
        write(&root, "emulation_body", 100 + i, &[&[1u8][..], &req.encode_to_vec()].concat())?;
    }
    for (i, token) in tokens().iter().enumerate() {
        write(&root, "jwt", i, token.as_bytes())?;
    }
    for (i, (mode, text)) in configs().iter().enumerate() {
        write(&root, "config", i, &[&[*mode][..], text.as_bytes()].concat())?;
    }
    for (i, f) in filters().iter().enumerate() {
        write(&root, "tag_filter", i, &[&[0u8][..], f.to_string().as_bytes()].concat())?;
        if let Ok(node) = serde_json::from_value::<FilterNode>(f.clone()) {
            write(&root, "tag_filter", 100 + i, &[&[1u8][..], &node.encode_to_vec()].concat())?;
        }
    }
    for (i, (prev, next)) in documents().iter().enumerate() {
        let delta = fossil_delta::delta(next, prev);
        let split = u8::try_from(prev.len()).unwrap_or(u8::MAX);
        if usize::from(split) == prev.len() {
            write(&root, "fossil_apply", i, &[&[split][..], prev, &delta].concat())?;
        }
        let at = prev.len() * 255 / (prev.len() + next.len()).max(1);
        write(&root, "fossil_roundtrip", i, &[&[at as u8][..], prev, next].concat())?;
    }
    Ok(())
}

fn write(root: &Path, target: &str, i: usize, bytes: &[u8]) -> std::io::Result<()> {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("seed-{i:03}")), bytes)
}

/// Frames as the e2e tests and SDKs send them (one command per line, batched too).
fn json_frames() -> Vec<String> {
    let token = mint_connection_token(gyre_fuzz::HMAC_SECRET, "42", Some(3600), json!({})).unwrap_or_default();
    let commands = [
        json!({"id": 1, "connect": {"token": token, "name": "js", "version": "5.0.0"}}),
        json!({"id": 1, "connect": {"token": token, "subs": {"news": {"recover": true, "offset": 3, "epoch": "abc"}}}}),
        json!({"id": 2, "subscribe": {"channel": "chat:room"}}),
        json!({"id": 2, "subscribe": {"channel": "opt:c", "recover": true, "offset": 18446744073709551615u64, "epoch": "e"}}),
        json!({"id": 2, "subscribe": {"channel": "opt:c", "positioned": true, "recoverable": true, "join_leave": true}}),
        json!({"id": 2, "subscribe": {"channel": "delta:doc", "delta": "fossil"}}),
        json!({"id": 2, "subscribe": {"channel": "chat:tf", "tf": {"op": "and", "nodes": [{"key": "kind", "cmp": "eq", "val": "goal"}]}}}),
        json!({"id": 3, "publish": {"channel": "chat:room", "data": {"text": "hi", "n": [1, 2.5, null]}}}),
        json!({"id": 4, "presence": {"channel": "chat:room"}}),
        json!({"id": 5, "presence_stats": {"channel": "chat:room"}}),
        json!({"id": 6, "history": {"channel": "chat:room", "limit": -1, "since": {"offset": 18446744073709551615u64, "epoch": "x"}, "reverse": true}}),
        json!({"id": 7, "rpc": {"method": "getUser", "data": {"id": 1}}}),
        json!({"send": {"data": "fire and forget"}}),
        json!({"id": 8, "refresh": {"token": token}}),
        json!({"id": 9, "sub_refresh": {"channel": "$private:room", "token": "x.y.z"}}),
        json!({"id": 10, "unsubscribe": {"channel": "chat:room"}}),
        json!({"id": 11, "ping": {}}),
        json!({}),
    ];
    let mut frames: Vec<String> = commands.iter().map(Value::to_string).collect();
    frames.push(frames[..4].join("\n"));
    frames.push(format!("{}\n", frames[2]));
    frames.push("{\"id\":4294967296,\"publish\":{}}".into());
    frames
}

fn protobuf_frames() -> Vec<Vec<u8>> {
    let commands = [
        proto::Command {
            id: 1,
            connect: Some(proto::ConnectRequest { token: "t".into(), name: "go".into(), ..Default::default() }),
            ..Default::default()
        },
        proto::Command {
            id: 2,
            subscribe: Some(proto::SubscribeRequest {
                channel: "opt:c".into(),
                recover: true,
                offset: u64::MAX,
                epoch: "e".into(),
                delta: "fossil".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        proto::Command {
            id: 3,
            publish: Some(proto::PublishRequest { channel: "chat:room".into(), data: vec![0, 1, 2, 255], r#type: 0 }),
            ..Default::default()
        },
        proto::Command { id: 4, presence: Some(proto::ChannelRequest { channel: "c".into() }), ..Default::default() },
        proto::Command {
            id: 5,
            history: Some(proto::HistoryRequest { channel: "c".into(), limit: -1, ..Default::default() }),
            ..Default::default()
        },
        proto::Command { id: 6, ping: Some(proto::Empty {}), ..Default::default() },
    ];
    let mut frames: Vec<Vec<u8>> = commands.iter().map(Message::encode_length_delimited_to_vec).collect();
    frames.push(frames.concat());
    frames
}

fn tokens() -> Vec<String> {
    let s = gyre_fuzz::HMAC_SECRET;
    let now = gyre_edge::auth::unix_now();
    let mut t: Vec<String> = [
        mint_connection_token(s, "42", Some(3600), json!({})),
        mint_connection_token(s, "42", Some(-10), json!({})),
        mint_connection_token(s, "42", None, json!({"nbf": now + 3600, "expire_at": 1})),
        mint_connection_token(s, "42", None, json!({"channels": ["news"], "info": {"name": "A"}, "b64info": "AAE="})),
        mint_connection_token(
            s,
            "42",
            None,
            json!({"subs": {"news": {"data": {"a": 1}, "override": {"presence": {"value": true}}}}}),
        ),
        mint_connection_token(s, "42", None, json!({"exp": i64::MAX, "expire_at": u64::MAX, "aud": ["a", "b"]})),
        mint_subscription_token(s, "42", "$private:room", Some(60), json!({"client": "c", "expire_at": 0})),
        mint_connection_token("another-secret", "42", None, json!({})),
    ]
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    // `alg: none` and a truncated token.
    t.push("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiI0MiJ9.".into());
    if let Some(first) = t.first().cloned() {
        t.push(first[..first.len() / 2].to_string());
    }
    t
}

/// (format byte: 0 JSON, 1 YAML, 2 TOML; text): the suite's flat config, Centrifugo v6's
/// nested layout, and the same in YAML and TOML.
fn configs() -> Vec<(u8, String)> {
    let flat = json!({
        "token_hmac_secret_key": "secret", "api_key": "key", "allowed_origins": ["*"],
        "client_connection_limit": 100, "client_command_rate_limit": 50, "token_leeway": "5s",
        "history_size": 10, "history_ttl": "300s", "presence": true,
        "namespaces": [
            {"name": "chat", "allow_subscribe_for_client": true, "history_size": 100, "history_ttl": "5m",
             "force_recovery": true, "allowed_delta_types": ["fossil"]},
            {"name": "personal", "allow_user_limited_channels": true}
        ]
    });
    let nested = json!({
        "client": {"token": {"hmac_secret_key": "secret", "leeway": "1s"}, "allowed_origins": ["https://a.example"]},
        "http_api": {"key": "key"},
        "channel": {"without_namespace": {"presence": true}, "namespaces": [{"name": "chat", "history_size": 5, "history_ttl": "1m"}]},
        "engine": {"type": "memory"}
    });
    vec![
        (0, flat.to_string()),
        (0, nested.to_string()),
        (0, r#"{"history_size": -1, "namespaces": [{"name": "bad name!"}], "unknown_key": 1}"#.into()),
        (1, "token_hmac_secret_key: secret\nnamespaces:\n  - name: chat\n    presence: true\n    history_ttl: 30s\n".into()),
        (1, "client:\n  token:\n    hmac_secret_key: s\nhttp_api:\n  key: k\n".into()),
        (2, "token_hmac_secret_key = \"secret\"\napi_key = \"k\"\n[[namespaces]]\nname = \"chat\"\nhistory_size = 10\nhistory_ttl = \"10s\"\n".into()),
        (2, "[client.token]\nhmac_secret_key = \"s\"\n[http_api]\nkey = \"k\"\n".into()),
    ]
}

fn filters() -> Vec<Value> {
    vec![
        json!({"key": "kind", "cmp": "eq", "val": "goal"}),
        json!({"key": "score", "cmp": "gte", "val": "10"}),
        json!({"key": "team", "cmp": "in", "vals": ["red", "blue"]}),
        json!({"op": "not", "nodes": [{"key": "empty", "cmp": "ex"}]}),
        json!({"op": "or", "nodes": [{"key": "a", "cmp": "starts", "val": "x"}, {"op": "and", "nodes": [{"key": "score", "cmp": "lt", "val": "1e3"}]}]}),
    ]
}

/// Similar documents, as delta channels carry them, plus edge cases.
fn documents() -> Vec<(Vec<u8>, Vec<u8>)> {
    let doc = |i: u64| {
        json!({"title": format!("draft {i}"), "items": (0..20).map(|n| n * i).collect::<Vec<_>>()})
            .to_string()
            .into_bytes()
    };
    vec![
        (doc(1), doc(2)),
        (doc(2), doc(3)),
        (b"hello, world".to_vec(), b"hello, brave world".to_vec()),
        (Vec::new(), b"{}".to_vec()),
        (b"{\"a\":1}".to_vec(), Vec::new()),
    ]
}
