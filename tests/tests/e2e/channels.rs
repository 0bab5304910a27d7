//! Channel features on one node: history, positioning and recovery, presence, join/leave,
//! subscription tokens, server-side subscriptions and server API actions on live clients.

use std::time::Duration;

use gyre_edge::auth::mint_subscription_token;
use gyre_tests::{token, Gyre, SECRET};
use serde_json::{json, Value};

fn code(reply: &Value) -> u64 {
    reply["error"]["code"].as_u64().unwrap_or_else(|| panic!("expected an error reply, got {reply}"))
}

async fn publish(gyre: &Gyre, channel: &str, data: Value) -> Value {
    let (status, body) = gyre.api("publish", json!({"channel": channel, "data": data})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("result").is_some(), "{body}");
    body["result"].clone()
}

#[tokio::test]
async fn history_reads_follow_limit_since_and_reverse() {
    let gyre = Gyre::start(json!({}));
    for n in 1..=5 {
        publish(&gyre, "chat:h", json!({"n": n})).await;
    }
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:h"}})).await;
    let offsets = |r: &Value| -> Vec<u64> {
        r["history"]["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect()
    };
    let all = c.command(json!({"history": {"channel": "chat:h", "limit": 10}})).await;
    assert_eq!(offsets(&all), vec![1, 2, 3, 4, 5]);
    assert_eq!(all["history"]["offset"], 5);
    let epoch = all["history"]["epoch"].as_str().unwrap().to_string();
    assert!(!epoch.is_empty());
    let rev = c.command(json!({"history": {"channel": "chat:h", "limit": 2, "reverse": true}})).await;
    assert_eq!(offsets(&rev), vec![5, 4]);
    let since =
        c.command(json!({"history": {"channel": "chat:h", "limit": 10, "since": {"offset": 2, "epoch": epoch}}})).await;
    assert_eq!(offsets(&since), vec![3, 4, 5]);
    let pos = c.command(json!({"history": {"channel": "chat:h"}})).await;
    assert_eq!(pos["history"], json!({"publications": [], "epoch": epoch, "offset": 5}));
    let wrong = c
        .command(json!({"history": {"channel": "chat:h", "limit": 10, "since": {"offset": 2, "epoch": "nope"}}}))
        .await;
    assert_eq!(code(&wrong), 112);
    c.command(json!({"subscribe": {"channel": "pub:nohist"}})).await;
    assert_eq!(code(&c.command(json!({"history": {"channel": "pub:nohist", "limit": 1}})).await), 108);
    // Not subscribed: chat allows history for subscribers only.
    assert_eq!(code(&c.command(json!({"history": {"channel": "chat:other", "limit": 1}})).await), 103);
    // history_remove keeps the position.
    gyre.api("history_remove", json!({"channel": "chat:h"})).await;
    let after = c.command(json!({"history": {"channel": "chat:h", "limit": 10}})).await;
    assert_eq!(after["history"], json!({"publications": [], "epoch": epoch, "offset": 5}));
    assert_eq!(publish(&gyre, "chat:h", json!(6)).await["offset"], 6);
}

#[tokio::test]
async fn history_size_trims_and_ttl_expires() {
    let gyre = Gyre::start(json!({"namespaces": [
        {"name": "ttl", "history_size": 3, "history_ttl": "1s", "allow_history_for_client": true}
    ]}));
    for n in 1..=5 {
        publish(&gyre, "ttl:x", json!(n)).await;
    }
    let (_, body) = gyre.api("history", json!({"channel": "ttl:x", "limit": -1})).await;
    let offsets: Vec<u64> =
        body["result"]["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    assert_eq!(offsets, vec![3, 4, 5]);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (_, body) = gyre.api("history", json!({"channel": "ttl:x", "limit": -1})).await;
    assert_eq!(body["result"]["publications"], json!([]), "history outlived its ttl: {body}");
    assert_eq!(body["result"]["offset"], 5, "the position outlives the data");
}

#[tokio::test]
async fn subscribe_is_positioned_and_recovers_exactly_the_missed_publications() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let r = c.command(json!({"subscribe": {"channel": "chat:rec", "recoverable": true}})).await;
    let s = &r["subscribe"];
    assert_eq!((s["recoverable"].clone(), s["positioned"].clone()), (json!(true), json!(true)), "{r}");
    let epoch = s["epoch"].as_str().unwrap().to_string();
    publish(&gyre, "chat:rec", json!(1)).await;
    publish(&gyre, "chat:rec", json!(2)).await;
    assert_eq!(c.next_push().await["pub"]["offset"], 1);
    assert_eq!(c.next_push().await["pub"]["offset"], 2);
    drop(c);
    for n in 3..=5 {
        publish(&gyre, "chat:rec", json!(n)).await;
    }
    let (mut c, _) = gyre.connected("42").await;
    let r = c
        .command(json!({"subscribe": {"channel": "chat:rec", "recover": true, "offset": 2, "epoch": epoch, "recoverable": true}}))
        .await;
    let s = &r["subscribe"];
    assert_eq!(s["recovered"], true, "{r}");
    assert_eq!(s["was_recovering"], true);
    assert_eq!(s["offset"], 2, "the reply carries the client's position");
    let recovered: Vec<Value> = s["publications"].as_array().unwrap().iter().map(|p| p["data"].clone()).collect();
    assert_eq!(recovered, vec![json!(3), json!(4), json!(5)]);
    // Live delivery continues right after.
    publish(&gyre, "chat:rec", json!(6)).await;
    assert_eq!(c.next_push().await["pub"]["offset"], 6);
}

#[tokio::test]
async fn recovery_fails_honestly_when_history_is_gone_or_epoch_changed() {
    let gyre = Gyre::start(json!({}));
    for n in 1..=5 {
        publish(&gyre, "small:x", json!(n)).await;
    }
    let (mut c, _) = gyre.connected("42").await;
    let r = c.command(json!({"subscribe": {"channel": "small:x", "recover": true, "offset": 1}})).await;
    let s = &r["subscribe"];
    assert_eq!(s["recovered"], Value::Null, "recovered must be false: {r}");
    assert_eq!(s["was_recovering"], true);
    assert_eq!(s["offset"], 5, "not recovered: the reply carries the stream top");
    assert!(s.get("publications").is_none());
    let r =
        c.command(json!({"subscribe": {"channel": "chat:e", "recover": true, "offset": 0, "epoch": "other"}})).await;
    assert_eq!(r["subscribe"]["recovered"], Value::Null, "{r}");
    // flag 2: the client asks for an error instead of recovered:false.
    let r = c
        .command(json!({"subscribe": {"channel": "small:y", "recover": true, "offset": 7, "epoch": "zz", "flag": 2}}))
        .await;
    assert_eq!(code(&r), 112);
    assert!(
        c.command(json!({"subscribe": {"channel": "small:y"}})).await.get("subscribe").is_some(),
        "112 leaves no subscription behind"
    );
}

#[tokio::test]
async fn positioning_and_recovery_are_opt_in_where_allowed() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let plain = c.command(json!({"subscribe": {"channel": "opt:a"}})).await;
    assert_eq!(plain["subscribe"], json!({}), "{plain}");
    let pos = c.command(json!({"subscribe": {"channel": "opt:b", "positioned": true}})).await;
    assert_eq!(pos["subscribe"]["positioned"], true, "{pos}");
    assert!(pos["subscribe"].get("recoverable").is_none());
    let rec = c.command(json!({"subscribe": {"channel": "opt:c", "recoverable": true}})).await;
    assert_eq!(rec["subscribe"]["recoverable"], true, "{rec}");
    // pub has no history: asking is ignored.
    let none = c.command(json!({"subscribe": {"channel": "pub:a", "recoverable": true, "positioned": true}})).await;
    assert_eq!(none["subscribe"], json!({}), "{none}");
}

#[tokio::test]
async fn recovery_under_concurrent_publishing_has_no_gap_or_duplicate() {
    let gyre = Gyre::start(json!({}));
    let (epoch, _) = {
        let (_, b) = gyre.api("history", json!({"channel": "chat:race"})).await;
        (b["result"]["epoch"].as_str().unwrap().to_string(), ())
    };
    // A publisher runs while the client subscribes with recovery from offset 0.
    let addr = gyre.api_url();
    let publisher = tokio::spawn(async move {
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        for n in 1..=300 {
            http.post(format!("{addr}/publish"))
                .header("X-API-Key", gyre_tests::API_KEY)
                .body(json!({"channel": "chat:race", "data": n}).to_string())
                .send()
                .await
                .unwrap();
        }
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (mut c, _) = gyre.connected("42").await;
    let r =
        c.command(json!({"subscribe": {"channel": "chat:race", "recover": true, "offset": 0, "epoch": epoch}})).await;
    assert_eq!(r["subscribe"]["recovered"], true, "{r}");
    let mut seen: Vec<u64> =
        r["subscribe"]["publications"].as_array().unwrap().iter().map(|p| p["offset"].as_u64().unwrap()).collect();
    publisher.await.unwrap();
    while seen.last().copied().unwrap_or(0) < 300 {
        seen.push(c.next_push().await["pub"]["offset"].as_u64().unwrap());
    }
    assert_eq!(seen, (1..=300).collect::<Vec<u64>>(), "gap or duplicate around the subscribe");
}

#[tokio::test]
async fn presence_and_stats_follow_subscriptions() {
    let gyre = Gyre::start(json!({}));
    let (mut a, ra) = gyre.connected("42").await;
    let (mut b, rb) = gyre.connected("43").await;
    for c in [&mut a, &mut b] {
        c.command(json!({"subscribe": {"channel": "chat:p"}})).await;
    }
    let p = a.command(json!({"presence": {"channel": "chat:p"}})).await;
    let map = p["presence"]["presence"].as_object().unwrap();
    assert_eq!(map.len(), 2, "{p}");
    let a_id = ra["connect"]["client"].as_str().unwrap();
    assert_eq!(map[a_id], json!({"user": "42", "client": a_id}));
    assert!(map.contains_key(rb["connect"]["client"].as_str().unwrap()));
    let stats = a.command(json!({"presence_stats": {"channel": "chat:p"}})).await;
    assert_eq!(stats["presence_stats"], json!({"num_clients": 2, "num_users": 2}));
    b.command(json!({"unsubscribe": {"channel": "chat:p"}})).await;
    let stats = a.command(json!({"presence_stats": {"channel": "chat:p"}})).await;
    assert_eq!(stats["presence_stats"], json!({"num_clients": 1, "num_users": 1}));
    let (_, api) = gyre.api("presence_stats", json!({"channel": "chat:p"})).await;
    assert_eq!(api["result"], json!({"num_clients": 1, "num_users": 1}));
    // pub has no presence; chat needs a subscription to read it.
    a.command(json!({"subscribe": {"channel": "pub:p"}})).await;
    assert_eq!(code(&a.command(json!({"presence": {"channel": "pub:p"}})).await), 108);
    assert_eq!(code(&b.command(json!({"presence": {"channel": "chat:p"}})).await), 103);
    drop(a);
    let mut gone = false;
    for _ in 0..100 {
        let (_, api) = gyre.api("presence_stats", json!({"channel": "chat:p"})).await;
        if api["result"]["num_clients"] == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(gone, "a closed connection stayed in presence");
}

#[tokio::test]
async fn join_and_leave_reach_subscribers_that_asked() {
    let gyre = Gyre::start(json!({}));
    let (mut watcher, rw) = gyre.connected("42").await;
    let (mut quiet, _) = gyre.connected("44").await;
    watcher.command(json!({"subscribe": {"channel": "chat:jl", "join_leave": true}})).await;
    let own = watcher.next_push().await;
    assert_eq!(own["join"]["info"]["client"], rw["connect"]["client"], "a subscriber receives its own join: {own}");
    quiet.command(json!({"subscribe": {"channel": "chat:jl"}})).await;
    let (mut b, rb) = gyre.connected("43").await;
    b.command(json!({"subscribe": {"channel": "chat:jl"}})).await;
    // The quiet subscriber joined first: the watcher sees it, then b.
    let j1 = watcher.next_push().await;
    assert_eq!(j1["join"]["info"]["user"], "44", "{j1}");
    let j2 = watcher.next_push().await;
    assert_eq!(j2["channel"], "chat:jl");
    assert_eq!(j2["join"]["info"], json!({"user": "43", "client": rb["connect"]["client"]}));
    b.command(json!({"unsubscribe": {"channel": "chat:jl"}})).await;
    let l = watcher.next_push().await;
    assert_eq!(l["leave"]["info"]["user"], "43", "{l}");
    assert!(
        quiet.quiet_for(Duration::from_millis(300)).await.is_none(),
        "join/leave reached a subscriber that did not ask"
    );
}

#[tokio::test]
async fn subscription_tokens_grant_private_channels() {
    let gyre = Gyre::start(json!({"client_expired_sub_close_delay": "200ms"}));
    let (mut c, reply) = gyre.connected("42").await;
    let client = reply["connect"]["client"].as_str().unwrap().to_string();
    // No token: private namespace is closed; $-channels always need one.
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "private:a"}})).await), 103);
    let t = mint_subscription_token(SECRET, "42", "private:a", Some(60), json!({"info": {"role": "x"}})).unwrap();
    let r = c.command(json!({"subscribe": {"channel": "private:a", "token": t}})).await;
    assert_eq!(r["subscribe"]["expires"], true, "{r}");
    publish(&gyre, "private:a", json!("secret")).await;
    assert_eq!(c.next_push().await["pub"]["data"], "secret");
    let p = c.command(json!({"publish": {"channel": "private:a", "data": 1}})).await;
    assert_eq!(code(&p), 103, "a token grants subscribe, not publish");
    // Expired → 109; bad signature → 103; bound to another client → 3500.
    let expired = mint_subscription_token(SECRET, "42", "private:b", Some(-5), json!({})).unwrap();
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "private:b", "token": expired}})).await), 109);
    let forged = mint_subscription_token("wrong", "42", "private:b", Some(60), json!({})).unwrap();
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "private:b", "token": forged}})).await), 103);
    let mine = mint_subscription_token(SECRET, "42", "$chat:own", Some(60), json!({"client": client})).unwrap();
    assert!(c.command(json!({"subscribe": {"channel": "$chat:own", "token": mine}})).await.get("subscribe").is_some());
    let other_channel = mint_subscription_token(SECRET, "42", "private:zzz", Some(60), json!({})).unwrap();
    c.send(json!({"subscribe": {"channel": "private:c", "token": other_channel}})).await;
    assert_eq!(c.closed().await.code, 3500);
}

#[tokio::test]
async fn subscription_refresh_and_expiry() {
    let gyre = Gyre::start(json!({"client_expired_sub_close_delay": "200ms"}));
    let (mut c, _) = gyre.connected("42").await;
    let short = mint_subscription_token(SECRET, "42", "private:r", Some(1), json!({})).unwrap();
    c.command(json!({"subscribe": {"channel": "private:r", "token": short}})).await;
    let fresh = mint_subscription_token(SECRET, "42", "private:r", Some(60), json!({})).unwrap();
    let r = c.command(json!({"sub_refresh": {"channel": "private:r", "token": fresh}})).await;
    assert_eq!(r["sub_refresh"]["expires"], true, "{r}");
    assert!(r["sub_refresh"]["ttl"].as_u64().unwrap() > 50);
    // Another short one that is not refreshed: unsubscribed with 2501 (the SDK resubscribes).
    let short = mint_subscription_token(SECRET, "42", "private:s", Some(1), json!({})).unwrap();
    c.command(json!({"subscribe": {"channel": "private:s", "token": short}})).await;
    let push = c.next_push().await;
    assert_eq!(push["channel"], "private:s");
    assert_eq!(push["unsubscribe"], json!({"code": 2501, "reason": "subscription expired"}));
    // private:r is still live.
    publish(&gyre, "private:r", json!("still")).await;
    assert_eq!(c.next_push().await["pub"]["data"], "still");
    let r = c.command(json!({"sub_refresh": {"channel": "private:none", "token": "x"}})).await;
    assert_eq!(code(&r), 103);
}

#[tokio::test]
async fn server_api_acts_on_live_connections() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    let (mut other, _) = gyre.connected("43").await;
    c.command(json!({"subscribe": {"channel": "chat:srv"}})).await;
    // subscribe: a subscribe push, then publications.
    gyre.api("subscribe", json!({"user": "42", "channel": "chat:added"})).await;
    let push = c.next_push().await;
    assert_eq!(push["channel"], "chat:added");
    assert!(push["subscribe"].is_object(), "{push}");
    publish(&gyre, "chat:added", json!("hi")).await;
    assert_eq!(c.next_push().await["pub"]["data"], "hi");
    // unsubscribe: push with 2000.
    gyre.api("unsubscribe", json!({"user": "42", "channel": "chat:srv"})).await;
    let push = c.next_push().await;
    assert_eq!(push, json!({"channel": "chat:srv", "unsubscribe": {"code": 2000, "reason": "server unsubscribe"}}));
    // disconnect: custom code, others untouched.
    gyre.api("disconnect", json!({"user": "42", "disconnect": {"code": 4501, "reason": "bye"}})).await;
    let closed = c.closed().await;
    assert_eq!((closed.code, closed.reason.as_str()), (4501, "bye"));
    assert_eq!(other.command(json!({"publish": {"channel": "pub:x", "data": 1}})).await["publish"], json!({}));
    // Default disconnect code is 3503.
    gyre.api("disconnect", json!({"user": "43"})).await;
    assert_eq!(other.closed().await.code, 3503);
}

#[tokio::test]
async fn api_refresh_can_expire_a_connection() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    gyre.api("refresh", json!({"user": "42", "expired": true})).await;
    assert_eq!(c.closed().await.code, 3005);
}

#[tokio::test]
async fn batch_runs_commands_in_order_and_in_parallel() {
    let gyre = Gyre::start(json!({}));
    for parallel in [false, true] {
        let (_, body) = gyre
            .api(
                "batch",
                json!({"parallel": parallel, "commands": [
                    {"publish": {"channel": "chat:b", "data": 1}},
                    {"publish": {"channel": "nope:b", "data": 1}},
                    {"info": {}}
                ]}),
            )
            .await;
        let replies = body["replies"].as_array().unwrap_or_else(|| panic!("{body}"));
        assert_eq!(replies.len(), 3);
        assert!(replies[0]["publish"]["offset"].is_u64(), "{body}");
        assert_eq!(replies[1]["error"]["code"], 102);
        assert!(replies[2]["info"]["nodes"].is_array());
    }
}

#[tokio::test]
async fn idempotent_publish_stores_once() {
    let gyre = Gyre::start(json!({}));
    let first = gyre.api("publish", json!({"channel": "chat:i", "data": 1, "idempotency_key": "k1"})).await.1;
    let again = gyre.api("publish", json!({"channel": "chat:i", "data": 1, "idempotency_key": "k1"})).await.1;
    assert_eq!(first, again);
    let (_, h) = gyre.api("history", json!({"channel": "chat:i", "limit": -1})).await;
    assert_eq!(h["result"]["publications"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rpc_and_send_are_not_available_without_a_backend() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    assert_eq!(code(&c.command(json!({"rpc": {"method": "echo", "data": {}}})).await), 108);
    c.send_text(&json!({"send": {"data": {"a": 1}}}).to_string()).await;
    assert_eq!(c.closed().await.code, 3508);
    let (_, body) = gyre.api("rpc", json!({"method": "x"})).await;
    assert_eq!(body["error"]["code"], 104);
}

#[tokio::test]
async fn server_side_subscriptions_recover_through_connect() {
    let gyre = Gyre::start(json!({}));
    let t = token("42", json!({"channels": ["chat:ss"]}));
    let mut c = gyre.ws().await;
    let r = c.command(json!({"connect": {"token": t}})).await;
    let sub = &r["connect"]["subs"]["chat:ss"];
    assert_eq!(sub["recoverable"], true, "{r}");
    let epoch = sub["epoch"].as_str().unwrap().to_string();
    publish(&gyre, "chat:ss", json!(1)).await;
    assert_eq!(c.next_push().await["pub"]["offset"], 1);
    drop(c);
    publish(&gyre, "chat:ss", json!(2)).await;
    let mut c = gyre.ws().await;
    let r = c
        .command(json!({"connect": {"token": t, "subs": {"chat:ss": {"recover": true, "offset": 1, "epoch": epoch}}}}))
        .await;
    let sub = &r["connect"]["subs"]["chat:ss"];
    assert_eq!(sub["recovered"], true, "{r}");
    assert_eq!(sub["publications"][0]["data"], 2);
}

#[tokio::test]
async fn personal_channel_subscription_on_connect() {
    let gyre = Gyre::start(json!({"user_subscribe_to_personal": true, "user_personal_channel_namespace": "personal"}));
    let (mut c, r) = gyre.connected("42").await;
    assert!(r["connect"]["subs"].get("personal:#42").is_some(), "{r}");
    publish(&gyre, "personal:#42", json!("for you")).await;
    assert_eq!(c.next_push().await["pub"]["data"], "for you");
}

#[tokio::test]
async fn connection_token_info_becomes_client_info() {
    let gyre = Gyre::start(json!({}));
    let mut a = gyre.ws().await;
    a.command(json!({"connect": {"token": token("42", json!({"info": {"name": "Alice"}}))}})).await;
    a.command(json!({"subscribe": {"channel": "chat:info"}})).await;
    a.command(json!({"publish": {"channel": "chat:info", "data": 1}})).await;
    let push = a.next_push().await;
    assert_eq!(push["pub"]["info"]["conn_info"], json!({"name": "Alice"}), "{push}");
    let p = a.command(json!({"presence": {"channel": "chat:info"}})).await;
    let entry = p["presence"]["presence"].as_object().unwrap().values().next().unwrap().clone();
    assert_eq!(entry["conn_info"], json!({"name": "Alice"}));
}

#[tokio::test]
async fn anonymous_clients_get_only_what_anonymous_options_allow() {
    let gyre = Gyre::start(json!({
        "allow_anonymous_connect_without_token": true,
        "namespaces": [
            {"name": "open", "allow_subscribe_for_client": true, "allow_subscribe_for_anonymous": true,
             "allow_publish_for_client": true, "allow_publish_for_anonymous": true,
             "presence": true, "allow_presence_for_client": true, "allow_presence_for_anonymous": true},
            {"name": "members", "allow_subscribe_for_client": true, "allow_publish_for_client": true,
             "presence": true, "allow_presence_for_client": true}
        ]
    }));
    let mut anon = gyre.ws().await;
    let r = anon.command(json!({"connect": {}})).await;
    assert!(r["connect"]["client"].is_string(), "{r}");
    assert!(anon.command(json!({"subscribe": {"channel": "open:a"}})).await.get("subscribe").is_some());
    assert_eq!(anon.command(json!({"publish": {"channel": "open:a", "data": 1}})).await["publish"], json!({}));
    let p = anon.command(json!({"presence": {"channel": "open:a"}})).await;
    assert_eq!(p["presence"]["presence"].as_object().unwrap().values().next().unwrap()["user"], "");
    assert_eq!(code(&anon.command(json!({"subscribe": {"channel": "members:a"}})).await), 103);
    assert_eq!(code(&anon.command(json!({"publish": {"channel": "members:a", "data": 1}})).await), 103);
    assert_eq!(code(&anon.command(json!({"presence": {"channel": "members:a"}})).await), 103);
    // A user with a token gets the client permissions.
    let (mut user, _) = gyre.connected("42").await;
    assert!(user.command(json!({"subscribe": {"channel": "members:a"}})).await.get("subscribe").is_some());
}

#[tokio::test]
async fn publications_carry_tags_and_skip_history_is_live_only() {
    let gyre = Gyre::start(json!({}));
    let (mut c, _) = gyre.connected("42").await;
    c.command(json!({"subscribe": {"channel": "chat:t"}})).await;
    let (_, body) =
        gyre.api("publish", json!({"channel": "chat:t", "data": 1, "tags": {"kind": "x"}, "skip_history": true})).await;
    assert_eq!(body, json!({"result": {}}), "skip_history publishes without a position");
    let push = c.next_push().await;
    assert_eq!(push["pub"]["tags"], json!({"kind": "x"}));
    let (_, h) = gyre.api("history", json!({"channel": "chat:t", "limit": -1})).await;
    assert_eq!(h["result"]["publications"], json!([]));
}

#[tokio::test]
async fn channel_regex_decides_valid_names() {
    let gyre = Gyre::start(json!({"namespaces": [
        {"name": "rx", "allow_subscribe_for_client": true, "channel_regex": "^[a-z0-9ü]+$"}
    ]}));
    let (mut c, _) = gyre.connected("42").await;
    assert!(c.command(json!({"subscribe": {"channel": "rx:abc1"}})).await.get("subscribe").is_some());
    assert!(
        c.command(json!({"subscribe": {"channel": "rx:grün"}})).await.get("subscribe").is_some(),
        "the regex admits non-ASCII"
    );
    assert_eq!(code(&c.command(json!({"subscribe": {"channel": "rx:ABC"}})).await), 107);
}
