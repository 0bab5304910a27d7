//! The seam between a node and where publications, history and presence live.
//!
//! Session and API code only talk to [`Broker`] and [`PresenceManager`]; the memory engine
//! serves one node, the NATS JetStream engine (later) serves many.

pub mod bounded;
pub mod memory;
pub mod nats;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::internode::{NodeInfo, UserCommand};
use crate::protocol::{ClientInfo, Publication, StreamPosition};

/// An engine failure; surfaces to clients as error 100 (internal, temporary).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// The requested position is not in this stream (epoch changed).
    #[error("unrecoverable position")]
    Unrecoverable,
    /// The call did not finish within `engine_timeout`.
    #[error("engine call {op} timed out after {after:?}")]
    Timeout { op: &'static str, after: Duration },
    /// A command sent to nodes was not acknowledged by these (names or ids) in time.
    #[error("not acknowledged by node(s) {}", .0.join(", "))]
    Unacknowledged(Vec<String>),
}

impl EngineError {
    /// A short label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EngineError::Unavailable(_) => "unavailable",
            EngineError::Unrecoverable => "unrecoverable",
            EngineError::Timeout { .. } => "timeout",
            EngineError::Unacknowledged(_) => "unacknowledged",
        }
    }
}

/// How a publication is kept, from its channel's namespace.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryOptions {
    /// 0 = no history: the publication is only delivered live.
    pub size: usize,
    pub ttl: Duration,
    pub meta_ttl: Duration,
}

impl HistoryOptions {
    /// The options of a namespace: none unless history is on; its meta TTL, else the node's.
    pub fn of(config: &crate::config::Config, options: &crate::config::ChannelOptions) -> Self {
        if !options.history_enabled() {
            return Self::default();
        }
        let meta_ttl =
            if options.history_meta_ttl.is_zero() { config.history_meta_ttl.0 } else { options.history_meta_ttl.0 };
        Self { size: options.history_size, ttl: options.history_ttl.0, meta_ttl }
    }
}

/// How to publish: history options and an optional idempotency key.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    pub history: HistoryOptions,
    /// A repeated key within the idempotency window (5 min) returns the first result and
    /// publishes nothing.
    pub idempotency_key: Option<String>,
}

/// How long idempotency keys are remembered.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(300);

/// A history read (§7.5 of the protocol notes).
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    /// `None`: everything (already capped by the caller); `Some(0)`: position only.
    pub limit: Option<usize>,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
    pub meta_ttl: Duration,
}

/// Receives what the broker delivers for channels this node subscribed to.
pub trait BrokerEventHandler: Send + Sync {
    /// A publication with its position, in channel order.
    fn handle_publication(&self, channel: &str, publication: Arc<Publication>, position: &StreamPosition);
    fn handle_join(&self, channel: &str, info: &ClientInfo);
    fn handle_leave(&self, channel: &str, info: &ClientInfo);
    /// A server-side action on users' connections, sent by any node.
    fn handle_command(&self, command: &UserCommand);
    /// This node's description for `info`.
    fn node_info(&self) -> NodeInfo;
    /// Channels with local subscribers and their counts (for `channels`).
    fn local_channels(&self) -> Vec<(String, usize)>;
    /// Whether the channel has local subscribers right now (guards unsubscribe races).
    fn has_subscribers(&self, channel: &str) -> bool;
    /// Live messages may have been lost (the engine reconnected, or its client dropped
    /// messages for a slow subscription): positions are checked now rather than later.
    fn check_positions_soon(&self) {}
}

/// Stores and routes publications.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Stores (when history is on) and delivers a publication; returns its position.
    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError>;
    async fn publish_join(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError>;
    async fn publish_leave(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError>;
    /// This node got its first local subscriber of `channel`.
    async fn subscribe(&self, channel: &str) -> Result<(), EngineError>;
    /// This node lost its last local subscriber of `channel`.
    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError>;
    async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), EngineError>;
    /// Drops stored publications but keeps the stream position.
    async fn remove_history(&self, channel: &str) -> Result<(), EngineError>;
    /// Delivers a user command to every node (this one included); `Ok` only once every live
    /// node has acknowledged it, else [`EngineError::Unacknowledged`] names those that did not.
    async fn publish_command(&self, command: &UserCommand) -> Result<(), EngineError>;
    /// Delivers a command to the one node with this id (on its own subject, never to others),
    /// acknowledged by that node.
    async fn send_to_node(&self, node: &str, command: &UserCommand) -> Result<(), EngineError>;
    /// Every live node.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError>;
    /// Channels with subscribers on any node, with their subscriber counts.
    async fn channels(&self) -> Result<Vec<(String, usize)>, EngineError>;
    /// Whether the engine can serve (e.g. connected to NATS); drives readiness.
    fn is_ready(&self) -> bool {
        true
    }
    /// Takes a reloaded config (new namespaces and their history settings).
    async fn reload(&self, _config: std::sync::Arc<crate::config::Config>) -> Result<(), EngineError> {
        Ok(())
    }
}

/// `(clients, distinct users)` of a presence map.
pub fn presence_counts(presence: &HashMap<String, ClientInfo>) -> (u32, u32) {
    let users: std::collections::HashSet<&str> = presence.values().map(|i| i.user.as_str()).collect();
    (presence.len() as u32, users.len() as u32)
}

/// Who is subscribed to a channel, across all nodes.
#[async_trait]
pub trait PresenceManager: Send + Sync {
    async fn add_presence(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError>;
    async fn remove_presence(&self, channel: &str, client: &str) -> Result<(), EngineError>;
    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError>;
    /// `(clients, distinct users)`.
    async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), EngineError>;
}
