//! Semantic checks that serde cannot express; each problem is `(key, message)`.

use super::{ChannelOptions, Config};

/// Namespace names as Centrifugo allows them: `^[-a-zA-Z0-9_.]{2,}$`.
pub fn valid_namespace_name(name: &str) -> bool {
    name.len() >= 2 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

pub fn validate(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut err = |key: String, msg: String| out.push((key, msg));

    if c.pong_timeout.0 >= c.ping_interval.0 && !c.pong_timeout.is_zero() {
        err(
            "pong_timeout".into(),
            format!("must be less than ping_interval ({:?} >= {:?})", c.pong_timeout.0, c.ping_interval.0),
        );
    }
    for (i, network) in c.ip_rate_limit_exempt.iter().enumerate() {
        if let Err(e) = crate::parse_network(network) {
            err(format!("ip_rate_limit_exempt[{i}]"), e);
        }
    }
    for (key, d) in [("http_header_timeout", c.http_header_timeout.0), ("http_body_timeout", c.http_body_timeout.0)] {
        if d.is_zero() {
            err(key.into(), "must be more than 0: a listener without this deadline can be held open forever".into());
        }
    }
    if c.admin && !c.admin_insecure {
        for (key, value) in [("admin_password", &c.admin_password), ("admin_secret", &c.admin_secret)] {
            if value.is_empty() {
                err(key.into(), "must be set when `admin` is on (or set `admin_insecure` on a trusted network)".into());
            }
        }
    }
    let prefix = &c.admin_handler_prefix;
    if !prefix.is_empty() && (!prefix.starts_with('/') || prefix.contains(['{', '}', '*', '?', '#'])) {
        err("admin_handler_prefix".into(), format!("must be a path starting with /, got {prefix:?}"));
    }
    if c.internal_max_connections == 0 {
        err("internal_max_connections".into(), "must be at least 1".into());
    }
    if let Err(e) = crate::keys::rsa_key(&c.token_rsa_public_key) {
        err("token_rsa_public_key".into(), format!("invalid RSA public key PEM: {e}"));
    }
    if let Err(e) = crate::keys::ecdsa_key(&c.token_ecdsa_public_key) {
        err("token_ecdsa_public_key".into(), format!("invalid ECDSA public key PEM: {e}"));
    }
    if c.engine_timeout.0.is_zero() || c.engine_timeout.0 > std::time::Duration::from_secs(60) {
        err("engine_timeout".into(), format!("must be above 0 and at most 60s, got {:?}", c.engine_timeout.0));
    }
    if c.token_leeway.0 > std::time::Duration::from_secs(300) {
        err(
            "token_leeway".into(),
            format!("must be at most 5m, got {:?}: a wider window keeps expired tokens valid", c.token_leeway.0),
        );
    }
    let jwks = &c.token_jwks_public_endpoint;
    if !(jwks.is_empty() || jwks.starts_with("http://") || jwks.starts_with("https://")) {
        err("token_jwks_public_endpoint".into(), format!("must be an http(s) URL, got {jwks:?}"));
    }
    for (key, endpoint, timeout_key, timeout) in c.proxy_endpoints() {
        let grpc = endpoint.strip_prefix("grpc://");
        if !(endpoint.is_empty()
            || grpc.is_some()
            || endpoint.starts_with("http://")
            || endpoint.starts_with("https://"))
        {
            err(key.into(), format!("must be an http(s):// or grpc:// URL, got {endpoint:?}"));
        } else if let Some(authority) = grpc {
            if authority.is_empty() || http::uri::Authority::try_from(authority).is_err() {
                err(key.into(), format!("invalid grpc:// address {endpoint:?}: use grpc://host:port"));
            }
        } else if !endpoint.is_empty() && url::Url::parse(endpoint).is_err() {
            err(key.into(), format!("invalid URL {endpoint:?}"));
        }
        if timeout.is_zero() {
            err(timeout_key.into(), "must be greater than zero".into());
        }
    }
    for (i, name) in c.proxy_http_headers.iter().enumerate() {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
            err(format!("proxy_http_headers[{i}]"), format!("invalid header name {name:?}"));
        }
    }
    for (name, value) in &c.proxy_static_http_headers {
        if http::HeaderName::from_bytes(name.as_bytes()).is_err() || http::HeaderValue::from_str(value).is_err() {
            err(format!("proxy_static_http_headers.{name}"), "invalid header name or value".into());
        }
    }
    // Centrifugo keys whose meaning Gyre cannot honour: refused rather than silently dropped.
    let unsupported = [
        ("tls", c.tls, "TLS is not served by Gyre: terminate it in front (ingress, load balancer)"),
        ("log_file", !c.log_file.is_empty(), "Gyre logs to stderr only"),
        ("channel_private_prefix", c.channel_private_prefix != "$", "only \"$\" is supported"),
        ("user_personal_single_connection", c.user_personal_single_connection, "not supported"),
        ("client_connect_include_server_time", c.client_connect_include_server_time, "not supported"),
    ];
    for (key, set, why) in unsupported {
        if set {
            err(key.into(), format!("{why}; remove the key or set it to its default"));
        }
    }
    if c.grpc_api && c.grpc_api_key.is_empty() && !c.api_insecure {
        err("grpc_api_key".into(), "the gRPC API needs a key (or api_insecure: true for development)".into());
    }
    if c.engine == super::EngineKind::Nats {
        if c.nats_url.split(',').all(|u| u.trim().is_empty()) {
            err("nats_url".into(), "needs at least one NATS server URL".into());
        }
        if !["file", "memory"].contains(&c.nats_storage.as_str()) {
            err("nats_storage".into(), format!("unknown storage {:?}: use \"file\" or \"memory\"", c.nats_storage));
        }
        if !(1..=5).contains(&c.nats_replicas) {
            err("nats_replicas".into(), format!("must be 1 to 5, got {}", c.nats_replicas));
        }
        if c.nats_prefix.is_empty()
            || !c.nats_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            err("nats_prefix".into(), format!("must be a non-empty token of a-z A-Z 0-9 - _, got {:?}", c.nats_prefix));
        }
        if c.nats_presence_ttl.0 < std::time::Duration::from_secs(1) {
            err("nats_presence_ttl".into(), "must be at least 1s".into());
        }
        if c.nats_tls_cert.is_empty() != c.nats_tls_key.is_empty() {
            err("nats_tls_cert".into(), "nats_tls_cert and nats_tls_key go together".into());
        }
    }
    if c.ping_interval.is_zero() {
        err("ping_interval".into(), "must be greater than zero".into());
    }
    if c.client_queue_max_size == 0 {
        err("client_queue_max_size".into(), "must be greater than zero".into());
    }
    if c.websocket_message_size_limit == 0 {
        err("websocket_message_size_limit".into(), "must be greater than zero".into());
    }
    if c.port != 0 && c.internal_port == Some(c.port) {
        err("internal_port".into(), format!("must differ from port ({})", c.port));
    }
    for (i, origin) in c.allowed_origins.iter().enumerate() {
        if origin.is_empty() {
            err(format!("allowed_origins[{i}]"), "must not be empty".into());
        }
    }
    if c.user_subscribe_to_personal
        && !c.user_personal_channel_namespace.is_empty()
        && c.namespace(&c.user_personal_channel_namespace).is_none()
    {
        err(
            "user_personal_channel_namespace".into(),
            format!("namespace {:?} is not configured", c.user_personal_channel_namespace),
        );
    }

    check_channel_options(c, &c.channel, "", &mut err);
    let mut seen = std::collections::HashSet::new();
    for (i, ns) in c.namespaces.iter().enumerate() {
        let prefix = format!("namespaces[{i}].");
        if !valid_namespace_name(&ns.name) {
            err(
                format!("{prefix}name"),
                format!("invalid namespace name {:?}: use at least 2 characters of a-z A-Z 0-9 - _ .", ns.name),
            );
        }
        if !seen.insert(ns.name.as_str()) {
            err(format!("{prefix}name"), format!("duplicate namespace name {:?}", ns.name));
        }
        check_channel_options(c, &ns.options, &prefix, &mut err);
    }
    out
}

fn check_channel_options(c: &Config, o: &ChannelOptions, prefix: &str, err: &mut impl FnMut(String, String)) {
    if (o.history_size > 0) == o.history_ttl.is_zero() {
        err(format!("{prefix}history_size"), "history_size and history_ttl must be set together".into());
    }
    if !o.history_ttl.is_zero() && o.history_ttl.subsec_nanos() != 0 {
        err(format!("{prefix}history_ttl"), "must be a whole number of seconds".into());
    }
    if !o.history_meta_ttl.is_zero() && o.history_meta_ttl.0 < o.history_ttl.0 {
        err(format!("{prefix}history_meta_ttl"), "must not be shorter than history_ttl".into());
    }
    let needs_history = [
        ("force_recovery", o.force_recovery),
        ("allow_recovery", o.allow_recovery),
        ("force_positioning", o.force_positioning),
        ("allow_positioning", o.allow_positioning),
    ];
    for (key, on) in needs_history {
        if on && !o.history_enabled() {
            err(format!("{prefix}{key}"), "needs history (history_size and history_ttl)".into());
        }
    }
    if !["", "stream", "cache"].contains(&o.force_recovery_mode.as_str()) {
        err(
            format!("{prefix}force_recovery_mode"),
            format!("unknown mode {:?}: use \"stream\" or \"cache\"", o.force_recovery_mode),
        );
    }
    for (i, t) in o.allowed_delta_types.iter().enumerate() {
        if t != "fossil" {
            err(format!("{prefix}allowed_delta_types[{i}]"), format!("unknown delta type {t:?}: only \"fossil\""));
        }
    }
    if !["", "json", "json_object", "binary"].contains(&o.publication_data_format.as_str()) {
        err(
            format!("{prefix}publication_data_format"),
            format!("unknown format {:?}: use \"json\", \"json_object\" or \"binary\"", o.publication_data_format),
        );
    }
    if !o.channel_regex.is_empty() {
        if let Err(e) = regex::Regex::new(&o.channel_regex) {
            err(format!("{prefix}channel_regex"), format!("invalid regex: {e}"));
        }
    }
    if !["", "stream"].contains(&o.subscription_type.as_str()) {
        err(
            format!("{prefix}subscription_type"),
            format!("subscription type {:?} is not supported; only \"stream\"", o.subscription_type),
        );
    }
    if o.auto_cache_recover && !(o.force_recovery && o.force_recovery_mode == "cache") {
        err(format!("{prefix}auto_cache_recover"), "needs force_recovery and force_recovery_mode \"cache\"".into());
    }
    let proxies = [
        ("proxy_subscribe", o.subscribe_proxied(), &c.proxy_subscribe_endpoint, "proxy_subscribe_endpoint"),
        ("proxy_publish", o.publish_proxied(), &c.proxy_publish_endpoint, "proxy_publish_endpoint"),
        ("proxy_sub_refresh", o.sub_refresh_proxied(), &c.proxy_sub_refresh_endpoint, "proxy_sub_refresh_endpoint"),
    ];
    for (key, on, endpoint, endpoint_key) in proxies {
        if on && endpoint.is_empty() {
            err(format!("{prefix}{key}"), format!("needs {endpoint_key}"));
        }
    }
    for (key, on) in [
        ("proxy_subscribe_stream", o.proxy_subscribe_stream),
        ("subscribe_stream_proxy_enabled", o.subscribe_stream_proxy_enabled),
    ] {
        if on {
            err(
                format!("{prefix}{key}"),
                "subscribe stream proxies are not supported; remove the key or set it false".into(),
            );
        }
    }
    for (key, name) in [
        ("subscribe_proxy_name", &o.subscribe_proxy_name),
        ("publish_proxy_name", &o.publish_proxy_name),
        ("sub_refresh_proxy_name", &o.sub_refresh_proxy_name),
        ("subscribe_stream_proxy_name", &o.subscribe_stream_proxy_name),
    ] {
        if !(name.is_empty() || name == "default") {
            err(
                format!("{prefix}{key}"),
                format!("named proxies are not supported; only \"default\" (the proxy_*_endpoint keys), got {name:?}"),
            );
        }
    }
    if o.presence_permissions() && !o.presence {
        err(format!("{prefix}presence"), "allow_presence_for_* needs presence: true".into());
    }
}

impl ChannelOptions {
    fn presence_permissions(&self) -> bool {
        self.allow_presence_for_client || self.allow_presence_for_subscriber || self.allow_presence_for_anonymous
    }
}

#[cfg(test)]
mod tests {
    use crate::{load_str, Format};

    #[test]
    fn rejects_bad_namespaces_and_options() {
        let text = r#"{"namespaces":[{"name":"a"},{"name":"ok","history_size":5},{"name":"ok"}],
                      "pong_timeout":"30s"}"#;
        let err = load_str(text, Format::Json, "x.json").unwrap_err().to_string();
        assert!(err.contains("`namespaces[0].name`: invalid namespace name"), "{err}");
        assert!(err.contains("`namespaces[1].history_size`"), "{err}");
        assert!(err.contains("`namespaces[2].name`: duplicate"), "{err}");
        assert!(err.contains("key `pong_timeout`"), "{err}");
    }

    #[test]
    fn unsupported_features_are_refused_not_ignored() {
        let text = r#"{"namespaces":[{"name":"m","subscription_type":"map","proxy_subscribe":true,
                      "proxy_subscribe_stream":true,"publish_proxy_name":"other"}],
                      "auto_cache_recover": true, "proxy_rpc_endpoint": "grpc://backend:9000/path",
                      "proxy_connect_timeout": "0s", "proxy_http_headers": ["bad header"]}"#;
        let err = load_str(text, Format::Json, "x.json").unwrap_err().to_string();
        assert!(err.contains("`namespaces[0].subscription_type`: subscription type \"map\""), "{err}");
        assert!(err.contains("`namespaces[0].proxy_subscribe`: needs proxy_subscribe_endpoint"), "{err}");
        assert!(err.contains("`namespaces[0].proxy_subscribe_stream`: subscribe stream proxies"), "{err}");
        assert!(err.contains("`namespaces[0].publish_proxy_name`: named proxies"), "{err}");
        assert!(err.contains("`proxy_rpc_endpoint`: invalid grpc:// address"), "{err}");
        assert!(err.contains("`proxy_connect_timeout`: must be greater than zero"), "{err}");
        assert!(err.contains("`proxy_http_headers[0]`: invalid header name"), "{err}");
        assert!(err.contains("`auto_cache_recover`: needs force_recovery"), "{err}");
        let ok = r#"{"namespaces":[{"name":"mm","subscription_type":"stream","subscribe_proxy_enabled":false,
                     "allow_tags_filter":true}]}"#;
        if let Err(e) = load_str(ok, Format::Json, "x.json") {
            panic!("{e}");
        }
    }
}
