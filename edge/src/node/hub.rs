//! The hub: which local connections are subscribed to which channel, and fan-out to them.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use super::delta;
use crate::connection::{ClientHandle, Control};
use crate::protocol::{
    ClientInfo, Encoding, FilterNode, JoinLeave, Payload, Publication, Push, PushBody, Reply, StreamPosition,
};

const SHARDS: usize = 64;

/// Most live publications held for one subscriber while its subscribe is being answered.
const MAX_PENDING: usize = 10_000;

/// One local subscriber of a channel.
pub struct Subscriber {
    pub client: Arc<ClientHandle>,
    /// Wants join/leave pushes.
    pub join_leave: bool,
    /// Subscribed by the server: losing continuity closes the connection (3010).
    pub server_side: bool,
    /// Positioned subscriptions: the last delivered position, checked for gaps.
    tracked: Option<Tracked>,
    /// While the subscribe is being answered, live publications wait here.
    pending: Option<Vec<Arc<Publication>>>,
    /// Continuity was lost; nothing more is delivered until the session drops it.
    broken: bool,
    /// Negotiated fossil deltas.
    delta: bool,
    /// Holds the channel's previous payload, so the next publication may be a delta.
    delta_ready: bool,
    /// Publications whose tags do not pass are not sent (positions still advance).
    filter: Option<Arc<FilterNode>>,
}

struct Tracked {
    offset: u64,
    epoch: String,
    /// The stream top this subscriber was behind at the last position check.
    behind: Option<u64>,
}

impl Subscriber {
    /// A subscriber that receives live publications right away.
    pub fn live(client: Arc<ClientHandle>, join_leave: bool, server_side: bool) -> Self {
        Self {
            client,
            join_leave,
            server_side,
            tracked: None,
            pending: None,
            broken: false,
            delta: false,
            delta_ready: false,
            filter: None,
        }
    }

    /// Only publications whose tags pass `filter` are sent.
    pub fn with_filter(mut self, filter: Option<Arc<FilterNode>>) -> Self {
        self.filter = filter;
        self
    }

    fn filters_out(&self, publication: &Publication) -> bool {
        self.filter.as_ref().is_some_and(|f| !f.matches(&publication.tags))
    }

    /// Publications may reach it as fossil deltas (the subscription negotiated them).
    pub fn with_delta(mut self, delta: bool) -> Self {
        self.delta = delta;
        self
    }

    /// A subscriber whose live publications wait until [`Hub::activate`] (positioning and
    /// recovery: the reply's position must come before them, without gap or duplicate).
    pub fn syncing(client: Arc<ClientHandle>, join_leave: bool, server_side: bool) -> Self {
        Self { pending: Some(Vec::new()), ..Self::live(client, join_leave, server_side) }
    }

    fn lose_continuity(&mut self, channel: &str) {
        self.broken = true;
        self.pending = None;
        self.client.control(Control::InsufficientState { channel: channel.to_string() });
    }
}

/// Where this node's engine subscription of a channel stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineSub {
    /// The first local subscriber is subscribing the node; others wait for the outcome.
    Subscribing,
    Subscribed,
    /// The engine subscribe failed: the next subscriber to arrive tries again.
    Failed,
}

/// The subscribers of one channel; its lock serializes fan-out so every subscriber sees the
/// same order.
struct ChannelSubs {
    subs: Mutex<HashMap<Arc<str>, Subscriber>>,
    /// The last publication's payload while delta subscribers are here (the base of the next
    /// delta); locked only under `subs`.
    prev: Mutex<Option<Payload>>,
    /// The engine subscription every subscriber here relies on; changed under `subs`.
    engine: Arc<tokio::sync::watch::Sender<EngineSub>>,
    /// Tells this entry from a later one for the same channel (the engine subscription is
    /// made again when a channel's entry is created again).
    generation: u64,
    /// The newest position delivered live here (offset 0 = none yet); locked only under `subs`.
    live: Mutex<StreamPosition>,
}

impl ChannelSubs {
    fn new(generation: u64) -> Self {
        Self {
            subs: Mutex::new(HashMap::new()),
            prev: Mutex::new(None),
            engine: Arc::new(tokio::sync::watch::Sender::new(EngineSub::Subscribing)),
            generation,
            live: Mutex::new(StreamPosition::default()),
        }
    }
}

/// A subscriber's place in a channel entry: how to learn (or, for the first, report) the
/// outcome of the engine subscription, and what had been delivered live when it arrived.
pub struct Registration {
    engine: Arc<tokio::sync::watch::Sender<EngineSub>>,
    /// The channel entry's generation.
    pub generation: u64,
    /// The newest offset delivered live before this subscriber started holding publications:
    /// a history read that reached at least this far (in this epoch) leaves no gap before
    /// what it holds.
    pub live_top: StreamPosition,
}

impl Registration {
    /// Reports the engine subscribe's outcome to everyone waiting on it.
    pub fn engine_subscribed(&self, ok: bool) {
        self.engine.send_replace(if ok { EngineSub::Subscribed } else { EngineSub::Failed });
    }

    /// Waits (at most `limit`) until the engine subscription is made; false when it failed
    /// or did not finish in time.
    pub async fn wait_subscribed(&self, limit: std::time::Duration) -> bool {
        let mut rx = self.engine.subscribe();
        let outcome = tokio::time::timeout(limit, rx.wait_for(|s| *s != EngineSub::Subscribing)).await;
        matches!(outcome, Ok(Ok(s)) if *s == EngineSub::Subscribed)
    }

    /// Whether the engine subscription is made now.
    pub fn is_subscribed(&self) -> bool {
        *self.engine.borrow() == EngineSub::Subscribed
    }
}

/// A user's connections on this node by client id.
type UserConnections = HashMap<Arc<str>, Arc<ClientHandle>>;

/// Sharded maps of channel subscribers and of users' connections.
pub struct Hub {
    channels: Vec<RwLock<HashMap<Arc<str>, Arc<ChannelSubs>>>>,
    users: Vec<RwLock<HashMap<Arc<str>, UserConnections>>>,
    hasher: RandomState,
    num_clients: AtomicUsize,
    num_subs: AtomicUsize,
    /// Generations of channel entries.
    generations: std::sync::atomic::AtomicU64,
    /// Connections holding a [`Slot`]: connecting or connected (`client_connection_limit`).
    slots: AtomicUsize,
}

/// A place under `client_connection_limit`, held from the start of a connect until the
/// session ends; taken atomically, so concurrent connects never exceed the limit.
pub struct Slot(Arc<Hub>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.slots.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Why a client was not added.
#[derive(Debug, PartialEq, Eq)]
pub struct UserLimitReached;

/// Result of adding a subscriber.
pub enum Added {
    /// The broker must subscribe the node (the first local subscriber, or the first since a
    /// failed engine subscribe) and report the outcome on the registration.
    First(Registration),
    /// The engine subscription exists or is being made: wait for it before answering.
    Joined(Registration),
    AlreadySubscribed,
}

/// Encodes a publication push (once per publication and encoding on the live path).
fn encode_publication(encoding: Encoding, channel: &str, publication: Arc<Publication>) -> Bytes {
    encoding.encode_reply(&Reply::push(Push { channel: channel.to_string(), body: PushBody::Publication(publication) }))
}

/// A message encoded at most once per encoding, on first use.
struct PerEncoding<F> {
    encoded: [Option<Bytes>; Encoding::COUNT],
    encode: F,
}

impl<F: FnMut(Encoding) -> Bytes> PerEncoding<F> {
    fn new(encode: F) -> Self {
        Self { encoded: Default::default(), encode }
    }

    fn get(&mut self, encoding: Encoding) -> Bytes {
        let slot = &mut self.encoded[encoding.index()];
        slot.get_or_insert_with(|| (self.encode)(encoding)).clone()
    }
}

/// A publication as delta subscribers receive it, per encoding: full (first after subscribe,
/// or when no delta is worth it) or as a delta against the channel's previous payload, each
/// computed and encoded at most once.
struct DeltaEncodings<'a> {
    channel: &'a str,
    publication: &'a Arc<Publication>,
    prev: Option<&'a Payload>,
    /// `None` until computed; then the delta, if one is worth sending.
    delta: Option<Option<Bytes>>,
    full: [Option<Bytes>; Encoding::COUNT],
    as_delta: [Option<Bytes>; Encoding::COUNT],
}

impl<'a> DeltaEncodings<'a> {
    fn new(channel: &'a str, publication: &'a Arc<Publication>, prev: Option<&'a Payload>) -> Self {
        Self { channel, publication, prev, delta: None, full: Default::default(), as_delta: Default::default() }
    }

    fn get(&mut self, encoding: Encoding, as_delta: bool) -> Bytes {
        if as_delta && self.publication.use_delta {
            let (publication, prev) = (self.publication, self.prev);
            let delta = self.delta.get_or_insert_with(|| prev.and_then(|p| delta::fossil(p, &publication.data)));
            if let Some(d) = delta.as_ref() {
                let slot = &mut self.as_delta[encoding.index()];
                if slot.is_none() {
                    *slot = delta::for_subscriber(encoding, publication, Some(d))
                        .map(|p| encode_publication(encoding, self.channel, p));
                }
                if let Some(bytes) = slot {
                    return bytes.clone();
                }
            }
        }
        let (channel, publication) = (self.channel, self.publication);
        self.full[encoding.index()]
            .get_or_insert_with(|| {
                let full = delta::for_subscriber(encoding, publication, None).unwrap_or_else(|| publication.clone());
                encode_publication(encoding, channel, full)
            })
            .clone()
    }
}

impl Default for Hub {
    fn default() -> Self {
        Self {
            channels: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            users: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            num_clients: AtomicUsize::new(0),
            num_subs: AtomicUsize::new(0),
            generations: std::sync::atomic::AtomicU64::new(0),
            slots: AtomicUsize::new(0),
        }
    }
}

impl Hub {
    fn shard_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % SHARDS
    }

    /// Registers a connected client; returns how many connections its user now has.
    pub fn add_client(&self, client: Arc<ClientHandle>) -> usize {
        self.try_add_client(client, 0).unwrap_or(0)
    }

    /// Adds a client unless its user already has `user_limit` connections here (0 = no
    /// limit; anonymous connections are not limited). Checked and added under one lock.
    pub fn try_add_client(&self, client: Arc<ClientHandle>, user_limit: usize) -> Result<usize, UserLimitReached> {
        let mut users = self.users[self.shard_of(&client.user)].write();
        let conns = users.entry(client.user.clone()).or_default();
        if user_limit > 0 && !client.user.is_empty() && conns.len() >= user_limit {
            if conns.is_empty() {
                users.remove(&client.user);
            }
            return Err(UserLimitReached);
        }
        conns.insert(client.id.clone(), client);
        self.num_clients.fetch_add(1, Ordering::Relaxed);
        Ok(conns.len())
    }

    /// Takes a connection slot when fewer than `limit` are held.
    pub fn reserve_slot(self: &Arc<Self>, limit: usize) -> Option<Slot> {
        self.slots
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| (held < limit).then_some(held + 1))
            .ok()
            .map(|_| Slot(self.clone()))
    }

    /// Slots held now (connecting and connected clients under a connection limit).
    pub fn slots_held(&self) -> usize {
        self.slots.load(Ordering::Acquire)
    }

    /// Connections the user has on this node.
    pub fn user_connections(&self, user: &str) -> usize {
        self.users[self.shard_of(user)].read().get(user).map_or(0, HashMap::len)
    }

    pub fn remove_client(&self, client: &ClientHandle) {
        let mut users = self.users[self.shard_of(&client.user)].write();
        if let Some(conns) = users.get_mut(&client.user) {
            if conns.remove(&client.id).is_some() {
                self.num_clients.fetch_sub(1, Ordering::Relaxed);
            }
            if conns.is_empty() {
                users.remove(&client.user);
            }
        }
    }

    /// Every live connection on this node.
    pub fn all_clients(&self) -> Vec<(Arc<str>, Arc<ClientHandle>)> {
        let mut out = Vec::new();
        for shard in &self.users {
            for conns in shard.read().values() {
                out.extend(conns.iter().map(|(id, c)| (id.clone(), c.clone())));
            }
        }
        out
    }

    /// Live connections of a user (for server-side actions by user).
    pub fn user_clients(&self, user: &str) -> Vec<Arc<ClientHandle>> {
        self.users[self.shard_of(user)].read().get(user).map(|c| c.values().cloned().collect()).unwrap_or_default()
    }

    /// Adds a subscriber. The first one of a channel entry (or the first after its engine
    /// subscribe failed) must subscribe the node; the others wait for that outcome, so none is
    /// answered while the node receives nothing for the channel.
    pub fn add_subscriber(&self, channel: &str, sub: Subscriber) -> Added {
        // The shard lock is held while inserting so a concurrent removal of the last
        // subscriber cannot orphan the entry we add to.
        let mut shard = self.channels[self.shard_of(channel)].write();
        let entry = match shard.get(channel) {
            Some(e) => e.clone(),
            None => {
                let generation = self.generations.fetch_add(1, Ordering::Relaxed);
                let e = Arc::new(ChannelSubs::new(generation));
                shard.insert(Arc::from(channel), e.clone());
                e
            }
        };
        let mut subs = entry.subs.lock();
        let first = subs.is_empty();
        match subs.entry(sub.client.id.clone()) {
            Entry::Occupied(_) => Added::AlreadySubscribed,
            Entry::Vacant(v) => {
                v.insert(sub);
                self.num_subs.fetch_add(1, Ordering::Relaxed);
                let registration = Registration {
                    engine: entry.engine.clone(),
                    generation: entry.generation,
                    live_top: entry.live.lock().clone(),
                };
                let retry = entry.engine.send_if_modified(|s| {
                    let failed = *s == EngineSub::Failed;
                    if failed {
                        *s = EngineSub::Subscribing;
                    }
                    failed
                });
                if first || retry {
                    Added::First(registration)
                } else {
                    Added::Joined(registration)
                }
            }
        }
    }

    /// Removes a subscriber; true when it was the channel's last local one.
    pub fn remove_subscriber(&self, channel: &str, client: &str) -> bool {
        let mut shard = self.channels[self.shard_of(channel)].write();
        let Some(entry) = shard.get(channel).cloned() else { return false };
        let mut subs = entry.subs.lock();
        if subs.remove(client).is_some() {
            self.num_subs.fetch_sub(1, Ordering::Relaxed);
        }
        if subs.is_empty() {
            shard.remove(channel);
            return true;
        }
        false
    }

    fn entry(&self, channel: &str) -> Option<Arc<ChannelSubs>> {
        self.channels[self.shard_of(channel)].read().get(channel).cloned()
    }

    /// Encodes a join/leave push once and queues it for subscribers that asked for them.
    fn fan_out_join_leave(&self, channel: &str, push: impl FnOnce() -> Push) -> usize {
        let Some(entry) = self.entry(channel) else { return 0 };
        let subs = entry.subs.lock();
        let mut targets = subs.values().filter(|s| s.join_leave && s.pending.is_none() && !s.broken).peekable();
        if targets.peek().is_none() {
            return 0;
        }
        let reply = Reply::push(push());
        let mut bytes = PerEncoding::new(|encoding| encoding.encode_reply(&reply));
        let mut n = 0;
        for sub in targets {
            sub.client.send(bytes.get(sub.client.encoding));
            n += 1;
        }
        n
    }

    /// Delivers a publication: encoded once, the same bytes queued for every subscriber;
    /// positioned subscribers are checked for continuity, syncing ones hold it. Subscribers
    /// that negotiated deltas get the full payload first, then deltas against the previous one.
    pub fn broadcast_publication(
        &self,
        channel: &str,
        publication: Arc<Publication>,
        position: &StreamPosition,
    ) -> usize {
        let Some(entry) = self.entry(channel) else { return 0 };
        let mut subs = entry.subs.lock();
        let mut prev = entry.prev.lock();
        let mut bytes = PerEncoding::new(|encoding| encode_publication(encoding, channel, publication.clone()));
        let mut for_delta = DeltaEncodings::new(channel, &publication, prev.as_ref());
        let mut has_delta_subs = false;
        let mut n = 0;
        // A publication older than one already delivered here arrived out of stream order
        // (JetStream leaders changed between them). A tracked subscriber already past it never
        // had it live, and its own offset cannot tell: it loses continuity and recovers.
        let late = publication.offset > 0 && {
            let mut live = entry.live.lock();
            let late = live.epoch == position.epoch && publication.offset < live.offset;
            if !late {
                live.offset = publication.offset;
                if live.epoch != position.epoch {
                    live.epoch.clone_from(&position.epoch);
                }
            }
            late
        };
        for sub in subs.values_mut() {
            has_delta_subs |= sub.delta;
            if sub.broken {
                continue;
            }
            if let Some(pending) = &mut sub.pending {
                if pending.len() < MAX_PENDING {
                    pending.push(publication.clone());
                } else {
                    sub.lose_continuity(channel);
                }
                continue;
            }
            if let Some(t) = &mut sub.tracked {
                if publication.offset > 0 {
                    if t.epoch == position.epoch && publication.offset <= t.offset {
                        if late && publication.offset < t.offset {
                            sub.lose_continuity(channel);
                        }
                        continue;
                    }
                    if t.epoch != position.epoch || publication.prev_offset != t.offset {
                        sub.lose_continuity(channel);
                        continue;
                    }
                    t.offset = publication.offset;
                }
            }
            if sub.filters_out(&publication) {
                continue;
            }
            let encoding = sub.client.encoding;
            let out = if sub.delta {
                let as_delta = sub.delta_ready;
                sub.delta_ready = true;
                for_delta.get(encoding, as_delta)
            } else {
                bytes.get(encoding)
            };
            sub.client.send(out);
            n += 1;
        }
        *prev = has_delta_subs.then(|| publication.data.clone());
        n
    }

    /// Ends a subscriber's sync: queues `prelude` (the subscribe reply), then the held
    /// publications after `position`, and starts live delivery (with continuity checks when
    /// `track`). Returns false when the subscriber is gone.
    pub fn activate(
        &self,
        channel: &str,
        client: &str,
        position: &StreamPosition,
        track: bool,
        prelude: Option<Bytes>,
    ) -> bool {
        let Some(entry) = self.entry(channel) else { return false };
        let mut subs = entry.subs.lock();
        let Some(sub) = subs.get_mut(client) else { return false };
        if let Some(p) = prelude {
            sub.client.send(p);
        }
        let held = sub.pending.take().unwrap_or_default();
        let mut last = position.offset;
        for publication in held {
            if publication.offset > 0 && publication.offset <= last {
                continue;
            }
            if track && publication.offset > 0 && publication.prev_offset != last {
                sub.lose_continuity(channel);
                return true;
            }
            last = last.max(publication.offset);
            if sub.filters_out(&publication) {
                continue;
            }
            let encoding = sub.client.encoding;
            let out = match sub.delta.then(|| delta::for_subscriber(encoding, &publication, None)).flatten() {
                Some(full) => encode_publication(encoding, channel, full),
                None => encode_publication(encoding, channel, publication),
            };
            sub.delta_ready = sub.delta;
            sub.client.send(out);
        }
        if track {
            sub.tracked = Some(Tracked { offset: last, epoch: position.epoch.clone(), behind: None });
        }
        true
    }

    /// Channels with positioned, live subscribers: what the periodic position check reads.
    pub fn positioned_channels(&self) -> Vec<Arc<str>> {
        let mut out = Vec::new();
        for shard in &self.channels {
            for (name, entry) in shard.read().iter() {
                if entry.subs.lock().values().any(|s| s.tracked.is_some() && !s.broken) {
                    out.push(name.clone());
                }
            }
        }
        out
    }

    /// Compares positioned subscribers with the stream's top. Another epoch loses continuity
    /// at once. An offset behind the top is remembered; still being behind that top at the next
    /// check loses continuity (a publication in flight has arrived by then, a lost one never
    /// will). Returns how many are behind now, so the caller checks again soon.
    pub fn check_positions(&self, channel: &str, top: &StreamPosition) -> usize {
        if top.epoch.is_empty() {
            return 0;
        }
        let Some(entry) = self.entry(channel) else { return 0 };
        let mut subs = entry.subs.lock();
        let mut behind = 0;
        for sub in subs.values_mut() {
            if sub.broken || sub.pending.is_some() {
                continue;
            }
            let lost = match &sub.tracked {
                None => continue,
                Some(t) => t.epoch != top.epoch || t.behind.is_some_and(|mark| t.offset < mark),
            };
            if lost {
                sub.lose_continuity(channel);
                continue;
            }
            if let Some(t) = &mut sub.tracked {
                t.behind = (t.offset < top.offset).then_some(top.offset);
                behind += usize::from(t.behind.is_some());
            }
        }
        behind
    }

    pub fn broadcast_join(&self, channel: &str, info: &ClientInfo) -> usize {
        self.fan_out_join_leave(channel, || Push {
            channel: channel.to_string(),
            body: PushBody::Join(JoinLeave { info: info.clone() }),
        })
    }

    pub fn broadcast_leave(&self, channel: &str, info: &ClientInfo) -> usize {
        self.fan_out_join_leave(channel, || Push {
            channel: channel.to_string(),
            body: PushBody::Leave(JoinLeave { info: info.clone() }),
        })
    }

    /// Channels with at least one local subscriber, and their subscriber counts.
    pub fn channels(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for shard in &self.channels {
            for (name, entry) in shard.read().iter() {
                out.push((name.to_string(), entry.subs.lock().len()));
            }
        }
        out
    }

    /// Whether the channel has at least one local subscriber.
    pub fn has_subscribers(&self, channel: &str) -> bool {
        self.entry(channel).is_some_and(|e| !e.subs.lock().is_empty())
    }

    pub fn num_clients(&self) -> usize {
        self.num_clients.load(Ordering::Relaxed)
    }

    pub fn num_users(&self) -> usize {
        self.users.iter().map(|s| s.read().len()).sum()
    }

    pub fn num_channels(&self) -> usize {
        self.channels.iter().map(|s| s.read().len()).sum()
    }

    pub fn num_subscriptions(&self) -> usize {
        self.num_subs.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{Batch, Outbox};
    use crate::protocol::Payload;
    use std::time::Duration;

    fn client() -> (Arc<ClientHandle>, Arc<Outbox>) {
        let outbox = Arc::new(Outbox::new(1 << 20));
        (Arc::new(ClientHandle::new(Arc::from("c1"), Arc::from("u1"), Encoding::Json, outbox.clone())), outbox)
    }

    fn publication(offset: u64) -> Arc<Publication> {
        Arc::new(Publication {
            data: Payload::from_json(&offset.to_string()).unwrap(),
            info: None,
            offset,
            tags: Default::default(),
            delta: false,
            prev_offset: offset.saturating_sub(1),
            use_delta: false,
        })
    }

    async fn drained(outbox: &Outbox) -> Vec<String> {
        match outbox.next_batch().await {
            Batch::Messages(m) => m.iter().map(|b| String::from_utf8_lossy(b).into_owned()).collect(),
            Batch::Close(d) => panic!("closed: {d}"),
        }
    }

    #[tokio::test]
    async fn syncing_subscriber_gets_reply_then_held_publications_without_duplicates_or_gaps() {
        let hub = Hub::default();
        let (c, outbox) = client();
        let epoch = StreamPosition { offset: 0, epoch: "e".into() };
        hub.add_subscriber("ch", Subscriber::syncing(c.clone(), false, false));
        // Live publications while the subscribe is answered are held, not sent.
        for o in 1..=3 {
            hub.broadcast_publication("ch", publication(o), &epoch);
        }
        assert_eq!(outbox.queued_bytes(), 0);
        // History covered up to offset 2: the reply goes first, then only offset 3.
        let at = StreamPosition { offset: 2, epoch: "e".into() };
        assert!(hub.activate("ch", "c1", &at, true, Some(Bytes::from_static(b"REPLY"))));
        let out = drained(&outbox).await;
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(out[0], "REPLY");
        assert!(out[1].contains("\"offset\":3"), "{out:?}");
        // Live: the next offset passes, a repeat is skipped, a gap loses continuity.
        hub.broadcast_publication("ch", publication(4), &epoch);
        hub.broadcast_publication("ch", publication(4), &epoch);
        let out = drained(&outbox).await;
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("\"offset\":4"));
        hub.broadcast_publication("ch", publication(6), &epoch);
        assert!(matches!(outbox.next_control().await, Control::InsufficientState { channel } if channel == "ch"));
        hub.broadcast_publication("ch", publication(7), &epoch);
        assert_eq!(outbox.queued_bytes(), 0, "nothing is delivered after continuity is lost");
    }

    #[tokio::test]
    async fn an_epoch_change_loses_continuity() {
        let hub = Hub::default();
        let (c, outbox) = client();
        hub.add_subscriber("ch", Subscriber::syncing(c, false, false));
        hub.activate("ch", "c1", &StreamPosition { offset: 5, epoch: "old".into() }, true, None);
        hub.broadcast_publication("ch", publication(6), &StreamPosition { offset: 6, epoch: "new".into() });
        assert!(matches!(outbox.next_control().await, Control::InsufficientState { .. }));
    }

    #[tokio::test]
    async fn a_publication_arriving_after_a_newer_one_loses_continuity() {
        let hub = Hub::default();
        let (c, outbox) = client();
        let epoch = StreamPosition { offset: 0, epoch: "e".into() };
        hub.add_subscriber("ch", Subscriber::syncing(c, false, false));
        hub.activate("ch", "c1", &StreamPosition { offset: 5, epoch: "e".into() }, true, None);
        // A JetStream leader change forked the chain: 8 was stored with 5 as its predecessor,
        // and 7 (also after 5) arrives here after it. The subscriber passed 7 without it.
        let forked = |offset, prev| Arc::new(Publication { prev_offset: prev, ..(*publication(offset)).clone() });
        hub.broadcast_publication("ch", forked(8, 5), &epoch);
        assert!(drained(&outbox).await[0].contains("\"offset\":8"));
        hub.broadcast_publication("ch", forked(7, 5), &epoch);
        let control = tokio::time::timeout(Duration::from_secs(5), outbox.next_control()).await;
        assert!(matches!(control, Ok(Control::InsufficientState { channel }) if channel == "ch"));
        // A registration after it still sees 8 as the newest delivered live (the late one does
        // not move it back).
        let late = Arc::new(ClientHandle::new(
            Arc::from("c2"),
            Arc::from("u1"),
            Encoding::Json,
            Arc::new(Outbox::new(1 << 20)),
        ));
        let Added::Joined(r) = hub.add_subscriber("ch", Subscriber::syncing(late, false, false)) else {
            panic!("joins the channel")
        };
        assert_eq!(r.live_top.offset, 8);
    }

    #[tokio::test]
    async fn subscribers_wait_for_the_engine_subscribe_and_retry_after_it_failed() {
        let hub = Hub::default();
        let sub = |id: &str| {
            let outbox = Arc::new(Outbox::new(1 << 20));
            Subscriber::live(
                Arc::new(ClientHandle::new(Arc::from(id), Arc::from("u"), Encoding::Json, outbox)),
                false,
                false,
            )
        };
        let Added::First(first) = hub.add_subscriber("ch", sub("a")) else { panic!("a is first") };
        let Added::Joined(joined) = hub.add_subscriber("ch", sub("b")) else { panic!("b joins") };
        // The joiner is not answered while the first's engine subscribe is in flight...
        let wait = tokio::spawn(async move { joined.wait_subscribed(Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        assert!(!wait.is_finished());
        // ...and learns that it failed, instead of staying with no engine subscription.
        first.engine_subscribed(false);
        assert!(!wait.await.unwrap());
        // The next subscriber to arrive subscribes the node again; a success reaches everyone.
        let Added::First(retry) = hub.add_subscriber("ch", sub("c")) else { panic!("c subscribes again") };
        let Added::Joined(late) = hub.add_subscriber("ch", sub("d")) else { panic!("d joins") };
        retry.engine_subscribed(true);
        assert!(late.wait_subscribed(Duration::from_secs(5)).await);
        assert!(matches!(hub.add_subscriber("ch", sub("e")), Added::Joined(r) if r.is_subscribed()));
        // A new entry for the channel (after everyone left) starts over.
        for id in ["a", "b", "c", "d", "e"] {
            hub.remove_subscriber("ch", id);
        }
        assert!(matches!(hub.add_subscriber("ch", sub("f")), Added::First(_)));
    }
}
