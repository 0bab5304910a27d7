//! The process core: config, hub, engine and the one publish path shared by the server API
//! and client publishes.

pub mod channels;
pub mod cluster;
pub mod delta;
pub mod hub;
pub mod recovery;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;

use crate::auth::TokenVerifier;
use crate::config::{ChannelOptions, Config, EngineKind};
use crate::engine::bounded::BoundedEngine;
use crate::engine::memory::{MemoryBroker, MemoryPresence};
use crate::engine::nats::NatsEngine;
use crate::engine::{
    Broker, BrokerEventHandler, EngineError, HistoryOptions, HistoryQuery, PresenceManager, PublishOptions,
};
use crate::internode::{NodeInfo, UserCommand};
use crate::metrics::Metrics;
use crate::protocol::{ClientInfo, ErrorCode, HistoryResult, Payload, Publication, StreamPosition};
use channels::ChannelRules;
use hub::Hub;

/// Server version reported to clients and in `info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Config-derived state swapped as a whole on reload.
pub struct Rules {
    pub config: Arc<Config>,
    pub channels: ChannelRules,
    pub tokens: TokenVerifier,
    pub proxies: crate::proxy::Proxies,
}

/// One Gyre process.
pub struct Node {
    pub id: String,
    pub name: String,
    rules: RwLock<Arc<Rules>>,
    pub hub: Arc<Hub>,
    broker: Arc<dyn Broker>,
    presence: Arc<dyn PresenceManager>,
    memory_broker: Option<Arc<MemoryBroker>>,
    pub metrics: Metrics,
    /// `client_connection_rate_limit`: new connections per second on this node.
    connection_bucket: parking_lot::Mutex<crate::limit::TokenBucket>,
    /// Per-IP limit of `/emulation` POSTs.
    pub emulation_limiter: crate::limit::KeyedLimiter,
    /// Recovery reads shared by subscribers of one channel in a reconnect storm.
    pub shared_reads: recovery::SharedReads,
    shutting_down: AtomicBool,
    /// Where frames forwarded for emulated connections go (installed by the transport).
    emulation_inbox: EmulationSlot,
}

/// Takes frames other nodes forward for emulated connections on this one: the HTTP
/// transport's session registry, installed with [`Node::set_emulation_inbox`] (the node
/// knows no transport).
pub trait EmulationInbox: Send + Sync {
    fn deliver_forwarded(&self, session: &str, frame: bytes::Bytes);
}

type EmulationSlot = Arc<std::sync::OnceLock<Arc<dyn EmulationInbox>>>;

/// Extra fields of a publication.
#[derive(Default)]
pub struct PublishParams {
    pub info: Option<ClientInfo>,
    pub tags: std::collections::HashMap<String, String>,
    pub skip_history: bool,
    pub idempotency_key: Option<String>,
    /// Subscribers that negotiated deltas may get this publication as one.
    pub delta: bool,
}

/// Delivers broker events to the local hub and counts them.
struct HubHandler {
    hub: Arc<Hub>,
    /// Wakes the position check early.
    position_check: Arc<tokio::sync::Notify>,
    sent: prometheus::IntCounterVec,
    id: String,
    name: String,
    started: Instant,
    engine: &'static str,
    emulation_inbox: EmulationSlot,
}

impl BrokerEventHandler for HubHandler {
    fn handle_publication(&self, channel: &str, publication: Arc<Publication>, position: &StreamPosition) {
        let n = self.hub.broadcast_publication(channel, publication, position);
        self.sent.with_label_values(&["publication"]).inc_by(n as u64);
    }
    fn handle_join(&self, channel: &str, info: &ClientInfo) {
        let n = self.hub.broadcast_join(channel, info);
        self.sent.with_label_values(&["join"]).inc_by(n as u64);
    }
    fn handle_leave(&self, channel: &str, info: &ClientInfo) {
        let n = self.hub.broadcast_leave(channel, info);
        self.sent.with_label_values(&["leave"]).inc_by(n as u64);
    }
    fn handle_command(&self, command: &UserCommand) {
        cluster::apply(command, &self.hub, self.emulation_inbox.get().map(|inbox| &**inbox));
    }
    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            uid: self.id.clone(),
            name: self.name.clone(),
            version: VERSION.to_string(),
            num_clients: self.hub.num_clients() as u64,
            num_users: self.hub.num_users() as u64,
            num_channels: self.hub.num_channels() as u64,
            num_subs: self.hub.num_subscriptions() as u64,
            uptime: self.started.elapsed().as_secs(),
            engine: self.engine.to_string(),
            num_deliveries: self.sent.with_label_values(&["publication"]).get(),
        }
    }
    fn local_channels(&self) -> Vec<(String, usize)> {
        self.hub.channels()
    }
    fn has_subscribers(&self, channel: &str) -> bool {
        self.hub.has_subscribers(channel)
    }
    fn check_positions_soon(&self) {
        self.position_check.notify_one();
    }
}

impl Node {
    /// Builds a node with the engine named in the config.
    pub async fn new(config: Config) -> anyhow::Result<Arc<Self>> {
        let metrics = Metrics::new(VERSION)?;
        let config_for_limits = config.clone();
        let hub = Arc::new(Hub::default());
        let id = uuid::Uuid::new_v4().to_string();
        let name = if config.name.is_empty() { hostname() } else { config.name.clone() };
        let started = Instant::now();
        let position_check = Arc::new(tokio::sync::Notify::new());
        let emulation_inbox = EmulationSlot::default();
        let handler = Arc::new(HubHandler {
            emulation_inbox: emulation_inbox.clone(),
            hub: hub.clone(),
            position_check: position_check.clone(),
            sent: metrics.messages_sent.clone(),
            id: id.clone(),
            name: name.clone(),
            started,
            engine: match config.engine {
                EngineKind::Memory => "memory",
                EngineKind::Nats => "nats",
            },
        });
        let (broker, presence, memory_broker): (Arc<dyn Broker>, Arc<dyn PresenceManager>, _) = match config.engine {
            EngineKind::Memory => {
                let b = Arc::new(MemoryBroker::new(handler));
                (b.clone(), Arc::new(MemoryPresence::default()), Some(b))
            }
            EngineKind::Nats => {
                let engine = Arc::new(
                    NatsEngine::start(Arc::new(config.clone()), handler, metrics.engine_events.clone()).await?,
                );
                (engine.clone(), engine, None)
            }
        };
        let bounded = Arc::new(BoundedEngine::new(
            broker,
            presence,
            config.engine_timeout.0,
            metrics.engine_duration.clone(),
            metrics.engine_errors.clone(),
        ));
        let (broker, presence): (Arc<dyn Broker>, Arc<dyn PresenceManager>) = (bounded.clone(), bounded);
        let node = Arc::new(Self {
            id,
            name,
            rules: RwLock::new(Arc::new({
                let tokens = TokenVerifier::new(&config).observe(&metrics.jwks_events);
                Self::rules_for(config, tokens)
            })),
            hub,
            broker,
            presence,
            memory_broker,
            metrics,
            connection_bucket: parking_lot::Mutex::new(crate::limit::TokenBucket::default()),
            emulation_limiter: crate::limit::KeyedLimiter::for_ips(
                crate::limit::Quota::per_second(config_for_limits.emulation_ip_rate_limit),
                &config_for_limits.ip_rate_limit_exempt,
            ),
            shared_reads: recovery::SharedReads::default(),
            shutting_down: AtomicBool::new(false),
            emulation_inbox,
        });
        tokio::spawn(check_positions(Arc::downgrade(&node), position_check));
        Ok(node)
    }

    fn rules_for(config: Config, tokens: TokenVerifier) -> Rules {
        Rules {
            channels: ChannelRules::new(&config),
            tokens,
            proxies: crate::proxy::Proxies::new(&config),
            config: Arc::new(config),
        }
    }

    /// The current config and derived rules.
    pub fn rules(&self) -> Arc<Rules> {
        self.rules.read().clone()
    }

    pub fn config(&self) -> Arc<Config> {
        self.rules.read().config.clone()
    }

    /// Applies a reloaded config: namespaces, channel options and token settings take effect
    /// for new commands at once; listeners and the engine connection keep their settings.
    pub async fn reload(&self, config: Config) -> Result<(), ErrorCode> {
        let tokens = self.rules().tokens.reloaded(&config).observe(&self.metrics.jwks_events);
        let rules = Arc::new(Self::rules_for(config, tokens));
        self.broker.reload(rules.config.clone()).await.map_err(engine_error)?;
        *self.rules.write() = rules;
        Ok(())
    }

    /// Runs periodic housekeeping until the process ends.
    pub fn spawn_housekeeping(self: &Arc<Self>) {
        let node = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                let Some(node) = node.upgrade() else { break };
                if let Some(b) = &node.memory_broker {
                    b.sweep();
                }
                node.emulation_limiter.sweep();
                node.shared_reads.sweep();
            }
        });
    }

    /// Takes a token of the node-wide connection rate (`rate` per second; 0 = no limit).
    pub fn take_connection_token(&self, rate: u32) -> bool {
        rate == 0
            || self
                .connection_bucket
                .lock()
                .try_take(crate::limit::Quota::per_second(rate), tokio::time::Instant::now())
    }

    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Installs where forwarded emulation frames go; `false` when one was installed already
    /// (the first stays: one transport serves a node).
    pub fn set_emulation_inbox(&self, inbox: Arc<dyn EmulationInbox>) -> bool {
        self.emulation_inbox.set(inbox).is_ok()
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// The one publish path: resolve the namespace, store and deliver.
    pub async fn publish(
        &self,
        channel: &str,
        data: Payload,
        params: PublishParams,
    ) -> Result<StreamPosition, ErrorCode> {
        let rules = self.rules();
        let resolved = rules.channels.resolve(&rules.config, channel)?;
        let history = if params.skip_history {
            HistoryOptions::default()
        } else {
            HistoryOptions::of(&rules.config, resolved.options)
        };
        let publication = Publication {
            data,
            info: params.info,
            offset: 0,
            tags: params.tags,
            delta: false,
            prev_offset: 0,
            use_delta: params.delta || resolved.options.delta_publish,
        };
        self.metrics.messages_published.with_label_values(&["publication"]).inc();
        let options = PublishOptions { history, idempotency_key: params.idempotency_key };
        self.broker.publish(channel, publication, &options).await.map_err(engine_error)
    }

    pub async fn publish_join(&self, channel: &str, info: ClientInfo) {
        self.metrics.messages_published.with_label_values(&["join"]).inc();
        if let Err(err) = self.broker.publish_join(channel, info).await {
            tracing::warn!(%err, channel, "join not published");
        }
    }

    pub async fn publish_leave(&self, channel: &str, info: ClientInfo) {
        self.metrics.messages_published.with_label_values(&["leave"]).inc();
        if let Err(err) = self.broker.publish_leave(channel, info).await {
            tracing::warn!(%err, channel, "leave not published");
        }
    }

    /// The broker must route `channel` to this node (first local subscriber).
    pub async fn broker_subscribe(&self, channel: &str) -> Result<(), ErrorCode> {
        self.broker.subscribe(channel).await.map_err(engine_error)
    }

    pub async fn broker_unsubscribe(&self, channel: &str) {
        if let Err(err) = self.broker.unsubscribe(channel).await {
            tracing::warn!(%err, channel, "broker unsubscribe failed");
        }
    }

    pub async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), ErrorCode> {
        self.broker.history(channel, query).await.map_err(engine_error)
    }

    /// A history read as the `history` command and API define it (§7.5): `limit` 0 = only
    /// the position, negative = all up to the configured cap; `reverse` needs a `since`
    /// offset above 0 when `since` is given.
    pub async fn read_history(
        &self,
        channel: &str,
        options: &ChannelOptions,
        limit: i32,
        since: Option<StreamPosition>,
        reverse: bool,
    ) -> Result<HistoryResult, ErrorCode> {
        if reverse && since.as_ref().is_some_and(|s| s.offset == 0) {
            return Err(ErrorCode::BAD_REQUEST);
        }
        let config = self.config();
        let max = config.client_history_max_publication_limit;
        let limit = match limit {
            0 => 0,
            n if n < 0 => max,
            n => (n as usize).min(max),
        };
        let meta_ttl = HistoryOptions::of(&config, options).meta_ttl;
        let query = HistoryQuery { limit: Some(limit), since, reverse, meta_ttl };
        let (publications, position) = self.history(channel, query).await?;
        Ok(HistoryResult { publications, epoch: position.epoch, offset: position.offset })
    }

    pub async fn remove_history(&self, channel: &str) -> Result<(), ErrorCode> {
        self.broker.remove_history(channel).await.map_err(engine_error)
    }

    /// Sends a server-side action on users' connections to every node.
    pub async fn user_command(&self, command: UserCommand) -> Result<(), ErrorCode> {
        self.broker.publish_command(&command).await.map_err(engine_error)
    }

    /// Sends a command to one other node.
    pub async fn node_command(&self, node: &str, command: UserCommand) -> Result<(), ErrorCode> {
        self.broker.send_to_node(node, &command).await.map_err(engine_error)
    }

    /// Every live node.
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>, ErrorCode> {
        self.broker.nodes().await.map_err(engine_error)
    }

    /// Channels with subscribers on any node.
    pub async fn channels(&self) -> Result<Vec<(String, usize)>, ErrorCode> {
        self.broker.channels().await.map_err(engine_error)
    }

    /// Ready to serve: not shutting down and the engine is connected.
    pub fn is_ready(&self) -> bool {
        !self.is_shutting_down() && self.broker.is_ready()
    }

    pub fn presence_manager(&self) -> &dyn PresenceManager {
        self.presence.as_ref()
    }

    /// Refreshes the gauges that are computed rather than counted.
    pub fn update_gauges(&self) {
        self.metrics.num_clients.set(self.hub.num_clients() as i64);
        self.metrics.num_users.set(self.hub.num_users() as i64);
        self.metrics.num_channels.set(self.hub.num_channels() as i64);
        self.metrics.num_subscriptions.set(self.hub.num_subscriptions() as i64);
        self.metrics.engine_ready.set(i64::from(self.broker.is_ready()));
    }
}

/// How soon positions are checked again while a subscriber is behind the stream's top, or
/// after the engine said live messages may have been lost.
const POSITION_RECHECK: Duration = Duration::from_secs(2);

/// The position check (`client_channel_position_check_delay`, Centrifugo's semantics): every
/// channel with positioned subscribers has its stream top read (one read per channel, however
/// many subscribers), and a subscriber whose position is in another epoch, or stays behind the
/// top, is told to recover (insufficient state). A publication lost on a quiet channel is
/// noticed this way, not only when the next one arrives. Ends with the node.
async fn check_positions(node: std::sync::Weak<Node>, wake: Arc<tokio::sync::Notify>) {
    let mut next = match node.upgrade() {
        Some(n) => n.config().client_channel_position_check_delay.0,
        None => return,
    };
    loop {
        let woken = tokio::select! {
            _ = tokio::time::sleep(next) => false,
            _ = wake.notified() => true,
        };
        if woken {
            // Let what was in flight when the engine came back arrive first.
            tokio::time::sleep(POSITION_RECHECK).await;
        }
        let Some(node) = node.upgrade() else { return };
        let mut behind = 0;
        let rules = node.rules();
        for channel in node.hub.positioned_channels() {
            let Ok(resolved) = rules.channels.resolve(&rules.config, &channel) else { continue };
            let meta_ttl = HistoryOptions::of(&rules.config, resolved.options).meta_ttl;
            let query = HistoryQuery { limit: Some(0), since: None, reverse: false, meta_ttl };
            match node.history(&channel, query).await {
                Ok((_, top)) => behind += node.hub.check_positions(&channel, &top),
                Err(code) => tracing::debug!(%code, %channel, "stream top not read; checked next round"),
            }
        }
        let delay = rules.config.client_channel_position_check_delay.0;
        next = if behind > 0 { POSITION_RECHECK.min(delay) } else { delay };
    }
}

fn engine_error(err: EngineError) -> ErrorCode {
    match err {
        EngineError::Unrecoverable => ErrorCode::UNRECOVERABLE_POSITION,
        EngineError::Unacknowledged(nodes) => {
            tracing::warn!(nodes = nodes.join(", "), "a command was not acknowledged by every node");
            ErrorCode {
                message: format!("internal server error: not acknowledged by node(s) {}", nodes.join(", ")).into(),
                ..ErrorCode::INTERNAL
            }
        }
        e @ (EngineError::Unavailable(_) | EngineError::Timeout { .. }) => {
            tracing::error!(error = %e, "engine error");
            ErrorCode::INTERNAL
        }
    }
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gyre".to_string())
}
