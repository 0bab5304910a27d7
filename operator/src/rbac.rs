//! The operator's least-privilege RBAC, defined once: `gyre-operator rbac` prints it,
//! `deploy/rbac.yaml` is generated from it, and the Helm chart carries the same rules.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

/// What the controllers need in the namespaces they watch.
pub fn rules() -> Vec<PolicyRule> {
    const WATCH: &[&str] = &["get", "list", "watch"];
    vec![
        rule("gyre.dev", &["realtimeclusters", "namespaces"], WATCH),
        rule("gyre.dev", &["realtimeclusters/status", "namespaces/status"], &["get", "patch"]),
        rule("apps", &["deployments"], &["get", "list", "watch", "patch"]),
        rule("", &["services", "configmaps"], &["get", "list", "watch", "patch"]),
        rule("autoscaling", &["horizontalpodautoscalers"], &["get", "list", "watch", "patch", "delete"]),
        rule("policy", &["poddisruptionbudgets"], &["get", "list", "watch", "patch", "delete"]),
        rule("monitoring.coreos.com", &["servicemonitors"], &["get", "patch", "delete"]),
        // Only to tell a missing Secret apart (metadata); values are never read.
        rule("", &["secrets"], &["get"]),
    ]
}

/// The leader-election Lease, in the operator's own namespace.
pub fn lease_rules() -> Vec<PolicyRule> {
    vec![rule("coordination.k8s.io", &["leases"], &["get", "create", "patch"])]
}

/// The rules alone as YAML (the Helm chart's `files/rbac-rules.yaml` and
/// `files/lease-rules.yaml`).
pub fn rules_yaml(rules: &[PolicyRule]) -> Result<String, serde_yaml::Error> {
    serde_yaml::to_string(rules)
}

/// ClusterRole (all namespaces) and the Role for the Lease, as YAML documents.
pub fn yaml(namespace: &str) -> Result<String, serde_yaml::Error> {
    let cluster_role = ClusterRole {
        metadata: ObjectMeta { name: Some("gyre-operator".into()), ..Default::default() },
        rules: Some(rules()),
        ..Default::default()
    };
    let role = Role {
        metadata: ObjectMeta {
            name: Some("gyre-operator-leader-election".into()),
            namespace: Some(namespace.into()),
            ..Default::default()
        },
        rules: Some(lease_rules()),
    };
    Ok(format!("---\n{}---\n{}", serde_yaml::to_string(&cluster_role)?, serde_yaml::to_string(&role)?))
}
