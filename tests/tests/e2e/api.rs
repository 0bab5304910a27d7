//! The server HTTP API (per-method routes and the legacy envelope), health and metrics.

use gyre_tests::{Gyre, API_KEY};
use serde_json::{json, Value};

#[tokio::test]
async fn api_key_is_required_in_any_of_the_three_places() {
    let gyre = Gyre::start(json!({}));
    let url = format!("{}/info", gyre.api_url());
    let http = gyre.http();
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.body("{}").send().await.expect("request");
        (resp.status().as_u16(), resp.text().await.unwrap_or_default())
    };
    assert_eq!(send(http.post(&url)).await, (401, String::new()));
    assert_eq!(send(http.post(&url).header("X-API-Key", "wrong")).await.0, 401);
    assert_eq!(send(http.post(&url).header("Authorization", "apikey wrong")).await.0, 401);
    assert_eq!(send(http.post(&url).header("X-API-Key", API_KEY)).await.0, 200);
    assert_eq!(send(http.post(&url).header("Authorization", format!("apikey {API_KEY}"))).await.0, 200);
    assert_eq!(send(http.post(format!("{url}?api_key={API_KEY}"))).await.0, 200);
}

#[tokio::test]
async fn api_without_a_configured_key_refuses_everything() {
    let gyre = Gyre::start(json!({"api_key": ""}));
    assert_eq!(gyre.api("info", json!({})).await.0, 401);
    let open = Gyre::start(json!({"api_key": "", "api_insecure": true}));
    assert_eq!(open.api("info", json!({})).await.0, 200);
}

#[tokio::test]
async fn publish_results_and_errors_have_centrifugo_shapes() {
    let gyre = Gyre::start(json!({}));
    let (s, body) = gyre.api("publish", json!({"channel": "chat:a", "data": {"x": 1}})).await;
    assert_eq!(s, 200);
    assert_eq!(body["result"]["offset"], 1);
    assert!(!body["result"]["epoch"].as_str().unwrap_or("").is_empty(), "{body}");
    // No history: an empty result object.
    assert_eq!(gyre.api("publish", json!({"channel": "pub:a", "data": 1})).await.1, json!({"result": {}}));
    // Errors travel in the body with HTTP 200.
    let (s, body) = gyre.api("publish", json!({"channel": "nope:a", "data": 1})).await;
    assert_eq!((s, body), (200, json!({"error": {"code": 102, "message": "unknown channel"}})));
    let (_, body) = gyre.api("publish", json!({"channel": "chat:a"})).await;
    assert_eq!(body["error"]["code"], 107, "missing data: {body}");
    let (_, body) = gyre.api("publish", json!({"data": 1})).await;
    assert_eq!(body["error"]["code"], 107, "missing channel: {body}");
    // b64data carrying JSON is accepted.
    let (_, body) = gyre.api("publish", json!({"channel": "pub:a", "b64data": "eyJhIjoxfQ=="})).await;
    assert_eq!(body, json!({"result": {}}));
}

#[tokio::test]
async fn malformed_body_is_400_and_unknown_method_404() {
    let gyre = Gyre::start(json!({}));
    let resp = gyre
        .http()
        .post(format!("{}/publish", gyre.api_url()))
        .header("X-API-Key", API_KEY)
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(gyre.api("no_such_method", json!({})).await.0, 404);
}

#[tokio::test]
async fn broadcast_reports_each_channel() {
    let gyre = Gyre::start(json!({}));
    let (_, body) =
        gyre.api("broadcast", json!({"channels": ["chat:b1", "nope:b2", "pub:b3"], "data": {"n": 1}})).await;
    let r = &body["result"]["responses"];
    assert_eq!(r[0]["result"]["offset"], 1, "{body}");
    assert_eq!(r[1]["error"]["code"], 102, "{body}");
    assert_eq!(r[2]["result"], json!({}), "{body}");
    let (_, body) = gyre.api("broadcast", json!({"channels": [], "data": 1})).await;
    assert_eq!(body["error"]["code"], 107);
}

#[tokio::test]
async fn info_describes_the_node() {
    let gyre = Gyre::start(json!({"name": "edge-a"}));
    let (_c, _) = gyre.connected("42").await;
    let (_, body) = gyre.api("info", json!({})).await;
    let node = &body["result"]["nodes"][0];
    assert_eq!(node["name"], "edge-a");
    assert!(!node["uid"].as_str().unwrap_or("").is_empty());
    assert_eq!(node["num_clients"], 1);
    assert_eq!(node["num_users"], 1);
    assert!(node["version"].is_string() && node["uptime"].is_u64(), "{body}");
}

#[tokio::test]
async fn legacy_envelope_runs_several_commands() {
    let gyre = Gyre::start(json!({}));
    let send = |body: String| {
        let req = gyre.http().post(gyre.api_url()).header("Authorization", format!("apikey {API_KEY}")).body(body);
        async move {
            let resp = req.send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let body = [
        json!({"id": 1, "method": "publish", "params": {"channel": "chat:l", "data": {"a": 1}}}),
        json!({"id": 2, "method": 9, "params": {}}),
        json!({"method": "PUBLISH", "params": {"channel": "nope:x", "data": 1}}),
    ]
    .map(|v| v.to_string())
    .join("\n");
    let (status, text) = send(body).await;
    assert_eq!(status, 200);
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[0], json!({"id": 1, "result": {"offset": 1, "epoch": lines[0]["result"]["epoch"]}}));
    assert!(lines[1]["result"]["nodes"].is_array());
    assert_eq!(lines[2], json!({"error": {"code": 102, "message": "unknown channel"}}));
    assert_eq!(send(json!({"method": "nonsense", "params": {}}).to_string()).await.0, 400);
    assert_eq!(send(String::new()).await.0, 400);
    // The id leads the line, as in Centrifugo's replies.
    assert_eq!(
        send(json!({"id": 4, "method": 99}).to_string()).await.1,
        r#"{"id":4,"error":{"code":104,"message":"method not found"}}"#
    );
}

#[tokio::test]
async fn internal_port_serves_api_health_and_metrics_apart_from_clients() {
    let gyre = Gyre::start(json!({"internal_port": 0, "internal_address": "127.0.0.1"}));
    assert_ne!(gyre.internal_addr.as_deref(), Some(gyre.addr.as_str()));
    assert_eq!(gyre.api("info", json!({})).await.0, 200);
    let client_api =
        gyre.http().post(format!("http://{}/api/info", gyre.addr)).header("X-API-Key", API_KEY).send().await.unwrap();
    assert_eq!(client_api.status().as_u16(), 404, "the API must not be on the client port");
    let health = gyre.http().get(format!("{}/health", gyre.internal_base())).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap(), "{}");
}

#[tokio::test]
async fn metrics_count_connections_messages_and_api_calls() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:m"}})).await;
    gyre.api("publish", json!({"channel": "chat:m", "data": 1})).await;
    c.next_push().await;
    gyre.api("publish", json!({"channel": "nope:m", "data": 1})).await;
    let text = gyre.http().get(format!("{}/metrics", gyre.internal_base())).send().await.unwrap().text().await.unwrap();
    for needle in [
        "gyre_node_num_clients 1",
        "gyre_node_num_subscriptions 1",
        "gyre_client_connections_accepted_total{transport=\"websocket\"} 1",
        "gyre_node_messages_sent_total{type=\"publication\"} 1",
        "gyre_api_command_duration_seconds_count{method=\"publish\",protocol=\"http\"} 2",
        "gyre_api_command_errors_total{code=\"102\",method=\"publish\",protocol=\"http\"} 1",
        "gyre_client_commands_total{method=\"subscribe\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle:?}:\n{text}");
    }
}

/// Payloads come back from every API path as the bytes they were published as: key order,
/// integers beyond 64 bits, trailing zeros, escapes and inner whitespace untouched.
#[tokio::test]
async fn api_replies_carry_payloads_byte_exact() {
    let gyre = Gyre::start(json!({}));
    let data = crate::exact::EXACT;
    let post = |path: String, body: String| {
        let req = gyre.http().post(path).header("X-API-Key", API_KEY).body(body);
        async move {
            let resp = req.send().await.expect("api request");
            assert_eq!(resp.status().as_u16(), 200);
            resp.text().await.expect("reply text")
        }
    };
    let api = gyre.api_url();
    let published = post(format!("{api}/publish"), format!(r#"{{"channel":"chat:exact","data":{data}}}"#)).await;
    assert!(published.contains(r#""offset":1"#), "{published}");
    let history = r#"{"channel":"chat:exact","limit":10}"#;
    for (what, reply) in [
        ("history", post(format!("{api}/history"), history.to_string()).await),
        ("legacy", post(api.clone(), format!(r#"{{"id":7,"method":"history","params":{history}}}"#)).await),
        ("batch", post(format!("{api}/batch"), format!(r#"{{"commands":[{{"history":{history}}}]}}"#)).await),
    ] {
        assert!(reply.contains(&format!(r#""data":{data}"#)), "{what} rewrote the payload: {reply}");
    }
}
