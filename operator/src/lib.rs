//! Gyre's Kubernetes operator: reconciles `RealtimeCluster` and `Namespace` (gyre.dev) into
//! edge Deployments, Services, config, HPAs, PDBs and ServiceMonitors.

pub mod controller;
pub mod crd;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod rbac;
pub mod render;
