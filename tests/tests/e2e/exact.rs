//! Payloads pass through byte for byte, as Centrifugo passes them: key order, numbers beyond 64
//! bits, a decimal's trailing zero, escapes and whitespace survive every path from a publisher
//! or a token to every reader (WebSocket, SSE, HTTP API history and presence). The gRPC API and
//! the proxies have their own checks in `grpc.rs`, `proxy.rs` and `proxy_grpc.rs`, the NATS
//! engine's history in `nats.rs`.

use std::time::Duration;

use base64::Engine;
use gyre_tests::{token, Gyre, API_KEY, SECRET};
use hmac::Mac;
use serde_json::json;

/// The payload every path must keep.
pub const EXACT: &str =
    r#"{"zeta":1,"alpha":2,"big":123456789012345678901234567890,"f":1.10,"s":"\u00e9\t\"", "n": [ 1.0e2 ]}"#;

/// An HS256 token signed over `claims` exactly as written.
fn raw_token(claims: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signed = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.as_bytes()));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

async fn api_text(gyre: &Gyre, method: &str, params: &str) -> String {
    let resp = gyre
        .http()
        .post(format!("{}/{method}", gyre.api_url()))
        .header("X-API-Key", API_KEY)
        .body(params.to_string())
        .send()
        .await
        .expect("api request");
    assert_eq!(resp.status().as_u16(), 200);
    resp.text().await.expect("reply text")
}

#[tokio::test]
async fn a_client_publication_reaches_websocket_sse_and_history_byte_exact() {
    let gyre = Gyre::start(json!({}));
    let (mut subscriber, _) = gyre.connected("1").await;
    subscriber.command(json!({"subscribe": {"channel": "chat:exact"}})).await;
    let mut sse = gyre
        .http()
        .get(format!("http://{}/connection/uni_sse", gyre.addr))
        .query(&[("cf_connect", json!({"token": token("3", json!({"channels": ["chat:exact"]}))}).to_string())])
        .timeout(Duration::from_secs(600))
        .send()
        .await
        .expect("open the SSE stream");
    let mut events = String::new();
    while !events.contains("\"connect\"") {
        let chunk = tokio::time::timeout(gyre_tests::ws::WAIT, sse.chunk()).await.expect("connect event");
        events.push_str(&String::from_utf8_lossy(&chunk.expect("stream").expect("open stream")));
    }

    let (mut publisher, _) = gyre.connected("2").await;
    publisher.command(json!({"subscribe": {"channel": "chat:exact"}})).await;
    publisher.send_text(&format!(r#"{{"id":9,"publish":{{"channel":"chat:exact","data":{EXACT}}}}}"#)).await;
    assert!(publisher.reply_to(9).await["publish"].is_object());

    let wanted = format!(r#""data":{EXACT}"#);
    assert_eq!(subscriber.next_push().await["channel"], "chat:exact");
    assert!(subscriber.frames.iter().any(|f| f.contains(&wanted)), "websocket frames: {:?}", subscriber.frames);
    while !events.contains(&wanted) {
        let chunk = tokio::time::timeout(gyre_tests::ws::WAIT, sse.chunk()).await.expect("publication event");
        events.push_str(&String::from_utf8_lossy(&chunk.expect("stream").expect("open stream")));
    }
    let history = api_text(&gyre, "history", r#"{"channel":"chat:exact","limit":10}"#).await;
    assert!(history.contains(&wanted), "history: {history}");
}

#[tokio::test]
async fn token_info_reaches_presence_and_join_byte_exact() {
    let gyre = Gyre::start(json!({}));
    let (mut watcher, _) = gyre.connected("1").await;
    watcher.command(json!({"subscribe": {"channel": "chat:who", "join_leave": true}})).await;
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 600;
    let token = raw_token(&format!(r#"{{"sub":"7","exp":{exp},"info":{EXACT}}}"#));
    let mut c = gyre.ws().await;
    assert!(c.command(json!({"connect": {"token": token}})).await["connect"].is_object());
    let sub = c.command(json!({"subscribe": {"channel": "chat:who"}})).await;
    assert!(sub["subscribe"].is_object(), "{sub}");

    let wanted = format!(r#""conn_info":{EXACT}"#);
    // The watcher's own join comes first.
    while watcher.next_push().await["join"]["info"]["user"] != "7" {}
    assert!(watcher.frames.iter().any(|f| f.contains(&wanted)), "join frames: {:?}", watcher.frames);
    let presence = api_text(&gyre, "presence", r#"{"channel":"chat:who"}"#).await;
    assert!(presence.contains(&wanted), "presence: {presence}");
}
