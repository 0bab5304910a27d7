//! The Prometheus-operator ServiceMonitor, as an untyped object (its CRD may not exist; the
//! operator checks before applying it).

use serde_json::{json, Value};

use super::names::Names;
use crate::crd::RealtimeCluster;

pub const API_VERSION: &str = "monitoring.coreos.com/v1";
pub const KIND: &str = "ServiceMonitor";

pub fn service_monitor(cluster: &RealtimeCluster, names: &Names) -> Option<Value> {
    let sm = &cluster.spec.metrics.service_monitor;
    if !sm.enabled {
        return None;
    }
    let mut meta = serde_json::to_value(names.meta(cluster, names.edge())).ok()?;
    if let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut) {
        for (k, v) in &sm.labels {
            labels.insert(k.clone(), Value::String(v.clone()));
        }
    }
    Some(json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": meta,
        "spec": {
            // Both Services carry these labels; only the internal one has the `internal` port.
            "selector": {"matchLabels": names.selector()},
            "endpoints": [{"port": "internal", "path": "/metrics", "interval": sm.interval}],
        }
    }))
}
