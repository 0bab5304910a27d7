//! The load tool itself: a short bounded run against a real node must account for every
//! delivery, over JSON and Protobuf, in one process and split over worker processes.

use std::process::Command;

use gyre_tests::{Gyre, API_KEY, SECRET};
use serde_json::{json, Value};

fn bench(gyre: &Gyre, protocol: &str, processes: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gyre-bench"))
        .args(["--json", "--protocol", protocol, "--processes", processes])
        .args(["--ws", &gyre.ws_url(), "--api", &gyre.api_url(), "--api-key", API_KEY, "--secret", SECRET])
        .args(["--server-pid", &gyre.pid().to_string(), "--channel-prefix", "chat:bench"])
        .args(["--connections", "300", "--channels", "3", "--rate", "30", "--duration", "1"])
        .output()
        .expect("run gyre-bench");
    assert!(out.status.success(), "gyre-bench failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("report is not JSON ({e}): {out:?}"))
}

#[tokio::test]
async fn load_tool_accounts_for_every_delivery() {
    // The load tool opens all its connections from loopback at once.
    let gyre = Gyre::start(json!({"ip_rate_limit_exempt": ["127.0.0.1"]}));
    for (protocol, processes) in [("centrifugo", "1"), ("centrifugo-protobuf", "1"), ("centrifugo-protobuf", "3")] {
        let r = bench(&gyre, protocol, processes);
        let what = format!("{protocol} with {processes} process(es): {r}");
        assert_eq!(r["connections"], 300, "{what}");
        let published = r["published"].as_u64().unwrap_or(0);
        assert!(published >= 20, "{what}");
        // Round robin over 3 channels of 100 subscribers each.
        assert_eq!(r["expected_deliveries"].as_u64(), Some(published * 100), "{what}");
        assert_eq!(r["delivered"], r["expected_deliveries"], "{what}");
        assert!(r["latency_p50_ms"].as_f64().unwrap_or(0.0) > 0.0, "{what}");
        assert!(r["server_rss_idle_per_conn_kb"].is_number() && r["server_cpu_per_connect_us"].is_number(), "{what}");
    }
}
