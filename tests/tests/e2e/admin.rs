//! The admin web UI: its endpoints over HTTP (sign-in, throttling, sessions, origin checks,
//! security headers, the console API, the tail, where it listens) and, in Chromium, an operator
//! signing in to a two-node NATS fleet (`browser/admin.js`).

use std::time::Duration;

use futures_util::StreamExt;
use gyre_tests::interop::run_js_env;
use gyre_tests::nats::NatsServer;
use gyre_tests::{run_cli, Gyre};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";
const SECRET: &str = "an admin secret of some length";

fn admin_config() -> Value {
    json!({"admin": true, "admin_password": PASSWORD, "admin_secret": SECRET})
}

fn base(gyre: &Gyre) -> String {
    format!("http://{}", gyre.addr)
}

async fn sign_in(gyre: &Gyre, password: &str) -> (u16, Value) {
    let resp = gyre
        .http()
        .post(format!("{}/admin/auth", base(gyre)))
        .form(&[("password", password)])
        .send()
        .await
        .expect("auth");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn admin_api(gyre: &Gyre, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut req = gyre.http().post(format!("{}/admin/api", base(gyre))).json(&body);
    if let Some(t) = token {
        req = req.header("authorization", format!("token {t}"));
    }
    req.send().await.expect("admin api")
}

#[tokio::test]
async fn the_ui_is_served_with_a_strict_policy_and_works_offline() {
    let gyre = Gyre::start(admin_config());
    let resp = gyre.http().get(format!("{}/", base(&gyre))).send().await.expect("index");
    assert_eq!(resp.status(), 200);
    let h = resp.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && csp.contains("frame-ancestors 'none'")
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = resp.text().await.unwrap();
    assert!(html.contains("admin/ui/app.js") && !html.contains("http"), "the page loads nothing from elsewhere");
    for (file, kind) in [("app.js", "text/javascript"), ("api.js", "text/javascript"), ("style.css", "text/css")] {
        let resp = gyre.http().get(format!("{}/admin/ui/{file}", base(&gyre))).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{file}");
        assert!(resp.headers()["content-type"].to_str().unwrap().starts_with(kind), "{file}");
    }
    let missing = gyre.http().get(format!("{}/admin/ui/nope.js", base(&gyre))).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let init: Value =
        gyre.http().get(format!("{}/admin/init", base(&gyre))).send().await.unwrap().json().await.unwrap();
    assert_eq!(init["authenticated"], false);
    assert_eq!(init["insecure"], false);
    assert_eq!(init["edition"], "oss");
}

#[tokio::test]
async fn sign_in_gives_an_expiring_session_the_console_api_needs() {
    let gyre = Gyre::start(admin_config());
    let (status, body) = sign_in(&gyre, "wrong").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "wrong password");
    let (status, body) = sign_in(&gyre, PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();

    let denied = admin_api(&gyre, None, json!({"method": "info", "params": {}})).await;
    assert_eq!(denied.status(), 401);
    let forged = admin_api(&gyre, Some("e30.e30.e30"), json!({"method": "info", "params": {}})).await;
    assert_eq!(forged.status(), 401);
    let info: Value =
        admin_api(&gyre, Some(&token), json!({"method": "info", "params": {}})).await.json().await.unwrap();
    assert_eq!(info["result"]["nodes"][0]["engine"], "memory", "{info}");
    let published: Value = admin_api(
        &gyre,
        Some(&token),
        json!({"method": "publish", "params": {"channel": "chat:console", "data": {"n": 1}}}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert!(published["result"].is_object(), "{published}");
    // A JSON sign-in works as well, and the session also unlocks /admin/init and namespaces.
    let resp = gyre
        .http()
        .get(format!("{}/admin/namespaces", base(&gyre)))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap();
    let ns: Value = resp.json().await.unwrap();
    let names: Vec<&str> = ns["namespaces"].as_array().unwrap().iter().filter_map(|n| n["name"].as_str()).collect();
    assert!(names.contains(&"chat") && names.contains(&""), "{names:?}");
    let init: Value = gyre
        .http()
        .get(format!("{}/admin/init", base(&gyre)))
        .header("authorization", format!("token {token}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(init["authenticated"], true);
    // Another node with another secret does not take this session.
    let other =
        Gyre::start(json!({"admin": true, "admin_password": PASSWORD, "admin_secret": "another secret, longer"}));
    assert_eq!(admin_api(&other, Some(&token), json!({"method": "info"})).await.status(), 401);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled_per_address() {
    let gyre = Gyre::start(admin_config());
    for _ in 0..5 {
        assert_eq!(sign_in(&gyre, "guess").await.0, 401);
    }
    let (status, body) = sign_in(&gyre, PASSWORD).await;
    assert_eq!(status, 429, "even the right password waits: {body}");
    assert!(body["error"].is_string());
    assert_eq!(gyre.metric("gyre_admin_logins_total{outcome=\"throttled\"}").await, 1.0);
    assert_eq!(gyre.metric("gyre_admin_logins_total{outcome=\"refused\"}").await, 5.0);
}

#[tokio::test]
async fn requests_from_other_origins_are_refused() {
    let gyre = Gyre::start(admin_config());
    let (_, body) = sign_in(&gyre, PASSWORD).await;
    let token = body["token"].as_str().unwrap();
    let evil = "https://evil.example";
    let resp = gyre
        .http()
        .post(format!("{}/admin/api", base(&gyre)))
        .header("origin", evil)
        .header("authorization", format!("token {token}"))
        .json(&json!({"method": "info"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = gyre
        .http()
        .post(format!("{}/admin/auth", base(&gyre)))
        .header("origin", evil)
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // The same origin (the page itself) is fine.
    let same = format!("http://{}", gyre.addr);
    let resp = gyre
        .http()
        .post(format!("{}/admin/api", base(&gyre)))
        .header("origin", same)
        .header("authorization", format!("token {token}"))
        .json(&json!({"method": "info"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn the_tail_streams_a_channels_publications() {
    let gyre = Gyre::start(admin_config());
    let (_, body) = sign_in(&gyre, PASSWORD).await;
    let token = body["token"].as_str().unwrap();
    let resp = gyre
        .http()
        .post(format!("{}/admin/tail", base(&gyre)))
        .header("authorization", format!("token {token}"))
        .json(&json!({"channel": "chat:tailed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut published = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("\"tailed\":true") {
        let chunk = tokio::time::timeout_at(deadline, stream.next()).await.expect("tail line in time");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("stream open").unwrap()));
        if !published && text.contains("\"connect\"") {
            let (status, _) = gyre.api("publish", json!({"channel": "chat:tailed", "data": {"tailed": true}})).await;
            assert_eq!(status, 200);
            published = true;
        }
    }
    assert!(text.lines().any(|l| l.contains("\"pub\"") && l.contains("chat:tailed")), "{text}");
    // Unknown namespaces are refused with a reason.
    let resp = gyre
        .http()
        .post(format!("{}/admin/tail", base(&gyre)))
        .header("authorization", format!("token {token}"))
        .json(&json!({"channel": "nosuch:x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn the_ui_listens_on_the_internal_port_unless_external() {
    let mut config = admin_config();
    gyre_tests::merge(&mut config, json!({"internal_port": 0}));
    let gyre = Gyre::start(config.clone());
    let internal = gyre.internal_addr.clone().expect("internal listener");
    let on_client = gyre.http().get(format!("http://{}/admin/init", gyre.addr)).send().await.unwrap();
    assert_eq!(on_client.status(), 404);
    let on_internal = gyre.http().get(format!("http://{internal}/admin/init",)).send().await.unwrap();
    assert_eq!(on_internal.status(), 200);
    gyre_tests::merge(&mut config, json!({"admin_external": true, "admin_handler_prefix": "/ops"}));
    let gyre = Gyre::start(config);
    let resp = gyre.http().get(format!("http://{}/ops/admin/init", gyre.addr)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = gyre.http().get(format!("http://{}/ops/", gyre.addr)).send().await.unwrap();
    assert_eq!(page.status(), 200);
}

#[tokio::test]
async fn admin_without_password_or_secret_is_a_config_error_naming_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.json");
    std::fs::write(&file, r#"{"admin": true}"#).unwrap();
    let (ok, _, stderr) = run_cli(&["checkconfig", file.to_str().unwrap()], dir.path());
    assert!(!ok);
    assert!(stderr.contains("admin_password") && stderr.contains("admin_secret"), "{stderr}");
    std::fs::write(&file, r#"{"admin": {"enabled": true, "insecure": true}}"#).unwrap();
    let (ok, _, stderr) = run_cli(&["checkconfig", file.to_str().unwrap()], dir.path());
    assert!(ok, "{stderr}");
}

#[tokio::test]
async fn browser_operator_signs_in_to_a_two_node_fleet() {
    let nats = NatsServer::start();
    let mut nodes = Vec::new();
    for name in ["edge-a", "edge-b"] {
        let mut patch = admin_config();
        gyre_tests::merge(
            &mut patch,
            json!({"engine": "nats", "nats_url": nats.url(), "name": name, "nats_storage": "memory",
                   "allowed_origins": ["http://127.0.0.1:*"]}),
        );
        let g = Gyre::start(patch);
        g.wait_ready().await;
        nodes.push(g);
    }
    let extra = [
        ("GYRE_ADMIN_URL", format!("http://{}/", nodes[0].addr)),
        ("GYRE_ADMIN_PASSWORD", PASSWORD.to_string()),
        ("GYRE_NODE_NAMES", "edge-a,edge-b".to_string()),
    ];
    // The subscriber page connects to the other node.
    run_js_env(&nodes[1], "browser/admin.js", &extra).await;
}
