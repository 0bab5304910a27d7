//! Connection and subscription tokens: any string is verified or refused, never a panic, and
//! a refusal is one of the three token errors.
#![no_main]

use std::sync::OnceLock;

use gyre_edge::auth::TokenVerifier;
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static (tokio::runtime::Runtime, TokenVerifier) {
    static V: OnceLock<(tokio::runtime::Runtime, TokenVerifier)> = OnceLock::new();
    V.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        (rt, TokenVerifier::new(&gyre_fuzz::jwt_config()))
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else { return };
    let (rt, v) = verifier();
    rt.block_on(async {
        let _ = v.verify_connect(token).await;
        let _ = v.verify_subscribe(token).await;
    });
});
