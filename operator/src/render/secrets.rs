//! Secret references become environment variables (`GYRE_<KEY>`, read by the edge's config
//! loader) or mounted files; no secret value ever passes through the operator.

use k8s_openapi::api::core::v1::{
    EnvVar, EnvVarSource, KeyToPath, SecretKeySelector, SecretVolumeSource, Volume, VolumeMount,
};

use crate::crd::cluster::{Admin, Auth, NatsEngine};

const NATS_CREDS_DIR: &str = "/etc/gyre/nats-creds";
const NATS_CA_DIR: &str = "/etc/gyre/nats-ca";
const NATS_CERT_DIR: &str = "/etc/gyre/nats-client";

/// Environment, volumes and mounts that carry a cluster's secrets into the edge container.
#[derive(Debug, Default)]
pub struct SecretWiring {
    pub env: Vec<EnvVar>,
    pub volumes: Vec<Volume>,
    pub mounts: Vec<VolumeMount>,
}

fn env_from(name: &str, selector: &SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value_from: Some(EnvVarSource { secret_key_ref: Some(selector.clone()), ..Default::default() }),
        ..Default::default()
    }
}

fn key_of(secret: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector { name: secret.to_string(), key: key.to_string(), optional: None }
}

/// Mounts `items` of Secret `secret` read-only at `dir`.
fn mount(w: &mut SecretWiring, volume: &str, secret: &str, items: Vec<(String, String)>, dir: &str) {
    w.volumes.push(Volume {
        name: volume.to_string(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret.to_string()),
            items: Some(items.into_iter().map(|(key, path)| KeyToPath { key, path, mode: None }).collect()),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    });
    w.mounts.push(VolumeMount {
        name: volume.to_string(),
        mount_path: dir.to_string(),
        read_only: Some(true),
        ..Default::default()
    });
}

/// Every Secret key that becomes one `GYRE_<KEY>` variable, with the variable's name. The admin
/// keys count only while the UI is enabled: a disabled UI needs neither the variables nor the
/// Secret.
fn env_refs<'a>(auth: &'a Auth, admin: &'a Admin) -> Vec<(&'static str, &'a SecretKeySelector)> {
    let admin_on = |r: &'a Option<SecretKeySelector>| r.as_ref().filter(|_| admin.enabled);
    [
        ("GYRE_TOKEN_HMAC_SECRET_KEY", auth.token_hmac_secret_ref.as_ref()),
        ("GYRE_TOKEN_RSA_PUBLIC_KEY", auth.token_rsa_public_key_secret_ref.as_ref()),
        ("GYRE_TOKEN_ECDSA_PUBLIC_KEY", auth.token_ecdsa_public_key_secret_ref.as_ref()),
        ("GYRE_API_KEY", auth.api_key_secret_ref.as_ref()),
        ("GYRE_GRPC_API_KEY", auth.grpc_api_key_secret_ref.as_ref()),
        ("GYRE_PROXY_STATIC_HTTP_HEADERS", auth.proxy_static_headers_secret_ref.as_ref()),
        ("GYRE_ADMIN_PASSWORD", admin_on(&admin.password_secret_ref)),
        ("GYRE_ADMIN_SECRET", admin_on(&admin.secret_secret_ref)),
    ]
    .into_iter()
    .filter_map(|(name, selector)| selector.map(|s| (name, s)))
    .collect()
}

/// The wiring for `auth`, `admin` and, with the NATS engine, `nats`.
pub fn wiring(auth: &Auth, admin: &Admin, nats: Option<&NatsEngine>) -> SecretWiring {
    let mut w = SecretWiring::default();
    for (name, selector) in env_refs(auth, admin) {
        w.env.push(env_from(name, selector));
    }
    let Some(nats) = nats else { return w };
    if let Some(user) = &nats.user_secret_ref {
        w.env.push(env_from("GYRE_NATS_USER", &key_of(&user.name, "username")));
        w.env.push(env_from("GYRE_NATS_PASSWORD", &key_of(&user.name, "password")));
    }
    if let Some(token) = &nats.token_secret_ref {
        w.env.push(env_from("GYRE_NATS_TOKEN", token));
    }
    if let Some(creds) = &nats.credentials_secret_ref {
        mount(&mut w, "nats-creds", &creds.name, vec![(creds.key.clone(), "nats.creds".into())], NATS_CREDS_DIR);
    }
    if let Some(tls) = &nats.tls {
        if let Some(ca) = &tls.ca_secret_ref {
            mount(&mut w, "nats-ca", &ca.name, vec![(ca.key.clone(), "ca.crt".into())], NATS_CA_DIR);
        }
        if let Some(client) = &tls.client_secret_ref {
            let items = vec![("tls.crt".into(), "tls.crt".into()), ("tls.key".into(), "tls.key".into())];
            mount(&mut w, "nats-client", &client.name, items, NATS_CERT_DIR);
        }
    }
    w
}

/// Names of every Secret a cluster refers to (to report a missing one before pods fail).
pub fn referenced_secrets(auth: &Auth, admin: &Admin, nats: Option<&NatsEngine>) -> Vec<String> {
    let mut names: Vec<String> = env_refs(auth, admin).into_iter().map(|(_, s)| s.name.clone()).collect();
    if let Some(n) = nats {
        names.extend(n.credentials_secret_ref.iter().map(|s| s.name.clone()));
        names.extend(n.user_secret_ref.iter().map(|s| s.name.clone()));
        names.extend(n.token_secret_ref.iter().map(|s| s.name.clone()));
        if let Some(tls) = &n.tls {
            names.extend(tls.ca_secret_ref.iter().map(|s| s.name.clone()));
            names.extend(tls.client_secret_ref.iter().map(|s| s.name.clone()));
        }
    }
    names.sort();
    names.dedup();
    names
}

pub fn nats_creds_path(nats: &NatsEngine) -> Option<String> {
    nats.credentials_secret_ref.as_ref().map(|_| format!("{NATS_CREDS_DIR}/nats.creds"))
}

pub fn nats_ca_path(nats: &NatsEngine) -> Option<String> {
    nats.tls.as_ref()?.ca_secret_ref.as_ref().map(|_| format!("{NATS_CA_DIR}/ca.crt"))
}

pub fn nats_client_cert_paths(nats: &NatsEngine) -> Option<(String, String)> {
    nats.tls
        .as_ref()?
        .client_secret_ref
        .as_ref()
        .map(|_| (format!("{NATS_CERT_DIR}/tls.crt"), format!("{NATS_CERT_DIR}/tls.key")))
}
