//! Durations in config: `"25s"`, `"1m30s"`, `"500ms"`, or a bare number of seconds.

use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A config duration; serializes back in the same human form (`"25s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConfigDuration(pub Duration);

impl ConfigDuration {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

impl std::ops::Deref for ConfigDuration {
    type Target = Duration;
    fn deref(&self) -> &Duration {
        &self.0
    }
}

/// Parses `"300s"`, `"1m"`, `"1h30m"`, `"0"` or `"250ms"`.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("invalid duration {text:?} ({e}); use a number and a unit: \"300s\", \"1m\", \"500ms\""))
}

impl Serialize for ConfigDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.is_zero() {
            return s.serialize_str("0s");
        }
        s.serialize_str(&humantime::format_duration(self.0).to_string().replace(' ', ""))
    }
}

impl<'de> Deserialize<'de> for ConfigDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = ConfigDuration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a duration such as \"300s\" or \"1m\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse(v).map(ConfigDuration).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(ConfigDuration(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .map(|s| ConfigDuration(Duration::from_secs(s)))
                    .map_err(|_| E::custom(format!("invalid duration {v}: must not be negative")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Duration::try_from_secs_f64(v)
                    .map(ConfigDuration)
                    .map_err(|_| E::custom(format!("invalid duration {v}")))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("300s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert!(parse("5 parsecs").is_err());
        let d: ConfigDuration = serde_json::from_str("25").unwrap();
        assert_eq!(d.0, Duration::from_secs(25));
        assert_eq!(serde_json::to_string(&ConfigDuration::secs(90)).unwrap(), "\"1m30s\"");
    }
}
