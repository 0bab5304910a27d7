//! Protobuf codec: varint-length-delimited commands in, length-delimited replies out (several
//! per WebSocket binary frame).
//!
//! Application data travels as bytes in this protocol: bytes that hold JSON become a JSON
//! payload (JSON subscribers of the channel read it as a value), anything else stays binary.

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message;

use super::proto;
use super::*;

/// Why a frame could not be decoded (the connection is closed with 3501).
#[derive(Debug, thiserror::Error)]
#[error("malformed protobuf: {0}")]
pub struct DecodeError(#[from] prost::DecodeError);

/// Splits a frame into its length-delimited commands.
pub fn decode_commands(mut frame: &[u8]) -> Result<Vec<Command>, DecodeError> {
    let mut commands = Vec::new();
    while !frame.is_empty() {
        let command = proto::Command::decode_length_delimited(&mut frame)?;
        commands.push(command_from(command)?);
    }
    Ok(commands)
}

/// Encodes one reply or push with its length prefix, so a batch is a plain concatenation.
pub fn encode_reply(reply: &Reply) -> Bytes {
    Bytes::from(reply_to(reply).encode_length_delimited_to_vec())
}

/// The server ping: an empty reply (length 0).
pub const PING: &[u8] = &[0];

/// A reply as a unidirectional gRPC client receives it: one `Push` (the connect result in
/// `connect`), unprefixed. A unidirectional session sends no other replies.
pub fn encode_uni(reply: &Reply) -> Bytes {
    let push = match &reply.body {
        ReplyBody::Push(p) => push_to(p),
        ReplyBody::Connect(r) => proto::Push { connect: Some(connect_push_to(r)), ..Default::default() },
        _ => proto::Push::default(),
    };
    Bytes::from(push.encode_to_vec())
}

fn payload(bytes: Vec<u8>) -> Result<Option<Payload>, DecodeError> {
    Ok((!bytes.is_empty()).then(|| Payload::from_bytes(Bytes::from(bytes))))
}

fn command_from(c: proto::Command) -> Result<Command, DecodeError> {
    Ok(Command {
        id: c.id,
        connect: c.connect.map(connect_from).transpose()?,
        subscribe: c.subscribe.map(subscribe_from).transpose()?,
        unsubscribe: c.unsubscribe.map(|r| UnsubscribeRequest { channel: r.channel }),
        publish: c
            .publish
            .map(|r| {
                Ok::<_, DecodeError>(PublishRequest { channel: r.channel, data: payload(r.data)?, kind: r.r#type })
            })
            .transpose()?,
        presence: c.presence.map(|r| ChannelRequest { channel: r.channel }),
        presence_stats: c.presence_stats.map(|r| ChannelRequest { channel: r.channel }),
        history: c.history.map(|r| HistoryRequest {
            channel: r.channel,
            limit: r.limit,
            since: r.since.map(|s| StreamPosition { offset: s.offset, epoch: s.epoch }),
            reverse: r.reverse,
        }),
        ping: c.ping.map(|_| serde_json::Value::Null),
        send: c.send.map(|r| Ok::<_, DecodeError>(SendRequest { data: payload(r.data)? })).transpose()?,
        rpc: c
            .rpc
            .map(|r| Ok::<_, DecodeError>(RpcRequest { data: payload(r.data)?, method: r.method }))
            .transpose()?,
        refresh: c.refresh.map(|r| RefreshRequest { token: r.token }),
        sub_refresh: c.sub_refresh.map(|r| SubRefreshRequest { channel: r.channel, token: r.token }),
    })
}

fn connect_from(r: proto::ConnectRequest) -> Result<ConnectRequest, DecodeError> {
    let subs = r.subs.into_iter().map(|(k, v)| Ok((k, subscribe_from(v)?))).collect::<Result<_, DecodeError>>()?;
    Ok(ConnectRequest {
        token: r.token,
        data: payload(r.data)?,
        subs,
        name: r.name,
        version: r.version,
        headers: r.headers,
    })
}

fn subscribe_from(r: proto::SubscribeRequest) -> Result<SubscribeRequest, DecodeError> {
    Ok(SubscribeRequest {
        channel: r.channel,
        token: r.token,
        recover: r.recover,
        epoch: r.epoch,
        offset: r.offset,
        data: payload(r.data)?,
        positioned: r.positioned,
        recoverable: r.recoverable,
        join_leave: r.join_leave,
        delta: r.delta,
        flag: r.flag,
        kind: r.r#type,
        tf: r.tf.map(FilterNode::from),
    })
}

fn bytes_of(p: &Payload) -> Vec<u8> {
    p.as_bytes().to_vec()
}

fn opt_bytes(p: &Option<Payload>) -> Vec<u8> {
    p.as_ref().map(bytes_of).unwrap_or_default()
}

fn info_to(i: &ClientInfo) -> proto::ClientInfo {
    proto::ClientInfo {
        user: i.user.clone(),
        client: i.client.clone(),
        conn_info: opt_bytes(&i.conn_info),
        chan_info: opt_bytes(&i.chan_info),
    }
}

fn publication_to(p: &Publication) -> proto::Publication {
    proto::Publication {
        data: bytes_of(&p.data),
        info: p.info.as_ref().map(info_to),
        offset: p.offset,
        tags: p.tags.clone(),
        delta: p.delta,
        ..Default::default()
    }
}

fn subscribe_result_to(r: &SubscribeResult) -> proto::SubscribeResult {
    proto::SubscribeResult {
        expires: r.expires,
        ttl: r.ttl,
        recoverable: r.recoverable,
        epoch: r.epoch.clone(),
        publications: r.publications.iter().map(publication_to).collect(),
        recovered: r.recovered,
        offset: r.offset,
        positioned: r.positioned,
        data: opt_bytes(&r.data),
        was_recovering: r.was_recovering,
        delta: r.delta,
    }
}

fn push_to(p: &Push) -> proto::Push {
    let mut out = proto::Push { channel: p.channel.clone(), ..Default::default() };
    match &p.body {
        PushBody::Publication(publication) => out.r#pub = Some(publication_to(publication)),
        PushBody::Join(j) => out.join = Some(proto::Join { info: Some(info_to(&j.info)) }),
        PushBody::Leave(l) => out.leave = Some(proto::Leave { info: Some(info_to(&l.info)) }),
        PushBody::Unsubscribe(u) => {
            out.unsubscribe = Some(proto::Unsubscribe { code: u.code, reason: u.reason.clone() })
        }
        PushBody::Message(m) => out.message = Some(proto::Message { data: bytes_of(&m.data) }),
        PushBody::Subscribe(s) => {
            out.subscribe = Some(proto::Subscribe {
                recoverable: s.recoverable,
                epoch: s.epoch.clone(),
                offset: s.offset,
                positioned: s.positioned,
                data: opt_bytes(&s.data),
            })
        }
        PushBody::Disconnect(d) => {
            out.disconnect = Some(proto::Disconnect { code: d.code, reason: d.reason.clone(), reconnect: false })
        }
    }
    out
}

fn connect_result_to(r: &ConnectResult) -> proto::ConnectResult {
    proto::ConnectResult {
        client: r.client.clone(),
        version: r.version.clone(),
        expires: r.expires,
        ttl: r.ttl,
        data: opt_bytes(&r.data),
        subs: r.subs.iter().map(|(k, v)| (k.clone(), subscribe_result_to(v))).collect(),
        ping: r.ping,
        pong: r.pong,
        session: r.session.clone(),
        node: r.node.clone(),
        time: 0,
    }
}

/// The connect result as unidirectional transports push it: `Connect` numbers its fields
/// differently from `ConnectResult`.
fn connect_push_to(r: &ConnectResult) -> proto::Connect {
    proto::Connect {
        client: r.client.clone(),
        version: r.version.clone(),
        data: opt_bytes(&r.data),
        subs: r.subs.iter().map(|(k, v)| (k.clone(), subscribe_result_to(v))).collect(),
        expires: r.expires,
        ttl: r.ttl,
        ping: r.ping,
        pong: r.pong,
        session: r.session.clone(),
        node: r.node.clone(),
        time: 0,
    }
}

/// A tag filter as the protocol layer holds it (prost already bounds the nesting on decode).
impl From<proto::FilterNode> for FilterNode {
    fn from(n: proto::FilterNode) -> Self {
        FilterNode {
            op: n.op,
            key: n.key,
            cmp: n.cmp,
            val: n.val,
            vals: n.vals,
            nodes: n.nodes.into_iter().map(FilterNode::from).collect(),
        }
    }
}

fn reply_to(reply: &Reply) -> proto::Reply {
    let mut out = proto::Reply { id: reply.id, ..Default::default() };
    match &reply.body {
        ReplyBody::Error(e) => {
            out.error = Some(proto::Error { code: e.code, message: e.message.to_string(), temporary: e.temporary })
        }
        ReplyBody::Push(p) => out.push = Some(push_to(p)),
        ReplyBody::Connect(r) => out.connect = Some(connect_result_to(r)),
        ReplyBody::Subscribe(r) => out.subscribe = Some(subscribe_result_to(r)),
        ReplyBody::Unsubscribe(_) => out.unsubscribe = Some(proto::UnsubscribeResult {}),
        ReplyBody::Publish(_) => out.publish = Some(proto::PublishResult {}),
        ReplyBody::Presence(r) => {
            let presence: HashMap<_, _> = r.presence.iter().map(|(k, v)| (k.clone(), info_to(v))).collect();
            out.presence = Some(proto::PresenceResult { presence })
        }
        ReplyBody::PresenceStats(r) => {
            out.presence_stats = Some(proto::PresenceStatsResult { num_clients: r.num_clients, num_users: r.num_users })
        }
        ReplyBody::History(r) => {
            out.history = Some(proto::HistoryResult {
                publications: r.publications.iter().map(publication_to).collect(),
                epoch: r.epoch.clone(),
                offset: r.offset,
            })
        }
        ReplyBody::Rpc(r) => out.rpc = Some(proto::RpcResult { data: opt_bytes(&r.data) }),
        ReplyBody::Refresh(r) => {
            out.refresh = Some(proto::RefreshResult { expires: r.expires, ttl: r.ttl, ..Default::default() })
        }
        ReplyBody::SubRefresh(r) => out.sub_refresh = Some(proto::SubRefreshResult { expires: r.expires, ttl: r.ttl }),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(commands: &[proto::Command]) -> Vec<u8> {
        commands.iter().flat_map(|c| c.encode_length_delimited_to_vec()).collect()
    }

    #[test]
    fn decodes_several_commands_and_an_empty_pong() {
        let connect = proto::Command {
            id: 1,
            connect: Some(proto::ConnectRequest {
                token: "t".into(),
                data: b"{\"a\":1}".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let publish = proto::Command {
            id: 2,
            publish: Some(proto::PublishRequest { channel: "c".into(), data: b"[1,2]".to_vec(), r#type: 0 }),
            ..Default::default()
        };
        let pong = proto::Command::default();
        let mut cmds = decode_commands(&frame(&[connect, publish, pong])).unwrap();
        assert_eq!(cmds.len(), 3);
        assert!(matches!(cmds.remove(2).into_request(), (0, Request::Pong)));
        match cmds.remove(1).into_request() {
            (2, Request::Publish(p)) => assert_eq!(p.data.unwrap().as_json(), Some("[1,2]")),
            other => panic!("unexpected {other:?}"),
        }
        match cmds.remove(0).into_request() {
            (1, Request::Connect(c)) => {
                assert_eq!(c.token, "t");
                assert_eq!(c.data.unwrap().as_json(), Some("{\"a\":1}"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_truncated_frames_and_keeps_binary_data() {
        let publish = proto::Command {
            id: 2,
            publish: Some(proto::PublishRequest { channel: "c".into(), data: vec![0xff, 0x00], r#type: 0 }),
            ..Default::default()
        };
        let bytes = frame(&[publish]);
        match decode_commands(&bytes).unwrap().remove(0).into_request() {
            (2, Request::Publish(p)) => assert_eq!(p.data.unwrap().as_bytes(), &[0xff, 0x00]),
            other => panic!("unexpected {other:?}"),
        }
        assert!(decode_commands(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn encodes_replies_length_delimited() {
        let push = Reply::push(Push {
            channel: "c".into(),
            body: PushBody::Publication(std::sync::Arc::new(Publication {
                data: Payload::from_json("{\"t\":1}").unwrap(),
                info: None,
                offset: 5,
                tags: Default::default(),
                delta: false,
                prev_offset: 4,
                use_delta: false,
            })),
        });
        let bytes = encode_reply(&push);
        let decoded = proto::Reply::decode_length_delimited(&bytes[..]).unwrap();
        let publication = decoded.push.unwrap().r#pub.unwrap();
        assert_eq!(publication.data, b"{\"t\":1}");
        assert_eq!(publication.offset, 5);
        let err =
            proto::Reply::decode_length_delimited(&encode_reply(&Reply::error(8, ErrorCode::BAD_REQUEST))[..]).unwrap();
        assert_eq!((err.id, err.error.unwrap().code), (8, 107));
        let ping = proto::Reply::decode_length_delimited(PING).unwrap();
        assert_eq!(ping, proto::Reply::default());
    }
}
