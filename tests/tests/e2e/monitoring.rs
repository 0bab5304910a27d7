//! The Grafana dashboard and the Prometheus alerts in deploy/ use only metrics that a running
//! gyre (and the operator) actually export, so a renamed metric cannot silently blank a panel.

use std::collections::BTreeSet;

use gyre_tests::{repo_root, Gyre};
use serde_json::{json, Value};

/// Metric families a running edge exports (`# TYPE` lines), after traffic that touches every
/// labelled family (they appear with their first label value).
async fn edge_metrics() -> BTreeSet<String> {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let sub = c.command(json!({"subscribe": {"channel": "chat:m"}})).await;
    let (epoch, offset) = (sub["subscribe"]["epoch"].clone(), sub["subscribe"]["offset"].as_u64().unwrap_or(0));
    gyre.api("publish", json!({"channel": "chat:m", "data": {}})).await;
    c.next_push().await;
    gyre.api("publish", json!({"channel": "nope:m", "data": {}})).await;
    c.command(json!({"subscribe": {"channel": "locked:m"}})).await;
    let (mut d, _) = gyre.connected("43").await;
    d.command(json!({"subscribe": {"channel": "chat:m", "recover": true, "epoch": epoch, "offset": offset}})).await;
    gyre.api("disconnect", json!({"user": "43"})).await;
    d.closed().await;
    // The close frame can reach the client before the session has counted its disconnect.
    let deadline = std::time::Instant::now() + gyre_tests::ws::WAIT;
    loop {
        let text = gyre.http().get(format!("{}/metrics", gyre.internal_base())).send().await.expect("metrics");
        let found = families(&text.text().await.expect("metrics text"));
        if found.contains("gyre_client_num_server_disconnects_total") || std::time::Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// `gyre_…` identifiers in a text, histogram suffixes folded into their family.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("gyre_") {
        let start = i + pos;
        let boundary = start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end =
            text[start..].find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).map_or(text.len(), |e| start + e);
        if boundary {
            let name = &text[start..end];
            let family = ["_bucket", "_count", "_sum"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
            out.insert(family.to_string());
        }
        i = end;
    }
    out
}

#[tokio::test]
async fn dashboard_and_alerts_use_exported_metrics() {
    let mut exported = edge_metrics().await;
    let operator = gyre_operator::metrics::Metrics::new().expect("operator metrics");
    operator.reconciles.with_label_values(&["RealtimeCluster"]).inc();
    operator.failures.with_label_values(&["RealtimeCluster", "api"]).inc();
    operator.duration.with_label_values(&["RealtimeCluster"]).observe(0.1);
    exported.extend(families(&operator.render()));
    assert!(exported.contains("gyre_node_engine_ready") && exported.contains("gyre_operator_reconcile_failures_total"));

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/dashboards/gyre.json")).expect("dashboard"),
    )
    .expect("the dashboard is JSON");
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push_str(target["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let rules = std::fs::read_to_string(repo_root().join("deploy/monitoring/prometheus-rules.yaml")).expect("rules");
    let adapter =
        std::fs::read_to_string(repo_root().join("deploy/examples/prometheus-adapter.yaml")).expect("adapter");
    for (what, text) in [("dashboard", exprs.as_str()), ("alerts", rules.as_str()), ("adapter rule", adapter.as_str())]
    {
        let used = referenced(text);
        assert!(!used.is_empty(), "{what} references no gyre metric");
        let unknown: Vec<&String> = used.difference(&exported).collect();
        assert!(unknown.is_empty(), "{what} uses metrics nothing exports: {unknown:?} (exported: {exported:?})");
    }
}
