//! Publishes at a fixed rate, round robin over channels, through the server's own backend
//! path: the HTTP API (Centrifugo, Socket.IO peer), a NATS client, or the signed Pusher API.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use super::clients::now_us;
use super::{Options, Protocol};

/// One publication's request; resolves to whether the server accepted it.
type Request = Pin<Box<dyn Future<Output = bool> + std::marker::Send + 'static>>;

/// Runs for `o.duration` seconds; returns how many publications the server accepted.
pub async fn run(o: &Options) -> anyhow::Result<u64> {
    match o.protocol {
        Protocol::NatsWs => {
            let client = async_nats::connect(&o.nats).await?;
            let accepted = paced(o, |channel, data| {
                let client = client.clone();
                Box::pin(async move { client.publish(channel, data.into()).await.is_ok() })
            })
            .await;
            client.flush().await?;
            Ok(accepted)
        }
        Protocol::Pusher => {
            let http = http_client()?;
            Ok(paced(o, |channel, data| pusher_request(o, &http, &channel, data)).await)
        }
        Protocol::Centrifugo | Protocol::CentrifugoProtobuf | Protocol::Socketio => {
            let http = http_client()?;
            let url = format!("{}/publish", o.api);
            Ok(paced(o, |channel, data| {
                let body = format!(r#"{{"channel":"{channel}","data":{data}}}"#);
                let req = http.post(&url).header("X-API-Key", &o.api_key).body(body);
                Box::pin(async move {
                    match req.send().await {
                        Ok(r) => r.status().is_success() && !r.text().await.unwrap_or_default().contains("\"error\""),
                        Err(_) => false,
                    }
                })
            })
            .await)
        }
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder().no_proxy().pool_max_idle_per_host(64).build()?)
}

/// Keeps the schedule (request i leaves at start + i / rate) and counts accepted requests;
/// requests run concurrently so a slow answer does not delay the next publication.
async fn paced(o: &Options, mut publish: impl FnMut(String, String) -> Request) -> u64 {
    let total = o.rate * o.duration;
    let padding = "x".repeat(o.payload.saturating_sub(24));
    let interval = Duration::from_secs_f64(1.0 / o.rate.max(1) as f64);
    let started = Instant::now();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<bool>();
    for i in 0..total {
        tokio::time::sleep_until((started + interval.mul_f64(i as f64)).into()).await;
        let channel = format!("{}{}", o.channel_prefix, i % o.channels.max(1) as u64);
        let data = format!(r#"{{"t":{},"p":"{}"}}"#, now_us(), padding);
        let request = publish(channel, data);
        let done = done_tx.clone();
        tokio::spawn(async move {
            let _ = done.send(request.await);
        });
    }
    drop(done_tx);
    let mut accepted = 0;
    while let Some(ok) = done_rx.recv().await {
        accepted += u64::from(ok);
    }
    accepted
}

/// Pusher HTTP API: `POST /apps/<id>/events`, signed with the app secret (auth version 1.0).
fn pusher_request(o: &Options, http: &reqwest::Client, channel: &str, data: String) -> Request {
    use hmac::{Hmac, Mac};
    use md5::{Digest, Md5};
    let path = format!("/apps/{}/events", o.pusher_app_id);
    let base = o.api.trim_end_matches('/').trim_end_matches("/api");
    let body = serde_json::json!({"name": "pub", "channels": [channel], "data": data}).to_string();
    let body_md5 = hex::encode(Md5::digest(body.as_bytes()));
    let ts = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let query = format!("auth_key={}&auth_timestamp={ts}&auth_version=1.0&body_md5={body_md5}", o.pusher_key);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(o.pusher_secret.as_bytes()) else {
        return Box::pin(async { false });
    };
    mac.update(format!("POST\n{path}\n{query}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let req = http
        .post(format!("{base}{path}?{query}&auth_signature={signature}"))
        .header("content-type", "application/json")
        .body(body);
    Box::pin(async move { matches!(req.send().await, Ok(r) if r.status().is_success()) })
}
