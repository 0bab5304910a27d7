//! Subscription tag filters (`tf`), from JSON (first byte even) or Protobuf (odd): a filter
//! that validates is evaluated against sample tags; nothing panics or recurses unbounded.
#![no_main]

use gyre_edge::protocol::{filter::FilterNode, proto};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else { return };
    let filter = if mode & 1 == 1 {
        proto::FilterNode::decode(body).ok().map(FilterNode::from)
    } else {
        serde_json::from_slice::<FilterNode>(body).ok()
    };
    if let Some(f) = filter {
        if f.validate().is_ok() {
            let _ = f.matches(&gyre_fuzz::sample_tags());
        }
    }
});
