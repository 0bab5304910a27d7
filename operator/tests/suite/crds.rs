//! The generated CRDs: in sync with `crds/`, with the subresources, columns, names, defaults
//! and CEL rules users rely on (the rules evaluated offline with kube's `cel` feature).

use crate::common;

use gyre_operator::crd::{self, Namespace, RealtimeCluster};
use kube::CustomResourceExt;
use serde_json::{json, Value};

#[test]
fn crds_directory_matches_the_types() {
    common::in_sync("crds/gyre.dev.yaml", &crd::crds_yaml().expect("yaml"));
}

#[test]
fn crd_reference_doc_matches_the_types() {
    let generated = crd::reference::markdown();
    common::in_sync("docs/crd-reference.md", &generated);
    assert!(generated.contains("`spec.engine.nats.url` (required)"), "{generated}");
}

fn version(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    serde_json::to_value(&crd.spec.versions[0]).expect("json")
}

#[test]
fn cluster_crd_has_status_scale_columns_and_names() {
    let crd = RealtimeCluster::crd();
    assert_eq!(crd.spec.group, "gyre.dev");
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["rtc".to_string()]));
    assert_eq!(crd.spec.names.categories, Some(vec!["gyre".to_string()]));
    let v = version(&crd);
    assert_eq!(v["name"], "v1alpha1");
    assert_eq!(v["subresources"]["status"], json!({}));
    assert_eq!(v["subresources"]["scale"]["specReplicasPath"], ".spec.replicas");
    assert_eq!(v["subresources"]["scale"]["labelSelectorPath"], ".status.selector");
    let columns: Vec<&str> =
        v["additionalPrinterColumns"].as_array().expect("columns").iter().filter_map(|c| c["name"].as_str()).collect();
    assert_eq!(columns, ["Ready", "Replicas", "Available", "Namespaces", "Age", "Engine", "Reason"]);
    let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert_eq!(spec["properties"]["ports"]["properties"]["client"]["default"], 8000);
    assert_eq!(spec["properties"]["shutdown"]["properties"]["drainSeconds"]["default"], 20);
    assert_eq!(spec["properties"]["config"]["x-kubernetes-preserve-unknown-fields"], true);
    let conditions = &v["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["conditions"];
    assert_eq!(conditions["x-kubernetes-list-type"], "map");
    assert_eq!(conditions["x-kubernetes-list-map-keys"], json!(["type"]));
}

#[test]
fn namespace_crd_is_the_gyre_namespace_kind() {
    let crd = Namespace::crd();
    assert_eq!(crd.metadata.name.as_deref(), Some("namespaces.gyre.dev"));
    assert_eq!(crd.spec.names.kind, "Namespace");
    assert_eq!(crd.spec.names.short_names, Some(vec!["rtns".to_string()]));
    let v = version(&crd);
    assert_eq!(v["subresources"]["status"], json!({}));
    let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"];
    assert!(spec["required"].as_array().expect("required").contains(&json!("clusterRef")));
    assert!(spec["properties"]["historySize"].is_object(), "channel options at the top of spec");
}

fn cluster(spec: Value) -> RealtimeCluster {
    serde_json::from_value(json!({"apiVersion": "gyre.dev/v1alpha1", "kind": "RealtimeCluster",
        "metadata": {"name": "c"}, "spec": spec}))
    .expect("cluster")
}

fn fails(c: &RealtimeCluster, needle: &str) {
    let err = c.validate_cel().expect_err("a CEL rule should fail");
    assert!(format!("{err:?}").contains(needle), "expected {needle:?} in {err:?}");
}

#[test]
fn cluster_cel_rules() {
    let nats = json!({"type": "nats", "nats": {"url": "nats://n:4222"}});
    cluster(json!({"engine": nats, "replicas": 3})).validate_cel().expect("valid");
    cluster(json!({"engine": nats, "autoscaling": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70}}))
        .validate_cel()
        .expect("valid autoscaling");
    fails(
        &cluster(
            json!({"engine": nats, "replicas": 3, "autoscaling": {"maxReplicas": 5, "targetCPUUtilizationPercentage": 70}}),
        ),
        "either replicas or autoscaling",
    );
    fails(
        &cluster(
            json!({"engine": nats, "autoscaling": {"minReplicas": 4, "maxReplicas": 2, "targetCPUUtilizationPercentage": 70}}),
        ),
        "maxReplicas must be at least minReplicas",
    );
    fails(&cluster(json!({"engine": nats, "autoscaling": {"maxReplicas": 4}})), "CPU or a connections target");
    fails(&cluster(json!({"engine": {"type": "memory"}, "replicas": 2})), "memory engine runs one node");
    fails(&cluster(json!({"engine": {"type": "nats"}})), "needs engine.nats");
    fails(&cluster(json!({"engine": {"type": "nats", "nats": {"url": "http://x"}}})), "must start with nats://");
    fails(
        &cluster(
            json!({"engine": nats, "shutdown": {"preStopSeconds": 10, "drainSeconds": 60, "terminationGracePeriodSeconds": 30}}),
        ),
        "must cover",
    );
    fails(&cluster(json!({"engine": nats, "config": {"namespaces": []}})), "Namespace objects");
    fails(
        &cluster(json!({"engine": nats, "service": {"type": "ExternalName"}})),
        "ClusterIP, NodePort or LoadBalancer",
    );
    let key = json!({"name": "s", "key": "grpc"});
    cluster(json!({"engine": nats, "ports": {"grpc": 10000}, "auth": {"grpcApiKeySecretRef": key}}))
        .validate_cel()
        .expect("valid gRPC API");
    fails(&cluster(json!({"engine": nats, "ports": {"grpc": 10000}})), "needs auth.grpcApiKeySecretRef");
    fails(
        &cluster(json!({"engine": nats, "ports": {"grpc": 9000}, "auth": {"grpcApiKeySecretRef": key}})),
        "grpc port must differ",
    );
    cluster(json!({"engine": nats, "ports": {"uniGrpc": 11000}})).validate_cel().expect("valid uni gRPC");
    fails(&cluster(json!({"engine": nats, "ports": {"uniGrpc": 8000}})), "uniGrpc port must differ");
}

#[test]
fn admin_cel_rules() {
    let engine = json!({"type": "memory"});
    let password = json!({"name": "s", "key": "admin-password"});
    let secret = json!({"name": "s", "key": "admin-secret"});
    cluster(json!({"engine": engine})).validate_cel().expect("admin off by default");
    cluster(
        json!({"engine": engine, "admin": {"enabled": true, "passwordSecretRef": password, "secretSecretRef": secret,
        "handlerPrefix": "/ops"}}),
    )
    .validate_cel()
    .expect("valid admin");
    cluster(json!({"engine": engine, "admin": {"enabled": true, "insecure": true}})).validate_cel().expect("insecure");
    cluster(json!({"engine": engine, "admin": {"passwordSecretRef": password}})).validate_cel().expect("disabled");
    fails(&cluster(json!({"engine": engine, "admin": {"enabled": true}})), "needs admin.passwordSecretRef");
    fails(
        &cluster(json!({"engine": engine, "admin": {"enabled": true, "passwordSecretRef": password}})),
        "admin.secretSecretRef",
    );
    fails(
        &cluster(json!({"engine": engine, "admin": {"enabled": true, "insecure": true, "handlerPrefix": "ops"}})),
        "handlerPrefix must be a path",
    );
    fails(
        &cluster(json!({"engine": engine, "admin": {"enabled": true, "insecure": true, "handlerPrefix": "/a/{x}"}})),
        "handlerPrefix must be a path",
    );
    let v = version(&RealtimeCluster::crd());
    let admin = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["admin"];
    assert_eq!(admin["properties"]["enabled"]["default"], false);
    assert!(admin["description"].as_str().is_some_and(|d| d.contains("internal Service")), "{admin}");
}

fn namespace(spec: Value) -> Namespace {
    serde_json::from_value(json!({"apiVersion": "gyre.dev/v1alpha1", "kind": "Namespace",
        "metadata": {"name": "n"}, "spec": spec}))
    .expect("namespace")
}

#[test]
fn namespace_cel_rules() {
    let ok =
        namespace(json!({"clusterRef": {"name": "c"}, "historySize": 10, "historyTtl": "300s", "forceRecovery": true}));
    ok.validate_cel().expect("valid");
    namespace(json!({"clusterRef": {"name": "c"}, "name": "live_scores"})).validate_cel().expect("underscore allowed");
    let n = namespace(json!({"clusterRef": {"name": "c"}, "historySize": 10}));
    assert!(format!("{:?}", n.validate_cel().expect_err("size without ttl")).contains("set both or neither"));
    let n = namespace(json!({"clusterRef": {"name": "c"}, "forceRecovery": true}));
    assert!(format!("{:?}", n.validate_cel().expect_err("recovery without history")).contains("need history"));
    let n = namespace(json!({"clusterRef": {"name": "c"}, "allowPresenceForSubscriber": true}));
    assert!(format!("{:?}", n.validate_cel().expect_err("presence permission")).contains("presence: true"));
    let n = namespace(json!({"clusterRef": {"name": "c"}, "name": "a:b"}));
    assert!(format!("{:?}", n.validate_cel().expect_err("bad name")).contains("at least 2"));
    let n = namespace(json!({"clusterRef": {"name": "c"}, "historySize": 1, "historyTtl": "soon"}));
    assert!(format!("{:?}", n.validate_cel().expect_err("bad duration")).contains("duration"));
    let moved = namespace(
        json!({"clusterRef": {"name": "other"}, "historySize": 10, "historyTtl": "300s", "forceRecovery": true}),
    );
    let err = moved.validate_cel_update(&ok).expect_err("clusterRef is immutable");
    assert!(format!("{err:?}").contains("immutable"), "{err:?}");
}

#[test]
fn deploy_rbac_matches_the_rules() {
    let generated = gyre_operator::rbac::yaml("gyre-system").expect("yaml");
    common::in_sync("deploy/rbac.yaml", &generated);
    // Least privilege: secrets are only read one by one, nothing is deleted but optional children.
    assert!(generated.contains("- secrets\n  verbs:\n  - get\n"), "{generated}");
}

#[test]
fn chart_carries_the_same_crds_and_rbac_rules() {
    let files = [
        ("helm/gyre/files/crds.yaml", crd::crds_yaml().expect("crds")),
        (
            "helm/gyre/files/rbac-rules.yaml",
            gyre_operator::rbac::rules_yaml(&gyre_operator::rbac::rules()).expect("rules"),
        ),
        (
            "helm/gyre/files/lease-rules.yaml",
            gyre_operator::rbac::rules_yaml(&gyre_operator::rbac::lease_rules()).expect("rules"),
        ),
    ];
    for (path, generated) in files {
        common::in_sync(path, &generated);
    }
}

#[test]
fn the_binary_prints_crds_and_rbac_and_explains_a_missing_cluster() {
    let bin = env!("CARGO_BIN_EXE_gyre-operator");
    let root = common::repo_root();
    let out = std::process::Command::new(bin).arg("crd").output().expect("run gyre-operator crd");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(root.join("crds/gyre.dev.yaml")).expect("crds")
    );
    let out =
        std::process::Command::new(bin).args(["rbac", "--operator-namespace", "gyre-system"]).output().expect("rbac");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        std::fs::read_to_string(root.join("deploy/rbac.yaml")).expect("rbac")
    );
    let home = tempfile::tempdir().expect("home");
    let out = std::process::Command::new(bin)
        .args(["run", "--http-addr", "127.0.0.1:0"])
        .env_clear()
        .env("HOME", home.path())
        .output()
        .expect("run");
    assert!(!out.status.success(), "run without a cluster must fail");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Kubernetes client configuration"), "{err}");
}
