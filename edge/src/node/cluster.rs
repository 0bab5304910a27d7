//! Actions on users' live connections and node-wide facts that span every node: the server
//! API sends a [`UserCommand`] through the engine, and every node applies it to its own
//! connections.

use serde::{Deserialize, Serialize};

use super::hub::Hub;
use crate::protocol::{Disconnect, Payload};
use crate::session::{Control, ServerSubscribe};

/// Which of a user's connections an action targets.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    pub user: String,
    pub client: String,
    pub session: String,
}

/// A server-side action on live connections, applied by every node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum UserCommand {
    Subscribe {
        target: Target,
        subscribe: ServerSubscribe,
    },
    Unsubscribe {
        target: Target,
        channel: String,
    },
    Disconnect {
        target: Target,
        whitelist: Vec<String>,
        disconnect: Disconnect,
    },
    Refresh {
        target: Target,
        expired: bool,
        expire_at: Option<i64>,
        info: Option<Payload>,
    },
    /// Commands posted to `/emulation` on another node, for the node serving `session`
    /// (base64 of the frame as posted).
    Emulation {
        session: String,
        data: String,
    },
}

/// One node as `info` reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NodeInfo {
    pub uid: String,
    pub name: String,
    pub version: String,
    pub num_clients: u64,
    pub num_users: u64,
    pub num_channels: u64,
    pub num_subs: u64,
    pub uptime: u64,
    /// The engine the node runs on (`memory`, `nats`): a node whose info arrived through the
    /// engine reaches it. Absent from nodes of older versions.
    #[serde(default)]
    pub engine: String,
    /// Publications delivered to local subscribers since start (the admin UI's rate chart).
    #[serde(default)]
    pub num_deliveries: u64,
}

impl UserCommand {
    /// Applies the command to this node's matching connections.
    pub fn apply(&self, hub: &Hub) {
        let target = match self {
            Self::Emulation { session, data } => {
                use base64::Engine;
                if let Ok(frame) = base64::engine::general_purpose::STANDARD.decode(data) {
                    let _ = hub.deliver_emulation(session, bytes::Bytes::from(frame));
                }
                return;
            }
            Self::Subscribe { target, .. }
            | Self::Unsubscribe { target, .. }
            | Self::Disconnect { target, .. }
            | Self::Refresh { target, .. } => target,
        };
        for client in hub.user_clients(&target.user) {
            if !target.client.is_empty() && *client.id != *target.client {
                continue;
            }
            if !target.session.is_empty() && client.session.as_deref() != Some(target.session.as_str()) {
                continue;
            }
            match self {
                Self::Subscribe { subscribe, .. } => client.control(Control::Subscribe(Box::new(subscribe.clone()))),
                Self::Unsubscribe { channel, .. } => client.control(Control::Unsubscribe {
                    channel: channel.clone(),
                    code: 2000,
                    reason: "server unsubscribe".into(),
                }),
                Self::Disconnect { whitelist, disconnect, .. } => {
                    if !whitelist.iter().any(|w| *w == *client.id) {
                        client.disconnect(disconnect.clone());
                    }
                }
                Self::Refresh { expired, expire_at, info, .. } => {
                    client.control(Control::Refresh { expired: *expired, expire_at: *expire_at, info: info.clone() })
                }
                Self::Emulation { .. } => {}
            }
        }
    }
}
