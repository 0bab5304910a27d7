//! The client Service (WebSocket connections) and the internal Service (server API, metrics,
//! health and, with `spec.admin`, the admin web UI), so neither the API nor the admin UI is ever
//! exposed where clients connect. The admin UI has no port of its own: the edge serves it on
//! the internal listener, so it is the internal Service's `internal` port.

use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::names::Names;
use crate::crd::RealtimeCluster;

fn port(name: &str, port: i32) -> ServicePort {
    ServicePort {
        name: Some(name.to_string()),
        port,
        target_port: Some(IntOrString::String(name.to_string())),
        protocol: Some("TCP".to_string()),
        app_protocol: Some("http".to_string()),
        ..Default::default()
    }
}

/// gRPC ports speak HTTP/2 without TLS.
fn h2c(port: ServicePort) -> ServicePort {
    ServicePort { app_protocol: Some("kubernetes.io/h2c".to_string()), ..port }
}

/// The Service clients connect to (of `spec.service.type`, possibly a LoadBalancer): only the
/// client and uni-gRPC ports, never the internal one.
pub fn client_service(cluster: &RealtimeCluster, names: &Names) -> Service {
    let spec = &cluster.spec;
    let mut metadata = names.meta(cluster, names.edge());
    if !spec.service.annotations.is_empty() {
        metadata.annotations = Some(spec.service.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(spec.service.kind.clone()),
            selector: Some(names.selector()),
            ports: Some(
                std::iter::once(port("client", spec.ports.client))
                    .chain(spec.ports.uni_grpc.map(|p| h2c(port("uni-grpc", p))))
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}

/// `<name>-internal`, always ClusterIP: the internal port (API, metrics, health, admin UI) and
/// the gRPC API port.
pub fn internal_service(cluster: &RealtimeCluster, names: &Names) -> Service {
    Service {
        metadata: names.meta(cluster, names.internal_service()),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".to_string()),
            selector: Some(names.selector()),
            ports: Some(
                std::iter::once(port("internal", cluster.spec.ports.internal))
                    .chain(cluster.spec.ports.grpc.map(|p| h2c(port("grpc", p))))
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }
}
