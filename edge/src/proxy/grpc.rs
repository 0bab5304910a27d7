//! Proxy hooks over gRPC (`grpc://` endpoints): the `CentrifugoProxy` service of
//! `proto/proxy.proto`. The JSON request of [`super::wire`] becomes the hook's message and the
//! answer becomes the JSON envelope again, so both transports share every rule; payloads cross
//! both ways as the exact bytes of their JSON text (see [`crate::json_object`]).

use std::time::Duration;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::proto::centrifugo_proxy_client::CentrifugoProxyClient;
use super::proto::*;
use super::{Hook, ProxyError};
use crate::json_object::{bool_values, Object};

/// The fields of a JSON proxy request, whatever the hook (absent ones are empty).
#[derive(Deserialize, Default)]
#[serde(default)]
struct Fields<'a> {
    client: String,
    transport: String,
    protocol: String,
    encoding: String,
    user: String,
    channel: String,
    method: String,
    name: String,
    version: String,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    b64data: String,
    #[serde(borrow)]
    meta: Option<&'a RawValue>,
}

impl Fields<'_> {
    /// `data` as bytes: its JSON text, or `b64data` decoded (binary payloads).
    fn data(&self) -> Vec<u8> {
        if !self.b64data.is_empty() {
            return base64::engine::general_purpose::STANDARD.decode(&self.b64data).unwrap_or_default();
        }
        raw_bytes(self.data)
    }

    fn meta(&self) -> Vec<u8> {
        raw_bytes(self.meta)
    }
}

fn raw_bytes(raw: Option<&RawValue>) -> Vec<u8> {
    raw.map(|r| r.get().as_bytes().to_vec()).unwrap_or_default()
}

/// `meta` bytes as a JSON field when they hold JSON.
fn meta(out: Object, bytes: &[u8]) -> Object {
    match serde_json::from_slice::<&RawValue>(bytes) {
        Ok(json) => out.raw("meta", json),
        Err(_) => out,
    }
}

fn overrides(out: Object, o: &Option<SubscribeOptionOverride>) -> Object {
    let Some(o) = o else { return out };
    let value = |v: &Option<BoolValue>| v.as_ref().map(|b| b.value);
    out.object(
        "override",
        bool_values([
            ("presence", value(&o.presence)),
            ("join_leave", value(&o.join_leave)),
            ("force_recovery", value(&o.force_recovery)),
            ("force_positioning", value(&o.force_positioning)),
            ("force_push_join_leave", value(&o.force_push_join_leave)),
        ]),
    )
}

/// A hook's result as the JSON the HTTP proxy would have answered.
trait ToJson {
    fn to_json(&self) -> Object;
}

impl ToJson for ConnectResult {
    fn to_json(&self) -> Object {
        let mut out = Object::new()
            .field("user", &self.user)
            .field("expire_at", &self.expire_at)
            .field("channels", &self.channels)
            .payload("info", &self.info, &self.b64info)
            .payload("data", &self.data, &self.b64data);
        out = meta(out, &self.meta);
        let mut subs = Object::new();
        for (channel, o) in &self.subs {
            let sub = Object::new()
                .field("expire_at", &o.expire_at)
                .payload("info", &o.info, &o.b64info)
                .payload("data", &o.data, &o.b64data);
            subs = subs.object(channel, overrides(sub, &o.r#override));
        }
        out.object("subs", subs)
    }
}

impl ToJson for RefreshResult {
    fn to_json(&self) -> Object {
        let out = Object::new().field("expired", &self.expired).field("expire_at", &self.expire_at).payload(
            "info",
            &self.info,
            &self.b64info,
        );
        meta(out, &self.meta)
    }
}

impl ToJson for SubRefreshResult {
    fn to_json(&self) -> Object {
        Object::new().field("expired", &self.expired).field("expire_at", &self.expire_at).payload(
            "info",
            &self.info,
            &self.b64info,
        )
    }
}

impl ToJson for SubscribeResult {
    fn to_json(&self) -> Object {
        let out = Object::new().field("expire_at", &self.expire_at).payload("info", &self.info, &self.b64info).payload(
            "data",
            &self.data,
            &self.b64data,
        );
        overrides(out, &self.r#override)
    }
}

impl ToJson for PublishResult {
    fn to_json(&self) -> Object {
        Object::new().field("skip_history", &self.skip_history).payload("data", &self.data, &self.b64data)
    }
}

impl ToJson for RpcResult {
    fn to_json(&self) -> Object {
        Object::new().payload("data", &self.data, &self.b64data)
    }
}

/// The JSON envelope of an answer: `disconnect`, `error`, `result` as far as set.
fn envelope(result: Option<&dyn ToJson>, error: Option<Error>, disconnect: Option<Disconnect>) -> String {
    let mut out = Object::new();
    if let Some(d) = disconnect {
        out = out.object("disconnect", Object::new().field("code", &d.code).field("reason", &d.reason));
    }
    if let Some(e) = error {
        let error = Object::new().field("code", &e.code).field("message", &e.message).field("temporary", &e.temporary);
        out = out.object("error", error);
    }
    if let Some(r) = result {
        out = out.object("result", r.to_json());
    }
    out.finish()
}

/// Calls the hook's method with the JSON request `body`; the answer as the JSON envelope's text.
pub async fn call(
    channel: tonic::transport::Channel,
    hook: Hook,
    metadata: &axum::http::HeaderMap,
    body: &impl Serialize,
    timeout: Duration,
) -> Result<String, ProxyError> {
    let text = serde_json::to_string(body)?;
    let v: Fields<'_> = serde_json::from_str(&text)?;
    let mut client = CentrifugoProxyClient::new(channel);
    // `req!(Type { fields })`: the hook's message with the fields every request starts with,
    // as a call with the deadline and metadata.
    macro_rules! req {
        ($t:ident { $($rest:tt)* }) => {
            request(
                $t {
                    client: v.client.clone(),
                    transport: v.transport.clone(),
                    protocol: v.protocol.clone(),
                    encoding: v.encoding.clone(),
                    $($rest)*
                },
                metadata,
                timeout,
            )
        };
    }
    let call = async {
        Ok::<_, tonic::Status>(match hook {
            Hook::Connect => {
                let r = client
                    .connect(req!(ConnectRequest {
                        data: v.data(),
                        name: v.name.clone(),
                        version: v.version.clone(),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
            Hook::Refresh => {
                let r =
                    client.refresh(req!(RefreshRequest { user: v.user.clone(), meta: v.meta() })).await?.into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
            Hook::Subscribe => {
                let r = client
                    .subscribe(req!(SubscribeRequest {
                        user: v.user.clone(),
                        channel: v.channel.clone(),
                        meta: v.meta(),
                        data: v.data(),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
            Hook::Publish => {
                let r = client
                    .publish(req!(PublishRequest {
                        user: v.user.clone(),
                        channel: v.channel.clone(),
                        data: v.data(),
                        meta: v.meta(),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
            Hook::Rpc => {
                let r = client
                    .rpc(req!(RpcRequest {
                        user: v.user.clone(),
                        method: v.method.clone(),
                        data: v.data(),
                        meta: v.meta(),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
            Hook::SubRefresh => {
                let r = client
                    .sub_refresh(req!(SubRefreshRequest {
                        user: v.user.clone(),
                        channel: v.channel.clone(),
                        meta: v.meta(),
                    }))
                    .await?
                    .into_inner();
                envelope(r.result.as_ref().map(|r| r as &dyn ToJson), r.error, r.disconnect)
            }
        })
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(s)) => Err(ProxyError::Grpc(format!("{}: {}", s.code(), s.message()))),
        Err(_) => Err(ProxyError::Grpc("timed out".into())),
    }
}

/// The message as a call with a deadline; the client's request headers travel as metadata
/// (lowercase names, as gRPC has them).
fn request<T>(message: T, headers: &axum::http::HeaderMap, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    for (name, value) in headers {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            tonic::metadata::MetadataValue::try_from(value.as_bytes()),
        ) {
            request.metadata_mut().append(key, value);
        }
    }
    request
}
