//! Centrifugo v6's nested config layout (`client.token.hmac_secret_key`, `http_api.key`,
//! `channel.namespaces` …), rewritten into the flat keys the rest of the loader knows, so a
//! v6 user's file loads as it is. Every flat key remembers the nested path it came from, so
//! errors name the key as the user wrote it.

use serde_json::{Map, Value};

/// v6 section keys; a config with one of them holding an object is in the nested layout
/// (flat configs use some of these names for scalars: `engine: "nats"`, `health: true`).
const SECTIONS: &[&str] = &[
    "client",
    "channel",
    "rpc",
    "http_api",
    "http_server",
    "node",
    "engine",
    "broker",
    "log",
    "shutdown",
    "prometheus",
    "health",
    "websocket",
    "admin",
    "usage_stats",
    "grpc_api",
    "uni_grpc",
    "http_stream",
    "sse",
    "uni_websocket",
    "uni_http_stream",
    "uni_sse",
    "emulation",
    "debug",
    "swagger",
    "opentelemetry",
    "graphite",
];

/// Leaves with a flat counterpart: (v6 path, flat key).
const LEAVES: &[(&str, &str)] = &[
    ("client.token.hmac_secret_key", "token_hmac_secret_key"),
    ("client.token.rsa_public_key", "token_rsa_public_key"),
    ("client.token.ecdsa_public_key", "token_ecdsa_public_key"),
    ("client.token.jwks_public_endpoint", "token_jwks_public_endpoint"),
    ("client.token.audience", "token_audience"),
    ("client.token.issuer", "token_issuer"),
    ("client.token.leeway", "token_leeway"),
    ("client.allowed_origins", "allowed_origins"),
    ("client.insecure", "client_insecure"),
    ("client.allow_anonymous_connect_without_token", "allow_anonymous_connect_without_token"),
    ("client.channel_limit", "client_channel_limit"),
    ("client.queue_max_size", "client_queue_max_size"),
    ("client.user_connection_limit", "client_user_connection_limit"),
    ("client.connection_limit", "client_connection_limit"),
    ("client.connection_rate_limit", "client_connection_rate_limit"),
    ("emulation.max_request_body_size", "emulation_max_request_body_size"),
    ("http_stream.max_request_body_size", "http_stream_max_request_body_size"),
    ("sse.max_request_body_size", "sse_max_request_body_size"),
    ("uni_http_stream.max_request_body_size", "uni_http_stream_max_request_body_size"),
    ("uni_sse.max_request_body_size", "uni_sse_max_request_body_size"),
    ("grpc_api.max_receive_message_size", "grpc_api_max_receive_message_size"),
    ("client.stale_close_delay", "client_stale_close_delay"),
    ("client.expired_close_delay", "client_expired_close_delay"),
    ("client.expired_sub_close_delay", "client_expired_sub_close_delay"),
    ("client.presence_update_interval", "client_presence_update_interval"),
    ("client.history_max_publication_limit", "client_history_max_publication_limit"),
    ("client.recovery_max_publication_limit", "client_recovery_max_publication_limit"),
    ("client.ping_interval", "ping_interval"),
    ("client.pong_timeout", "pong_timeout"),
    ("client.subscribe_to_user_personal_channel.enabled", "user_subscribe_to_personal"),
    ("client.subscribe_to_user_personal_channel.personal_channel_namespace", "user_personal_channel_namespace"),
    ("channel.namespaces", "namespaces"),
    ("channel.history_meta_ttl", "history_meta_ttl"),
    ("channel.max_length", "channel_max_length"),
    ("http_api.key", "api_key"),
    ("http_api.insecure", "api_insecure"),
    ("http_server.port", "port"),
    ("http_server.address", "address"),
    ("http_server.internal_port", "internal_port"),
    ("http_server.internal_address", "internal_address"),
    ("node.name", "name"),
    ("engine.type", "engine"),
    ("log.level", "log_level"),
    ("shutdown.timeout", "shutdown_timeout"),
    ("prometheus.enabled", "prometheus"),
    ("health.enabled", "health"),
    ("websocket.message_size_limit", "websocket_message_size_limit"),
    ("websocket.write_timeout", "websocket_write_timeout"),
    ("admin.enabled", "admin"),
    ("admin.password", "admin_password"),
    ("admin.secret", "admin_secret"),
    ("admin.insecure", "admin_insecure"),
    ("admin.external", "admin_external"),
    ("admin.handler_prefix", "admin_handler_prefix"),
    ("usage_stats.disabled", "usage_stats_disable"),
    ("grpc_api.enabled", "grpc_api"),
    ("grpc_api.address", "grpc_api_address"),
    ("grpc_api.port", "grpc_api_port"),
    ("grpc_api.key", "grpc_api_key"),
    ("uni_grpc.enabled", "uni_grpc"),
    ("uni_grpc.address", "uni_grpc_address"),
    ("uni_grpc.port", "uni_grpc_port"),
    ("websocket.disabled", "websocket_disable"),
    ("websocket.compression", "websocket_compression"),
    ("http_stream.enabled", "http_stream"),
    ("sse.enabled", "sse"),
    ("uni_websocket.enabled", "uni_websocket"),
    ("uni_http_stream.enabled", "uni_http_stream"),
    ("uni_sse.enabled", "uni_sse"),
    ("http_api.disabled", "api_disable"),
    ("client.concurrency", "client_concurrency"),
    ("client.channel_position_check_delay", "client_channel_position_check_delay"),
    ("client.channel_position_max_time_lag", "client_channel_position_max_time_lag"),
    ("client.connect_include_server_time", "client_connect_include_server_time"),
    ("client.subscribe_to_user_personal_channel.single_connection", "user_personal_single_connection"),
    ("channel.private_prefix", "channel_private_prefix"),
    ("debug.enabled", "debug"),
    ("swagger.enabled", "swagger"),
    ("opentelemetry.enabled", "opentelemetry"),
    ("graphite.enabled", "graphite"),
    ("log.file", "log_file"),
    ("http_server.tls.enabled", "tls"),
];

/// v6 proxy objects and the hook whose flat `proxy_<hook>_*` keys they set.
const PROXIES: &[(&str, &str)] = &[
    ("client.proxy.connect", "connect"),
    ("client.proxy.refresh", "refresh"),
    ("channel.proxy.subscribe", "subscribe"),
    ("channel.proxy.publish", "publish"),
    ("channel.proxy.sub_refresh", "sub_refresh"),
    ("rpc.proxy", "rpc"),
];

/// A config rewritten from the nested layout.
#[derive(Debug, Default)]
pub struct Flattened {
    pub map: Map<String, Value>,
    /// (flat key, nested path) for error messages.
    pub renamed: Vec<(String, String)>,
    /// (nested path, message) of keys that have no flat counterpart.
    pub issues: Vec<(String, String)>,
}

/// True when `map` uses the v6 layout.
pub fn is_nested(map: &Map<String, Value>) -> bool {
    SECTIONS.iter().any(|s| map.get(*s).is_some_and(Value::is_object))
}

/// Rewrites the v6 sections of `map`; flat keys beside them are kept (Gyre's own keys, such
/// as `nats_*`, have no v6 form).
pub fn flatten(map: Map<String, Value>) -> Flattened {
    let mut out = Flattened::default();
    for (key, value) in map {
        match value {
            Value::Object(section) if key == "broker" => out.broker(&key, Value::Object(section)),
            Value::Object(section) if SECTIONS.contains(&key.as_str()) => out.section(&key, section),
            other => {
                out.map.insert(key, other);
            }
        }
    }
    out
}

impl Flattened {
    fn put(&mut self, flat: &str, path: &str, value: Value) {
        self.map.insert(flat.to_string(), value);
        self.renamed.push((flat.to_string(), path.to_string()));
    }

    fn section(&mut self, path: &str, object: Map<String, Value>) {
        let mut rpc_proxy_enabled = false;
        for (key, value) in object {
            let path = format!("{path}.{key}");
            if let Some((_, flat)) = LEAVES.iter().find(|(p, _)| *p == path) {
                self.put(flat, &path, value);
            } else if let Some((_, hook)) = PROXIES.iter().find(|(p, _)| *p == path) {
                self.proxy(&path, hook, value);
            } else if path == "channel.without_namespace" {
                self.channel_options(&path, value);
            } else if path == "rpc.without_namespace" {
                rpc_proxy_enabled = value.get("proxy_enabled").and_then(Value::as_bool).unwrap_or(false);
            } else {
                match value {
                    Value::Object(inner) if is_container(&path) => self.section(&path, inner),
                    _ => self.issues.push((path, "not supported by Gyre (no flat Centrifugo counterpart)".into())),
                }
            }
        }
        // v6 proxies RPC only when the channel-less RPC namespace enables it.
        if path == "rpc" && !rpc_proxy_enabled && self.map.remove("proxy_rpc_endpoint").is_some() {
            self.renamed.retain(|(flat, _)| flat != "proxy_rpc_endpoint");
        }
    }

    /// `channel.without_namespace.<option>`: options of channels without a namespace, which
    /// the flat layout writes at the top level.
    fn channel_options(&mut self, path: &str, value: Value) {
        match value {
            Value::Object(options) => {
                for (key, v) in options {
                    self.put(&key.clone(), &format!("{path}.{key}"), v);
                }
            }
            _ => self.issues.push((path.to_string(), "must be an object of channel options".into())),
        }
    }

    /// A v6 proxy object: `enabled` (connect and refresh only turn on with it), `endpoint`,
    /// `timeout`, `http_headers`, `http.static_headers`, `include_connection_meta`,
    /// `binary_encoding`; the last four apply to every hook in Gyre (merged).
    fn proxy(&mut self, path: &str, hook: &str, value: Value) {
        let Value::Object(object) = value else {
            self.issues.push((path.to_string(), "must be an object".into()));
            return;
        };
        let needs_enabled = path.starts_with("client.");
        let enabled = object.get("enabled").and_then(Value::as_bool).unwrap_or(!needs_enabled);
        for (key, v) in object {
            let p = format!("{path}.{key}");
            match key.as_str() {
                "enabled" => {}
                "endpoint" if enabled => self.put(&format!("proxy_{hook}_endpoint"), &p, v),
                "endpoint" => {}
                "timeout" => self.put(&format!("proxy_{hook}_timeout"), &p, v),
                "http_headers" => self.merge_list("proxy_http_headers", &p, v),
                "include_connection_meta" if v == Value::Bool(true) => self.put("proxy_include_connection_meta", &p, v),
                "include_connection_meta" => {}
                "binary_encoding" => self.put("proxy_binary_encoding", &p, v),
                "http" => match v {
                    Value::Object(http) => {
                        for (k, hv) in http {
                            let hp = format!("{p}.{k}");
                            if k == "static_headers" {
                                self.merge_object("proxy_static_http_headers", &hp, hv);
                            } else {
                                self.issues.push((hp, "not supported by Gyre".into()));
                            }
                        }
                    }
                    _ => self.issues.push((p, "must be an object".into())),
                },
                _ => self.issues.push((p, "not supported by Gyre".into())),
            }
        }
    }

    fn merge_list(&mut self, flat: &str, path: &str, value: Value) {
        let Value::Array(items) = value else {
            self.issues.push((path.to_string(), "must be a list".into()));
            return;
        };
        let entry = self.map.entry(flat.to_string()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(existing) = entry {
            for item in items {
                if !existing.contains(&item) {
                    existing.push(item);
                }
            }
        }
        self.renamed.push((flat.to_string(), path.to_string()));
    }

    fn merge_object(&mut self, flat: &str, path: &str, value: Value) {
        let Value::Object(items) = value else {
            self.issues.push((path.to_string(), "must be an object".into()));
            return;
        };
        let entry = self.map.entry(flat.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(existing) = entry {
            existing.extend(items);
        }
        self.renamed.push((flat.to_string(), path.to_string()));
    }

    /// `broker.enabled` + `broker.type: "nats"` + `broker.nats.{url,prefix}`: Gyre's NATS
    /// engine (JetStream) in place of Centrifugo's NATS broker.
    fn broker(&mut self, path: &str, value: Value) {
        let Value::Object(object) = value else {
            self.issues.push((path.to_string(), "must be an object".into()));
            return;
        };
        let enabled = object.get("enabled").and_then(Value::as_bool).unwrap_or(false);
        for (key, v) in object {
            let p = format!("{path}.{key}");
            match (key.as_str(), v) {
                ("enabled", _) => {}
                ("type", Value::String(t)) if t == "nats" => {
                    if enabled {
                        self.put("engine", &p, Value::String(t));
                    }
                }
                ("nats", Value::Object(nats)) => {
                    for (k, nv) in nats {
                        let np = format!("{p}.{k}");
                        match k.as_str() {
                            "url" => self.put("nats_url", &np, nv),
                            "prefix" => self.put("nats_prefix", &np, nv),
                            _ => self.issues.push((np, "not supported by Gyre".into())),
                        }
                    }
                }
                _ => self.issues.push((p, "not supported by Gyre (only a NATS broker)".into())),
            }
        }
    }
}

/// Paths that only hold other keys.
fn is_container(path: &str) -> bool {
    ["client.token", "client.subscribe_to_user_personal_channel", "client.proxy", "channel.proxy", "http_server.tls"]
        .contains(&path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_keys_become_flat_ones_with_their_paths() {
        let Value::Object(map) = json!({
            "client": {"token": {"hmac_secret_key": "s"}, "allowed_origins": ["http://a"],
                       "proxy": {"connect": {"enabled": true, "endpoint": "http://app/c", "http_headers": ["Cookie"]},
                                 "refresh": {"enabled": false, "endpoint": "http://app/r"}}},
            "channel": {"without_namespace": {"presence": true}, "namespaces": [{"name": "chat"}],
                        "proxy": {"subscribe": {"endpoint": "http://app/s", "http_headers": ["Cookie", "X-A"]}}},
            "rpc": {"proxy": {"endpoint": "http://app/rpc"}},
            "http_api": {"key": "k"},
            "broker": {"enabled": true, "type": "nats", "nats": {"url": "nats://n:4222"}},
            "nats_replicas": 3,
            "client_typo": {"x": 1},
            "node": {"weird": 1}
        }) else {
            unreachable!()
        };
        assert!(is_nested(&map));
        let f = flatten(map);
        let m = &f.map;
        assert_eq!(m["token_hmac_secret_key"], "s");
        assert_eq!(m["proxy_connect_endpoint"], "http://app/c");
        assert!(m.get("proxy_refresh_endpoint").is_none(), "refresh proxy not enabled");
        assert!(m.get("proxy_rpc_endpoint").is_none(), "rpc.without_namespace.proxy_enabled is off");
        assert_eq!(m["proxy_subscribe_endpoint"], "http://app/s");
        assert_eq!(m["proxy_http_headers"], json!(["Cookie", "X-A"]));
        assert_eq!((&m["presence"], &m["api_key"], &m["engine"]), (&json!(true), &json!("k"), &json!("nats")));
        assert_eq!((&m["nats_url"], &m["nats_replicas"]), (&json!("nats://n:4222"), &json!(3)));
        assert!(m.contains_key("client_typo"), "not a section: left for the loader to refuse");
        assert!(f.renamed.contains(&("presence".into(), "channel.without_namespace.presence".into())));
        assert_eq!(
            f.issues,
            vec![("node.weird".to_string(), "not supported by Gyre (no flat Centrifugo counterpart)".to_string())]
        );
    }

    #[test]
    fn flat_configs_are_not_nested() {
        let Value::Object(map) = json!({"engine": "nats", "health": true, "prometheus": false}) else { unreachable!() };
        assert!(!is_nested(&map));
    }
}
