//! The in-memory engine: one node, history and presence in process memory.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rand::distr::{Alphabetic, SampleString};

use super::{
    Broker, BrokerEventHandler, EngineError, HistoryQuery, PresenceManager, PublishOptions, IDEMPOTENCY_WINDOW,
};
use crate::internode::{NodeInfo, UserCommand};
use crate::protocol::{ClientInfo, Publication, StreamPosition};

const SHARDS: usize = 64;

/// A map split into independently locked shards, keyed by channel.
struct Sharded<V> {
    shards: Vec<Mutex<HashMap<String, V>>>,
    hasher: std::collections::hash_map::RandomState,
}

impl<V> Sharded<V> {
    fn new() -> Self {
        Self { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), hasher: Default::default() }
    }

    fn shard<K: Hash + ?Sized>(&self, key: &K) -> &Mutex<HashMap<String, V>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }
}

/// One channel's stream: a bounded window of publications and the stream position.
struct Stream {
    epoch: String,
    top: u64,
    items: VecDeque<Arc<Publication>>,
    data_expires: Instant,
    meta_expires: Instant,
}

fn new_epoch() -> String {
    Alphabetic.sample_string(&mut rand::rng(), 8)
}

impl Stream {
    fn new(now: Instant, meta_ttl: Duration, epoch: String) -> Self {
        Self { epoch, top: 0, items: VecDeque::new(), data_expires: now, meta_expires: now + meta_ttl }
    }

    /// Applies TTLs lazily: expired data is dropped, expired meta starts a new epoch.
    fn refresh(&mut self, now: Instant, meta_ttl: Duration) {
        if now >= self.meta_expires {
            *self = Stream::new(now, meta_ttl, new_epoch());
        } else if now >= self.data_expires {
            self.items.clear();
        }
    }

    fn position(&self) -> StreamPosition {
        StreamPosition { offset: self.top, epoch: self.epoch.clone() }
    }
}

/// Memory broker: assigns offsets, keeps history, delivers straight to the local hub.
pub struct MemoryBroker {
    handler: Arc<dyn BrokerEventHandler>,
    streams: Sharded<Arc<Mutex<Stream>>>,
    /// `channel \0 key` -> first result and when it was published.
    idempotent: Sharded<(StreamPosition, Instant)>,
    /// The epoch of every channel without a stream, and of the stream its first publication
    /// creates: reads create nothing, yet a subscriber positioned on an empty channel keeps
    /// its position across that first publication. A sweep that frees a stream draws a new
    /// one, so a stream created again never reuses a freed stream's epoch.
    absent_epoch: Mutex<String>,
}

impl MemoryBroker {
    pub fn new(handler: Arc<dyn BrokerEventHandler>) -> Self {
        Self { handler, streams: Sharded::new(), idempotent: Sharded::new(), absent_epoch: Mutex::new(new_epoch()) }
    }

    fn stream(&self, channel: &str, meta_ttl: Duration, create: bool) -> Option<Arc<Mutex<Stream>>> {
        let mut shard = self.streams.shard(channel).lock();
        if let Some(s) = shard.get(channel) {
            return Some(s.clone());
        }
        if !create {
            return None;
        }
        let epoch = self.absent_epoch.lock().clone();
        let s = Arc::new(Mutex::new(Stream::new(Instant::now(), meta_ttl, epoch)));
        shard.insert(channel.to_string(), s.clone());
        Some(s)
    }

    /// Frees streams whose meta TTL passed and forgets old idempotency keys; call
    /// periodically.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut freed = false;
        for shard in &self.streams.shards {
            let mut shard = shard.lock();
            let before = shard.len();
            shard.retain(|_, s| s.lock().meta_expires > now);
            freed |= shard.len() < before;
        }
        if freed {
            *self.absent_epoch.lock() = new_epoch();
        }
        for shard in &self.idempotent.shards {
            shard.lock().retain(|_, (_, at)| now.duration_since(*at) < IDEMPOTENCY_WINDOW);
        }
    }

    fn publish_once(
        &self,
        channel: &str,
        mut publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError> {
        let history = options.history;
        if history.size == 0 || history.ttl.is_zero() {
            publication.offset = 0;
            self.handler.handle_publication(channel, Arc::new(publication), &StreamPosition::default());
            return Ok(StreamPosition::default());
        }
        let meta_ttl = history.meta_ttl.max(history.ttl);
        let Some(stream) = self.stream(channel, meta_ttl, true) else {
            return Err(EngineError::Unavailable("stream not created".into()));
        };
        // The stream lock is held through delivery so offsets reach subscribers in order.
        let mut s = stream.lock();
        let now = Instant::now();
        s.refresh(now, meta_ttl);
        publication.prev_offset = s.top;
        s.top += 1;
        publication.offset = s.top;
        let publication = Arc::new(publication);
        s.items.push_back(publication.clone());
        while s.items.len() > history.size {
            s.items.pop_front();
        }
        s.data_expires = now + history.ttl;
        s.meta_expires = now + meta_ttl;
        let position = s.position();
        self.handler.handle_publication(channel, publication, &position);
        Ok(position)
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError> {
        let Some(key) = &options.idempotency_key else {
            return self.publish_once(channel, publication, options);
        };
        let id = format!("{channel}\0{key}");
        // The shard lock is held through the publish so a concurrent duplicate waits for
        // the first result instead of publishing twice.
        let mut seen = self.idempotent.shard(&id).lock();
        if let Some((position, at)) = seen.get(&id) {
            if at.elapsed() < IDEMPOTENCY_WINDOW {
                return Ok(position.clone());
            }
        }
        let position = self.publish_once(channel, publication, options)?;
        seen.insert(id, (position.clone(), Instant::now()));
        Ok(position)
    }

    async fn publish_join(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.handler.handle_join(channel, &info);
        Ok(())
    }

    async fn publish_leave(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        self.handler.handle_leave(channel, &info);
        Ok(())
    }

    async fn subscribe(&self, _channel: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn unsubscribe(&self, _channel: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), EngineError> {
        let Some(stream) = self.stream(channel, query.meta_ttl, false) else {
            // No stream: nothing was published (or it was freed); a read creates none.
            let position = StreamPosition { offset: 0, epoch: self.absent_epoch.lock().clone() };
            if let Some(since) = &query.since {
                if !since.epoch.is_empty() && since.epoch != position.epoch {
                    return Err(EngineError::Unrecoverable);
                }
            }
            return Ok((Vec::new(), position));
        };
        let mut s = stream.lock();
        s.refresh(Instant::now(), query.meta_ttl);
        let position = s.position();
        if let Some(since) = &query.since {
            if !since.epoch.is_empty() && since.epoch != s.epoch {
                return Err(EngineError::Unrecoverable);
            }
        }
        let limit = query.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok((Vec::new(), position));
        }
        let pubs: Vec<Publication> = if query.reverse {
            let below = query.since.as_ref().map_or(u64::MAX, |p| p.offset);
            s.items.iter().rev().filter(|p| p.offset < below).take(limit).map(|p| (**p).clone()).collect()
        } else {
            let above = query.since.as_ref().map_or(0, |p| p.offset);
            s.items.iter().filter(|p| p.offset > above).take(limit).map(|p| (**p).clone()).collect()
        };
        Ok((pubs, position))
    }

    async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        if let Some(stream) = self.stream(channel, Duration::ZERO, false) {
            stream.lock().items.clear();
        }
        Ok(())
    }

    async fn publish_command(&self, command: &UserCommand) -> Result<(), EngineError> {
        self.handler.handle_command(command);
        Ok(())
    }

    async fn send_to_node(&self, node: &str, command: &UserCommand) -> Result<(), EngineError> {
        if node != self.handler.node_info().uid {
            return Err(EngineError::Unavailable(format!("no node {node:?} in a memory engine")));
        }
        self.handler.handle_command(command);
        Ok(())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, EngineError> {
        Ok(vec![self.handler.node_info()])
    }

    async fn channels(&self) -> Result<Vec<(String, usize)>, EngineError> {
        Ok(self.handler.local_channels())
    }
}

/// Memory presence: channel -> client id -> info.
pub struct MemoryPresence {
    channels: Sharded<HashMap<String, ClientInfo>>,
}

impl Default for MemoryPresence {
    fn default() -> Self {
        Self { channels: Sharded::new() }
    }
}

#[async_trait]
impl PresenceManager for MemoryPresence {
    async fn add_presence(&self, channel: &str, info: ClientInfo) -> Result<(), EngineError> {
        let mut shard = self.channels.shard(channel).lock();
        shard.entry(channel.to_string()).or_default().insert(info.client.clone(), info);
        Ok(())
    }

    async fn remove_presence(&self, channel: &str, client: &str) -> Result<(), EngineError> {
        let mut shard = self.channels.shard(channel).lock();
        if let Some(clients) = shard.get_mut(channel) {
            clients.remove(client);
            if clients.is_empty() {
                shard.remove(channel);
            }
        }
        Ok(())
    }

    async fn presence(&self, channel: &str) -> Result<HashMap<String, ClientInfo>, EngineError> {
        Ok(self.channels.shard(channel).lock().get(channel).cloned().unwrap_or_default())
    }

    async fn presence_stats(&self, channel: &str) -> Result<(u32, u32), EngineError> {
        let shard = self.channels.shard(channel).lock();
        Ok(shard.get(channel).map_or((0, 0), super::presence_counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HistoryOptions;
    use crate::internode::{NodeInfo, UserCommand};
    use crate::protocol::{ClientInfo, Payload};

    struct Quiet;

    impl BrokerEventHandler for Quiet {
        fn handle_publication(&self, _: &str, _: Arc<Publication>, _: &StreamPosition) {}
        fn handle_join(&self, _: &str, _: &ClientInfo) {}
        fn handle_leave(&self, _: &str, _: &ClientInfo) {}
        fn handle_command(&self, _: &UserCommand) {}
        fn node_info(&self) -> NodeInfo {
            NodeInfo::default()
        }
        fn local_channels(&self) -> Vec<(String, usize)> {
            Vec::new()
        }
        fn has_subscribers(&self, _: &str) -> bool {
            false
        }
    }

    fn streams(b: &MemoryBroker) -> usize {
        b.streams.shards.iter().map(|s| s.lock().len()).sum()
    }

    fn options(meta_ttl: Duration) -> PublishOptions {
        PublishOptions { history: HistoryOptions { size: 10, ttl: meta_ttl, meta_ttl }, idempotency_key: None }
    }

    fn publication() -> Publication {
        Publication {
            data: Payload::from_json("1").unwrap(),
            info: None,
            offset: 0,
            tags: Default::default(),
            delta: false,
            prev_offset: 0,
            use_delta: false,
        }
    }

    #[tokio::test]
    async fn reads_create_nothing_and_a_first_publication_keeps_the_read_position() {
        let b = MemoryBroker::new(Arc::new(Quiet));
        let top = |since| HistoryQuery { limit: Some(0), since, reverse: false, meta_ttl: Duration::from_secs(60) };
        let mut seen = Vec::new();
        for i in 0..1000 {
            seen.push(b.history(&format!("ch{i}"), top(None)).await.unwrap().1);
        }
        assert_eq!(streams(&b), 0, "history reads allocate no stream");
        // The position read on an empty channel stays valid across its first publication.
        let position = b.publish("ch7", publication(), &options(Duration::from_secs(60))).await.unwrap();
        assert_eq!((position.offset, &position.epoch), (1, &seen[7].epoch));
        let (pubs, _) = b.history("ch7", top(Some(seen[7].clone()))).await.map(|(p, t)| (p.len(), t)).unwrap();
        assert_eq!(pubs, 0, "limit 0");
        // A freed stream's epoch is never reused: a position in it is unrecoverable later.
        let short = b.publish("gone", publication(), &options(Duration::from_millis(1))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        b.sweep();
        let again = b.publish("gone", publication(), &options(Duration::from_secs(60))).await.unwrap();
        assert_ne!(again.epoch, short.epoch);
        let read = b.history("gone", top(Some(short))).await;
        assert!(matches!(read, Err(EngineError::Unrecoverable)), "{:?}", read.map(|r| r.1));
    }
}
