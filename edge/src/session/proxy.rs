//! The session's side of the backend proxy: who is asking, and what each answer means for
//! the client (Centrifugo's rules, ../proxy for the wire).

use tokio::time::Instant;

use super::{Session, State};
use crate::auth::unix_now;
use crate::protocol::*;
use crate::proxy::{wire, Answer, Hook, ProxyError};

/// How long a connection or subscription keeps going when its refresh request failed
/// before it is tried again (Centrifugo's figure).
const REFRESH_RETRY_SECS: i64 = 60;

/// What a hook answering a client command decided: the result (`None` when the backend
/// sent none), an error reply for the command, or (outer `Err`) a disconnect.
pub(super) type Decision<T> = Result<Result<Option<T>, ErrorCode>, Disconnect>;

fn decide<T>(answer: Result<Answer<T>, ProxyError>) -> Decision<T> {
    match answer {
        Ok(Answer::Result(r)) => Ok(Ok(Some(r))),
        Ok(Answer::Empty) => Ok(Ok(None)),
        Ok(Answer::Error(e)) => Ok(Err(e)),
        Ok(Answer::Disconnect(d)) => Err(d),
        Err(_) => Ok(Err(ErrorCode::INTERNAL)),
    }
}

/// What a refresh hook decided.
enum Refreshed<T> {
    /// Prolonged until the result's `expire_at`.
    Until(i64, T),
    Expired,
    /// The backend could not be asked: keep going and ask again later.
    Retry,
}

fn refreshed(answer: Result<Answer<wire::RefreshResult>, ProxyError>) -> Refreshed<wire::RefreshResult> {
    match answer {
        Err(_) => Refreshed::Retry,
        Ok(Answer::Result(r)) if !r.expired && r.expire_at > unix_now() => Refreshed::Until(r.expire_at, r),
        // `error` and `disconnect` mean nothing to refresh hooks: no result is expiry.
        Ok(_) => Refreshed::Expired,
    }
}

impl Session {
    /// The fields every request starts with.
    pub(super) fn proxy_common<'a>(&'a self, client: &'a str, encoding: &'static str) -> wire::Common<'a> {
        let protocol = if self.encoding == Encoding::Protobuf { "protobuf" } else { "json" };
        wire::Common { client, transport: self.transport, protocol, encoding }
    }

    /// The connected client as the backend sees it.
    fn caller(&self, include_meta: bool, encoding: &'static str) -> Result<wire::Caller<'_>, Disconnect> {
        let conn = self.connected()?;
        Ok(wire::Caller {
            common: self.proxy_common(&conn.handle.id, encoding),
            user: &conn.info.user,
            meta: if include_meta { conn.meta.as_ref() } else { None },
        })
    }

    /// Asks the connect proxy about a connection without a token.
    pub(super) async fn connect_by_proxy(&self, client: &str, req: &ConnectRequest) -> Decision<wire::ConnectResult> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        let body = wire::ConnectRequest {
            common: self.proxy_common(client, proxies.encoding()),
            name: &req.name,
            version: &req.version,
            data: wire::Data::new(req.data.as_ref(), proxies.binary_encoding),
            channels: Vec::new(),
        };
        decide(proxies.call(Hook::Connect, self.headers.as_deref(), &body, &self.node.metrics).await)
    }

    /// Asks the subscribe proxy whether the client may subscribe.
    pub(super) async fn subscribe_by_proxy(&self, req: &SubscribeRequest) -> Decision<wire::SubscribeResult> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        let body = wire::ChannelRequest {
            caller: self.caller(proxies.include_meta, proxies.encoding())?,
            channel: &req.channel,
            data: wire::Data::new(req.data.as_ref(), proxies.binary_encoding),
        };
        decide(proxies.call(Hook::Subscribe, self.headers.as_deref(), &body, &self.node.metrics).await)
    }

    /// Asks the publish proxy whether the client may publish `data`.
    pub(super) async fn publish_by_proxy(&self, channel: &str, data: &Payload) -> Decision<wire::PublishResult> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        let body = wire::ChannelRequest {
            caller: self.caller(proxies.include_meta, proxies.encoding())?,
            channel,
            data: wire::Data::new(Some(data), proxies.binary_encoding),
        };
        decide(proxies.call(Hook::Publish, self.headers.as_deref(), &body, &self.node.metrics).await)
    }

    /// Client RPC: answered by the RPC proxy; 108 when there is none.
    pub(super) async fn rpc(&mut self, id: u32, req: RpcRequest) -> Result<(), Disconnect> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        if !proxies.enabled(Hook::Rpc) {
            self.reply_error(id, "rpc", ErrorCode::NOT_AVAILABLE);
            return Ok(());
        }
        let body = wire::RpcRequest {
            caller: self.caller(proxies.include_meta, proxies.encoding())?,
            method: &req.method,
            data: wire::Data::new(req.data.as_ref(), proxies.binary_encoding),
        };
        let answer = decide::<wire::RpcResult>(
            proxies.call(Hook::Rpc, self.headers.as_deref(), &body, &self.node.metrics).await,
        )?;
        match answer.and_then(|r| r.map_or(Ok(None), |mut r| r.data())) {
            Ok(data) => self.reply(id, ReplyBody::Rpc(RpcResult { data })),
            Err(code) => self.reply_error(id, "rpc", code),
        }
        Ok(())
    }

    /// The credentials are due: the refresh proxy prolongs them or they expire (3005).
    pub(super) async fn refresh_by_proxy(&mut self) -> Result<(), Disconnect> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        let answer = {
            let body = wire::RefreshRequest { caller: self.caller(proxies.include_meta, proxies.encoding())? };
            proxies.call(Hook::Refresh, self.headers.as_deref(), &body, &self.node.metrics).await
        };
        let State::Connected(conn) = &mut self.state else { return Err(Disconnect::bad_request()) };
        let mut info_changed = false;
        let until = match refreshed(answer) {
            Refreshed::Expired => return Err(Disconnect::expired()),
            Refreshed::Retry => unix_now() + REFRESH_RETRY_SECS,
            Refreshed::Until(at, mut result) => {
                if let Ok(Some(info)) = result.info() {
                    conn.info.conn_info = Some(info);
                    info_changed = true;
                }
                if let Some(meta) = result.meta.take() {
                    conn.meta = Some(meta);
                }
                at
            }
        };
        conn.expires_at = Some(until);
        self.timers.expire = Some(self.expiry_deadline(until, true));
        if info_changed {
            self.refresh_presence(None).await;
        }
        Ok(())
    }

    /// A subscription is due: the sub_refresh proxy prolongs it or it ends (2501).
    pub(super) async fn refresh_subscription_by_proxy(&mut self, channel: &str) -> Result<(), Disconnect> {
        let rules = self.node.rules();
        let proxies = &rules.proxies;
        let answer = {
            let caller = self.caller(proxies.include_meta, proxies.encoding())?;
            let body = wire::ChannelRequest { caller, channel, data: wire::Data::default() };
            proxies.call(Hook::SubRefresh, self.headers.as_deref(), &body, &self.node.metrics).await
        };
        let Some(sub) = self.subs.get_mut(channel) else { return Ok(()) };
        match refreshed(answer) {
            Refreshed::Expired => return self.server_unsubscribe(channel, 2501, "subscription expired").await,
            Refreshed::Retry => sub.expires_at = Some(unix_now() + REFRESH_RETRY_SECS),
            Refreshed::Until(at, mut result) => {
                sub.expires_at = Some(at);
                if let Ok(Some(info)) = result.info() {
                    sub.chan_info = Some(info);
                    self.refresh_presence(Some(channel)).await;
                }
            }
        }
        Ok(())
    }

    /// When the credentials expiring at `at` are due: at the moment itself when the refresh
    /// proxy prolongs them, after `client_expired_close_delay` when the client must send a
    /// new token.
    pub(super) fn expiry_deadline(&self, at: i64, server_refresh: bool) -> Instant {
        let grace =
            if server_refresh { std::time::Duration::ZERO } else { self.node.config().client_expired_close_delay.0 };
        crate::auth::times::deadline_at(at, unix_now(), grace)
    }
}
