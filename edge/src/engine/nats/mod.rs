//! The NATS JetStream engine: many edge nodes share publications, history, presence and
//! server-side actions through one NATS (cluster).
//!
//! Layout (prefix `gyre`, see [`subjects`]):
//! - namespaces with history: stream `gyre_H_<ns>` captures `gyre.h.<ns>.<channel>`, keeps
//!   `history_size` messages per channel for `history_ttl`, and re-publishes every stored
//!   message to `gyre.l.<ns>.<channel>`; the stream sequence is the publication's offset and
//!   each message carries the previous offset of its channel (`Gyre-Prev`), so continuity and
//!   recovery are exact. Writers chain per channel with `Nats-Expected-Last-Subject-Sequence`.
//! - namespaces without history: publications go straight to `gyre.l.<ns>.<channel>`.
//! - nodes subscribe to `gyre.l.…` only for channels with local subscribers.
//! - presence: stream `gyre_PRESENCE` used as a key/value store, subject
//!   `gyre.presence.<channel>.<client>` keeping its last message, max age refreshed by the
//!   owning node; join/leave travel on the live subject.
//! - `gyre.control` carries server API actions on users; `gyre.nodes` heartbeats build `info`;
//!   `gyre.survey.channels` gathers `channels`.

mod cluster;
mod history;
mod passes;
mod presence;
pub mod subjects;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use parking_lot::{Mutex, RwLock};
use tokio::task::JoinHandle;

use super::{Broker, BrokerEventHandler, EngineError, HistoryQuery, PresenceManager, PublishOptions};
use crate::config::Config;
use crate::internode::{NodeInfo, UserCommand};
use crate::protocol::{ClientInfo, Publication, StreamPosition};
use subjects::Layout;

/// Header naming what a live message is (`join`, `leave`, `mark`); absent for publications.
const KIND: &str = "Gyre-Kind";
/// Header with the previous offset of the channel.
const PREV: &str = "Gyre-Prev";
/// Header with the epoch of the channel's chain: written by each publisher, carried forward
/// from the message it chains to, so live subscribers see a new stream's epoch at once.
const EPOCH: &str = "Gyre-Epoch";
fn unavailable(what: &str, err: impl std::fmt::Display) -> EngineError {
    EngineError::Unavailable(format!("nats: {what}: {err}"))
}

/// NATS settings from the flat config.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    pub urls: String,
    pub prefix: String,
    pub storage: jetstream::stream::StorageType,
    pub replicas: usize,
    pub presence_ttl: Duration,
    pub presence_refresh: Duration,
    /// Caps of each history stream (0 = none).
    pub max_messages: u64,
    pub max_bytes: u64,
}

impl NatsSettings {
    pub fn from_config(c: &Config) -> Self {
        Self {
            urls: c.nats_url.clone(),
            prefix: c.nats_prefix.clone(),
            storage: if c.nats_storage == "memory" {
                jetstream::stream::StorageType::Memory
            } else {
                jetstream::stream::StorageType::File
            },
            replicas: c.nats_replicas.max(1),
            presence_ttl: c.nats_presence_ttl.0,
            presence_refresh: c.client_presence_update_interval.0.min(c.nats_presence_ttl.0 / 2),
            max_messages: c.nats_stream_max_messages,
            max_bytes: c.nats_stream_max_bytes,
        }
    }
}

/// The metric label of a NATS client event.
fn event_label(event: &async_nats::Event) -> &'static str {
    match event {
        async_nats::Event::Connected => "connected",
        async_nats::Event::Disconnected => "disconnected",
        async_nats::Event::LameDuckMode => "lame_duck",
        async_nats::Event::Draining => "draining",
        async_nats::Event::Closed => "closed",
        async_nats::Event::SlowConsumer(_) => "slow_consumer",
        async_nats::Event::ServerError(_) => "server_error",
        async_nats::Event::ClientError(_) => "client_error",
    }
}

/// Connection options (credentials, TLS) from the flat config; client events are logged and
/// counted in `events`, and a reconnect or dropped messages make the node check positions.
async fn connect_options(
    c: &Config,
    events: prometheus::IntCounterVec,
    handler: Arc<dyn BrokerEventHandler>,
) -> anyhow::Result<async_nats::ConnectOptions> {
    let mut o = async_nats::ConnectOptions::new()
        .name("gyre")
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .event_callback(move |event| {
            events.with_label_values(&[event_label(&event)]).inc();
            if matches!(event, async_nats::Event::Connected | async_nats::Event::SlowConsumer(_)) {
                handler.check_positions_soon();
            }
            async move {
                match event {
                    async_nats::Event::Connected => tracing::info!("nats connected"),
                    async_nats::Event::Disconnected => tracing::warn!("nats disconnected; reconnecting"),
                    async_nats::Event::SlowConsumer(sid) => {
                        tracing::warn!(sid, "nats client dropped messages for a slow subscription")
                    }
                    other => tracing::info!(event = %other, "nats event"),
                }
            }
        });
    if !c.nats_user.is_empty() {
        o = o.user_and_password(c.nats_user.clone(), c.nats_password.clone());
    }
    if !c.nats_token.is_empty() {
        o = o.token(c.nats_token.clone());
    }
    if !c.nats_nkey_seed.is_empty() {
        o = o.nkey(c.nats_nkey_seed.clone());
    }
    if !c.nats_creds_file.is_empty() {
        o = o
            .credentials_file(&c.nats_creds_file)
            .await
            .map_err(|e| anyhow::anyhow!("key `nats_creds_file`: cannot read {}: {e}", c.nats_creds_file))?;
    }
    if !c.nats_tls_ca.is_empty() {
        o = o.add_root_certificates(c.nats_tls_ca.clone().into()).require_tls(true);
    }
    if !c.nats_tls_cert.is_empty() {
        o = o.add_client_certificate(c.nats_tls_cert.clone().into(), c.nats_tls_key.clone().into()).require_tls(true);
    }
    Ok(o)
}

/// One namespace's history stream and its epoch (derived from the stream's creation time, so
/// a re-created stream has a new epoch).
#[derive(Clone)]
struct NsStream {
    stream: jetstream::stream::Stream,
    epoch: Arc<str>,
}

/// The end of a channel's offset chain, as the next write needs it.
#[derive(Clone)]
struct ChainTip {
    /// The last stored sequence of the channel's subject (the write's expectation).
    expect: u64,
    /// The top publication offset (what the next publication names as previous).
    prev: u64,
    epoch: Arc<str>,
}

/// Everything the engine tasks share.
pub struct Shared {
    client: async_nats::Client,
    js: jetstream::Context,
    layout: Layout,
    settings: NatsSettings,
    handler: Arc<dyn BrokerEventHandler>,
    config: RwLock<Arc<Config>>,
    streams: RwLock<HashMap<String, NsStream>>,
    /// Held while a stream is created or updated: subscribes arriving together for a
    /// namespace set it up once, not once each.
    stream_setup: tokio::sync::Mutex<()>,
    /// Forward history reads waiting to share a pass over their stream.
    passes: passes::Passes,
    /// Permits for reads too wide to share a pass.
    wide_reads: tokio::sync::Semaphore,
    /// Live subscriptions by channel.
    live: Mutex<HashMap<String, JoinHandle<()>>>,
    /// Last known offset per channel on this node's publish path (a cache; the stream is the
    /// truth and a stale value only costs a retry).
    last_offsets: Mutex<HashMap<String, ChainTip>>,
    /// Serializes this node's publishes per channel (hashed), so it does not race itself.
    publish_locks: Vec<tokio::sync::Mutex<()>>,
    presence: Arc<presence::Presence>,
    nodes: RwLock<HashMap<String, (NodeInfo, std::time::Instant)>>,
    ready: std::sync::atomic::AtomicBool,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// The NATS engine (broker and presence manager).
pub struct NatsEngine {
    shared: Arc<Shared>,
}

impl NatsEngine {
    /// Connects (retrying in the background when NATS is not reachable yet) and starts the
    /// engine's tasks; readiness stays false until streams and buckets exist.
    pub async fn start(
        config: Arc<Config>,
        handler: Arc<dyn BrokerEventHandler>,
        events: prometheus::IntCounterVec,
    ) -> anyhow::Result<Self> {
        let settings = NatsSettings::from_config(&config);
        let options = connect_options(&config, events, handler.clone()).await?;
        let urls: Vec<String> =
            settings.urls.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let client = options
            .connect(urls.as_slice())
            .await
            .map_err(|e| anyhow::anyhow!("key `nats_url`: cannot connect to {}: {e}", settings.urls))?;
        let mut js = jetstream::new(client.clone());
        js.set_timeout(Duration::from_secs(3));
        let layout = Layout { prefix: settings.prefix.clone() };
        let shared = Arc::new(Shared {
            presence: Arc::new(presence::Presence::new(js.clone(), layout.clone(), settings.presence_ttl)),
            client,
            js,
            layout,
            settings,
            handler,
            config: RwLock::new(config),
            streams: RwLock::new(HashMap::new()),
            stream_setup: tokio::sync::Mutex::new(()),
            passes: passes::Passes::default(),
            wide_reads: tokio::sync::Semaphore::new(passes::WIDE_READS_IN_FLIGHT),
            live: Mutex::new(HashMap::new()),
            last_offsets: Mutex::new(HashMap::new()),
            publish_locks: (0..256).map(|_| tokio::sync::Mutex::new(())).collect(),
            nodes: RwLock::new(HashMap::new()),
            ready: std::sync::atomic::AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
        });
        let setup = tokio::spawn(Shared::setup_loop(shared.clone()));
        shared.tasks.lock().push(setup);
        Ok(Self { shared })
    }
}

impl Drop for NatsEngine {
    fn drop(&mut self) {
        for t in self.shared.tasks.lock().drain(..) {
            t.abort();
        }
        for (_, t) in self.shared.live.lock().drain() {
            t.abort();
        }
    }
}

impl Shared {
    fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Fails at once while the client is reconnecting, instead of queueing behind it.
    fn ensure_connected(&self) -> Result<(), EngineError> {
        if self.connected() {
            Ok(())
        } else {
            Err(EngineError::Unavailable("nats: not connected".into()))
        }
    }

    /// Creates streams and the presence bucket (retrying until NATS answers), then starts the
    /// cluster tasks.
    async fn setup_loop(self: Arc<Self>) {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.ensure_all().await {
                Ok(()) => break,
                Err(err) => {
                    tracing::warn!(%err, "nats engine not ready; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Err(err) = cluster::start(self.clone()).await {
            tracing::error!(%err, "nats cluster tasks failed to start");
            return;
        }
        self.ready.store(true, std::sync::atomic::Ordering::SeqCst);
        tracing::info!(prefix = %self.layout.prefix, "nats engine ready");
    }

    fn config(&self) -> Arc<Config> {
        self.config.read().clone()
    }

    async fn ensure_all(&self) -> Result<(), EngineError> {
        let config = self.config();
        let all = std::iter::once(("", &config.channel))
            .chain(config.namespaces.iter().map(|n| (n.name.as_str(), &n.options)));
        for (name, options) in all {
            if options.history_enabled() {
                let history = crate::engine::HistoryOptions::of(&config, options);
                self.ensure_stream(name, history).await?;
            }
        }
        self.presence.ensure(&self.settings).await
    }

    fn publish_lock(&self, channel: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let h = BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(channel);
        &self.publish_locks[(h as usize) % self.publish_locks.len()]
    }

    /// Subscribes this node to a channel's live subject and dispatches what arrives.
    async fn listen(self: &Arc<Self>, channel: &str) -> Result<(), EngineError> {
        self.ensure_connected()?;
        let rules = crate::protocol::channel::split_namespace(channel).0.to_string();
        let subject = self.layout.live_subject(&rules, channel);
        let mut sub = self.client.subscribe(subject).await.map_err(|e| unavailable("subscribe", e))?;
        // The server handles one connection's operations in order: history requests sent
        // after this (JetStream shares the connection) are answered only once the subscription
        // is in place, so a read made after it cannot miss what is published later. The flush
        // puts the subscription on the wire; it does not wait for the server.
        self.client.flush().await.map_err(|e| unavailable("flush", e))?;
        let shared = self.clone();
        let ch = channel.to_string();
        let task = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(msg) = sub.next().await {
                shared.dispatch(&ch, &rules, msg);
            }
        });
        if let Some(old) = self.live.lock().insert(channel.to_string(), task) {
            old.abort();
        }
        Ok(())
    }

    /// Hands one live message to the hub.
    fn dispatch(&self, channel: &str, namespace: &str, msg: async_nats::Message) {
        let headers = msg.headers.as_ref();
        // Header values are read in place: one live message per channel per node, no copies.
        let number = |v: Option<&async_nats::HeaderValue>| v.and_then(|v| v.as_str().parse::<u64>().ok()).unwrap_or(0);
        let kind = headers.and_then(|h| h.get(KIND)).map(|v| v.as_str());
        match kind {
            Some(kind @ ("join" | "leave")) => {
                let Ok(info) = serde_json::from_slice::<ClientInfo>(&msg.payload) else { return };
                if kind == "join" {
                    self.handler.handle_join(channel, &info);
                } else {
                    self.handler.handle_leave(channel, &info);
                }
            }
            // Position marks anchor writes only; publications chain past them.
            Some(_) => {}
            None => {
                let seq = number(headers.and_then(|h| h.get(async_nats::header::NATS_SEQUENCE)));
                let prev = number(headers.and_then(|h| h.get(PREV)));
                let epoch = match headers.and_then(history::epoch_header) {
                    Some(e) => e.to_string(),
                    None => self.streams.read().get(namespace).map(|s| s.epoch.to_string()).unwrap_or_default(),
                };
                let position = StreamPosition { offset: seq, epoch };
                let Ok(mut publication) = crate::internode::decode_publication(&msg.payload) else {
                    tracing::warn!(channel, "undecodable publication on the live subject");
                    return;
                };
                publication.offset = seq;
                publication.prev_offset = prev;
                self.handler.handle_publication(channel, Arc::new(publication), &position);
            }
        }
    }
}

#[async_trait]
impl Broker for NatsEngine {
    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError> {
        self.shared.publish(channel, publication, options).await
    }

    async fn publish_join(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.shared.publish_join_leave(channel, "join", &info).await
    }

    async fn publish_leave(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.shared.publish_join_leave(channel, "leave", &info).await
    }

    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.shared.listen(channel).await
    }

    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        let mut live = self.shared.live.lock();
        // A new local subscriber may have arrived since the last one left: keep listening.
        if self.shared.handler.has_subscribers(channel) {
            return Ok(());
        }
        if let Some(task) = live.remove(channel) {
            task.abort();
        }
        Ok(())
    }

    async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), EngineError> {
        self.shared.history(channel, query).await
    }

    async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        self.shared.remove_history(channel).await
    }

    async fn publish_command(&self, command: &UserCommand) -> Result<(), EngineError> {
        self.shared.publish_command(command).await
    }

    async fn send_to_node(&self, node: &str, command: &UserCommand) -> Result<(), EngineError> {
        self.shared.send_to_node(node, command).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        Ok(self.shared.live_nodes())
    }

    async fn channels(&self) -> Result<Vec<(String, usize)>, EngineError> {
        self.shared.survey_channels().await
    }

    fn is_ready(&self) -> bool {
        self.shared.ready.load(std::sync::atomic::Ordering::SeqCst) && self.shared.connected()
    }

    async fn reload(&self, config: Arc<Config>) -> Result<(), EngineError> {
        *self.shared.config.write() = config;
        self.shared.ensure_all().await
    }
}

#[async_trait]
impl PresenceManager for NatsEngine {
    async fn add_presence(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.shared.presence.add(channel, info).await
    }

    async fn remove_presence(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        self.shared.presence.remove(channel, client).await
    }

    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        self.shared.presence.list(channel).await
    }

    async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), EngineError> {
        self.shared.presence.stats(channel).await
    }
}
