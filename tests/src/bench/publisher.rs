//! Publishes at a fixed rate through the HTTP API, round robin over channels.

use std::time::{Duration, Instant};

use super::clients::now_us;
use super::{Options, Protocol};

/// Runs for `o.duration` seconds; returns how many publications the server accepted.
pub async fn run(o: &Options) -> anyhow::Result<u64> {
    if o.protocol == Protocol::NatsWs {
        return run_nats(o).await;
    }
    if o.protocol == Protocol::Pusher {
        return run_pusher(o).await;
    }
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(64).build()?;
    let url = format!("{}/publish", o.api);
    let total = o.rate * o.duration;
    let padding = "x".repeat(o.payload.saturating_sub(24));
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for i in 0..total {
        // Keep the schedule: request i leaves at started + i * interval.
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let body = format!(
            r#"{{"channel":"{}{}","data":{{"t":{},"p":"{}"}}}}"#,
            o.channel_prefix,
            i % o.channels.max(1) as u64,
            now_us(),
            padding
        );
        let req = http.post(&url).header("X-API-Key", &o.api_key).body(body);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let ok = match req.send().await {
                Ok(r) => r.status().is_success() && !r.text().await.unwrap_or_default().contains("\"error\""),
                Err(_) => false,
            };
            let _ = done.send(ok);
        });
    }
    drop(done_tx);
    let mut accepted = 0;
    while let Some(ok) = done_rx.recv().await {
        accepted += u64::from(ok);
    }
    Ok(accepted)
}

/// The NATS peer's backend publishes with a NATS client (what a NATS user would do).
async fn run_nats(o: &Options) -> anyhow::Result<u64> {
    let client = async_nats::connect(&o.nats).await?;
    let total = o.rate * o.duration;
    let padding = "x".repeat(o.payload.saturating_sub(24));
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let started = Instant::now();
    let mut accepted = 0;
    for i in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let subject = format!("{}{}", o.channel_prefix, i % o.channels.max(1) as u64);
        let body = format!(r#"{{"t":{},"p":"{}"}}"#, now_us(), padding);
        if client.publish(subject, body.into()).await.is_ok() {
            accepted += 1;
        }
    }
    client.flush().await?;
    Ok(accepted)
}

/// Pusher HTTP API: `POST /apps/<id>/events`, signed with the app secret (auth version 1.0).
async fn run_pusher(o: &Options) -> anyhow::Result<u64> {
    use hmac::{Hmac, Mac};
    use md5::{Digest, Md5};
    let http = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(64).build()?;
    let path = format!("/apps/{}/events", o.pusher_app_id);
    let base = o.api.trim_end_matches('/').trim_end_matches("/api").to_string();
    let total = o.rate * o.duration;
    let padding = "x".repeat(o.payload.saturating_sub(24));
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for i in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let data = format!(r#"{{"t":{},"p":"{}"}}"#, now_us(), padding);
        let channel = format!("{}{}", o.channel_prefix, i % o.channels.max(1) as u64);
        let body = serde_json::json!({"name": "pub", "channels": [channel], "data": data}).to_string();
        let body_md5 = hex::encode(Md5::digest(body.as_bytes()));
        let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let query = format!("auth_key={}&auth_timestamp={ts}&auth_version=1.0&body_md5={body_md5}", o.pusher_key);
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(o.pusher_secret.as_bytes())?;
        mac.update(format!("POST\n{path}\n{query}").as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        let req = http
            .post(format!("{base}{path}?{query}&auth_signature={signature}"))
            .header("content-type", "application/json")
            .body(body);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let ok = matches!(req.send().await, Ok(r) if r.status().is_success());
            let _ = done.send(ok);
        });
    }
    drop(done_tx);
    let mut accepted = 0;
    while let Some(ok) = done_rx.recv().await {
        accepted += u64::from(ok);
    }
    Ok(accepted)
}
