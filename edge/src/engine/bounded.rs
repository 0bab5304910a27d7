//! One deadline and one set of measurements around every engine call, whatever the engine.
//!
//! A stalled engine (a frozen NATS server, a partition that TCP has not noticed yet) must not
//! hold subscribes, API calls or disconnect handling: each call gets `engine_timeout` and then
//! fails as a temporary error, which SDKs retry. Durations and failures are exported per
//! operation (`gyre_engine_call_duration_seconds`, `gyre_engine_errors_total`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prometheus::{HistogramVec, IntCounterVec};

use super::{Broker, EngineError, HistoryQuery, PresenceManager, PublishOptions};
use crate::config::Config;
use crate::internode::{NodeInfo, UserCommand};
use crate::protocol::{ClientInfo, Publication, StreamPosition};

/// The engine as the node sees it: the inner broker and presence manager behind deadlines.
pub struct BoundedEngine {
    broker: Arc<dyn Broker>,
    presence: Arc<dyn PresenceManager>,
    /// `engine_timeout` in milliseconds (reloadable).
    timeout_ms: AtomicU64,
    duration: HistogramVec,
    errors: IntCounterVec,
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl BoundedEngine {
    pub fn new(
        broker: Arc<dyn Broker>,
        presence: Arc<dyn PresenceManager>,
        timeout: Duration,
        duration: HistogramVec,
        errors: IntCounterVec,
    ) -> Self {
        Self { broker, presence, timeout_ms: AtomicU64::new(millis(timeout)), duration, errors }
    }

    /// Runs one engine call under the deadline and records how it went.
    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, EngineError>>,
    ) -> Result<T, EngineError> {
        let after = Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed));
        let started = Instant::now();
        let result = match tokio::time::timeout(after, fut).await {
            Ok(r) => r,
            Err(_) => Err(EngineError::Timeout { op, after }),
        };
        self.duration.with_label_values(&[op]).observe(started.elapsed().as_secs_f64());
        if let Err(err) = &result {
            self.errors.with_label_values(&[op, err.kind()]).inc();
        }
        result
    }
}

#[async_trait]
impl Broker for BoundedEngine {
    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError> {
        self.call("publish", self.broker.publish(channel, publication, options)).await
    }
    async fn publish_join(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.call("publish_join", self.broker.publish_join(channel, info)).await
    }
    async fn publish_leave(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.call("publish_leave", self.broker.publish_leave(channel, info)).await
    }
    async fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.call("subscribe", self.broker.subscribe(channel)).await
    }
    async fn unsubscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.call("unsubscribe", self.broker.unsubscribe(channel)).await
    }
    async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), EngineError> {
        self.call("history", self.broker.history(channel, query)).await
    }
    async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        self.call("remove_history", self.broker.remove_history(channel)).await
    }
    async fn publish_command(&self, command: &UserCommand) -> Result<(), EngineError> {
        self.call("publish_command", self.broker.publish_command(command)).await
    }
    async fn send_to_node(&self, node: &str, command: &UserCommand) -> Result<(), EngineError> {
        self.call("send_to_node", self.broker.send_to_node(node, command)).await
    }
    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        self.call("nodes", self.broker.nodes()).await
    }
    async fn channels(&self) -> Result<Vec<(String, usize)>, EngineError> {
        self.call("channels", self.broker.channels()).await
    }
    fn is_ready(&self) -> bool {
        self.broker.is_ready()
    }
    /// Not under the one-call deadline: a reload sets up every namespace's stream, each step
    /// bounded by the engine's own request timeout.
    async fn reload(&self, config: Arc<Config>) -> Result<(), EngineError> {
        self.timeout_ms.store(millis(config.engine_timeout.0), Ordering::Relaxed);
        self.broker.reload(config).await
    }
}

#[async_trait]
impl PresenceManager for BoundedEngine {
    async fn add_presence(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.call("add_presence", self.presence.add_presence(channel, info)).await
    }
    async fn remove_presence(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        self.call("remove_presence", self.presence.remove_presence(channel, client)).await
    }
    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        self.call("presence", self.presence.presence(channel)).await
    }
    async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), EngineError> {
        self.call("presence_stats", self.presence.presence_stats(channel)).await
    }
}
