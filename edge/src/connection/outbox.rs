//! The per-connection outgoing queue: bounded in bytes, drained in batches by the writer.

use std::collections::VecDeque;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::Control;
use crate::protocol::Disconnect;

/// Most control messages waiting for one session; beyond that the connection is closed
/// with 3010 so the client reconnects and recovers (nothing waits unbounded).
const MAX_CONTROL: usize = 64;

/// Most bytes the writer puts in one frame (SDKs accept ≥ 1 MiB messages).
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// Encoded messages waiting for one connection's writer.
///
/// Producers (the hub fan-out, command replies) never wait: a push that would exceed the byte
/// limit closes the connection as slow (3008), so memory stays bounded.
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the writer when there is something to send or the outbox closed.
    writer: Notify,
    /// Wakes everyone waiting in [`Outbox::closed`].
    closed: Notify,
    /// Wakes the session when a control message arrives.
    control: Notify,
    limit: usize,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Bytes>,
    bytes: usize,
    close: Option<Disconnect>,
    controls: VecDeque<Control>,
}

/// What the writer must do next.
pub enum Batch {
    /// Write these messages as one frame.
    Messages(Vec<Bytes>),
    /// Everything before the close was written; send the close and stop.
    Close(Disconnect),
}

impl Outbox {
    pub fn new(limit: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            writer: Notify::new(),
            closed: Notify::new(),
            control: Notify::new(),
            limit,
        }
    }

    /// Queues one encoded message. Returns false when the connection is closing.
    pub fn push(&self, message: Bytes) -> bool {
        let mut st = self.state.lock();
        if st.close.is_some() {
            return false;
        }
        if st.bytes + message.len() > self.limit {
            st.queue.clear();
            st.bytes = 0;
            st.close = Some(Disconnect::slow());
            drop(st);
            self.wake_all();
            return false;
        }
        st.bytes += message.len();
        st.queue.push_back(message);
        drop(st);
        self.writer.notify_one();
        true
    }

    /// Asks for the connection to be closed after what is already queued (first reason wins).
    pub fn close(&self, disconnect: Disconnect) {
        let mut st = self.state.lock();
        if st.close.is_none() {
            st.close = Some(disconnect);
            drop(st);
            self.wake_all();
        }
    }

    fn wake_all(&self) {
        self.writer.notify_one();
        self.closed.notify_waiters();
    }

    /// The close reason, if the connection is closing.
    pub fn close_reason(&self) -> Option<Disconnect> {
        self.state.lock().close.clone()
    }

    /// Waits until the outbox is closed and returns why.
    pub async fn closed(&self) -> Disconnect {
        loop {
            let notified = self.closed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(d) = self.close_reason() {
                return d;
            }
            notified.await;
        }
    }

    /// Waits for the next batch for the writer.
    pub async fn next_batch(&self) -> Batch {
        loop {
            {
                let mut st = self.state.lock();
                if !st.queue.is_empty() {
                    let mut out = Vec::with_capacity(st.queue.len().min(64));
                    let mut size = 0;
                    while let Some(m) = st.queue.front() {
                        if !out.is_empty() && size + m.len() > MAX_BATCH_BYTES {
                            break;
                        }
                        size += m.len();
                        out.extend(st.queue.pop_front());
                    }
                    st.bytes -= size;
                    return Batch::Messages(out);
                }
                if let Some(d) = &st.close {
                    return Batch::Close(d.clone());
                }
            }
            self.writer.notified().await;
        }
    }

    /// Hands a control message to the session.
    pub fn control(&self, control: Control) {
        let mut st = self.state.lock();
        if st.close.is_some() {
            return;
        }
        if st.controls.len() >= MAX_CONTROL {
            st.close = Some(Disconnect::insufficient_state());
            drop(st);
            self.wake_all();
            return;
        }
        st.controls.push_back(control);
        drop(st);
        self.control.notify_one();
    }

    /// Waits for the next control message.
    pub async fn next_control(&self) -> Control {
        loop {
            if let Some(c) = self.state.lock().controls.pop_front() {
                return c;
            }
            self.control.notified().await;
        }
    }

    /// Bytes currently queued.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn batches_then_closes_and_overflow_is_slow() {
        let o = Outbox::new(10);
        assert!(o.push(Bytes::from_static(b"abcd")));
        assert!(o.push(Bytes::from_static(b"efgh")));
        match o.next_batch().await {
            Batch::Messages(m) => assert_eq!(m.len(), 2),
            Batch::Close(_) => panic!("expected messages"),
        }
        assert_eq!(o.queued_bytes(), 0);
        assert!(o.push(Bytes::from_static(b"123456")));
        assert!(!o.push(Bytes::from_static(b"123456")));
        assert_eq!(o.closed().await.code, 3008);
        assert!(matches!(o.next_batch().await, Batch::Close(d) if d.code == 3008));
    }
}
