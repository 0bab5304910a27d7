//! The part of a connection that the rest of the node can reach.

use std::sync::Arc;

use bytes::Bytes;

use super::outbox::Outbox;
use crate::protocol::{Disconnect, Encoding};

/// A live connection as seen by the hub and the server API: its identity and its outbox.
pub struct ClientHandle {
    pub id: Arc<str>,
    pub user: Arc<str>,
    /// How messages for this connection are encoded (fan-out encodes once per encoding).
    pub encoding: Encoding,
    /// Session id of an emulated transport (server API targets may name it).
    pub session: Option<Arc<str>>,
    outbox: Arc<Outbox>,
}

impl ClientHandle {
    pub fn new(id: Arc<str>, user: Arc<str>, encoding: Encoding, outbox: Arc<Outbox>) -> Self {
        Self { id, user, encoding, session: None, outbox }
    }

    /// The same handle for a connection of an emulated transport.
    pub fn with_session(mut self, session: Option<Arc<str>>) -> Self {
        self.session = session;
        self
    }

    /// Queues encoded bytes for the connection's writer.
    pub fn send(&self, message: Bytes) -> bool {
        self.outbox.push(message)
    }

    /// Closes the connection after what is queued (slow clients: at once).
    pub fn disconnect(&self, disconnect: Disconnect) {
        self.outbox.close(disconnect)
    }

    /// Hands an instruction to the connection's session.
    pub fn control(&self, control: super::Control) {
        self.outbox.control(control)
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }
}
