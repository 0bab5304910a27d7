//! HorizontalPodAutoscaler (CPU and connections per pod) and PodDisruptionBudget.

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HPAScalingPolicy, HPAScalingRules, HorizontalPodAutoscaler,
    HorizontalPodAutoscalerBehavior, HorizontalPodAutoscalerSpec, MetricIdentifier, MetricSpec, MetricTarget,
    PodsMetricSource, ResourceMetricSource,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::names::Names;
use super::workload::default_replicas;
use crate::crd::RealtimeCluster;

/// Scale up fast; scale down one edge per 3 minutes after 10 minutes of calm, since each
/// removed edge sends all its clients elsewhere.
fn default_behavior() -> HorizontalPodAutoscalerBehavior {
    HorizontalPodAutoscalerBehavior {
        scale_down: Some(HPAScalingRules {
            stabilization_window_seconds: Some(600),
            select_policy: Some("Min".to_string()),
            policies: Some(vec![HPAScalingPolicy { type_: "Pods".to_string(), value: 1, period_seconds: 180 }]),
            ..Default::default()
        }),
        scale_up: Some(HPAScalingRules {
            stabilization_window_seconds: Some(30),
            select_policy: Some("Max".to_string()),
            policies: Some(vec![
                HPAScalingPolicy { type_: "Percent".to_string(), value: 100, period_seconds: 30 },
                HPAScalingPolicy { type_: "Pods".to_string(), value: 4, period_seconds: 30 },
            ]),
            ..Default::default()
        }),
    }
}

pub fn hpa(cluster: &RealtimeCluster, names: &Names) -> Option<HorizontalPodAutoscaler> {
    let a = cluster.spec.autoscaling.as_ref()?;
    let mut metrics = Vec::new();
    if let Some(cpu) = a.target_cpu_utilization_percentage {
        metrics.push(MetricSpec {
            type_: "Resource".to_string(),
            resource: Some(ResourceMetricSource {
                name: "cpu".to_string(),
                target: MetricTarget {
                    type_: "Utilization".to_string(),
                    average_utilization: Some(cpu),
                    ..Default::default()
                },
            }),
            ..Default::default()
        });
    }
    if let Some(conns) = &a.connections_per_pod {
        metrics.push(MetricSpec {
            type_: "Pods".to_string(),
            pods: Some(PodsMetricSource {
                metric: MetricIdentifier { name: conns.metric_name.clone(), selector: None },
                target: MetricTarget {
                    type_: "AverageValue".to_string(),
                    average_value: Some(Quantity(conns.average_value.to_string())),
                    ..Default::default()
                },
            }),
            ..Default::default()
        });
    }
    Some(HorizontalPodAutoscaler {
        metadata: names.meta(cluster, names.edge()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: names.edge(),
            },
            min_replicas: Some(a.min_replicas),
            max_replicas: a.max_replicas,
            metrics: Some(metrics),
            behavior: Some(a.behavior.clone().unwrap_or_else(default_behavior)),
        }),
        status: None,
    })
}

/// Only when at least two edges run: with one, a budget would block node drains forever.
pub fn pdb(cluster: &RealtimeCluster, names: &Names) -> Option<PodDisruptionBudget> {
    let spec = &cluster.spec;
    let min = match &spec.autoscaling {
        Some(a) => a.min_replicas,
        None => spec.replicas.unwrap_or_else(|| default_replicas(cluster)),
    };
    if !spec.pod_disruption_budget.enabled || min < 2 {
        return None;
    }
    Some(PodDisruptionBudget {
        metadata: names.meta(cluster, names.edge()),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(spec.pod_disruption_budget.max_unavailable.clone()),
            selector: Some(LabelSelector { match_labels: Some(names.selector()), ..Default::default() }),
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".to_string()),
            ..Default::default()
        }),
        status: None,
    })
}
