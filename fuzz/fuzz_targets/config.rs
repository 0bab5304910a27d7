//! Config files, flat or nested (Centrifugo v5/v6 layouts): the first byte picks JSON, YAML
//! or TOML. Loading answers a config or a list of issues naming keys, never a panic.
#![no_main]

use gyre_edge::config::{load_str, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let format = match mode % 3 {
        0 => Format::Json,
        1 => Format::Yaml,
        _ => Format::Toml,
    };
    if let Err(e) = load_str(text, format, "fuzz.conf") {
        assert!(!e.issues.is_empty(), "a refused config names at least one issue");
    }
});
