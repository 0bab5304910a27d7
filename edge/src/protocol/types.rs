//! Client protocol messages (field names are the proto field names, as the SDKs expect).
//!
//! Requests only derive `Deserialize` and results only `Serialize`; zero values are omitted
//! except where Centrifugo always writes them (the SDKs index those fields directly).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{ErrorCode, Payload};

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}
fn is_false(v: &bool) -> bool {
    !*v
}

// ---------------------------------------------------------------------------------------------
// Commands (client -> server)

/// One client command; exactly one request field is expected (§1.3 of the protocol notes).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Command {
    pub id: u32,
    pub connect: Option<ConnectRequest>,
    pub subscribe: Option<SubscribeRequest>,
    pub unsubscribe: Option<UnsubscribeRequest>,
    pub publish: Option<PublishRequest>,
    pub presence: Option<ChannelRequest>,
    pub presence_stats: Option<ChannelRequest>,
    pub history: Option<HistoryRequest>,
    pub ping: Option<serde_json::Value>,
    pub send: Option<SendRequest>,
    pub rpc: Option<RpcRequest>,
    pub refresh: Option<RefreshRequest>,
    pub sub_refresh: Option<SubRefreshRequest>,
}

/// The request of a command, taken in Centrifugo's order of precedence.
#[derive(Debug)]
pub enum Request {
    Connect(ConnectRequest),
    Subscribe(SubscribeRequest),
    Unsubscribe(UnsubscribeRequest),
    Publish(PublishRequest),
    Presence(ChannelRequest),
    PresenceStats(ChannelRequest),
    History(HistoryRequest),
    Rpc(RpcRequest),
    Send(SendRequest),
    Refresh(RefreshRequest),
    SubRefresh(SubRefreshRequest),
    /// The empty command `{}`: an answer to a server ping.
    Pong,
    /// Anything else (including the legacy `ping` command): a protocol violation.
    Invalid,
}

impl Command {
    /// Splits the command into its id and its request.
    pub fn into_request(self) -> (u32, Request) {
        let id = self.id;
        let req = if let Some(r) = self.connect {
            Request::Connect(r)
        } else if let Some(r) = self.subscribe {
            Request::Subscribe(r)
        } else if let Some(r) = self.unsubscribe {
            Request::Unsubscribe(r)
        } else if let Some(r) = self.publish {
            Request::Publish(r)
        } else if let Some(r) = self.presence {
            Request::Presence(r)
        } else if let Some(r) = self.presence_stats {
            Request::PresenceStats(r)
        } else if let Some(r) = self.history {
            Request::History(r)
        } else if let Some(r) = self.rpc {
            Request::Rpc(r)
        } else if let Some(r) = self.send {
            Request::Send(r)
        } else if let Some(r) = self.refresh {
            Request::Refresh(r)
        } else if let Some(r) = self.sub_refresh {
            Request::SubRefresh(r)
        } else if self.ping.is_some() {
            Request::Invalid
        } else if id == 0 {
            Request::Pong
        } else {
            Request::Invalid
        };
        (id, req)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectRequest {
    pub token: String,
    pub data: Option<Payload>,
    pub subs: HashMap<String, SubscribeRequest>,
    pub name: String,
    pub version: String,
    pub headers: HashMap<String, String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SubscribeRequest {
    pub channel: String,
    pub token: String,
    pub recover: bool,
    pub epoch: String,
    pub offset: u64,
    pub data: Option<Payload>,
    pub positioned: bool,
    pub recoverable: bool,
    pub join_leave: bool,
    pub delta: String,
    pub flag: i64,
    #[serde(rename = "type")]
    pub kind: i32,
    /// Tags filter for publications.
    pub tf: Option<super::FilterNode>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UnsubscribeRequest {
    pub channel: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishRequest {
    pub channel: String,
    pub data: Option<Payload>,
    #[serde(rename = "type")]
    pub kind: i32,
}

/// Requests that only name a channel (`presence`, `presence_stats`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ChannelRequest {
    pub channel: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct HistoryRequest {
    pub channel: String,
    pub limit: i32,
    pub since: Option<StreamPosition>,
    pub reverse: bool,
}

/// A position in a channel stream: the offset of a publication within an epoch.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default)]
pub struct StreamPosition {
    pub offset: u64,
    pub epoch: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RpcRequest {
    pub data: Option<Payload>,
    pub method: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SendRequest {
    pub data: Option<Payload>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshRequest {
    pub token: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubRefreshRequest {
    pub channel: String,
    pub token: String,
}

// ---------------------------------------------------------------------------------------------
// Replies and pushes (server -> client)

/// A reply to command `id`, or (with `id == 0`) an asynchronous push.
#[derive(Debug, Serialize)]
pub struct Reply {
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub id: u32,
    #[serde(flatten)]
    pub body: ReplyBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyBody {
    Error(ErrorCode),
    Push(Push),
    Connect(ConnectResult),
    Subscribe(SubscribeResult),
    Unsubscribe(Empty),
    Publish(Empty),
    Presence(PresenceResult),
    PresenceStats(PresenceStatsResult),
    History(HistoryResult),
    Rpc(RpcResult),
    Refresh(RefreshResult),
    SubRefresh(RefreshResult),
}

impl Reply {
    pub fn new(id: u32, body: ReplyBody) -> Self {
        Self { id, body }
    }

    pub fn error(id: u32, error: ErrorCode) -> Self {
        Self { id, body: ReplyBody::Error(error) }
    }

    pub fn push(push: Push) -> Self {
        Self { id: 0, body: ReplyBody::Push(push) }
    }
}

/// An empty result object (`{}`).
#[derive(Debug, Default, Serialize)]
pub struct Empty {}

#[derive(Debug, Serialize)]
pub struct Push {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub channel: String,
    #[serde(flatten)]
    pub body: PushBody,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PushBody {
    #[serde(rename = "pub")]
    Publication(std::sync::Arc<Publication>),
    Join(JoinLeave),
    Leave(JoinLeave),
    Unsubscribe(UnsubscribePush),
    Message(MessagePush),
    Subscribe(SubscribeResult),
    Disconnect(Disconnect),
}

pub use super::codes::Disconnect;

/// Who published or joined: the connection's user, id and connection/channel info.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClientInfo {
    pub user: String,
    pub client: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conn_info: Option<Payload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chan_info: Option<Payload>,
}

/// One message in a channel stream.
#[derive(Debug, Clone, Serialize)]
pub struct Publication {
    pub data: Payload,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<ClientInfo>,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub tags: HashMap<String, String>,
    /// `data` is a fossil delta against the subscriber's previous publication.
    #[serde(skip_serializing_if = "is_false")]
    pub delta: bool,
    /// Offset of the channel's previous publication (server-side continuity checks; offsets
    /// need not be contiguous, the chain must be).
    #[serde(skip)]
    pub prev_offset: u64,
    /// The publisher allows sending it as a delta (API `delta`, namespace `delta_publish`).
    #[serde(skip)]
    pub use_delta: bool,
}

#[derive(Debug, Serialize)]
pub struct JoinLeave {
    pub info: ClientInfo,
}

#[derive(Debug, Serialize)]
pub struct UnsubscribePush {
    pub code: u32,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct MessagePush {
    pub data: Payload,
}

#[derive(Debug, Default, Serialize)]
pub struct ConnectResult {
    pub client: String,
    pub version: String,
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Payload>,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub subs: HashMap<String, SubscribeResult>,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ping: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub pong: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub session: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub node: String,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct SubscribeResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
    #[serde(skip_serializing_if = "is_false")]
    pub recoverable: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub epoch: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub publications: Vec<Publication>,
    #[serde(skip_serializing_if = "is_false")]
    pub recovered: bool,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub offset: u64,
    #[serde(skip_serializing_if = "is_false")]
    pub positioned: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Payload>,
    #[serde(skip_serializing_if = "is_false")]
    pub was_recovering: bool,
    /// Publications of this subscription may carry fossil deltas.
    #[serde(skip_serializing_if = "is_false")]
    pub delta: bool,
}

#[derive(Debug, Default, Serialize)]
pub struct PresenceResult {
    pub presence: HashMap<String, ClientInfo>,
}

#[derive(Debug, Default, Serialize)]
pub struct PresenceStatsResult {
    pub num_clients: u32,
    pub num_users: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct HistoryResult {
    pub publications: Vec<Publication>,
    pub epoch: String,
    pub offset: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct RpcResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Payload>,
}

#[derive(Debug, Default, Serialize)]
pub struct RefreshResult {
    #[serde(skip_serializing_if = "is_false")]
    pub expires: bool,
    #[serde(skip_serializing_if = "is_zero_u32")]
    pub ttl: u32,
}
