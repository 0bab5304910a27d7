//! The chaos harness (`gyre_tests::chaos`) end to end: real nats-servers and Gyre nodes, faults
//! while clients churn, and every client holding every acknowledged publication once, in order.

use std::time::Duration;

use gyre_tests::chaos::{run, Plan, Report};

fn print(report: &Report) {
    eprintln!("{report:#?}");
    for d in &report.diagnostics {
        eprintln!("--- {d}");
    }
}

fn assert_clean(report: &Report) {
    print(report);
    assert!(report.acknowledged > 0 && report.recoveries > 0, "the run did nothing: {report:?}");
    assert!(report.clean(), "guarantees broken (see the report above)");
}

/// The short variant, part of every test run (about a minute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_acknowledged_publication_reaches_every_client_once_in_order() {
    let report = run(Plan {
        clients: 400,
        channels: 10,
        rate: 20,
        duration: Duration::from_secs(40),
        cycle: Duration::from_secs(40),
        session: Duration::from_secs(8),
        settle: Duration::from_secs(30),
        storage: "memory",
        history_ttl: Duration::from_secs(600),
    })
    .await;
    assert_clean(&report);
}

/// The long variant (`cargo nextest run --release -p gyre-tests --run-ignored only chaos_soak`):
/// `GYRE_SOAK_SECS` (default 600) of fault cycles with 3,000 clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long soak: run with --run-ignored only"]
async fn chaos_soak() {
    let secs = std::env::var("GYRE_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(600);
    let report = run(Plan {
        clients: 3000,
        channels: 100,
        rate: 10,
        duration: Duration::from_secs(secs),
        cycle: Duration::from_secs(60),
        session: Duration::from_secs(20),
        settle: Duration::from_secs(60),
        // File storage as in production: a restarted server catches up on what it missed, not
        // (as a memory replica must) on the whole stream, which grows for the whole soak.
        storage: "file",
        // History outlasts the run unless GYRE_SOAK_TTL_SECS says otherwise (a short one keeps
        // the stream small and has JetStream trim it all along).
        history_ttl: Duration::from_secs(
            std::env::var("GYRE_SOAK_TTL_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(secs + 300),
        ),
    })
    .await;
    assert_clean(&report);
}
