//! The edge Deployment: probes on the edge's readiness and liveness, preStop and grace period
//! for draining, secrets as env and files, and the config hash that rolls pods only when a
//! change needs a restart.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment};
use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, ContainerPort, HTTPGetAction, Lifecycle, LifecycleHandler,
    PodSecurityContext, PodSpec, PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecurityContext,
    SleepAction, TopologySpreadConstraint, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::{Names, CONFIG_DIR, CONFIG_FILE, CONFIG_HASH_ANNOTATION};
use super::secrets::SecretWiring;
use crate::crd::RealtimeCluster;

/// Edges when neither replicas nor autoscaling is set.
pub fn default_replicas(cluster: &RealtimeCluster) -> i32 {
    if cluster.spec.engine.kind == "memory" {
        1
    } else {
        2
    }
}

fn http_probe(path: &str, port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_string()),
            port: IntOrString::String(port.to_string()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        timeout_seconds: Some(2),
        ..Default::default()
    }
}

fn default_resources() -> ResourceRequirements {
    ResourceRequirements {
        requests: Some(BTreeMap::from([
            ("cpu".to_string(), Quantity("100m".into())),
            ("memory".to_string(), Quantity("128Mi".into())),
        ])),
        limits: Some(BTreeMap::from([("memory".to_string(), Quantity("512Mi".into()))])),
        ..Default::default()
    }
}

fn default_spread(names: &Names) -> Vec<TopologySpreadConstraint> {
    ["topology.kubernetes.io/zone", "kubernetes.io/hostname"]
        .into_iter()
        .map(|key| TopologySpreadConstraint {
            max_skew: 1,
            topology_key: key.to_string(),
            when_unsatisfiable: "ScheduleAnyway".to_string(),
            label_selector: Some(LabelSelector { match_labels: Some(names.selector()), ..Default::default() }),
            ..Default::default()
        })
        .collect()
}

fn default_pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(65532),
        run_as_group: Some(65532),
        fs_group: Some(65532),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_string(), ..Default::default() }),
        ..Default::default()
    }
}

fn container_security() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_string()]), ..Default::default() }),
        ..Default::default()
    }
}

/// The Deployment; `replicas` is left out when an HPA owns it.
pub fn deployment(cluster: &RealtimeCluster, names: &Names, secrets: SecretWiring, config_hash: &str) -> Deployment {
    let spec = &cluster.spec;
    let mut pod_labels = spec.pod.labels.clone();
    pod_labels.extend(names.labels());
    let mut annotations = spec.pod.annotations.clone();
    annotations.insert(CONFIG_HASH_ANNOTATION.to_string(), config_hash.to_string());

    let mut volumes = vec![Volume {
        name: "config".to_string(),
        config_map: Some(ConfigMapVolumeSource { name: names.config_map(), ..Default::default() }),
        ..Default::default()
    }];
    volumes.extend(secrets.volumes);
    let mut mounts = vec![VolumeMount {
        name: "config".to_string(),
        mount_path: CONFIG_DIR.to_string(),
        read_only: Some(true),
        ..Default::default()
    }];
    mounts.extend(secrets.mounts);

    let container = Container {
        name: "edge".to_string(),
        image: Some(spec.image.clone()),
        image_pull_policy: spec.image_pull_policy.clone(),
        args: Some(vec!["--config".to_string(), format!("{CONFIG_DIR}/{CONFIG_FILE}")]),
        ports: Some(
            vec![
                ContainerPort {
                    name: Some("client".to_string()),
                    container_port: spec.ports.client,
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                },
                ContainerPort {
                    name: Some("internal".to_string()),
                    container_port: spec.ports.internal,
                    protocol: Some("TCP".to_string()),
                    ..Default::default()
                },
            ]
            .into_iter()
            .chain([("grpc", spec.ports.grpc), ("uni-grpc", spec.ports.uni_grpc)].into_iter().filter_map(
                |(name, p)| {
                    p.map(|p| ContainerPort {
                        name: Some(name.to_string()),
                        container_port: p,
                        protocol: Some("TCP".to_string()),
                        ..Default::default()
                    })
                },
            ))
            .collect(),
        ),
        env: (!secrets.env.is_empty()).then_some(secrets.env),
        // Ready: engine reachable and not draining. Live: the process serves (an engine outage
        // must not restart every edge). Startup: up to a minute to connect the engine.
        readiness_probe: Some(http_probe("/readyz", "internal", 5, 2)),
        liveness_probe: Some(http_probe("/livez", "internal", 10, 3)),
        startup_probe: Some(http_probe("/livez", "internal", 2, 30)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: i64::from(spec.shutdown.pre_stop_seconds) }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        resources: Some(spec.resources.clone().unwrap_or_else(default_resources)),
        security_context: Some(container_security()),
        volume_mounts: Some(mounts),
        ..Default::default()
    };

    let replicas = if spec.autoscaling.is_some() {
        None
    } else {
        Some(spec.replicas.unwrap_or_else(|| default_replicas(cluster)))
    };
    Deployment {
        metadata: names.meta(cluster, names.edge()),
        spec: Some(DeploymentSpec {
            replicas,
            selector: LabelSelector { match_labels: Some(names.selector()), ..Default::default() },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".to_string()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            min_ready_seconds: Some(10),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    volumes: Some(volumes),
                    termination_grace_period_seconds: Some(spec.shutdown.termination_grace_period_seconds),
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    image_pull_secrets: (!spec.image_pull_secrets.is_empty()).then(|| spec.image_pull_secrets.clone()),
                    node_selector: (!spec.pod.node_selector.is_empty()).then(|| spec.pod.node_selector.clone()),
                    tolerations: (!spec.pod.tolerations.is_empty()).then(|| spec.pod.tolerations.clone()),
                    affinity: spec.pod.affinity.clone(),
                    topology_spread_constraints: Some(
                        spec.pod.topology_spread_constraints.clone().unwrap_or_else(|| default_spread(names)),
                    ),
                    security_context: Some(spec.pod.security_context.clone().unwrap_or_else(default_pod_security)),
                    priority_class_name: spec.pod.priority_class_name.clone(),
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}
