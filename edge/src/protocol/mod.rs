//! Centrifugo client protocol: message types, codes and the JSON codec.
//!
//! Pure data and encoding, no I/O, so every transport (WebSocket now; HTTP-streaming, SSE and
//! Protobuf later) shares one definition of the wire.

pub mod codes;
pub mod json;
pub mod payload;
pub mod types;

pub use codes::{Disconnect, ErrorCode};
pub use payload::Payload;
pub use types::*;
