//! The running controllers (`controller::run`) against a routing mock API server: the watches
//! list the objects, the cluster controller reconciles the listed RealtimeCluster (children
//! applied, status with Ready) and programs its Namespace objects — the wiring of watches,
//! owned kinds and the Namespace → cluster mapper, without an API server.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use gyre_operator::metrics::Metrics;
use http::{Request, Response};
use kube::client::Body;
use kube::Client;
use serde_json::{json, Value};
use tower_test::mock;

fn list(api_version: &str, kind: &str, items: Vec<Value>) -> Value {
    json!({"apiVersion": api_version, "kind": format!("{kind}List"), "metadata": {"resourceVersion": "1"}, "items": items})
}

/// Answers by route; watches are held open; returns each non-GET request as (method, path, body).
async fn api_server(
    mut handle: mock::Handle<Request<Body>, Response<Body>>,
    cluster: Value,
    namespaces: Vec<Value>,
    seen: tokio::sync::mpsc::UnboundedSender<(String, String, Value)>,
) {
    let mut open_watches = Vec::new();
    while let Some((req, send)) = handle.next_request().await {
        let method = req.method().to_string();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or_default().to_string();
        let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if query.contains("watch=true") {
            open_watches.push(send);
            continue;
        }
        let reply = match (method.as_str(), path.as_str()) {
            ("GET", p) if p.ends_with("/realtimeclusters") => {
                list("gyre.dev/v1alpha1", "RealtimeCluster", vec![cluster.clone()])
            }
            ("GET", p) if p.ends_with("/namespaces") && p.contains("gyre.dev") => {
                list("gyre.dev/v1alpha1", "Namespace", namespaces.clone())
            }
            ("GET", p) if p.contains("/secrets/") => {
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": p.rsplit('/').next()}})
            }
            ("GET", p) if p.contains("/realtimeclusters/") => {
                json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": "chat", "namespace": "apps"}})
            }
            // Lists of owned kinds (deployments, services, …): empty.
            ("GET", _) => list("v1", "Object", vec![]),
            ("DELETE", _) => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
                let resp =
                    Response::builder().status(404).body(Body::from(serde_json::to_vec(&status).unwrap_or_default()));
                send.send_response(resp.expect("response"));
                let _ = seen.send((method, path, body));
                continue;
            }
            _ => {
                // Apply: echo with the stored object's fields (status applies get the object).
                let mut reply = body.clone();
                if path.ends_with("/status") {
                    let base = if path.contains("realtimeclusters") {
                        cluster.clone()
                    } else {
                        namespaces
                            .iter()
                            .find(|n| {
                                path.contains(&format!(
                                    "/namespaces/{}/",
                                    n["metadata"]["name"].as_str().unwrap_or_default()
                                ))
                            })
                            .cloned()
                            .unwrap_or(Value::Null)
                    };
                    reply = base;
                    reply["status"] = body["status"].clone();
                }
                if path.contains("/deployments/") {
                    reply["status"] =
                        json!({"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": 3});
                }
                reply
            }
        };
        let resp = Response::builder().status(200).body(Body::from(serde_json::to_vec(&reply).unwrap_or_default()));
        send.send_response(resp.expect("response"));
        if method != "GET" {
            let _ = seen.send((method, path, body));
        }
    }
}

#[tokio::test]
async fn controllers_reconcile_what_the_watches_list() {
    let (cluster, namespaces) = common::example("chat-cluster.yaml");
    let cluster = serde_json::to_value(&cluster).expect("cluster");
    let namespaces: Vec<Value> = namespaces.iter().map(|n| serde_json::to_value(n).expect("namespace")).collect();
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(api_server(handle, cluster, namespaces, tx));
    let controllers = tokio::spawn(gyre_operator::controller::run(
        client,
        Arc::new(Metrics::new().expect("metrics")),
        Some("apps".into()),
    ));

    let mut applied = Vec::new();
    let mut cluster_status = Value::Null;
    let mut programmed = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while cluster_status.is_null() || programmed.len() < 2 {
        let Ok(Some((method, path, body))) = tokio::time::timeout_at(deadline, rx.recv()).await else {
            panic!("the controllers did not finish a reconcile; applied so far: {applied:?}");
        };
        if path.ends_with("/realtimeclusters/chat/status") {
            cluster_status = body["status"].clone();
        } else if path.contains("gyre.dev") && path.ends_with("/status") {
            programmed.push(path.clone());
        }
        applied.push(format!("{method} {path}"));
    }
    controllers.abort();
    server.abort();

    for child in [
        "configmaps/chat-config",
        "services/chat",
        "services/chat-internal",
        "deployments/chat",
        "poddisruptionbudgets/chat",
    ] {
        assert!(
            applied.iter().any(|a| a.starts_with("PATCH") && a.ends_with(child)),
            "{child} not applied: {applied:?}"
        );
    }
    let ready = cluster_status["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == "Ready")).cloned();
    assert_eq!(ready.map(|c| c["status"].clone()), Some(json!("True")), "{cluster_status}");
    assert_eq!(cluster_status["namespaces"]["count"], 2);
}
