//! Messages of Centrifugo's gRPC server API (`centrifugal.centrifugo.api`, field numbers as in
//! its `api.proto`), for the methods Gyre serves. Requests become the JSON params of the HTTP
//! API and results are read back from its JSON, so both APIs share one implementation.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

/// Error in a response body (the call itself succeeds, as in Centrifugo).
#[derive(Clone, PartialEq, prost::Message, Serialize, Deserialize)]
pub struct Error {
    #[prost(uint32, tag = "1")]
    pub code: u32,
    #[prost(string, tag = "2")]
    pub message: String,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct StreamPosition {
    #[prost(uint64, tag = "1")]
    #[serde(default)]
    pub offset: u64,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub epoch: String,
}

/// `BoolValue` and `SubscribeOptionOverride` are the same in the API and proxy protocols.
#[derive(Clone, PartialEq, prost::Message)]
pub struct BoolValue {
    #[prost(bool, tag = "1")]
    pub value: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeOptionOverride {
    #[prost(message, optional, tag = "1")]
    pub presence: Option<BoolValue>,
    #[prost(message, optional, tag = "2")]
    pub join_leave: Option<BoolValue>,
    #[prost(message, optional, tag = "3")]
    pub force_recovery: Option<BoolValue>,
    #[prost(message, optional, tag = "4")]
    pub force_positioning: Option<BoolValue>,
    #[prost(message, optional, tag = "5")]
    pub force_push_join_leave: Option<BoolValue>,
}

/// The client protocol's `Disconnect` (same fields).
pub use crate::protocol::proto::Disconnect;

#[derive(Clone, PartialEq, prost::Message)]
pub struct PublishRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    #[prost(string, tag = "3")]
    pub b64data: String,
    #[prost(bool, tag = "4")]
    pub skip_history: bool,
    #[prost(map = "string, string", tag = "5")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "6")]
    pub idempotency_key: String,
    #[prost(bool, tag = "7")]
    pub delta: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BroadcastRequest {
    #[prost(string, repeated, tag = "1")]
    pub channels: Vec<String>,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
    #[prost(string, tag = "3")]
    pub b64data: String,
    #[prost(bool, tag = "4")]
    pub skip_history: bool,
    #[prost(map = "string, string", tag = "5")]
    pub tags: HashMap<String, String>,
    #[prost(string, tag = "6")]
    pub idempotency_key: String,
    #[prost(bool, tag = "7")]
    pub delta: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(string, tag = "2")]
    pub user: String,
    #[prost(int64, tag = "3")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub info: Vec<u8>,
    #[prost(string, tag = "5")]
    pub b64info: String,
    #[prost(string, tag = "6")]
    pub client: String,
    #[prost(bytes = "vec", tag = "7")]
    pub data: Vec<u8>,
    #[prost(string, tag = "8")]
    pub b64data: String,
    #[prost(message, optional, tag = "9")]
    pub recover_since: Option<StreamPosition>,
    #[prost(message, optional, tag = "10")]
    pub r#override: Option<SubscribeOptionOverride>,
    #[prost(string, tag = "11")]
    pub session: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct UnsubscribeRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(string, tag = "2")]
    pub user: String,
    #[prost(string, tag = "3")]
    pub client: String,
    #[prost(string, tag = "4")]
    pub session: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct DisconnectRequest {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(message, optional, tag = "2")]
    pub disconnect: Option<Disconnect>,
    #[prost(string, tag = "3")]
    pub client: String,
    #[prost(string, repeated, tag = "4")]
    pub whitelist: Vec<String>,
    #[prost(string, tag = "5")]
    pub session: String,
}

/// `PresenceRequest`, `PresenceStatsRequest`, `HistoryRemoveRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HistoryRequest {
    #[prost(string, tag = "1")]
    pub channel: String,
    #[prost(int32, tag = "2")]
    pub limit: i32,
    #[prost(message, optional, tag = "3")]
    pub since: Option<StreamPosition>,
    #[prost(bool, tag = "4")]
    pub reverse: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct InfoRequest {}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcRequest {
    #[prost(string, tag = "1")]
    pub method: String,
    #[prost(bytes = "vec", tag = "2")]
    pub params: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RefreshRequest {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(string, tag = "2")]
    pub client: String,
    #[prost(bool, tag = "3")]
    pub expired: bool,
    #[prost(int64, tag = "4")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "5")]
    pub info: Vec<u8>,
    #[prost(string, tag = "6")]
    pub session: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ChannelsRequest {
    #[prost(string, tag = "1")]
    pub pattern: String,
}

/// Results without fields (subscribe, unsubscribe, disconnect, history_remove, refresh).
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct EmptyResult {}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct PublishResult {
    #[prost(uint64, tag = "1")]
    #[serde(default)]
    pub offset: u64,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub epoch: String,
}

/// `PublishResponse`, one per channel in a broadcast.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct PublishResponse {
    #[prost(message, optional, tag = "1")]
    #[serde(default)]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "2")]
    #[serde(default)]
    pub result: Option<PublishResult>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct BroadcastResult {
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub responses: Vec<PublishResponse>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct ClientInfo {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub user: String,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub client: String,
    #[prost(bytes = "vec", tag = "3")]
    #[serde(default, deserialize_with = "json_bytes")]
    pub conn_info: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    #[serde(default, deserialize_with = "json_bytes")]
    pub chan_info: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct PresenceResult {
    #[prost(map = "string, message", tag = "1")]
    #[serde(default)]
    pub presence: HashMap<String, ClientInfo>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct PresenceStatsResult {
    #[prost(uint32, tag = "1")]
    #[serde(default)]
    pub num_clients: u32,
    #[prost(uint32, tag = "2")]
    #[serde(default)]
    pub num_users: u32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct Publication {
    #[prost(bytes = "vec", tag = "2")]
    #[serde(default, deserialize_with = "json_bytes")]
    pub data: Vec<u8>,
    #[prost(message, optional, tag = "3")]
    #[serde(default)]
    pub info: Option<ClientInfo>,
    #[prost(uint64, tag = "4")]
    #[serde(default)]
    pub offset: u64,
    #[prost(map = "string, string", tag = "5")]
    #[serde(default)]
    pub tags: HashMap<String, String>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct HistoryResult {
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub publications: Vec<Publication>,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub epoch: String,
    #[prost(uint64, tag = "3")]
    #[serde(default)]
    pub offset: u64,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct NodeResult {
    #[prost(string, tag = "1")]
    #[serde(default)]
    pub uid: String,
    #[prost(string, tag = "2")]
    #[serde(default)]
    pub name: String,
    #[prost(string, tag = "3")]
    #[serde(default)]
    pub version: String,
    #[prost(uint32, tag = "4")]
    #[serde(default)]
    pub num_clients: u32,
    #[prost(uint32, tag = "5")]
    #[serde(default)]
    pub num_users: u32,
    #[prost(uint32, tag = "6")]
    #[serde(default)]
    pub num_channels: u32,
    #[prost(uint32, tag = "7")]
    #[serde(default)]
    pub uptime: u32,
    #[prost(uint32, tag = "10")]
    #[serde(default)]
    pub num_subs: u32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct InfoResult {
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub nodes: Vec<NodeResult>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct RpcResult {
    #[prost(bytes = "vec", tag = "1")]
    #[serde(default, deserialize_with = "json_bytes")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct ChannelInfo {
    #[prost(uint32, tag = "1")]
    #[serde(default)]
    pub num_clients: u32,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct ChannelsResult {
    #[prost(map = "string, message", tag = "1")]
    #[serde(default)]
    pub channels: HashMap<String, ChannelInfo>,
}

/// A `<Method>Response`: an error or a result.
pub trait Response: prost::Message + Default + 'static {
    type Result: for<'de> Deserialize<'de>;
    fn new(error: Option<Error>, result: Option<Self::Result>) -> Self;
}

macro_rules! responses {
    ($($name:ident($result:ty);)*) => {$(
        #[derive(Clone, PartialEq, prost::Message)]
        pub struct $name {
            #[prost(message, optional, tag = "1")]
            pub error: Option<Error>,
            #[prost(message, optional, tag = "2")]
            pub result: Option<$result>,
        }

        impl Response for $name {
            type Result = $result;
            fn new(error: Option<Error>, result: Option<$result>) -> Self {
                Self { error, result }
            }
        }
    )*};
}

responses! {
    BroadcastResponse(BroadcastResult);
    EmptyResponse(EmptyResult);
    PresenceResponse(PresenceResult);
    PresenceStatsResponse(PresenceStatsResult);
    HistoryResponse(HistoryResult);
    InfoResponse(InfoResult);
    RpcResponse(RpcResult);
    ChannelsResponse(ChannelsResult);
}

impl Response for PublishResponse {
    type Result = PublishResult;
    fn new(error: Option<Error>, result: Option<PublishResult>) -> Self {
        Self { error, result }
    }
}

/// A JSON payload as the bytes of its text (`data`, `conn_info` …).
fn json_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let raw = Box::<serde_json::value::RawValue>::deserialize(d)?;
    Ok(raw.get().as_bytes().to_vec())
}

/// Bytes holding JSON go as the HTTP API's `<name>`, other bytes as `b64<name>`.
pub(crate) fn payload_field(out: &mut Map<String, Value>, name: &str, bytes: &[u8], b64: &str) {
    use base64::Engine;
    if !b64.is_empty() {
        out.insert(format!("b64{name}"), Value::String(b64.to_string()));
    } else if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        out.insert(name.to_string(), value);
    } else if !bytes.is_empty() {
        out.insert(format!("b64{name}"), base64::engine::general_purpose::STANDARD.encode(bytes).into());
    }
}

impl SubscribeOptionOverride {
    /// As the JSON API writes it: `{"presence": {"value": true}, …}` for the fields set.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        for (name, v) in [
            ("presence", &self.presence),
            ("join_leave", &self.join_leave),
            ("force_recovery", &self.force_recovery),
            ("force_positioning", &self.force_positioning),
            ("force_push_join_leave", &self.force_push_join_leave),
        ] {
            if let Some(v) = v {
                out.insert(name.into(), json!({"value": v.value}));
            }
        }
        Value::Object(out)
    }
}

/// A request as the HTTP API's JSON params.
pub trait ToParams {
    fn to_params(&self) -> Value;
}

fn publish_params(
    channel: Value,
    data: &[u8],
    b64: &str,
    skip: bool,
    tags: &HashMap<String, String>,
    key: &str,
    delta: bool,
) -> Value {
    let Value::Object(mut out) = json!({"skip_history": skip, "tags": tags, "idempotency_key": key, "delta": delta})
    else {
        return Value::Null;
    };
    match channel {
        Value::Array(_) => out.insert("channels".into(), channel),
        _ => out.insert("channel".into(), channel),
    };
    payload_field(&mut out, "data", data, b64);
    Value::Object(out)
}

impl ToParams for PublishRequest {
    fn to_params(&self) -> Value {
        publish_params(
            json!(self.channel),
            &self.data,
            &self.b64data,
            self.skip_history,
            &self.tags,
            &self.idempotency_key,
            self.delta,
        )
    }
}

impl ToParams for BroadcastRequest {
    fn to_params(&self) -> Value {
        publish_params(
            json!(self.channels),
            &self.data,
            &self.b64data,
            self.skip_history,
            &self.tags,
            &self.idempotency_key,
            self.delta,
        )
    }
}

impl ToParams for SubscribeRequest {
    fn to_params(&self) -> Value {
        let mut out = Map::new();
        out.insert("channel".into(), json!(self.channel));
        out.insert("user".into(), json!(self.user));
        out.insert("client".into(), json!(self.client));
        out.insert("session".into(), json!(self.session));
        out.insert("expire_at".into(), json!(self.expire_at));
        payload_field(&mut out, "info", &self.info, &self.b64info);
        payload_field(&mut out, "data", &self.data, &self.b64data);
        if let Some(p) = &self.recover_since {
            out.insert("recover_since".into(), json!({"offset": p.offset, "epoch": p.epoch}));
        }
        if let Some(o) = &self.r#override {
            out.insert("override".into(), o.to_json());
        }
        Value::Object(out)
    }
}

impl ToParams for UnsubscribeRequest {
    fn to_params(&self) -> Value {
        json!({"channel": self.channel, "user": self.user, "client": self.client, "session": self.session})
    }
}

impl ToParams for DisconnectRequest {
    fn to_params(&self) -> Value {
        let mut out = json!({"user": self.user, "client": self.client, "session": self.session,
                             "whitelist": self.whitelist});
        if let Some(d) = &self.disconnect {
            out["disconnect"] = json!({"code": d.code, "reason": d.reason});
        }
        out
    }
}

impl ToParams for ChannelRequest {
    fn to_params(&self) -> Value {
        json!({"channel": self.channel})
    }
}

impl ToParams for HistoryRequest {
    fn to_params(&self) -> Value {
        let mut out = json!({"channel": self.channel, "limit": self.limit, "reverse": self.reverse});
        if let Some(p) = &self.since {
            out["since"] = json!({"offset": p.offset, "epoch": p.epoch});
        }
        out
    }
}

impl ToParams for InfoRequest {
    fn to_params(&self) -> Value {
        json!({})
    }
}

impl ToParams for RpcRequest {
    fn to_params(&self) -> Value {
        let params = serde_json::from_slice::<Value>(&self.params).unwrap_or(Value::Null);
        json!({"method": self.method, "params": params})
    }
}

impl ToParams for RefreshRequest {
    fn to_params(&self) -> Value {
        let mut out = Map::new();
        out.insert("user".into(), json!(self.user));
        out.insert("client".into(), json!(self.client));
        out.insert("session".into(), json!(self.session));
        out.insert("expired".into(), json!(self.expired));
        out.insert("expire_at".into(), json!(self.expire_at));
        payload_field(&mut out, "info", &self.info, "");
        Value::Object(out)
    }
}

impl ToParams for ChannelsRequest {
    fn to_params(&self) -> Value {
        json!({"pattern": self.pattern})
    }
}

/// One command of a `Batch`: the one request that is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Command {
    #[prost(message, optional, tag = "4")]
    pub publish: Option<PublishRequest>,
    #[prost(message, optional, tag = "5")]
    pub broadcast: Option<BroadcastRequest>,
    #[prost(message, optional, tag = "6")]
    pub subscribe: Option<SubscribeRequest>,
    #[prost(message, optional, tag = "7")]
    pub unsubscribe: Option<UnsubscribeRequest>,
    #[prost(message, optional, tag = "8")]
    pub disconnect: Option<DisconnectRequest>,
    #[prost(message, optional, tag = "9")]
    pub presence: Option<ChannelRequest>,
    #[prost(message, optional, tag = "10")]
    pub presence_stats: Option<ChannelRequest>,
    #[prost(message, optional, tag = "11")]
    pub history: Option<HistoryRequest>,
    #[prost(message, optional, tag = "12")]
    pub history_remove: Option<ChannelRequest>,
    #[prost(message, optional, tag = "13")]
    pub info: Option<InfoRequest>,
    #[prost(message, optional, tag = "14")]
    pub rpc: Option<RpcRequest>,
    #[prost(message, optional, tag = "15")]
    pub refresh: Option<RefreshRequest>,
    #[prost(message, optional, tag = "16")]
    pub channels: Option<ChannelsRequest>,
}

impl Command {
    /// The HTTP API's batch command: `{"<method>": params}` (`{}` when none is set).
    fn to_json(&self) -> Value {
        let set: [(&str, Option<&dyn ToParams>); 13] = [
            ("publish", self.publish.as_ref().map(|r| r as &dyn ToParams)),
            ("broadcast", self.broadcast.as_ref().map(|r| r as &dyn ToParams)),
            ("subscribe", self.subscribe.as_ref().map(|r| r as &dyn ToParams)),
            ("unsubscribe", self.unsubscribe.as_ref().map(|r| r as &dyn ToParams)),
            ("disconnect", self.disconnect.as_ref().map(|r| r as &dyn ToParams)),
            ("presence", self.presence.as_ref().map(|r| r as &dyn ToParams)),
            ("presence_stats", self.presence_stats.as_ref().map(|r| r as &dyn ToParams)),
            ("history", self.history.as_ref().map(|r| r as &dyn ToParams)),
            ("history_remove", self.history_remove.as_ref().map(|r| r as &dyn ToParams)),
            ("info", self.info.as_ref().map(|r| r as &dyn ToParams)),
            ("rpc", self.rpc.as_ref().map(|r| r as &dyn ToParams)),
            ("refresh", self.refresh.as_ref().map(|r| r as &dyn ToParams)),
            ("channels", self.channels.as_ref().map(|r| r as &dyn ToParams)),
        ];
        let mut out = Map::new();
        if let Some((method, Some(request))) = set.into_iter().find(|(_, r)| r.is_some()) {
            out.insert(method.to_string(), request.to_params());
        }
        Value::Object(out)
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BatchRequest {
    #[prost(message, repeated, tag = "1")]
    pub commands: Vec<Command>,
    #[prost(bool, tag = "2")]
    pub parallel: bool,
}

impl ToParams for BatchRequest {
    fn to_params(&self) -> Value {
        json!({"commands": self.commands.iter().map(Command::to_json).collect::<Vec<_>>(), "parallel": self.parallel})
    }
}

/// One reply of a `Batch`, in command order: the error or the method's result.
#[derive(Clone, PartialEq, prost::Message, Deserialize)]
#[serde(default)]
pub struct Reply {
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "4")]
    pub publish: Option<PublishResult>,
    #[prost(message, optional, tag = "5")]
    pub broadcast: Option<BroadcastResult>,
    #[prost(message, optional, tag = "6")]
    pub subscribe: Option<EmptyResult>,
    #[prost(message, optional, tag = "7")]
    pub unsubscribe: Option<EmptyResult>,
    #[prost(message, optional, tag = "8")]
    pub disconnect: Option<EmptyResult>,
    #[prost(message, optional, tag = "9")]
    pub presence: Option<PresenceResult>,
    #[prost(message, optional, tag = "10")]
    pub presence_stats: Option<PresenceStatsResult>,
    #[prost(message, optional, tag = "11")]
    pub history: Option<HistoryResult>,
    #[prost(message, optional, tag = "12")]
    pub history_remove: Option<EmptyResult>,
    #[prost(message, optional, tag = "13")]
    pub info: Option<InfoResult>,
    #[prost(message, optional, tag = "14")]
    pub rpc: Option<RpcResult>,
    #[prost(message, optional, tag = "15")]
    pub refresh: Option<EmptyResult>,
    #[prost(message, optional, tag = "16")]
    pub channels: Option<ChannelsResult>,
}

#[derive(Clone, PartialEq, prost::Message, Deserialize)]
pub struct BatchResponse {
    #[prost(message, repeated, tag = "1")]
    #[serde(default)]
    pub replies: Vec<Reply>,
}

impl Response for BatchResponse {
    type Result = BatchResponse;
    /// A batch that cannot run at all has no replies (the HTTP API answers such a batch with
    /// an error Centrifugo's `BatchResponse` has no field for).
    fn new(_error: Option<Error>, result: Option<BatchResponse>) -> Self {
        result.unwrap_or_default()
    }
}
