//! Claims of connection tokens as Centrifugo defines them.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer};

use crate::internode::SubOverride;
use crate::protocol::Payload;

/// Claims of a connection token; unknown claims are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectClaims {
    pub sub: String,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub iss: Option<String>,
    pub info: Option<Payload>,
    pub b64info: Option<String>,
    pub channels: Vec<String>,
    pub subs: HashMap<String, SubOptions>,
    pub meta: Option<Payload>,
    pub expire_at: Option<i64>,
    /// Must be absent: its presence marks a subscription token used to connect.
    pub channel: Option<serde_json::Value>,
}

/// Claims of a subscription token; unknown claims are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeClaims {
    pub sub: String,
    pub channel: String,
    pub client: Option<String>,
    pub exp: Option<i64>,
    pub nbf: Option<i64>,
    #[serde(deserialize_with = "one_or_many")]
    pub aud: Vec<String>,
    pub iss: Option<String>,
    pub info: Option<Payload>,
    pub b64info: Option<String>,
    pub data: Option<Payload>,
    pub b64data: Option<String>,
    pub expire_at: Option<i64>,
    #[serde(rename = "override")]
    pub overrides: Option<SubOverride>,
}

impl SubscribeClaims {
    /// When the subscription expires (`expire_at` wins over `exp`; 0 or less = never).
    pub fn expires_at(&self) -> Option<i64> {
        expiry(self.expire_at, self.exp)
    }
}

/// Per-channel options of a server-side subscription from the `subs` claim.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SubOptions {
    pub info: Option<Payload>,
    pub b64info: Option<String>,
    pub data: Option<Payload>,
    pub b64data: Option<String>,
    #[serde(rename = "override")]
    pub overrides: Option<SubOverride>,
}

impl ConnectClaims {
    /// When the connection's credentials expire (`expire_at` wins over `exp`; 0 or less =
    /// never, as Centrifugo reads it).
    pub fn expires_at(&self) -> Option<i64> {
        expiry(self.expire_at, self.exp)
    }
}

fn expiry(expire_at: Option<i64>, exp: Option<i64>) -> Option<i64> {
    match expire_at {
        Some(at) if at <= 0 => None,
        Some(at) => Some(at),
        None => exp,
    }
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}
