//! JSON bodies of the proxy protocol (Centrifugo's `proxy.proto` in its JSON form).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::auth::{SubOptions, SubOverride};
use crate::protocol::{Disconnect, ErrorCode, Payload};

/// Fields every request starts with.
#[derive(Debug, Serialize)]
pub struct Common<'a> {
    pub client: &'a str,
    pub transport: &'a str,
    pub protocol: &'a str,
    pub encoding: &'a str,
}

/// Fields of every request after connect: who is asking.
#[derive(Debug, Serialize)]
pub struct Caller<'a> {
    #[serde(flatten)]
    pub common: Common<'a>,
    pub user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a Payload>,
}

/// A client payload as the backend receives it: JSON `data`, or `b64data` for binary data
/// and in binary-encoding mode.
#[derive(Debug, Default, Serialize)]
pub struct Data {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Payload>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b64data: Option<String>,
}

impl Data {
    pub fn new(payload: Option<&Payload>, binary_encoding: bool) -> Self {
        match payload {
            Some(p) if !binary_encoding && !p.is_binary() => Self { data: Some(p.clone()), b64data: None },
            Some(p) => Self { data: None, b64data: Some(p.to_base64()) },
            None => Self::default(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ConnectRequest<'a> {
    #[serde(flatten)]
    pub common: Common<'a>,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub version: &'a str,
    #[serde(flatten)]
    pub data: Data,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct RefreshRequest<'a> {
    #[serde(flatten)]
    pub caller: Caller<'a>,
}

#[derive(Debug, Serialize)]
pub struct ChannelRequest<'a> {
    #[serde(flatten)]
    pub caller: Caller<'a>,
    pub channel: &'a str,
    #[serde(flatten)]
    pub data: Data,
}

#[derive(Debug, Serialize)]
pub struct RpcRequest<'a> {
    #[serde(flatten)]
    pub caller: Caller<'a>,
    pub method: &'a str,
    #[serde(flatten)]
    pub data: Data,
}

/// `data`/`b64data` or `info`/`b64info` of a result: a non-empty base64 field wins.
fn pick(json: Option<Payload>, b64: &str) -> Result<Option<Payload>, ErrorCode> {
    if b64.is_empty() {
        return Ok(json.filter(|p| !p.is_null()));
    }
    Payload::from_base64(b64).map(Some).map_err(|_| ErrorCode::INTERNAL)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ConnectResult {
    pub user: String,
    pub expire_at: i64,
    info: Option<Payload>,
    b64info: String,
    data: Option<Payload>,
    b64data: String,
    pub channels: Vec<String>,
    pub subs: HashMap<String, SubOptions>,
    pub meta: Option<Payload>,
}

impl ConnectResult {
    pub fn info(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.info.take(), &self.b64info)
    }
    pub fn data(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.data.take(), &self.b64data)
    }
}

/// Result of refresh and sub_refresh.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RefreshResult {
    pub expired: bool,
    pub expire_at: i64,
    info: Option<Payload>,
    b64info: String,
    pub meta: Option<Payload>,
}

impl RefreshResult {
    pub fn info(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.info.take(), &self.b64info)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SubscribeResult {
    pub expire_at: i64,
    info: Option<Payload>,
    b64info: String,
    data: Option<Payload>,
    b64data: String,
    #[serde(rename = "override")]
    pub overrides: Option<SubOverride>,
}

impl SubscribeResult {
    pub fn info(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.info.take(), &self.b64info)
    }
    pub fn data(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.data.take(), &self.b64data)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PublishResult {
    data: Option<Payload>,
    b64data: String,
    pub skip_history: bool,
}

impl PublishResult {
    /// Data replacing what the client published, if the backend sent any.
    pub fn data(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.data.take(), &self.b64data)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RpcResult {
    data: Option<Payload>,
    b64data: String,
}

impl RpcResult {
    pub fn data(&mut self) -> Result<Option<Payload>, ErrorCode> {
        pick(self.data.take(), &self.b64data)
    }
}

#[derive(Debug, Deserialize)]
struct WireError {
    #[serde(default)]
    code: u32,
    #[serde(default)]
    message: String,
    #[serde(default)]
    temporary: bool,
}

/// The answer of every hook.
#[derive(Debug, Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
pub(super) struct Envelope<T> {
    #[serde(default = "Option::default")]
    result: Option<T>,
    #[serde(default)]
    error: Option<WireError>,
    #[serde(default)]
    disconnect: Option<Disconnect>,
}

impl<T> Envelope<T> {
    /// A disconnect wins over an error, an error over a result.
    pub(super) fn into_answer(self) -> super::Answer<T> {
        use super::Answer;
        match (self.disconnect, self.error, self.result) {
            (Some(d), _, _) => Answer::Disconnect(d),
            (None, Some(e), _) => {
                Answer::Error(ErrorCode { code: e.code, message: e.message.into(), temporary: e.temporary })
            }
            (None, None, Some(r)) => Answer::Result(r),
            (None, None, None) => Answer::Empty,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::Answer;

    #[test]
    fn requests_carry_data_or_b64data() {
        let json = Payload::from_json(r#"{"a":1}"#).unwrap();
        let bin = Payload::from_bytes(bytes::Bytes::from_static(&[0xff, 0]));
        let common = || Common { client: "c", transport: "websocket", protocol: "json", encoding: "json" };
        let caller = |meta| Caller { common: common(), user: "42", meta };
        let req = ChannelRequest { caller: caller(Some(&json)), channel: "ch", data: Data::new(Some(&json), false) };
        assert_eq!(
            serde_json::to_string(&req).unwrap(),
            r#"{"client":"c","transport":"websocket","protocol":"json","encoding":"json","user":"42","meta":{"a":1},"channel":"ch","data":{"a":1}}"#
        );
        let req = RpcRequest { caller: caller(None), method: "m", data: Data::new(Some(&bin), false) };
        let v: serde_json::Value = serde_json::to_value(&req).unwrap();
        assert_eq!((v["b64data"].as_str(), v.get("data"), v.get("meta")), (Some("/wA="), None, None));
        let v = serde_json::to_value(Data::new(Some(&json), true)).unwrap();
        assert_eq!(v, serde_json::json!({"b64data": "eyJhIjoxfQ=="}));
    }

    #[test]
    fn answers_prefer_disconnect_then_error_then_result() {
        let parse = |s: &str| serde_json::from_str::<Envelope<RpcResult>>(s).unwrap().into_answer();
        assert!(matches!(parse(r#"{"disconnect":{"code":4501,"reason":"x"},"error":{"code":1}}"#),
            Answer::Disconnect(d) if d.code == 4501));
        assert!(matches!(parse(r#"{"error":{"code":1000,"message":"nope","temporary":true}}"#),
            Answer::Error(e) if e.code == 1000 && e.message == "nope" && e.temporary));
        let Answer::Result(mut r) = parse(r#"{"result":{"b64data":"aGk="}}"#) else { panic!() };
        assert_eq!(r.data().unwrap().unwrap().as_bytes(), b"hi");
        assert!(matches!(parse("{}"), Answer::Empty));
        let Answer::Result(mut r) = parse(r#"{"result":{"b64data":"!!"}}"#) else { panic!() };
        assert_eq!(r.data().unwrap_err().code, 100);
    }
}
