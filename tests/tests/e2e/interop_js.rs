//! The npm `centrifuge` SDK (under Node, with `ws`) against gyre.

use gyre_tests::interop::{run_js, run_js_env};
use gyre_tests::Gyre;
use serde_json::json;

#[tokio::test]
async fn js_connects_subscribes_and_receives_api_publications_in_order() {
    let gyre = Gyre::start(json!({}));
    run_js(&gyre, "connect_subscribe_publish.js").await;
}

#[tokio::test]
async fn js_client_publish_carries_publisher_info_and_is_refused_where_not_allowed() {
    let gyre = Gyre::start(json!({}));
    run_js(&gyre, "client_publish.js").await;
}

#[tokio::test]
async fn js_invalid_token_disconnects_with_3500_without_reconnecting() {
    let gyre = Gyre::start(json!({}));
    run_js(&gyre, "invalid_token.js").await;
}

#[tokio::test]
async fn js_subscription_to_a_locked_namespace_ends_unsubscribed_with_103() {
    let gyre = Gyre::start(json!({}));
    run_js(&gyre, "subscribe_denied.js").await;
}

#[tokio::test]
async fn js_recovers_missed_publications_after_a_reconnect() {
    run_js(&Gyre::start(json!({})), "recovery.js").await;
}

#[tokio::test]
async fn js_reports_recovered_false_when_history_is_too_small() {
    run_js(&Gyre::start(json!({})), "unrecoverable.js").await;
}

#[tokio::test]
async fn js_presence_and_presence_stats() {
    run_js(&Gyre::start(json!({})), "presence.js").await;
}

#[tokio::test]
async fn js_join_and_leave_reach_subscribers_that_asked() {
    run_js(&Gyre::start(json!({})), "join_leave.js").await;
}

#[tokio::test]
async fn js_connection_refresh_through_get_token() {
    run_js(&Gyre::start(json!({})), "refresh.js").await;
}

#[tokio::test]
async fn js_subscription_tokens_and_their_refresh() {
    run_js(&Gyre::start(json!({})), "sub_token.js").await;
}

#[tokio::test]
async fn js_server_side_subscriptions_and_api_subscribe_unsubscribe() {
    run_js(&Gyre::start(json!({})), "server_side.js").await;
}

#[tokio::test]
async fn js_api_disconnect_codes_reconnect_or_not() {
    run_js(&Gyre::start(json!({})), "disconnect_codes.js").await;
}

#[tokio::test]
async fn js_user_limited_channels() {
    run_js(&Gyre::start(json!({})), "user_limited.js").await;
}

#[tokio::test]
async fn js_protobuf_build_interoperates_with_json_clients() {
    run_js(&Gyre::start(json!({})), "protobuf.js").await;
}

#[tokio::test]
async fn js_http_stream_transport_works_through_emulation() {
    run_js(&Gyre::start(json!({})), "http_stream.js").await;
}

#[tokio::test]
async fn js_reconnects_on_its_own_through_a_jwks_outage() {
    use crate::tokens::{claims, fixture, jwk, sign, JwksServer, Mode};
    let key = jsonwebtoken::EncodingKey::from_ec_pem(fixture("ec_private.pem").as_bytes()).unwrap();
    let jwks = JwksServer::start(vec![jwk(&key, "k1")]).await;
    jwks.set_mode(Mode::Down);
    let gyre = Gyre::start(json!({"token_jwks_public_endpoint": jwks.url}));
    let token = sign(jsonwebtoken::Algorithm::ES256, &key, Some("k1"), claims("42"));
    let env = [("GYRE_JWKS_TOKEN", token)];
    let client = run_js_env(&gyre, "jwks_outage.js", &env);
    let outage = async {
        // Up again once the node has tried (and backed off) twice.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while jwks.hits() < 2 {
            assert!(std::time::Instant::now() < deadline, "the node did not retry the JWKS endpoint");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        jwks.set_mode(Mode::Up);
    };
    let (out, ()) = tokio::join!(client, outage);
    assert!(out.contains("connected on its own"), "{out}");
}
