//! What Gyre nodes send each other through the engine, in one place: commands for users'
//! connections, node announcements, the stored form of publications, presence entries.
//!
//! Nodes of two versions meet during every rolling upgrade, so these forms are a wire format:
//! `golden.rs` pins each one's serialized bytes, and a change there is a compatibility
//! decision, not a refactor. Nothing here depends on the node, sessions or engines.

mod publication;

#[cfg(test)]
mod golden;

pub use publication::{decode_publication, encode_publication};

use serde::{Deserialize, Serialize};

use crate::protocol::{Disconnect, Payload, StreamPosition};

/// Which of a user's connections an action targets (empty fields match any).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Target {
    pub user: String,
    pub client: String,
    pub session: String,
}

/// A server-side action on live connections, applied by every node to its own.
///
/// Written as one object tagged by `op`; read through [`WireCommand`], because serde buffers
/// an internally tagged enum before reading it and raw JSON payloads cannot be read from
/// that buffer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", try_from = "WireCommand")]
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

/// Every field a [`UserCommand`] may carry, read in one pass; `op` picks the ones it uses.
#[derive(Deserialize)]
struct WireCommand {
    op: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    subscribe: ServerSubscribe,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    whitelist: Vec<String>,
    disconnect: Option<Disconnect>,
    #[serde(default)]
    expired: bool,
    expire_at: Option<i64>,
    info: Option<Payload>,
    #[serde(default)]
    session: String,
    #[serde(default)]
    data: String,
}

impl TryFrom<WireCommand> for UserCommand {
    type Error = String;

    fn try_from(w: WireCommand) -> Result<Self, String> {
        Ok(match w.op.as_str() {
            "subscribe" => Self::Subscribe { target: w.target, subscribe: w.subscribe },
            "unsubscribe" => Self::Unsubscribe { target: w.target, channel: w.channel },
            "disconnect" => Self::Disconnect {
                target: w.target,
                whitelist: w.whitelist,
                disconnect: w.disconnect.ok_or("disconnect without its code")?,
            },
            "refresh" => Self::Refresh { target: w.target, expired: w.expired, expire_at: w.expire_at, info: w.info },
            "emulation" => Self::Emulation { session: w.session, data: w.data },
            other => return Err(format!("unknown node command {other:?}")),
        })
    }
}

/// Parameters of a server-side subscribe (API `subscribe`, carried to every node).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSubscribe {
    pub channel: String,
    pub info: Option<Payload>,
    pub data: Option<Payload>,
    pub expire_at: Option<i64>,
    pub recover_since: Option<StreamPosition>,
    pub overrides: SubOverride,
}

/// Channel options a token, proxy or API call may force for one subscription
/// (`{"value": bool}` each, the shape Centrifugo's tokens use).
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct SubOverride {
    pub presence: Option<BoolValue>,
    pub join_leave: Option<BoolValue>,
    pub force_push_join_leave: Option<BoolValue>,
    pub force_recovery: Option<BoolValue>,
    pub force_positioning: Option<BoolValue>,
}

/// A boolean wrapped in an object, so "not set" and `false` differ.
#[derive(Debug, Default, Clone, Copy, Deserialize, Serialize)]
pub struct BoolValue {
    pub value: bool,
}

impl SubOverride {
    /// Applies the overrides to a namespace's options.
    pub fn apply(&self, o: &mut crate::config::ChannelOptions) {
        if let Some(v) = self.presence {
            o.presence = v.value;
        }
        if let Some(v) = self.join_leave {
            o.join_leave = v.value;
        }
        if let Some(v) = self.force_push_join_leave {
            o.force_push_join_leave = v.value;
        }
        if let Some(v) = self.force_recovery {
            o.force_recovery = v.value && o.history_enabled();
        }
        if let Some(v) = self.force_positioning {
            o.force_positioning = v.value && o.history_enabled();
        }
    }
}

/// One node as it announces itself (and as `info` reports it).
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

/// A node's answer to "which channels have subscribers here": name and subscriber count.
pub type ChannelCounts = Vec<(String, usize)>;
