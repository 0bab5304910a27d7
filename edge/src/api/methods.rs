//! Server API methods: decode params, call the node, shape results as Centrifugo does.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use serde_json::value::RawValue;

use crate::auth::SubOverride;
use crate::internode::ServerSubscribe;
use crate::internode::{Target, UserCommand};
use crate::node::channels::wildcard_match;
use crate::node::{Node, PublishParams};
use crate::protocol::{Disconnect, ErrorCode, Payload, StreamPosition};

/// A method's result as JSON text: payloads inside it (publication data, info) are the bytes
/// they arrived as, never re-parsed into a `serde_json::Value` (which would reorder keys and
/// round big numbers).
pub type Reply = Box<RawValue>;

/// `value` as reply text (serializing `RawValue` payloads verbatim).
fn reply(value: &impl Serialize) -> Result<Reply, ApiError> {
    serde_json::value::to_raw_value(value).map_err(|e| {
        tracing::warn!(%e, "API result not serializable");
        ApiError::from(ErrorCode::INTERNAL)
    })
}

/// An error in the body of an API reply (HTTP 200).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiError {
    pub code: u32,
    pub message: String,
}

impl ApiError {
    pub fn method_not_found() -> Self {
        Self { code: 104, message: "method not found".into() }
    }

    fn bad_request(detail: impl std::fmt::Display) -> Self {
        Self { code: 107, message: format!("bad request: {detail}") }
    }
}

impl From<ErrorCode> for ApiError {
    fn from(e: ErrorCode) -> Self {
        Self { code: e.code, message: e.message.to_string() }
    }
}

const METHODS: &[&str] = &[
    "publish",
    "broadcast",
    "subscribe",
    "unsubscribe",
    "disconnect",
    "refresh",
    "presence",
    "presence_stats",
    "history",
    "history_remove",
    "channels",
    "info",
    "rpc",
    "batch",
];

/// Whether `method` is served by this API.
pub fn is_known(method: &str) -> bool {
    METHODS.contains(&method)
}

/// Runs one API method with JSON params and returns its JSON result.
/// `params` is the JSON text of the request object (kept as text so payloads stay raw).
/// `batch` answers `{"replies": …}` at the top level instead of a result: see [`batch`].
pub async fn execute(node: &Arc<Node>, method: &str, params: &str, protocol: &str) -> Result<Reply, ApiError> {
    let timer = node.metrics.api_commands.with_label_values(&[protocol, method]).start_timer();
    let out = match method {
        "publish" => publish(node, params).await,
        "broadcast" => broadcast(node, params).await,
        "subscribe" => subscribe(node, params).await,
        "unsubscribe" => unsubscribe(node, params).await,
        "disconnect" => disconnect(node, params).await,
        "refresh" => refresh(node, params).await,
        "batch" => Box::pin(batch(node, params, protocol)).await,
        "presence" => presence(node, params, false).await,
        "presence_stats" => presence(node, params, true).await,
        "history" => history(node, params).await,
        "history_remove" => history_remove(node, params).await,
        "channels" => channels(node, params).await,
        "info" => info(node).await,
        "rpc" => rpc(params),
        _ => Err(ApiError::method_not_found()),
    };
    timer.observe_duration();
    if let Err(e) = &out {
        node.metrics.api_errors.with_label_values(&[protocol, method, &e.code.to_string()]).inc();
    }
    out
}

fn parse<T: for<'de> Deserialize<'de>>(params: &str) -> Result<T, ApiError> {
    serde_json::from_str(params).map_err(ApiError::bad_request)
}

/// Params of `publish` (one `channel`) and `broadcast` (`channels`).
#[derive(Deserialize, Default)]
#[serde(default)]
struct PublishFields {
    channel: String,
    channels: Vec<String>,
    data: Option<Payload>,
    b64data: Option<String>,
    skip_history: bool,
    tags: HashMap<String, String>,
    idempotency_key: String,
    delta: bool,
}

#[derive(Serialize)]
struct PublishResult {
    #[serde(skip_serializing_if = "is_zero")]
    offset: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    epoch: String,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl PublishFields {
    fn payload(&self) -> Result<Payload, ApiError> {
        if let Some(d) = &self.data {
            return Ok(d.clone());
        }
        let Some(b64) = &self.b64data else { return Err(ApiError::bad_request("no data")) };
        Payload::from_base64(b64).map_err(ApiError::bad_request)
    }

    fn params(&self) -> PublishParams {
        PublishParams {
            info: None,
            tags: self.tags.clone(),
            skip_history: self.skip_history,
            idempotency_key: (!self.idempotency_key.is_empty()).then(|| self.idempotency_key.clone()),
            delta: self.delta,
        }
    }
}

async fn publish_one(node: &Node, channel: &str, fields: &PublishFields) -> Result<StreamPosition, ApiError> {
    if channel.is_empty() {
        return Err(ApiError::bad_request("channel required"));
    }
    let data = fields.payload()?;
    Ok(node.publish(channel, data, fields.params()).await?)
}

async fn publish(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: PublishFields = parse(params)?;
    let pos = publish_one(node, &req.channel, &req).await?;
    reply(&PublishResult { offset: pos.offset, epoch: pos.epoch })
}

async fn broadcast(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: PublishFields = parse(params)?;
    if req.channels.is_empty() {
        return Err(ApiError::bad_request("channels required"));
    }
    let mut responses = Vec::with_capacity(req.channels.len());
    for channel in &req.channels {
        responses.push(match publish_one(node, channel, &req).await {
            Ok(pos) => json!({ "result": PublishResult { offset: pos.offset, epoch: pos.epoch } }),
            Err(e) => json!({ "error": e }),
        });
    }
    reply(&json!({ "responses": responses }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChannelParams {
    channel: String,
}

fn channel_options(node: &Node, channel: &str) -> Result<crate::config::ChannelOptions, ApiError> {
    if channel.is_empty() {
        return Err(ApiError::bad_request("channel required"));
    }
    let rules = node.rules();
    Ok(rules.channels.resolve(&rules.config, channel)?.options.clone())
}

async fn presence(node: &Node, params: &str, stats: bool) -> Result<Reply, ApiError> {
    let req: ChannelParams = parse(params)?;
    if !channel_options(node, &req.channel)?.presence {
        return Err(ErrorCode::NOT_AVAILABLE.into());
    }
    let pm = node.presence_manager();
    let internal = |e: crate::engine::EngineError| {
        tracing::warn!(%e, "presence failed");
        ApiError::from(ErrorCode::INTERNAL)
    };
    if stats {
        let (clients, users) = pm.presence_stats(&req.channel).await.map_err(internal)?;
        reply(&json!({ "num_clients": clients, "num_users": users }))
    } else {
        #[derive(Serialize)]
        struct Presence<T> {
            presence: T,
        }
        let presence = pm.presence(&req.channel).await.map_err(internal)?;
        reply(&Presence { presence })
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct HistoryParams {
    channel: String,
    limit: i32,
    since: Option<StreamPosition>,
    reverse: bool,
}

async fn history(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: HistoryParams = parse(params)?;
    let options = channel_options(node, &req.channel)?;
    if !options.history_enabled() {
        return Err(ErrorCode::NOT_AVAILABLE.into());
    }
    let result = node.read_history(&req.channel, &options, req.limit, req.since, req.reverse).await?;
    reply(&result)
}

async fn history_remove(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: ChannelParams = parse(params)?;
    if !channel_options(node, &req.channel)?.history_enabled() {
        return Err(ErrorCode::NOT_AVAILABLE.into());
    }
    node.remove_history(&req.channel).await?;
    reply(&json!({}))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ChannelsParams {
    pattern: String,
}

async fn channels(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: ChannelsParams = parse(params)?;
    let mut out = serde_json::Map::new();
    for (name, n) in node.channels().await? {
        if req.pattern.is_empty() || wildcard_match(&req.pattern, &name) {
            out.insert(name, json!({ "num_clients": n }));
        }
    }
    reply(&json!({ "channels": out }))
}

async fn info(node: &Node) -> Result<Reply, ApiError> {
    reply(&json!({ "nodes": node.nodes().await? }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SubscribeParams {
    #[serde(flatten)]
    target: Target,
    channel: String,
    info: Option<Box<serde_json::value::RawValue>>,
    b64info: Option<String>,
    data: Option<Box<serde_json::value::RawValue>>,
    b64data: Option<String>,
    expire_at: i64,
    recover_since: Option<StreamPosition>,
    #[serde(rename = "override")]
    overrides: Option<SubOverride>,
}

fn raw_payload(raw: Option<Box<serde_json::value::RawValue>>, b64: Option<&str>) -> Option<Payload> {
    let json = raw.and_then(|r| Payload::from_json(r.get()).ok());
    crate::session::payload_or_b64(json, b64)
}

fn require_user(target: &Target) -> Result<(), ApiError> {
    if target.user.is_empty() {
        return Err(ApiError::bad_request("user required"));
    }
    Ok(())
}

/// Sends a user command to every node (this one included).
async fn to_all_nodes(node: &Node, command: UserCommand) -> Result<Reply, ApiError> {
    node.user_command(command).await?;
    reply(&json!({}))
}

async fn subscribe(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: SubscribeParams = parse(params)?;
    require_user(&req.target)?;
    channel_options(node, &req.channel)?;
    let subscribe = ServerSubscribe {
        channel: req.channel.clone(),
        info: raw_payload(req.info, req.b64info.as_deref()),
        data: raw_payload(req.data, req.b64data.as_deref()),
        expire_at: (req.expire_at > 0).then_some(req.expire_at),
        recover_since: req.recover_since,
        overrides: req.overrides.unwrap_or_default(),
    };
    to_all_nodes(node, UserCommand::Subscribe { target: req.target, subscribe }).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UnsubscribeParams {
    #[serde(flatten)]
    target: Target,
    channel: String,
}

async fn unsubscribe(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: UnsubscribeParams = parse(params)?;
    require_user(&req.target)?;
    channel_options(node, &req.channel)?;
    to_all_nodes(node, UserCommand::Unsubscribe { target: req.target, channel: req.channel }).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DisconnectParams {
    #[serde(flatten)]
    target: Target,
    whitelist: Vec<String>,
    disconnect: Option<Disconnect>,
}

async fn disconnect(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: DisconnectParams = parse(params)?;
    require_user(&req.target)?;
    let disconnect = match req.disconnect {
        Some(d) if d.code > 0 => {
            let reason = if d.reason.is_empty() { "disconnect".to_string() } else { d.reason };
            Disconnect { code: d.code, reason }
        }
        _ => Disconnect::force_disconnect(),
    };
    to_all_nodes(node, UserCommand::Disconnect { target: req.target, whitelist: req.whitelist, disconnect }).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RefreshParams {
    #[serde(flatten)]
    target: Target,
    expired: bool,
    expire_at: i64,
    info: Option<Box<serde_json::value::RawValue>>,
    b64info: Option<String>,
}

async fn refresh(node: &Node, params: &str) -> Result<Reply, ApiError> {
    let req: RefreshParams = parse(params)?;
    require_user(&req.target)?;
    let info = raw_payload(req.info, req.b64info.as_deref());
    let expire_at = (req.expire_at > 0).then_some(req.expire_at);
    to_all_nodes(node, UserCommand::Refresh { target: req.target, expired: req.expired, expire_at, info }).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct BatchParams {
    commands: Vec<Option<HashMap<String, Box<serde_json::value::RawValue>>>>,
    parallel: bool,
}

/// Runs several commands; each reply carries its method's key (`{"publish": {…}}`) or
/// `{"error": …}`, in command order. Answers `{"replies": […]}` (top-level, as `cent` reads it).
async fn batch(node: &Arc<Node>, params: &str, protocol: &str) -> Result<Reply, ApiError> {
    let req: BatchParams = parse(params)?;
    let error = |e: ApiError| reply(&json!({ "error": e }));
    let run = |cmd: Option<HashMap<String, Box<RawValue>>>| async move {
        let Some((method, params)) = cmd.and_then(|m| m.into_iter().next()) else {
            return error(ApiError::bad_request("empty command"));
        };
        if method == "batch" || !is_known(&method) {
            return error(ApiError::method_not_found());
        }
        match Box::pin(execute(node, &method, params.get(), protocol)).await {
            Ok(result) => reply(&HashMap::from([(method.as_str(), result)])),
            Err(e) => error(e),
        }
    };
    let replies: Vec<Result<Reply, ApiError>> = if req.parallel {
        futures_util::future::join_all(req.commands.into_iter().map(run)).await
    } else {
        let mut out = Vec::with_capacity(req.commands.len());
        for cmd in req.commands {
            out.push(run(cmd).await);
        }
        out
    };
    #[derive(Serialize)]
    struct Replies {
        replies: Vec<Reply>,
    }
    reply(&Replies { replies: replies.into_iter().collect::<Result<_, _>>()? })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RpcParams {
    method: String,
}

/// No server-side RPC extensions are registered: every named method is unknown.
fn rpc(params: &str) -> Result<Reply, ApiError> {
    let req: RpcParams = parse(params)?;
    if req.method.is_empty() {
        return Err(ApiError::bad_request("method required"));
    }
    Err(ApiError::method_not_found())
}
