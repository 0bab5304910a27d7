//! `/emulation` POST bodies: the first byte picks Protobuf (odd) or JSON (even), the rest is
//! the body; whatever decodes has its frame decoded as commands, as the session would.
#![no_main]

use gyre_edge::protocol::codec::Encoding;
use gyre_edge::transport::emulation::decode_emulation;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let protobuf = mode & 1 == 1;
    if let Ok(req) = decode_emulation(body, protobuf) {
        let encoding = if protobuf { Encoding::Protobuf } else { Encoding::Json };
        let _ = encoding.decode_commands(&req.frame);
    }
});
