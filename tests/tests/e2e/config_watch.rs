//! `config_watch_interval`: a config mounted like a ConfigMap is re-read when the kubelet swaps
//! it, and namespace additions, changes and removals apply to connected clients without
//! dropping them.

use std::time::Duration;

use gyre_tests::{base_config, subscribe_until, ConfigMapMount, Gyre};
use serde_json::json;

#[tokio::test]
async fn namespace_changes_in_a_mounted_config_apply_live() {
    let mut config = base_config();
    config["config_watch_interval"] = json!("100ms");
    let mut mount = ConfigMapMount::new(&config);
    let path = mount.path().display().to_string();
    let gyre = Gyre::start_args(&["--config", &path], &[]);
    let (mut c, connect) = gyre.connected("42").await;
    let client_id = connect["connect"]["client"].clone();

    // Added: an unknown namespace (102) becomes subscribable.
    let r = c.command(json!({"subscribe": {"channel": "live:x"}})).await;
    assert_eq!(r["error"]["code"], 102, "{r}");
    config["namespaces"].as_array_mut().unwrap().push(json!({"name": "live", "allow_subscribe_for_client": true}));
    mount.update(&config);
    subscribe_until(&mut c, "live", |r| r.get("subscribe").is_some()).await;

    // Changed: history turned on shows in new subscriptions (recoverable with an epoch).
    let live = config["namespaces"].as_array_mut().unwrap().last_mut().unwrap();
    live["history_size"] = json!(10);
    live["history_ttl"] = json!("60s");
    live["force_recovery"] = json!(true);
    mount.update(&config);
    let r = subscribe_until(&mut c, "live", |r| r["subscribe"]["recoverable"] == true).await;
    assert!(r["subscribe"]["epoch"].is_string(), "{r}");

    // Removed: the namespace is unknown again.
    config["namespaces"].as_array_mut().unwrap().pop();
    mount.update(&config);
    subscribe_until(&mut c, "live", |r| r["error"]["code"] == 102).await;

    // A broken file is refused and the running config kept.
    mount.update(&json!({"port": "not a port"}));
    let ok = gyre_tests::eventually(Duration::from_secs(5), || gyre.logs().contains("config reload refused")).await;
    assert!(ok, "{}", gyre.logs());
    let r = c.command(json!({"subscribe": {"channel": "chat:still"}})).await;
    assert!(r.get("subscribe").is_some(), "{r}");

    // The same connection served every step.
    let r = c.command(json!({"presence": {"channel": "chat:still"}})).await;
    assert!(r["presence"]["presence"].get(client_id.as_str().unwrap_or_default()).is_some(), "{r}");
}
