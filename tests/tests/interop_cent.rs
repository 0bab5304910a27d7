//! The PyPI `cent` API client against gyre.

use gyre_tests::{interop::run_py, Gyre};
use serde_json::json;

#[tokio::test]
async fn cent_publish_broadcast_info_and_unauthorized() {
    let gyre = Gyre::start(json!({}));
    let out = run_py(&gyre, "cent_api.py").await;
    assert!(out.contains("0 failed"), "{out}");
}
