//! Micro-benchmarks of the hot paths, so regressions are visible: protocol decode/encode (JSON
//! and Protobuf),
//! hub fan-out to 10k subscribers, JWT verification.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use gyre_edge::connection::{Batch, ClientHandle, Outbox};
use gyre_edge::node::hub::{Hub, Subscriber};
use gyre_edge::protocol::{json, proto, Encoding, Payload, Publication, Push, PushBody, Reply, StreamPosition};
use prost::Message as _;

fn protocol(c: &mut Criterion) {
    let frame = r#"{"id":1,"connect":{"token":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.x","name":"js"}}
{"id":2,"subscribe":{"channel":"chat:index","recoverable":true,"flag":1}}"#;
    c.bench_function("decode connect+subscribe frame", |b| b.iter(|| json::decode_commands(frame).unwrap()));
    let pb_frame: Vec<u8> = [
        proto::Command {
            id: 1,
            connect: Some(proto::ConnectRequest {
                token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI0MiJ9.x".into(),
                name: "js".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        proto::Command {
            id: 2,
            subscribe: Some(proto::SubscribeRequest {
                channel: "chat:index".into(),
                recoverable: true,
                flag: 1,
                ..Default::default()
            }),
            ..Default::default()
        },
    ]
    .iter()
    .flat_map(|c| c.encode_length_delimited_to_vec())
    .collect();
    c.bench_function("decode connect+subscribe frame (protobuf)", |b| {
        b.iter(|| Encoding::Protobuf.decode_commands(&pb_frame).unwrap())
    });
    let publication = Arc::new(Publication {
        data: Payload::from_json(r#"{"text":"hello world","n":12345}"#).unwrap(),
        info: None,
        offset: 42,
        tags: Default::default(),
        delta: false,
        prev_offset: 41,
        use_delta: false,
    });
    for encoding in [Encoding::Json, Encoding::Protobuf] {
        c.bench_function(&format!("encode publication push ({})", encoding.name()), |b| {
            b.iter(|| {
                encoding.encode_reply(&Reply::push(Push {
                    channel: "chat:index".into(),
                    body: PushBody::Publication(publication.clone()),
                }))
            })
        });
    }
}

fn fan_out(c: &mut Criterion) {
    fan_out_case(c, "hub fan-out to 10k subscribers", false);
    fan_out_case(c, "hub fan-out to 10k delta subscribers (2 KB documents)", true);
}

/// One publication to 10k local subscribers; with `delta` they negotiated fossil deltas and
/// the publications alternate between two similar 2 KB documents.
fn fan_out_case(c: &mut Criterion, name: &str, delta: bool) {
    let hub = Hub::default();
    let mut outboxes = Vec::new();
    for i in 0..10_000 {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let client =
            Arc::new(ClientHandle::new(Arc::from(format!("c{i}")), Arc::from("u"), Encoding::Json, outbox.clone()));
        hub.add_subscriber("big", Subscriber::live(client, false, false).with_delta(delta));
        outboxes.push(outbox);
    }
    let publication = |text: String| {
        Arc::new(Publication {
            data: Payload::from_json(&text).unwrap(),
            info: None,
            offset: 0,
            tags: Default::default(),
            delta: false,
            prev_offset: 0,
            use_delta: delta,
        })
    };
    let publications = if delta {
        let doc =
            |v: u32| serde_json::json!({"v": v, "cells": (0..150).map(|i| format!("cell-{i}")).collect::<Vec<_>>()});
        [publication(doc(1).to_string()), publication(doc(2).to_string())]
    } else {
        let small = r#"{"t":1,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#.to_string();
        [publication(small.clone()), publication(small)]
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut n = 0usize;
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let start = Instant::now();
                hub.broadcast_publication("big", publications[n % 2].clone(), &StreamPosition::default());
                total += start.elapsed();
                // Drain outside the timing so queues do not grow.
                rt.block_on(async {
                    for o in &outboxes {
                        if let Batch::Close(d) = o.next_batch().await {
                            panic!("closed: {d}");
                        }
                    }
                });
            }
            total
        })
    });
}

fn jwt(c: &mut Criterion) {
    let config = gyre_edge::config::Config { token_hmac_secret_key: "secret".into(), ..Default::default() };
    let verifier = gyre_edge::auth::TokenVerifier::new(&config);
    let token = gyre_edge::auth::mint_connection_token("secret", "42", Some(3600), serde_json::json!({})).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    c.bench_function("verify HS256 connection token", |b| {
        b.iter(|| rt.block_on(verifier.verify_connect(&token)).unwrap())
    });
}

criterion_group!(benches, protocol, fan_out, jwt);
criterion_main!(benches);
