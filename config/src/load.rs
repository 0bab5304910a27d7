//! Reading config: file (JSON/YAML/TOML by extension) < `GYRE_<KEY>` environment variables.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{ChannelOptions, Config};

/// Prefix of environment variables that override config keys (`GYRE_API_KEY`, …).
pub const ENV_PREFIX: &str = "GYRE_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
    Toml,
}

impl Format {
    /// Picks the format from a file extension; anything unknown is read as JSON.
    pub fn from_path(path: &Path) -> Self {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("yaml" | "yml") => Self::Yaml,
            Some("toml") => Self::Toml,
            _ => Self::Json,
        }
    }
}

/// One problem found in the config, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The file path, or the environment variable name.
    pub origin: String,
    /// The key, in path form (`namespaces[1].history_ttl`); empty for whole-file problems.
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: key `{}`: {}", self.origin, self.key, self.message)
        }
    }
}

/// Every problem found while loading a config.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.issues.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl ConfigError {
    fn one(origin: &str, key: &str, message: impl Into<String>) -> Self {
        Self { issues: vec![ConfigIssue { origin: origin.into(), key: key.into(), message: message.into() }] }
    }
}

/// Loads the config from `path` (or defaults when `None`), then the environment.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let (origin, value) = match path {
        Some(p) => {
            let origin = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| ConfigError::one(&origin, "", format!("cannot read config file: {e}")))?;
            (origin.clone(), parse_text(&text, Format::from_path(p), &origin)?)
        }
        None => ("defaults".to_string(), Value::Object(Map::new())),
    };
    build(value, &origin, std::env::vars())
}

/// Loads a config from text (tests, `checkconfig` of piped input); env is not consulted.
pub fn load_str(text: &str, format: Format, origin: &str) -> Result<Config, ConfigError> {
    build(parse_text(text, format, origin)?, origin, std::iter::empty())
}

fn parse_text(text: &str, format: Format, origin: &str) -> Result<Value, ConfigError> {
    let parsed = match format {
        Format::Json => serde_json::from_str::<Value>(text).map_err(|e| e.to_string()),
        Format::Yaml => serde_yaml::from_str::<Value>(text).map_err(|e| e.to_string()),
        Format::Toml => toml::from_str::<Value>(text).map_err(|e| e.to_string()),
    };
    match parsed {
        Ok(Value::Object(m)) => Ok(Value::Object(m)),
        Ok(Value::Null) => Ok(Value::Object(Map::new())),
        Ok(_) => Err(ConfigError::one(origin, "", "the config must be an object of keys")),
        Err(e) => Err(ConfigError::one(origin, "", format!("cannot parse {format:?}: {e}"))),
    }
}

/// Where each key's value came from, so errors can name the file or the variable, and the
/// key as the user wrote it (a v6 nested path).
struct Origins {
    file: String,
    env: Vec<(String, String)>,
    /// (flat key, nested path) of keys rewritten from the v6 layout.
    renamed: Vec<(String, String)>,
}

impl Origins {
    fn of(&self, key: &str) -> String {
        let top = key.split(['.', '[']).next().unwrap_or(key);
        self.env.iter().find(|(k, _)| k == top).map(|(_, var)| var.clone()).unwrap_or_else(|| self.file.clone())
    }

    /// An issue about flat `key` (`namespaces[1].history_ttl`), named as written.
    fn issue(&self, key: String, message: String) -> ConfigIssue {
        let top_len = key.find(['.', '[']).unwrap_or(key.len());
        let from_env = self.env.iter().any(|(k, _)| *k == key[..top_len]);
        let shown = match self.renamed.iter().find(|(flat, _)| *flat == key[..top_len]) {
            Some((_, nested)) if !from_env => format!("{nested}{}", &key[top_len..]),
            _ => key.clone(),
        };
        ConfigIssue { origin: self.of(&key), key: shown, message }
    }
}

fn build(file_value: Value, origin: &str, env: impl Iterator<Item = (String, String)>) -> Result<Config, ConfigError> {
    let Value::Object(map) = file_value else {
        return Err(ConfigError::one(origin, "", "the config must be an object of keys"));
    };
    let mut issues = Vec::new();
    let (mut map, renamed) = if super::nested::is_nested(&map) {
        let flat = super::nested::flatten(map);
        for (key, message) in flat.issues {
            issues.push(ConfigIssue { origin: origin.to_string(), key, message });
        }
        (flat.map, flat.renamed)
    } else {
        (map, Vec::new())
    };
    let defaults = match Config::default().to_value() {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let channel_keys: Vec<String> = match serde_json::to_value(ChannelOptions::default()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    };

    let mut origins = Origins { file: origin.to_string(), env: Vec::new(), renamed };
    for (var, raw) in env {
        let Some(key) = var.strip_prefix(ENV_PREFIX) else { continue };
        let key = key.to_ascii_lowercase();
        if raw.is_empty() {
            continue;
        }
        let Some(default) = defaults.get(&key) else { continue };
        match env_value(default, &raw) {
            Ok(v) => {
                map.insert(key.clone(), v);
                origins.env.push((key, var));
            }
            Err(msg) => issues.push(ConfigIssue { origin: var.clone(), key, message: msg }),
        }
    }

    let mut top = Map::new();
    let mut channel = Map::new();
    for (key, value) in map {
        if channel_keys.contains(&key) {
            channel.insert(key, value);
        } else if defaults.contains_key(&key) {
            top.insert(key, value);
        } else {
            issues.push(origins.issue(key, "unknown key".into()));
        }
    }

    let config = serde_path_to_error::deserialize::<_, Config>(Value::Object(top));
    let channel = serde_path_to_error::deserialize::<_, ChannelOptions>(Value::Object(channel));
    let (mut config, channel) = match (config, channel) {
        (Ok(c), Ok(ch)) => (c, ch),
        (c, ch) => {
            for err in [
                c.err().map(|e| (e.path().to_string(), e.into_inner().to_string())),
                ch.err().map(|e| (e.path().to_string(), e.into_inner().to_string())),
            ]
            .into_iter()
            .flatten()
            {
                let (path, msg) = err;
                issues.push(origins.issue(path, msg));
            }
            return Err(ConfigError { issues });
        }
    };
    config.channel = channel;
    issues.extend(super::validate::validate(&config).into_iter().map(|(key, message)| origins.issue(key, message)));
    if issues.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError { issues })
    }
}

/// Converts an environment string to the JSON type of the key's default value.
fn env_value(default: &Value, raw: &str) -> Result<Value, String> {
    match default {
        Value::String(_) => Ok(Value::String(raw.to_string())),
        Value::Bool(_) => match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Value::Bool(true)),
            "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("invalid boolean {raw:?}: use true/false/1/0")),
        },
        Value::Array(_) => match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Array(_)) => Ok(v),
            _ => Ok(Value::Array(raw.split_whitespace().map(|s| Value::String(s.into())).collect())),
        },
        _ => serde_json::from_str::<Value>(raw).map_err(|e| format!("invalid value {raw:?}: {e}")),
    }
}

/// The default config file name used by `genconfig`.
pub fn default_path() -> PathBuf {
    PathBuf::from("config.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn flat_centrifugo_config_loads() {
        let text = r#"{
            "token_hmac_secret_key": "s", "api_key": "k", "allowed_origins": ["http://x"],
            "presence": true,
            "namespaces": [{"name": "chat", "history_size": 10, "history_ttl": "300s",
                            "allow_publish_for_subscriber": true}]
        }"#;
        let c = load_str(text, Format::Json, "c.json").unwrap();
        assert!(c.channel.presence);
        let chat = c.namespace("chat").unwrap();
        assert_eq!(chat.history_size, 10);
        assert_eq!(chat.history_ttl.as_secs(), 300);
    }

    #[test]
    fn errors_name_key_and_file() {
        let text = "port: nope\nhistory_ttl: 5 parsecs\nbogus: 1\n";
        let err = load_str(text, Format::Yaml, "conf.yaml").unwrap_err().to_string();
        assert!(err.contains("conf.yaml: key `bogus`: unknown key"), "{err}");
        assert!(err.contains("conf.yaml: key `port`"), "{err}");
        let text = "[[namespaces]]\nname = \"x\"\n";
        let err = load_str(text, Format::Toml, "c.toml").unwrap_err().to_string();
        assert!(err.contains("namespaces[0].name"), "{err}");
    }

    #[test]
    fn centrifugo_v6_nested_config_loads_and_errors_name_nested_keys() {
        let text = r#"
client:
  token: {hmac_secret_key: s}
  allowed_origins: ["http://x"]
channel:
  without_namespace: {presence: true}
  namespaces:
    - {name: chat, history_size: 10, history_ttl: 300s, allow_subscribe_for_client: true}
http_api: {key: k}
admin: {enabled: false, password: p, secret: q}
"#;
        let c = load_str(text, Format::Yaml, "v6.yaml").unwrap();
        assert_eq!((c.token_hmac_secret_key.as_str(), c.api_key.as_str()), ("s", "k"));
        assert!(c.channel.presence && c.namespace("chat").unwrap().allow_subscribe_for_client);
        let bad = "client: {ping_interval: soon, token: {user_id_claim: uid}}\n";
        let err = load_str(bad, Format::Yaml, "v6.yaml").unwrap_err().to_string();
        assert!(err.contains("v6.yaml: key `client.ping_interval`"), "{err}");
        assert!(err.contains("v6.yaml: key `client.token.user_id_claim`: not supported"), "{err}");
        let bad = "channel: {namespaces: [{name: x}], without_namespace: {history_size: 5}}\n";
        let err = load_str(bad, Format::Yaml, "v6.yaml").unwrap_err().to_string();
        assert!(err.contains("v6.yaml: key `channel.namespaces[0].name`: invalid namespace name"), "{err}");
        assert!(err.contains("v6.yaml: key `channel.without_namespace.history_size`"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_names_the_variable() {
        let file = serde_json::json!({"port": 9000, "api_key": "file"});
        let c = build(file.clone(), "f.json", env(&[("GYRE_API_KEY", "env"), ("GYRE_PRESENCE", "true")]).into_iter())
            .unwrap();
        assert_eq!(c.api_key, "env");
        assert_eq!(c.port, 9000);
        assert!(c.channel.presence);
        let err = build(file.clone(), "f.json", env(&[("GYRE_PORT", "abc")]).into_iter()).unwrap_err();
        assert_eq!(err.issues[0].origin, "GYRE_PORT");
        // Maps come as JSON (the operator passes proxy headers from a Secret this way).
        let headers = env(&[("GYRE_PROXY_STATIC_HTTP_HEADERS", r#"{"Authorization":"Bearer t"}"#)]);
        let c = build(file, "f.json", headers.into_iter()).unwrap();
        assert_eq!(c.proxy_static_http_headers["Authorization"], "Bearer t");
    }
}
