//! One client connection's protocol state: connect/auth, command dispatch, subscriptions,
//! timers (stale, ping/pong, expiry) and cleanup.
//!
//! Transports move frames only: they feed decoded commands in and drain the [`Outbox`].

mod commands;
mod control;
mod proxy;
mod subscriptions;
mod timers;

pub use subscriptions::payload_or_b64;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::time::Instant;

use crate::connection::{ClientHandle, Outbox};
use crate::node::Node;
use crate::protocol::{ClientInfo, Disconnect, Encoding, ErrorCode, Reply, ReplyBody};
use timers::Timers;

/// What a transport tells the session about itself.
#[derive(Debug, Clone)]
pub struct TransportInfo {
    pub name: &'static str,
    pub encoding: Encoding,
    /// Emulated transports (HTTP-streaming, SSE): the session id the client sends its later
    /// commands with (`/emulation`), announced in the connect reply with the node id.
    pub emulation_session: Option<Arc<str>>,
    /// Headers of the connection request for the backend proxy (`proxy_http_headers`).
    pub headers: axum::http::HeaderMap,
}

/// What a transport read from its peer, for [`Session::drive`].
pub enum Incoming {
    /// A frame of commands in the connection's encoding.
    Frame(Bytes),
    /// Nothing for the session (a ping frame, a message a unidirectional client may send).
    Nothing,
    /// The peer is gone (`None`) or broke the transport's rules.
    End(Option<Disconnect>),
}

/// One subscription of this connection.
struct Subscription {
    /// Subscribed by the server: losing it closes the connection instead of unsubscribing.
    server_side: bool,
    /// Unix seconds when the subscription token expires.
    expires_at: Option<i64>,
    /// Presence entry to remove on unsubscribe.
    presence: bool,
    /// Emit leave on unsubscribe.
    join_leave: bool,
    chan_info: Option<crate::protocol::Payload>,
    /// The sub_refresh proxy prolongs it at expiry (the client was not told it expires).
    server_refresh: bool,
}

enum State {
    /// Waiting for the connect command.
    Connecting,
    Connected(Connected),
    /// Connect was refused with an error reply; anything further is a protocol error.
    Failed,
}

struct Connected {
    handle: Arc<ClientHandle>,
    info: ClientInfo,
    /// Unix seconds when the credentials expire.
    expires_at: Option<i64>,
    /// The refresh proxy prolongs the credentials at expiry (the client was not told).
    server_refresh: bool,
    /// Opaque data from the connect proxy or token, sent with later proxy requests.
    meta: Option<crate::protocol::Payload>,
}

/// The protocol state machine of one connection.
pub struct Session {
    node: Arc<Node>,
    outbox: Arc<Outbox>,
    encoding: Encoding,
    emulation_session: Option<Arc<str>>,
    transport: &'static str,
    /// Connection request headers forwarded to the backend proxy (boxed: usually none, and
    /// an idle connection should not carry an empty map).
    headers: Option<Box<axum::http::HeaderMap>>,
    state: State,
    subs: HashMap<String, Subscription>,
    timers: Timers,
    /// Its place under `client_connection_limit`, from the connect command on.
    slot: Option<crate::node::hub::Slot>,
    /// `client_command_rate_limit`: the bucket and the refusals since the last allowed command.
    command_bucket: crate::limit::TokenBucket,
    refused_in_row: u32,
    /// Credentials given by the server itself: the connect command needs no token then.
    preset: Option<commands::Credentials>,
}

impl Session {
    pub fn new(node: Arc<Node>, outbox: Arc<Outbox>, transport: TransportInfo) -> Self {
        let config = node.config();
        node.metrics.connections_accepted.with_label_values(&[transport.name]).inc();
        let mut timers = Timers::new(&config, Instant::now());
        if transport.encoding.is_uni() {
            // Unidirectional clients cannot answer pings.
            timers.pong_timeout = std::time::Duration::ZERO;
        }
        Self {
            timers,
            node,
            outbox,
            encoding: transport.encoding,
            emulation_session: transport.emulation_session,
            transport: transport.name,
            headers: (!transport.headers.is_empty()).then(|| Box::new(transport.headers)),
            state: State::Connecting,
            subs: HashMap::new(),
            slot: None,
            command_bucket: crate::limit::TokenBucket::default(),
            refused_in_row: 0,
            preset: None,
        }
    }

    /// A session whose connect is authenticated by the server (no token or proxy): `user`,
    /// subscribed by the server to `channels`. Only for connections the node opens itself.
    pub fn preset(mut self, user: &str, channels: Vec<String>) -> Self {
        self.preset = Some(commands::Credentials::preset(user, channels));
        self
    }

    /// Handles one incoming frame of commands (in the connection's encoding), in order.
    pub async fn handle_frame(&mut self, frame: &[u8]) -> Result<(), Disconnect> {
        let commands = self.encoding.decode_commands(frame).map_err(|err| {
            tracing::debug!(%err, "undecodable command");
            Disconnect::bad_request()
        })?;
        if commands.is_empty() {
            return Err(Disconnect::bad_request());
        }
        for command in commands {
            self.handle_command(command).await?;
            if self.outbox.close_reason().is_some() {
                break;
            }
        }
        Ok(())
    }

    /// Runs the connection until it ends — frames from `incoming`, timers, the node's
    /// instructions, closes — and returns why (then call [`Session::close`]). Every transport
    /// drives its session through this one loop.
    pub async fn drive<S: futures_util::Stream<Item = Incoming> + Unpin>(
        &mut self,
        incoming: &mut S,
    ) -> Option<Disconnect> {
        use futures_util::StreamExt;
        let outbox = self.outbox.clone();
        let mut deadline = self.next_deadline();
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        loop {
            // Boxed: the command handlers' futures are large, and an idle connection should
            // not carry their space.
            let result = tokio::select! {
                next = incoming.next() => match next {
                    Some(Incoming::Frame(frame)) => Box::pin(self.handle_frame(&frame)).await,
                    Some(Incoming::Nothing) => Ok(()),
                    Some(Incoming::End(d)) => return d,
                    None => return None,
                },
                () = &mut sleep => Box::pin(self.on_timer(Instant::now())).await,
                control = outbox.next_control() => Box::pin(self.handle_control(control)).await,
                d = outbox.closed() => return Some(d),
            };
            if let Err(d) = result {
                return Some(d);
            }
            let next = self.next_deadline();
            if next != deadline {
                deadline = next;
                sleep.as_mut().reset(deadline);
            }
        }
    }

    /// When the session next needs [`Session::on_timer`].
    pub fn next_deadline(&self) -> Instant {
        self.timers.next()
    }

    fn send_reply(&self, reply: &Reply) {
        self.outbox.push(self.encoding.encode_reply(reply));
    }

    fn reply(&self, id: u32, body: ReplyBody) {
        self.send_reply(&Reply::new(id, body));
    }

    fn reply_error(&self, id: u32, method: &str, error: ErrorCode) {
        self.count_error(method, &error);
        self.send_reply(&Reply::error(id, error));
    }

    /// Counts an error answer to a command (`gyre_client_num_reply_errors_total`).
    fn count_error(&self, method: &str, error: &ErrorCode) {
        self.node.metrics.reply_errors.with_label_values(&[method, &error.code.to_string()]).inc();
    }

    fn send_raw(&self, bytes: Bytes) {
        self.outbox.push(bytes);
    }

    /// Ends the session: leaves every channel, unregisters, and closes the outbox with
    /// `disconnect` (the transport's writer sends it to the client).
    pub async fn close(mut self, disconnect: Option<Disconnect>) {
        if let Some(d) = &disconnect {
            self.node.metrics.disconnects.with_label_values(&[&d.code.to_string()]).inc();
        }
        if let State::Connected(conn) = std::mem::replace(&mut self.state, State::Failed) {
            let channels: Vec<String> = self.subs.keys().cloned().collect();
            for channel in channels {
                self.leave_channel((&conn.handle, &conn.info), &channel).await;
            }
            self.node.hub.remove_client(&conn.handle);
        }
        self.outbox.close(disconnect.unwrap_or_else(|| Disconnect { code: 3000, reason: "connection closed".into() }));
    }
}
