//! From `Namespace` objects to the channel namespaces of a cluster's config: names resolved,
//! options converted to the edge's types, duplicates settled by age, in a deterministic order.

use std::collections::BTreeMap;

use gyre_config::{ChannelOptions, Namespace as EdgeNamespace};
use kube::ResourceExt;
use serde_json::{Map, Value};

use crate::crd::Namespace;

/// A `Namespace` object the cluster's config will not carry, and why (condition reason and
/// message on the object).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    pub object: String,
    pub reason: &'static str,
    pub message: String,
}

/// What goes into the config and what does not.
#[derive(Debug, Default)]
pub struct Resolution {
    /// Sorted by channel-namespace name.
    pub accepted: Vec<Accepted>,
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Clone)]
pub struct Accepted {
    /// metadata.name of the object.
    pub object: String,
    pub namespace: EdgeNamespace,
}

/// The channel-namespace name of an object: `spec.name`, else `metadata.name`.
pub fn resolved_name(ns: &Namespace) -> String {
    ns.spec.name.clone().unwrap_or_else(|| ns.name_any())
}

/// Resolves the `Namespace` objects that point at one cluster. Of several objects claiming one
/// name the oldest wins (then the lexically first object name); the others are rejected with
/// `DuplicateName`.
pub fn resolve(objects: &[Namespace]) -> Resolution {
    let mut sorted: Vec<&Namespace> = objects.iter().collect();
    sorted.sort_by(|a, b| {
        let age = |n: &Namespace| n.metadata.creation_timestamp.as_ref().map(|t| t.0);
        age(a).cmp(&age(b)).then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let mut by_name: BTreeMap<String, Accepted> = BTreeMap::new();
    let mut out = Resolution::default();
    for ns in sorted {
        let name = resolved_name(ns);
        let object = ns.name_any();
        if let Some(winner) = by_name.get(&name) {
            out.rejected.push(Rejected {
                object,
                reason: "DuplicateName",
                message: format!("channel namespace {name:?} is already defined by Namespace {:?}", winner.object),
            });
            continue;
        }
        match channel_options(&ns.spec.options) {
            Ok(options) if gyre_config::valid_namespace_name(&name) => {
                by_name.insert(name.clone(), Accepted { object, namespace: EdgeNamespace { name, options } });
            }
            Ok(_) => out.rejected.push(Rejected {
                object,
                reason: "Invalid",
                message: format!(
                    "{name:?} is not a channel-namespace name (at least 2 of letters, digits, '-', '_', '.')"
                ),
            }),
            Err(message) => out.rejected.push(Rejected { object, reason: "Invalid", message }),
        }
    }
    out.accepted = by_name.into_values().collect();
    out
}

/// Converts the CRD's camelCase options into the edge's options (the same fields, snake_case);
/// empty values are the edge defaults.
pub fn channel_options(options: &crate::crd::namespace::ChannelOptions) -> Result<ChannelOptions, String> {
    let Ok(Value::Object(camel)) = serde_json::to_value(options) else {
        return Err("options do not serialize to an object".into());
    };
    let mut snake = Map::new();
    for (key, value) in camel {
        let empty =
            matches!(&value, Value::String(s) if s.is_empty()) || matches!(&value, Value::Array(a) if a.is_empty());
        if !empty {
            snake.insert(snake_case(&key), value);
        }
    }
    serde_json::from_value(Value::Object(snake)).map_err(|e| format!("invalid channel options: {e}"))
}

/// `historyTtl` → `history_ttl`.
pub fn snake_case(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}
