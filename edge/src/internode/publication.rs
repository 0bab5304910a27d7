//! The stored form of a publication: the body of a publication message in an engine (live
//! and in history). Offsets and the chain to the previous publication live in the engine's
//! own sequence and headers, not here.

use serde::{Deserialize, Serialize};

use crate::protocol::{ClientInfo, Payload, Publication};

/// The stored form of a publication (offset and chain live in the stream and headers): JSON
/// data as a value, binary data as base64 in `b64data`.
#[derive(Deserialize, Serialize)]
struct StoredPublication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<Payload>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    b64data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    info: Option<ClientInfo>,
    #[serde(default, skip_serializing_if = "std::collections::HashMap::is_empty")]
    tags: std::collections::HashMap<String, String>,
    /// The publisher allows delta delivery.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    delta: bool,
}

/// Reads a stored publication back (its offset is filled in by the engine).
pub fn decode_publication(bytes: &[u8]) -> Result<Publication, serde_json::Error> {
    let p: StoredPublication = serde_json::from_slice(bytes)?;
    let data = match (p.data, p.b64data) {
        (Some(d), _) => d,
        (None, Some(b64)) => Payload::from_base64(&b64).map_err(serde::de::Error::custom)?,
        (None, None) => return Err(serde::de::Error::missing_field("data")),
    };
    Ok(Publication { data, info: p.info, offset: 0, tags: p.tags, delta: false, prev_offset: 0, use_delta: p.delta })
}

/// The stored form of `p`: JSON data as the text it arrived as, binary data as base64.
pub fn encode_publication(p: &Publication) -> Result<bytes::Bytes, serde_json::Error> {
    let (data, b64data) =
        if p.data.is_binary() { (None, Some(p.data.to_base64())) } else { (Some(p.data.clone()), None) };
    let stored = StoredPublication { data, b64data, info: p.info.clone(), tags: p.tags.clone(), delta: p.use_delta };
    serde_json::to_vec(&stored).map(bytes::Bytes::from)
}
