//! Names, labels and owner references shared by every child of a cluster.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::crd::RealtimeCluster;

/// Field manager of every server-side apply and the `managed-by` label value.
pub const MANAGER: &str = "gyre-operator";

/// Pod-template annotation whose change rolls the edges.
pub const CONFIG_HASH_ANNOTATION: &str = "gyre.dev/config-hash";

/// Where the edge finds its config inside the pod.
pub const CONFIG_DIR: &str = "/etc/gyre";
pub const CONFIG_FILE: &str = "config.json";

/// Names of a cluster's children.
pub struct Names {
    pub cluster: String,
    pub namespace: String,
}

impl Names {
    pub fn of(cluster: &RealtimeCluster) -> Self {
        Self { cluster: cluster.name_any(), namespace: cluster.namespace().unwrap_or_default() }
    }

    /// Deployment, client Service, HPA, PDB and ServiceMonitor.
    pub fn edge(&self) -> String {
        self.cluster.clone()
    }

    pub fn config_map(&self) -> String {
        format!("{}-config", self.cluster)
    }

    pub fn internal_service(&self) -> String {
        format!("{}-internal", self.cluster)
    }

    /// Labels that select the edge pods; fixed for the life of the cluster (a Deployment's
    /// selector cannot change).
    pub fn selector(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "gyre".to_string()),
            ("app.kubernetes.io/instance".to_string(), self.cluster.clone()),
            ("app.kubernetes.io/component".to_string(), "edge".to_string()),
        ])
    }

    /// The selector as a string (scale subresource, `kubectl get pods -l`).
    pub fn selector_string(&self) -> String {
        self.selector().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
    }

    /// Labels on every child.
    pub fn labels(&self) -> BTreeMap<String, String> {
        let mut l = self.selector();
        l.insert("app.kubernetes.io/managed-by".to_string(), MANAGER.to_string());
        l
    }

    /// Metadata of a child: name, namespace, labels and the controller owner reference.
    pub fn meta(&self, cluster: &RealtimeCluster, name: String) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels()),
            owner_references: owner_reference(cluster).map(|o| vec![o]),
            ..Default::default()
        }
    }
}

/// Controller owner reference, so Kubernetes deletes children with their cluster.
pub fn owner_reference(cluster: &RealtimeCluster) -> Option<OwnerReference> {
    cluster.controller_owner_ref(&())
}
