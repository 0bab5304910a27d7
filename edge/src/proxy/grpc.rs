//! Proxy hooks over gRPC (`grpc://` endpoints): Centrifugo's `CentrifugoProxy` service with
//! the messages of its `proxy.proto`. The JSON requests of [`super::wire`] are translated
//! into them and the answers back into the JSON envelope, so both transports share every rule.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{Hook, ProxyError};
use crate::grpc::messages::payload_field;
pub use crate::grpc::messages::{BoolValue, SubscribeOptionOverride};
/// `Error` and `Disconnect` are the client protocol's messages.
pub use crate::protocol::proto::{Disconnect, Error};

const SERVICE: &str = "/centrifugal.centrifugo.proxy.CentrifugoProxy/";

// The requests after connect: the common fields (1–4), the caller (10), then each hook's own
// fields at their numbers in `proxy.proto`.

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(string, tag = "10")]
    pub user: String,
    #[prost(string, tag = "11")]
    pub channel: String,
    #[prost(bytes = "vec", tag = "13")]
    pub meta: Vec<u8>,
    #[prost(bytes = "vec", tag = "14")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PublishRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(string, tag = "10")]
    pub user: String,
    #[prost(string, tag = "11")]
    pub channel: String,
    #[prost(bytes = "vec", tag = "12")]
    pub data: Vec<u8>,
    #[prost(bytes = "vec", tag = "14")]
    pub meta: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(string, tag = "10")]
    pub user: String,
    #[prost(string, tag = "11")]
    pub method: String,
    #[prost(bytes = "vec", tag = "12")]
    pub data: Vec<u8>,
    #[prost(bytes = "vec", tag = "14")]
    pub meta: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubRefreshRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(string, tag = "10")]
    pub user: String,
    #[prost(string, tag = "11")]
    pub channel: String,
    #[prost(bytes = "vec", tag = "12")]
    pub meta: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RefreshRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(string, tag = "10")]
    pub user: String,
    #[prost(bytes = "vec", tag = "11")]
    pub meta: Vec<u8>,
}

/// `SubscribeOptions` of a connect result's `subs`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeOptions {
    #[prost(int64, tag = "1")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "2")]
    pub info: Vec<u8>,
    #[prost(string, tag = "3")]
    pub b64info: String,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(string, tag = "5")]
    pub b64data: String,
    #[prost(message, optional, tag = "6")]
    pub r#override: Option<SubscribeOptionOverride>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectResult {
    #[prost(string, tag = "1")]
    pub user: String,
    #[prost(int64, tag = "2")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub info: Vec<u8>,
    #[prost(string, tag = "4")]
    pub b64info: String,
    #[prost(bytes = "vec", tag = "5")]
    pub data: Vec<u8>,
    #[prost(string, tag = "6")]
    pub b64data: String,
    #[prost(string, repeated, tag = "7")]
    pub channels: Vec<String>,
    #[prost(map = "string, message", tag = "8")]
    pub subs: HashMap<String, SubscribeOptions>,
    #[prost(bytes = "vec", tag = "9")]
    pub meta: Vec<u8>,
}

/// `RefreshResult` and `SubRefreshResult` (`meta` only in the former).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RefreshResult {
    #[prost(bool, tag = "1")]
    pub expired: bool,
    #[prost(int64, tag = "2")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "3")]
    pub info: Vec<u8>,
    #[prost(string, tag = "4")]
    pub b64info: String,
    #[prost(bytes = "vec", tag = "5")]
    pub meta: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeResult {
    #[prost(int64, tag = "1")]
    pub expire_at: i64,
    #[prost(bytes = "vec", tag = "2")]
    pub info: Vec<u8>,
    #[prost(string, tag = "3")]
    pub b64info: String,
    #[prost(bytes = "vec", tag = "4")]
    pub data: Vec<u8>,
    #[prost(string, tag = "5")]
    pub b64data: String,
    #[prost(message, optional, tag = "6")]
    pub r#override: Option<SubscribeOptionOverride>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PublishResult {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(string, tag = "2")]
    pub b64data: String,
    #[prost(bool, tag = "3")]
    pub skip_history: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcResult {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(string, tag = "2")]
    pub b64data: String,
}

/// Every `<Hook>Response`: result (1), error (2), disconnect (3).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response<R: prost::Message + Default + std::fmt::Debug> {
    #[prost(message, optional, tag = "1")]
    pub result: Option<R>,
    #[prost(message, optional, tag = "2")]
    pub error: Option<Error>,
    #[prost(message, optional, tag = "3")]
    pub disconnect: Option<Disconnect>,
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

/// A JSON request field as bytes: JSON values as their text, `b64<key>` decoded.
fn bytes(v: &Value, key: &str) -> Vec<u8> {
    if let Some(b64) = v[format!("b64{key}")].as_str() {
        return base64::engine::general_purpose::STANDARD.decode(b64).unwrap_or_default();
    }
    match v.get(key) {
        Some(value) if !value.is_null() => value.to_string().into_bytes(),
        _ => Vec::new(),
    }
}

/// `ConnectRequest` (its fields from 10 on differ from the other hooks').
#[derive(Clone, PartialEq, prost::Message)]
pub struct ConnectRequest {
    #[prost(string, tag = "1")]
    pub client: String,
    #[prost(string, tag = "2")]
    pub transport: String,
    #[prost(string, tag = "3")]
    pub protocol: String,
    #[prost(string, tag = "4")]
    pub encoding: String,
    #[prost(bytes = "vec", tag = "10")]
    pub data: Vec<u8>,
    #[prost(string, tag = "12")]
    pub name: String,
    #[prost(string, tag = "13")]
    pub version: String,
    #[prost(string, repeated, tag = "14")]
    pub channels: Vec<String>,
}

/// The JSON envelope of an answer.
fn envelope<R: prost::Message + Default + std::fmt::Debug>(
    resp: Response<R>,
    result: impl FnOnce(R) -> Value,
) -> Value {
    let mut out = Map::new();
    if let Some(d) = resp.disconnect {
        out.insert("disconnect".into(), json!({"code": d.code, "reason": d.reason}));
    }
    if let Some(e) = resp.error {
        out.insert("error".into(), json!({"code": e.code, "message": e.message, "temporary": e.temporary}));
    }
    if let Some(r) = resp.result {
        out.insert("result".into(), result(r));
    }
    Value::Object(out)
}

fn connect_json(r: ConnectResult) -> Value {
    let mut out = Map::new();
    out.insert("user".into(), r.user.into());
    out.insert("expire_at".into(), r.expire_at.into());
    out.insert("channels".into(), r.channels.into());
    payload_field(&mut out, "info", &r.info, &r.b64info);
    payload_field(&mut out, "data", &r.data, &r.b64data);
    if let Ok(meta) = serde_json::from_slice::<Value>(&r.meta) {
        out.insert("meta".into(), meta);
    }
    let subs: Map<String, Value> = r
        .subs
        .into_iter()
        .map(|(channel, o)| {
            let mut s = Map::new();
            payload_field(&mut s, "info", &o.info, &o.b64info);
            payload_field(&mut s, "data", &o.data, &o.b64data);
            if let Some(ov) = &o.r#override {
                s.insert("override".into(), ov.to_json());
            }
            (channel, Value::Object(s))
        })
        .collect();
    out.insert("subs".into(), Value::Object(subs));
    Value::Object(out)
}

fn refresh_json(r: RefreshResult) -> Value {
    let mut out = Map::new();
    out.insert("expired".into(), r.expired.into());
    out.insert("expire_at".into(), r.expire_at.into());
    payload_field(&mut out, "info", &r.info, &r.b64info);
    if let Ok(meta) = serde_json::from_slice::<Value>(&r.meta) {
        out.insert("meta".into(), meta);
    }
    Value::Object(out)
}

fn subscribe_json(r: SubscribeResult) -> Value {
    let mut out = Map::new();
    out.insert("expire_at".into(), r.expire_at.into());
    payload_field(&mut out, "info", &r.info, &r.b64info);
    payload_field(&mut out, "data", &r.data, &r.b64data);
    if let Some(ov) = &r.r#override {
        out.insert("override".into(), ov.to_json());
    }
    Value::Object(out)
}

fn publish_json(r: PublishResult) -> Value {
    let mut out = Map::new();
    out.insert("skip_history".into(), r.skip_history.into());
    payload_field(&mut out, "data", &r.data, &r.b64data);
    Value::Object(out)
}

fn rpc_json(r: RpcResult) -> Value {
    let mut out = Map::new();
    payload_field(&mut out, "data", &r.data, &r.b64data);
    Value::Object(out)
}

/// Calls the hook's method with the JSON request `body`; the answer as the JSON envelope.
pub async fn call(
    channel: tonic::transport::Channel,
    hook: Hook,
    metadata: &axum::http::HeaderMap,
    body: &Value,
    timeout: Duration,
) -> Result<Value, ProxyError> {
    let v = body;
    // The fields every request has; `who!(Type { extra })` fills them from the JSON request.
    macro_rules! who {
        ($t:ident { $($rest:tt)* }) => {
            $t {
                client: text(v, "client"),
                transport: text(v, "transport"),
                protocol: text(v, "protocol"),
                encoding: text(v, "encoding"),
                $($rest)*
            }
        };
    }
    Ok(match hook {
        Hook::Connect => {
            let req = who!(ConnectRequest {
                data: bytes(v, "data"),
                name: text(v, "name"),
                version: text(v, "version"),
                channels: Vec::new(),
            });
            envelope(unary(channel, "Connect", metadata, req, timeout).await?, connect_json)
        }
        Hook::Refresh => {
            let req = who!(RefreshRequest { user: text(v, "user"), meta: bytes(v, "meta") });
            envelope(unary(channel, "Refresh", metadata, req, timeout).await?, refresh_json)
        }
        Hook::Subscribe => {
            let req = who!(SubscribeRequest {
                user: text(v, "user"),
                channel: text(v, "channel"),
                meta: bytes(v, "meta"),
                data: bytes(v, "data"),
            });
            envelope(unary(channel, "Subscribe", metadata, req, timeout).await?, subscribe_json)
        }
        Hook::Publish => {
            let req = who!(PublishRequest {
                user: text(v, "user"),
                channel: text(v, "channel"),
                data: bytes(v, "data"),
                meta: bytes(v, "meta"),
            });
            envelope(unary(channel, "Publish", metadata, req, timeout).await?, publish_json)
        }
        Hook::Rpc => {
            let req = who!(RpcRequest {
                user: text(v, "user"),
                method: text(v, "method"),
                data: bytes(v, "data"),
                meta: bytes(v, "meta"),
            });
            envelope(unary(channel, "RPC", metadata, req, timeout).await?, rpc_json)
        }
        Hook::SubRefresh => {
            let req =
                who!(SubRefreshRequest { user: text(v, "user"), channel: text(v, "channel"), meta: bytes(v, "meta") });
            envelope(unary(channel, "SubRefresh", metadata, req, timeout).await?, refresh_json)
        }
    })
}

async fn unary<Req, R>(
    channel: tonic::transport::Channel,
    method: &str,
    headers: &axum::http::HeaderMap,
    req: Req,
    timeout: Duration,
) -> Result<Response<R>, ProxyError>
where
    Req: prost::Message + Send + Sync + 'static,
    R: prost::Message + Default + std::fmt::Debug + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    let path = axum::http::uri::PathAndQuery::try_from(format!("{SERVICE}{method}"))
        .map_err(|e| ProxyError::Grpc(e.to_string()))?;
    let mut request = tonic::Request::new(req);
    request.set_timeout(timeout);
    // Client request headers travel as metadata (lowercase names, as gRPC has them).
    for (name, value) in headers {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_bytes()),
        ) {
            request.metadata_mut().append(key, value);
        }
    }
    let call = async {
        grpc.ready().await.map_err(|e| ProxyError::Grpc(e.to_string()))?;
        grpc.unary(request, path, tonic_prost::ProstCodec::default())
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| ProxyError::Grpc(format!("{}: {}", s.code(), s.message())))
    };
    tokio::time::timeout(timeout, call).await.map_err(|_| ProxyError::Grpc("timed out".into()))?
}
