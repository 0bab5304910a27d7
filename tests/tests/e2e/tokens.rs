//! Token verification with RSA and ECDSA public keys, a JWKS endpoint, audience and issuer.

use std::sync::{Arc, Mutex};

use axum::routing::get;
use gyre_tests::{repo_root, Gyre};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures").join(name)).expect("fixture")
}

fn sign(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, claims: Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    encode(&header, &claims, key).expect("sign")
}

fn claims(user: &str) -> Value {
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

/// A JWKS endpoint whose key set the test can change.
async fn jwks_server(set: Arc<Mutex<JwkSet>>, hits: Arc<Mutex<u32>>) -> String {
    let app = axum::Router::new().route(
        "/jwks",
        get(move || {
            let set = set.clone();
            let hits = hits.clone();
            async move {
                *hits.lock().unwrap() += 1;
                axum::Json(serde_json::to_value(&*set.lock().unwrap()).unwrap())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks")
}

fn jwk(key: &EncodingKey, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some(kid.to_string());
    jwk
}

#[tokio::test]
async fn jwks_keys_are_cached_and_refetched_for_an_unknown_kid() {
    let a = EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let b = EncodingKey::from_ec_pem(fixture("ec2_private.pem").as_bytes()).unwrap();
    let set = Arc::new(Mutex::new(JwkSet { keys: vec![jwk(&a, "a")] }));
    let hits = Arc::new(Mutex::new(0));
    let url = jwks_server(set.clone(), hits.clone()).await;
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": url}));
    for _ in 0..3 {
        let r = connect_result(&gyre, &sign(Algorithm::ES256, &a, Some("a"), claims("42"))).await;
        assert!(r.is_ok(), "{r:?}");
    }
    assert_eq!(*hits.lock().unwrap(), 1, "keys are cached");
    // Key rotation: the endpoint now also serves b; a token signed with b is accepted after
    // a refetch (waiting out the refetch rate limit).
    set.lock().unwrap().keys.push(jwk(&b, "b"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let r = connect_result(&gyre, &sign(Algorithm::ES256, &b, Some("b"), claims("42"))).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(*hits.lock().unwrap(), 2);
    // A kid the endpoint does not know is an invalid token.
    let r = connect_result(&gyre, &sign(Algorithm::ES256, &b, Some("nope"), claims("42"))).await;
    assert_eq!(r, Err(3500));
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
