//! Reconciles against a mocked API server (kube's tower-test pattern): every request the
//! operator makes is checked in order — method, path, field manager, body — and answered as an
//! API server would. A missing request times out; an unexpected one gets no answer and the
//! reconcile times out too.

use std::sync::Arc;
use std::time::Duration;

use crate::common::example;
use gyre_operator::controller::{cluster, namespace, Context};
use gyre_operator::crd::{Namespace, RealtimeCluster};
use gyre_operator::leader::Election;
use gyre_operator::metrics::Metrics;
use http::{Request, Response};
use kube::client::Body;
use kube::{Api, Client};
use serde_json::{json, Value};
use tower_test::mock;

type Handle = mock::Handle<Request<Body>, Response<Body>>;

/// One expected request and the answer to it.
struct Expect {
    method: &'static str,
    path: String,
    /// Substrings the query must contain (e.g. the field manager).
    query: Vec<&'static str>,
    status: u16,
    /// The answer; `None` echoes the request body (what an apply stores).
    reply: Option<Value>,
    /// Merged into an echoed body (e.g. a Deployment's status).
    add: Option<Value>,
    /// For a status apply: the stored object, answered with the applied status.
    onto: Option<Value>,
}

fn expect(method: &'static str, path: &str) -> Expect {
    Expect { method, path: path.to_string(), query: Vec::new(), status: 200, reply: None, add: None, onto: None }
}

impl Expect {
    fn applied(mut self) -> Self {
        self.query = vec!["fieldManager=gyre-operator", "force=true"];
        self
    }
    fn reply(mut self, status: u16, body: Value) -> Self {
        self.status = status;
        self.reply = Some(body);
        self
    }
    fn not_found(self) -> Self {
        self.reply(
            404,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
        )
    }
    fn with(mut self, add: Value) -> Self {
        self.add = Some(add);
        self
    }
    fn onto<T: serde::Serialize>(mut self, object: &T) -> Self {
        self.onto = Some(serde_json::to_value(object).expect("object"));
        self
    }
}

/// A request as seen: method, path?query, content type and body.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    content_type: String,
    body: Value,
}

fn merge(base: &mut Value, add: &Value) {
    match (base, add) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, v) in a {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, a) => *b = a.clone(),
    }
}

async fn serve(mut handle: Handle, expects: Vec<Expect>) -> Vec<Seen> {
    let mut seen = Vec::new();
    for e in expects {
        let (req, send) =
            handle.next_request().await.unwrap_or_else(|| panic!("no request; expected {} {}", e.method, e.path));
        let method = req.method().to_string();
        let uri = req.uri().clone();
        let content_type =
            req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = req.into_body().collect_bytes().await.expect("request body");
        let body: Value =
            if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("json body") };
        assert_eq!((method.as_str(), uri.path()), (e.method, e.path.as_str()), "unexpected request {method} {uri}");
        for q in &e.query {
            assert!(uri.query().unwrap_or_default().contains(q), "{method} {uri}: query lacks {q}");
        }
        let mut reply = e.reply.clone().unwrap_or_else(|| body.clone());
        if let Some(add) = &e.add {
            merge(&mut reply, add);
        }
        if let Some(object) = &e.onto {
            reply = object.clone();
            reply["status"] = body["status"].clone();
        }
        seen.push(Seen { method, uri: uri.to_string(), content_type, body });
        let resp = Response::builder()
            .status(e.status)
            .body(Body::from(serde_json::to_vec(&reply).expect("json")))
            .expect("response");
        send.send_response(resp);
    }
    seen
}

fn context() -> (Arc<Context>, Handle) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (Arc::new(Context::new(client, Arc::new(Metrics::new().expect("metrics")))), handle)
}

/// Runs `reconcile` against the scenario; returns the requests seen and the result.
async fn run_cluster(cluster: RealtimeCluster, expects: Vec<Expect>) -> (Vec<Seen>, String) {
    let (ctx, handle) = context();
    let server = tokio::spawn(serve(handle, expects));
    let result = tokio::time::timeout(Duration::from_secs(5), cluster::reconcile(Arc::new(cluster), ctx))
        .await
        .expect("reconcile made an unexpected request (or hung)");
    let seen =
        tokio::time::timeout(Duration::from_secs(1), server).await.expect("a request never came").expect("scenario");
    (seen, format!("{result:?}"))
}

const BASE: &str = "/apis/gyre.dev/v1alpha1/namespaces/apps";

fn list_namespaces(items: &[Namespace]) -> Expect {
    expect("GET", &format!("{BASE}/namespaces"))
        .reply(200, json!({"apiVersion": "gyre.dev/v1alpha1", "kind": "NamespaceList", "metadata": {}, "items": items}))
}

fn secret(name: &str) -> Expect {
    expect("GET", &format!("/api/v1/namespaces/apps/secrets/{name}")).reply(
        200,
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": name}}),
    )
}

fn ready_deployment(n: i32) -> Value {
    json!({"status": {"replicas": n, "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n}})
}

fn chat_scenario(namespaces: &[Namespace]) -> Vec<Expect> {
    vec![
        list_namespaces(namespaces),
        secret("chat-gyre"),
        expect("PATCH", "/api/v1/namespaces/apps/configmaps/chat-config").applied(),
        expect("PATCH", "/api/v1/namespaces/apps/services/chat").applied(),
        expect("PATCH", "/api/v1/namespaces/apps/services/chat-internal").applied(),
        expect("PATCH", "/apis/apps/v1/namespaces/apps/deployments/chat").applied().with(ready_deployment(3)),
        expect("DELETE", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/chat").not_found(),
        expect("PATCH", "/apis/policy/v1/namespaces/apps/poddisruptionbudgets/chat").applied(),
        expect("DELETE", "/apis/monitoring.coreos.com/v1/namespaces/apps/servicemonitors/chat").not_found(),
    ]
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"].as_array().and_then(|c| c.iter().find(|c| c["type"] == type_)).unwrap_or(&Value::Null)
}

/// The chat example's first reconcile: every child, then both Namespace statuses and the
/// cluster's status.
fn chat_first_pass(cluster: &RealtimeCluster, namespaces: &[Namespace]) -> Vec<Expect> {
    let mut scenario = chat_scenario(namespaces);
    scenario.push(expect("PATCH", &format!("{BASE}/namespaces/chat/status")).applied().onto(&namespaces[0]));
    scenario.push(expect("PATCH", &format!("{BASE}/namespaces/notifications/status")).applied().onto(&namespaces[1]));
    scenario.push(expect("PATCH", &format!("{BASE}/realtimeclusters/chat/status")).applied().onto(cluster));
    scenario
}

#[tokio::test]
async fn first_reconcile_applies_every_child_then_reports_status() {
    let (cluster, namespaces) = example("chat-cluster.yaml");
    let scenario = chat_first_pass(&cluster, &namespaces);
    let (seen, result) = run_cluster(cluster, scenario).await;
    assert!(result.starts_with("Ok"), "{result}");

    let patches: Vec<&Seen> = seen.iter().filter(|s| s.method == "PATCH").collect();
    assert!(patches.iter().all(|s| s.content_type == "application/apply-patch+yaml"), "server-side apply only");
    let manager = |s: &Seen| s.uri.split(['?', '&']).any(|p| p == "fieldManager=gyre-operator");
    assert!(patches.iter().all(|s| manager(s)), "one field manager");
    let config = &seen[2].body;
    assert!(config["data"]["config.json"].as_str().expect("config").contains("\"history_size\": 100"));
    let deployment = &seen[5].body;
    assert_eq!(deployment["spec"]["replicas"], 3);
    assert_eq!(deployment["metadata"]["ownerReferences"][0]["kind"], "RealtimeCluster");

    let ns_status = &seen[9].body["status"];
    assert_eq!(condition(ns_status, "Accepted")["status"], "True");
    assert_eq!(condition(ns_status, "Programmed")["status"], "True");
    let status = &seen[11].body["status"];
    assert_eq!(condition(status, "Ready")["status"], "True", "{status}");
    assert_eq!(condition(status, "Reconciled")["reason"], "Applied");
    assert_eq!(condition(status, "Available")["reason"], "AllReplicasReady");
    assert_eq!(status["namespaces"], json!({"count": 2, "names": ["chat", "notifications"]}));
    assert_eq!(status["observedGeneration"], 1);
    assert!(status["configHash"].as_str().is_some_and(|h| h.len() == 64));
}

#[tokio::test]
async fn an_unchanged_world_writes_no_status() {
    let (cluster, namespaces) = example("chat-cluster.yaml");
    let (seen, _) = run_cluster(cluster.clone(), chat_first_pass(&cluster, &namespaces)).await;

    // Second pass with the statuses written by the first: only applies, no status patches.
    let mut cluster = cluster;
    cluster.status = serde_json::from_value(seen[11].body["status"].clone()).expect("status");
    let namespaces: Vec<Namespace> = namespaces
        .into_iter()
        .zip([&seen[9], &seen[10]])
        .map(|(mut n, s)| {
            n.status = serde_json::from_value(s.body["status"].clone()).expect("ns status");
            n
        })
        .collect();
    let (seen, result) = run_cluster(cluster, chat_scenario(&namespaces)).await;
    assert!(result.starts_with("Ok"), "{result}");
    assert_eq!(seen.len(), 9);
}

#[tokio::test]
async fn a_missing_secret_is_reported_and_nothing_is_applied() {
    let (cluster, namespaces) = example("chat-cluster.yaml");
    let scenario = vec![
        list_namespaces(&namespaces),
        expect("GET", "/api/v1/namespaces/apps/secrets/chat-gyre").not_found(),
        expect("PATCH", &format!("{BASE}/realtimeclusters/chat/status")).applied().onto(&cluster),
    ];
    let (seen, result) = run_cluster(cluster, scenario).await;
    assert!(result.contains("requeue_after: Some(30s)"), "{result}");
    let status = &seen[2].body["status"];
    assert_eq!(condition(status, "Reconciled")["reason"], "SecretNotFound");
    assert!(condition(status, "Ready")["message"].as_str().unwrap_or_default().contains("chat-gyre"));
}

#[tokio::test]
async fn a_missing_admin_secret_is_reported_like_any_other() {
    let (mut cluster, namespaces) = example("chat-cluster.yaml");
    cluster.spec.admin = serde_json::from_value(json!({"enabled": true,
        "passwordSecretRef": {"name": "chat-admin", "key": "password"},
        "secretSecretRef": {"name": "chat-admin", "key": "secret"}}))
    .expect("admin");
    let scenario = vec![
        list_namespaces(&namespaces),
        expect("GET", "/api/v1/namespaces/apps/secrets/chat-admin").not_found(),
        secret("chat-gyre"),
        expect("PATCH", &format!("{BASE}/realtimeclusters/chat/status")).applied().onto(&cluster),
    ];
    let (seen, result) = run_cluster(cluster, scenario).await;
    assert!(result.contains("requeue_after: Some(30s)"), "{result}");
    let status = &seen[3].body["status"];
    assert_eq!(condition(status, "Reconciled")["reason"], "SecretNotFound");
    assert_eq!(condition(status, "Ready")["message"], "Secret(s) not found: chat-admin");
}

#[tokio::test]
async fn admin_without_its_secrets_is_an_invalid_spec() {
    let (mut cluster, namespaces) = example("chat-cluster.yaml");
    cluster.spec.admin.enabled = true;
    let scenario = vec![
        list_namespaces(&namespaces),
        expect("PATCH", &format!("{BASE}/realtimeclusters/chat/status")).applied().onto(&cluster),
    ];
    let (seen, result) = run_cluster(cluster, scenario).await;
    assert!(result.contains("requeue_after: None"), "waits for a change: {result}");
    let status = &seen[1].body["status"];
    assert_eq!(condition(status, "Reconciled")["reason"], "InvalidSpec");
    let message = condition(status, "Reconciled")["message"].as_str().unwrap_or_default();
    assert!(message.contains("spec.admin.passwordSecretRef"), "{message}");
}

#[tokio::test]
async fn an_invalid_spec_is_reported_without_applying() {
    let (mut cluster, namespaces) = example("chat-cluster.yaml");
    cluster.spec.config = Some(serde_json::Map::from_iter([("api_key".to_string(), json!("plain"))]));
    let scenario = vec![
        list_namespaces(&namespaces),
        expect("PATCH", &format!("{BASE}/realtimeclusters/chat/status")).applied().onto(&cluster),
    ];
    let (seen, _) = run_cluster(cluster, scenario).await;
    let status = &seen[1].body["status"];
    assert_eq!(condition(status, "Reconciled")["reason"], "InvalidSpec");
    assert!(condition(status, "Reconciled")["message"].as_str().unwrap_or_default().contains("apiKeySecretRef"));
}

#[tokio::test]
async fn autoscaling_hands_replicas_to_the_hpa_and_tolerates_a_missing_servicemonitor_crd() {
    let (cluster, namespaces) = example("autoscaling-cluster.yaml");
    let live = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "live", "namespace": "apps", "managedFields": [
            {"manager": "gyre-operator", "operation": "Apply", "apiVersion": "apps/v1",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 4, "selector": {"matchLabels": {"a": "b"}}, "template": {}}
    });
    let scenario = vec![
        list_namespaces(&namespaces),
        secret("live-auth"),
        secret("live-nats"),
        expect("PATCH", "/api/v1/namespaces/apps/configmaps/live-config").applied(),
        expect("PATCH", "/api/v1/namespaces/apps/services/live").applied(),
        expect("PATCH", "/api/v1/namespaces/apps/services/live-internal").applied(),
        expect("GET", "/apis/apps/v1/namespaces/apps/deployments/live").reply(200, live),
        {
            let mut e = expect("PATCH", "/apis/apps/v1/namespaces/apps/deployments/live");
            e.query = vec!["fieldManager=gyre-operator-handoff"];
            e
        },
        expect("PATCH", "/apis/apps/v1/namespaces/apps/deployments/live").applied().with(ready_deployment(4)),
        expect("PATCH", "/apis/autoscaling/v2/namespaces/apps/horizontalpodautoscalers/live").applied(),
        expect("PATCH", "/apis/policy/v1/namespaces/apps/poddisruptionbudgets/live").applied(),
        expect("PATCH", "/apis/monitoring.coreos.com/v1/namespaces/apps/servicemonitors/live").applied().not_found(),
        expect("PATCH", &format!("{BASE}/namespaces/scores/status")).applied().onto(&namespaces[0]),
        expect("PATCH", &format!("{BASE}/realtimeclusters/live/status")).applied().onto(&cluster),
    ];
    let (seen, result) = run_cluster(cluster, scenario).await;
    assert!(result.starts_with("Ok"), "{result}");
    assert_eq!(seen[7].body["spec"]["replicas"], 4, "the handoff keeps the current replica count");
    assert!(seen[8].body["spec"].get("replicas").is_none(), "our apply leaves replicas to the HPA");
    let status = &seen[13].body["status"];
    assert_eq!(condition(status, "Reconciled")["reason"], "ServiceMonitorCRDMissing");
    assert_eq!(condition(status, "Reconciled")["status"], "True");
    assert_eq!(seen[12].body["status"]["resolvedName"], "live_scores");
}

#[tokio::test]
async fn a_namespace_without_its_cluster_is_not_accepted() {
    let (_, namespaces) = example("chat-cluster.yaml");
    let (ctx, handle) = context();
    let scenario = vec![
        expect("GET", &format!("{BASE}/realtimeclusters/chat")).not_found(),
        expect("PATCH", &format!("{BASE}/namespaces/chat/status")).applied().onto(&namespaces[0]),
    ];
    let server = tokio::spawn(serve(handle, scenario));
    let result =
        tokio::time::timeout(Duration::from_secs(5), namespace::reconcile(Arc::new(namespaces[0].clone()), ctx))
            .await
            .expect("reconcile hung");
    assert!(result.is_ok(), "{result:?}");
    let seen = server.await.expect("scenario");
    let status = &seen[1].body["status"];
    assert_eq!(condition(status, "Accepted")["status"], "False");
    assert_eq!(condition(status, "Accepted")["reason"], "ClusterNotFound");
}

#[tokio::test]
async fn failures_back_off_exponentially_and_reset_on_success() {
    let (ctx, _handle) = context();
    let delays: Vec<u64> = (0..9).map(|_| ctx.backoff("RealtimeCluster/apps/x").as_secs()).collect();
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    assert_eq!(ctx.backoff("RealtimeCluster/apps/other").as_secs(), 5, "per object");
}

fn election(client: Client, identity: &str) -> Election {
    Election {
        api: Api::namespaced(client, "ops"),
        name: "gyre-operator".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
    }
}

#[tokio::test]
async fn leader_election_takes_a_free_or_expired_lease_and_respects_a_live_one() {
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/gyre-operator";
    let now = k8s_openapi::jiff::Timestamp::now();
    let held = |holder: &str, renewed: k8s_openapi::jiff::Timestamp| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "gyre-operator", "resourceVersion": "7"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(renewed), "leaseTransitions": 2}})
    };
    let cases = vec![
        (
            vec![
                expect("GET", lease_path).not_found(),
                expect("POST", "/apis/coordination.k8s.io/v1/namespaces/ops/leases"),
            ],
            true,
        ),
        (vec![expect("GET", lease_path).reply(200, held("b", now))], false),
        (
            vec![
                expect("GET", lease_path).reply(200, held("b", now - k8s_openapi::jiff::SignedDuration::from_secs(60))),
                expect("PATCH", lease_path),
            ],
            true,
        ),
        (vec![expect("GET", lease_path).reply(200, held("a", now)), expect("PATCH", lease_path)], true),
    ];
    for (i, (scenario, leads)) in cases.into_iter().enumerate() {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        let server = tokio::spawn(serve(handle, scenario));
        let got = tokio::time::timeout(Duration::from_secs(5), election(client, "a").try_acquire())
            .await
            .expect("hung")
            .expect("lease call");
        assert_eq!(got, leads, "case {i}");
        let seen = server.await.expect("scenario");
        if i == 2 {
            let patch = &seen[1].body;
            assert_eq!(patch["metadata"]["resourceVersion"], "7", "compare-and-swap on the version");
            assert_eq!(
                (patch["spec"]["holderIdentity"].as_str(), patch["spec"]["leaseTransitions"].as_i64()),
                (Some("a"), Some(3))
            );
        }
    }
}

#[tokio::test]
async fn the_leader_runs_the_work_and_stops_when_another_replica_takes_the_lease() {
    let lease_path = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/gyre-operator";
    let now = k8s_openapi::jiff::Timestamp::now();
    let by = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "gyre-operator", "resourceVersion": "1"},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                        "renewTime": k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(now)}})
    };
    // Acquired, the work finishes: lead() reported leadership, released the Lease, returned Ok.
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let scenario = vec![
        expect("GET", lease_path).reply(200, by("a")),
        expect("PATCH", lease_path),
        expect("GET", lease_path).reply(200, by("a")),
        expect("PATCH", lease_path),
    ];
    let server = tokio::spawn(serve(handle, scenario));
    let mut e = election(Client::new(service, "default"), "a");
    e.lease_duration = Duration::from_millis(300);
    let calls = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let record = calls.clone();
    let result = tokio::time::timeout(Duration::from_secs(5), e.lead(async {}, move |l| record.lock().push(l)))
        .await
        .expect("lead hung");
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(*calls.lock(), [true, false], "led, then stepped down");
    let seen = server.await.expect("scenario");
    assert_eq!(seen[3].body["spec"]["holderIdentity"], Value::Null, "released: {:?}", seen[3].body);
    assert_eq!(seen[3].body["metadata"]["resourceVersion"], "1", "released only if still ours");

    // Acquired, then another replica holds it at the next renewal: the work is abandoned.
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let scenario = vec![
        expect("GET", lease_path).reply(200, by("a")),
        expect("PATCH", lease_path),
        expect("GET", lease_path).reply(200, by("a")),
        expect("PATCH", lease_path),
        expect("GET", lease_path).reply(200, by("b")),
    ];
    let server = tokio::spawn(serve(handle, scenario));
    let mut e = election(Client::new(service, "default"), "a");
    e.lease_duration = Duration::from_millis(300);
    let result = tokio::time::timeout(Duration::from_secs(5), e.lead(std::future::pending::<()>(), |_| {}))
        .await
        .expect("lead did not notice the lost lease");
    let err = result.expect_err("leadership lost");
    assert!(err.to_string().contains("leadership lost"), "{err}");
    server.await.expect("scenario");
}
