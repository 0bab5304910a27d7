//! Render functions: golden manifests for every example, and the rules behind them.

use crate::common::{at, example, golden};
use gyre_operator::crd::Namespace;
use gyre_operator::render::{self, namespaces::snake_case};
use kube::Resource;

#[test]
fn examples_render_to_their_golden_manifests() {
    for (file, golden_name) in [
        ("chat-cluster.yaml", "chat.yaml"),
        ("autoscaling-cluster.yaml", "autoscaling.yaml"),
        ("dev-cluster.yaml", "dev.yaml"),
    ] {
        let (cluster, namespaces) = example(file);
        let rendered = render::render(&cluster, &namespaces).unwrap_or_else(|e| panic!("{file}: {e}"));
        golden(golden_name, &rendered.to_yaml().expect("yaml"));
    }
}

#[test]
fn every_child_is_owned_by_the_cluster_and_labelled() {
    let (cluster, namespaces) = example("autoscaling-cluster.yaml");
    let r = render::render(&cluster, &namespaces).expect("render");
    let metas = [
        &r.config_map.metadata,
        &r.deployment.metadata,
        &r.client_service.metadata,
        &r.internal_service.metadata,
        &r.hpa.as_ref().expect("hpa").metadata,
        &r.pdb.as_ref().expect("pdb").metadata,
    ];
    for m in metas {
        let owner = &m.owner_references.as_ref().expect("owner references")[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("RealtimeCluster", "live", Some(true))
        );
        assert_eq!(
            m.labels.as_ref().and_then(|l| l.get("app.kubernetes.io/managed-by")).map(String::as_str),
            Some("gyre-operator")
        );
        assert_eq!(m.namespace.as_deref(), Some("apps"));
    }
    let sm = r.service_monitor.expect("service monitor");
    assert_eq!(sm["metadata"]["ownerReferences"][0]["name"], "live");
    assert_eq!(sm["metadata"]["labels"]["release"], "prometheus");
}

#[test]
fn autoscaling_leaves_replicas_to_the_hpa() {
    let (cluster, ns) = example("autoscaling-cluster.yaml");
    let r = render::render(&cluster, &ns).expect("render");
    assert_eq!(r.deployment.spec.as_ref().and_then(|s| s.replicas), None);
    let hpa = r.hpa.expect("hpa").spec.expect("hpa spec");
    assert_eq!((hpa.min_replicas, hpa.max_replicas), (Some(2), 20));
    let metrics = hpa.metrics.expect("metrics");
    assert_eq!(metrics[0].resource.as_ref().map(|m| m.name.as_str()), Some("cpu"));
    let pods = metrics[1].pods.as_ref().expect("pods metric");
    assert_eq!(pods.metric.name, "gyre_node_num_clients");
    assert_eq!(pods.target.average_value.as_ref().map(|q| q.0.as_str()), Some("10000"));
    let down = hpa.behavior.and_then(|b| b.scale_down).expect("scale-down behavior");
    assert_eq!(down.stabilization_window_seconds, Some(600));

    let (cluster, ns) = example("chat-cluster.yaml");
    let r = render::render(&cluster, &ns).expect("render");
    assert_eq!(r.deployment.spec.as_ref().and_then(|s| s.replicas), Some(3));
    assert!(r.hpa.is_none());
}

#[test]
fn a_budget_only_protects_two_or_more_edges() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    assert!(render::render(&cluster, &ns).expect("render").pdb.is_some());
    cluster.spec.replicas = Some(1);
    assert!(render::render(&cluster, &ns).expect("render").pdb.is_none());
    let (dev, _) = example("dev-cluster.yaml");
    let r = render::render(&dev, &[]).expect("render");
    assert!(r.pdb.is_none());
    assert_eq!(r.deployment.spec.as_ref().and_then(|s| s.replicas), Some(1));
}

#[test]
fn namespace_changes_do_not_change_the_restart_hash() {
    let (mut cluster, mut ns) = example("chat-cluster.yaml");
    let before = render::render(&cluster, &ns).expect("render");
    ns[0].spec.options.history_size = 500;
    ns.pop();
    let after = render::render(&cluster, &ns).expect("render");
    assert_eq!(before.config_hash, after.config_hash);
    assert_ne!(before.config_map.data, after.config_map.data, "the config itself changed");
    let annotation = |r: &render::Rendered| {
        r.deployment.spec.as_ref().and_then(|s| s.template.metadata.as_ref()).and_then(|m| m.annotations.clone())
    };
    assert_eq!(annotation(&before), annotation(&after), "no rollout for namespace changes");

    cluster.spec.engine.nats.as_mut().expect("nats").url = "nats://other:4222".into();
    let moved = render::render(&cluster, &ns).expect("render");
    assert_ne!(before.config_hash, moved.config_hash, "a new NATS URL needs a restart");
}

#[test]
fn config_is_the_edges_own_format_with_secrets_from_env() {
    let (cluster, ns) = example("chat-cluster.yaml");
    let r = render::render(&cluster, &ns).expect("render");
    let text = &r.config_map.data.as_ref().expect("data")["config.json"];
    let config = gyre_config::load_str(text, gyre_config::Format::Json, "rendered").expect("edge accepts it");
    assert_eq!(config.engine, gyre_config::EngineKind::Nats);
    assert_eq!((config.port, config.internal_port), (8000, Some(9000)));
    assert_eq!(config.nats_replicas, 3);
    assert!(config.token_hmac_secret_key.is_empty() && config.api_key.is_empty(), "no secret in the ConfigMap");
    let names: Vec<&str> = config.namespaces.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["chat", "notifications"]);
    let chat = &config.namespaces[0].options;
    assert_eq!((chat.history_size, chat.history_ttl.0.as_secs(), chat.presence), (100, 300, true));
    let notifications = &config.namespaces[1].options;
    assert_eq!((notifications.history_size, notifications.history_ttl.0.as_secs()), (50, 3600));
    assert!(!config.config_watch_interval.is_zero(), "edges watch the mounted file");

    let env = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).map(|p| p.containers[0].env.clone());
    let env = env.flatten().expect("env");
    let from = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value_from.as_ref())
            .and_then(|v| v.secret_key_ref.as_ref())
            .map(|s| (s.name.clone(), s.key.clone()))
    };
    assert_eq!(from("GYRE_TOKEN_HMAC_SECRET_KEY"), Some(("chat-gyre".into(), "hmac".into())));
    assert_eq!(from("GYRE_API_KEY"), Some(("chat-gyre".into(), "api-key".into())));
    assert_eq!(r.secrets, vec!["chat-gyre".to_string()]);
}

#[test]
fn reserved_and_unknown_config_keys_are_refused() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    let extra = |k: &str, v: serde_json::Value| serde_json::Map::from_iter([(k.to_string(), v)]);
    cluster.spec.config = Some(extra("api_key", "x".into()));
    let err = render::render(&cluster, &ns).expect_err("api_key refused");
    assert!(err.contains("spec.config.api_key") && err.contains("apiKeySecretRef"), "{err}");
    cluster.spec.config = Some(extra("namespaces", serde_json::json!([])));
    assert!(render::render(&cluster, &ns).expect_err("namespaces refused").contains("Namespace objects"));
    cluster.spec.config = Some(extra("no_such_option", true.into()));
    let err = render::render(&cluster, &ns).expect_err("unknown key refused");
    assert!(err.contains("no_such_option"), "{err}");
    cluster.spec.config = Some(extra("ping_interval", "soon".into()));
    let err = render::render(&cluster, &ns).expect_err("bad duration refused");
    assert!(err.contains("ping_interval"), "{err}");
    cluster.spec.config = Some(extra("client_queue_max_size", 1024.into()));
    render::render(&cluster, &ns).expect("a plain option is fine");
}

#[test]
fn duplicate_names_go_to_the_oldest_object() {
    let (cluster, mut ns) = example("chat-cluster.yaml");
    let mut newer: Namespace = ns[0].clone();
    newer.metadata.name = Some("chat-copy".into());
    newer.spec.name = Some("chat".into());
    newer.metadata.creation_timestamp = Some(at(1_800_000_000));
    ns.insert(0, newer);
    let r = render::render(&cluster, &ns).expect("render");
    assert_eq!(r.namespace_names, ["chat", "notifications"]);
    assert_eq!(r.rejected.len(), 1);
    assert_eq!((r.rejected[0].object.as_str(), r.rejected[0].reason), ("chat-copy", "DuplicateName"));
    assert!(r.rejected[0].message.contains("\"chat\""), "{}", r.rejected[0].message);
}

#[test]
fn a_grpc_port_serves_the_grpc_api_with_its_key_from_a_secret() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    cluster.spec.ports.grpc = Some(10001);
    let err = render::render(&cluster, &ns).expect_err("no key");
    assert!(err.contains("grpc_api_key"), "{err}");
    cluster.spec.auth.grpc_api_key_secret_ref =
        Some(serde_json::from_value(serde_json::json!({"name": "chat-gyre", "key": "grpc-api-key"})).expect("ref"));
    let r = render::render(&cluster, &ns).expect("render");
    let text = &r.config_map.data.as_ref().expect("data")["config.json"];
    let config: serde_json::Value = serde_json::from_str(text).expect("json");
    assert_eq!((&config["grpc_api"], &config["grpc_api_port"]), (&serde_json::json!(true), &serde_json::json!(10001)));
    assert!(config.get("grpc_api_key").is_none(), "no secret in the ConfigMap");
    let pod = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
    let edge = &pod.containers[0];
    let env = edge.env.as_ref().expect("env");
    let key = env.iter().find(|e| e.name == "GYRE_GRPC_API_KEY").expect("GYRE_GRPC_API_KEY");
    let selector = key.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("from a Secret");
    assert_eq!((selector.name.as_str(), selector.key.as_str()), ("chat-gyre", "grpc-api-key"));
    let ports: Vec<(Option<String>, i32)> =
        edge.ports.as_ref().expect("ports").iter().map(|p| (p.name.clone(), p.container_port)).collect();
    assert!(ports.contains(&(Some("grpc".into()), 10001)), "{ports:?}");
    let service = r.internal_service.spec.as_ref().and_then(|s| s.ports.as_ref()).expect("ports");
    let grpc = service.iter().find(|p| p.name.as_deref() == Some("grpc")).expect("grpc service port");
    assert_eq!((grpc.port, grpc.app_protocol.as_deref()), (10001, Some("kubernetes.io/h2c")));
}

#[test]
fn proxy_headers_with_secrets_come_from_a_secret() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    cluster.spec.auth.proxy_static_headers_secret_ref =
        Some(serde_json::from_value(serde_json::json!({"name": "backend", "key": "headers"})).expect("ref"));
    let r = render::render(&cluster, &ns).expect("render");
    let pod = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
    let env = pod.containers[0].env.as_ref().expect("env");
    let headers = env.iter().find(|e| e.name == "GYRE_PROXY_STATIC_HTTP_HEADERS").expect("the variable");
    let selector = headers.value_from.as_ref().and_then(|v| v.secret_key_ref.as_ref()).expect("from a Secret");
    assert_eq!((selector.name.as_str(), selector.key.as_str()), ("backend", "headers"));
    assert!(r.secrets.contains(&"backend".to_string()), "{:?}", r.secrets);
}

#[test]
fn a_uni_grpc_port_serves_the_transport_on_the_client_service() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    cluster.spec.ports.uni_grpc = Some(11001);
    let r = render::render(&cluster, &ns).expect("render");
    let text = &r.config_map.data.as_ref().expect("data")["config.json"];
    let config = gyre_config::load_str(text, gyre_config::Format::Json, "rendered").expect("edge config");
    assert_eq!((config.uni_grpc, config.uni_grpc_port), (true, 11001));
    let service = r.client_service.spec.as_ref().and_then(|s| s.ports.as_ref()).expect("ports");
    let uni = service.iter().find(|p| p.name.as_deref() == Some("uni-grpc")).expect("uni-grpc service port");
    assert_eq!((uni.port, uni.app_protocol.as_deref()), (11001, Some("kubernetes.io/h2c")));
    let pod = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref()).expect("pod");
    let ports = pod.containers[0].ports.as_ref().expect("ports");
    assert!(ports.iter().any(|p| p.name.as_deref() == Some("uni-grpc") && p.container_port == 11001));
}

#[test]
fn a_namespace_the_cluster_cannot_serve_is_rejected_alone() {
    let (mut cluster, mut ns) = example("chat-cluster.yaml");
    ns[1].spec.options.proxy_subscribe = true;
    let r = render::render(&cluster, &ns).expect("the cluster still renders");
    assert_eq!(r.namespace_names, ["chat"]);
    assert_eq!((r.rejected[0].object.as_str(), r.rejected[0].reason), ("notifications", "Invalid"));
    assert!(r.rejected[0].message.contains("needs proxy_subscribe_endpoint"), "{}", r.rejected[0].message);

    let endpoint = ("proxy_subscribe_endpoint".to_string(), serde_json::json!("http://app/centrifugo/subscribe"));
    cluster.spec.config = Some(serde_json::Map::from_iter([endpoint]));
    let r = render::render(&cluster, &ns).expect("render");
    assert_eq!((r.namespace_names.len(), r.rejected.len()), (2, 0));
    let text = &r.config_map.data.as_ref().expect("data")["config.json"];
    let config = gyre_config::load_str(text, gyre_config::Format::Json, "rendered").expect("edge config");
    assert!(config.namespaces[1].options.subscribe_proxied());
}

#[test]
fn crd_channel_options_cover_the_edge_options() {
    let crd = serde_json::to_value(gyre_operator::crd::namespace::ChannelOptions::default()).expect("json");
    let mut crd_keys: Vec<String> = crd.as_object().expect("object").keys().map(|k| snake_case(k)).collect();
    crd_keys.sort();
    let edge = serde_json::to_value(gyre_config::ChannelOptions::default()).expect("json");
    // Options the edge refuses (named and stream proxies, map subscriptions) are not offered;
    // the proxy switches are offered once, by their v5 names.
    let unsupported = |k: &str| {
        k.ends_with("_proxy_enabled")
            || k.ends_with("_proxy_name")
            || k.contains("subscribe_stream")
            || k.starts_with("map")
            || k == "subscription_type"
            || k == "shared_poll"
    };
    let mut edge_keys: Vec<String> =
        edge.as_object().expect("object").keys().filter(|k| !unsupported(k)).cloned().collect();
    edge_keys.sort();
    assert_eq!(crd_keys, edge_keys);
}

#[test]
fn selector_labels_stay_fixed_across_spec_edits() {
    let (mut cluster, ns) = example("chat-cluster.yaml");
    let before = render::render(&cluster, &ns).expect("render").deployment.spec.expect("spec").selector;
    cluster.spec.image = "gyre/gyre:next".into();
    cluster.spec.pod.labels.insert("team".into(), "x".into());
    let after = render::render(&cluster, &ns).expect("render").deployment.spec.expect("spec").selector;
    assert_eq!(before, after);
    assert_eq!(cluster.meta().name.as_deref(), Some("chat"));
}

/// `(secret, key)` of the container variable `name`, when it comes from a Secret.
fn env_secret(r: &render::Rendered, name: &str) -> Option<(String, String)> {
    let pod = r.deployment.spec.as_ref().and_then(|s| s.template.spec.as_ref())?;
    let var = pod.containers[0].env.as_ref()?.iter().find(|e| e.name == name)?;
    assert!(var.value.is_none(), "{name} carries a value: secrets only come from Secrets");
    let s = var.value_from.as_ref()?.secret_key_ref.as_ref()?;
    Some((s.name.clone(), s.key.clone()))
}

fn service_ports(service: &k8s_openapi::api::core::v1::Service) -> Vec<(String, i32)> {
    let ports = service.spec.as_ref().and_then(|s| s.ports.clone()).unwrap_or_default();
    ports.into_iter().map(|p| (p.name.unwrap_or_default(), p.port)).collect()
}

#[test]
fn the_admin_ui_is_internal_only_with_its_secrets_from_env() {
    let (cluster, _) = example("dev-cluster.yaml");
    assert!(cluster.spec.admin.enabled, "the dev example shows the admin UI");
    let r = render::render(&cluster, &[]).expect("render");
    let text = &r.config_map.data.as_ref().expect("data")["config.json"];
    let raw: serde_json::Value = serde_json::from_str(text).expect("json");
    assert_eq!(raw["admin"], serde_json::json!(true));
    for key in ["admin_external", "admin_password", "admin_secret", "admin_insecure"] {
        assert!(raw.get(key).is_none(), "{key} is not in the ConfigMap: {text}");
    }

    assert_eq!(env_secret(&r, "GYRE_ADMIN_PASSWORD"), Some(("dev-gyre".into(), "admin-password".into())));
    assert_eq!(env_secret(&r, "GYRE_ADMIN_SECRET"), Some(("dev-gyre".into(), "admin-secret".into())));
    assert_eq!(r.secrets, ["dev-gyre"]);

    // The edge's loader, given the variables the pod gets, serves the UI on the internal port.
    let config = gyre_config::load_str(
        &text.replacen('{', r#"{"admin_password": "p", "admin_secret": "s","#, 1),
        gyre_config::Format::Json,
        "rendered",
    )
    .expect("edge config");
    assert!(config.admin && !config.admin_external && !config.admin_insecure);
    assert_eq!(config.internal_port, Some(9000));

    let internal = r.internal_service.spec.as_ref().expect("spec");
    assert_eq!(internal.type_.as_deref(), Some("ClusterIP"));
    assert_eq!(service_ports(&r.internal_service), [("internal".to_string(), 9000)]);
    assert_eq!(service_ports(&r.client_service), [("client".to_string(), 8000)], "no admin on the client Service");
}

#[test]
fn the_admin_ui_stays_internal_whatever_the_spec_says() {
    let (mut cluster, _) = example("dev-cluster.yaml");
    cluster.spec.service.kind = "LoadBalancer".into();
    cluster.spec.ports.uni_grpc = Some(11000);
    let r = render::render(&cluster, &[]).expect("render");
    let client: Vec<String> = service_ports(&r.client_service).into_iter().map(|(n, _)| n).collect();
    assert_eq!(client, ["client", "uni-grpc"], "a public client Service never carries the internal port");

    for key in ["admin_external", "admin", "admin_password", "admin_insecure", "admin_handler_prefix"] {
        cluster.spec.config = Some(serde_json::Map::from_iter([(key.to_string(), serde_json::json!(true))]));
        let err = render::render(&cluster, &[]).expect_err("admin keys are refused in spec.config");
        assert!(err.contains(&format!("spec.config.{key} ")), "{err}");
    }
    // The nested (v6) layout is refused by its section name.
    cluster.spec.config = Some(serde_json::Map::from_iter([("admin".into(), serde_json::json!({"external": true}))]));
    assert!(render::render(&cluster, &[]).expect_err("nested admin").contains("spec.admin.enabled"));
}

#[test]
fn admin_options_and_what_it_needs() {
    let (mut cluster, _) = example("dev-cluster.yaml");
    let config_of = |r: &render::Rendered| -> serde_json::Value {
        serde_json::from_str(&r.config_map.data.as_ref().expect("data")["config.json"]).expect("json")
    };
    cluster.spec.admin.handler_prefix = Some("/ops".into());
    let r = render::render(&cluster, &[]).expect("render");
    assert_eq!(config_of(&r)["admin_handler_prefix"], "/ops");

    // Enabled without its Secrets: refused, naming the fields to set (CEL refuses it too).
    let mut bare = cluster.clone();
    bare.spec.admin.password_secret_ref = None;
    let err = render::render(&bare, &[]).expect_err("no password");
    assert!(err.contains("spec.admin.passwordSecretRef") && err.contains("spec.admin.insecure"), "{err}");

    // Insecure needs no Secret; the edge opens the UI without sign-in.
    bare.spec.admin.secret_secret_ref = None;
    bare.spec.admin.insecure = true;
    let r = render::render(&bare, &[]).expect("insecure");
    assert_eq!((&config_of(&r)["admin"], &config_of(&r)["admin_insecure"]), (&true.into(), &true.into()));
    assert_eq!(env_secret(&r, "GYRE_ADMIN_PASSWORD"), None);

    // Disabled: no admin key, no variable, and its Secret is not required.
    cluster.spec.admin.enabled = false;
    cluster.spec.admin.password_secret_ref =
        Some(serde_json::from_value(serde_json::json!({"name": "elsewhere", "key": "p"})).expect("ref"));
    let r = render::render(&cluster, &[]).expect("render");
    let config = config_of(&r);
    assert!(config.get("admin").is_none() && config.get("admin_handler_prefix").is_none(), "{config}");
    assert_eq!(env_secret(&r, "GYRE_ADMIN_PASSWORD"), None);
    assert_eq!(r.secrets, ["dev-gyre"]);
}
