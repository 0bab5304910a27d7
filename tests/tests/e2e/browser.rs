//! The npm `centrifuge` SDK in Chromium (Debian's, driven by `playwright-core`), on pages served
//! from another origin than the node's: every transport, origin refusals and patterns, token
//! refresh, going offline and back, delta compression and many tabs.

use gyre_tests::interop::run_js;
use gyre_tests::Gyre;
use serde_json::json;

/// A node that lets pages from 127.0.0.1 at any port in (the tests' page server), by pattern.
fn node() -> Gyre {
    Gyre::start(json!({"allowed_origins": ["http://127.0.0.1:*"]}))
}

#[tokio::test]
async fn browser_every_transport_works_cross_origin() {
    run_js(&node(), "browser/transports.js").await;
}

#[tokio::test]
async fn browser_page_from_a_refused_origin_cannot_connect_and_a_pattern_match_can() {
    let gyre = node();
    run_js(&gyre, "browser/origins.js").await;
    let refused: f64 = gyre
        .metric_family("gyre_listener_refused_total")
        .await
        .iter()
        .filter(|(k, _)| k.contains("reason=\"origin\""))
        .map(|(_, v)| v)
        .sum();
    assert!(refused >= 4.0, "the node counted {refused} origin refusals");
}

#[tokio::test]
async fn browser_token_refresh_through_get_token_keeps_the_connection() {
    run_js(&node(), "browser/refresh.js").await;
}

#[tokio::test]
async fn browser_offline_then_online_recovers_what_was_missed() {
    run_js(&node(), "browser/offline.js").await;
}

#[tokio::test]
async fn browser_delta_compression_rebuilds_documents() {
    run_js(&node(), "browser/delta.js").await;
}

#[tokio::test]
async fn browser_many_tabs_on_one_channel() {
    run_js(&node(), "browser/tabs.js").await;
}
