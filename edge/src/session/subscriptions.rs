//! Subscriptions of a session: client and server-side subscribe with positioning and
//! recovery, unsubscribe, subscription tokens and their refresh and expiry.
//!
//! Every subscription starts the same way: the subscriber is registered in the hub holding
//! live publications, the result (stream position, recovered publications) is computed, and
//! activation queues the reply before the held publications that follow it. So the reply
//! always precedes live publications, with neither gap nor duplicate.

use std::sync::Arc;

use bytes::Bytes;
use std::time::Duration;

use super::{Session, State, Subscription};
use crate::auth::{times, unix_now, SubOverride, TokenError};
use crate::config::ChannelOptions;
use crate::connection::ClientHandle;
use crate::engine::{HistoryOptions, HistoryQuery};
use crate::internode::ServerSubscribe;
use crate::node::hub::{Added, Registration, Subscriber};
use crate::node::recovery::{ReadResult, Reader};
use crate::node::Node;
use crate::protocol::channel::{is_private, user_allowed};
use crate::protocol::*;

/// How much longer than one engine call a subscriber waits for another's engine subscribe.
const ENGINE_SUBSCRIBE_GRACE: Duration = Duration::from_secs(1);

/// `SubscribeRequest.flag` bit: answer 112 instead of `recovered: false`.
const FLAG_REJECT_UNRECOVERED: i64 = 2;

/// Everything needed to start one subscription.
#[derive(Default)]
pub(super) struct SubSpec {
    pub channel: String,
    pub options: ChannelOptions,
    pub chan_info: Option<Payload>,
    pub data: Option<Payload>,
    pub server_side: bool,
    pub push_join_leave: bool,
    pub positioned: bool,
    pub recoverable: bool,
    /// The client's position when it asks to recover.
    pub recover: Option<StreamPosition>,
    pub reject_unrecovered: bool,
    pub expires_at: Option<i64>,
    /// The sub_refresh proxy prolongs it, so the client is not told it expires.
    pub server_refresh: bool,
    /// Fossil deltas negotiated (asked for and allowed by the namespace).
    pub delta: bool,
    /// Only publications whose tags pass reach the subscriber (live and recovered).
    pub filter: Option<Arc<FilterNode>>,
}

impl SubSpec {
    /// Options for a subscription, from the namespace, token overrides and the request.
    pub fn new(channel: &str, mut options: ChannelOptions, overrides: Option<&SubOverride>) -> Self {
        if let Some(o) = overrides {
            o.apply(&mut options);
        }
        Self { channel: channel.to_string(), options, ..Default::default() }
    }

    /// Applies what the client asked for (within what the namespace allows).
    pub fn with_request(mut self, req: &SubscribeRequest) -> Self {
        let o = &self.options;
        self.recoverable = o.force_recovery || (req.recoverable && o.allow_recovery);
        self.positioned = self.recoverable || o.force_positioning || (req.positioned && o.allow_positioning);
        self.push_join_leave = o.join_leave && (o.force_push_join_leave || req.join_leave);
        self.recover = req.recover.then(|| StreamPosition { offset: req.offset, epoch: req.epoch.clone() });
        self.reject_unrecovered = req.flag & FLAG_REJECT_UNRECOVERED != 0;
        self.delta = req.delta == "fossil" && o.allowed_delta_types.iter().any(|t| t == "fossil");
        self
    }

    /// Server-side subscriptions: namespace defaults, join/leave pushed only when forced.
    pub fn server_side(mut self, recover: Option<StreamPosition>) -> Self {
        let o = &self.options;
        self.server_side = true;
        self.recoverable = o.force_recovery;
        self.positioned = o.force_recovery || o.force_positioning;
        self.push_join_leave = o.join_leave && o.force_push_join_leave;
        self.recover = recover;
        self
    }
}

/// A registered, still-syncing subscription with its computed result.
pub(super) struct Prepared {
    spec: SubSpec,
    pub result: SubscribeResult,
    position: StreamPosition,
}

impl Prepared {
    pub fn channel(&self) -> &str {
        &self.spec.channel
    }
}

impl Session {
    /// Registers the subscriber (holding live publications) and computes its result.
    pub(super) async fn prepare_subscription(
        &mut self,
        handle: &Arc<ClientHandle>,
        spec: SubSpec,
    ) -> Result<Prepared, ErrorCode> {
        let subscriber = Subscriber::syncing(handle.clone(), spec.push_join_leave, spec.server_side)
            .with_delta(spec.delta)
            .with_filter(spec.filter.clone());
        let registration = match self.node.hub.add_subscriber(&spec.channel, subscriber) {
            Added::AlreadySubscribed => return Err(ErrorCode::ALREADY_SUBSCRIBED),
            Added::First(registration) => {
                let subscribed = self.node.broker_subscribe(&spec.channel).await;
                registration.engine_subscribed(subscribed.is_ok());
                if let Err(code) = subscribed {
                    self.drop_subscriber(handle, &spec.channel).await;
                    return Err(code);
                }
                registration
            }
            Added::Joined(registration) => {
                // Answered only once the node receives the channel: another subscriber's
                // engine subscribe may still be in flight, and may fail.
                let limit = self.node.config().engine_timeout.0 + ENGINE_SUBSCRIBE_GRACE;
                if !registration.wait_subscribed(limit).await {
                    self.drop_subscriber(handle, &spec.channel).await;
                    return Err(ErrorCode::INTERNAL);
                }
                registration
            }
        };
        match self.subscription_result(&spec, &registration).await {
            Ok((result, position)) => Ok(Prepared { spec, result, position }),
            Err(code) => {
                self.drop_subscriber(handle, &spec.channel).await;
                Err(code)
            }
        }
    }

    pub(super) async fn drop_subscriber(&self, handle: &ClientHandle, channel: &str) {
        if self.node.hub.remove_subscriber(channel, &handle.id) {
            self.node.broker_unsubscribe(channel).await;
        }
    }

    /// The subscribe result: stream position for positioned subscriptions, the missed
    /// publications for recovering ones (protocol notes §7.3).
    async fn subscription_result(
        &self,
        spec: &SubSpec,
        registration: &Registration,
    ) -> Result<(SubscribeResult, StreamPosition), ErrorCode> {
        let mut result = SubscribeResult {
            was_recovering: spec.recover.is_some(),
            data: spec.data.clone(),
            delta: spec.delta,
            ..Default::default()
        };
        if let Some(at) = spec.expires_at.filter(|_| !spec.server_refresh) {
            result.expires = true;
            result.ttl = times::ttl_until(at, unix_now());
        }
        if !spec.positioned {
            return Ok((result, StreamPosition::default()));
        }
        let config = self.node.config();
        let meta_ttl = HistoryOptions::of(&config, &spec.options).meta_ttl;
        let top = |limit| HistoryQuery { limit: Some(limit), since: None, reverse: true, meta_ttl };
        result.positioned = true;
        result.recoverable = spec.recoverable;
        let (recovered, position) = match (&spec.recover, spec.recoverable) {
            (Some(since), true) if spec.options.force_recovery_mode == "cache" => {
                // With a tags filter, the newest publication that passes (within the limit).
                let look_back = if spec.filter.is_some() { config.client_recovery_max_publication_limit } else { 1 };
                let (recent, top) = self.node.history(&spec.channel, top(look_back)).await?;
                let latest: Vec<Publication> = match &spec.filter {
                    Some(f) => recent.into_iter().find(|p| f.matches(&p.tags)).into_iter().collect(),
                    None => recent,
                };
                if top.offset == since.offset && top.epoch == since.epoch {
                    (Some(Vec::new()), top)
                } else if !latest.is_empty() {
                    (Some(latest), top)
                } else {
                    (None, top)
                }
            }
            (Some(since), true) => {
                // Subscribers recovering this channel together share one read (a reconnect
                // storm costs one read per channel); see node::recovery for when that is safe.
                let max = config.client_recovery_max_publication_limit;
                let query = HistoryQuery { limit: Some(max), since: Some(since.clone()), reverse: false, meta_ttl };
                let read = recovery_read(self.node.clone(), spec.channel.clone(), since.clone(), query);
                let reader = Reader { since, generation: registration.generation, live_top: &registration.live_top };
                let wait = config.engine_timeout.0 + ENGINE_SUBSCRIBE_GRACE;
                let (read, served) = self.node.shared_reads.recover(&spec.channel, reader, wait, read).await;
                self.node.metrics.recovery_reads.with_label_values(&[served.label()]).inc();
                let read = read?;
                (read.complete.then(|| Arc::unwrap_or_clone(read.publications)), read.top)
            }
            _ => (None, self.node.history(&spec.channel, top(0)).await?.1),
        };
        result.epoch = position.epoch.clone();
        let recovered = match (&spec.filter, recovered) {
            (Some(filter), Some(mut pubs)) => {
                pubs.retain(|p| filter.matches(&p.tags));
                Some(pubs)
            }
            (_, recovered) => recovered,
        };
        match recovered {
            Some(pubs) => {
                result.recovered = true;
                result.offset = spec.recover.as_ref().map_or(0, |s| s.offset);
                // A delta subscription starts from full payloads (strings for JSON clients).
                result.publications = if spec.delta {
                    pubs.iter()
                        .map(|p| {
                            crate::node::delta::for_subscriber(self.encoding, p, None)
                                .map_or_else(|| p.clone(), |f| (*f).clone())
                        })
                        .collect()
                } else {
                    pubs
                };
            }
            None if spec.recover.is_some() && spec.reject_unrecovered => return Err(ErrorCode::UNRECOVERABLE_POSITION),
            None => result.offset = position.offset,
        }
        self.node.metrics.recover.with_label_values(&[if result.recovered { "yes" } else { "no" }]).inc();
        Ok((result, position))
    }

    /// Starts live delivery after `prelude`, then records the subscription, presence and join.
    pub(super) async fn finish_subscription(
        &mut self,
        handle: &Arc<ClientHandle>,
        conn_info: &ClientInfo,
        prepared: Prepared,
        prelude: Option<Bytes>,
    ) {
        let Prepared { spec, position, .. } = prepared;
        self.node.hub.activate(&spec.channel, &handle.id, &position, spec.positioned, prelude);
        let sub = Subscription {
            server_side: spec.server_side,
            presence: spec.options.presence,
            join_leave: spec.options.join_leave,
            chan_info: spec.chan_info,
            expires_at: spec.expires_at,
            server_refresh: spec.server_refresh,
        };
        let info = ClientInfo { chan_info: sub.chan_info.clone(), ..conn_info.clone() };
        if sub.presence {
            if let Err(err) = self.node.presence_manager().add_presence(&spec.channel, info.clone()).await {
                tracing::warn!(%err, channel = spec.channel, "presence not added");
            }
        }
        if sub.join_leave {
            self.node.publish_join(&spec.channel, info).await;
        }
        self.subs.insert(spec.channel, sub);
        self.update_sub_timer();
    }

    /// Removes the subscription from the hub and presence, and publishes leave.
    pub(super) async fn leave_channel(
        &mut self,
        (handle, conn_info): (&Arc<ClientHandle>, &ClientInfo),
        channel: &str,
    ) {
        let Some(sub) = self.subs.remove(channel) else { return };
        self.drop_subscriber(handle, channel).await;
        if sub.presence {
            if let Err(err) = self.node.presence_manager().remove_presence(channel, &handle.id).await {
                tracing::warn!(%err, channel, "presence not removed");
            }
        }
        if sub.join_leave {
            let info = ClientInfo { chan_info: sub.chan_info, ..conn_info.clone() };
            self.node.publish_leave(channel, info).await;
        }
        self.update_sub_timer();
    }

    pub(super) async fn subscribe(&mut self, id: u32, req: SubscribeRequest) -> Result<(), Disconnect> {
        if req.channel.is_empty() || !["", "fossil"].contains(&req.delta.as_str()) {
            return Err(Disconnect::bad_request());
        }
        let (handle, info) = self.conn_ref()?;
        let spec = match self.authorize_subscribe(&handle, &info, &req).await? {
            // A token or backend that grants the subscription until a moment already passed.
            Ok(spec) if spec.expires_at.is_some_and(|at| self.node.rules().tokens.has_passed(at, unix_now())) => {
                Err(ErrorCode::EXPIRED)
            }
            Ok(spec) => with_tags_filter(spec, &req),
            Err(code) => Err(code),
        };
        let spec = match spec {
            Ok(spec) => spec,
            Err(code) => {
                self.reply_error(id, "subscribe", code);
                return Ok(());
            }
        };
        match self.prepare_subscription(&handle, spec).await {
            Ok(prepared) => {
                let reply = self.encoding.encode_reply(&Reply::new(id, ReplyBody::Subscribe(prepared.result.clone())));
                self.finish_subscription(&handle, &info, prepared, Some(reply)).await;
            }
            Err(code) => self.reply_error(id, "subscribe", code),
        }
        Ok(())
    }

    /// Checks a client subscribe: an error reply code, or a disconnect for a token that is
    /// not this connection's.
    async fn authorize_subscribe(
        &self,
        handle: &ClientHandle,
        info: &ClientInfo,
        req: &SubscribeRequest,
    ) -> Result<Result<SubSpec, ErrorCode>, Disconnect> {
        let rules = self.node.rules();
        let config = &rules.config;
        if req.kind != 0 {
            return Ok(Err(ErrorCode::PERMISSION_DENIED));
        }
        if self.subs.contains_key(&req.channel) {
            return Ok(Err(ErrorCode::ALREADY_SUBSCRIBED));
        }
        if self.subs.len() >= config.client_channel_limit {
            return Ok(Err(ErrorCode::LIMIT_EXCEEDED));
        }
        let options = match rules.channels.resolve(config, &req.channel) {
            Ok(r) => r.options.clone(),
            Err(code) => return Ok(Err(code)),
        };
        if !req.token.is_empty() {
            let claims = match rules.tokens.verify_subscribe(&req.token).await {
                Ok(c) => c,
                Err(TokenError::Expired) => return Ok(Err(ErrorCode::TOKEN_EXPIRED)),
                Err(TokenError::Unavailable(why)) => {
                    tracing::warn!(%why, "subscription token not verifiable now");
                    return Ok(Err(ErrorCode::INTERNAL));
                }
                Err(TokenError::Invalid(why)) => {
                    tracing::debug!(%why, "subscription token refused");
                    return Ok(Err(ErrorCode::PERMISSION_DENIED));
                }
            };
            if claims.channel != req.channel
                || claims.sub != info.user
                || claims.client.as_deref().is_some_and(|c| c != &*handle.id)
            {
                return Err(Disconnect::invalid_token());
            }
            let mut spec = SubSpec::new(&req.channel, options, claims.overrides.as_ref()).with_request(req);
            spec.expires_at = claims.expires_at();
            spec.chan_info = payload_or_b64(claims.info, claims.b64info.as_deref());
            spec.data = payload_or_b64(claims.data, claims.b64data.as_deref());
            return Ok(Ok(spec));
        }
        let user = info.user.as_str();
        let user_limited = options.allow_user_limited_channels && user_allowed(&req.channel, user);
        if options.subscribe_proxied() && !user_limited && !is_private(&req.channel) {
            return self.subscribe_decided_by_proxy(req, options).await;
        }
        let allowed = !is_private(&req.channel)
            && (config.client_insecure
                || user_limited
                || (options.allow_subscribe_for_client && (!user.is_empty() || options.allow_subscribe_for_anonymous)));
        if !allowed {
            return Ok(Err(ErrorCode::PERMISSION_DENIED));
        }
        Ok(Ok(SubSpec::new(&req.channel, options, None).with_request(req)))
    }

    /// A subscribe the backend decides: its result may set channel info, data for the
    /// client, an expiry (prolonged by the sub_refresh proxy when the namespace has it) and
    /// option overrides.
    async fn subscribe_decided_by_proxy(
        &self,
        req: &SubscribeRequest,
        options: ChannelOptions,
    ) -> Result<Result<SubSpec, ErrorCode>, Disconnect> {
        let server_refresh = options.sub_refresh_proxied();
        let result = match self.subscribe_by_proxy(req).await? {
            Ok(r) => r,
            Err(code) => return Ok(Err(code)),
        };
        let Some(mut result) = result else {
            return Ok(Ok(SubSpec::new(&req.channel, options, None).with_request(req)));
        };
        let mut spec = SubSpec::new(&req.channel, options, result.overrides.as_ref()).with_request(req);
        match (result.info(), result.data()) {
            (Ok(info), Ok(data)) => (spec.chan_info, spec.data) = (info, data),
            (Err(code), _) | (_, Err(code)) => return Ok(Err(code)),
        }
        if result.expire_at > 0 {
            spec.expires_at = Some(result.expire_at);
            spec.server_refresh = server_refresh;
        }
        Ok(Ok(spec))
    }

    pub(super) async fn unsubscribe(&mut self, id: u32, req: UnsubscribeRequest) -> Result<(), Disconnect> {
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let (handle, info) = self.conn_ref()?;
        self.leave_channel((&handle, &info), &req.channel).await;
        self.reply(id, ReplyBody::Unsubscribe(Empty {}));
        Ok(())
    }

    /// Unsubscribes with a push telling the client why (codes ≥ 2500 make SDKs resubscribe).
    pub(super) async fn server_unsubscribe(
        &mut self,
        channel: &str,
        code: u32,
        reason: &str,
    ) -> Result<(), Disconnect> {
        let Some(sub) = self.subs.get(channel) else { return Ok(()) };
        if sub.server_side && code >= 2500 {
            return Err(if code == 2501 { Disconnect::sub_expired() } else { Disconnect::insufficient_state() });
        }
        let (handle, info) = self.conn_ref()?;
        self.leave_channel((&handle, &info), channel).await;
        let push = Push {
            channel: channel.to_string(),
            body: PushBody::Unsubscribe(UnsubscribePush { code, reason: reason.to_string() }),
        };
        self.send_reply(&Reply::push(push));
        Ok(())
    }

    /// Subscribes the connection from the server side (API `subscribe`): a `subscribe` push.
    pub(super) async fn server_subscribe(&mut self, s: ServerSubscribe) -> Result<(), Disconnect> {
        let (handle, info) = self.conn_ref()?;
        if self.subs.contains_key(&s.channel) {
            return Ok(());
        }
        let rules = self.node.rules();
        let Ok(resolved) = rules.channels.resolve(&rules.config, &s.channel) else {
            tracing::debug!(channel = s.channel, "server subscribe to an unknown channel ignored");
            return Ok(());
        };
        let mut spec =
            SubSpec::new(&s.channel, resolved.options.clone(), Some(&s.overrides)).server_side(s.recover_since);
        spec.chan_info = s.info;
        spec.data = s.data;
        spec.expires_at = s.expire_at.filter(|at| *at > 0);
        if let Ok(prepared) = self.prepare_subscription(&handle, spec).await {
            let push = Push { channel: s.channel.clone(), body: PushBody::Subscribe(prepared.result.clone()) };
            let prelude = self.encoding.encode_reply(&Reply::push(push));
            self.finish_subscription(&handle, &info, prepared, Some(prelude)).await;
        }
        Ok(())
    }

    pub(super) async fn sub_refresh(&mut self, id: u32, req: SubRefreshRequest) -> Result<(), Disconnect> {
        if req.channel.is_empty() {
            return Err(Disconnect::bad_request());
        }
        let (handle, info) = self.conn_ref()?;
        if !self.subs.contains_key(&req.channel) {
            self.reply_error(id, "sub_refresh", ErrorCode::PERMISSION_DENIED);
            return Ok(());
        }
        let claims = match self.node.rules().tokens.verify_subscribe(&req.token).await {
            Ok(c) => c,
            Err(TokenError::Expired) => {
                self.reply_error(id, "sub_refresh", ErrorCode::TOKEN_EXPIRED);
                return Ok(());
            }
            Err(TokenError::Unavailable(why)) => {
                tracing::warn!(%why, "subscription token not verifiable now");
                self.reply_error(id, "sub_refresh", ErrorCode::INTERNAL);
                return Ok(());
            }
            Err(TokenError::Invalid(_)) => return Err(Disconnect::invalid_token()),
        };
        if claims.channel != req.channel
            || claims.sub != info.user
            || claims.client.as_deref().is_some_and(|c| c != &*handle.id)
        {
            return Err(Disconnect::invalid_token());
        }
        let expires_at = claims.expires_at();
        let now = unix_now();
        if expires_at.is_some_and(|at| self.node.rules().tokens.has_passed(at, now)) {
            self.reply_error(id, "sub_refresh", ErrorCode::EXPIRED);
            return Ok(());
        }
        if let Some(sub) = self.subs.get_mut(&req.channel) {
            sub.expires_at = expires_at;
        }
        self.update_sub_timer();
        let result = match expires_at {
            Some(at) => RefreshResult { expires: true, ttl: times::ttl_until(at, now) },
            None => RefreshResult::default(),
        };
        self.reply(id, ReplyBody::SubRefresh(result));
        Ok(())
    }

    /// Recomputes when the earliest subscription expiry check is due.
    pub(super) fn update_sub_timer(&mut self) {
        let grace = sub_grace(&self.node.config());
        let now = unix_now();
        self.timers.sub_expire =
            self.subs.values().filter_map(|s| s.due(grace)).min().map(|at| times::deadline_at(at, now, Duration::ZERO));
    }

    /// Subscriptions that are due: the sub_refresh proxy prolongs those it refreshes; the
    /// others' tokens expired without a refresh (2501, or 3006 for server-side ones).
    pub(super) async fn expire_subscriptions(&mut self) -> Result<(), Disconnect> {
        let grace = sub_grace(&self.node.config());
        let now = unix_now();
        let due: Vec<(String, bool)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.due(grace).is_some_and(|at| at <= now))
            .map(|(c, s)| (c.clone(), s.server_refresh))
            .collect();
        for (channel, server_refresh) in due {
            if server_refresh {
                self.refresh_subscription_by_proxy(&channel).await?;
            } else {
                self.server_unsubscribe(&channel, 2501, "subscription expired").await?;
            }
        }
        self.update_sub_timer();
        Ok(())
    }

    /// Writes presence again with the connection's current info (after a refresh changed it),
    /// for one channel or (`None`) every subscription that keeps presence.
    pub(super) async fn refresh_presence(&self, only: Option<&str>) {
        let Ok(conn) = self.connected() else { return };
        let pm = self.node.presence_manager();
        for (channel, sub) in self.subs.iter().filter(|(c, s)| s.presence && only.is_none_or(|o| o == c.as_str())) {
            let info = ClientInfo { chan_info: sub.chan_info.clone(), ..conn.info.clone() };
            if let Err(err) = pm.add_presence(channel, info).await {
                tracing::warn!(%err, channel, "presence not updated");
            }
        }
    }

    /// Whether the connection is connected (for control messages arriving late).
    pub(super) fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected(_))
    }
}

/// Adds the request's tags filter: the namespace must allow filters, the filter must be
/// valid, and it cannot go with deltas (a delta needs every previous payload); 107 otherwise.
fn with_tags_filter(mut spec: SubSpec, req: &SubscribeRequest) -> Result<SubSpec, ErrorCode> {
    let Some(filter) = &req.tf else { return Ok(spec) };
    if !spec.options.allow_tags_filter || !req.delta.is_empty() {
        return Err(ErrorCode::BAD_REQUEST);
    }
    if let Err(why) = filter.validate() {
        tracing::debug!(%why, channel = req.channel, "tags filter refused");
        return Err(ErrorCode::BAD_REQUEST);
    }
    spec.filter = Some(Arc::new(filter.clone()));
    Ok(spec)
}

impl Subscription {
    /// Unix seconds when the subscription needs attention: at expiry when the proxy
    /// refreshes it, after the close delay when the client must.
    fn due(&self, grace: i64) -> Option<i64> {
        self.expires_at.map(|at| if self.server_refresh { at } else { at.saturating_add(grace) })
    }
}

/// `info`/`data` as raw JSON, or decoded from their base64 sibling.
pub fn payload_or_b64(json: Option<Payload>, b64: Option<&str>) -> Option<Payload> {
    json.or_else(|| Payload::from_base64(b64?).ok())
}

/// `client_expired_sub_close_delay` in seconds.
fn sub_grace(config: &crate::config::Config) -> i64 {
    i64::try_from(config.client_expired_sub_close_delay.0.as_secs()).unwrap_or(i64::MAX)
}

/// One recovery read after `since`: the publications and whether they run without a gap to the
/// stream's top; a position the engine cannot recover from yields only the top.
async fn recovery_read(
    node: Arc<Node>,
    channel: String,
    since: StreamPosition,
    query: HistoryQuery,
) -> Result<ReadResult, ErrorCode> {
    let meta_ttl = query.meta_ttl;
    match node.history(&channel, query).await {
        Ok((publications, top)) => {
            let complete = match (publications.first(), publications.last()) {
                (Some(first), Some(last)) => first.prev_offset == since.offset && last.offset == top.offset,
                _ => top.offset == since.offset,
            };
            if !complete {
                tracing::debug!(
                    channel,
                    since = since.offset,
                    top = top.offset,
                    read = publications.len(),
                    first_prev = publications.first().map(|p| p.prev_offset),
                    first = publications.first().map(|p| p.offset),
                    last = publications.last().map(|p| p.offset),
                    "recovery incomplete: history does not link the position to the top"
                );
            }
            Ok(ReadResult { since, publications: Arc::new(publications), top, complete })
        }
        Err(code) if code == ErrorCode::UNRECOVERABLE_POSITION => {
            let query = HistoryQuery { limit: Some(0), since: None, reverse: true, meta_ttl };
            let (_, top) = node.history(&channel, query).await?;
            Ok(ReadResult { since, publications: Arc::default(), top, complete: false })
        }
        Err(code) => Err(code),
    }
}
