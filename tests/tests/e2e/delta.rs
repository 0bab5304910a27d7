//! Fossil delta compression: subscribers that negotiate it get the first publication in full,
//! then deltas that rebuild every payload exactly; everyone else is unaffected.

use gyre_tests::pb::proto;
use gyre_tests::pb::{self, PbClient};
use gyre_tests::{token, Gyre};
use serde_json::{json, Value};

/// Large, similar documents: the case deltas are for.
fn docs(n: usize) -> Vec<Value> {
    let mut doc = json!({"title": "board", "cells": (0..200).map(|i| format!("cell-{i}")).collect::<Vec<_>>(),
                         "note": "naïve café ✓"});
    (0..n)
        .map(|i| {
            doc["cells"][i * 13 % 200] = json!(format!("changed-{i}"));
            doc["version"] = json!(i);
            doc.clone()
        })
        .collect()
}

/// What a JSON client of a delta subscription rebuilds from each publication.
fn rebuild(prev: &mut Vec<u8>, publication: &Value) -> Value {
    let text = publication["data"].as_str().unwrap_or_else(|| panic!("data must be a string: {publication}"));
    let bytes = if publication["delta"] == json!(true) {
        gyre_edge::node::delta::apply(&prev[..], text.as_bytes(), 1 << 24).expect("a valid fossil delta")
    } else {
        text.as_bytes().to_vec()
    };
    *prev = bytes;
    serde_json::from_slice(prev).expect("payload JSON")
}

#[tokio::test]
async fn json_delta_subscribers_rebuild_every_payload_and_others_get_plain_data() {
    let gyre = Gyre::start(json!({}));
    let (mut with_delta, _) = gyre.connected("42").await;
    let (mut plain, _) = gyre.connected("43").await;
    let reply = with_delta.command(json!({"subscribe": {"channel": "delta:doc", "delta": "fossil"}})).await;
    assert_eq!(reply["subscribe"]["delta"], true, "{reply}");
    let reply = plain.command(json!({"subscribe": {"channel": "delta:doc"}})).await;
    assert!(reply["subscribe"].get("delta").is_none(), "{reply}");

    let docs = docs(8);
    for doc in &docs {
        gyre.api("publish", json!({"channel": "delta:doc", "data": doc})).await;
    }
    let mut prev = Vec::new();
    let mut flags = Vec::new();
    let mut sizes = (0, 0);
    for doc in &docs {
        let push = with_delta.next_push().await;
        let publication = &push["pub"];
        flags.push(publication["delta"] == json!(true));
        sizes.0 += publication["data"].as_str().map_or(0, str::len);
        sizes.1 += doc.to_string().len();
        assert_eq!(&rebuild(&mut prev, publication), doc);
        assert_eq!(&plain.next_push().await["pub"]["data"], doc, "plain subscribers get JSON values");
    }
    assert_eq!(flags, [false, true, true, true, true, true, true, true], "full first, then deltas");
    assert!(sizes.0 * 5 < sizes.1, "deltas are small: {sizes:?}");

    // A subscriber joining later holds no previous payload: its first publication is full
    // while the earlier subscriber's is a delta.
    let (mut late, _) = gyre.connected("44").await;
    late.command(json!({"subscribe": {"channel": "delta:doc", "delta": "fossil"}})).await;
    let mut next = docs[7].clone();
    next["version"] = json!("late");
    gyre.api("publish", json!({"channel": "delta:doc", "data": next})).await;
    let first = late.next_push().await["pub"].clone();
    assert!(first.get("delta").is_none(), "{first}");
    assert_eq!(rebuild(&mut Vec::new(), &first), next);
    let early = with_delta.next_push().await["pub"].clone();
    assert_eq!(early["delta"], true);
    assert_eq!(rebuild(&mut prev, &early), next);

    // A namespace that does not allow deltas does not negotiate them.
    let reply = with_delta.command(json!({"subscribe": {"channel": "chat:nodelta", "delta": "fossil"}})).await;
    assert!(reply["subscribe"].get("delta").is_none(), "{reply}");
    // An unknown delta type is a protocol error.
    let id = with_delta.send(json!({"subscribe": {"channel": "delta:x", "delta": "vcdiff"}})).await;
    assert_eq!(with_delta.reply_or_closed(id).await.unwrap_err().code, 3501);
}

#[tokio::test]
async fn publishers_opt_in_per_publication_and_recovery_starts_from_full_payloads() {
    let mut config = gyre_tests::base_config();
    config["namespaces"].as_array_mut().unwrap().push(json!({
        "name": "optin", "allow_subscribe_for_client": true, "allowed_delta_types": ["fossil"],
        "history_size": 10, "history_ttl": "300s", "force_recovery": true,
    }));
    let gyre = Gyre::start_with(&config, &[]);
    let (mut c, _) = gyre.connected("42").await;
    let reply = c.command(json!({"subscribe": {"channel": "optin:doc", "delta": "fossil"}})).await;
    let epoch = reply["subscribe"]["epoch"].as_str().unwrap().to_string();
    let docs = docs(4);
    for (i, doc) in docs.iter().enumerate() {
        // Without `delta: true` (and no `delta_publish`) a publication is never a delta.
        gyre.api("publish", json!({"channel": "optin:doc", "data": doc, "delta": i >= 2})).await;
    }
    let mut prev = Vec::new();
    let mut flags = Vec::new();
    for doc in &docs {
        let publication = c.next_push().await["pub"].clone();
        flags.push(publication["delta"] == json!(true));
        assert_eq!(&rebuild(&mut prev, &publication), doc);
    }
    assert_eq!(flags, [false, false, true, true]);

    // Recovering: the missed publications come in full, as strings.
    let (mut again, _) = gyre.connected("42").await;
    let reply = again
        .command(json!({"subscribe": {"channel": "optin:doc", "delta": "fossil", "recover": true, "offset": 2,
                                     "epoch": epoch}}))
        .await;
    let recovered = reply["subscribe"]["publications"].as_array().expect("recovered").clone();
    assert_eq!(recovered.len(), 2, "{reply}");
    for (publication, doc) in recovered.iter().zip(&docs[2..]) {
        assert!(publication.get("delta").is_none());
        assert_eq!(&rebuild(&mut Vec::new(), publication), doc);
    }
}

#[tokio::test]
async fn protobuf_delta_subscribers_get_raw_delta_bytes() {
    let gyre = Gyre::start(json!({}));
    let mut c = PbClient::connect(&gyre.ws_url()).await;
    let reply = c.command(pb::connect(&token("42", json!({})))).await;
    assert!(reply.connect.is_some(), "{reply:?}");
    let mut sub = pb::subscribe("delta:pb", None);
    if let Some(s) = sub.subscribe.as_mut() {
        s.delta = "fossil".into();
    }
    let reply = c.command(sub).await;
    assert!(reply.subscribe.as_ref().is_some_and(|s| s.delta), "{reply:?}");
    let docs = docs(4);
    for doc in &docs {
        gyre.api("publish", json!({"channel": "delta:pb", "data": doc})).await;
    }
    let mut prev: Vec<u8> = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let push = c.next_push().await;
        let p: proto::Publication = push.r#pub.expect("publication");
        assert_eq!(p.delta, i > 0);
        prev =
            if p.delta { gyre_edge::node::delta::apply(&prev, &p.data, 1 << 24).expect("valid delta") } else { p.data };
        assert_eq!(&serde_json::from_slice::<Value>(&prev).unwrap(), doc);
    }
}

#[tokio::test]
async fn centrifuge_js_rebuilds_payloads_from_gyre_deltas() {
    let gyre = Gyre::start(json!({}));
    let out = gyre_tests::interop::run_js(&gyre, "delta.js").await;
    assert!(out.contains("delta ok"), "{out}");
}

#[tokio::test]
async fn centrifuge_python_rebuilds_payloads_from_gyre_deltas() {
    let gyre = Gyre::start(json!({}));
    for args in [&[][..], &["--protobuf"][..]] {
        let out = gyre_tests::interop::run_py_args(&gyre, "delta_sdk.py", args).await;
        assert!(out.contains(": 1 passed, 0 failed"), "{out}");
    }
}
