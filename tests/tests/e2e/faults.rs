//! Faults across nodes on the NATS engine: a stalled NATS server is answered with temporary
//! errors instead of hangs, and reads cost a fixed number of engine requests whatever they
//! return (history, recovery) or create nothing at all (presence).

use std::time::Duration;

use gyre_tests::nats::NatsServer;
use gyre_tests::{Gyre, API_KEY};
use serde_json::{json, Value};

use crate::eventually;
use crate::nats::{node, publish, subscribed};

/// How long a test client waits for an answer: less than the SDKs' default command timeout
/// (5 s), so "answered" means "answered before a real client gave up".
const PATIENCE: Duration = Duration::from_secs(4);

/// An API call that gives up after [`PATIENCE`].
async fn api_patiently(g: &Gyre, method: &str, body: Value) -> Result<Value, String> {
    let resp = g
        .http()
        .post(format!("{}/{method}", g.api_url()))
        .header("X-API-Key", API_KEY)
        .json(&body)
        .timeout(PATIENCE)
        .send()
        .await
        .map_err(|e| format!("{method}: no answer: {e}"))?;
    resp.json().await.map_err(|e| format!("{method}: not JSON: {e}"))
}

#[tokio::test]
async fn a_frozen_nats_server_is_answered_with_temporary_errors_not_hangs() {
    let nats = NatsServer::start();
    let g = node(&nats.url(), "frozen", json!({"engine_timeout": "1s"})).await;
    let (mut c, _) = subscribed(&g, "42", "chat:f", json!({})).await;
    publish(&g, "chat:f", json!(1)).await;
    assert_eq!(c.next_push().await["pub"]["data"], 1);

    nats.freeze();
    // The API: a JSON error with Centrifugo's internal (temporary) code for every engine call.
    for (method, body) in [
        ("publish", json!({"channel": "chat:f", "data": 2})),
        ("history", json!({"channel": "chat:f", "limit": 10})),
        ("presence", json!({"channel": "chat:f"})),
        ("disconnect", json!({"user": "nobody"})),
    ] {
        let answer = api_patiently(&g, method, body).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(answer["error"]["code"], 100, "{method} while NATS is frozen: {answer}");
    }
    // A client: error replies it can retry, and the connection stays.
    for command in [
        json!({"subscribe": {"channel": "chat:g"}}),
        json!({"history": {"channel": "chat:f", "limit": 10}}),
        json!({"presence": {"channel": "chat:f"}}),
        json!({"publish": {"channel": "chat:f", "data": 3}}),
    ] {
        let reply = tokio::time::timeout(PATIENCE, c.command(command.clone()))
            .await
            .unwrap_or_else(|_| panic!("no reply to {command} while NATS is frozen"));
        assert_eq!(reply["error"]["code"], 100, "{command}: {reply}");
        assert_eq!(reply["error"]["temporary"], true, "{command}: {reply}");
    }
    let timeouts = g.metric("gyre_engine_errors_total{error=\"timeout\",op=\"publish\"}").await;
    assert!(timeouts >= 2.0, "publish timeouts counted: {timeouts}");

    // Thawed: the same calls work again, and the old subscription still receives.
    nats.thaw();
    assert!(
        eventually!(
            10,
            api_patiently(&g, "publish", json!({"channel": "chat:f", "data": 4}))
                .await
                .is_ok_and(|a| a.get("result").is_some())
        ),
        "publishing does not resume after the thaw"
    );
    // A publish that timed out may still have been stored (its outcome was unknown, which is
    // why it was an error): those arrive too, in order, before the one that succeeded.
    let mut seen = Vec::new();
    loop {
        let push = c.next_push().await;
        let (data, offset) = (push["pub"]["data"].as_u64(), push["pub"]["offset"].as_u64());
        seen.push((data.expect("a publication"), offset.expect("an offset")));
        if data == Some(4) {
            break;
        }
    }
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1), "out of order: {seen:?}");
    assert!(seen.iter().all(|(d, _)| (2..=4).contains(d)), "{seen:?}");
    let reply = c.command(json!({"subscribe": {"channel": "chat:g"}})).await;
    assert!(reply["subscribe"].is_object(), "{reply}");
}

#[tokio::test]
async fn history_and_recovery_take_a_fixed_number_of_engine_requests() {
    let nats = NatsServer::start();
    let g = node(&nats.url(), "reads", json!({})).await;
    let mut offsets = Vec::new();
    for i in 0..100 {
        offsets.push(publish(&g, "chat:r", json!(i)).await["offset"].as_u64().expect("offset"));
    }
    let epoch = g.api("history", json!({"channel": "chat:r", "limit": 0})).await.1["result"]["epoch"].clone();
    let before = nats.messages_from("gyre").await;

    let (_, all) = g.api("history", json!({"channel": "chat:r", "limit": -1})).await;
    let data: Vec<Value> =
        all["result"]["publications"].as_array().expect("publications").iter().map(|p| p["data"].clone()).collect();
    assert_eq!(data, (0..100).map(|i| json!(i)).collect::<Vec<_>>(), "{all}");
    let (_, newest) = g.api("history", json!({"channel": "chat:r", "limit": 1, "reverse": true})).await;
    assert_eq!(newest["result"]["publications"][0]["data"], 99, "{newest}");
    let (_, page) = g
        .api(
            "history",
            json!({"channel": "chat:r", "limit": 3, "reverse": true, "since": {"offset": offsets[50], "epoch": epoch}}),
        )
        .await;
    let page: Vec<Value> =
        page["result"]["publications"].as_array().expect("publications").iter().map(|p| p["data"].clone()).collect();
    assert_eq!(page, vec![json!(49), json!(48), json!(47)]);
    let (mut c, _) = g.connected("42").await;
    let r = c
        .command(json!({"subscribe": {"channel": "chat:r", "recover": true, "offset": offsets[0], "epoch": epoch}}))
        .await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    assert_eq!(r["subscribe"]["publications"].as_array().map(Vec::len), Some(99), "{r}");

    // Four reads returning 100, 1, 3 and 99 publications, plus the subscribe: one request per
    // publication (the old per-entry reads) would be over 200.
    let spent = nats.messages_from("gyre").await - before;
    assert!(spent <= 30, "{spent} requests to NATS for four history reads and a subscribe");
}

#[tokio::test]
async fn presence_reads_create_no_consumers_and_see_every_acknowledged_change() {
    let nats = NatsServer::start();
    let a = node(&nats.url(), "a", json!({})).await;
    let b = node(&nats.url(), "b", json!({})).await;
    // Each node keeps one consumer for its presence view, and nothing else lingers.
    assert!(eventually!(10, nats.consumer_count().await == 2), "consumers: {}", nats.consumer_count().await);
    let (mut ca, _) = subscribed(&a, "42", "chat:p", json!({"join_leave": true})).await;
    assert_eq!(ca.next_push().await["join"]["info"]["user"], "42");
    let (mut cb, _) = subscribed(&b, "43", "chat:p", json!({})).await;
    assert_eq!(ca.next_push().await["join"]["info"]["user"], "43");
    for _ in 0..200 {
        let p = ca.command(json!({"presence_stats": {"channel": "chat:p"}})).await;
        assert_eq!(p["presence_stats"], json!({"num_clients": 2, "num_users": 2}), "{p}");
    }
    let (_, p) = a.api("presence", json!({"channel": "chat:p"})).await;
    assert_eq!(p["result"]["presence"].as_object().map(|m| m.len()), Some(2), "{p}");
    assert_eq!(nats.consumer_count().await, 2, "presence reads left consumers behind");

    // Read-your-writes across nodes: a change acknowledged on b is in a's next answer.
    let r = cb.command(json!({"unsubscribe": {"channel": "chat:p"}})).await;
    assert!(r.get("error").is_none(), "{r}");
    let p = ca.command(json!({"presence_stats": {"channel": "chat:p"}})).await;
    assert_eq!(p["presence_stats"], json!({"num_clients": 1, "num_users": 1}), "{p}");
    assert_eq!(ca.next_push().await["leave"]["info"]["user"], "43");
    // A join is published after its presence entry is stored: who sees the join sees the entry.
    let r = cb.command(json!({"subscribe": {"channel": "chat:p"}})).await;
    assert!(r["subscribe"].is_object(), "{r}");
    assert_eq!(ca.next_push().await["join"]["info"]["user"], "43");
    let (_, p) = a.api("presence", json!({"channel": "chat:p"})).await;
    let users: Vec<&str> =
        p["result"]["presence"].as_object().expect("presence").values().filter_map(|i| i["user"].as_str()).collect();
    assert_eq!(users.len(), 2, "{p}");
    assert!(users.contains(&"43"), "{p}");
}

#[tokio::test]
async fn a_command_a_node_did_not_get_is_an_error_naming_it_and_applies_on_retry() {
    let cluster = NatsServer::cluster();
    let a = node(&cluster[0].url(), "node-a", json!({"engine_timeout": "1s"})).await;
    let b = node(&cluster[1].url(), "node-b", json!({"engine_timeout": "1s"})).await;
    let names = || async {
        let (_, info) = a.api("info", json!({})).await;
        info["result"]["nodes"].as_array().map_or(0, Vec::len)
    };
    assert!(eventually!(10, names().await == 2), "node-a never saw node-b");
    let (mut c, _) = b.connected("42").await;

    // node-b's NATS server hangs: node-b cannot hear the command, and the API says so.
    cluster[1].freeze();
    let disconnect = json!({"user": "42", "disconnect": {"code": 4502, "reason": "bye"}});
    let answer = api_patiently(&a, "disconnect", disconnect.clone()).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer["error"]["code"], 100, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("node-b") && !message.contains("node-a"), "{answer}");

    // Back: the caller's retry reaches node-b and the user is disconnected.
    cluster[1].thaw();
    assert!(
        eventually!(
            10,
            api_patiently(&a, "disconnect", disconnect.clone()).await.is_ok_and(|a| a.get("result").is_some())
        ),
        "the retried command is never acknowledged"
    );
    assert_eq!(c.closed().await.code, 4502);
}

#[tokio::test]
async fn publications_missed_while_reconnecting_are_noticed_on_a_quiet_channel() {
    let mut cluster = NatsServer::cluster();
    let patch = json!({"nats_replicas": 3, "client_channel_position_check_delay": "300s"});
    let a = node(&cluster[0].url(), "node-a", patch.clone()).await;
    // node-b reaches NATS through server 1 only.
    let b = node(&cluster[1].url(), "node-b", patch).await;
    let (mut c, sub) = subscribed(&b, "42", "chat:quiet", json!({})).await;
    let epoch = sub["epoch"].clone();
    let first = publish(&a, "chat:quiet", json!(1)).await;
    assert_eq!(c.next_push().await["pub"]["data"], 1);

    // node-b loses its NATS server; while it is away, node-a publishes (stored: R3, two of
    // three servers up; publishes may fail while the cluster elects).
    cluster[1].kill();
    let mut missed = Vec::new();
    for n in 2..200 {
        let answer = api_patiently(&a, "publish", json!({"channel": "chat:quiet", "data": n})).await;
        if let Some(o) = answer.ok().and_then(|a| a["result"]["offset"].as_u64()) {
            missed.push(o);
        }
        if missed.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(missed.len(), 3, "publishes keep failing with two of three NATS servers up");
    cluster[1].restart();
    // The channel stays quiet: only the position check can tell the subscriber (client-side
    // subscription: unsubscribe push 2500, the SDK then resubscribes and recovers).
    let push = c.next_push().await;
    assert_eq!(push["channel"], "chat:quiet", "{push}");
    assert_eq!(push["unsubscribe"]["code"], 2500, "{push}");
    // Resubscribe as the SDK does: a temporary error (the restarted server is still catching
    // up) is retried, and the answer must be a complete recovery.
    let resubscribe =
        json!({"subscribe": {"channel": "chat:quiet", "recover": true, "offset": first["offset"], "epoch": epoch}});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let r = loop {
        let r = c.command(resubscribe.clone()).await;
        if r["error"]["temporary"] != true || tokio::time::Instant::now() >= deadline {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    let got: Vec<u64> = r["subscribe"]["publications"]
        .as_array()
        .expect("publications")
        .iter()
        .filter_map(|p| p["offset"].as_u64())
        .collect();
    for o in &missed {
        assert!(got.contains(o), "acknowledged offset {o} not recovered: {got:?}");
    }
}

#[tokio::test]
async fn a_recreated_stream_is_seen_by_the_first_publication_in_it() {
    let nats = NatsServer::start();
    let patch = json!({"client_channel_position_check_delay": "300s"});
    let a = node(&nats.url(), "node-a", patch.clone()).await;
    let b = node(&nats.url(), "node-b", patch).await;
    let (mut c, sub) = subscribed(&b, "42", "chat:epoch", json!({})).await;
    let old_epoch = sub["epoch"].as_str().expect("an epoch").to_string();
    let mut last = 0;
    for i in 0..5 {
        last = publish(&a, "chat:epoch", json!(i)).await["offset"].as_u64().expect("offset");
        assert_eq!(c.next_push().await["pub"]["data"], i);
    }

    // The history stream is deleted behind Gyre's back (an operator, or a NATS without its
    // storage): the next publication starts a new stream whose offsets start over.
    let js = async_nats::jetstream::new(async_nats::connect(nats.url()).await.expect("connect to NATS"));
    js.delete_stream("gyre_H_Y2hhdA").await.expect("delete the history stream (namespace `chat`)");
    let mut answer;
    assert!(
        eventually!(10, {
            answer =
                api_patiently(&a, "publish", json!({"channel": "chat:epoch", "data": "new"})).await.unwrap_or_default();
            answer.get("result").is_some()
        }),
        "publishing does not resume after the stream was deleted: {answer}"
    );
    let new_epoch = answer["result"]["epoch"].as_str().expect("an epoch").to_string();
    assert_ne!(new_epoch, old_epoch, "{answer}");
    assert!(answer["result"]["offset"].as_u64() <= Some(last), "offsets started over: {answer}");

    // The subscriber is told at once (not after an epoch refresh): its position is in a stream
    // that is gone, so a low offset must not pass for a duplicate.
    let push = c.next_push().await;
    assert_eq!(push["unsubscribe"]["code"], 2500, "{push}");
    // Both nodes report the new epoch, and recovering across the two streams is refused.
    for g in [&a, &b] {
        let (_, h) = g.api("history", json!({"channel": "chat:epoch", "limit": 0})).await;
        assert_eq!(h["result"]["epoch"], new_epoch.as_str(), "{h}");
    }
    let r = c
        .command(json!({"subscribe": {"channel": "chat:epoch", "recover": true, "offset": last, "epoch": old_epoch}}))
        .await;
    assert!(r["subscribe"]["was_recovering"] == true && r["subscribe"]["recovered"].is_null(), "{r}");
    assert_eq!(r["subscribe"]["epoch"], new_epoch.as_str(), "{r}");
}

#[tokio::test]
async fn a_full_history_stream_refuses_publications_and_keeps_acknowledged_ones() {
    let nats = NatsServer::start();
    let g = node(&nats.url(), "capped", json!({"nats_stream_max_messages": 4})).await;
    // A channel's own history size still drops its oldest ("small" keeps 2)...
    for i in 0..5 {
        publish(&g, "small:a", json!(i)).await;
    }
    let (_, h) = g.api("history", json!({"channel": "small:a", "limit": -1})).await;
    assert_eq!(h["result"]["publications"].as_array().map(Vec::len), Some(2), "{h}");
    // ...but the namespace's stream as a whole (4 messages) is never made room in by
    // evicting another channel's acknowledged publications: the publish is refused.
    publish(&g, "small:b", json!("b1")).await;
    publish(&g, "small:c", json!("c1")).await;
    let (_, refused) = g.api("publish", json!({"channel": "small:d", "data": "d1"})).await;
    assert_eq!(refused["error"]["code"], 100, "{refused}");
    for (channel, data) in [("small:b", "b1"), ("small:c", "c1")] {
        let (_, h) = g.api("history", json!({"channel": channel, "limit": -1})).await;
        assert_eq!(h["result"]["publications"][0]["data"], data, "{h}");
    }
    let named = gyre_tests::eventually(Duration::from_secs(5), || g.logs().contains("maximum messages exceeded")).await;
    assert!(named, "the refusal names the cap in the log");
}
