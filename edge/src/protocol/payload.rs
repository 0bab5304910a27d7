//! Application payloads (`data`, `info`, …) carried as raw JSON, never re-parsed on the way out.

use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A validated JSON value shared by every subscriber of a publication without copying.
///
/// Raw newlines are removed on the way in (they can only be insignificant whitespace in valid
/// JSON), so a payload never breaks the newline-delimited framing of the JSON protocol.
#[derive(Clone)]
pub struct Payload(Arc<RawValue>);

impl Payload {
    /// Parses `text` as one JSON value.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        let raw: Box<RawValue> = serde_json::from_str(text)?;
        Ok(Self::from_raw(raw))
    }

    /// JSON `null`.
    pub fn null() -> Self {
        Self::from_raw(RawValue::NULL.to_owned())
    }

    fn from_raw(raw: Box<RawValue>) -> Self {
        if raw.get().contains(['\n', '\r']) {
            let compact: String = raw.get().chars().filter(|c| *c != '\n' && *c != '\r').collect();
            if let Ok(raw) = RawValue::from_string(compact) {
                return Self(Arc::from(raw));
            }
        }
        Self(Arc::from(raw))
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// Size in bytes of the JSON text.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// True for an empty JSON text (never produced by parsing, kept for clippy's sake).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }

    /// True for JSON `null`, which Centrifugo treats like absent data.
    pub fn is_null(&self) -> bool {
        self.0.get() == "null"
    }
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.get())
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
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
        assert_eq!(p.as_str(), "{  \"a\": \"x\\ny\"}");
        let out = serde_json::to_string(&p).unwrap();
        assert_eq!(out, p.as_str());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["a"], "x\ny");
    }

    #[test]
    fn rejects_invalid_json() {
        assert!(Payload::from_json("{oops").is_err());
    }
}
