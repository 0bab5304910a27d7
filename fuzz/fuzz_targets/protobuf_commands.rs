//! Varint-delimited Protobuf command frames (WebSocket binary frames, emulation data).
#![no_main]

use gyre_edge::protocol::codec::Encoding;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|frame: &[u8]| {
    let _ = Encoding::Protobuf.decode_commands(frame);
});
