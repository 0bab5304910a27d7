//! Node configuration in the flat layout Centrifugo users already have.
//!
//! Loaded from a JSON, YAML or TOML file plus `GYRE_<KEY>` environment variables; every
//! problem is reported with the key and the file (or variable) it came from.

mod duration;
pub mod keys;
mod load;
mod nested;
mod validate;

pub use duration::parse as parse_duration;
pub use duration::ConfigDuration;
pub use load::{default_path, load, load_str, ConfigError, ConfigIssue, Format};
pub use validate::valid_namespace_name;

use serde::{Deserialize, Serialize};

/// An address (`10.0.0.7`, `::1`) or a network (`10.0.0.0/8`).
pub fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a network like 10.0.0.0/8"))
}

/// Which engine carries publications, history and presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// One node, everything in process memory.
    #[default]
    Memory,
    /// Many nodes over NATS JetStream.
    Nats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace,
    Debug,
    #[default]
    Info,
    Warn,
    Error,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Top-level options (channel options for channels without a namespace live in
/// [`Config::channel`], written at the top level of the file as in Centrifugo).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Client port (connections; also the API unless `internal_port` is set).
    pub port: u16,
    pub address: String,
    /// Optional second listener for the API, metrics and health.
    pub internal_port: Option<u16>,
    pub internal_address: String,
    /// Node name shown in `info`; defaults to the host name.
    pub name: String,
    pub engine: EngineKind,
    pub log_level: LogLevel,
    pub log_format: LogFormat,

    pub token_hmac_secret_key: String,
    /// PEM public key verifying RS256/384/512 tokens.
    pub token_rsa_public_key: String,
    /// PEM public key verifying ES256/384 tokens.
    pub token_ecdsa_public_key: String,
    /// JWKS URL; tokens with a `kid` are verified with its keys (cached, refetched on an
    /// unknown `kid`).
    pub token_jwks_public_endpoint: String,
    pub token_audience: String,
    pub token_issuer: String,
    /// Clock skew tolerated on `exp` and `nbf` (Gyre's own; 0 = Centrifugo's exact checks,
    /// at most 5 minutes).
    pub token_leeway: ConfigDuration,
    pub allow_anonymous_connect_without_token: bool,
    pub client_insecure: bool,

    pub api_key: String,
    /// Development only: the HTTP API (and gRPC API) without a key.
    pub api_insecure: bool,

    /// Centrifugo's gRPC server API on its own port.
    pub grpc_api: bool,
    pub grpc_api_address: String,
    pub grpc_api_port: u16,
    /// Clients send metadata `authorization: apikey <key>`.
    pub grpc_api_key: String,

    /// The unidirectional gRPC client transport on its own port.
    pub uni_grpc: bool,
    pub uni_grpc_address: String,
    pub uni_grpc_port: u16,

    /// Browser origins allowed to connect (`*` patterns allowed); requests without an Origin
    /// header (non-browser clients) are always allowed.
    pub allowed_origins: Vec<String>,

    pub client_channel_limit: usize,
    /// Bytes queued for one connection before it is disconnected as slow (3008).
    pub client_queue_max_size: usize,
    /// Connections one user may hold on this node (3504 beyond; 0 = no limit).
    pub client_user_connection_limit: usize,
    /// Connections this node serves (503 before the upgrade beyond; 0 = no limit).
    pub client_connection_limit: usize,
    /// New connections per second on this node, all sources together (503 beyond; 0 = off).
    pub client_connection_rate_limit: u32,
    /// New TCP connections per second from one source IP on every listener (0 = off).
    pub client_connection_ip_rate_limit: u32,
    /// Commands per second one connection may send (error 111 beyond; 0 = no limit).
    pub client_command_rate_limit: u32,
    /// Commands a connection may send at once above its rate (0 = one second's worth); a
    /// connection that keeps sending after this many refusals in a row is disconnected (3013).
    pub client_command_rate_burst: u32,
    /// Sources the per-IP limits never apply to (addresses or networks): proxies and load
    /// balancers in front of Gyre, whose address every client shares.
    pub ip_rate_limit_exempt: Vec<String>,
    /// Emulation POSTs per second from one source IP (429 beyond; 0 = off).
    pub emulation_ip_rate_limit: u32,
    pub emulation_max_request_body_size: usize,
    /// Connect request sizes of the HTTP transports.
    pub http_stream_max_request_body_size: usize,
    pub sse_max_request_body_size: usize,
    pub uni_http_stream_max_request_body_size: usize,
    pub uni_sse_max_request_body_size: usize,
    /// Largest server API request body (413 beyond).
    pub api_max_request_body_size: usize,
    /// Largest gRPC API request message (RESOURCE_EXHAUSTED beyond).
    pub grpc_api_max_receive_message_size: usize,
    /// Open sockets on each client-facing listener (client port, uni gRPC port); 0 = 90% of
    /// the process's open-file limit.
    pub max_connections: usize,
    /// Open sockets on each internal listener (internal port, gRPC API port).
    pub internal_max_connections: usize,
    /// Time to send a request's header (HTTP) or connection preface (gRPC), counted from when
    /// the server starts waiting for it: so also the idle limit of a kept-alive connection.
    pub http_header_timeout: ConfigDuration,
    /// Time to send a whole request body.
    pub http_body_timeout: ConfigDuration,
    pub client_stale_close_delay: ConfigDuration,
    pub client_expired_close_delay: ConfigDuration,
    pub client_expired_sub_close_delay: ConfigDuration,
    pub client_presence_update_interval: ConfigDuration,
    pub client_history_max_publication_limit: usize,
    pub client_recovery_max_publication_limit: usize,
    pub ping_interval: ConfigDuration,
    /// Zero disables pong checks.
    pub pong_timeout: ConfigDuration,
    pub websocket_message_size_limit: usize,
    pub websocket_write_timeout: ConfigDuration,

    pub channel_max_length: usize,
    pub history_meta_ttl: ConfigDuration,
    pub user_subscribe_to_personal: bool,
    pub user_personal_channel_namespace: String,
    pub shutdown_timeout: ConfigDuration,
    /// Re-read the config file this often and apply changes (0 = only on SIGHUP); for config
    /// mounted from a Kubernetes ConfigMap.
    pub config_watch_interval: ConfigDuration,

    pub health: bool,
    pub prometheus: bool,

    /// Transports: Gyre serves every one unless switched off (Centrifugo needs the emulation and
    /// unidirectional ones switched on, so its configs carry these keys).
    pub websocket_disable: bool,
    pub http_stream: bool,
    pub sse: bool,
    pub uni_websocket: bool,
    pub uni_http_stream: bool,
    pub uni_sse: bool,
    /// Turns the server HTTP API off.
    pub api_disable: bool,

    /// Centrifugo tuning and tooling keys Gyre accepts without acting on them (`debug`,
    /// `swagger`, `opentelemetry`, `graphite`, `websocket_compression` true are logged as
    /// ignored); keys whose meaning Gyre cannot honour are refused when set (see validate).
    pub client_concurrency: u64,
    pub client_channel_position_check_delay: ConfigDuration,
    pub client_channel_position_max_time_lag: ConfigDuration,
    pub websocket_compression: bool,
    pub debug: bool,
    pub swagger: bool,
    pub opentelemetry: bool,
    pub graphite: bool,
    /// v4: RPC goes to the RPC proxy (Gyre: whenever `proxy_rpc_endpoint` is set).
    pub proxy_rpc: bool,
    pub tls: bool,
    pub log_file: String,
    pub channel_private_prefix: String,
    pub user_personal_single_connection: bool,
    pub client_connect_include_server_time: bool,

    /// The admin web UI (see `crate::admin`): on the internal listener unless `admin_external`,
    /// under `admin_handler_prefix`; sign-in with `admin_password`, sessions signed with
    /// `admin_secret`; `admin_insecure` opens it without sign-in (trusted networks only).
    pub admin: bool,
    pub admin_password: String,
    pub admin_secret: String,
    pub admin_insecure: bool,
    pub admin_external: bool,
    pub admin_handler_prefix: String,
    /// Gyre sends no usage statistics; accepted for Centrifugo configs.
    pub usage_stats_disable: bool,

    /// NATS servers for `engine: "nats"` (comma-separated).
    pub nats_url: String,
    pub nats_user: String,
    pub nats_password: String,
    pub nats_token: String,
    pub nats_nkey_seed: String,
    pub nats_creds_file: String,
    /// CA file to verify the NATS servers (turns TLS on).
    pub nats_tls_ca: String,
    /// Client certificate and key files for NATS TLS.
    pub nats_tls_cert: String,
    pub nats_tls_key: String,
    /// First token of every subject, stream and bucket name Gyre uses.
    pub nats_prefix: String,
    /// `file` (durable) or `memory` JetStream storage.
    pub nats_storage: String,
    /// Replicas of streams and the presence bucket (3 in a NATS cluster).
    pub nats_replicas: usize,
    /// How long presence outlives a node that stopped refreshing it.
    pub nats_presence_ttl: ConfigDuration,
    /// Caps of each namespace's history stream (all its channels together; 0 = no cap). A
    /// full stream refuses new publications instead of evicting acknowledged ones.
    pub nats_stream_max_messages: u64,
    pub nats_stream_max_bytes: u64,
    /// The longest any one engine call (publish, history read, presence, subscribe) may take;
    /// past it the caller gets a temporary error instead of waiting on a stalled engine.
    pub engine_timeout: ConfigDuration,

    /// Backend proxy hooks (`http(s)://` endpoints): the backend authenticates connections
    /// without a token, refreshes them, and decides subscribes, publishes (namespaces with
    /// `proxy_subscribe` / `proxy_publish` / `proxy_sub_refresh`) and client RPC.
    pub proxy_connect_endpoint: String,
    pub proxy_connect_timeout: ConfigDuration,
    pub proxy_refresh_endpoint: String,
    pub proxy_refresh_timeout: ConfigDuration,
    pub proxy_subscribe_endpoint: String,
    pub proxy_subscribe_timeout: ConfigDuration,
    pub proxy_publish_endpoint: String,
    pub proxy_publish_timeout: ConfigDuration,
    pub proxy_sub_refresh_endpoint: String,
    pub proxy_sub_refresh_timeout: ConfigDuration,
    pub proxy_rpc_endpoint: String,
    pub proxy_rpc_timeout: ConfigDuration,
    /// Headers of the client's connection request passed on to every proxy request.
    pub proxy_http_headers: Vec<String>,
    /// Headers added to every proxy request (client headers of the same name win).
    pub proxy_static_http_headers: std::collections::BTreeMap<String, String>,
    /// Send payloads as `b64data` (`encoding: "binary"`) instead of JSON `data`.
    pub proxy_binary_encoding: bool,
    /// Send the connection's `meta` (from the connect proxy or token) with later hooks.
    pub proxy_include_connection_meta: bool,

    pub namespaces: Vec<Namespace>,

    /// Options of channels without a namespace (top-level keys in the file).
    #[serde(skip)]
    pub channel: ChannelOptions,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            port: 8000,
            address: String::new(),
            internal_port: None,
            internal_address: String::new(),
            name: String::new(),
            engine: EngineKind::Memory,
            log_level: LogLevel::Info,
            log_format: LogFormat::Text,
            token_hmac_secret_key: String::new(),
            token_rsa_public_key: String::new(),
            token_ecdsa_public_key: String::new(),
            token_jwks_public_endpoint: String::new(),
            token_audience: String::new(),
            token_issuer: String::new(),
            token_leeway: ConfigDuration::secs(0),
            allow_anonymous_connect_without_token: false,
            client_insecure: false,
            api_key: String::new(),
            api_insecure: false,
            grpc_api: false,
            grpc_api_address: String::new(),
            grpc_api_port: 10000,
            grpc_api_key: String::new(),
            uni_grpc: false,
            uni_grpc_address: String::new(),
            uni_grpc_port: 11000,
            allowed_origins: Vec::new(),
            client_channel_limit: 128,
            client_queue_max_size: 1 << 20,
            client_user_connection_limit: 0,
            client_connection_limit: 0,
            client_connection_rate_limit: 0,
            client_connection_ip_rate_limit: 100,
            client_command_rate_limit: 0,
            client_command_rate_burst: 0,
            ip_rate_limit_exempt: Vec::new(),
            emulation_ip_rate_limit: 200,
            emulation_max_request_body_size: 64 * 1024,
            http_stream_max_request_body_size: 64 * 1024,
            sse_max_request_body_size: 64 * 1024,
            uni_http_stream_max_request_body_size: 64 * 1024,
            uni_sse_max_request_body_size: 64 * 1024,
            api_max_request_body_size: 2 << 20,
            grpc_api_max_receive_message_size: 4 << 20,
            max_connections: 0,
            internal_max_connections: 1024,
            http_header_timeout: ConfigDuration::secs(10),
            http_body_timeout: ConfigDuration::secs(30),
            client_stale_close_delay: ConfigDuration::secs(10),
            client_expired_close_delay: ConfigDuration::secs(25),
            client_expired_sub_close_delay: ConfigDuration::secs(25),
            client_presence_update_interval: ConfigDuration::secs(27),
            client_history_max_publication_limit: 300,
            client_recovery_max_publication_limit: 300,
            ping_interval: ConfigDuration::secs(25),
            pong_timeout: ConfigDuration::secs(8),
            websocket_message_size_limit: 65536,
            websocket_write_timeout: ConfigDuration::secs(1),
            channel_max_length: 255,
            history_meta_ttl: ConfigDuration::secs(720 * 3600),
            user_subscribe_to_personal: false,
            user_personal_channel_namespace: String::new(),
            shutdown_timeout: ConfigDuration::secs(30),
            config_watch_interval: ConfigDuration::secs(0),
            health: true,
            prometheus: true,
            websocket_disable: false,
            http_stream: true,
            sse: true,
            uni_websocket: true,
            uni_http_stream: true,
            uni_sse: true,
            api_disable: false,
            client_concurrency: 0,
            client_channel_position_check_delay: ConfigDuration::secs(40),
            client_channel_position_max_time_lag: ConfigDuration::secs(0),
            websocket_compression: false,
            debug: false,
            swagger: false,
            opentelemetry: false,
            graphite: false,
            proxy_rpc: false,
            tls: false,
            log_file: String::new(),
            channel_private_prefix: "$".to_string(),
            user_personal_single_connection: false,
            client_connect_include_server_time: false,
            admin: false,
            admin_password: String::new(),
            admin_secret: String::new(),
            admin_insecure: false,
            admin_external: false,
            admin_handler_prefix: String::new(),
            usage_stats_disable: false,
            nats_url: "nats://127.0.0.1:4222".to_string(),
            nats_user: String::new(),
            nats_password: String::new(),
            nats_token: String::new(),
            nats_nkey_seed: String::new(),
            nats_creds_file: String::new(),
            nats_tls_ca: String::new(),
            nats_tls_cert: String::new(),
            nats_tls_key: String::new(),
            nats_prefix: "gyre".to_string(),
            nats_storage: "file".to_string(),
            nats_replicas: 1,
            nats_presence_ttl: ConfigDuration::secs(60),
            nats_stream_max_messages: 1_000_000,
            nats_stream_max_bytes: 0,
            engine_timeout: ConfigDuration::secs(3),
            proxy_connect_endpoint: String::new(),
            proxy_connect_timeout: ConfigDuration::secs(1),
            proxy_refresh_endpoint: String::new(),
            proxy_refresh_timeout: ConfigDuration::secs(1),
            proxy_subscribe_endpoint: String::new(),
            proxy_subscribe_timeout: ConfigDuration::secs(1),
            proxy_publish_endpoint: String::new(),
            proxy_publish_timeout: ConfigDuration::secs(1),
            proxy_sub_refresh_endpoint: String::new(),
            proxy_sub_refresh_timeout: ConfigDuration::secs(1),
            proxy_rpc_endpoint: String::new(),
            proxy_rpc_timeout: ConfigDuration::secs(1),
            proxy_http_headers: Vec::new(),
            proxy_static_http_headers: std::collections::BTreeMap::new(),
            proxy_binary_encoding: false,
            proxy_include_connection_meta: false,
            namespaces: Vec::new(),
            channel: ChannelOptions::default(),
        }
    }
}

/// A named set of channel options; channel `name:rest` belongs to namespace `name`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Namespace {
    pub name: String,
    pub options: ChannelOptions,
}

/// Per-namespace channel behaviour; everything is off unless allowed ("secure by default").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelOptions {
    pub presence: bool,
    pub join_leave: bool,
    pub force_push_join_leave: bool,
    pub history_size: usize,
    pub history_ttl: ConfigDuration,
    pub history_meta_ttl: ConfigDuration,
    pub force_positioning: bool,
    pub allow_positioning: bool,
    pub force_recovery: bool,
    pub allow_recovery: bool,
    pub force_recovery_mode: String,
    pub allowed_delta_types: Vec<String>,
    pub delta_publish: bool,
    pub allow_subscribe_for_client: bool,
    pub allow_subscribe_for_anonymous: bool,
    pub allow_publish_for_client: bool,
    pub allow_publish_for_subscriber: bool,
    pub allow_publish_for_anonymous: bool,
    pub allow_presence_for_client: bool,
    pub allow_presence_for_subscriber: bool,
    pub allow_presence_for_anonymous: bool,
    pub allow_history_for_client: bool,
    pub allow_history_for_subscriber: bool,
    pub allow_history_for_anonymous: bool,
    pub allow_user_limited_channels: bool,
    pub channel_regex: String,
    pub publication_data_format: String,
    /// Recover the latest publication on every subscribe (cache recovery mode).
    pub auto_cache_recover: bool,
    pub allow_tags_filter: bool,
    /// `stream` (the default) is the only type Gyre serves; map and shared-poll types are
    /// refused at load time rather than silently served as streams.
    pub subscription_type: String,
    pub map: Option<serde_json::Value>,
    pub shared_poll: Option<serde_json::Value>,
    pub map_clients_presence_channel_prefix: String,
    pub map_users_presence_channel_prefix: String,
    // Backend proxies: the v5 switches `proxy_*` and their v6 names `*_proxy_enabled` mean
    // the same. Named proxies and subscribe streams are refused at load time.
    pub subscribe_proxy_enabled: bool,
    pub subscribe_proxy_name: String,
    pub publish_proxy_enabled: bool,
    pub publish_proxy_name: String,
    pub sub_refresh_proxy_enabled: bool,
    pub sub_refresh_proxy_name: String,
    pub subscribe_stream_proxy_enabled: bool,
    pub subscribe_stream_proxy_name: String,
    pub subscribe_stream_proxy_bidirectional: bool,
    pub proxy_subscribe: bool,
    pub proxy_publish: bool,
    pub proxy_sub_refresh: bool,
    pub proxy_subscribe_stream: bool,
}

impl ChannelOptions {
    /// Subscribes without a token are decided by the subscribe proxy.
    pub fn subscribe_proxied(&self) -> bool {
        self.proxy_subscribe || self.subscribe_proxy_enabled
    }

    /// Client publishes are decided (and may be rewritten) by the publish proxy.
    pub fn publish_proxied(&self) -> bool {
        self.proxy_publish || self.publish_proxy_enabled
    }

    /// Expiring subscriptions are prolonged by the sub_refresh proxy, not by the client.
    pub fn sub_refresh_proxied(&self) -> bool {
        self.proxy_sub_refresh || self.sub_refresh_proxy_enabled
    }

    /// History is kept only when both a size and a TTL are set.
    pub fn history_enabled(&self) -> bool {
        self.history_size > 0 && !self.history_ttl.is_zero()
    }
}

impl Serialize for Namespace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut value = serde_json::to_value(&self.options).map_err(serde::ser::Error::custom)?;
        if let serde_json::Value::Object(map) = &mut value {
            map.insert("name".into(), self.name.clone().into());
        }
        value.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Namespace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let name = match map.remove("name") {
            Some(serde_json::Value::String(s)) => s,
            Some(other) => return Err(D::Error::custom(format!("`name` must be a string, got {other}"))),
            None => return Err(D::Error::missing_field("name")),
        };
        let options = ChannelOptions::deserialize(serde_json::Value::Object(map))
            .map_err(|e| D::Error::custom(format!("namespace {name:?}: {e}")))?;
        Ok(Self { name, options })
    }
}

impl Config {
    /// Keys set to something Gyre does not act on, for a startup warning each.
    pub fn ignored(&self) -> Vec<&'static str> {
        [
            (self.debug, "`debug`: no pprof endpoints"),
            (self.swagger, "`swagger`: no Swagger UI"),
            (self.opentelemetry, "`opentelemetry`: no tracing export"),
            (self.graphite, "`graphite`: use /metrics"),
            (self.websocket_compression, "`websocket_compression`: WebSocket frames are not compressed"),
        ]
        .into_iter()
        .filter_map(|(on, what)| on.then_some(what))
        .collect()
    }

    /// The options of a namespace by name (`""` = channels without a namespace).
    pub fn namespace(&self, name: &str) -> Option<&ChannelOptions> {
        if name.is_empty() {
            return Some(&self.channel);
        }
        self.namespaces.iter().find(|n| n.name == name).map(|n| &n.options)
    }

    /// Every proxy endpoint with its timeout, as `(key, endpoint, timeout key, timeout)`.
    pub fn proxy_endpoints(&self) -> [(&'static str, &str, &'static str, std::time::Duration); 6] {
        [
            (
                "proxy_connect_endpoint",
                &self.proxy_connect_endpoint,
                "proxy_connect_timeout",
                self.proxy_connect_timeout.0,
            ),
            (
                "proxy_refresh_endpoint",
                &self.proxy_refresh_endpoint,
                "proxy_refresh_timeout",
                self.proxy_refresh_timeout.0,
            ),
            (
                "proxy_subscribe_endpoint",
                &self.proxy_subscribe_endpoint,
                "proxy_subscribe_timeout",
                self.proxy_subscribe_timeout.0,
            ),
            (
                "proxy_publish_endpoint",
                &self.proxy_publish_endpoint,
                "proxy_publish_timeout",
                self.proxy_publish_timeout.0,
            ),
            (
                "proxy_sub_refresh_endpoint",
                &self.proxy_sub_refresh_endpoint,
                "proxy_sub_refresh_timeout",
                self.proxy_sub_refresh_timeout.0,
            ),
            ("proxy_rpc_endpoint", &self.proxy_rpc_endpoint, "proxy_rpc_timeout", self.proxy_rpc_timeout.0),
        ]
    }

    /// The whole config as the flat key/value layout of a config file.
    pub fn to_value(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let (serde_json::Value::Object(top), Ok(serde_json::Value::Object(ch))) =
            (&mut value, serde_json::to_value(&self.channel))
        {
            top.extend(ch);
        }
        value
    }
}
