//! Command handlers of a session, one per protocol method.

use std::sync::Arc;

use tokio::time::Instant;

use super::subscriptions::{payload_or_b64, SubSpec};
use super::{Connected, Session, State};
use crate::auth::{times, unix_now, ConnectClaims, SubOptions, TokenError};
use crate::connection::ClientHandle;
use crate::node::{PublishParams, VERSION};
use crate::protocol::*;
use crate::proxy::Hook;

impl Session {
    pub(super) async fn handle_command(&mut self, command: Command) -> Result<(), Disconnect> {
        let (id, request) = command.into_request();
        let method = method_name(&request);
        self.node.metrics.commands.with_label_values(&[method]).inc();
        let rated = id > 0 && !matches!(request, Request::Connect(_) | Request::Invalid | Request::Pong);
        if rated && matches!(self.state, State::Connected(_)) && !self.take_command_token()? {
            self.reply_error(id, method, ErrorCode::TOO_MANY_REQUESTS);
            return Ok(());
        }
        match (&self.state, request) {
            (_, Request::Invalid) => Err(Disconnect::bad_request()),
            (State::Connecting, Request::Connect(req)) if id > 0 => self.connect(id, req).await,
            (State::Connected(_), Request::Pong) => self.pong(),
            // No application message hook: Centrifugo's answer without one.
            (State::Connected(_), Request::Send(_)) => Err(Disconnect::not_available()),
            (State::Connected(_), _) if id == 0 => Err(Disconnect::bad_request()),
            (State::Connected(_), Request::Subscribe(req)) => self.subscribe(id, req).await,
            (State::Connected(_), Request::Unsubscribe(req)) => self.unsubscribe(id, req).await,
            (State::Connected(_), Request::Publish(req)) => self.publish(id, req).await,
            (State::Connected(_), Request::Presence(req)) => self.presence(id, req, false).await,
            (State::Connected(_), Request::PresenceStats(req)) => self.presence(id, req, true).await,
            (State::Connected(_), Request::History(req)) => self.history(id, req).await,
            (State::Connected(_), Request::Rpc(req)) => self.rpc(id, req).await,
            (State::Connected(_), Request::Refresh(req)) => self.refresh(id, req).await,
            (State::Connected(_), Request::SubRefresh(req)) => self.sub_refresh(id, req).await,
            // Anything before a successful connect, a second connect, or after a failed one.
            _ => Err(Disconnect::bad_request()),
        }
    }

    /// Takes a token of `client_command_rate_limit`: `Ok(false)` answers the command 111;
    /// a client still sending after a whole burst of refusals is disconnected (3013).
    fn take_command_token(&mut self) -> Result<bool, Disconnect> {
        let config = self.node.config();
        let rate = config.client_command_rate_limit;
        let burst = if config.client_command_rate_burst == 0 { rate } else { config.client_command_rate_burst };
        let quota = crate::limit::Quota { rate, burst };
        if self.command_bucket.try_take(quota, Instant::now()) {
            self.refused_in_row = 0;
            return Ok(true);
        }
        self.refused_in_row = self.refused_in_row.saturating_add(1);
        if self.refused_in_row > burst.max(1) {
            return Err(Disconnect::too_many_requests());
        }
        Ok(false)
    }

    /// Fires due timers.
    pub async fn on_timer(&mut self, now: Instant) -> Result<(), Disconnect> {
        if self.timers.sub_expire.is_some_and(|at| now >= at) {
            self.expire_subscriptions().await?;
        }
        // Timers are set at most `times::MAX_AHEAD` out: one that fires while the credentials
        // are still far from expiry is set again.
        if self.timers.expire.is_some_and(|at| now >= at) {
            if let State::Connected(c) = &self.state {
                if let Some(at) = c.expires_at.filter(|at| *at > unix_now().saturating_add(60)) {
                    self.timers.expire = Some(self.expiry_deadline(at, c.server_refresh));
                }
            }
        }
        if self.timers.expire.is_some_and(|at| now >= at)
            && matches!(&self.state, State::Connected(c) if c.server_refresh)
        {
            self.refresh_by_proxy().await?;
        }
        let t = &mut self.timers;
        if t.stale.is_some_and(|at| now >= at) {
            return Err(Disconnect::stale());
        }
        if t.pong_deadline.is_some_and(|at| now >= at) {
            return Err(Disconnect::no_pong());
        }
        if t.expire.is_some_and(|at| now >= at) {
            return Err(Disconnect::expired());
        }
        if t.next_ping.is_some_and(|at| now >= at) {
            t.next_ping = Some(now + t.ping_interval);
            if t.pong_enabled() && t.pong_deadline.is_none() {
                t.pong_deadline = Some(now + t.pong_timeout);
            }
            self.send_raw(self.encoding.ping());
        }
        Ok(())
    }

    fn pong(&mut self) -> Result<(), Disconnect> {
        if self.timers.pong_deadline.take().is_none() {
            return Err(Disconnect::bad_request());
        }
        Ok(())
    }

    async fn connect(&mut self, id: u32, req: ConnectRequest) -> Result<(), Disconnect> {
        let rules = self.node.rules();
        let config = &rules.config;
        if self.node.is_shutting_down() {
            return Err(Disconnect::shutdown());
        }
        // The node-wide limit is taken before any work for the connection (token checks,
        // proxies); concurrent connects race for slots atomically.
        if config.client_connection_limit > 0 {
            match self.node.hub.reserve_slot(config.client_connection_limit) {
                Some(slot) => self.slot = Some(slot),
                None => return Err(Disconnect::connection_limit()),
            }
        }
        let client_id: Arc<str> = Arc::from(uuid::Uuid::new_v4().to_string());
        let credentials = if let Some(preset) = self.preset.take() {
            Some(preset)
        } else if !req.token.is_empty() {
            match rules.tokens.verify_connect(&req.token).await {
                Ok(claims) => Some(Credentials::from_claims(claims)),
                Err(TokenError::Expired) => return self.fail_connect(id, ErrorCode::TOKEN_EXPIRED),
                Err(TokenError::Unavailable(why)) => {
                    tracing::warn!(%why, "connection token not verifiable now");
                    return self.fail_connect(id, ErrorCode::INTERNAL);
                }
                Err(TokenError::Invalid(why)) => {
                    tracing::debug!(%why, "connection token refused");
                    return Err(Disconnect::invalid_token());
                }
            }
        } else if rules.proxies.enabled(Hook::Connect) {
            match self.connect_by_proxy(&client_id, &req).await? {
                Ok(Some(result)) => match Credentials::from_proxy(result) {
                    Ok(c) => Some(c),
                    Err(code) => return self.fail_connect(id, code),
                },
                Ok(None) => None,
                Err(code) => return self.fail_connect(id, code),
            }
        } else {
            None
        };
        let Some(Credentials { user, conn_info, expires_at, mut server_subs, data, meta }) =
            credentials.or_else(|| {
                (config.allow_anonymous_connect_without_token || config.client_insecure).then(Credentials::default)
            })
        else {
            return Err(Disconnect::bad_request());
        };
        if config.user_subscribe_to_personal && !user.is_empty() {
            let ns = &config.user_personal_channel_namespace;
            let personal = if ns.is_empty() { format!("#{user}") } else { format!("{ns}:#{user}") };
            if !server_subs.iter().any(|(c, _)| *c == personal) {
                server_subs.push((personal, SubOptions::default()));
            }
        }
        let now = unix_now();
        if expires_at.is_some_and(|at| rules.tokens.has_passed(at, now)) {
            return self.fail_connect(id, ErrorCode::EXPIRED);
        }
        // A cheap early refusal; the limit itself holds in try_add_client below.
        if config.client_user_connection_limit > 0
            && !user.is_empty()
            && self.node.hub.user_connections(&user) >= config.client_user_connection_limit
        {
            return Err(Disconnect::connection_limit());
        }
        if server_subs.len() > config.client_channel_limit {
            return Err(Disconnect::channel_limit());
        }
        let mut specs = Vec::with_capacity(server_subs.len());
        for (channel, o) in server_subs {
            let options = match rules.channels.resolve(config, &channel) {
                Ok(r) => r.options.clone(),
                Err(code) => return self.fail_connect(id, code),
            };
            // The client's recovery position for this server-side subscription, if any.
            let recover = req
                .subs
                .get(&channel)
                .filter(|r| r.recover)
                .map(|r| StreamPosition { offset: r.offset, epoch: r.epoch.clone() });
            let mut spec = SubSpec::new(&channel, options, o.overrides.as_ref()).server_side(recover);
            spec.chan_info = payload_or_b64(o.info, o.b64info.as_deref());
            spec.data = payload_or_b64(o.data, o.b64data.as_deref());
            specs.push(spec);
        }

        let handle = Arc::new(
            ClientHandle::new(client_id.clone(), Arc::from(user.as_str()), self.encoding, self.outbox.clone())
                .with_session(self.emulation_session.clone()),
        );
        if self.node.hub.try_add_client(handle.clone(), config.client_user_connection_limit).is_err() {
            return Err(Disconnect::connection_limit());
        }
        let info = ClientInfo { user, client: client_id.to_string(), conn_info, chan_info: None };

        let mut result = ConnectResult {
            client: client_id.to_string(),
            version: VERSION.to_string(),
            ping: self.timers.ping_interval.as_secs() as u32,
            pong: self.timers.pong_enabled(),
            session: self.emulation_session.as_deref().unwrap_or_default().to_string(),
            node: if self.emulation_session.is_some() { self.node.id.clone() } else { String::new() },
            data,
            ..Default::default()
        };
        // With a refresh proxy the server prolongs the credentials; otherwise the client must.
        let server_refresh = rules.proxies.enabled(Hook::Refresh);
        if let Some(at) = expires_at {
            if !server_refresh {
                result.expires = true;
                result.ttl = times::ttl_until(at, now);
            }
            self.timers.expire = Some(self.expiry_deadline(at, server_refresh));
        }
        // Server-side subscriptions hold their live publications until the connect reply is
        // queued, so none can precede it.
        let mut prepared = Vec::with_capacity(specs.len());
        for spec in specs {
            let channel = spec.channel.clone();
            match self.prepare_subscription(&handle, spec).await {
                Ok(p) => {
                    result.subs.insert(channel, p.result.clone());
                    prepared.push(p);
                }
                Err(code) => {
                    for p in &prepared {
                        self.drop_subscriber(&handle, p.channel()).await;
                    }
                    self.node.hub.remove_client(&handle);
                    return self.fail_connect(id, code);
                }
            }
        }
        self.reply(id, ReplyBody::Connect(result));
        self.timers.connected(Instant::now());
        for p in prepared {
            self.finish_subscription(&handle, &info, p, None).await;
        }
        self.state = State::Connected(Connected { handle, info, expires_at, server_refresh, meta });
        Ok(())
    }

    /// The connection's handle and info, cloned so handlers can borrow `self` mutably.
    pub(super) fn conn_ref(&self) -> Result<(Arc<ClientHandle>, ClientInfo), Disconnect> {
        let conn = self.connected()?;
        Ok((conn.handle.clone(), conn.info.clone()))
    }

    /// A refused connect: an error reply; a unidirectional client, which can send nothing
    /// more, is disconnected instead: 3004 (reconnect) for a temporary error, else 3501 with
    /// the error's message.
    fn fail_connect(&mut self, id: u32, error: ErrorCode) -> Result<(), Disconnect> {
        self.state = State::Failed;
        self.slot = None;
        if self.encoding.is_uni() {
            self.count_error("connect", &error);
            if error.temporary {
                return Err(Disconnect::internal());
            }
            return Err(Disconnect { code: 3501, reason: error.message.to_string() });
        }
        self.reply_error(id, "connect", error);
        Ok(())
    }

    pub(super) fn connected(&self) -> Result<&Connected, Disconnect> {
        match &self.state {
            State::Connected(c) => Ok(c),
            _ => Err(Disconnect::bad_request()),
        }
    }

    async fn publish(&mut self, id: u32, req: PublishRequest) -> Result<(), Disconnect> {
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let rules = self.node.rules();
        let conn = self.connected()?;
        let options = match rules.channels.resolve(&rules.config, &req.channel) {
            Ok(r) => r.options.clone(),
            Err(code) => {
                self.reply_error(id, "publish", code);
                return Ok(());
            }
        };
        let data = match req.data {
            Some(d) if req.kind == 0 => d,
            _ => {
                self.reply_error(id, "publish", ErrorCode::BAD_REQUEST);
                return Ok(());
            }
        };
        let sub = self.subs.get(&req.channel);
        let user_ok = !conn.info.user.is_empty() || options.allow_publish_for_anonymous;
        // With a publish proxy the backend alone decides.
        let proxied = options.publish_proxied();
        let allowed = proxied
            || rules.config.client_insecure
            || (user_ok && options.allow_publish_for_client)
            || (user_ok && options.allow_publish_for_subscriber && sub.is_some());
        if !allowed {
            self.reply_error(id, "publish", ErrorCode::PERMISSION_DENIED);
            return Ok(());
        }
        let info = ClientInfo { chan_info: sub.and_then(|s| s.chan_info.clone()), ..conn.info.clone() };
        let mut params = PublishParams { info: Some(info), ..Default::default() };
        let mut data = data;
        if proxied {
            let decided = self.publish_by_proxy(&req.channel, &data).await?;
            let replaced = decided.and_then(|r| match r {
                Some(mut r) => {
                    params.skip_history = r.skip_history;
                    r.data()
                }
                None => Ok(None),
            });
            match replaced {
                Ok(Some(new)) => data = new,
                Ok(None) => {}
                Err(code) => {
                    self.reply_error(id, "publish", code);
                    return Ok(());
                }
            }
        }
        match self.node.publish(&req.channel, data, params).await {
            Ok(_) => self.reply(id, ReplyBody::Publish(Empty {})),
            Err(code) => self.reply_error(id, "publish", code),
        }
        Ok(())
    }

    /// Whether this connection may read presence or history of a channel.
    fn may_read(&self, channel: &str, for_client: bool, for_subscriber: bool, for_anonymous: bool) -> bool {
        let Ok(conn) = self.connected() else { return false };
        let user_ok = !conn.info.user.is_empty() || for_anonymous;
        self.node.config().client_insecure
            || (user_ok && for_client)
            || (user_ok && for_subscriber && self.subs.contains_key(channel))
    }

    async fn presence(&mut self, id: u32, req: ChannelRequest, stats: bool) -> Result<(), Disconnect> {
        let method = if stats { "presence_stats" } else { "presence" };
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let rules = self.node.rules();
        let options = match rules.channels.resolve(&rules.config, &req.channel) {
            Ok(r) if !r.options.presence => Err(ErrorCode::NOT_AVAILABLE),
            Ok(r) => Ok(r.options.clone()),
            Err(code) => Err(code),
        };
        let options = match options {
            Ok(o) => o,
            Err(code) => {
                self.reply_error(id, method, code);
                return Ok(());
            }
        };
        if !self.may_read(
            &req.channel,
            options.allow_presence_for_client,
            options.allow_presence_for_subscriber,
            options.allow_presence_for_anonymous,
        ) {
            self.reply_error(id, method, ErrorCode::PERMISSION_DENIED);
            return Ok(());
        }
        let pm = self.node.presence_manager();
        let body = if stats {
            pm.presence_stats(&req.channel).await.map(|(num_clients, num_users)| {
                ReplyBody::PresenceStats(PresenceStatsResult { num_clients, num_users })
            })
        } else {
            pm.presence(&req.channel).await.map(|presence| ReplyBody::Presence(PresenceResult { presence }))
        };
        match body {
            Ok(b) => self.reply(id, b),
            Err(err) => {
                tracing::warn!(%err, "presence failed");
                self.reply_error(id, method, ErrorCode::INTERNAL);
            }
        }
        Ok(())
    }

    async fn history(&mut self, id: u32, req: HistoryRequest) -> Result<(), Disconnect> {
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let rules = self.node.rules();
        let config = &rules.config;
        let options = match rules.channels.resolve(config, &req.channel) {
            Ok(r) if !r.options.history_enabled() => Err(ErrorCode::NOT_AVAILABLE),
            Ok(r) => Ok(r.options.clone()),
            Err(code) => Err(code),
        };
        let options = match options {
            Ok(o) => o,
            Err(code) => {
                self.reply_error(id, "history", code);
                return Ok(());
            }
        };
        if !self.may_read(
            &req.channel,
            options.allow_history_for_client,
            options.allow_history_for_subscriber,
            options.allow_history_for_anonymous,
        ) {
            self.reply_error(id, "history", ErrorCode::PERMISSION_DENIED);
            return Ok(());
        }
        match self.node.read_history(&req.channel, &options, req.limit, req.since, req.reverse).await {
            Ok(result) => self.reply(id, ReplyBody::History(result)),
            Err(code) => self.reply_error(id, "history", code),
        }
        Ok(())
    }

    async fn refresh(&mut self, id: u32, req: RefreshRequest) -> Result<(), Disconnect> {
        if req.token.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let rules = self.node.rules();
        let claims = match rules.tokens.verify_connect(&req.token).await {
            Ok(c) => c,
            Err(TokenError::Expired) => return Err(Disconnect::expired()),
            Err(TokenError::Unavailable(why)) => {
                // The SDK retries a temporary refresh error; the connection lives until then.
                tracing::warn!(%why, "refresh token not verifiable now");
                self.reply_error(id, "refresh", ErrorCode::INTERNAL);
                return Ok(());
            }
            Err(TokenError::Invalid(_)) => return Err(Disconnect::invalid_token()),
        };
        let now = unix_now();
        let expires_at = claims.expires_at();
        let State::Connected(conn) = &mut self.state else { return Err(Disconnect::bad_request()) };
        if claims.sub != conn.info.user {
            return Err(Disconnect::invalid_token());
        }
        if expires_at.is_some_and(|at| rules.tokens.has_passed(at, now)) {
            // `exp` is valid but `expire_at` has passed: refused like an expired connect.
            self.reply_error(id, "refresh", ErrorCode::EXPIRED);
            return Ok(());
        }
        conn.expires_at = expires_at;
        conn.server_refresh = false;
        let result = match expires_at {
            Some(at) => {
                self.timers.expire = Some(self.expiry_deadline(at, false));
                RefreshResult { expires: true, ttl: times::ttl_until(at, now) }
            }
            None => {
                self.timers.expire = None;
                RefreshResult::default()
            }
        };
        self.reply(id, ReplyBody::Refresh(result));
        Ok(())
    }
}

/// Who connects, from a token or the connect proxy.
#[derive(Default)]
pub(super) struct Credentials {
    user: String,
    conn_info: Option<Payload>,
    expires_at: Option<i64>,
    /// Server-side subscriptions: `subs` with their options, then the plain `channels`.
    server_subs: Vec<(String, SubOptions)>,
    /// For the connect reply.
    data: Option<Payload>,
    meta: Option<Payload>,
}

impl Credentials {
    /// Credentials a server-side caller gives (the admin UI's tail): `user`, subscribed by the
    /// server to `channels`, never expiring.
    pub(super) fn preset(user: &str, channels: Vec<String>) -> Self {
        Self {
            user: user.to_string(),
            conn_info: None,
            expires_at: None,
            server_subs: channels.into_iter().map(|c| (c, SubOptions::default())).collect(),
            data: None,
            meta: None,
        }
    }

    fn from_claims(claims: ConnectClaims) -> Self {
        let expires_at = claims.expires_at();
        Self {
            conn_info: payload_or_b64(claims.info, claims.b64info.as_deref()),
            expires_at,
            server_subs: server_subs(claims.subs, claims.channels),
            user: claims.sub,
            data: None,
            meta: claims.meta,
        }
    }

    fn from_proxy(mut result: crate::proxy::wire::ConnectResult) -> Result<Self, ErrorCode> {
        Ok(Self {
            conn_info: result.info()?,
            data: result.data()?,
            expires_at: (result.expire_at > 0).then_some(result.expire_at),
            server_subs: server_subs(std::mem::take(&mut result.subs), std::mem::take(&mut result.channels)),
            user: result.user,
            meta: result.meta,
        })
    }
}

/// `subs` carry per-channel options and take precedence over `channels`.
fn server_subs(
    subs: std::collections::HashMap<String, SubOptions>,
    channels: Vec<String>,
) -> Vec<(String, SubOptions)> {
    let plain: Vec<String> = channels.into_iter().filter(|ch| !subs.contains_key(ch)).collect();
    let mut out: Vec<(String, SubOptions)> = subs.into_iter().collect();
    out.extend(plain.into_iter().map(|ch| (ch, SubOptions::default())));
    out
}

fn method_name(r: &Request) -> &'static str {
    match r {
        Request::Connect(_) => "connect",
        Request::Subscribe(_) => "subscribe",
        Request::Unsubscribe(_) => "unsubscribe",
        Request::Publish(_) => "publish",
        Request::Presence(_) => "presence",
        Request::PresenceStats(_) => "presence_stats",
        Request::History(_) => "history",
        Request::Rpc(_) => "rpc",
        Request::Send(_) => "send",
        Request::Refresh(_) => "refresh",
        Request::SubRefresh(_) => "sub_refresh",
        Request::Pong => "pong",
        Request::Invalid => "invalid",
    }
}
