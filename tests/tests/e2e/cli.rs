//! The `gyre` command line and config loading as a user meets them.

use gyre_tests::{run_cli, Gyre};
use serde_json::json;

#[test]
fn genconfig_writes_a_valid_config_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "c.yaml", "c.toml"] {
        let (ok, out, err) = run_cli(&["genconfig", file], dir.path());
        assert!(ok, "genconfig {file}: {out}{err}");
        let (ok, out, err) = run_cli(&["checkconfig", file], dir.path());
        assert!(ok, "checkconfig {file}: {out}{err}");
        assert!(out.contains("valid"));
    }
    let (ok, _, err) = run_cli(&["genconfig", "config.json"], dir.path());
    assert!(!ok && err.contains("already exists"), "{err}");
}

#[test]
fn checkconfig_names_every_bad_key_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = "port: eighty\nhistory_ttl: 5 parsecs\nnot_a_key: 1\nnamespaces:\n  - name: x\n";
    std::fs::write(dir.path().join("bad.yaml"), text).unwrap();
    let (ok, _, err) = run_cli(&["checkconfig", "bad.yaml"], dir.path());
    assert!(!ok);
    assert!(err.contains("bad.yaml: key `not_a_key`: unknown key"), "{err}");
    assert!(err.contains("bad.yaml: key `port`"), "{err}");
    let text = r#"{"namespaces":[{"name":"chat","history_ttl":"soon","history_size":5}]}"#;
    std::fs::write(dir.path().join("bad.json"), text).unwrap();
    let (ok, _, err) = run_cli(&["checkconfig", "bad.json"], dir.path());
    assert!(
        !ok && err.contains("bad.json") && err.contains("namespaces[0]") && err.contains("invalid duration"),
        "{err}"
    );
    let (ok, _, err) = run_cli(&["checkconfig", "missing.json"], dir.path());
    assert!(!ok && err.contains("missing.json") && err.contains("cannot read"), "{err}");
}

#[test]
fn serve_refuses_an_invalid_config_and_env_errors_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.json"), r#"{"ping_interval":"1s","pong_timeout":"2s"}"#).unwrap();
    let (ok, _, err) = run_cli(&["serve", "--config", "c.json"], dir.path());
    assert!(!ok && err.contains("c.json: key `pong_timeout`"), "{err}");

    std::fs::write(dir.path().join("ok.json"), "{}").unwrap();
    let out = std::process::Command::new(gyre_tests::gyre_bin())
        .args(["checkconfig", "ok.json"])
        .current_dir(dir.path())
        .env("GYRE_CLIENT_CHANNEL_LIMIT", "lots")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("GYRE_CLIENT_CHANNEL_LIMIT"), "{err}");
}

#[tokio::test]
async fn env_vars_override_the_file() {
    let mut config = gyre_tests::base_config();
    config["api_key"] = json!("from-file");
    let gyre = Gyre::start_with(&config, &[("GYRE_API_KEY", gyre_tests::API_KEY)]);
    assert_eq!(gyre.api("info", json!({})).await.0, 200, "GYRE_API_KEY did not override api_key");
}

#[test]
fn gentoken_and_checktoken_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    assert!(run_cli(&["genconfig"], dir.path()).0);
    let (ok, token, err) = run_cli(&["gentoken", "-u", "42", "--ttl", "1h", "--quiet"], dir.path());
    assert!(ok, "{err}");
    let (ok, out, err) = run_cli(&["checktoken", token.trim()], dir.path());
    assert!(ok && out.contains("\"42\"") && out.contains("expires"), "{out}{err}");
    let (ok, _, err) = run_cli(&["checktoken", "not.a.token"], dir.path());
    assert!(!ok && err.contains("invalid token"), "{err}");
    let (ok, out, _) = run_cli(&["version"], dir.path());
    assert!(ok && out.starts_with("gyre "), "{out}");
}

#[tokio::test]
async fn serve_without_config_starts_a_usable_dev_node() {
    let gyre = Gyre::start_args(&["--port", "0", "--address", "127.0.0.1"], &[]);
    let logs = gyre.logs();
    let grab = |key: &str| -> String {
        let start =
            logs.find(&format!("{key}=")).unwrap_or_else(|| panic!("{key} not logged:\n{logs}")) + key.len() + 1;
        logs[start..].split_whitespace().next().unwrap().to_string()
    };
    let api_key = grab("api_key");
    let token = grab("sample_token_user_demo");
    let resp = gyre
        .http()
        .post(format!("{}/info", gyre.api_url()))
        .header("X-API-Key", api_key)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut c = gyre.ws().await;
    let reply = c.command(json!({"connect": {"token": token}})).await;
    assert!(reply["connect"]["client"].is_string(), "{reply}");
    let sub = c.command(json!({"subscribe": {"channel": "news"}})).await;
    assert!(sub.get("subscribe").is_some(), "dev node lets clients subscribe: {sub}");
}

#[tokio::test]
async fn sighup_reloads_namespaces_and_keeps_the_config_when_the_new_one_is_invalid() {
    let mut config = gyre_tests::base_config();
    let gyre = Gyre::start_with(&config, &[]);
    let (mut c, _) = gyre.connected("42").await;
    let r = c.command(json!({"subscribe": {"channel": "late:x"}})).await;
    assert_eq!(r["error"]["code"], 102);
    config["namespaces"].as_array_mut().unwrap().push(json!({"name": "late", "allow_subscribe_for_client": true}));
    gyre.reload(&config);
    let mut ok = false;
    for id in 0..100 {
        let r = c.command(json!({"subscribe": {"channel": format!("late:{id}")}})).await;
        if r.get("subscribe").is_some() {
            ok = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    assert!(ok, "the reloaded namespace was not applied:\n{}", gyre.logs());
    // An invalid file is refused; the node keeps serving with the last good config.
    gyre.reload(&json!({"port": "not a port"}));
    let refused =
        gyre_tests::eventually(std::time::Duration::from_secs(5), || gyre.logs().contains("config reload refused"))
            .await;
    assert!(refused, "{}", gyre.logs());
    assert!(c.command(json!({"subscribe": {"channel": "late:after"}})).await.get("subscribe").is_some());
}

#[tokio::test]
async fn a_centrifugo_v6_nested_config_serves_clients() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    let text = format!(
        "http_server: {{address: 127.0.0.1, port: 0}}
client:
  token: {{hmac_secret_key: {secret}}}
  allowed_origins: []
http_api: {{key: {key}}}
admin: {{enabled: true, password: p, secret: s}}
log: {{level: debug}}
channel:
  namespaces:
    - name: chat
      allow_subscribe_for_client: true
      history_size: 10
      history_ttl: 300s
",
        secret = gyre_tests::SECRET,
        key = gyre_tests::API_KEY
    );
    std::fs::write(&path, text).unwrap();
    let gyre = Gyre::start_args(&["serve", "--config", path.to_str().unwrap()], &[]);
    let (mut c, _) = gyre.connected("42").await;
    let reply = c.command(json!({"subscribe": {"channel": "chat:v6", "recoverable": true}})).await;
    assert!(reply["subscribe"].is_object(), "{reply}");
    assert_eq!(gyre.api("publish", json!({"channel": "chat:v6", "data": {"v": 6}})).await.0, 200);
    assert_eq!(c.next_push().await["pub"]["data"], json!({"v": 6}));
    // `admin.enabled` with its password: the admin UI signs in with it.
    let resp = gyre
        .http()
        .post(format!("{}/admin/auth", gyre.internal_base()))
        .form(&[("password", "p")])
        .send()
        .await
        .expect("admin auth");
    assert_eq!(resp.status(), 200);
}

#[test]
fn centrifugo_genconfig_files_load() {
    let dir = tempfile::tempdir().unwrap();
    // What `centrifugo genconfig` writes in v5 (flat) and v6 (nested).
    let v5 = json!({"token_hmac_secret_key": "a", "admin_password": "b", "admin_secret": "c", "api_key": "d",
                    "allowed_origins": []});
    let v6 = json!({"client": {"token": {"hmac_secret_key": "a"}, "allowed_origins": []},
                    "admin": {"enabled": false, "password": "b", "secret": "c"}, "http_api": {"key": "d"}});
    for (file, config) in [("v5.json", v5), ("v6.json", v6)] {
        std::fs::write(dir.path().join(file), config.to_string()).unwrap();
        let (ok, out, err) = run_cli(&["checkconfig", file], dir.path());
        assert!(ok, "{file}: {out}{err}");
    }
    // Errors name the key as written in the nested file.
    let bad = json!({"client": {"token": {"hmac_secret_key": "a"}}, "engine": {"type": "redis"}});
    std::fs::write(dir.path().join("bad.json"), bad.to_string()).unwrap();
    let (ok, _, err) = run_cli(&["checkconfig", "bad.json"], dir.path());
    assert!(!ok && err.contains("bad.json: key `engine.type`: unknown variant `redis`"), "{err}");
}

#[tokio::test]
async fn centrifugo_transport_and_tooling_keys_load_and_switch_things_off() {
    let mut config = gyre_tests::base_config();
    gyre_tests::merge(
        &mut config,
        json!({"http_stream": true, "sse": false, "uni_websocket": true, "uni_sse": true, "uni_http_stream": false,
               "websocket_compression": true, "client_concurrency": 8, "debug": false, "swagger": false,
               "proxy_rpc": false, "tls": false, "channel_private_prefix": "$",
               "client_channel_position_check_delay": "40s"}),
    );
    let gyre = Gyre::start_with(&config, &[]);
    let status = |path: &'static str| {
        let url = format!("http://{}{path}", gyre.addr);
        let http = gyre.http().clone();
        async move { http.post(url).body("{}").send().await.expect("request").status().as_u16() }
    };
    assert_eq!(status("/connection/sse").await, 404, "sse: false");
    assert_eq!(status("/connection/uni_http_stream").await, 404, "uni_http_stream: false");
    assert_ne!(status("/connection/http_stream").await, 404);
    assert!(gyre.connected("42").await.1["connect"]["client"].is_string(), "WebSocket still served");
    assert!(gyre.logs().contains("ignored `websocket_compression`"), "{}", gyre.logs());

    let mut no_api = gyre_tests::base_config();
    no_api["api_disable"] = json!(true);
    let quiet = Gyre::start_with(&no_api, &[]);
    assert_eq!(quiet.api("info", json!({})).await.0, 404);

    let dir = tempfile::tempdir().unwrap();
    let refused = json!({"tls": true, "log_file": "gyre.log", "channel_private_prefix": "~",
                         "user_personal_single_connection": true});
    std::fs::write(dir.path().join("c.json"), refused.to_string()).unwrap();
    let (ok, _, err) = run_cli(&["checkconfig", "c.json"], dir.path());
    assert!(!ok, "{err}");
    for key in ["tls", "log_file", "channel_private_prefix", "user_personal_single_connection"] {
        assert!(err.contains(&format!("c.json: key `{key}`")), "{key}: {err}");
    }
}
