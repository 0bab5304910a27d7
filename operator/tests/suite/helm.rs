//! The Helm chart with a real `helm` (installed by scripts/install-helm): lint with the values
//! schema, templates valid for the oldest and newest supported Kubernetes, RBAC and CRDs as the
//! operator defines them, and `deploy/` (install manifest, NATS, examples) in step and valid.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::json;

const HINT: &str = "run ./scripts/test (it installs helm with scripts/install-helm and the schema tools)";
const KUBERNETES: [&str; 2] = ["1.33.0", "1.37.0"];

fn tool(path: &str) -> PathBuf {
    let p = common::repo_root().join(path);
    assert!(p.exists(), "{} is missing; {HINT}", p.display());
    p
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {HINT}"));
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn helm(args: &[&str]) -> (bool, String) {
    let home = tempfile::tempdir().expect("helm home");
    let root = common::repo_root();
    run(Command::new(tool("operator/tests/k8s/.tools/helm"))
        .args(args)
        .current_dir(&root)
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data")))
}

/// `helm template` of the chart with extra arguments; panics on failure.
fn template(extra: &[&str]) -> String {
    let mut args = vec!["template", "gyre", "helm/gyre", "--namespace", "gyre-system", "--kube-version", "1.33.0"];
    args.extend_from_slice(extra);
    let (ok, out) = helm(&args);
    assert!(ok, "helm template {extra:?} failed:\n{out}");
    out
}

fn write_temp(text: &str) -> tempfile::NamedTempFile {
    let f = tempfile::Builder::new().suffix(".yaml").tempfile().expect("temp file");
    std::fs::write(f.path(), text).expect("write");
    f
}

/// kubernetes-validate --strict for both versions; only custom resources may lack a schema.
fn kubernetes_validate(file: &Path) {
    for version in KUBERNETES {
        let (ok, out) = run(Command::new(tool("operator/tests/k8s/.venv/bin/kubernetes-validate"))
            .args(["--strict", "-k", version])
            .arg(file));
        assert!(ok, "kubernetes-validate -k {version} {}:\n{out}", file.display());
        for line in out.lines().filter(|l| l.contains("WARN")) {
            let custom =
                ["gyre.dev", "monitoring.coreos.com", "gateway.networking.k8s.io"].iter().any(|g| line.contains(g));
            assert!(custom, "{}: a built-in kind without a schema check: {line}", file.display());
        }
    }
}

/// Custom resources in `file` against the generated CRD schemas.
fn validate_custom_resources(file: &Path) {
    let root = common::repo_root();
    let (ok, out) = run(Command::new(tool("operator/tests/k8s/.venv/bin/python"))
        .arg(root.join("operator/tests/k8s/validate_crs.py"))
        .arg(root.join("crds/gyre.dev.yaml"))
        .arg(file));
    assert!(ok, "{out}");
}

#[test]
fn chart_lints_strictly_and_its_schema_rejects_bad_values() {
    for values in [None, Some("helm/gyre/ci/full-values.yaml")] {
        let mut args = vec!["lint", "--strict", "helm/gyre", "--kube-version", "1.33.0"];
        if let Some(v) = values {
            args.extend(["-f", v]);
        }
        let (ok, out) = helm(&args);
        assert!(ok, "helm lint {values:?}:\n{out}");
    }
    let (ok, out) = helm(&["lint", "--strict", "helm/gyre", "-f", "operator/tests/k8s/bad-values.yaml"]);
    assert!(!ok, "bad values passed lint:\n{out}");
    for needle in [
        "replicaCount",
        "logFormat",
        "serviceMonitor.enabled",
        "examples.clusters.0.name",
        "engine is required",
        "examples.clusters.1.spec.admin: passwordSecretRef is required",
    ] {
        assert!(out.contains(needle), "no complaint about {needle}:\n{out}");
    }
}

#[test]
fn templates_are_valid_for_oldest_and_newest_kubernetes() {
    let default = write_temp(&template(&[]));
    kubernetes_validate(default.path());
    let full = template(&["-f", "helm/gyre/ci/full-values.yaml", "--api-versions", "monitoring.coreos.com/v1"]);
    assert!(full.contains("kind: ServiceMonitor") && full.contains("kind: RealtimeCluster"), "{full}");
    let full = write_temp(&full);
    kubernetes_validate(full.path());
    validate_custom_resources(full.path());
}

fn docs(text: &str) -> Vec<serde_yaml::Value> {
    serde_yaml::Deserializer::from_str(text)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &serde_yaml::Value| !v.is_null())
        .collect()
}

fn of_kind<'a>(docs: &'a [serde_yaml::Value], kind: &str) -> Vec<&'a serde_yaml::Value> {
    docs.iter().filter(|d| d["kind"].as_str() == Some(kind)).collect()
}

#[test]
fn chart_rbac_is_the_operators_and_can_be_limited_to_one_namespace() {
    let rules: serde_yaml::Value = serde_yaml::to_value(gyre_operator::rbac::rules()).expect("rules");
    let cluster_wide = docs(&template(&[]));
    let role = of_kind(&cluster_wide, "ClusterRole");
    assert_eq!(role.len(), 1);
    assert_eq!(role[0]["rules"], rules);
    assert!(of_kind(&cluster_wide, "Role").iter().any(|r| r["metadata"]["name"] == "gyre-leader-election"));
    let deployment = &of_kind(&cluster_wide, "Deployment")[0];
    let env = serde_yaml::to_string(&deployment["spec"]["template"]["spec"]["containers"][0]["env"]).expect("env");
    assert!(env.contains("POD_NAMESPACE"), "leader election needs the pod's namespace: {env}");

    let one = docs(&template(&["--set", "watchNamespace=apps", "--set", "leaderElection.enabled=false"]));
    assert!(of_kind(&one, "ClusterRole").is_empty());
    let roles = of_kind(&one, "Role");
    assert_eq!(roles.len(), 1, "no Lease role without leader election");
    assert_eq!((roles[0]["metadata"]["namespace"].as_str(), &roles[0]["rules"]), (Some("apps"), &rules));
    let deployment = &of_kind(&one, "Deployment")[0];
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    let env = serde_yaml::to_string(&deployment["spec"]["template"]["spec"]["containers"][0]["env"]).expect("env");
    assert!(env.contains("GYRE_OPERATOR_WATCH_NAMESPACE") && !env.contains("POD_NAMESPACE"), "{env}");
}

#[test]
fn chart_crds_are_the_generated_ones_and_kept_on_uninstall() {
    let generated = docs(&gyre_operator::crd::crds_yaml().expect("crds"));
    let rendered = docs(&template(&[]));
    let crds = of_kind(&rendered, "CustomResourceDefinition");
    assert_eq!(crds.len(), 2);
    for (mut chart, original) in crds.into_iter().cloned().zip(generated) {
        assert_eq!(chart["metadata"]["annotations"]["helm.sh/resource-policy"], "keep");
        if let Some(m) = chart["metadata"].as_mapping_mut() {
            m.remove("annotations");
        }
        assert_eq!(chart, original);
    }
    let not_kept = docs(&template(&["--set", "crds.keep=false"]));
    assert!(of_kind(&not_kept, "CustomResourceDefinition")[0]["metadata"].get("annotations").is_none());
    assert!(of_kind(&docs(&template(&["--set", "crds.enabled=false"])), "CustomResourceDefinition").is_empty());
}

/// The chart deploys the operator, not edges: a cluster's admin UI is `spec.admin` of a
/// RealtimeCluster (here the chart's example in ci/full-values.yaml), which the operator turns
/// into config, env and Services. This follows that chain from `helm template` to the
/// operator's children.
#[test]
fn chart_example_cluster_gets_its_admin_ui_on_the_internal_service_only() {
    let rendered = docs(&template(&["-f", "helm/gyre/ci/full-values.yaml"]));
    let example = of_kind(&rendered, "RealtimeCluster")[0].clone();
    let cluster: gyre_operator::crd::RealtimeCluster = serde_yaml::from_value(example).expect("RealtimeCluster");
    assert!(cluster.spec.admin.enabled, "ci/full-values.yaml exercises the admin UI");
    let r = gyre_operator::render::render(&cluster, &[]).expect("the operator renders the chart's example");

    let ports = |svc: &k8s_openapi::api::core::v1::Service| -> Vec<(String, i32, String)> {
        let ports = svc.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
        ports
            .into_iter()
            .map(|p| {
                let target = match p.target_port {
                    Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(t)) => t,
                    other => format!("{other:?}"),
                };
                (p.name.unwrap_or_default(), p.port, target)
            })
            .collect()
    };
    let internal = r.internal_service.spec.as_ref().and_then(|s| s.type_.clone());
    assert_eq!(internal.as_deref(), Some("ClusterIP"));
    assert_eq!(ports(&r.internal_service), [("internal".to_string(), 9000, "internal".to_string())]);
    let client = ports(&r.client_service);
    assert_eq!(client, [("client".to_string(), 8000, "client".to_string())], "admin is not on the client Service");

    let config: serde_json::Value =
        serde_json::from_str(&r.config_map.data.as_ref().expect("data")["config.json"]).expect("config");
    assert_eq!((&config["admin"], &config["admin_handler_prefix"]), (&json!(true), &json!("/ops")));
    assert!(config.get("admin_external").is_none() && config.get("admin_password").is_none(), "{config}");
    let pod = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
    let env = pod.containers[0].env.clone().unwrap_or_default();
    for (var, key) in [("GYRE_ADMIN_PASSWORD", "admin-password"), ("GYRE_ADMIN_SECRET", "admin-secret")] {
        let from = env.iter().find(|e| e.name == var).and_then(|e| e.value_from.as_ref()?.secret_key_ref.clone());
        let from = from.map(|s| (s.name, s.key));
        assert_eq!(from, Some(("chat-gyre".to_string(), key.to_string())), "{var} from the Secret");
    }
    assert!(r.secrets.contains(&"chat-gyre".to_string()), "{:?}", r.secrets);

    let children = write_temp(&r.to_yaml().expect("yaml"));
    kubernetes_validate(children.path());
}

/// What `kubectl apply -f deploy/install.yaml` installs: the operator's namespace and the
/// chart with default values.
fn install_manifest() -> String {
    let header = "# Gyre operator, CRDs and RBAC in one file: kubectl apply --server-side -f deploy/install.yaml\n\
                  # Generated from helm/gyre with default values (a test keeps it in sync).\n\
                  apiVersion: v1\nkind: Namespace\nmetadata:\n  name: gyre-system\n";
    format!("{header}{}", template(&[]))
}

#[test]
fn deploy_install_manifest_is_the_chart() {
    common::in_sync("deploy/install.yaml", &install_manifest());
    kubernetes_validate(&common::repo_root().join("deploy/install.yaml"));
}

#[test]
fn deploy_manifests_are_valid() {
    let root = common::repo_root();
    for file in [
        "deploy/nats/nats-jetstream.yaml",
        "deploy/examples/ingress.yaml",
        "deploy/examples/gateway.yaml",
        "deploy/examples/prometheus-adapter.yaml",
        "deploy/monitoring/prometheus-rules.yaml",
    ] {
        kubernetes_validate(&root.join(file));
    }
}

#[test]
fn the_nats_config_is_accepted_by_nats_server() {
    let text =
        std::fs::read_to_string(common::repo_root().join("deploy/nats/nats-jetstream.yaml")).expect("nats manifest");
    let all = docs(&text);
    let config_map = of_kind(&all, "ConfigMap");
    let conf = config_map[0]["data"]["nats.conf"].as_str().expect("nats.conf");
    let file = write_temp(conf);
    let (ok, out) = run(Command::new("nats-server").args(["-t", "-c"]).arg(file.path()).env("POD_NAME", "nats-0"));
    assert!(
        ok,
        "nats-server -t rejected deploy/nats's config (install nats-server: apt-get install nats-server):\n{out}"
    );
    let broken = write_temp(&conf.replace("port: 4222", "port: \"x\""));
    let (ok, _) = run(Command::new("nats-server").args(["-t", "-c"]).arg(broken.path()));
    assert!(!ok, "nats-server -t accepts anything");
    assert_eq!(of_kind(&all, "StatefulSet")[0]["spec"]["replicas"], 3);
}
