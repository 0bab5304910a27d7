//! Centrifugo client protocol: message types, codes and the JSON and Protobuf codecs.
//!
//! Pure data and encoding, no I/O, so every transport (WebSocket now; HTTP-streaming and SSE
//! later) shares one definition of the wire.

pub mod channel;
pub mod codec;
pub mod codes;
pub mod filter;
pub mod json;
pub mod payload;
pub mod proto;
pub mod protobuf;
pub mod types;

pub use codec::Encoding;
pub use codes::{Disconnect, ErrorCode};
pub use filter::FilterNode;
pub use payload::Payload;
pub use types::*;
