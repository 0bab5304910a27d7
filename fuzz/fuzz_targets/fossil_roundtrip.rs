//! Deltas Gyre computes between two payloads always rebuild the second one exactly with the
//! checked applier (and agree with the fossil crate's own applier).
#![no_main]

use gyre_edge::node::delta::apply;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else { return };
    let at = (usize::from(split) * rest.len() / 255).min(rest.len());
    let (prev, next) = rest.split_at(at);
    let delta = fossil_delta::delta(next, prev);
    let rebuilt = apply(prev, &delta, next.len()).expect("Gyre's own delta applies");
    assert_eq!(rebuilt, next);
});
