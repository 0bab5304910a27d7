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
