//! Backend proxy hooks, as Centrifugo's proxy: connect, refresh, subscribe, publish,
//! sub_refresh and RPC events go to the application backend — JSON POSTs to `http(s)://`
//! endpoints, calls of Centrifugo's proxy service to `grpc://` ones — and its answer (a
//! result, an error for the client, or a disconnect) decides what the client gets.

pub mod grpc;
pub mod proto;
pub mod wire;

use std::time::{Duration, Instant};

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::protocol::{Disconnect, ErrorCode};

/// The events Gyre can send to the backend, in `Config::proxy_endpoints` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    Connect,
    Refresh,
    Subscribe,
    Publish,
    SubRefresh,
    Rpc,
}

impl Hook {
    pub fn name(self) -> &'static str {
        match self {
            Hook::Connect => "connect",
            Hook::Refresh => "refresh",
            Hook::Subscribe => "subscribe",
            Hook::Publish => "publish",
            Hook::SubRefresh => "sub_refresh",
            Hook::Rpc => "rpc",
        }
    }
}

/// Where a hook goes: JSON over HTTP(S), or Centrifugo's proxy service over gRPC.
enum Endpoint {
    Http {
        url: reqwest::Url,
        timeout: Duration,
    },
    /// The channel connects on first use (and reconnects by itself).
    Grpc {
        endpoint: Box<tonic::transport::Endpoint>,
        channel: std::sync::OnceLock<tonic::transport::Channel>,
        timeout: Duration,
    },
}

impl Endpoint {
    fn parse(endpoint: &str, timeout: Duration) -> Option<Self> {
        match endpoint.strip_prefix("grpc://") {
            Some(authority) => {
                tonic::transport::Endpoint::from_shared(format!("http://{authority}")).ok().map(|endpoint| {
                    Endpoint::Grpc { endpoint: Box::new(endpoint), channel: std::sync::OnceLock::new(), timeout }
                })
            }
            None => reqwest::Url::parse(endpoint).ok().map(|url| Endpoint::Http { url, timeout }),
        }
    }
}

/// The configured hooks and the HTTP client that calls them (rebuilt on config reload).
pub struct Proxies {
    http: reqwest::Client,
    endpoints: [Option<Endpoint>; 6],
    forward_headers: Vec<HeaderName>,
    static_headers: HeaderMap,
    /// Payloads go as `b64data` and `encoding` is `"binary"`.
    pub binary_encoding: bool,
    /// Later hooks carry the connection's `meta`.
    pub include_meta: bool,
}

/// What the backend answered.
#[derive(Debug)]
pub enum Answer<T> {
    Result(T),
    /// An error for the client's command (the connection stays).
    Error(ErrorCode),
    Disconnect(Disconnect),
    /// Neither of the above: Centrifugo's meaning depends on the hook.
    Empty,
}

/// The backend could not be asked, or answered something that is not the proxy protocol.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{0} proxy is not configured")]
    NotConfigured(&'static str),
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    #[error("backend answered HTTP {0}")]
    Status(u16),
    #[error("backend answer is not valid proxy JSON: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("gRPC call failed: {0}")]
    Grpc(String),
    #[error("backend answer larger than {0} bytes")]
    TooLarge(usize),
}

/// The largest answer read from a backend proxy.
pub const MAX_RESPONSE: usize = 4 << 20;

/// Reads a response body, stopping (and failing) once it passes `cap` bytes, so a backend
/// cannot make the node buffer without bound.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<bytes::Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > u64::try_from(cap).unwrap_or(u64::MAX)) {
        return Err(ReadError::TooLarge(cap));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(ReadError::Http)? {
        if body.len().saturating_add(chunk.len()) > cap {
            return Err(ReadError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Why [`read_capped`] failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Http(reqwest::Error),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
}

impl From<ReadError> for ProxyError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Http(e) => Self::Http(e),
            ReadError::TooLarge(n) => Self::TooLarge(n),
        }
    }
}

impl Proxies {
    /// Endpoints and headers were validated by the config loader; anything unusable is left
    /// out rather than failing here.
    pub fn new(config: &Config) -> Self {
        let endpoints = config.proxy_endpoints().map(|(_, endpoint, _, timeout)| Endpoint::parse(endpoint, timeout));
        let forward_headers =
            config.proxy_http_headers.iter().filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok()).collect();
        let mut static_headers = HeaderMap::new();
        for (name, value) in &config.proxy_static_http_headers {
            if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                static_headers.insert(n, v);
            }
        }
        // A redirect would send the request (and its headers) somewhere not configured.
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap_or_default();
        Self {
            http,
            endpoints,
            forward_headers,
            static_headers,
            binary_encoding: config.proxy_binary_encoding,
            include_meta: config.proxy_include_connection_meta,
        }
    }

    pub fn enabled(&self, hook: Hook) -> bool {
        self.endpoints[hook as usize].is_some()
    }

    /// The headers of a client's connection request that go with its proxy requests; kept
    /// per connection, so only those configured (usually none) are copied.
    pub fn forwarded_headers(&self, request: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::new();
        for name in &self.forward_headers {
            for value in request.get_all(name) {
                out.append(name.clone(), value.clone());
            }
        }
        out
    }

    /// `encoding` of every request.
    pub fn encoding(&self) -> &'static str {
        if self.binary_encoding {
            "binary"
        } else {
            "json"
        }
    }

    /// POSTs `body` to the hook's endpoint and reads the backend's answer.
    pub async fn call<T: DeserializeOwned>(
        &self,
        hook: Hook,
        headers: Option<&HeaderMap>,
        body: &impl Serialize,
        metrics: &Metrics,
    ) -> Result<Answer<T>, ProxyError> {
        let started = Instant::now();
        let answer = self.request(hook, headers, body).await;
        metrics.proxy_duration.with_label_values(&[hook.name()]).observe(started.elapsed().as_secs_f64());
        if let Err(err) = &answer {
            metrics.proxy_errors.with_label_values(&[hook.name()]).inc();
            tracing::warn!(hook = hook.name(), %err, "proxy request failed");
        }
        answer
    }

    async fn request<T: DeserializeOwned>(
        &self,
        hook: Hook,
        headers: Option<&HeaderMap>,
        body: &impl Serialize,
    ) -> Result<Answer<T>, ProxyError> {
        let endpoint = self.endpoints[hook as usize].as_ref().ok_or(ProxyError::NotConfigured(hook.name()))?;
        let mut all = self.static_headers.clone();
        for (name, value) in headers.into_iter().flatten() {
            all.insert(name.clone(), value.clone());
        }
        let (url, timeout) = match endpoint {
            Endpoint::Http { url, timeout } => (url, *timeout),
            Endpoint::Grpc { endpoint, channel, timeout } => {
                let channel = channel.get_or_init(|| endpoint.connect_lazy()).clone();
                let answer = grpc::call(channel, hook, &all, body, *timeout).await?;
                let envelope: wire::Envelope<T> = serde_json::from_str(&answer)?;
                return Ok(envelope.into_answer());
            }
        };
        all.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let response =
            self.http.post(url.clone()).timeout(timeout).headers(all).body(serde_json::to_vec(body)?).send().await?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(ProxyError::Status(response.status().as_u16()));
        }
        let envelope: wire::Envelope<T> = serde_json::from_slice(&read_capped(response, MAX_RESPONSE).await?)?;
        Ok(envelope.into_answer())
    }
}
