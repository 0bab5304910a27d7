//! Fossil deltas as a delta subscriber receives them, against any base: the checked applier
//! returns an error for malformed input, never panics, never exceeds its limit.
#![no_main]

use gyre_edge::node::delta::apply;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = usize::from(split).min(rest.len());
    let (base, delta) = rest.split_at(at);
    if let Ok(out) = apply(base, delta, LIMIT) {
        assert!(out.len() <= LIMIT);
    }
});
