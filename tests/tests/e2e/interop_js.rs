//! The npm `centrifuge` SDK (under Node, with `ws`) against gyre.

use gyre_tests::{interop::run_js, Gyre};
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
