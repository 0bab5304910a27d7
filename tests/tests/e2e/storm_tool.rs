//! The reconnect-storm benchmark at a small scale: a node dies while its clients sit on
//! recoverable channels, and every client recovers at once on the two nodes left, with each
//! node reading each channel from JetStream once. The nodes take clients before their engine
//! has set up its streams, which once made concurrent stream creation fail. The reads of the
//! channels share passes over the stream.

use gyre_tests::storm::{run, Plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_of_a_killed_node_recovers_at_once_with_one_read_per_channel_per_node() {
    let plan = Plan {
        gyre: gyre_tests::gyre_bin(),
        clients: 400,
        channels: 40,
        missed: 30,
        connect_concurrency: 64,
        storage: "file".into(),
        logs: None,
    };
    let r = run(plan).await;
    assert_eq!((r.recovered, r.failed), (400, 0), "{r:?}");
    assert_eq!(r.live, 400, "every recovered client gets the next publication live: {r:?}");
    assert!(r.engine_reads_per_channel <= 2.0, "at most one engine read per channel per node: {r:?}");
    assert_eq!(r.engine_reads + r.shared_reads, 400, "every recovery was counted: {r:?}");
    // Reads of different channels waiting together share one pass over the stream: a
    // consumer per read would be four NATS requests per read, eight per channel.
    assert!(r.nats_requests_per_channel <= 5.0, "reads of many channels share passes: {r:?}");
}
