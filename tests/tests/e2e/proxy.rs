//! Backend proxy hooks: a real HTTP backend (the application, run by the test) decides
//! connects without a token, refreshes, subscribes, publishes, subscription refreshes and
//! RPC; clients see what it decided.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gyre_tests::interop::{run_js_env, run_py_args};
use gyre_tests::{base_config, eventually, token, Gyre, WsClient};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// One request the backend received.
#[derive(Debug, Clone)]
struct Seen {
    hook: String,
    headers: HeaderMap,
    body: Value,
}

#[derive(Clone, Default)]
struct Backend {
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Backend {
    /// Starts the backend on a free port; its hooks live under the returned base URL.
    async fn start() -> (Backend, String) {
        let backend = Backend::default();
        let app = axum::Router::new().route("/{hook}", axum::routing::post(answer)).with_state(backend.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
        let addr = listener.local_addr().expect("backend address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        (backend, format!("http://{addr}"))
    }

    fn seen(&self, hook: &str) -> Vec<Seen> {
        self.seen.lock().unwrap().iter().filter(|s| s.hook == hook).cloned().collect()
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The application's answers, chosen by what the client sent (see each hook).
async fn answer(State(backend): State<Backend>, Path(hook): Path<String>, headers: HeaderMap, raw: String) -> Response {
    let body: Value = serde_json::from_str(&raw).unwrap_or_default();
    let calls = {
        let mut seen = backend.seen.lock().unwrap();
        seen.push(Seen { hook: hook.clone(), headers, body: body.clone() });
        seen.iter().filter(|s| s.hook == hook).count()
    };
    let data = &body["data"];
    let channel = body["channel"].as_str().unwrap_or_default();
    let reply = match hook.as_str() {
        // The client names its fate in the connect data.
        "connect" => match data["do"].as_str().unwrap_or("accept") {
            "error" => json!({"error": {"code": 1000, "message": "custom error"}}),
            "disconnect" => json!({"disconnect": {"code": 4501, "reason": "go away"}}),
            "fail" => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            "nothing" => json!({}),
            _ => {
                let mut result = json!({
                    "user": data["user"], "info": {"name": data["user"]}, "data": {"welcome": true},
                    "channels": data["channels"].as_array().cloned().unwrap_or_default(),
                    "meta": {"tenant": "t1"},
                });
                if let Some(ttl) = data["ttl"].as_i64() {
                    result["expire_at"] = json!(now() + ttl);
                }
                json!({"result": result})
            }
        },
        // Prolongs twice by two seconds (whole seconds: one could pass before Gyre reads it), then
        // lets the connection expire.
        "refresh" if calls <= 2 => json!({"result": {"expire_at": now() + 2, "info": {"refreshed": calls}}}),
        "refresh" => json!({"result": {"expired": true}}),
        "subscribe" => match channel.split_once(':').map_or("", |(_, rest)| rest) {
            "deny" => json!({"error": {"code": 1403, "message": "not yours"}}),
            "kick" => json!({"disconnect": {"code": 4502, "reason": "kicked"}}),
            "down" => return StatusCode::BAD_GATEWAY.into_response(),
            "plain" => json!({}),
            rest => {
                let mut result = json!({"info": {"sub": rest}, "data": {"hello": channel}});
                if rest.starts_with("exp") {
                    result["expire_at"] = json!(now() + 2);
                }
                json!({"result": result})
            }
        },
        "sub_refresh" if calls <= 1 => json!({"result": {"expire_at": now() + 2}}),
        "sub_refresh" => json!({"result": {"expired": true}}),
        "publish" => match data["action"].as_str().unwrap_or_default() {
            "rewrite" => json!({"result": {"data": {"rewritten": data["n"]}}}),
            "deny" => json!({"error": {"code": 1401, "message": "read only"}}),
            "skip" => json!({"result": {"skip_history": true}}),
            _ => json!({}),
        },
        "rpc" => match body["method"].as_str().unwrap_or_default() {
            "echo" if body.get("b64data").is_some() => json!({"result": {"b64data": body["b64data"]}}),
            "echo" => json!({"result": {"data": data}}),
            // The data's own text back, to see that bytes cross the proxy unchanged.
            "echo_raw" => {
                #[derive(serde::Deserialize)]
                struct Raw<'a> {
                    #[serde(borrow)]
                    data: &'a serde_json::value::RawValue,
                }
                let Ok(r) = serde_json::from_str::<Raw>(&raw) else { return StatusCode::BAD_REQUEST.into_response() };
                let text = format!(r#"{{"result":{{"data":{}}}}}"#, r.data.get());
                return ([(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response();
            }
            "fail" => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
            _ => json!({"error": {"code": 104, "message": "method not found"}}),
        },
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Json(reply).into_response()
}

/// The base test config with every hook pointed at `backend` and the `px` namespace, whose
/// subscribes and publishes only the backend allows.
fn config(backend: &str, extra: Value) -> Value {
    let mut config = base_config();
    for hook in ["connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc"] {
        config[format!("proxy_{hook}_endpoint")] = json!(format!("{backend}/{hook}"));
    }
    config["namespaces"].as_array_mut().unwrap().push(json!({
        "name": "px", "proxy_subscribe": true, "proxy_publish": true, "proxy_sub_refresh": true,
        "history_size": 10, "history_ttl": "300s", "presence": true,
    }));
    gyre_tests::merge(&mut config, extra);
    config
}

fn start(backend: &str, extra: Value) -> Gyre {
    Gyre::start_with(&config(backend, extra), &[])
}

async fn connect_with(gyre: &Gyre, connect: Value) -> (WsClient, Result<Value, u16>) {
    let mut request = gyre.ws_url().into_client_request().unwrap();
    request.headers_mut().insert("cookie", "session=abc".parse().unwrap());
    request.headers_mut().insert("x-custom", "from-client".parse().unwrap());
    request.headers_mut().insert("x-not-forwarded", "secret".parse().unwrap());
    let mut c = WsClient::connect_request(request).await.expect("connect");
    let id = c.send(json!({"connect": connect})).await;
    let reply = c.reply_or_closed(id).await.map_err(|closed| closed.code);
    (c, reply)
}

#[tokio::test]
async fn connect_proxy_authenticates_connections_without_a_token() {
    let (backend, url) = Backend::start().await;
    let gyre = start(
        &url,
        json!({"proxy_http_headers": ["Cookie", "X-Custom"],
               "proxy_static_http_headers": {"X-Static": "s", "X-Custom": "static loses"}}),
    );
    let connect = json!({"data": {"user": "56", "channels": ["chat:px1"]}, "name": "tester", "version": "1.2"});
    let (mut c, reply) = connect_with(&gyre, connect).await;
    let reply = reply.expect("connected");
    let result = &reply["connect"];
    assert_eq!(result["data"], json!({"welcome": true}), "{reply}");
    assert!(result["subs"]["chat:px1"].is_object(), "server-side subscription from the proxy: {reply}");

    // What the backend was sent.
    let seen = backend.seen("connect");
    assert_eq!(seen.len(), 1);
    let body = &seen[0].body;
    assert_eq!(body["client"], result["client"]);
    assert_eq!(
        (&body["transport"], &body["protocol"], &body["encoding"], &body["name"], &body["version"]),
        (&json!("websocket"), &json!("json"), &json!("json"), &json!("tester"), &json!("1.2"))
    );
    assert_eq!(body["data"]["user"], "56");
    let h = &seen[0].headers;
    assert_eq!(h["cookie"], "session=abc");
    assert_eq!(h["x-custom"], "from-client");
    assert_eq!(h["x-static"], "s");
    assert_eq!(h["content-type"], "application/json");
    assert!(h.get("x-not-forwarded").is_none());

    // The connection is user 56 with the info the backend gave.
    let (_, presence) = gyre.api("presence", json!({"channel": "chat:px1"})).await;
    let entry = presence["result"]["presence"].as_object().unwrap().values().next().cloned().unwrap();
    assert_eq!((&entry["user"], &entry["conn_info"]), (&json!("56"), &json!({"name": "56"})), "{presence}");
    gyre.api("publish", json!({"channel": "chat:px1", "data": {"n": 1}})).await;
    assert_eq!(c.next_push().await["pub"]["data"], json!({"n": 1}));

    // The backend's other answers.
    assert_eq!(
        connect_with(&gyre, json!({"data": {"do": "error"}})).await.1.unwrap()["error"],
        json!({"code": 1000, "message": "custom error"})
    );
    assert_eq!(connect_with(&gyre, json!({"data": {"do": "disconnect"}})).await.1, Err(4501));
    let failed = connect_with(&gyre, json!({"data": {"do": "fail"}})).await.1.unwrap();
    assert_eq!(failed["error"]["code"], 100, "{failed}");
    // No credentials and anonymous connections not allowed: bad request.
    assert_eq!(connect_with(&gyre, json!({"data": {"do": "nothing"}})).await.1, Err(3501));
    // A token wins: the proxy is not asked.
    let before = backend.seen("connect").len();
    assert!(connect_with(&gyre, json!({"token": token("42", json!({}))})).await.1.is_ok());
    assert_eq!(backend.seen("connect").len(), before);

    let metrics = gyre.http().get(format!("http://{}/metrics", gyre.addr)).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    assert!(metrics.contains("gyre_proxy_errors_total{type=\"connect\"} 1"), "{metrics}");
    assert!(metrics.contains("gyre_proxy_duration_seconds_count{type=\"connect\"} 5"), "{metrics}");
}

#[tokio::test]
async fn refresh_proxy_prolongs_connections_on_the_server_until_it_says_expired() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({"proxy_include_connection_meta": true}));
    let connect = json!({"data": {"user": "56", "ttl": 2, "channels": ["chat:rf"]}});
    let (mut c, reply) = connect_with(&gyre, connect).await;
    let reply = reply.expect("connected");
    // The server refreshes, so the client is not told the connection expires.
    assert!(reply["connect"].get("expires").is_none() && reply["connect"].get("ttl").is_none(), "{reply}");
    // The info of a refresh result replaces the connection's in presence.
    let mut seen_refreshed = false;
    for _ in 0..100 {
        let (_, presence) = gyre.api("presence", json!({"channel": "chat:rf"})).await;
        let infos: Vec<Value> = presence["result"]["presence"]
            .as_object()
            .map(|p| p.values().map(|e| e["conn_info"].clone()).collect())
            .unwrap_or_default();
        if infos == [json!({"refreshed": 1})] {
            seen_refreshed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen_refreshed, "presence never showed the refreshed info");
    // Two refreshes prolong it; the third says expired: 3005.
    assert_eq!(c.closed().await.code, 3005);
    let seen = backend.seen("refresh");
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in &seen {
        assert_eq!((&s.body["user"], &s.body["client"]), (&json!("56"), &reply["connect"]["client"]));
        assert_eq!(s.body["meta"], json!({"tenant": "t1"}), "meta from the connect result");
    }
    assert!(backend.seen("connect")[0].body.get("meta").is_none());
}

#[tokio::test]
async fn subscribe_publish_and_sub_refresh_proxies_decide_for_the_namespace() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let reply = c.command(json!({"subscribe": {"channel": "px:ok"}})).await;
    assert_eq!(reply["subscribe"]["data"], json!({"hello": "px:ok"}), "{reply}");
    let seen = backend.seen("subscribe");
    assert_eq!((&seen[0].body["channel"], &seen[0].body["user"]), (&json!("px:ok"), &json!("42")));
    let (_, presence) = gyre.api("presence", json!({"channel": "px:ok"})).await;
    let entry = presence["result"]["presence"].as_object().unwrap().values().next().cloned().unwrap();
    assert_eq!(entry["chan_info"], json!({"sub": "ok"}), "channel info from the proxy: {presence}");

    let error = |r: Value| r["error"].clone();
    assert_eq!(
        error(c.command(json!({"subscribe": {"channel": "px:deny"}})).await),
        json!({"code": 1403, "message": "not yours"})
    );
    assert_eq!(error(c.command(json!({"subscribe": {"channel": "px:down"}})).await)["code"], 100);
    let plain = c.command(json!({"subscribe": {"channel": "px:plain"}})).await;
    assert!(plain["subscribe"].is_object(), "an empty answer allows: {plain}");

    // Publishes: the namespace allows none itself; the backend allows, rewrites, refuses.
    let publish = |data: Value| json!({"publish": {"channel": "px:ok", "data": data}});
    assert!(c.command(publish(json!({"action": "rewrite", "n": 1}))).await["publish"].is_object());
    assert_eq!(c.next_push().await["pub"]["data"], json!({"rewritten": 1}));
    assert_eq!(
        error(c.command(publish(json!({"action": "deny"}))).await),
        json!({"code": 1401, "message": "read only"})
    );
    assert!(c.command(publish(json!({"action": "skip"}))).await["publish"].is_object());
    assert_eq!(c.next_push().await["pub"]["data"], json!({"action": "skip"}));
    assert!(c.command(publish(json!({"n": 3}))).await["publish"].is_object());
    assert_eq!(c.next_push().await["pub"]["data"], json!({"n": 3}));
    let (_, history) = gyre.api("history", json!({"channel": "px:ok", "limit": -1})).await;
    let stored: Vec<Value> =
        history["result"]["publications"].as_array().unwrap().iter().map(|p| p["data"].clone()).collect();
    assert_eq!(stored, vec![json!({"rewritten": 1}), json!({"n": 3})], "skip_history kept one out");
    assert_eq!(backend.seen("publish")[0].body["data"], json!({"action": "rewrite", "n": 1}));

    // An expiring subscription: the sub_refresh proxy prolongs it once, then it ends (2501).
    let reply = c.command(json!({"subscribe": {"channel": "px:exp"}})).await;
    assert!(reply["subscribe"].get("expires").is_none(), "server-side refresh: {reply}");
    let push = c.next_push().await;
    assert_eq!(push["channel"], "px:exp", "{push}");
    assert_eq!(push["unsubscribe"]["code"], 2501, "{push}");
    let refreshes = backend.seen("sub_refresh");
    assert_eq!(refreshes.len(), 2);
    assert_eq!((&refreshes[0].body["channel"], &refreshes[0].body["user"]), (&json!("px:exp"), &json!("42")));

    // A disconnect answer closes the connection.
    let id = c.send(json!({"subscribe": {"channel": "px:kick"}})).await;
    assert_eq!(c.reply_or_closed(id).await.unwrap_err().code, 4502);
}

#[tokio::test]
async fn rpc_proxy_answers_client_rpc() {
    let (_backend, url) = Backend::start().await;
    let gyre = start(&url, json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let echo = c.command(json!({"rpc": {"method": "echo", "data": {"x": 1}}})).await;
    assert_eq!(echo["rpc"]["data"], json!({"x": 1}), "{echo}");
    // Payload bytes cross the HTTP proxy both ways unchanged.
    let exact = crate::exact::EXACT;
    c.send_text(&format!(r#"{{"id":90,"rpc":{{"method":"echo_raw","data":{exact}}}}}"#)).await;
    assert!(c.reply_to(90).await["rpc"].is_object());
    assert!(c.frames.iter().any(|f| f.contains(&format!(r#""data":{exact}"#))), "{:?}", c.frames);
    let unknown = c.command(json!({"rpc": {"method": "nope"}})).await;
    assert_eq!(unknown["error"], json!({"code": 104, "message": "method not found"}));
    let failed = c.command(json!({"rpc": {"method": "fail"}})).await;
    assert_eq!((failed["error"]["code"].clone(), failed["error"]["temporary"].clone()), (json!(100), json!(true)));

    // Binary encoding: payloads travel as base64 and come back intact.
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({"proxy_binary_encoding": true}));
    let (mut c, _) = gyre.connected("42").await;
    let echo = c.command(json!({"rpc": {"method": "echo", "data": {"x": 2}}})).await;
    assert_eq!(echo["rpc"]["data"], json!({"x": 2}), "{echo}");
    let seen = &backend.seen("rpc")[0].body;
    assert_eq!((&seen["encoding"], &seen["b64data"]), (&json!("binary"), &json!("eyJ4IjoyfQ==")), "{seen}");
    assert!(seen.get("data").is_none());
}

#[tokio::test]
async fn centrifuge_js_works_through_the_proxies() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({}));
    let out = run_js_env(&gyre, "proxy.js", &[]).await;
    assert!(out.contains("proxy ok"), "{out}");
    let connect = &backend.seen("connect")[0].body;
    assert_eq!((&connect["name"], &connect["data"]["user"]), (&json!("js"), &json!("js-user")), "{connect}");
    assert!(eventually(Duration::from_secs(5), || backend.seen("rpc").len() == 2).await);
}

#[tokio::test]
async fn centrifuge_python_works_through_the_proxies_over_json_and_protobuf() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({"proxy_http_headers": ["Cookie"]}));
    for args in [&[][..], &["--protobuf"][..]] {
        let out = run_py_args(&gyre, "proxy_sdk.py", args).await;
        assert!(out.contains(": 3 passed, 0 failed"), "{out}");
    }
    let connects = backend.seen("connect");
    let protocols: Vec<&Value> = connects.iter().map(|s| &s.body["protocol"]).collect();
    assert_eq!(protocols, [&json!("json"), &json!("protobuf")]);
    for s in &connects {
        assert_eq!((&s.body["name"], &s.body["data"]), (&json!("py"), &json!({"user": "py-user"})), "{:?}", s.body);
        assert!(s.headers["cookie"].to_str().unwrap().starts_with("run="), "{:?}", s.headers);
    }
}

/// The first JSON line of a streamed response (the connect reply or push).
async fn first_line(resp: &mut reqwest::Response) -> Value {
    let mut text = String::new();
    while !text.contains('\n') {
        let chunk = tokio::time::timeout(gyre_tests::ws::WAIT, resp.chunk()).await.expect("a line in time");
        text.push_str(&String::from_utf8_lossy(&chunk.expect("stream").expect("stream open")));
    }
    serde_json::from_str(text.lines().next().unwrap_or_default()).expect("json")
}

#[tokio::test]
async fn connect_proxy_serves_unidirectional_clients() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({}));
    let mut resp = gyre
        .http()
        .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
        .json(&json!({"data": {"user": "u9", "channels": ["chat:u9"]}}))
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open");
    let connect = first_line(&mut resp).await;
    assert_eq!(connect["connect"]["data"], json!({"welcome": true}), "{connect}");
    assert!(connect["connect"]["subs"].get("chat:u9").is_some(), "{connect}");
    assert_eq!(backend.seen("connect")[0].body["transport"], "uni_http_stream");
}

#[tokio::test]
async fn connect_proxy_sees_http_streaming_clients_and_their_headers() {
    let (backend, url) = Backend::start().await;
    let gyre = start(&url, json!({"proxy_http_headers": ["Cookie"]}));
    let connect = json!({"id": 1, "connect": {"data": {"user": "hs"}, "name": "js"}});
    let mut resp = gyre
        .http()
        .post(format!("http://{}/connection/http_stream", gyre.addr))
        .header("content-type", "application/json")
        .header("cookie", "session=stream")
        .body(connect.to_string())
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open");
    let reply = first_line(&mut resp).await;
    assert_eq!(reply["connect"]["data"], json!({"welcome": true}), "{reply}");
    let seen = &backend.seen("connect")[0];
    assert_eq!((&seen.body["transport"], &seen.body["name"]), (&json!("http_stream"), &json!("js")));
    assert_eq!(seen.headers["cookie"], "session=stream");
}
