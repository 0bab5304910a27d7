//! The two encodings of the client protocol behind one switch, chosen per connection.

use bytes::{BufMut, Bytes, BytesMut};

use super::{json, protobuf, Command, Reply, ReplyBody};

/// How a connection's frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Newline-delimited JSON in text frames.
    Json,
    /// Varint-length-delimited Protobuf messages in binary frames.
    Protobuf,
    /// Unidirectional transports: JSON pushes sent unwrapped (`{"channel":…,"pub":…}`, the
    /// connect result as `{"connect":…}`); the client sends nothing after connecting.
    JsonUni,
    /// Unidirectional gRPC: each message one Protobuf `Push` (the connect result in its
    /// `connect` field), not length-prefixed: the gRPC stream frames them.
    ProtobufUni,
}

impl Encoding {
    /// Number of encodings (size of per-encoding caches).
    pub const COUNT: usize = 4;

    /// Position in per-encoding caches.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Protobuf => "protobuf",
            Self::JsonUni => "json-uni",
            Self::ProtobufUni => "protobuf-uni",
        }
    }

    /// Unidirectional: the client sends nothing after connecting (so no pongs either).
    pub fn is_uni(self) -> bool {
        matches!(self, Self::JsonUni | Self::ProtobufUni)
    }

    /// Text (JSON) rather than binary frames.
    pub fn is_text(self) -> bool {
        matches!(self, Self::Json | Self::JsonUni)
    }

    /// Splits one frame into its commands; an error closes the connection with 3501.
    pub fn decode_commands(self, frame: &[u8]) -> Result<Vec<Command>, String> {
        match self {
            // A unidirectional transport passes only the connect command it built.
            Self::Json | Self::JsonUni => {
                let text = std::str::from_utf8(frame).map_err(|e| e.to_string())?;
                json::decode_commands(text).map_err(|e| e.to_string())
            }
            Self::Protobuf | Self::ProtobufUni => protobuf::decode_commands(frame).map_err(|e| e.to_string()),
        }
    }

    /// Encodes one reply or push as one message of a frame.
    pub fn encode_reply(self, reply: &Reply) -> Bytes {
        match self {
            Self::Json => json::encode_reply(reply),
            Self::Protobuf => protobuf::encode_reply(reply),
            Self::JsonUni => match &reply.body {
                ReplyBody::Push(push) => json::encode_value(push),
                ReplyBody::Connect(result) => json::encode_value(&UniConnect { connect: result }),
                _ => json::encode_reply(reply),
            },
            Self::ProtobufUni => protobuf::encode_uni(reply),
        }
    }

    /// The server ping message.
    pub fn ping(self) -> Bytes {
        Bytes::from_static(match self {
            Self::Json | Self::JsonUni => json::PING,
            Self::Protobuf => protobuf::PING,
            // An empty `Push`.
            Self::ProtobufUni => b"",
        })
    }

    /// Joins queued messages into one frame: JSON with `\n` between them, Protobuf messages
    /// back to back (each carries its length).
    pub fn join(self, mut messages: Vec<Bytes>) -> Bytes {
        if messages.len() == 1 {
            return messages.pop().unwrap_or_default();
        }
        let separator = usize::from(self.is_text());
        let size = messages.iter().map(|m| m.len() + separator).sum::<usize>();
        let mut buf = BytesMut::with_capacity(size);
        for (i, m) in messages.iter().enumerate() {
            if i > 0 && separator == 1 {
                buf.put_u8(b'\n');
            }
            buf.put_slice(m);
        }
        buf.freeze()
    }
}

/// The connect result as a unidirectional client receives it.
#[derive(serde::Serialize)]
struct UniConnect<'a> {
    connect: &'a super::ConnectResult,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_per_encoding() {
        let m = || vec![Bytes::from_static(b"ab"), Bytes::from_static(b"cd")];
        assert_eq!(Encoding::Json.join(m()), Bytes::from_static(b"ab\ncd"));
        assert_eq!(Encoding::Protobuf.join(m()), Bytes::from_static(b"abcd"));
        assert_eq!(Encoding::Json.join(vec![Bytes::from_static(b"x")]), Bytes::from_static(b"x"));
    }
}
