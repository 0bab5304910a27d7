//! Application payloads (`data`, `info`, …): JSON values carried as raw text and never
//! re-parsed on the way out, or opaque bytes from Protobuf clients and `b64data`.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A payload shared by every subscriber of a publication without copying.
///
/// JSON payloads have raw newlines removed on the way in (they can only be insignificant
/// whitespace in valid JSON), so a payload never breaks the newline-delimited framing of the
/// JSON protocol. Binary payloads reach Protobuf clients as they are; JSON clients, whose
/// protocol cannot carry them, get them as a base64 string.
#[derive(Clone)]
pub struct Payload(Repr);

#[derive(Clone)]
enum Repr {
    Json(Arc<RawValue>),
    Binary(Bytes),
}

impl Payload {
    /// Parses `text` as one JSON value.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let raw: Box<RawValue> = serde_json::from_str(text)?;
        Ok(Self::from_raw(raw))
    }

    /// Bytes from a client or `b64data`: a JSON value when they hold one (so JSON clients can
    /// read it), opaque bytes otherwise.
    pub fn from_bytes(bytes: Bytes) -> Self {
        match std::str::from_utf8(&bytes).ok().and_then(|text| Self::from_json(text).ok()) {
            Some(json) => json,
            None => Self(Repr::Binary(bytes)),
        }
    }

    /// Opaque bytes, never read as JSON (fossil deltas for Protobuf clients).
    pub fn binary(bytes: Bytes) -> Self {
        Self(Repr::Binary(bytes))
    }

    /// A JSON string holding `text` (what JSON clients of a delta subscription receive).
    pub fn json_string(text: &str) -> Self {
        let quoted = serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_string());
        match RawValue::from_string(quoted) {
            Ok(raw) => Self(Repr::Json(Arc::from(raw))),
            Err(_) => Self::null(),
        }
    }

    /// Decodes standard base64 (`b64data`, `b64info`) into a payload.
    pub fn from_base64(text: &str) -> Result<Self, base64::DecodeError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
        Ok(Self::from_bytes(Bytes::from(bytes)))
    }

    /// JSON `null`.
    pub fn null() -> Self {
        Self::from_raw(RawValue::NULL.to_owned())
    }

    fn from_raw(raw: Box<RawValue>) -> Self {
        if raw.get().contains(['\n', '\r']) {
            let compact: String = raw.get().chars().filter(|c| *c != '\n' && *c != '\r').collect();
            if let Ok(raw) = RawValue::from_string(compact) {
                return Self(Repr::Json(Arc::from(raw)));
            }
        }
        Self(Repr::Json(Arc::from(raw)))
    }

    /// The bytes as a Protobuf client receives them: the JSON text, or the binary data.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Json(raw) => raw.get().as_bytes(),
            Repr::Binary(b) => b,
        }
    }

    /// The JSON text; `None` for binary data.
    pub fn as_json(&self) -> Option<&str> {
        match &self.0 {
            Repr::Json(raw) => Some(raw.get()),
            Repr::Binary(_) => None,
        }
    }

    /// True for data that is not JSON.
    pub fn is_binary(&self) -> bool {
        matches!(self.0, Repr::Binary(_))
    }

    /// The data as standard base64 (stored form of binary data).
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.as_bytes())
    }

    /// Size in bytes.
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// True for empty data (never produced by parsing JSON).
    pub fn is_empty(&self) -> bool {
        self.as_bytes().is_empty()
    }

    /// True for JSON `null`, which Centrifugo treats like absent data.
    pub fn is_null(&self) -> bool {
        self.as_json() == Some("null")
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Repr::Json(raw) => f.write_str(raw.get()),
            Repr::Binary(b) => write!(f, "<{} bytes>", b.len()),
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.is_binary() == other.is_binary() && self.as_bytes() == other.as_bytes()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Json(raw) => raw.serialize(serializer),
            Repr::Binary(_) => serializer.serialize_str(&self.to_base64()),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Ok(Self::from_raw(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_raw_newlines_and_round_trips() {
        let p = Payload::from_json("{\n  \"a\": \"x\\ny\"\n}").unwrap();
        assert_eq!(p.as_json(), Some("{  \"a\": \"x\\ny\"}"));
        let out = serde_json::to_string(&p).unwrap();
        assert_eq!(Some(out.as_str()), p.as_json());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "x\ny");
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(Payload::from_json("{oops").is_err());
    }

    #[test]
    fn bytes_are_json_when_they_hold_json_else_binary() {
        let json = Payload::from_bytes(Bytes::from_static(b"[1,2]"));
        assert_eq!((json.is_binary(), json.as_json()), (false, Some("[1,2]")));
        let bin = Payload::from_bytes(Bytes::from_static(&[0xff, 0x00, 0x01]));
        assert!(bin.is_binary());
        assert_eq!(bin.as_bytes(), &[0xff, 0x00, 0x01]);
        // JSON clients get binary data as a base64 string.
        assert_eq!(serde_json::to_string(&bin).unwrap(), "\"/wAB\"");
        assert_eq!(Payload::from_base64("/wAB").unwrap(), bin);
    }
}
