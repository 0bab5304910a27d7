//! `Namespace` (gyre.dev): one channel namespace of a `RealtimeCluster`, so teams can own their
//! channels' options as separate objects.

// kube's `printcolumn(...)` entries repeat keys by design.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "gyre.dev",
    version = "v1alpha1",
    kind = "Namespace",
    namespaced,
    status = "NamespaceStatus",
    shortname = "rtns",
    category = "gyre",
    doc = "A channel namespace (channels `name:…`) of a RealtimeCluster, with its options",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef.name"),
    printcolumn(name = "Channels", type_ = "string", json_path = ".status.resolvedName"),
    printcolumn(name = "History", type_ = "integer", json_path = ".spec.historySize"),
    printcolumn(name = "Accepted", type_ = "string", json_path = ".status.conditions[?(@.type == 'Accepted')].status"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    cel
)]
#[x_kube(validation = Rule::new("(self.historySize > 0) == (self.historyTtl != '0s' && self.historyTtl != '')")
    .message("historySize and historyTtl go together: set both or neither"))]
#[x_kube(validation = Rule::new("!(self.forceRecovery || self.allowRecovery || self.forcePositioning || self.allowPositioning) || self.historySize > 0")
    .message("recovery and positioning need history (historySize and historyTtl)"))]
#[x_kube(validation = Rule::new("!(self.allowPresenceForClient || self.allowPresenceForSubscriber || self.allowPresenceForAnonymous) || self.presence")
    .message("presence permissions need presence: true"))]
#[x_kube(validation = Rule::new("self.clusterRef == oldSelf.clusterRef").message("clusterRef is immutable"))]
#[x_kube(validation = Rule::new("has(self.name) == has(oldSelf.name) && (!has(self.name) || self.name == oldSelf.name)")
    .message("name is immutable"))]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSpec {
    /// The RealtimeCluster (same Kubernetes namespace) whose edges serve these channels.
    pub cluster_ref: ClusterRef,
    /// Channel-namespace name (channels `name:…`); defaults to metadata.name. Centrifugo's
    /// rule: letters, digits, `-`, `_` and `.`, which is why `_` needs this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self.matches('^[-a-zA-Z0-9_.]{2,}$')").message("name: at least 2 of letters, digits, '-', '_', '.'"))]
    pub name: Option<String>,
    #[serde(flatten)]
    pub options: ChannelOptions,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterRef {
    pub name: String,
}

/// Every channel option of the edge config (`gyre_config::ChannelOptions`), camelCased;
/// a test keeps the two in step.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ChannelOptions {
    /// Keep presence (who is subscribed) for channels of this namespace.
    #[serde(default)]
    pub presence: bool,
    /// Send join/leave messages to subscribers that ask for them.
    #[serde(default)]
    pub join_leave: bool,
    /// Send join/leave to every subscriber.
    #[serde(default)]
    pub force_push_join_leave: bool,
    /// Publications kept per channel (with historyTtl).
    #[serde(default)]
    pub history_size: i64,
    /// How long publications are kept, e.g. `300s` (with historySize).
    #[x_kube(validation = Rule::new("self == '' || self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("a duration such as 300s, 5m or 1h30m"))]
    #[serde(default)]
    pub history_ttl: String,
    /// How long a channel's position outlives its publications.
    #[x_kube(validation = Rule::new("self == '' || self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$')").message("a duration such as 720h"))]
    #[serde(default)]
    pub history_meta_ttl: String,
    #[serde(default)]
    pub force_positioning: bool,
    #[serde(default)]
    pub allow_positioning: bool,
    #[serde(default)]
    pub force_recovery: bool,
    #[serde(default)]
    pub allow_recovery: bool,
    /// `stream` or `cache`.
    #[serde(default)]
    pub force_recovery_mode: String,
    #[serde(default)]
    pub allowed_delta_types: Vec<String>,
    #[serde(default)]
    pub delta_publish: bool,
    #[serde(default)]
    pub allow_subscribe_for_client: bool,
    #[serde(default)]
    pub allow_subscribe_for_anonymous: bool,
    #[serde(default)]
    pub allow_publish_for_client: bool,
    #[serde(default)]
    pub allow_publish_for_subscriber: bool,
    #[serde(default)]
    pub allow_publish_for_anonymous: bool,
    #[serde(default)]
    pub allow_presence_for_client: bool,
    #[serde(default)]
    pub allow_presence_for_subscriber: bool,
    #[serde(default)]
    pub allow_presence_for_anonymous: bool,
    #[serde(default)]
    pub allow_history_for_client: bool,
    #[serde(default)]
    pub allow_history_for_subscriber: bool,
    #[serde(default)]
    pub allow_history_for_anonymous: bool,
    #[serde(default)]
    pub allow_user_limited_channels: bool,
    /// Regular expression the part after `name:` must match.
    #[serde(default)]
    pub channel_regex: String,
    /// `json` or `binary`.
    #[serde(default)]
    pub publication_data_format: String,
    #[serde(default)]
    pub auto_cache_recover: bool,
    #[serde(default)]
    pub allow_tags_filter: bool,
    /// Subscribes without a token are decided by the backend's subscribe proxy (the
    /// cluster's `config` sets `proxy_subscribe_endpoint`).
    #[serde(default)]
    pub proxy_subscribe: bool,
    /// Client publishes are decided by the publish proxy (`proxy_publish_endpoint`).
    #[serde(default)]
    pub proxy_publish: bool,
    /// Expiring subscriptions are prolonged by the sub_refresh proxy
    /// (`proxy_sub_refresh_endpoint`).
    #[serde(default)]
    pub proxy_sub_refresh: bool,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Accepted` (valid and attached to its cluster), `Programmed` (in the edges' config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
    /// The channel-namespace name in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_name: Option<String>,
}
