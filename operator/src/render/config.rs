//! The edge config a cluster runs with, built from `gyre_config` types (the edge's own
//! definition, so the operator cannot write a key the edge does not know) and checked by the
//! edge's own loader before it is applied.

use gyre_config::{Config, ConfigDuration, EngineKind, Format, LogFormat, Namespace as EdgeNamespace};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::secrets;
use crate::crd::cluster::Admin;
use crate::crd::RealtimeCluster;

/// How often edges re-read the mounted config (namespace changes without restarts).
const WATCH_INTERVAL_SECS: u64 = 2;

/// Keys of `spec.config` that have their own fields or kinds, with where they belong.
const RESERVED: &[(&str, &str)] = &[
    ("token_hmac_secret_key", "spec.auth.tokenHmacSecretRef"),
    ("token_rsa_public_key", "spec.auth.tokenRsaPublicKeySecretRef"),
    ("token_ecdsa_public_key", "spec.auth.tokenEcdsaPublicKeySecretRef"),
    ("token_jwks_public_endpoint", "spec.auth.tokenJwksUrl"),
    ("token_audience", "spec.auth.tokenAudience"),
    ("token_issuer", "spec.auth.tokenIssuer"),
    ("api_key", "spec.auth.apiKeySecretRef"),
    ("grpc_api_key", "spec.auth.grpcApiKeySecretRef"),
    ("grpc_api", "spec.ports.grpc"),
    ("grpc_api_port", "spec.ports.grpc"),
    ("grpc_api_address", "spec.ports"),
    ("uni_grpc", "spec.ports.uniGrpc"),
    ("uni_grpc_port", "spec.ports.uniGrpc"),
    ("uni_grpc_address", "spec.ports"),
    ("nats_password", "spec.engine.nats.userSecretRef"),
    ("nats_user", "spec.engine.nats.userSecretRef"),
    ("nats_token", "spec.engine.nats.tokenSecretRef"),
    ("nats_nkey_seed", "spec.engine.nats.credentialsSecretRef"),
    ("nats_creds_file", "spec.engine.nats.credentialsSecretRef"),
    ("nats_tls_ca", "spec.engine.nats.tls"),
    ("nats_tls_cert", "spec.engine.nats.tls"),
    ("nats_tls_key", "spec.engine.nats.tls"),
    ("nats_url", "spec.engine.nats.url"),
    ("nats_prefix", "spec.engine.nats.prefix"),
    ("nats_storage", "spec.engine.nats.storage"),
    ("nats_replicas", "spec.engine.nats.streamReplicas"),
    ("engine", "spec.engine.type"),
    ("port", "spec.ports.client"),
    ("address", "spec.ports"),
    ("internal_port", "spec.ports.internal"),
    ("internal_address", "spec.ports"),
    ("allowed_origins", "spec.allowedOrigins"),
    ("admin", "spec.admin.enabled"),
    ("admin_password", "spec.admin.passwordSecretRef"),
    ("admin_secret", "spec.admin.secretSecretRef"),
    ("admin_insecure", "spec.admin.insecure"),
    ("admin_handler_prefix", "spec.admin.handlerPrefix"),
    ("admin_external", "spec.admin (the admin UI is only ever served on the internal Service)"),
    ("shutdown_timeout", "spec.shutdown.drainSeconds"),
    ("config_watch_interval", "(set by the operator)"),
    ("health", "(set by the operator)"),
    ("prometheus", "(set by the operator)"),
    ("namespaces", "Namespace objects (kind Namespace, group gyre.dev)"),
];

/// The rendered config: the file's text, and the hash of what needs a restart.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    pub json: String,
    /// sha256 of the config without `namespaces` (those apply live).
    pub restart_hash: String,
}

/// Builds and validates the config of `cluster` with `namespaces` (already resolved, sorted).
pub fn render(cluster: &RealtimeCluster, namespaces: &[EdgeNamespace]) -> Result<EdgeConfig, String> {
    let spec = &cluster.spec;
    let mut c = Config {
        port: u16::try_from(spec.ports.client).map_err(|_| "spec.ports.client is not a port".to_string())?,
        internal_port: Some(
            u16::try_from(spec.ports.internal).map_err(|_| "spec.ports.internal is not a port".to_string())?,
        ),
        log_format: LogFormat::Json,
        allowed_origins: spec.allowed_origins.clone(),
        shutdown_timeout: ConfigDuration::secs(u64::try_from(spec.shutdown.drain_seconds.max(0)).unwrap_or(0)),
        config_watch_interval: ConfigDuration::secs(WATCH_INTERVAL_SECS),
        namespaces: namespaces.to_vec(),
        ..Config::default()
    };
    c.token_jwks_public_endpoint = spec.auth.token_jwks_url.clone().unwrap_or_default();
    c.token_audience = spec.auth.token_audience.clone().unwrap_or_default();
    c.token_issuer = spec.auth.token_issuer.clone().unwrap_or_default();
    if let Some(port) = spec.ports.grpc {
        c.grpc_api = true;
        c.grpc_api_port = u16::try_from(port).map_err(|_| "spec.ports.grpc is not a port".to_string())?;
    }
    if let Some(port) = spec.ports.uni_grpc {
        c.uni_grpc = true;
        c.uni_grpc_port = u16::try_from(port).map_err(|_| "spec.ports.uniGrpc is not a port".to_string())?;
    }
    admin(&mut c, &spec.admin)?;
    if let Some(nats) = spec.engine.nats.as_ref().filter(|_| spec.engine.kind == "nats") {
        c.engine = EngineKind::Nats;
        c.nats_url = nats.url.clone();
        c.nats_storage = nats.storage.clone();
        c.nats_replicas = usize::try_from(nats.stream_replicas).unwrap_or(1);
        if let Some(prefix) = &nats.prefix {
            c.nats_prefix = prefix.clone();
        }
        c.nats_creds_file = secrets::nats_creds_path(nats).unwrap_or_default();
        c.nats_tls_ca = secrets::nats_ca_path(nats).unwrap_or_default();
        if let Some((cert, key)) = secrets::nats_client_cert_paths(nats) {
            c.nats_tls_cert = cert;
            c.nats_tls_key = key;
        }
    }

    let mut value = minimal(&c)?;
    if let Some(extra) = &spec.config {
        for (key, v) in extra {
            if let Some((_, instead)) = RESERVED.iter().find(|(k, _)| k == key) {
                return Err(format!("spec.config.{key} is not allowed here: use {instead}"));
            }
            value.insert(key.clone(), v.clone());
        }
    }
    let json = serde_json::to_string_pretty(&Value::Object(value.clone())).map_err(|e| e.to_string())?;
    // The edge's own loader: unknown keys, wrong types and bad values fail here, not in a pod.
    let origin = format!("RealtimeCluster {}", cluster.metadata.name.as_deref().unwrap_or_default());
    // Secret values reach the pods as GYRE_* variables; stand in for the ones the edge requires.
    let mut checked = value.clone();
    let from_secrets = [
        ("grpc_api_key", spec.auth.grpc_api_key_secret_ref.is_some()),
        ("admin_password", spec.admin.enabled && spec.admin.password_secret_ref.is_some()),
        ("admin_secret", spec.admin.enabled && spec.admin.secret_secret_ref.is_some()),
    ];
    for (key, _) in from_secrets.into_iter().filter(|(_, set)| *set) {
        checked.insert(key.into(), Value::String("(from the Secret)".into()));
    }
    let checked = serde_json::to_string(&Value::Object(checked)).map_err(|e| e.to_string())?;
    gyre_config::load_str(&checked, Format::Json, &origin).map_err(|e| e.to_string())?;

    value.remove("namespaces");
    let restart = serde_json::to_vec(&Value::Object(value)).map_err(|e| e.to_string())?;
    Ok(EdgeConfig { json, restart_hash: hex::encode(Sha256::digest(&restart)) })
}

/// The admin UI keys. `admin_external` stays off whatever the spec says: the UI is served on
/// the internal listener only, which no client-facing Service exposes. The password and the
/// session secret arrive as `GYRE_ADMIN_*` variables (see `secrets`), never in the ConfigMap.
fn admin(c: &mut Config, admin: &Admin) -> Result<(), String> {
    c.admin_external = false;
    if !admin.enabled {
        return Ok(());
    }
    let refs = admin.password_secret_ref.is_some() && admin.secret_secret_ref.is_some();
    if !admin.insecure && !refs {
        // The CRD's CEL rule refuses this too; this catches objects stored before it existed.
        return Err("spec.admin.enabled needs spec.admin.passwordSecretRef and spec.admin.secretSecretRef \
                    (or spec.admin.insecure on a trusted network)"
            .to_string());
    }
    c.admin = true;
    c.admin_insecure = admin.insecure;
    c.admin_handler_prefix = admin.handler_prefix.clone().unwrap_or_default();
    Ok(())
}

/// The config as a file would hold it: only keys that differ from the edge's defaults (and,
/// per namespace, only options that differ from the defaults), keys in sorted order.
fn minimal(c: &Config) -> Result<Map<String, Value>, String> {
    let defaults = Config::default().to_value();
    let Value::Object(full) = c.to_value() else { return Err("config does not serialize to an object".into()) };
    let mut out = Map::new();
    for (key, value) in full {
        if key == "namespaces" || defaults.get(&key) == Some(&value) {
            continue;
        }
        out.insert(key, value);
    }
    let option_defaults = serde_json::to_value(gyre_config::ChannelOptions::default()).map_err(|e| e.to_string())?;
    let namespaces: Vec<Value> = c
        .namespaces
        .iter()
        .map(|ns| {
            let mut m = Map::new();
            m.insert("name".into(), Value::String(ns.name.clone()));
            if let Ok(Value::Object(options)) = serde_json::to_value(&ns.options) {
                for (k, v) in options {
                    if option_defaults.get(&k) != Some(&v) {
                        m.insert(k, v);
                    }
                }
            }
            Value::Object(m)
        })
        .collect();
    if !namespaces.is_empty() {
        out.insert("namespaces".into(), Value::Array(namespaces));
    }
    Ok(out)
}
