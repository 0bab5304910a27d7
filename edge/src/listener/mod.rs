//! Every socket Gyre accepts passes one guard: a cap on open connections per listener, a
//! connection rate limit per source IP, and a deadline for the request header (HTTP/1) or the
//! connection preface (HTTP/2, the gRPC ports). A refusal is counted in
//! `gyre_listener_refused_total{listener,reason}` and logged at most once a second per reason.
//!
//! One accept loop serves all four listeners: hyper's HTTP/1 server for the client and
//! internal ports (with upgrades, for WebSocket), its HTTP/2 server for the gRPC ports.

pub mod body;
mod io;
mod throttle;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::config::Config;
use crate::limit::KeyedLimiter;
use crate::metrics::Metrics;
pub use io::Guarded;
pub use throttle::Throttle;

/// The HTTP/2 connection preface every gRPC client sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Open file descriptors kept free for everything that is not a client socket (NATS, the
/// backend proxies, log files, the internal listeners' own share).
const FD_RESERVE: u64 = 256;

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 with upgrades (client and internal ports).
    Http1,
    /// HTTP/2 with prior knowledge (gRPC API and uni gRPC ports).
    Http2,
}

/// One listener's settings, from the config.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Label in metrics and logs: `client`, `internal`, `grpc_api`, `uni_grpc`.
    pub name: &'static str,
    pub protocol: Protocol,
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Whether `client_connection_ip_rate_limit` applies (client-facing listeners only: the
    /// internal ones serve a few backends and probes that reconnect often).
    pub ip_rate_limited: bool,
}

impl Spec {
    /// The client-facing listener `name` (client port or uni gRPC port).
    pub fn client(name: &'static str, protocol: Protocol, config: &Config) -> Self {
        let max = if config.max_connections == 0 { default_max_connections() } else { config.max_connections };
        Self {
            name,
            protocol,
            max_connections: max,
            header_timeout: config.http_header_timeout.0,
            ip_rate_limited: true,
        }
    }

    /// An internal listener (internal port or gRPC API port).
    pub fn internal(name: &'static str, protocol: Protocol, config: &Config) -> Self {
        Self {
            name,
            protocol,
            max_connections: config.internal_max_connections,
            header_timeout: config.http_header_timeout.0,
            ip_rate_limited: false,
        }
    }
}

/// 90% of the soft open-file limit less a reserve: one listener alone can never use up the
/// process's descriptors.
fn default_max_connections() -> usize {
    let soft = open_file_limit().unwrap_or(1024);
    let usable = soft.saturating_sub(FD_RESERVE).saturating_mul(9) / 10;
    usize::try_from(usable.max(64)).unwrap_or(usize::MAX)
}

#[cfg(unix)]
fn open_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    (rc == 0).then_some(limit.rlim_cur)
}

#[cfg(not(unix))]
fn open_file_limit() -> Option<u64> {
    None
}

/// State every listener of a node shares: the per-IP connection limiter, metrics, log
/// throttles.
pub struct Shared {
    ip_rate: KeyedLimiter,
    refused: prometheus::IntCounterVec,
    open: prometheus::IntGaugeVec,
    throttle: Throttle,
}

impl Shared {
    pub fn new(config: &Config, metrics: &Metrics) -> Arc<Self> {
        let quota = crate::limit::Quota::per_second(config.client_connection_ip_rate_limit);
        let shared = Arc::new(Self {
            ip_rate: KeyedLimiter::for_ips(quota, &config.ip_rate_limit_exempt),
            refused: metrics.listener_refused.clone(),
            open: metrics.listener_open.clone(),
            throttle: Throttle::default(),
        });
        let weak = Arc::downgrade(&shared);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::limit::SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(shared) = weak.upgrade() else { return };
                shared.ip_rate.sweep();
            }
        });
        shared
    }

    /// Counts a refusal and logs it, at most once a second per listener and reason.
    pub fn refused(&self, listener: &'static str, reason: &'static str, peer: Option<IpAddr>) {
        self.refused.with_label_values(&[listener, reason]).inc();
        if let Some(suppressed) = self.throttle.allow(listener, reason) {
            tracing::warn!(listener, reason, ?peer, suppressed, "connection refused");
        }
    }
}

/// Accepts connections on `listener` and serves them with `service` until `stop` turns true;
/// then asks open connections to finish and waits for them at most `drain`.
pub async fn serve<S, B>(
    listener: TcpListener,
    spec: Spec,
    shared: Arc<Shared>,
    service: S,
    mut stop: watch::Receiver<bool>,
    drain: Duration,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let slots = Arc::new(Semaphore::new(spec.max_connections.min(Semaphore::MAX_PERMITS)));
    let open = shared.open.with_label_values(&[spec.name]);
    let spec = Arc::new(spec);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    // Out of descriptors or memory: give the process a moment instead of spinning.
                    shared.refused(spec.name, "accept_error", None);
                    tracing::debug!(%err, listener = spec.name, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.refused(spec.name, "connection_limit", Some(peer.ip()));
            refuse(stream, spec.protocol, "503 Service Unavailable", "too many open connections");
            continue;
        };
        if spec.ip_rate_limited && !shared.ip_rate.check(peer.ip()) {
            shared.refused(spec.name, "ip_rate_limit", Some(peer.ip()));
            refuse(stream, spec.protocol, "429 Too Many Requests", "too many new connections from this address");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let io = Guarded::new(stream, permit, open.clone());
        tokio::spawn(connection(io, peer, spec.clone(), shared.clone(), service.clone(), stop.clone()));
    }
    // No new connections; open ones finish what they do (the client listener's sessions were
    // drained before `stop`).
    let deadline = tokio::time::Instant::now() + drain;
    while slots.available_permits() < spec.max_connections.min(Semaphore::MAX_PERMITS)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Serves one connection; a header or preface that does not arrive in time closes it.
async fn connection<S, B>(
    io: Guarded,
    peer: SocketAddr,
    spec: Arc<Spec>,
    shared: Arc<Shared>,
    service: S,
    mut stop: watch::Receiver<bool>,
) where
    S: tower::Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Handlers that limit per source (emulation) read the peer from ConnectInfo.
    let service = tower::ServiceExt::map_request(service, move |mut req: Request<Incoming>| {
        req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        req
    });
    let service = TowerToHyperService::new(service);
    let result = match spec.protocol {
        Protocol::Http1 => {
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(spec.header_timeout)
                .serve_connection(TokioIo::new(io), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
        Protocol::Http2 => {
            match tokio::time::timeout(spec.header_timeout, io::preface(&io, H2_PREFACE)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    shared.refused(spec.name, "bad_preface", Some(peer.ip()));
                    return;
                }
                Ok(Err(_)) => return,
                Err(_) => {
                    shared.refused(spec.name, "header_timeout", Some(peer.ip()));
                    return;
                }
            }
            let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .timer(TokioTimer::new())
                .keep_alive_interval(Some(Duration::from_secs(20)))
                .keep_alive_timeout(Duration::from_secs(10))
                .max_concurrent_streams(256)
                .serve_connection(TokioIo::new(io), service);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                () = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        }
    };
    if let Err(err) = result {
        if err.is_timeout() {
            shared.refused(spec.name, "header_timeout", Some(peer.ip()));
        } else {
            tracing::trace!(%err, listener = spec.name, "connection ended with an error");
        }
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Closes a refused socket; HTTP/1 clients get a short status line first (written only if the
/// socket takes it at once: a refusal never waits on the peer).
fn refuse(stream: TcpStream, protocol: Protocol, status: &str, message: &str) {
    if protocol == Protocol::Http1 {
        let body = format!("{{\"error\":\"{message}\"}}");
        let response = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.try_write(response.as_bytes());
    }
}
