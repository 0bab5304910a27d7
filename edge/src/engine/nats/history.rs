//! Publishing into JetStream and reading channel history back.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{DirectGetErrorKind, RawMessageErrorKind};
use async_nats::jetstream::{self, consumer};
use async_nats::HeaderMap;
use futures_util::StreamExt;

use super::{unavailable, ChainTip, NsStream, Shared, EPOCH, KIND, PREV};
use crate::engine::{EngineError, HistoryOptions, HistoryQuery, PublishOptions, IDEMPOTENCY_WINDOW};
use crate::internode::{decode_publication, encode_publication};
use crate::protocol::channel::split_namespace;
use crate::protocol::{ClientInfo, Publication, StreamPosition};

/// Channels whose last offset this node caches before the cache starts over.
const MAX_CACHED_CHANNELS: usize = 100_000;

/// How often a publish retries after another writer moved the channel on.
const MAX_CAS_RETRIES: usize = 16;

/// A history read's consumer is gone this long after its last use, even if its deletion
/// was lost.
const READ_CONSUMER_IDLE: Duration = Duration::from_secs(10);
/// The longest one history fetch waits for the entries its consumer reported pending.
const READ_FETCH_WAIT: Duration = Duration::from_secs(2);

/// A forward read whose span of stream sequences is at most this is read by direct gets (any
/// replica answers, nothing is created, at most this many round trips); a wider one through a
/// consumer, whose creation and deletion are cluster-wide proposals but whose cost in round
/// trips does not grow with the gap.
const DIRECT_READ_MAX: u64 = 16;

/// Deletes a read's consumer in the background once the read is over, however it ended.
pub(super) struct DeleteOnDrop {
    stream: jetstream::stream::Stream,
    name: String,
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let (stream, name) = (self.stream.clone(), std::mem::take(&mut self.name));
        tokio::spawn(async move {
            if let Err(err) = stream.delete_consumer(&name).await {
                tracing::debug!(%err, "history read consumer not deleted (it expires on its own)");
            }
        });
    }
}

/// An ephemeral read consumer (no acks, memory, one replica, gone when idle) from sequence
/// `from`, on `filter` (empty: the whole stream), and its deletion when the read ends.
pub(super) async fn read_consumer(
    ns: &NsStream,
    filter: &str,
    from: u64,
) -> Result<(jetstream::consumer::Consumer<consumer::pull::Config>, DeleteOnDrop), jetstream::stream::ConsumerError> {
    let consumer = ns
        .stream
        .create_consumer(consumer::pull::Config {
            filter_subject: filter.to_string(),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence { start_sequence: from },
            ack_policy: consumer::AckPolicy::None,
            inactive_threshold: READ_CONSUMER_IDLE,
            num_replicas: 1,
            memory_storage: true,
            ..Default::default()
        })
        .await?;
    let delete = DeleteOnDrop { stream: ns.stream.clone(), name: consumer.cached_info().name.clone() };
    Ok((consumer, delete))
}

/// One fetch of at most `want` messages from a read consumer, each with its stream sequence
/// (errors name `what`).
pub(super) async fn fetch_stored(
    consumer: &jetstream::consumer::Consumer<consumer::pull::Config>,
    want: usize,
    what: &'static str,
) -> Result<impl futures_util::Stream<Item = Result<(u64, async_nats::Message), EngineError>>, EngineError> {
    let batch = consumer
        .fetch()
        .max_messages(want)
        .expires(READ_FETCH_WAIT)
        .messages()
        .await
        .map_err(|e| unavailable(what, e))?;
    Ok(batch.map(move |msg| {
        let msg = msg.map_err(|e| unavailable(what, e))?;
        let seq = msg.info().map_err(|e| unavailable(what, e))?.stream_sequence;
        Ok((seq, msg.split().0))
    }))
}

/// A stored message: stream sequence, headers, payload.
pub(super) type RawEntry = (u64, HeaderMap, bytes::Bytes);

/// The publication offset a stored message stands for: its own sequence, or for a position
/// mark the offset it carries.
fn top_offset(m: &RawEntry) -> u64 {
    if m.1.get(KIND).is_some() {
        m.1.get(PREV).and_then(|v| v.as_str().parse::<u64>().ok()).unwrap_or(0)
    } else {
        m.0
    }
}

/// The epoch a stored message carries (written by its publisher), if any.
pub(super) fn epoch_header(headers: &HeaderMap) -> Option<&str> {
    headers.get(EPOCH).map(|v| v.as_str()).filter(|e| !e.is_empty())
}

/// A stream limit in JetStream's terms (-1 = none).
fn stream_cap(cap: u64) -> i64 {
    if cap == 0 {
        -1
    } else {
        i64::try_from(cap).unwrap_or(i64::MAX)
    }
}

/// Whether a stream create failed because another client created the same stream first.
fn lost_create_race(e: &jetstream::context::CreateStreamError) -> bool {
    use jetstream::context::CreateStreamErrorKind;
    use jetstream::ErrorCode;
    matches!(e.kind(), CreateStreamErrorKind::JetStream(j)
        if j.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP || j.error_code() == ErrorCode::STREAM_NAME_EXIST)
}

/// An epoch string from a stream's creation time.
fn epoch_of(info: &jetstream::stream::Info) -> String {
    format!("{:x}", info.created.unix_timestamp_nanos())
}

impl Shared {
    /// Creates or updates a namespace's stream (idempotent) and records its epoch.
    pub(super) async fn ensure_stream(
        &self,
        namespace: &str,
        history: HistoryOptions,
    ) -> Result<NsStream, EngineError> {
        let config = jetstream::stream::Config {
            name: self.layout.stream_name(namespace),
            subjects: vec![self.layout.stream_subjects(namespace)],
            max_messages_per_subject: history.size as i64,
            max_age: history.ttl,
            storage: self.settings.storage,
            num_replicas: self.settings.replicas,
            // JetStream requires the duplicate window to fit within max age.
            duplicate_window: IDEMPOTENCY_WINDOW.min(history.ttl),
            allow_direct: true,
            // A full stream refuses the publish (the publisher gets an error) rather than
            // dropping another channel's acknowledged history; each channel's own
            // `history_size` still drops its oldest.
            discard: jetstream::stream::DiscardPolicy::New,
            max_messages: stream_cap(self.settings.max_messages),
            max_bytes: stream_cap(self.settings.max_bytes),
            republish: Some(jetstream::stream::Republish {
                source: self.layout.stream_subjects(namespace),
                destination: self.layout.republish_destination(namespace),
                headers_only: false,
            }),
            ..Default::default()
        };
        let _setup = self.stream_setup.lock().await;
        let info = match self.js.create_or_update_stream(config.clone()).await {
            Ok(info) => info,
            // Another node created the stream between this call's lookup and its create
            // (JetStream answers "subjects overlap" or "name in use"): it exists now, so a
            // second call updates it.
            Err(e) if lost_create_race(&e) => {
                tracing::debug!(namespace, error = %e, "stream create raced another node's; retrying");
                self.js.create_or_update_stream(config).await.map_err(|e| unavailable("create stream", e))?
            }
            Err(e) => return Err(unavailable("create stream", e)),
        };
        let mut stream = self.js.get_stream(&info.config.name).await.map_err(|e| unavailable("get stream", e))?;
        let info = stream.info().await.map_err(|e| unavailable("stream info", e))?;
        let ns = NsStream { epoch: Arc::from(epoch_of(info)), stream };
        self.streams.write().insert(namespace.to_string(), ns.clone());
        Ok(ns)
    }

    /// Re-reads every known stream's creation time: a stream that was re-created gets a new
    /// epoch, so positioned subscribers notice and recover; a deleted one is created again.
    pub(super) async fn refresh_epochs(&self) {
        let known: Vec<(String, NsStream)> = self.streams.read().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        for (namespace, mut ns) in known {
            let epoch: Arc<str> = match ns.stream.info().await {
                Ok(info) => Arc::from(epoch_of(info)),
                Err(_) => match self.config().namespace(&namespace).cloned() {
                    Some(o) => match self.ensure_stream(&namespace, HistoryOptions::of(&self.config(), &o)).await {
                        Ok(s) => s.epoch,
                        Err(_) => continue,
                    },
                    None => continue,
                },
            };
            if epoch != ns.epoch {
                tracing::warn!(namespace, "history stream was re-created: new epoch");
                ns.epoch = epoch;
                self.last_offsets.lock().clear();
                self.streams.write().insert(namespace, ns);
            }
        }
    }

    /// The stream of the channel's namespace (created on first use if needed).
    async fn stream_for(&self, namespace: &str) -> Result<NsStream, EngineError> {
        if let Some(s) = self.streams.read().get(namespace) {
            return Ok(s.clone());
        }
        // Another call may be setting it up right now: wait for it, then look again.
        drop(self.stream_setup.lock().await);
        if let Some(s) = self.streams.read().get(namespace) {
            return Ok(s.clone());
        }
        let config = self.config();
        let options = config
            .namespace(namespace)
            .ok_or_else(|| EngineError::Unavailable(format!("namespace {namespace:?} has no history stream")))?;
        self.ensure_stream(namespace, HistoryOptions::of(&config, options)).await
    }

    /// The channel's newest stored message (a publication or a position mark), if any.
    async fn last_message(&self, ns: &NsStream, subject: &str) -> Result<Option<RawEntry>, EngineError> {
        match ns.stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => Ok(Some((m.sequence, m.headers, m.payload))),
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
            Err(e) => Err(unavailable("last message", e)),
        }
    }

    /// Where the channel's chain ends: the last stored sequence (what the next write must
    /// expect), the top publication offset (what the next publication chains to; they differ
    /// after a position mark left by `history_remove`) and the chain's epoch. A channel with
    /// nothing stored starts a new chain in the stream's current epoch, read fresh: after the
    /// stream was re-created, the first publication already carries the new epoch.
    async fn chain_tip(&self, ns: &NsStream, namespace: &str, subject: &str) -> Result<ChainTip, EngineError> {
        match self.last_message(ns, subject).await? {
            Some(m) => {
                let epoch = epoch_header(&m.1).map_or_else(|| ns.epoch.clone(), Arc::from);
                Ok(ChainTip { expect: m.0, prev: top_offset(&m), epoch })
            }
            None => {
                let epoch = self.current_epoch(ns, namespace).await?;
                Ok(ChainTip { expect: 0, prev: 0, epoch })
            }
        }
    }

    /// The stream's epoch as it is now (one stream info request), recorded for later reads.
    async fn current_epoch(&self, ns: &NsStream, namespace: &str) -> Result<Arc<str>, EngineError> {
        let mut stream = ns.stream.clone();
        let epoch: Arc<str> = match stream.info().await {
            Ok(info) => Arc::from(epoch_of(info)),
            Err(e) => {
                self.streams.write().remove(namespace);
                return Err(unavailable("stream info", e));
            }
        };
        if epoch != ns.epoch {
            tracing::warn!(namespace, "history stream was re-created: new epoch");
            self.streams.write().insert(namespace.to_string(), NsStream { stream, epoch: epoch.clone() });
        }
        Ok(epoch)
    }

    pub(super) async fn publish(
        &self,
        channel: &str,
        publication: Publication,
        options: &PublishOptions,
    ) -> Result<StreamPosition, EngineError> {
        self.ensure_connected()?;
        let namespace = split_namespace(channel).0;
        let payload = encode_publication(&publication).map_err(|e| unavailable("encode", e))?;
        if options.history.size == 0 {
            let subject = self.layout.live_subject(namespace, channel);
            self.client.publish(subject, payload).await.map_err(|e| unavailable("publish", e))?;
            return Ok(StreamPosition::default());
        }
        let ns = self.stream_for(namespace).await?;
        let subject = self.layout.history_subject(namespace, channel);
        let _serial = self.publish_lock(channel).lock().await;
        let cached = self.last_offsets.lock().get(channel).cloned();
        let mut tip = match cached {
            Some(tip) => tip,
            None => self.chain_tip(&ns, namespace, &subject).await?,
        };
        for _ in 0..MAX_CAS_RETRIES {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Expected-Last-Subject-Sequence", tip.expect.to_string().as_str());
            headers.insert(PREV, tip.prev.to_string().as_str());
            headers.insert(EPOCH, &*tip.epoch);
            if let Some(key) = &options.idempotency_key {
                headers.insert("Nats-Msg-Id", format!("{channel}\u{1f}{key}").as_str());
            }
            let ack = match self.js.publish_with_headers(subject.clone(), headers, payload.clone()).await {
                Ok(fut) => fut.await,
                Err(e) => return Err(unavailable("publish", e)),
            };
            match ack {
                Ok(ack) => {
                    let epoch = tip.epoch.to_string();
                    if !ack.duplicate {
                        let mut cache = self.last_offsets.lock();
                        if cache.len() >= MAX_CACHED_CHANNELS {
                            cache.clear();
                        }
                        let next = ChainTip { expect: ack.sequence, prev: ack.sequence, epoch: tip.epoch };
                        cache.insert(channel.to_string(), next);
                    }
                    return Ok(StreamPosition { offset: ack.sequence, epoch });
                }
                Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                    tip = self.chain_tip(&ns, namespace, &subject).await?;
                }
                Err(e) if e.kind() == PublishErrorKind::StreamNotFound => {
                    self.streams.write().remove(namespace);
                    return Err(unavailable("publish", e));
                }
                Err(e) => return Err(unavailable("publish", e)),
            }
        }
        Err(EngineError::Unavailable(format!("nats: channel {channel:?} is contended; publish not stored")))
    }

    pub(super) async fn publish_join_leave(
        &self,
        channel: &str,
        kind: &str,
        info: &ClientInfo,
    ) -> Result<(), EngineError> {
        self.ensure_connected()?;
        let namespace = split_namespace(channel).0;
        let mut headers = HeaderMap::new();
        headers.insert(KIND, kind);
        let payload = serde_json::to_vec(info).map_err(|e| unavailable("encode", e))?;
        self.client
            .publish_with_headers(self.layout.live_subject(namespace, channel), headers, payload.into())
            .await
            .map_err(|e| unavailable("publish", e))
    }

    /// Stored messages of a channel after `after` (oldest first), at most `limit`, in a fixed
    /// number of round trips however many there are: one ephemeral consumer (its creation
    /// reports how many are pending), one fetch of exactly that many; the consumer is deleted
    /// in the background.
    async fn read_after(
        &self,
        ns: &NsStream,
        subject: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<RawEntry>, EngineError> {
        // A client's position past every sequence (u64::MAX) has nothing after it.
        let Some(from) = after.checked_add(1) else { return Ok(Vec::new()) };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let (consumer, _delete) = read_consumer(ns, subject, from).await.map_err(|e| unavailable("read history", e))?;
        let info = consumer.cached_info();
        let want = usize::try_from(info.num_pending).unwrap_or(usize::MAX).min(limit);
        let mut out = Vec::with_capacity(want.min(1024));
        if want == 0 {
            return Ok(out);
        }
        let mut batch = fetch_stored(&consumer, want, "read history").await?;
        while let Some(stored) = batch.next().await {
            let (seq, msg) = stored?;
            out.push((seq, msg.headers.unwrap_or_default(), msg.payload));
            if out.len() == want {
                break;
            }
        }
        // Fewer than were pending: the fetch ran out of time (or entries aged out meanwhile).
        // A short answer could pass for a complete one, so it is an error and the caller retries.
        if out.len() < want {
            return Err(EngineError::Unavailable(format!("nats: history read got {} of {want} entries", out.len())));
        }
        Ok(out)
    }

    /// Stored messages of a channel after `after` up to the one at sequence `top_seq` (and
    /// perhaps a few past it), at most `limit`, read for this channel alone: by direct gets
    /// when the span is at most [`DIRECT_READ_MAX`] sequences, else through one consumer.
    pub(super) async fn read_alone(
        &self,
        ns: &NsStream,
        subject: &str,
        after: u64,
        limit: usize,
        top_seq: u64,
    ) -> Result<Vec<RawEntry>, EngineError> {
        if top_seq.saturating_sub(after) > DIRECT_READ_MAX {
            return self.read_after(ns, subject, after, limit).await;
        }
        let mut out = Vec::new();
        let mut next = after;
        while out.len() < limit && next < top_seq {
            let Some(from) = next.checked_add(1) else { break };
            match ns.stream.direct_get_next_for_subject(subject, Some(from)).await {
                Ok(m) => {
                    next = m.sequence;
                    out.push((m.sequence, m.headers, m.payload));
                }
                // Nothing stored after `from` (on the replica that answered).
                Err(e) if e.kind() == DirectGetErrorKind::NotFound => return Ok(out),
                Err(e) => return Err(unavailable("read history", e)),
            }
        }
        Ok(out)
    }

    pub(super) async fn history(
        self: &Arc<Self>,
        channel: &str,
        query: HistoryQuery,
    ) -> Result<(Vec<Publication>, StreamPosition), EngineError> {
        self.ensure_connected()?;
        let namespace = split_namespace(channel).0;
        let ns = self.stream_for(namespace).await?;
        let subject = self.layout.history_subject(namespace, channel);
        let last = self.last_message(&ns, &subject).await?;
        let top = last.as_ref().map_or(0, top_offset);
        let last_seq = last.as_ref().map_or(0, |m| m.0);
        // The channel's epoch is the one its newest message carries (an empty channel is in
        // the stream's epoch, which its first publication will carry).
        let epoch = last.as_ref().and_then(|m| epoch_header(&m.1)).unwrap_or(&ns.epoch).to_string();
        let position = StreamPosition { offset: top, epoch };
        if let Some(since) = &query.since {
            if !since.epoch.is_empty() && since.epoch != position.epoch {
                return Err(EngineError::Unrecoverable);
            }
        }
        let limit = query.limit.unwrap_or(usize::MAX);
        if limit == 0 || top == 0 {
            return Ok((Vec::new(), position));
        }
        let history_cap = self.config().namespace(namespace).map_or(0, |o| o.history_size).max(1);
        // Forward reads link each publication to the one read before it: a filtered consumer
        // returns every stored message of the subject in order, so consecutive entries have
        // nothing between them. The first links to the client's position when the read found
        // that position still stored (nothing after it was trimmed), else to its header. The
        // stored `Gyre-Prev` alone is not enough: a publish racing a JetStream leader change
        // can be admitted against a stale expected sequence, forking the header chain while
        // no publication is missing.
        let mut link: Option<u64> = None;
        let raw = if query.reverse {
            let below = query.since.as_ref().map_or(u64::MAX, |s| s.offset);
            match last {
                // The newest publication alone: the read that found the top has it.
                Some(m) if limit == 1 && m.0 < below && m.1.get(KIND).is_none() => vec![m],
                _ => {
                    // Newest first: read the (bounded) retained window and take from the end.
                    let mut all = self.read_after(&ns, &subject, 0, history_cap + 1).await?;
                    all.retain(|(seq, _, _)| *seq < below);
                    all.reverse();
                    all.truncate(limit);
                    all
                }
            }
        } else {
            let after = query.since.as_ref().map_or(0, |s| s.offset);
            if after >= top {
                // Already at the top: nothing to read (the common reconnect).
                Vec::new()
            } else {
                let want = limit.min(history_cap + 1);
                // From the position itself, to see whether it is still stored.
                let anchored = after > 0;
                let from = if anchored { after - 1 } else { 0 };
                let mut read = self
                    .read_forward(&ns, &subject, from, want.saturating_add(usize::from(anchored)), last_seq)
                    .await?;
                if anchored && read.first().is_some_and(|(seq, _, _)| *seq == after) {
                    read.remove(0);
                    link = Some(after);
                }
                read.truncate(want);
                // The read must reach the top it was anchored to (unless the limit cut it
                // short): a replica that has not caught up yet answers from an older state,
                // and passing that on would make a complete recovery look incomplete.
                let reached = read.iter().any(|(seq, _, _)| *seq >= last_seq);
                if !reached && read.len() < want {
                    return Err(EngineError::Unavailable(format!(
                        "nats: history of {channel:?} read behind its top {last_seq} (a replica catching up)"
                    )));
                }
                read
            }
        };
        let forward = !query.reverse;
        let mut pubs = Vec::with_capacity(raw.len());
        for (seq, headers, payload) in raw {
            // Position marks only anchor writes; publications chain past them. Publications
            // stored after the top was read are left out: the answer is the stream up to its
            // position (a recovering subscriber gets newer ones live), so a concurrent publish
            // cannot make a complete recovery look incomplete.
            if headers.get(KIND).is_some() {
                link = None;
                continue;
            }
            if seq > top {
                continue;
            }
            let mut p = decode_publication(&payload).map_err(|e| unavailable("decode history", e))?;
            p.offset = seq;
            let stored_prev = headers.get(PREV).and_then(|v| v.as_str().parse::<u64>().ok()).unwrap_or(0);
            p.prev_offset = link.unwrap_or(stored_prev);
            if forward {
                link = Some(seq);
            }
            pubs.push(p);
        }
        Ok((pubs, position))
    }

    /// Drops a channel's publications but keeps its position: the subject is purged and a
    /// mark continues the offset chain.
    pub(super) async fn remove_history(&self, channel: &str) -> Result<(), EngineError> {
        self.ensure_connected()?;
        let namespace = split_namespace(channel).0;
        let ns = self.stream_for(namespace).await?;
        let subject = self.layout.history_subject(namespace, channel);
        let _serial = self.publish_lock(channel).lock().await;
        let tip = self.chain_tip(&ns, namespace, &subject).await?;
        ns.stream.purge().filter(subject.clone()).await.map_err(|e| unavailable("purge", e))?;
        let top = tip.prev;
        if top == 0 {
            return Ok(());
        }
        let mut headers = HeaderMap::new();
        headers.insert(KIND, "mark");
        headers.insert(PREV, top.to_string().as_str());
        headers.insert(EPOCH, &*tip.epoch);
        headers.insert("Nats-Expected-Last-Subject-Sequence", "0");
        let ack = self
            .js
            .publish_with_headers(subject, headers, bytes::Bytes::new())
            .await
            .map_err(|e| unavailable("mark", e))?
            .await
            .map_err(|e| unavailable("mark", e))?;
        self.last_offsets
            .lock()
            .insert(channel.to_string(), ChainTip { expect: ack.sequence, prev: top, epoch: tip.epoch });
        Ok(())
    }
}
