//! JSON objects written as text field by field, so payloads (bytes holding JSON) are embedded
//! exactly as they arrived: no `serde_json::Value` in between, which would reorder keys and
//! round big numbers. Used where a binary message becomes JSON (gRPC API requests, gRPC proxy
//! answers).

use base64::Engine;
use serde::Serialize;
use serde_json::value::RawValue;

/// Writes one JSON object field by field.
pub struct Object {
    text: String,
}

impl Object {
    pub fn new() -> Self {
        Self { text: String::from("{") }
    }

    fn key(&mut self, name: &str) {
        if self.text.len() > 1 {
            self.text.push(',');
        }
        self.text.push('"');
        self.text.push_str(name);
        self.text.push_str("\":");
    }

    /// A field with a plain value (strings, numbers, lists, maps of strings).
    pub fn field(mut self, name: &str, value: &impl Serialize) -> Self {
        self.key(name);
        // Serializing strings, numbers and maps of strings into a String cannot fail.
        self.text.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
        self
    }

    /// A field holding JSON text as it is.
    pub fn raw(mut self, name: &str, json: &RawValue) -> Self {
        self.key(name);
        self.text.push_str(json.get());
        self
    }

    /// A field holding an object written by `object`.
    pub fn object(mut self, name: &str, object: Object) -> Self {
        self.key(name);
        self.text.push_str(&object.finish());
        self
    }

    /// A field holding a list of objects.
    pub fn list(mut self, name: &str, items: impl Iterator<Item = Object>) -> Self {
        self.key(name);
        self.text.push('[');
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.text.push(',');
            }
            self.text.push_str(&item.finish());
        }
        self.text.push(']');
        self
    }

    /// A payload: `b64<name>` when given, else the bytes as `<name>` when they are JSON text,
    /// else base64 of the bytes as `b64<name>`; nothing when both are empty.
    pub fn payload(self, name: &str, bytes: &[u8], b64: &str) -> Self {
        if !b64.is_empty() {
            return self.field(&format!("b64{name}"), &b64);
        }
        if bytes.is_empty() {
            return self;
        }
        match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(json) => self.raw(name, json),
            Err(_) => self.field(&format!("b64{name}"), &base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }

    pub fn finish(mut self) -> String {
        self.text.push('}');
        self.text
    }
}

impl Default for Object {
    fn default() -> Self {
        Self::new()
    }
}

/// Options written as `{"<name>": {"value": <bool>}, …}` for the ones set (the JSON form of
/// `SubscribeOptionOverride`'s `BoolValue`s).
pub fn bool_values<'a>(options: impl IntoIterator<Item = (&'a str, Option<bool>)>) -> Object {
    let mut out = Object::new();
    for (name, value) in options {
        if let Some(value) = value {
            out = out.object(name, Object::new().field("value", &value));
        }
    }
    out
}
