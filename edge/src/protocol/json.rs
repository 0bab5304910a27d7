//! JSON codec: newline-delimited commands in, newline-joined replies out.

use bytes::Bytes;

use super::{Command, Reply};

/// The server ping: an empty reply.
pub const PING: &[u8] = b"{}";

/// Splits a frame into its commands; empty lines (and one trailing newline) are skipped.
///
/// An error means the frame held something that is not a command object: the caller closes
/// the connection with 3501.
pub fn decode_commands(frame: &str) -> Result<Vec<Command>, serde_json::Error> {
    frame
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .filter(|line| !line.trim().is_empty())
        .map(serde_json::from_str::<Command>)
        .collect()
}

/// Encodes one reply or push.
pub fn encode_reply(reply: &Reply) -> Bytes {
    encode_value(reply)
}

/// Encodes any of the protocol's serializable messages.
pub fn encode_value<T: serde::Serialize>(value: &T) -> Bytes {
    // Our message types serialize infallibly (string keys, no maps with non-string keys).
    match serde_json::to_vec(value) {
        Ok(v) => Bytes::from(v),
        Err(err) => {
            tracing::error!(%err, "reply encoding failed");
            Bytes::from_static(b"{}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::*;

    #[test]
    fn decodes_several_commands_per_frame() {
        let cmds = decode_commands(
            "{\"id\":1,\"connect\":{\"token\":\"t\",\"name\":\"js\"}}\n{\"id\":2,\"subscribe\":{\"channel\":\"a\",\"flag\":1}}\n",
        )
        .unwrap();
        assert_eq!(cmds.len(), 2);
        let (_, r) = cmds.into_iter().nth(1).unwrap().into_request();
        assert!(matches!(r, Request::Subscribe(s) if s.channel == "a"));
    }

    #[test]
    fn empty_command_is_pong_and_id_less_request_is_invalid() {
        let mut c = decode_commands("{}").unwrap();
        assert!(matches!(c.remove(0).into_request(), (0, Request::Pong)));
        let mut c = decode_commands("{\"id\":5}").unwrap();
        assert!(matches!(c.remove(0).into_request(), (5, Request::Invalid)));
    }

    #[test]
    fn reply_shapes_match_centrifugo() {
        let r = Reply::new(3, ReplyBody::Publish(Empty {}));
        assert_eq!(encode_reply(&r), Bytes::from_static(b"{\"id\":3,\"publish\":{}}"));
        let r = Reply::error(8, ErrorCode::PERMISSION_DENIED);
        assert_eq!(
            encode_reply(&r),
            Bytes::from_static(b"{\"id\":8,\"error\":{\"code\":103,\"message\":\"permission denied\"}}")
        );
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
        assert_eq!(
            encode_reply(&push),
            Bytes::from_static(b"{\"push\":{\"channel\":\"c\",\"pub\":{\"data\":{\"t\":1},\"offset\":5}}}")
        );
    }
}
