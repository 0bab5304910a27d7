//! The PyPI clients against gyre: `cent` (server API) and `centrifuge-python` (client SDK).

use gyre_tests::{
    interop::{run_py, run_py_args},
    Gyre,
};
use serde_json::json;

#[tokio::test]
async fn cent_publish_broadcast_info_and_unauthorized() {
    let gyre = Gyre::start(json!({}));
    let out = run_py(&gyre, "cent_api.py").await;
    assert!(out.contains("cent_api: 7 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn cent_every_api_method_with_errors_and_live_clients() {
    let gyre = Gyre::start(json!({}));
    let out = run_py(&gyre, "cent_full.py").await;
    assert!(out.contains("cent_full: 25 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn centrifuge_python_connects_subscribes_publishes_and_reads_history_and_presence() {
    let gyre = Gyre::start(json!({}));
    let out = run_py(&gyre, "client_sdk.py").await;
    assert!(out.contains("client_sdk: 11 passed, 0 failed"), "{out}");
}

#[tokio::test]
async fn centrifuge_python_over_protobuf_passes_the_same_checks() {
    let gyre = Gyre::start(json!({}));
    let out = run_py_args(&gyre, "client_sdk.py", &["--protobuf"]).await;
    assert!(out.contains("client_sdk (protobuf): 11 passed, 0 failed"), "{out}");
}
