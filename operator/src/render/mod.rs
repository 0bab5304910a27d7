//! Pure functions from a `RealtimeCluster` and its `Namespace` objects to the objects that
//! run it. No I/O: the reconciler applies what these return, and golden files pin them.

pub mod config;
pub mod monitoring;
pub mod names;
pub mod namespaces;
pub mod network;
pub mod scaling;
pub mod secrets;
pub mod workload;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::crd::{Namespace, RealtimeCluster};
use names::Names;
pub use namespaces::{Rejected, Resolution};

/// Everything a cluster runs on; optional children are `None` when disabled (and then deleted).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub config_map: ConfigMap,
    pub deployment: Deployment,
    pub client_service: Service,
    pub internal_service: Service,
    pub hpa: Option<HorizontalPodAutoscaler>,
    pub pdb: Option<PodDisruptionBudget>,
    pub service_monitor: Option<serde_json::Value>,
    /// Hash of the inputs that need a restart (also on the pod template).
    pub config_hash: String,
    /// Channel namespaces in the config, sorted.
    pub namespace_names: Vec<String>,
    /// `Namespace` objects left out, with reasons.
    pub rejected: Vec<Rejected>,
    /// Secrets the pods need.
    pub secrets: Vec<String>,
}

/// Renders every child of `cluster`; `namespaces` are the `Namespace` objects whose
/// `clusterRef` names it. An error is a spec the edge would refuse (reported on the status).
pub fn render(cluster: &RealtimeCluster, namespaces: &[Namespace]) -> Result<Rendered, String> {
    let names = Names::of(cluster);
    let mut resolution = namespaces::resolve(namespaces);
    // The cluster's own config must hold; then a Namespace the edge would refuse with this
    // cluster (e.g. a proxy switch without the cluster's proxy endpoint) is rejected alone
    // instead of failing the whole cluster.
    config::render(cluster, &[])?;
    let (ok, refused): (Vec<_>, Vec<_>) = std::mem::take(&mut resolution.accepted)
        .into_iter()
        .map(|a| {
            let check = config::render(cluster, std::slice::from_ref(&a.namespace));
            (a, check)
        })
        .partition(|(_, check)| check.is_ok());
    resolution.accepted = ok.into_iter().map(|(a, _)| a).collect();
    for (a, check) in refused {
        let message = check.err().unwrap_or_default();
        resolution.rejected.push(namespaces::Rejected { object: a.object, reason: "Invalid", message });
    }
    let edge_namespaces: Vec<_> = resolution.accepted.iter().map(|a| a.namespace.clone()).collect();
    let config = config::render(cluster, &edge_namespaces)?;
    let nats = cluster.spec.engine.nats.as_ref().filter(|_| cluster.spec.engine.kind == "nats");
    let wiring = secrets::wiring(&cluster.spec.auth, &cluster.spec.admin, nats);

    let config_map = ConfigMap {
        metadata: names.meta(cluster, names.config_map()),
        data: Some(BTreeMap::from([(names::CONFIG_FILE.to_string(), config.json.clone())])),
        ..Default::default()
    };
    Ok(Rendered {
        config_map,
        deployment: workload::deployment(cluster, &names, wiring, &config.restart_hash),
        client_service: network::client_service(cluster, &names),
        internal_service: network::internal_service(cluster, &names),
        hpa: scaling::hpa(cluster, &names),
        pdb: scaling::pdb(cluster, &names),
        service_monitor: monitoring::service_monitor(cluster, &names),
        config_hash: config.restart_hash,
        namespace_names: edge_namespaces.iter().map(|n| n.name.clone()).collect(),
        rejected: resolution.rejected,
        secrets: secrets::referenced_secrets(&cluster.spec.auth, &cluster.spec.admin, nats),
    })
}

impl Rendered {
    /// Every object as YAML documents in apply order (golden files, `kubectl apply`).
    pub fn to_yaml(&self) -> Result<String, serde_yaml::Error> {
        fn doc<T: serde::Serialize>(
            out: &mut String,
            kind_api: (&str, &str),
            obj: &T,
        ) -> Result<(), serde_yaml::Error> {
            let mut v = serde_yaml::to_value(obj)?;
            if let serde_yaml::Value::Mapping(m) = &mut v {
                m.insert("apiVersion".into(), kind_api.1.into());
                m.insert("kind".into(), kind_api.0.into());
            }
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(&v)?);
            Ok(())
        }
        let mut out = String::new();
        doc(&mut out, ("ConfigMap", "v1"), &self.config_map)?;
        doc(&mut out, ("Service", "v1"), &self.client_service)?;
        doc(&mut out, ("Service", "v1"), &self.internal_service)?;
        doc(&mut out, ("Deployment", "apps/v1"), &self.deployment)?;
        if let Some(h) = &self.hpa {
            doc(&mut out, ("HorizontalPodAutoscaler", "autoscaling/v2"), h)?;
        }
        if let Some(p) = &self.pdb {
            doc(&mut out, ("PodDisruptionBudget", "policy/v1"), p)?;
        }
        if let Some(sm) = &self.service_monitor {
            out.push_str("---\n");
            out.push_str(&serde_yaml::to_string(sm)?);
        }
        Ok(out)
    }
}
