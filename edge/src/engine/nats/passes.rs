//! Forward history reads of one namespace that wait at the same time are served by one pass
//! over the stream.
//!
//! JetStream finds a channel's next stored message by walking the stream's sequences, so a
//! filtered read of a gap costs the whole span of sequences behind it, however few of them
//! are the channel's. In a reconnect storm over many channels of one namespace every read
//! walks the same span again: 1,000 channels missing 100 publications each cost the NATS
//! servers 1,000 walks of 100,000 sequences. One unfiltered pass over the union of the spans
//! serves all the reads waiting together, at the cost of one walk. A read arriving while a
//! pass runs waits for the next; a read alone, or one far behind, is read by itself. Passes
//! over one stream run one at a time, so however many clients reconnect, each node puts at
//! most one read per namespace (and [`WIDE_READS_IN_FLIGHT`] wide ones) on JetStream at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::history::{fetch_stored, read_consumer, RawEntry};
use super::{unavailable, NsStream, Shared};
use crate::engine::EngineError;

/// The widest span of stream sequences one read may share a pass over; a read further
/// behind its channel's top is read alone (a pass would carry every other channel's
/// messages of that span to this node).
pub(super) const SHARED_SPAN_MAX: u64 = 200_000;
/// Reads wider than [`SHARED_SPAN_MAX`] one node runs at once.
pub(super) const WIDE_READS_IN_FLIGHT: usize = 8;
/// How long a pass's window answers later reads.
const WINDOW_TTL: Duration = Duration::from_secs(2);
/// The most a window keeps of channels no read of its batch asked for (payload, subject and
/// an estimate of the rest per message).
const WINDOW_KEEP_BYTES: usize = 32 << 20;
const ENTRY_OVERHEAD: usize = 128;
/// Messages asked for per fetch of a pass.
const PASS_FETCH: usize = 10_000;

/// The answer to one read: the channel's stored messages in order.
type Answer = Result<Vec<RawEntry>, EngineError>;

/// One forward read waiting for a pass.
pub(super) struct Wanted {
    pub subject: String,
    /// Messages after this sequence.
    pub after: u64,
    pub limit: usize,
    /// The sequence of the channel's newest message when the read began: the pass reaches it.
    pub top_seq: u64,
    pub reply: oneshot::Sender<Answer>,
}

/// What one pass read: every stored message of a span of sequences, by channel subject. It
/// answers reads that arrive for a moment after it, as long as their span lies inside its
/// own: a stored message never changes, and every sequence up to `hi` was stored when the
/// pass read past it.
struct Window {
    /// Messages after this sequence...
    lo: u64,
    /// ...up to and including this one.
    hi: u64,
    epoch: Arc<str>,
    read_at: Instant,
    by_subject: HashMap<String, Vec<RawEntry>>,
    /// Holds every channel's messages; false when it grew past [`WINDOW_KEEP_BYTES`] and
    /// kept only those of the reads it was made for.
    whole: bool,
}

impl Window {
    /// The answer to a read of `subject` after `after` up to `top_seq`, if the window holds it.
    fn answer(&self, subject: &str, after: u64, limit: usize, top_seq: u64) -> Option<Vec<RawEntry>> {
        if after < self.lo || top_seq > self.hi {
            return None;
        }
        match self.by_subject.get(subject) {
            Some(entries) => Some(entries.iter().filter(|e| e.0 > after).take(limit).cloned().collect()),
            None if self.whole => Some(Vec::new()),
            None => None,
        }
    }
}

/// Reads waiting per stream (present while a pass over that stream runs), and the stream's
/// last window.
#[derive(Default)]
pub(super) struct Passes {
    queues: Mutex<HashMap<String, Vec<Wanted>>>,
    windows: Mutex<HashMap<String, Arc<Window>>>,
}

impl Passes {
    /// Queues a read; true when no pass over the stream was running (the caller starts one).
    fn enqueue(&self, stream: &str, wanted: Wanted) -> bool {
        let mut queues = self.queues.lock();
        match queues.get_mut(stream) {
            Some(waiting) => {
                waiting.push(wanted);
                false
            }
            None => {
                queues.insert(stream.to_string(), vec![wanted]);
                true
            }
        }
    }

    /// The reads waiting for the next pass (those whose callers gave up are dropped). None
    /// when there are none: the running pass ends, and the next read starts another.
    fn take(&self, stream: &str) -> Option<Vec<Wanted>> {
        let mut queues = self.queues.lock();
        let waiting = queues.get_mut(stream)?;
        waiting.retain(|w| !w.reply.is_closed());
        if waiting.is_empty() {
            queues.remove(stream);
            return None;
        }
        Some(std::mem::take(waiting))
    }

    /// Keeps a pass's window for later reads, unless the one kept is fresh and covers it.
    fn keep(&self, stream: &str, window: Window) {
        let mut windows = self.windows.lock();
        if let Some(old) = windows.get(stream) {
            let covers = old.lo <= window.lo && old.hi >= window.hi && old.whole && old.epoch == window.epoch;
            if covers && old.read_at.elapsed() <= WINDOW_TTL {
                return;
            }
        }
        windows.insert(stream.to_string(), Arc::new(window));
    }

    /// The stream's last window while it is fresh and of the same epoch.
    fn window(&self, stream: &str, epoch: &str) -> Option<Arc<Window>> {
        let mut windows = self.windows.lock();
        let w = windows.get(stream)?;
        if w.read_at.elapsed() > WINDOW_TTL || &*w.epoch != epoch {
            windows.remove(stream);
            return None;
        }
        Some(w.clone())
    }
}

impl Shared {
    /// Stored messages of a channel after `after` up to (at least) sequence `top_seq`, at
    /// most `limit`, oldest first: shared with the reads of other channels of the namespace
    /// waiting at the same time when the span is not too wide.
    pub(super) async fn read_forward(
        self: &Arc<Self>,
        ns: &NsStream,
        subject: &str,
        after: u64,
        limit: usize,
        top_seq: u64,
    ) -> Answer {
        if top_seq.saturating_sub(after) > SHARED_SPAN_MAX {
            // Reads this far behind are rare and expensive: a few at a time per node.
            let _permit = self
                .wide_reads
                .acquire()
                .await
                .map_err(|_| EngineError::Unavailable("nats: history reads are shut down".into()))?;
            return self.read_alone(ns, subject, after, limit, top_seq).await;
        }
        let stream = ns.stream.cached_info().config.name.clone();
        if let Some(answer) =
            self.passes.window(&stream, &ns.epoch).and_then(|w| w.answer(subject, after, limit, top_seq))
        {
            return Ok(answer);
        }
        let (reply, answer) = oneshot::channel();
        let wanted = Wanted { subject: subject.to_string(), after, limit, top_seq, reply };
        if self.passes.enqueue(&stream, wanted) {
            let (this, ns) = (self.clone(), ns.clone());
            tokio::spawn(async move { this.pass_loop(stream, ns).await });
        }
        answer.await.unwrap_or_else(|_| Err(EngineError::Unavailable("nats: history pass ended".into())))
    }

    /// Serves the stream's waiting reads, a batch at a time, until none are left: from the
    /// last window where it holds them, alone when one is left, else by a new pass.
    async fn pass_loop(self: Arc<Self>, stream: String, ns: NsStream) {
        // Each batch is bounded by the engine deadline, so the loop cannot hang on NATS.
        let limit = self.config().engine_timeout.0.max(Duration::from_millis(100));
        while let Some(batch) = self.passes.take(&stream) {
            let window = self.passes.window(&stream, &ns.epoch);
            let mut rest = Vec::with_capacity(batch.len());
            for w in batch {
                match window.as_ref().and_then(|win| win.answer(&w.subject, w.after, w.limit, w.top_seq)) {
                    Some(answer) => {
                        let _ = w.reply.send(Ok(answer));
                    }
                    None => rest.push(w),
                }
            }
            let lo = rest.iter().map(|w| w.after).min().unwrap_or(0);
            let hi = rest.iter().map(|w| w.top_seq).max().unwrap_or(0);
            // One read, or reads too far apart to share a pass: each alone, in turn.
            if rest.len() == 1 || hi.saturating_sub(lo) > 2 * SHARED_SPAN_MAX {
                for w in rest {
                    let read = self.read_alone(&ns, &w.subject, w.after, w.limit, w.top_seq);
                    let answer = tokio::time::timeout(limit, read).await.unwrap_or_else(|_| {
                        Err(EngineError::Unavailable("nats: history read past its deadline".into()))
                    });
                    let _ = w.reply.send(answer);
                }
                continue;
            }
            if rest.is_empty() {
                continue;
            }
            // A little further back than the batch needs: reads arriving next are from clients
            // that left at about the same time, a few positions earlier or later.
            let span = hi.saturating_sub(lo);
            let lo = lo.saturating_sub((span / 8).min((2 * SHARED_SPAN_MAX).saturating_sub(span)));
            let started = Instant::now();
            let result = match tokio::time::timeout(limit, self.pass(&ns, &rest, lo, hi)).await {
                Ok(r) => r,
                Err(_) => Err(EngineError::Unavailable("nats: history pass past its deadline".into())),
            };
            let took_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let window = match result {
                Ok(window) => {
                    tracing::debug!(%stream, reads = rest.len(), span = hi - lo, took_ms, "history pass");
                    window
                }
                Err(e) => {
                    tracing::warn!(%stream, reads = rest.len(), span = hi - lo, took_ms, err = %e, "history pass failed");
                    rest.into_iter().for_each(|w| drop(w.reply.send(Err(e.clone()))));
                    continue;
                }
            };
            for w in rest {
                let answer = window
                    .answer(&w.subject, w.after, w.limit, w.top_seq)
                    .ok_or_else(|| EngineError::Unavailable("nats: history pass did not cover the read".into()));
                let _ = w.reply.send(answer);
            }
            self.passes.keep(&stream, window);
        }
    }

    /// One unfiltered pass over the stream after `lo` up to `hi` (the span of the batch's
    /// reads), kept by channel subject.
    async fn pass(&self, ns: &NsStream, batch: &[Wanted], lo: u64, hi: u64) -> Result<Window, EngineError> {
        let mut by_subject: HashMap<String, Vec<RawEntry>> =
            batch.iter().map(|w| (w.subject.clone(), Vec::new())).collect();
        let mut window = Window {
            lo,
            hi,
            epoch: ns.epoch.clone(),
            read_at: Instant::now(),
            by_subject: HashMap::new(),
            whole: true,
        };
        let Some(from) = lo.checked_add(1) else {
            window.by_subject = by_subject;
            return Ok(window);
        };
        let (consumer, _delete) = read_consumer(ns, "", from).await.map_err(|e| unavailable("history pass", e))?;
        let info = consumer.cached_info();
        // What is stored from `from` on (holes left by per-channel limits are not counted).
        // The pass reads it all, to the stream's end, when that is not too far: the next
        // reads are of channels whose tops lie a little past this batch's.
        let mut pending = info.num_pending.min(2 * SHARED_SPAN_MAX);
        let mut kept_bytes = 0usize;
        let mut last_seen = 0;
        while pending > 0 {
            let want = usize::try_from(pending).unwrap_or(usize::MAX).min(PASS_FETCH);
            let mut messages = fetch_stored(&consumer, want, "history pass").await?;
            let mut got = 0;
            while let Some(stored) = messages.next().await {
                let (seq, msg) = stored?;
                got += 1;
                last_seen = seq;
                let size = msg.payload.len() + msg.subject.len() + ENTRY_OVERHEAD;
                let entry = (seq, msg.headers.unwrap_or_default(), msg.payload);
                if let Some(entries) = by_subject.get_mut(msg.subject.as_str()) {
                    entries.push(entry);
                } else if window.whole && kept_bytes.saturating_add(size) <= WINDOW_KEEP_BYTES {
                    kept_bytes += size;
                    by_subject.insert(msg.subject.to_string(), vec![entry]);
                } else {
                    window.whole = false;
                }
                if got == want {
                    break;
                }
            }
            if got == 0 {
                // Pending messages that never came: a short answer could pass for a complete
                // one, so every read of the batch fails and its caller retries.
                return Err(EngineError::Unavailable("nats: history pass got nothing of what was pending".into()));
            }
            pending = pending.saturating_sub(got as u64);
        }
        if last_seen < hi && info.num_pending > 2 * SHARED_SPAN_MAX {
            // Cut short by the cap before the batch's tops: an answer would have a hole.
            return Err(EngineError::Unavailable("nats: history pass too wide".into()));
        }
        // Every stored sequence up to the last one delivered has been seen.
        window.hi = hi.max(last_seen);
        window.by_subject = by_subject;
        window.read_at = Instant::now();
        Ok(window)
    }
}
