//! Shared recovery reads: subscribers of one channel recovering from the same place at about the
//! same time (a reconnect storm) share one engine read, so the storm costs per channel, not per
//! client.
//!
//! Sharing is only correct for a subscriber whose hub registration leaves no gap before the
//! read's end: the read must reach at least the newest offset the node had delivered live when
//! the subscriber started holding publications (`Registration::live_top`), and come from the
//! same channel entry (the same engine subscription). A read that does not qualify is not
//! used; the subscriber reads for itself, and that read is the one later arrivals share.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::protocol::{ErrorCode, Publication, StreamPosition};

/// How long a finished read is offered to later subscribers.
const SHARE_FOR: Duration = Duration::from_secs(5);
/// Most channels with a read on offer; past it, reads of further channels are not shared.
const MAX_CHANNELS: usize = 10_000;

/// What one read found: publications after `since` up to `top`, and whether they reach it.
#[derive(Clone)]
pub struct ReadResult {
    /// The position the read started after.
    pub since: StreamPosition,
    pub publications: Arc<Vec<Publication>>,
    pub top: StreamPosition,
    /// The publications run without a gap from `since` to `top` (the recovery limit did not cut
    /// them short, the epoch did not change, nothing was trimmed).
    pub complete: bool,
}

type Outcome = Option<Result<ReadResult, ErrorCode>>;

/// One read of a channel's history after `since`, in flight or finished.
struct Slot {
    generation: u64,
    since: StreamPosition,
    started: Instant,
    outcome: watch::Receiver<Outcome>,
}

/// A reader's part in a channel's read: wait for one on offer, or start one.
enum Turn {
    Join(watch::Receiver<Outcome>),
    Lead(watch::Sender<Outcome>),
}

/// Who may take a share of a read.
pub struct Reader<'a> {
    pub since: &'a StreamPosition,
    /// The hub entry the reader is registered in.
    pub generation: u64,
    /// The newest position delivered live when the reader registered.
    pub live_top: &'a StreamPosition,
}

/// Recovery reads on offer, by channel.
#[derive(Default)]
pub struct SharedReads {
    slots: Mutex<HashMap<Arc<str>, Slot>>,
}

/// How a recovery read was served (for `gyre_recovery_reads_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// This subscriber's own engine read.
    Engine,
    /// A share of a read another subscriber started.
    Shared,
}

impl Served {
    pub fn label(self) -> &'static str {
        match self {
            Served::Engine => "engine",
            Served::Shared => "shared",
        }
    }
}

impl SharedReads {
    /// Publications after `reader.since`, from a read on offer that qualifies (waiting for it
    /// if it is in flight, at most `wait`), else from `read` (started here and offered to
    /// later readers).
    pub async fn recover<F>(
        &self,
        channel: &str,
        reader: Reader<'_>,
        wait: Duration,
        read: F,
    ) -> (Result<ReadResult, ErrorCode>, Served)
    where
        F: std::future::Future<Output = Result<ReadResult, ErrorCode>> + Send + 'static,
    {
        let tx = match self.join_or_lead(channel, &reader) {
            Turn::Lead(tx) => tx,
            Turn::Join(mut outcome) => {
                let got = tokio::time::timeout(wait, outcome.wait_for(Option::is_some)).await;
                let done = match got {
                    Ok(Ok(outcome)) => outcome.clone(),
                    _ => None,
                };
                match done {
                    Some(Ok(result)) => {
                        if let Some(share) = share_of(&result, &reader) {
                            return (Ok(share), Served::Shared);
                        }
                    }
                    // A read that failed fails everyone who waited on it: they would have
                    // asked the same engine at the same moment.
                    Some(Err(code)) => return (Err(code), Served::Shared),
                    None => {}
                }
                self.lead(channel, &reader)
            }
        };
        // The read runs on its own, so a reader that goes away does not strand those waiting.
        let task = tokio::spawn(async move {
            let outcome = read.await;
            tx.send_replace(Some(outcome.clone()));
            outcome
        });
        let outcome = task.await.unwrap_or(Err(ErrorCode::INTERNAL)).and_then(|r| {
            // History behind what this node already delivered live answers from a stale
            // state (a JetStream leader that has not caught up): passing it on would leave a
            // gap that the held publications may not show, so the subscriber tries again.
            if behind_live(&r.top, reader.live_top) {
                tracing::debug!(
                    channel,
                    top = r.top.offset,
                    live = reader.live_top.offset,
                    "recovery read behind live"
                );
                return Err(ErrorCode::INTERNAL);
            }
            Ok(share_of(&r, &reader).unwrap_or(r))
        });
        (outcome, Served::Engine)
    }

    /// Under one lock: the channel's read on offer if its start could serve this reader, else
    /// a new slot this reader's read will fill (so a storm's first arrivals start one read).
    fn join_or_lead(&self, channel: &str, reader: &Reader<'_>) -> Turn {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(channel) {
            let usable = slot.generation == reader.generation
                && slot.started.elapsed() < SHARE_FOR
                && slot.since.epoch == reader.since.epoch
                && slot.since.offset <= reader.since.offset;
            if usable {
                return Turn::Join(slot.outcome.clone());
            }
        }
        Turn::Lead(Self::offer(&mut slots, channel, reader))
    }

    fn lead(&self, channel: &str, reader: &Reader<'_>) -> watch::Sender<Outcome> {
        Self::offer(&mut self.slots.lock(), channel, reader)
    }

    /// A new slot for `reader`'s read, offered unless too many channels already have one.
    fn offer(slots: &mut HashMap<Arc<str>, Slot>, channel: &str, reader: &Reader<'_>) -> watch::Sender<Outcome> {
        let (tx, rx) = watch::channel(None);
        if slots.len() >= MAX_CHANNELS && !slots.contains_key(channel) {
            slots.retain(|_, s| s.started.elapsed() < SHARE_FOR);
            if slots.len() >= MAX_CHANNELS {
                return tx;
            }
        }
        let slot =
            Slot { generation: reader.generation, since: reader.since.clone(), started: Instant::now(), outcome: rx };
        slots.insert(Arc::from(channel), slot);
        tx
    }

    /// Drops reads no longer on offer (housekeeping).
    pub fn sweep(&self) {
        self.slots.lock().retain(|_, s| s.started.elapsed() < SHARE_FOR);
    }
}

/// Whether a read's top lies behind, in the same epoch, what was delivered live.
fn behind_live(top: &StreamPosition, live: &StreamPosition) -> bool {
    top.epoch == live.epoch && top.offset < live.offset
}

/// The part of `result` this reader needs, when taking it leaves no gap: the read reaches what
/// the node had delivered live when the reader started holding publications, and either runs
/// complete past the reader's position or (not recovering) started at exactly that position.
fn share_of(result: &ReadResult, reader: &Reader<'_>) -> Option<ReadResult> {
    if behind_live(&result.top, reader.live_top) {
        return None;
    }
    let since = reader.since;
    if !result.complete {
        return (result.since == *since).then(|| result.clone());
    }
    let in_range = result.top.epoch == since.epoch
        && result.since.epoch == since.epoch
        && result.since.offset <= since.offset
        && since.offset <= result.top.offset;
    if !in_range {
        return None;
    }
    if result.since.offset == since.offset {
        return Some(result.clone());
    }
    let publications: Vec<Publication> =
        result.publications.iter().filter(|p| p.offset > since.offset).cloned().collect();
    Some(ReadResult {
        since: since.clone(),
        publications: Arc::new(publications),
        top: result.top.clone(),
        complete: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Payload;

    fn publication(offset: u64) -> Publication {
        Publication {
            data: Payload::from_json("1").unwrap(),
            info: None,
            offset,
            tags: Default::default(),
            delta: false,
            prev_offset: offset - 1,
            use_delta: false,
        }
    }

    fn result(offsets: std::ops::RangeInclusive<u64>, top: u64) -> ReadResult {
        ReadResult {
            since: StreamPosition { offset: *offsets.start() - 1, epoch: "e".into() },
            publications: Arc::new(offsets.map(publication).collect()),
            top: StreamPosition { offset: top, epoch: "e".into() },
            complete: true,
        }
    }

    #[tokio::test]
    async fn readers_in_a_storm_share_one_read_unless_it_would_leave_a_gap() {
        let reads = SharedReads::default();
        let engine_reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let since = StreamPosition { offset: 10, epoch: "e".into() };
        let read = |engine_reads: Arc<std::sync::atomic::AtomicUsize>| async move {
            engine_reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(result(11..=20, 20))
        };
        let wait = Duration::from_secs(5);
        let live = |offset| StreamPosition { offset, epoch: "e".into() };
        let (at10, at20, at21, none) = (live(10), live(20), live(21), live(0));
        let reader = |live_top| Reader { since: &since, generation: 1, live_top };
        // Many readers at once: one engine read, every reader gets the ten publications.
        let outcomes = futures_util::future::join_all(
            (0..50).map(|_| reads.recover("ch", reader(&at10), wait, read(engine_reads.clone()))),
        )
        .await;
        assert_eq!(engine_reads.load(std::sync::atomic::Ordering::SeqCst), 1);
        for (outcome, _) in &outcomes {
            assert_eq!(outcome.as_ref().map(|r| r.publications.len()).ok(), Some(10));
        }
        // A later reader further on takes the suffix.
        let further = StreamPosition { offset: 15, epoch: "e".into() };
        let r = Reader { since: &further, generation: 1, live_top: &at20 };
        let (got, served) = reads.recover("ch", r, wait, read(engine_reads.clone())).await;
        assert_eq!(served, Served::Shared);
        assert_eq!(got.unwrap().publications.iter().map(|p| p.offset).collect::<Vec<_>>(), vec![16, 17, 18, 19, 20]);
        // The node delivered offset 21 live before this reader registered: the read ending at
        // 20 would leave a gap, so it reads for itself, and a read of its own that still ends
        // at 20 (history behind live delivery) is a temporary error, never a recovery.
        let (got, served) = reads.recover("ch", reader(&at21), wait, read(engine_reads.clone())).await;
        assert_eq!(served, Served::Engine);
        assert_eq!(got.err(), Some(ErrorCode::INTERNAL));
        // Another channel entry (the node subscribed again) never shares.
        let r = Reader { since: &since, generation: 2, live_top: &none };
        let (_, served) = reads.recover("ch", r, wait, read(engine_reads.clone())).await;
        assert_eq!(served, Served::Engine);
    }
}
