//! gRPC requests as the HTTP API's JSON params, written as text so payloads stay byte-exact
//! (see [`crate::json_object`]).

use std::collections::HashMap;

use serde_json::value::RawValue;

use super::api::*;
use crate::json_object::Object;

/// A request as the HTTP API's params.
pub trait ToParams {
    fn to_params(&self) -> Object;
}

fn position(p: &StreamPosition) -> Object {
    Object::new().field("offset", &p.offset).field("epoch", &p.epoch)
}

#[allow(clippy::too_many_arguments)]
fn publication(
    target: Object,
    data: &[u8],
    b64: &str,
    skip_history: bool,
    tags: &HashMap<String, String>,
    key: &str,
    delta: bool,
) -> Object {
    target
        .payload("data", data, b64)
        .field("skip_history", &skip_history)
        .field("tags", tags)
        .field("idempotency_key", &key)
        .field("delta", &delta)
}

impl ToParams for PublishRequest {
    fn to_params(&self) -> Object {
        let target = Object::new().field("channel", &self.channel);
        publication(target, &self.data, &self.b64data, self.skip_history, &self.tags, &self.idempotency_key, self.delta)
    }
}

impl ToParams for BroadcastRequest {
    fn to_params(&self) -> Object {
        let target = Object::new().field("channels", &self.channels);
        publication(target, &self.data, &self.b64data, self.skip_history, &self.tags, &self.idempotency_key, self.delta)
    }
}

impl SubscribeOptionOverride {
    /// As the JSON API writes it: `{"presence": {"value": true}, …}` for the fields set.
    pub fn to_object(&self) -> Object {
        let value = |v: &Option<BoolValue>| v.as_ref().map(|b| b.value);
        crate::json_object::bool_values([
            ("presence", value(&self.presence)),
            ("join_leave", value(&self.join_leave)),
            ("force_recovery", value(&self.force_recovery)),
            ("force_positioning", value(&self.force_positioning)),
            ("force_push_join_leave", value(&self.force_push_join_leave)),
        ])
    }
}

impl ToParams for SubscribeRequest {
    fn to_params(&self) -> Object {
        let mut out = Object::new()
            .field("channel", &self.channel)
            .field("user", &self.user)
            .field("client", &self.client)
            .field("session", &self.session)
            .field("expire_at", &self.expire_at)
            .payload("info", &self.info, &self.b64info)
            .payload("data", &self.data, &self.b64data);
        if let Some(p) = &self.recover_since {
            out = out.object("recover_since", position(p));
        }
        if let Some(o) = &self.r#override {
            out = out.object("override", o.to_object());
        }
        out
    }
}

impl ToParams for UnsubscribeRequest {
    fn to_params(&self) -> Object {
        Object::new()
            .field("channel", &self.channel)
            .field("user", &self.user)
            .field("client", &self.client)
            .field("session", &self.session)
    }
}

impl ToParams for DisconnectRequest {
    fn to_params(&self) -> Object {
        let mut out = Object::new()
            .field("user", &self.user)
            .field("client", &self.client)
            .field("session", &self.session)
            .field("whitelist", &self.whitelist);
        if let Some(d) = &self.disconnect {
            out = out.object("disconnect", Object::new().field("code", &d.code).field("reason", &d.reason));
        }
        out
    }
}

macro_rules! channel_only {
    ($($t:ty),*) => {$(
        impl ToParams for $t {
            fn to_params(&self) -> Object {
                Object::new().field("channel", &self.channel)
            }
        }
    )*};
}

channel_only!(PresenceRequest, PresenceStatsRequest, HistoryRemoveRequest);

impl ToParams for HistoryRequest {
    fn to_params(&self) -> Object {
        let mut out =
            Object::new().field("channel", &self.channel).field("limit", &self.limit).field("reverse", &self.reverse);
        if let Some(p) = &self.since {
            out = out.object("since", position(p));
        }
        out
    }
}

impl ToParams for InfoRequest {
    fn to_params(&self) -> Object {
        Object::new()
    }
}

impl ToParams for RpcRequest {
    /// `params` that are not JSON text go as `null`.
    fn to_params(&self) -> Object {
        let out = Object::new().field("method", &self.method);
        match serde_json::from_slice::<&RawValue>(&self.params) {
            Ok(json) => out.raw("params", json),
            Err(_) => out.field("params", &()),
        }
    }
}

impl ToParams for RefreshRequest {
    fn to_params(&self) -> Object {
        Object::new()
            .field("user", &self.user)
            .field("client", &self.client)
            .field("session", &self.session)
            .field("expired", &self.expired)
            .field("expire_at", &self.expire_at)
            .payload("info", &self.info, "")
    }
}

impl ToParams for ChannelsRequest {
    fn to_params(&self) -> Object {
        Object::new().field("pattern", &self.pattern)
    }
}

impl Command {
    /// The HTTP API's batch command: `{"<method>": params}` (`{}` when none is set).
    fn to_object(&self) -> Object {
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
        match set.into_iter().find_map(|(method, r)| Some((method, r?))) {
            Some((method, request)) => Object::new().object(method, request.to_params()),
            None => Object::new(),
        }
    }
}

impl ToParams for BatchRequest {
    fn to_params(&self) -> Object {
        Object::new().list("commands", self.commands.iter().map(Command::to_object)).field("parallel", &self.parallel)
    }
}
