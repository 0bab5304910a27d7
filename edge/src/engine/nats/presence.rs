//! Presence in a JetStream stream used as a key/value store: one subject per (channel,
//! client) keeping its last message, with a max age that the owning node keeps refreshing, so
//! a dead node's clients disappear on their own. (A plain stream rather than the KV API so it
//! works with every JetStream server version the engine supports.)

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use parking_lot::Mutex;

use super::subjects::Layout;
use super::{unavailable, NatsSettings};
use crate::engine::EngineError;
use crate::protocol::ClientInfo;

/// Most presence entries read for one channel.
const MAX_ENTRIES: usize = 100_000;

pub struct Presence {
    js: jetstream::Context,
    layout: Layout,
    stream: tokio::sync::OnceCell<jetstream::stream::Stream>,
    /// What this node put, re-put periodically to keep it alive: key -> value.
    local: Mutex<HashMap<String, bytes::Bytes>>,
}

impl Presence {
    pub fn new(js: jetstream::Context, layout: Layout) -> Self {
        Self { js, layout, stream: tokio::sync::OnceCell::new(), local: Mutex::new(HashMap::new()) }
    }

    /// Creates the presence stream (idempotent).
    pub async fn ensure(&self, settings: &NatsSettings) -> Result<(), EngineError> {
        let config = jetstream::stream::Config {
            name: self.layout.presence_bucket(),
            subjects: vec![self.layout.presence_subjects()],
            max_messages_per_subject: 1,
            max_age: settings.presence_ttl,
            storage: settings.storage,
            num_replicas: settings.replicas,
            ..Default::default()
        };
        let info = self.js.create_or_update_stream(config).await.map_err(|e| unavailable("presence stream", e))?;
        let stream = self.js.get_stream(&info.config.name).await.map_err(|e| unavailable("presence stream", e))?;
        let _ = self.stream.set(stream);
        Ok(())
    }

    fn stream(&self) -> Result<&jetstream::stream::Stream, EngineError> {
        self.stream.get().ok_or_else(|| EngineError::Unavailable("nats: presence stream not ready".into()))
    }

    async fn put(&self, subject: String, value: bytes::Bytes) -> Result<(), EngineError> {
        self.js
            .publish(subject, value)
            .await
            .map_err(|e| unavailable("presence put", e))?
            .await
            .map_err(|e| unavailable("presence put", e))?;
        Ok(())
    }

    pub async fn add(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        let subject = self.layout.presence_subject(channel, &info.client);
        let value: bytes::Bytes = serde_json::to_vec(&info).map_err(|e| unavailable("encode", e))?.into();
        self.local.lock().insert(subject.clone(), value.clone());
        self.put(subject, value).await
    }

    pub async fn remove(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        let subject = self.layout.presence_subject(channel, client);
        self.local.lock().remove(&subject);
        self.stream()?.purge().filter(subject).await.map_err(|e| unavailable("presence delete", e))?;
        Ok(())
    }

    /// Re-puts this node's entries so their TTL does not run out.
    pub async fn refresh(&self) {
        let entries: Vec<(String, bytes::Bytes)> =
            self.local.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (subject, value) in entries {
            if let Err(err) = self.put(subject, value).await {
                tracing::warn!(%err, "presence refresh failed");
                return;
            }
        }
    }

    /// The live entries of a channel (the last value of each key, deleted ones skipped).
    pub async fn list(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        let filter = self.layout.presence_channel_filter(channel);
        let consumer = self
            .stream()?
            .create_consumer(consumer::pull::Config {
                filter_subject: filter,
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ack_policy: consumer::AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("presence read", e))?;
        let mut consumer = consumer;
        let pending = consumer.info().await.map_err(|e| unavailable("presence read", e))?.num_pending as usize;
        let mut out = HashMap::new();
        if pending == 0 {
            return Ok(out);
        }
        let mut batch = consumer
            .fetch()
            .max_messages(pending.min(MAX_ENTRIES))
            .expires(Duration::from_secs(2))
            .messages()
            .await
            .map_err(|e| unavailable("presence read", e))?;
        while let Some(msg) = batch.next().await {
            let msg = msg.map_err(|e| unavailable("presence read", e))?;
            if msg.payload.is_empty() {
                continue;
            }
            if let Ok(info) = serde_json::from_slice::<ClientInfo>(&msg.payload) {
                out.insert(info.client.clone(), info);
            }
        }
        Ok(out)
    }
}
