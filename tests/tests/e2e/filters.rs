//! Publication tag filters: a subscriber with `tf` gets only the publications whose tags pass,
//! live and recovered, without losing its stream position; everyone else gets everything.

use gyre_tests::pb::{self, proto, PbClient};
use gyre_tests::{base_config, token, Gyre, WsClient};
use serde_json::{json, Value};

fn start() -> Gyre {
    let mut config = base_config();
    config["namespaces"].as_array_mut().unwrap().push(json!({
        "name": "tf", "allow_subscribe_for_client": true, "allow_tags_filter": true,
        "allowed_delta_types": ["fossil"], "history_size": 20, "history_ttl": "300s", "force_recovery": true,
    }));
    Gyre::start_with(&config, &[])
}

fn apple_from_100() -> Value {
    json!({"op": "and", "nodes": [{"key": "ticker", "cmp": "eq", "val": "AAPL"},
                                  {"key": "price", "cmp": "gte", "val": "100"}]})
}

/// A filter written as JSON, as the Protobuf message.
fn filter_node(v: &Value) -> proto::FilterNode {
    let text = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    proto::FilterNode {
        op: text("op"),
        key: text("key"),
        cmp: text("cmp"),
        val: text("val"),
        vals: v["vals"].as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect(),
        nodes: v["nodes"].as_array().into_iter().flatten().map(filter_node).collect(),
    }
}

/// Publishes five quotes; the 1st and 4th pass [`apple_from_100`].
async fn publish_quotes(gyre: &Gyre, channel: &str) {
    let quotes = [
        json!({"ticker": "AAPL", "price": "150"}),
        json!({"ticker": "MSFT", "price": "300"}),
        json!({"ticker": "AAPL", "price": "50"}),
        json!({"ticker": "AAPL", "price": "100.0"}),
        json!({}),
    ];
    for (n, tags) in quotes.into_iter().enumerate() {
        let body = json!({"channel": channel, "data": {"n": n + 1}, "tags": tags});
        assert_eq!(gyre.api("publish", body).await.0, 200);
    }
}

async fn data_of_next_pubs(c: &mut WsClient, count: usize) -> Vec<(Value, Value)> {
    let mut out = Vec::new();
    while out.len() < count {
        let push = c.next_push().await;
        assert!(push.get("unsubscribe").is_none(), "the position must survive filtering: {push}");
        if let Some(p) = push.get("pub") {
            out.push((p["data"]["n"].clone(), p["offset"].clone()));
        }
    }
    out
}

#[tokio::test]
async fn filtered_subscribers_get_matching_publications_live_and_recovered() {
    let gyre = start();
    let (mut filtered, _) = gyre.connected("42").await;
    let (mut everyone, _) = gyre.connected("43").await;
    let reply = filtered.command(json!({"subscribe": {"channel": "tf:quotes", "tf": apple_from_100()}})).await;
    let epoch = reply["subscribe"]["epoch"].clone();
    assert!(reply["subscribe"]["positioned"] == true, "{reply}");
    everyone.command(json!({"subscribe": {"channel": "tf:quotes"}})).await;

    publish_quotes(&gyre, "tf:quotes").await;
    // A sixth, matching one proves the filtered ones did not break the stream position.
    let body = json!({"channel": "tf:quotes", "data": {"n": 6}, "tags": {"ticker": "AAPL", "price": "1e3"}});
    gyre.api("publish", body).await;
    let body = json!({"channel": "tf:quotes", "data": {"n": 7}, "tags": {"ticker": "AAPL", "price": "999.99"}});
    gyre.api("publish", body).await;
    assert_eq!(
        data_of_next_pubs(&mut filtered, 3).await,
        [(json!(1), json!(1)), (json!(4), json!(4)), (json!(7), json!(7))],
        "\"1e3\" is not a decimal, so `gte` fails"
    );
    let all = data_of_next_pubs(&mut everyone, 7).await;
    assert_eq!(all.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), (1..=7).map(|n| json!(n)).collect::<Vec<_>>());

    // Recovery from the start: only matching publications come back.
    let (mut again, _) = gyre.connected("42").await;
    let reply = again
        .command(json!({"subscribe": {"channel": "tf:quotes", "tf": apple_from_100(), "recover": true,
                                     "offset": 0, "epoch": epoch}}))
        .await;
    let recovered: Vec<Value> = reply["subscribe"]["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .map(|p| p["data"]["n"].clone())
        .collect();
    assert_eq!(recovered, [json!(1), json!(4), json!(7)], "{reply}");
    // History itself is not filtered.
    let (_, history) = gyre.api("history", json!({"channel": "tf:quotes", "limit": -1})).await;
    assert_eq!(history["result"]["publications"].as_array().unwrap().len(), 7);
}

#[tokio::test]
async fn bad_or_unallowed_filters_get_107_and_the_connection_stays() {
    let gyre = start();
    let (mut c, _) = gyre.connected("42").await;
    let code = |r: Value| r["error"]["code"].clone();
    let leaf = json!({"key": "k", "cmp": "eq", "val": "v"});
    // `chat` does not allow tags filters.
    assert_eq!(code(c.command(json!({"subscribe": {"channel": "chat:x", "tf": leaf}})).await), 107);
    let invalid = json!({"op": "not", "nodes": []});
    assert_eq!(code(c.command(json!({"subscribe": {"channel": "tf:x", "tf": invalid}})).await), 107);
    let with_delta = json!({"subscribe": {"channel": "tf:y", "tf": leaf, "delta": "fossil"}});
    assert_eq!(code(c.command(with_delta).await), 107);
    assert!(c.command(json!({"subscribe": {"channel": "tf:z", "tf": leaf}})).await["subscribe"].is_object());
}

#[tokio::test]
async fn protobuf_clients_filter_too() {
    let gyre = start();
    let mut c = PbClient::connect(&gyre.ws_url()).await;
    assert!(c.command(pb::connect(&token("42", json!({})))).await.connect.is_some());
    let mut sub = pb::subscribe("tf:pb", None);
    if let Some(s) = sub.subscribe.as_mut() {
        s.tf = Some(filter_node(&apple_from_100()));
    }
    assert!(c.command(sub).await.subscribe.is_some());
    publish_quotes(&gyre, "tf:pb").await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let push: proto::Push = c.next_push().await;
        if let Some(p) = push.r#pub {
            got.push(serde_json::from_slice::<Value>(&p.data).unwrap()["n"].clone());
        }
    }
    assert_eq!(got, [json!(1), json!(4)]);
}

#[tokio::test]
async fn centrifuge_js_and_python_filter_with_their_own_helpers() {
    let gyre = start();
    let out = gyre_tests::interop::run_js(&gyre, "filters.js").await;
    assert!(out.contains("filters ok"), "{out}");
    for args in [&[][..], &["--protobuf"][..]] {
        let out = gyre_tests::interop::run_py_args(&gyre, "filters_sdk.py", args).await;
        assert!(out.contains(": 1 passed, 0 failed"), "{out}");
    }
}

#[tokio::test]
async fn cache_recovery_returns_the_newest_publication_that_passes() {
    let mut config = base_config();
    config["namespaces"].as_array_mut().unwrap().push(json!({
        "name": "tfc", "allow_subscribe_for_client": true, "allow_tags_filter": true,
        "history_size": 10, "history_ttl": "300s", "force_recovery": true, "force_recovery_mode": "cache",
    }));
    let gyre = Gyre::start_with(&config, &[]);
    let (mut c, _) = gyre.connected("42").await;
    let epoch = c.command(json!({"subscribe": {"channel": "tfc:q"}})).await["subscribe"]["epoch"].clone();
    publish_quotes(&gyre, "tfc:q").await;
    let (mut again, _) = gyre.connected("42").await;
    let reply = again
        .command(json!({"subscribe": {"channel": "tfc:q", "tf": apple_from_100(), "recover": true, "offset": 0,
                                     "epoch": epoch}}))
        .await;
    let recovered: Vec<Value> = reply["subscribe"]["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .map(|p| p["data"]["n"].clone())
        .collect();
    assert_eq!(recovered, [json!(4)], "the newest passing one, not the newest: {reply}");
}
