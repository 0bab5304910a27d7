//! CORS of the endpoints browsers call (HTTP-streaming, SSE, emulation, the uni endpoints):
//! preflights, the headers on answers, refusals, and what stays untouched (no Origin, the API).
//! The same paths in a real browser: `browser.rs`.

use gyre_tests::{token, Gyre};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

const APP: &str = "https://app.example.com";

fn node(allowed: &[&str]) -> Gyre {
    Gyre::start(json!({"allowed_origins": allowed}))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

async fn preflight(gyre: &Gyre, path: &str, origin: &str, headers: &str) -> reqwest::Response {
    gyre.http()
        .request(Method::OPTIONS, format!("http://{}{path}", gyre.addr))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", headers)
        .send()
        .await
        .expect("preflight")
}

#[tokio::test]
async fn preflights_of_allowed_origins_allow_what_the_sdk_sends() {
    let gyre = node(&["https://*.example.com"]);
    for path in ["/connection/http_stream", "/connection/sse", "/emulation", "/connection/uni_http_stream"] {
        let resp = preflight(&gyre, path, APP, "content-type, authorization").await;
        assert_eq!(resp.status(), 204, "{path}");
        let h = resp.headers();
        assert_eq!(header(h, "access-control-allow-origin"), [APP], "{path}");
        assert_eq!(header(h, "access-control-allow-credentials"), ["true"], "{path}");
        assert_eq!(header(h, "access-control-allow-methods"), ["GET, POST, OPTIONS"], "{path}");
        assert_eq!(header(h, "access-control-allow-headers"), ["content-type, authorization"], "{path}");
        assert_eq!(header(h, "access-control-max-age"), ["600"], "{path}");
        assert!(header(h, "vary").contains(&"Origin"), "{path}: vary {:?}", header(h, "vary"));
    }
}

#[tokio::test]
async fn refused_origins_get_a_json_403_and_no_cors_headers() {
    let gyre = node(&["https://*.example.com"]);
    let resp = preflight(&gyre, "/connection/http_stream", "https://evil.test", "content-type").await;
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert!(header(resp.headers(), "vary").contains(&"Origin"));
    let body: Value = resp.json().await.expect("json error");
    assert!(body["error"].as_str().is_some_and(|e| e.contains("allowed_origins")), "{body}");
    // The request itself, and the look-alike an unanchored pattern would let in.
    for origin in ["https://evil.test", "https://example.com.evil.test", "https://evil.test/.example.com"] {
        let resp = gyre
            .http()
            .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
            .header("origin", origin)
            .json(&json!({"token": token("42", json!({}))}))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 403, "{origin}");
    }
    let refused = gyre.metric("gyre_listener_refused_total{listener=\"client\",reason=\"origin\"}").await;
    assert!(refused >= 4.0, "{refused} refusals counted");
}

#[tokio::test]
async fn answers_to_allowed_origins_carry_the_origin_never_a_star() {
    let gyre = node(&["*"]);
    let resp = gyre
        .http()
        .get(format!("http://{}/connection/uni_sse", gyre.addr))
        .query(&[("cf_connect", json!({"token": token("42", json!({}))}).to_string())])
        .header("origin", APP)
        .send()
        .await
        .expect("uni_sse");
    assert_eq!(resp.status(), 200);
    assert_eq!(header(resp.headers(), "access-control-allow-origin"), [APP]);
    assert_eq!(header(resp.headers(), "access-control-allow-credentials"), ["true"]);
    assert!(header(resp.headers(), "vary").contains(&"Origin"));
    // An emulation POST for a session that does not exist still answers readable errors.
    let resp = gyre
        .http()
        .post(format!("http://{}/emulation", gyre.addr))
        .header("origin", APP)
        .body("{}")
        .send()
        .await
        .expect("emulation");
    assert_eq!(header(resp.headers(), "access-control-allow-origin"), [APP], "status {}", resp.status());
}

#[tokio::test]
async fn requests_without_origin_and_the_api_get_no_cors_headers() {
    let gyre = node(&["*"]);
    let resp = gyre
        .http()
        .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
        .json(&json!({"token": token("42", json!({}))}))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    drop(resp);
    // The server API is for backends: a page's preflight is not answered with an allow.
    let resp = gyre
        .http()
        .request(Method::OPTIONS, format!("{}/publish", gyre.api_url()))
        .header("origin", APP)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("api preflight");
    assert!(resp.headers().get("access-control-allow-origin").is_none(), "status {}", resp.status());
}

#[tokio::test]
async fn malformed_preflight_header_lists_are_refused() {
    let gyre = node(&["*"]);
    let long = "x-a, ".repeat(400);
    for headers in ["content type", long.as_str()] {
        let resp = preflight(&gyre, "/connection/http_stream", APP, headers).await;
        assert_eq!(resp.status(), 400);
        let body: Value = resp.json().await.expect("json error");
        assert!(body["error"].is_string(), "{body}");
    }
}
