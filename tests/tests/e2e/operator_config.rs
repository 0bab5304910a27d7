//! The operator's rendered ConfigMap runs a real edge on a real NATS, and editing `Namespace`
//! objects (re-rendered into the mounted file, swapped like the kubelet does) takes effect for
//! connected clients without dropping them.

use gyre_operator::crd::{Namespace, RealtimeCluster};
use gyre_tests::{nats::NatsServer, repo_root, subscribe_until, ConfigMapMount, Gyre, API_KEY, SECRET};
use serde_json::{json, Value};

fn chat_example() -> (RealtimeCluster, Vec<Namespace>) {
    let text = std::fs::read_to_string(repo_root().join("deploy/examples/chat-cluster.yaml")).expect("example");
    let mut cluster = None;
    let mut namespaces = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("yaml");
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("RealtimeCluster") => cluster = Some(serde_yaml::from_value(value).expect("cluster")),
            Some("Namespace") => namespaces.push(serde_yaml::from_value(value).expect("namespace")),
            other => panic!("unexpected kind {other:?}"),
        }
    }
    (cluster.expect("cluster"), namespaces)
}

/// The ConfigMap's config.json, with the listeners moved to free loopback ports (the only
/// change: a pod owns its ports, parallel tests do not).
fn rendered_config(cluster: &RealtimeCluster, namespaces: &[Namespace]) -> Value {
    let rendered = gyre_operator::render::render(cluster, namespaces).expect("render");
    let text = &rendered.config_map.data.as_ref().expect("data")["config.json"];
    let mut config: Value = serde_json::from_str(text).expect("json");
    for (k, v) in [
        ("port", json!(0)),
        ("internal_port", json!(0)),
        ("address", json!("127.0.0.1")),
        ("internal_address", json!("127.0.0.1")),
    ] {
        config[k] = v;
    }
    config
}

#[tokio::test]
async fn rendered_config_serves_on_nats_and_namespace_edits_apply_live() {
    // The example keeps 3 stream replicas: a 3-node JetStream cluster, as in production.
    let nats = NatsServer::cluster();
    let (mut cluster, mut namespaces) = chat_example();
    cluster.spec.engine.nats.as_mut().expect("nats").url =
        nats.iter().map(NatsServer::url).collect::<Vec<_>>().join(",");
    let mut mount = ConfigMapMount::new(&rendered_config(&cluster, &namespaces));
    // The Deployment passes the Secret's values as these variables.
    let env = [("GYRE_TOKEN_HMAC_SECRET_KEY", SECRET), ("GYRE_API_KEY", API_KEY)];
    let gyre = Gyre::start_file_with_internal(&mount.path(), &env);
    gyre.wait_ready().await;

    let (mut c, _) = gyre.connected("alice").await;
    let sub = c.command(json!({"subscribe": {"channel": "chat:room"}})).await;
    assert_eq!(sub["subscribe"]["recoverable"], true, "chat keeps history: {sub}");
    let (status, body) = gyre.api("publish", json!({"channel": "chat:room", "data": {"text": "hi"}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(c.next_push().await["pub"]["data"], json!({"text": "hi"}));
    let history = c.command(json!({"history": {"channel": "chat:room", "limit": 10}})).await;
    assert_eq!(history["history"]["publications"].as_array().map(Vec::len), Some(1), "{history}");

    // A new Namespace object: its channels work on the same connection.
    let r = c.command(json!({"subscribe": {"channel": "alerts:x"}})).await;
    assert_eq!(r["error"]["code"], 102, "{r}");
    let mut alerts = namespaces[1].clone();
    alerts.metadata.name = Some("alerts".into());
    alerts.spec.options.history_size = 5;
    namespaces.push(alerts);
    mount.update(&rendered_config(&cluster, &namespaces));
    let r = subscribe_until(&mut c, "alerts", |r| r.get("subscribe").is_some()).await;
    assert_eq!(r["subscribe"]["recoverable"], true, "{r}");

    // Removing chat: new chat subscriptions are refused; the connection stays.
    namespaces.retain(|n| n.metadata.name.as_deref() != Some("chat"));
    mount.update(&rendered_config(&cluster, &namespaces));
    subscribe_until(&mut c, "chat", |r| r["error"]["code"] == 102).await;
    let r = c.command(json!({"subscribe": {"channel": "notifications:alice"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");
    let stats = gyre.api("info", json!({})).await.1;
    assert_eq!(stats["result"]["nodes"][0]["num_clients"], 1, "the client was never dropped: {stats}");
}
