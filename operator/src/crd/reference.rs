//! The CRD field reference in Markdown, generated from the schemas (doc comments become
//! descriptions), so `docs/crd-reference.md` never drifts from the types.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

use super::{Namespace, RealtimeCluster};

/// Fields whose types come from Kubernetes itself: listed, not expanded.
const OPAQUE: &[&str] = &[
    "resources",
    "behavior",
    "affinity",
    "tolerations",
    "topologySpreadConstraints",
    "securityContext",
    "imagePullSecrets",
    "conditions",
];

pub fn markdown() -> String {
    let mut out = String::from(
        "# Custom resources (gyre.dev/v1alpha1)\n\n\
         Generated from the operator's types (`cargo test -p gyre-operator` checks it; \
         `GYRE_UPDATE_GOLDEN=1` rewrites it). Defaults are applied by the API server.\n",
    );
    for crd in [RealtimeCluster::crd(), Namespace::crd()] {
        section(&mut out, &crd);
    }
    out
}

fn section(out: &mut String, crd: &CustomResourceDefinition) {
    let names = &crd.spec.names;
    let short = names.short_names.clone().unwrap_or_default().join(", ");
    out.push_str(&format!("\n## {} (`{}`, short name `{short}`)\n\n", names.kind, names.plural));
    let Some(schema) =
        crd.spec.versions.first().and_then(|v| v.schema.as_ref()).and_then(|s| s.open_api_v3_schema.as_ref())
    else {
        return;
    };
    let Ok(schema) = serde_json::to_value(schema) else { return };
    if let Some(d) = schema["description"].as_str() {
        out.push_str(d);
        out.push_str("\n\n");
    }
    for part in ["spec", "status"] {
        out.push_str(&format!("### {part}\n\n| Field | Type | Default | Description |\n|---|---|---|---|\n"));
        let node = &schema["properties"][part];
        let required: Vec<&str> =
            node["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        fields(out, node, part, &required);
        out.push('\n');
    }
}

fn type_of(node: &Value) -> String {
    if node.get("x-kubernetes-int-or-string").is_some() {
        return "int or string".into();
    }
    match node["type"].as_str() {
        Some("array") => format!("[]{}", type_of(&node["items"])),
        Some("object") if node.get("additionalProperties").is_some() => "map".into(),
        Some(t) => t.into(),
        None => "object".into(),
    }
}

fn fields(out: &mut String, node: &Value, prefix: &str, required: &[&str]) {
    let Some(props) = node["properties"].as_object() else { return };
    for (name, child) in props {
        let path = format!("{prefix}.{name}");
        let default = child.get("default").map(|d| format!("`{d}`")).unwrap_or_default();
        let description = child["description"].as_str().unwrap_or_default().replace('\n', " ").replace('|', "\\|");
        let mark = if required.contains(&name.as_str()) { " (required)" } else { "" };
        out.push_str(&format!("| `{path}`{mark} | {} | {default} | {description} |\n", type_of(child)));
        if OPAQUE.contains(&name.as_str()) {
            continue;
        }
        let inner = if child["type"] == "array" { &child["items"] } else { child };
        let req: Vec<&str> =
            inner["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
        fields(out, inner, &path, &req);
    }
}
