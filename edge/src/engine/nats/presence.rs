//! Presence in a JetStream stream used as a key/value store: one subject per (channel,
//! client) keeping its last message, with a max age that the owning node keeps refreshing, so
//! a dead node's clients disappear on their own. (A plain stream rather than the KV API so it
//! works with every JetStream server version the engine supports.)
//!
//! Reads never create a consumer: each node keeps a view of the whole presence stream, fed by
//! one ordered consumer (last message per subject, then live). A read asks the stream for its
//! last sequence (one API call) and waits until the view has applied it, so every put or
//! removal acknowledged before the read is in the answer. Removal writes an empty message
//! (a purge would be invisible to consumers); it ages out like any entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use parking_lot::{Mutex, RwLock};

use super::subjects::{token, Layout};
use super::{unavailable, NatsSettings};
use crate::engine::EngineError;
use crate::protocol::ClientInfo;

/// How long a read waits for the view to catch up with the stream before it fails (and the
/// view's consumer is re-created).
const SYNC_WAIT: Duration = Duration::from_millis(1000);
/// Puts in flight at once while refreshing this node's entries.
const REFRESH_WINDOW: usize = 256;

/// A channel's entries in the view: client id -> (info, when it was last put).
type ChannelView = HashMap<String, (ClientInfo, Instant)>;

pub struct Presence {
    js: jetstream::Context,
    layout: Layout,
    ttl: Duration,
    stream: tokio::sync::OnceCell<jetstream::stream::Stream>,
    /// What this node put, re-put periodically to keep it alive: key -> value.
    local: Mutex<HashMap<String, bytes::Bytes>>,
    /// The presence stream as replayed by this node, by channel token.
    view: RwLock<HashMap<String, ChannelView>>,
    /// The last stream sequence the view has applied (readers wait on it).
    applied: tokio::sync::watch::Sender<u64>,
    /// Wakes the view task to re-create its consumer.
    resync: tokio::sync::Notify,
}

impl Presence {
    pub fn new(js: jetstream::Context, layout: Layout, ttl: Duration) -> Self {
        Self {
            js,
            layout,
            ttl,
            stream: tokio::sync::OnceCell::new(),
            local: Mutex::new(HashMap::new()),
            view: RwLock::new(HashMap::new()),
            applied: tokio::sync::watch::channel(0).0,
            resync: tokio::sync::Notify::new(),
        }
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
        self.put(subject, bytes::Bytes::new()).await
    }

    /// Re-puts this node's entries so their TTL does not run out: many puts in flight at once,
    /// so tens of thousands of entries take a few round trips, not one each. Also drops view
    /// entries that aged out.
    pub async fn refresh(&self) {
        let entries: Vec<(String, bytes::Bytes)> =
            self.local.lock().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut puts = futures_util::stream::iter(entries)
            .map(|(subject, value)| self.put(subject, value))
            .buffer_unordered(REFRESH_WINDOW);
        let mut failed = 0usize;
        while let Some(r) = puts.next().await {
            if let Err(err) = r {
                if failed == 0 {
                    tracing::warn!(%err, "presence refresh failed");
                }
                failed += 1;
            }
        }
        let ttl = self.ttl;
        self.view.write().retain(|_, entries| {
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            !entries.is_empty()
        });
    }

    /// Keeps the view in step with the stream for as long as the engine runs: one ordered
    /// consumer, re-created when it fails or a read finds the view behind.
    pub async fn run_view(self: Arc<Self>) {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.consume().await {
                Ok(()) => delay = Duration::from_millis(100),
                Err(err) => {
                    tracing::warn!(%err, "presence view consumer failed; re-creating");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Replays the stream (last message per subject, then live) into the view until the
    /// consumer fails or a resync is asked for.
    async fn consume(&self) -> Result<(), EngineError> {
        let stream = self.stream()?;
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.layout.presence_subjects(),
                deliver_policy: consumer::DeliverPolicy::LastPerSubject,
                ..Default::default()
            })
            .await
            .map_err(|e| unavailable("presence view", e))?;
        let mut messages = consumer.messages().await.map_err(|e| unavailable("presence view", e))?;
        loop {
            tokio::select! {
                msg = messages.next() => match msg {
                    Some(Ok(msg)) => self.apply(&msg),
                    Some(Err(err)) => return Err(unavailable("presence view", err)),
                    None => return Err(EngineError::Unavailable("nats: presence view ended".into())),
                },
                _ = self.resync.notified() => return Ok(()),
            }
        }
    }

    /// One stream message into the view: an entry, or its removal when empty.
    fn apply(&self, msg: &jetstream::Message) {
        let Ok(info) = msg.info() else { return };
        let seq = info.stream_sequence;
        let now_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i128);
        let age_ns = now_ns.saturating_sub(info.published.unix_timestamp_nanos()).max(0);
        let age = Duration::from_nanos(u64::try_from(age_ns).unwrap_or(u64::MAX));
        if let Some((channel, client)) = self.layout.presence_key(msg.subject.as_str()) {
            let mut view = self.view.write();
            if msg.payload.is_empty() || age >= self.ttl {
                if let Some(entries) = view.get_mut(channel) {
                    entries.remove(client);
                    if entries.is_empty() {
                        view.remove(channel);
                    }
                }
            } else if let Ok(entry) = serde_json::from_slice::<ClientInfo>(&msg.payload) {
                let at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
                view.entry(channel.to_string()).or_default().insert(client.to_string(), (entry, at));
            }
        }
        self.applied.send_if_modified(|last| {
            let moved = seq > *last;
            if moved {
                *last = seq;
            }
            moved
        });
    }

    /// Waits until the view holds everything the stream had when this was called.
    async fn sync(&self) -> Result<(), EngineError> {
        let mut stream = self.stream()?.clone();
        let state = stream.info().await.map_err(|e| unavailable("presence read", e))?.state.clone();
        // Nothing stored (everything aged out): an empty view is current.
        if state.messages == 0 {
            return Ok(());
        }
        let mut applied = self.applied.subscribe();
        let caught_up = tokio::time::timeout(SYNC_WAIT, applied.wait_for(|seq| *seq >= state.last_sequence)).await;
        match caught_up {
            Ok(Ok(_)) => Ok(()),
            _ => {
                self.resync.notify_one();
                Err(EngineError::Unavailable(format!(
                    "nats: presence view is behind the stream ({} < {})",
                    *self.applied.borrow(),
                    state.last_sequence
                )))
            }
        }
    }

    /// The live entries of a channel.
    pub async fn list(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        self.sync().await?;
        let ttl = self.ttl;
        let view = self.view.read();
        let Some(entries) = view.get(&token(channel)) else { return Ok(HashMap::new()) };
        Ok(entries
            .iter()
            .filter(|(_, (_, at))| at.elapsed() < ttl)
            .map(|(client, (info, _))| (client.clone(), info.clone()))
            .collect())
    }

    /// `(clients, distinct users)` of a channel, counted in the view without copying it.
    pub async fn stats(&self, channel: &str) -> Result<(u32, u32), EngineError> {
        self.sync().await?;
        let ttl = self.ttl;
        let view = self.view.read();
        let Some(entries) = view.get(&token(channel)) else { return Ok((0, 0)) };
        let live = || entries.values().filter(|(_, at)| at.elapsed() < ttl);
        let users: std::collections::HashSet<&str> = live().map(|(i, _)| i.user.as_str()).collect();
        let clients = u32::try_from(live().count()).unwrap_or(u32::MAX);
        Ok((clients, u32::try_from(users.len()).unwrap_or(u32::MAX)))
    }
}
