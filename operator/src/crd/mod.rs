//! The custom resources (group `gyre.dev`, version `v1alpha1`) as Rust types: the CRD YAML in
//! `crds/` is generated from them (`gyre-operator crd`).

pub mod cluster;
pub mod namespace;
pub mod reference;

pub use cluster::{RealtimeCluster, RealtimeClusterSpec, RealtimeClusterStatus};
pub use namespace::{Namespace, NamespaceSpec, NamespaceStatus};

use kube::CustomResourceExt;

/// Both CRDs as one multi-document YAML stream, in a stable order.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    let mut out = String::new();
    for crd in [RealtimeCluster::crd(), Namespace::crd()] {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&crd)?);
    }
    Ok(out)
}
