//! Token verification with RSA and ECDSA public keys, a JWKS endpoint (and its outages),
//! audience and issuer, token times, and keys of one family never verifying another's tokens.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use gyre_tests::{repo_root, Gyre};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures").join(name)).expect("fixture")
}

pub(crate) fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, &claims, key).expect("sign")
}

pub(crate) fn claims(user: &str) -> Value {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() + 600;
    json!({"sub": user, "exp": exp})
}

async fn connect_result(gyre: &Gyre, token: &str) -> Result<Value, u16> {
    let mut c = gyre.ws().await;
    let id = c.send(json!({"connect": {"token": token}})).await;
    c.reply_or_closed(id).await.map_err(|closed| closed.code)
}

#[tokio::test]
async fn rsa_and_ecdsa_public_keys_verify_tokens() {
    let gyre = Gyre::start(json!({
        "token_rsa_public_key": fixture("rsa_public.pem"),
        "token_ecdsa_public_key": fixture("ec_public.pem"),
    }));
    let rsa = EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    let ec = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    for (alg, key) in [(Algorithm::RS256, &rsa), (Algorithm::RS512, &rsa), (Algorithm::ES256, &ec)] {
        let r = connect_result(&gyre, &sign(alg, key, None, claims("42"))).await;
        assert!(r.as_ref().is_ok_and(|r| r["connect"]["client"].is_string()), "{alg:?}: {r:?}");
    }
    // A key that is not the configured one is an invalid token.
    let other = EncodingKey::from_ec_pem(fixture("ec2_private.pem").as_bytes()).unwrap();
    assert_eq!(connect_result(&gyre, &sign(Algorithm::ES256, &other, None, claims("42"))).await, Err(3500));
    // HS256 without an HMAC secret is refused too.
    let hs = gyre_edge::auth::mint_connection_token("anything", "42", Some(60), json!({})).unwrap();
    let no_hmac = Gyre::start(json!({"token_hmac_secret_key": "", "token_rsa_public_key": fixture("rsa_public.pem")}));
    assert_eq!(connect_result(&no_hmac, &hs).await, Err(3500));
}

#[tokio::test]
async fn bad_pem_in_config_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.json"), json!({"token_rsa_public_key": "not a pem"}).to_string()).unwrap();
    let (ok, _, err) = gyre_tests::run_cli(&["checkconfig", "c.json"], dir.path());
    assert!(!ok && err.contains("c.json: key `token_rsa_public_key`: invalid RSA public key PEM"), "{err}");
}

/// How the test JWKS endpoint answers.
#[derive(Clone)]
pub(crate) enum Mode {
    Up,
    /// 503 for every request.
    Down,
    /// 302 to another URL.
    Redirect(String),
    /// A 2 MiB body.
    Huge,
}

/// A JWKS endpoint whose key set and behaviour the test can change; counts requests.
pub(crate) struct JwksServer {
    pub(crate) url: String,
    set: Arc<Mutex<JwkSet>>,
    mode: Arc<Mutex<Mode>>,
    hits: Arc<Mutex<u32>>,
}

impl JwksServer {
    pub(crate) async fn start(keys: Vec<Jwk>) -> JwksServer {
        let set = Arc::new(Mutex::new(JwkSet { keys }));
        let mode = Arc::new(Mutex::new(Mode::Up));
        let hits = Arc::new(Mutex::new(0));
        let (s, m, h) = (set.clone(), mode.clone(), hits.clone());
        let app = axum::Router::new().route(
            "/jwks",
            get(move || {
                let (set, mode, hits) = (s.clone(), m.clone(), h.clone());
                async move {
                    *hits.lock().unwrap() += 1;
                    let mode = mode.lock().unwrap().clone();
                    match mode {
                        Mode::Up => axum::Json(serde_json::to_value(&*set.lock().unwrap()).unwrap()).into_response(),
                        Mode::Down => (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down").into_response(),
                        Mode::Redirect(to) => axum::response::Redirect::temporary(&to).into_response(),
                        Mode::Huge => {
                            let pad = "x".repeat(2 << 20);
                            format!("{{\"keys\": [], \"pad\": \"{pad}\"}}").into_response()
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        JwksServer { url: format!("http://{addr}/jwks"), set, mode, hits }
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub(crate) fn hits(&self) -> u32 {
        *self.hits.lock().unwrap()
    }
}

pub(crate) fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

#[tokio::test]
async fn jwks_keys_are_cached_and_refetched_for_an_unknown_kid() {
    let a = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let b = EncodingKey::from_ec_pem(fixture("ec2_private.pem").as_bytes()).unwrap();
    let jwks = JwksServer::start(vec![jwk(&a, "a")]).await;
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": jwks.url}));
    for _ in 0..3 {
        let r = connect_result(&gyre, &sign(Algorithm::ES256, &a, Some("a"), claims("42"))).await;
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(jwks.hits(), 1, "keys are cached");
    // Key rotation: the endpoint now also serves b; a token signed with b is accepted after
    // a refetch (waiting out the refetch rate limit).
    jwks.set.lock().unwrap().keys.push(jwk(&b, "b"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = connect_result(&gyre, &sign(Algorithm::ES256, &b, Some("b"), claims("42"))).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(jwks.hits(), 2);
    // A kid the healthy endpoint does not know is an invalid token.
    let r = connect_result(&gyre, &sign(Algorithm::ES256, &b, Some("nope"), claims("42"))).await;
    assert_eq!(r, Err(3500));
    // An RS256 token naming an EC key is refused, whatever its signature.
    let rsa = EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    let r = connect_result(&gyre, &sign(Algorithm::RS256, &rsa, Some("a"), claims("42"))).await;
    assert_eq!(r, Err(3500));
}

/// The error of a connect reply (the connection stays open), or the close code.
async fn connect_error(gyre: &Gyre, token: &str) -> Result<Value, u16> {
    connect_result(gyre, token).await.map(|reply| reply["error"].clone())
}

#[tokio::test]
async fn a_jwks_outage_is_a_temporary_error_and_known_keys_keep_serving() {
    let a = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let b = EncodingKey::from_ec_pem(fixture("ec2_private.pem").as_bytes()).unwrap();
    let jwks = JwksServer::start(vec![jwk(&a, "a")]).await;
    let gyre = Gyre::start(json!({
        "token_jwks_public_endpoint": jwks.url,
        "namespaces": [{"name": "jw"}],
    }));
    let token_a = sign(Algorithm::ES256, &a, Some("a"), claims("42"));
    let token_b = sign(Algorithm::ES256, &b, Some("b"), claims("42"));
    assert!(connect_result(&gyre, &token_a).await.is_ok_and(|r| r["connect"].is_object()));

    // The endpoint fails while the keys rotate to b: a token signed with b cannot be checked
    // yet, which is a temporary error (100), not an invalid token; a is still accepted.
    jwks.set_mode(Mode::Down);
    jwks.set.lock().unwrap().keys.push(jwk(&b, "b"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let err = connect_error(&gyre, &token_b).await;
    assert_eq!(err, Ok(json!({"code": 100, "message": "internal server error", "temporary": true})));
    let failed_at = jwks.hits();
    // While the fetch backs off, connects are answered at once without hammering the endpoint.
    for _ in 0..5 {
        assert_eq!(connect_error(&gyre, &token_b).await.map(|e| e["code"].clone()), Ok(json!(100)));
    }
    assert_eq!(jwks.hits(), failed_at, "refetches back off");
    assert!(connect_result(&gyre, &token_a).await.is_ok_and(|r| r["connect"].is_object()), "known keys serve");
    // A subscription token naming the unknown key gets the same temporary error.
    let (mut c, _) = gyre.connected("42").await;
    let sub_token = sign(Algorithm::ES256, &b, Some("b"), json!({"sub": "42", "channel": "jw:x"}));
    let reply = c.command(json!({"subscribe": {"channel": "jw:x", "token": sub_token}})).await;
    assert_eq!(reply["error"]["code"], 100, "{reply}");
    assert_eq!(reply["error"]["temporary"], true, "{reply}");
    assert!(gyre.metric("gyre_token_jwks_events_total{event=\"fetch_failed\"}").await >= 1.0);

    // Back up: the retrying client gets in within the backoff (at most a few seconds here).
    jwks.set_mode(Mode::Up);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match connect_result(&gyre, &token_b).await {
            Ok(r) if r["connect"].is_object() => break,
            Ok(r) => assert_eq!(r["error"]["code"], 100, "{r}"),
            Err(code) => panic!("closed with {code} while the endpoint recovers"),
        }
        assert!(Instant::now() < deadline, "not accepted after the endpoint came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reply = c.command(json!({"subscribe": {"channel": "jw:x", "token": sign(Algorithm::ES256, &b, Some("b"), json!({"sub": "42", "channel": "jw:x"}))}})).await;
    assert!(reply["subscribe"].is_object(), "{reply}");
}

/// Opens a unidirectional HTTP stream with a connect token.
async fn open_uni_stream(gyre: &Gyre, token: &str) -> reqwest::Response {
    let resp = gyre
        .http()
        .post(format!("http://{}/connection/uni_http_stream", gyre.addr))
        .json(&json!({"token": token}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("open");
    assert_eq!(resp.status(), 200);
    resp
}

/// Everything a unidirectional HTTP-stream connect answers, until the stream ends.
async fn uni_stream(gyre: &Gyre, token: &str) -> String {
    open_uni_stream(gyre, token).await.text().await.expect("the stream ends")
}

#[tokio::test]
async fn a_jwks_outage_tells_unidirectional_clients_to_reconnect() {
    // A uni client cannot be sent an error reply: a temporary failure must be 3004 (reconnect),
    // never a final code such as 3500 (invalid token), which the SDKs do not retry.
    let a = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let jwks = JwksServer::start(vec![jwk(&a, "a")]).await;
    jwks.set_mode(Mode::Down);
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": jwks.url}));
    let token = sign(Algorithm::ES256, &a, Some("a"), claims("42"));
    let out = uni_stream(&gyre, &token).await;
    let last: Value = serde_json::from_str(out.trim().lines().last().expect("a disconnect push")).unwrap();
    assert_eq!(last["disconnect"]["code"], 3004, "{out}");
    // An invalid token stays final.
    let out = uni_stream(&gyre, "not-a-token").await;
    let last: Value = serde_json::from_str(out.trim().lines().last().expect("a disconnect push")).unwrap();
    assert_eq!(last["disconnect"]["code"], 3500, "{out}");
    // Back up: the same token streams a connect push.
    jwks.set_mode(Mode::Up);
    let deadline = Instant::now() + Duration::from_secs(15);
    let resp = loop {
        let mut resp = open_uni_stream(&gyre, &token).await;
        let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await.expect("a first push");
        let first = String::from_utf8_lossy(&first.expect("stream").unwrap_or_default()).to_string();
        if first.contains("\"connect\"") {
            break first;
        }
        assert!(first.contains("3004"), "only reconnect advice while the keys come back: {first}");
        assert!(Instant::now() < deadline, "not accepted after the endpoint came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(resp.contains("\"client\""), "{resp}");
}

#[tokio::test]
async fn jwks_redirects_and_oversized_key_sets_are_refused() {
    let a = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let good = JwksServer::start(vec![jwk(&a, "a")]).await;
    let jwks = JwksServer::start(vec![]).await;
    jwks.set_mode(Mode::Redirect(good.url.clone()));
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": jwks.url}));
    let token = sign(Algorithm::ES256, &a, Some("a"), claims("42"));
    assert_eq!(connect_error(&gyre, &token).await.map(|e| e["code"].clone()), Ok(json!(100)));
    assert_eq!((jwks.hits(), good.hits()), (1, 0), "the redirect is not followed");

    let huge = JwksServer::start(vec![]).await;
    huge.set_mode(Mode::Huge);
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": huge.url}));
    assert_eq!(connect_error(&gyre, &token).await.map(|e| e["code"].clone()), Ok(json!(100)));
    // The log line travels through the harness's reader: wait for it, bounded.
    let logged = gyre_tests::eventually(Duration::from_secs(5), || gyre.logs().contains("response larger than")).await;
    assert!(logged, "{}", gyre.logs());
}

/// `header.payload.` with `alg: none`.
fn unsigned(claims: &Value) -> String {
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(claims))
}

#[tokio::test]
async fn keys_never_cross_families_and_unsigned_tokens_are_invalid() {
    let pem = fixture("rsa_public.pem");
    let gyre = Gyre::start(json!({"token_hmac_secret_key": "", "token_rsa_public_key": pem}));
    // The classic confusion: HS256 "signed" with the RSA public key as the HMAC secret.
    let confused = sign(Algorithm::HS256, &EncodingKey::from_secret(pem.as_bytes()).unwrap(), None, claims("42"));
    assert_eq!(connect_result(&gyre, &confused).await, Err(3500));
    assert_eq!(connect_result(&gyre, &unsigned(&claims("42"))).await, Err(3500));
    // The same with an HMAC secret configured: still not accepted.
    let with_hmac = Gyre::start(json!({"token_rsa_public_key": pem}));
    assert_eq!(connect_result(&with_hmac, &confused).await, Err(3500));
    assert_eq!(connect_result(&with_hmac, &unsigned(&claims("42"))).await, Err(3500));
    let rsa = EncodingKey::from_rsa_pem(fixture("rsa_private.pem").as_bytes()).unwrap();
    assert!(connect_result(&with_hmac, &sign(Algorithm::RS256, &rsa, None, claims("42"))).await.is_ok());
}

fn now() -> i64 {
    gyre_edge::auth::unix_now()
}

#[tokio::test]
async fn token_times_are_mapped_as_centrifugo_maps_them() {
    let gyre = Gyre::start(json!({"namespaces": [{"name": "tt"}]}));
    let mk = |extra: Value| gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", None, extra).unwrap();
    let code = |r: Result<Value, u16>| r.map(|e| e["code"].clone());
    // A token not valid yet is answered like an expired one (109: the SDK asks for a new one).
    assert_eq!(code(connect_error(&gyre, &mk(json!({"nbf": now() + 60}))).await), Ok(json!(109)));
    assert_eq!(code(connect_error(&gyre, &mk(json!({"exp": now() - 1}))).await), Ok(json!(109)));
    // `expire_at` in the past: 110; 0 or negative: never expires.
    assert_eq!(code(connect_error(&gyre, &mk(json!({"expire_at": now() - 5}))).await), Ok(json!(110)));
    for never in [0, -5, i64::MIN] {
        let r = connect_result(&gyre, &mk(json!({"expire_at": never}))).await.unwrap();
        assert!(r["connect"].is_object() && r["connect"].get("expires").is_none(), "{never}: {r}");
    }
    // Far-future times neither overflow nor wrap.
    let r = connect_result(&gyre, &mk(json!({"exp": i64::MAX}))).await.unwrap();
    assert_eq!(r["connect"]["ttl"], u32::MAX, "{r}");

    // Subscription tokens: expired 109, `expire_at` passed 110, far future fine.
    let (mut c, _) = gyre.connected("42").await;
    let sub =
        |extra: Value| gyre_edge::auth::mint_subscription_token(gyre_tests::SECRET, "42", "tt:a", None, extra).unwrap();
    for (extra, want) in [
        (json!({"exp": now() - 1}), json!(109)),
        (json!({"nbf": now() + 60}), json!(109)),
        (json!({"expire_at": now() - 1}), json!(110)),
    ] {
        let reply = c.command(json!({"subscribe": {"channel": "tt:a", "token": sub(extra.clone())}})).await;
        assert_eq!(reply["error"]["code"], want, "{extra}: {reply}");
    }
    let reply =
        c.command(json!({"subscribe": {"channel": "tt:a", "token": sub(json!({"expire_at": i64::MAX}))}})).await;
    assert_eq!(reply["subscribe"]["ttl"], u32::MAX, "{reply}");
    // sub_refresh and refresh to an `expire_at` already passed: 110, the connection stays.
    let reply =
        c.command(json!({"sub_refresh": {"channel": "tt:a", "token": sub(json!({"expire_at": now() - 1}))}})).await;
    assert_eq!(reply["error"]["code"], 110, "{reply}");
    let reply = c.command(json!({"refresh": {"token": mk(json!({"expire_at": now() - 1}))}})).await;
    assert_eq!(reply["error"]["code"], 110, "{reply}");
    let reply = c.command(json!({"refresh": {"token": mk(json!({"exp": now() + 60}))}})).await;
    assert_eq!(reply["refresh"]["expires"], true, "{reply}");
}

#[tokio::test]
async fn token_leeway_tolerates_small_clock_skew_only() {
    let gyre = Gyre::start(json!({"token_leeway": "30s"}));
    let mk = |extra: Value| gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", None, extra).unwrap();
    for extra in [json!({"nbf": now() + 10}), json!({"exp": now() - 10})] {
        let r = connect_result(&gyre, &mk(extra.clone())).await.unwrap();
        assert!(r["connect"].is_object(), "{extra}: {r}");
    }
    for extra in [json!({"nbf": now() + 90}), json!({"exp": now() - 90})] {
        let r = connect_error(&gyre, &mk(extra.clone())).await;
        assert_eq!(r.map(|e| e["code"].clone()), Ok(json!(109)), "{extra}");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.json"), json!({"token_leeway": "10m"}).to_string()).unwrap();
    let (ok, _, err) = gyre_tests::run_cli(&["checkconfig", "c.json"], dir.path());
    assert!(!ok && err.contains("c.json: key `token_leeway`: must be at most 5m"), "{err}");
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_configured() {
    let gyre = Gyre::start(json!({"token_audience": "gyre-app", "token_issuer": "auth.example"}));
    let mk = |extra: Value| gyre_edge::auth::mint_connection_token(gyre_tests::SECRET, "42", Some(60), extra).unwrap();
    assert!(connect_result(&gyre, &mk(json!({"aud": "gyre-app", "iss": "auth.example"}))).await.is_ok());
    assert!(connect_result(&gyre, &mk(json!({"aud": ["x", "gyre-app"], "iss": "auth.example"}))).await.is_ok());
    assert_eq!(connect_result(&gyre, &mk(json!({"aud": "other", "iss": "auth.example"}))).await, Err(3500));
    assert_eq!(connect_result(&gyre, &mk(json!({"aud": "gyre-app"}))).await, Err(3500));
}
