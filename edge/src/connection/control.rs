//! What the node asks of a connection's session: it owns the subscription state, so the hub
//! and the server API hand it instructions instead of changing that state themselves.

/// Instructions from the node to a session (the session owns its subscription state).
#[derive(Debug, Clone)]
pub enum Control {
    /// Continuity of `channel` was lost (gap, epoch change, overflow while syncing).
    InsufficientState { channel: String },
    /// Server-side unsubscribe (API `unsubscribe`, subscription expiry).
    Unsubscribe { channel: String, code: u32, reason: String },
    /// Server-side subscribe of a live connection (API `subscribe`).
    Subscribe(Box<crate::internode::ServerSubscribe>),
    /// Server-side refresh of the connection's credentials (API `refresh`).
    Refresh { expired: bool, expire_at: Option<i64>, info: Option<crate::protocol::Payload> },
}
