//! `RealtimeCluster`: one fleet of Gyre edges and everything it needs, as the user writes it.

// kube's `printcolumn(...)` entries repeat keys by design.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerBehavior;
use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecretKeySelector, Toleration,
    TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

/// The edge image the operator deploys unless the cluster names another.
pub const DEFAULT_IMAGE: &str = concat!("gyre/gyre:", env!("CARGO_PKG_VERSION"));

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gyre.dev",
    version = "v1alpha1",
    kind = "RealtimeCluster",
    namespaced,
    status = "RealtimeClusterStatus",
    shortname = "rtc",
    category = "gyre",
    doc = "A fleet of Gyre edge nodes: Deployment, Services, config, autoscaling and disruption budget",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Ready", type_ = "string", json_path = ".status.conditions[?(@.type == 'Ready')].status"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Available", type_ = "integer", json_path = ".status.availableReplicas"),
    printcolumn(name = "Namespaces", type_ = "integer", json_path = ".status.namespaces.count"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    printcolumn(name = "Engine", type_ = "string", json_path = ".spec.engine.type", priority = 1),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type == 'Ready')].reason",
        priority = 1
    ),
    cel
)]
#[x_kube(validation = Rule::new("!(has(self.replicas) && has(self.autoscaling))")
    .message("set either replicas or autoscaling, not both"))]
#[x_kube(validation = Rule::new("self.engine.type != 'memory' || (!has(self.autoscaling) && (!has(self.replicas) || self.replicas <= 1))")
    .message("the memory engine runs one node: use replicas 0 or 1 and no autoscaling, or engine nats"))]
#[x_kube(validation = Rule::new("!has(self.ports.grpc) || has(self.auth.grpcApiKeySecretRef)")
    .message("ports.grpc needs auth.grpcApiKeySecretRef"))]
#[serde(rename_all = "camelCase")]
pub struct RealtimeClusterSpec {
    /// Edge container image.
    #[serde(default = "default_image")]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Fixed number of edges (default 2 with NATS, 1 with memory); leave unset with `autoscaling`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("replicas must not be negative"))]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    pub engine: Engine,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub admin: Admin,
    /// Origins allowed to open WebSocket connections (`allowed_origins`); empty allows
    /// same-origin and non-browser clients only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub ports: Ports,
    #[serde(default)]
    pub service: ServiceSpec,
    #[serde(default)]
    pub pod: PodOverrides,
    #[serde(default)]
    pub pod_disruption_budget: PodDisruptionBudgetSpec,
    #[serde(default)]
    pub shutdown: Shutdown,
    #[serde(default)]
    pub metrics: Metrics,
    /// More edge options in Gyre's (Centrifugo's flat) config layout, e.g.
    /// `client_queue_max_size`. Secrets, listeners, the engine and `namespaces` are refused
    /// here: they have their own fields and kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form")]
    #[x_kube(validation = Rule::new("!('namespaces' in self)").message("channel namespaces are Namespace objects, not config"))]
    pub config: Option<serde_json::Map<String, serde_json::Value>>,
}

fn default_image() -> String {
    DEFAULT_IMAGE.to_string()
}

/// An object whose keys are not checked by the API server (the operator validates them).
fn free_form(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.maxReplicas >= self.minReplicas").message("maxReplicas must be at least minReplicas"))]
#[x_kube(validation = Rule::new("has(self.targetCPUUtilizationPercentage) || has(self.connectionsPerPod)")
    .message("autoscaling needs a CPU or a connections target"))]
#[serde(rename_all = "camelCase")]
pub struct Autoscaling {
    #[serde(default = "two")]
    #[x_kube(validation = Rule::new("self >= 1").message("minReplicas must be at least 1"))]
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Average CPU utilisation (percent of requests) to keep.
    #[serde(default, rename = "targetCPUUtilizationPercentage", skip_serializing_if = "Option::is_none")]
    pub target_cpu_utilization_percentage: Option<i32>,
    /// Average connected clients per edge to keep (a Pods metric served by prometheus-adapter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connections_per_pod: Option<ConnectionsTarget>,
    /// HPA scaling behavior; by default scale-down is slow, one pod at a time, since every
    /// removed edge reconnects its clients elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<HorizontalPodAutoscalerBehavior>,
}

fn two() -> i32 {
    2
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionsTarget {
    /// Metric name as the metrics adapter exposes it.
    #[serde(default = "default_connections_metric")]
    pub metric_name: String,
    /// Connections per edge, e.g. 10000.
    #[x_kube(validation = Rule::new("self >= 1").message("averageValue must be at least 1"))]
    pub average_value: i64,
}

fn default_connections_metric() -> String {
    "gyre_node_num_clients".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.type != 'nats' || has(self.nats)").message("engine type nats needs engine.nats"))]
#[serde(rename_all = "camelCase")]
pub struct Engine {
    /// `memory` (one node, nothing else needed) or `nats` (many nodes over NATS JetStream).
    #[serde(rename = "type")]
    #[x_kube(validation = Rule::new("self == 'memory' || self == 'nats'").message("engine type is memory or nats"))]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nats: Option<NatsEngine>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NatsEngine {
    /// NATS server URLs, comma-separated (`nats://nats.nats:4222`).
    #[x_kube(validation = Rule::new("self.matches('^(nats|tls|ws|wss)://')").message("url must start with nats://, tls://, ws:// or wss://"))]
    pub url: String,
    /// A `.creds` file (JWT + NKey) in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretKeySelector>,
    /// User name and password: a Secret with keys `username` and `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_secret_ref: Option<LocalObjectReference>,
    /// A token in a Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_secret_ref: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<NatsTls>,
    /// Replicas of each JetStream stream (1–5; 3 on a NATS cluster).
    #[serde(default = "one")]
    #[x_kube(validation = Rule::new("self >= 1 && self <= 5").message("streamReplicas is 1 to 5"))]
    pub stream_replicas: i32,
    /// `file` or `memory` JetStream storage.
    #[serde(default = "default_storage")]
    #[x_kube(validation = Rule::new("self == 'file' || self == 'memory'").message("storage is file or memory"))]
    pub storage: String,
    /// Prefix of the streams and subjects, so several clusters can share one NATS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

fn one() -> i32 {
    1
}

fn default_storage() -> String {
    "file".to_string()
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NatsTls {
    /// CA bundle (PEM) to trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_secret_ref: Option<SecretKeySelector>,
    /// Client certificate: a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_ref: Option<LocalObjectReference>,
}

/// Token verification and the API key, from Secrets only: no secret value lives in the spec.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_hmac_secret_ref: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_rsa_public_key_secret_ref: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_ecdsa_public_key_secret_ref: Option<SecretKeySelector>,
    /// JWKS endpoint to fetch token keys from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^https?://')").message("tokenJwksUrl must be an http(s) URL"))]
    pub token_jwks_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_audience: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_issuer: Option<String>,
    /// Key for the server HTTP API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeySelector>,
    /// Key for the gRPC server API (needed with `ports.grpc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_api_key_secret_ref: Option<SecretKeySelector>,
    /// Headers the edges add to every backend proxy request, as a JSON object in the Secret
    /// key (`{"Authorization": "Bearer …"}`): values that must not sit in the ConfigMap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_static_headers_secret_ref: Option<SecretKeySelector>,
}

/// The edges' admin web UI. It is only ever served on the internal port, so it is reachable
/// through the internal Service `<name>-internal` (ClusterIP) and never through the client
/// Service: open it with `kubectl port-forward svc/<name>-internal 9000`. The password and the
/// session-signing secret come from Secrets only, like every other secret of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!self.enabled || self.insecure || (has(self.passwordSecretRef) && has(self.secretSecretRef))")
    .message("admin.enabled needs admin.passwordSecretRef and admin.secretSecretRef (or admin.insecure)"))]
#[serde(rename_all = "camelCase")]
pub struct Admin {
    /// Serve the admin web UI on the internal port (`admin`).
    #[serde(default)]
    pub enabled: bool,
    /// The sign-in password (`admin_password`, as `GYRE_ADMIN_PASSWORD`); required when
    /// enabled unless `insecure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<SecretKeySelector>,
    /// The key that signs admin sessions (`admin_secret`, as `GYRE_ADMIN_SECRET`); every edge
    /// shares it, so a session works on all of them. Required when enabled unless `insecure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_secret_ref: Option<SecretKeySelector>,
    /// Open the UI without sign-in (`admin_insecure`): whoever reaches the internal Service is
    /// an admin. Only for trusted networks.
    #[serde(default)]
    pub insecure: bool,
    /// Path the UI is served under (`admin_handler_prefix`), e.g. `/admin-ui`; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^/[^{}*?#]*$')").message("handlerPrefix must be a path starting with / (no {, }, *, ? or #)"))]
    pub handler_prefix: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.client != self.internal").message("client and internal ports must differ"))]
#[x_kube(validation = Rule::new("!has(self.grpc) || (self.grpc != self.client && self.grpc != self.internal)")
    .message("the grpc port must differ from the client and internal ports"))]
#[x_kube(validation = Rule::new("!has(self.uniGrpc) || (self.uniGrpc != self.client && self.uniGrpc != self.internal && (!has(self.grpc) || self.uniGrpc != self.grpc))")
    .message("the uniGrpc port must differ from the other ports"))]
#[serde(rename_all = "camelCase")]
pub struct Ports {
    /// WebSocket connections.
    #[serde(default = "client_port")]
    pub client: i32,
    /// Server API, metrics, health and the admin UI (on the internal Service only).
    #[serde(default = "internal_port")]
    pub internal: i32,
    /// When set, the gRPC server API listens here (on the internal Service too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<i32>,
    /// When set, the unidirectional gRPC client transport listens here (on the client Service
    /// too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uni_grpc: Option<i32>,
}

fn client_port() -> i32 {
    8000
}

fn internal_port() -> i32 {
    9000
}

impl Default for Ports {
    fn default() -> Self {
        Self { client: client_port(), internal: internal_port(), grpc: None, uni_grpc: None }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Type of the client Service: ClusterIP, NodePort or LoadBalancer.
    #[serde(rename = "type", default = "cluster_ip")]
    #[x_kube(validation = Rule::new("self in ['ClusterIP', 'NodePort', 'LoadBalancer']").message("type is ClusterIP, NodePort or LoadBalancer"))]
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

fn cluster_ip() -> String {
    "ClusterIP".to_string()
}

impl Default for ServiceSpec {
    fn default() -> Self {
        Self { kind: cluster_ip(), annotations: BTreeMap::new() }
    }
}

/// What users usually need to change on the edge pods.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodOverrides {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// Default: spread over zones and hosts (ScheduleAnyway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Default: non-root (uid 65532), seccomp RuntimeDefault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<PodSecurityContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetSpec {
    /// Created only when at least two edges run.
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "one_pod")]
    pub max_unavailable: IntOrString,
}

fn yes() -> bool {
    true
}

fn one_pod() -> IntOrString {
    IntOrString::Int(1)
}

impl Default for PodDisruptionBudgetSpec {
    fn default() -> Self {
        Self { enabled: true, max_unavailable: one_pod() }
    }
}

/// How a stopping edge leaves: load balancers first stop sending it connections (preStop),
/// then it tells clients to reconnect elsewhere and waits for them (drain).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[x_kube(validation = Rule::new("self.terminationGracePeriodSeconds >= self.preStopSeconds + self.drainSeconds")
    .message("terminationGracePeriodSeconds must cover preStopSeconds + drainSeconds"))]
#[serde(rename_all = "camelCase")]
pub struct Shutdown {
    #[serde(default = "five")]
    pub pre_stop_seconds: i32,
    #[serde(default = "twenty")]
    pub drain_seconds: i32,
    #[serde(default = "sixty")]
    pub termination_grace_period_seconds: i64,
}

fn five() -> i32 {
    5
}

fn twenty() -> i32 {
    20
}

fn sixty() -> i64 {
    60
}

impl Default for Shutdown {
    fn default() -> Self {
        Self { pre_stop_seconds: five(), drain_seconds: twenty(), termination_grace_period_seconds: sixty() }
    }
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    #[serde(default)]
    pub service_monitor: ServiceMonitorSpec,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServiceMonitorSpec {
    /// Create a Prometheus-operator ServiceMonitor (when its CRD is installed).
    #[serde(default)]
    pub enabled: bool,
    #[serde(default = "thirty_seconds")]
    pub interval: String,
    /// Labels your Prometheus selects ServiceMonitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

fn thirty_seconds() -> String {
    "30s".to_string()
}

impl Default for ServiceMonitorSpec {
    fn default() -> Self {
        Self { enabled: false, interval: thirty_seconds(), labels: BTreeMap::new() }
    }
}

/// What the operator observed and did.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RealtimeClusterStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready`, `Reconciled`, `Available`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_replicas: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available_replicas: Option<i32>,
    /// Label selector of the edge pods (scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Hash of the inputs that need a rolling restart (namespace changes do not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespacesStatus>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespacesStatus {
    pub count: i32,
    /// Channel-namespace names in the config, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}
