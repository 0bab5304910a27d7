//! Listeners and routers (client port; internal port for API, metrics, health) and graceful
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::listener::{self, Protocol, Spec};
use crate::node::Node;
use crate::protocol::Disconnect;

/// Centrifugo's connection middleware: before a connection endpoint does any work, 503 while
/// the node is at `client_connection_limit` or over `client_connection_rate_limit`.
async fn connection_gate(
    State(node): State<Arc<Node>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let config = node.config();
    let limit = config.client_connection_limit;
    let refusal = if limit > 0 && node.hub.slots_held() >= limit {
        Some("connection_limit")
    } else if !node.take_connection_token(config.client_connection_rate_limit) {
        Some("connection_rate_limit")
    } else {
        None
    };
    match refusal {
        Some(reason) => {
            node.metrics.listener_refused.with_label_values(&["client", reason]).inc();
            let body = serde_json::json!({"error": "the node takes no more connections now; retry later"});
            crate::listener::body::json_error(StatusCode::SERVICE_UNAVAILABLE, body)
        }
        None => next.run(request).await,
    }
}

/// Routes of the client listener.
fn client_router(config: &Config, node: &Arc<Node>) -> Router<Arc<Node>> {
    use crate::transport::{http, websocket};
    let mut r = Router::new();
    if !config.websocket_disable {
        r = r.route("/connection/websocket", any(websocket::handler));
    }
    if config.http_stream {
        r = r.route("/connection/http_stream", any(http::http_stream));
    }
    if config.sse {
        r = r.route("/connection/sse", any(http::sse));
    }
    if config.uni_websocket {
        r = r.route("/connection/uni_websocket", any(websocket::uni_handler));
    }
    if config.uni_http_stream {
        r = r.route("/connection/uni_http_stream", any(http::uni_http_stream));
    }
    if config.uni_sse {
        r = r.route("/connection/uni_sse", any(http::uni_sse));
    }
    r = r.route_layer(axum::middleware::from_fn_with_state(node.clone(), connection_gate));
    // Emulation POSTs carry commands of existing connections: not gated.
    if config.http_stream || config.sse {
        r = r.route("/emulation", any(crate::transport::emulation::handler));
    }
    // The emulated connections' registry: the transport's, reachable by the node for frames
    // other nodes forward.
    let sessions = Arc::new(crate::transport::emulation::Sessions::default());
    if !node.set_emulation_inbox(sessions.clone()) {
        tracing::warn!("this node's emulation inbox was installed already; forwarded frames go there");
    }
    r = r.layer(axum::Extension(sessions));
    // Outermost: a refused origin or a preflight costs no connection token.
    r = r.layer(axum::middleware::from_fn_with_state(node.clone(), crate::transport::cors::gate));
    // The admin UI checks origins itself (same origin only) and is not a CORS endpoint.
    if config.admin && config.admin_external {
        r = r.merge(crate::admin::router(config));
    }
    r
}

/// Routes of the internal listener: API, health, metrics, and the admin UI unless external.
fn internal_router(config: &Config) -> Router<Arc<Node>> {
    let mut r = if config.api_disable { Router::new() } else { crate::api::router() };
    if config.health {
        r = r.route("/health", get(health)).route("/readyz", get(health)).route("/livez", get(live));
    }
    if config.prometheus {
        r = r.route("/metrics", get(metrics));
    }
    if config.admin && !config.admin_external {
        r = r.merge(crate::admin::router(config));
    }
    r
}

/// `{}` while serving; 503 once shutdown began or while the engine is unreachable, so load
/// balancers stop routing here.
async fn health(State(node): State<Arc<Node>>) -> Response {
    if !node.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, [("content-type", "application/json")], "{}").into_response();
    }
    ([("content-type", "application/json")], "{}").into_response()
}

/// `{}` while the process serves requests, whatever the engine's state: a liveness probe must
/// not restart every node during an engine outage.
async fn live() -> Response {
    ([("content-type", "application/json")], "{}").into_response()
}

async fn metrics(State(node): State<Arc<Node>>) -> Response {
    node.update_gauges();
    ([("content-type", "text/plain; version=0.0.4")], node.metrics.render()).into_response()
}

fn bind_addr(address: &str, port: u16) -> String {
    if address.is_empty() {
        format!("0.0.0.0:{port}")
    } else if address.contains(':') && !address.starts_with('[') {
        format!("[{address}]:{port}")
    } else {
        format!("{address}:{port}")
    }
}

/// Serves until SIGINT/SIGTERM, then drains clients with a reconnect advice and exits.
/// SIGHUP reloads the config file (`path`).
pub async fn run(config: Config, path: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    let shutdown_timeout = config.shutdown_timeout.0;
    for what in config.ignored() {
        tracing::warn!("ignored {what}");
    }
    let node = Node::new(config.clone()).await?;
    node.spawn_housekeeping();
    let client = TcpListener::bind(bind_addr(&config.address, config.port))
        .await
        .with_context(|| format!("cannot listen on port {} (key `port`)", config.port))?;
    let internal = match config.internal_port {
        Some(p) => Some(
            TcpListener::bind(bind_addr(&config.internal_address, p))
                .await
                .with_context(|| format!("cannot listen on port {p} (key `internal_port`)"))?,
        ),
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let shared = listener::Shared::new(&config, &node.metrics);
    let mut client_routes = client_router(&config, &node);
    let mut tasks = Vec::new();
    let mut spawn = |socket: TcpListener, spec: Spec, service| {
        tasks.push(tokio::spawn(listener::serve(
            socket,
            spec,
            shared.clone(),
            service,
            stop_rx.clone(),
            LISTENER_DRAIN,
        )));
    };
    match internal {
        Some(socket) => {
            tracing::info!(addr = %socket.local_addr()?, "internal listener (api, metrics, health)");
            let app = internal_router(&config).with_state(node.clone());
            spawn(socket, Spec::internal("internal", Protocol::Http1, &config), app);
        }
        None => client_routes = client_routes.merge(internal_router(&config)),
    }
    let mut grpc_tasks = Vec::new();
    if config.grpc_api {
        let socket = bind(&config.grpc_api_address, config.grpc_api_port, "grpc_api_port", "grpc api").await?;
        let service = crate::grpc::routes(crate::grpc::api_service(node.clone()));
        let spec = Spec::internal("grpc_api", Protocol::Http2, &config);
        grpc_tasks.push(tokio::spawn(listener::serve(
            socket,
            spec,
            shared.clone(),
            service,
            stop_rx.clone(),
            LISTENER_DRAIN,
        )));
    }
    if config.uni_grpc {
        let socket = bind(&config.uni_grpc_address, config.uni_grpc_port, "uni_grpc_port", "uni grpc").await?;
        let service =
            crate::grpc::routes(crate::grpc::Routed(crate::transport::uni_grpc::UniStream::new(node.clone())));
        let spec = Spec::client("uni_grpc", Protocol::Http2, &config);
        grpc_tasks.push(tokio::spawn(listener::serve(
            socket,
            spec,
            shared.clone(),
            service,
            stop_rx.clone(),
            LISTENER_DRAIN,
        )));
    }
    tracing::info!(addr = %client.local_addr()?, node = %node.name, "gyre listening");
    let app = client_routes.with_state(node.clone());
    spawn(client, Spec::client("client", Protocol::Http1, &config), app);
    tasks.extend(grpc_tasks);

    spawn_reload_on_sighup(node.clone(), path.clone());
    if let Some(path) = path.filter(|_| !config.config_watch_interval.is_zero()) {
        spawn_config_watch(node.clone(), path, config.config_watch_interval.0);
    }
    shutdown_signal().await;
    tracing::info!("shutting down: telling clients to reconnect");
    node.begin_shutdown();
    drain(&node, shutdown_timeout).await;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    tracing::info!("bye");
    Ok(())
}

/// Binds one of the gRPC listeners (`key` names its port setting); logs "<what> listening".
async fn bind(address: &str, port: u16, key: &str, what: &'static str) -> anyhow::Result<TcpListener> {
    let socket = TcpListener::bind(bind_addr(address, port))
        .await
        .with_context(|| format!("cannot listen on port {port} (key `{key}`)"))?;
    tracing::info!(addr = %socket.local_addr()?, "{what} listening");
    Ok(socket)
}

/// How long a listener waits for its open connections to finish after shutdown began.
const LISTENER_DRAIN: Duration = Duration::from_secs(5);

/// How often the drain disconnects its next batch of clients.
const DRAIN_STEP: Duration = Duration::from_millis(100);

/// Disconnects every client with 3001 (reconnect), spread in batches over the first three
/// quarters of `timeout` so the nodes they reconnect to (and the token backend) see a ramp, not
/// a wave; then waits, within `timeout`, until they are gone.
async fn drain(node: &Node, timeout: Duration) {
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    let clients = node.hub.all_clients();
    let steps = (timeout * 3 / 4).as_millis() / DRAIN_STEP.as_millis();
    let per_step = clients.len().div_ceil(usize::try_from(steps).unwrap_or(usize::MAX).max(1)).max(1);
    tracing::info!(clients = clients.len(), per_step, "draining: clients are told to reconnect elsewhere");
    let mut tick = tokio::time::interval_at(started, DRAIN_STEP);
    for batch in clients.chunks(per_step) {
        tick.tick().await;
        for (_, client) in batch {
            client.disconnect(Disconnect::shutdown());
        }
    }
    // Connections that completed their handshake during the drain.
    for (_, client) in node.hub.all_clients() {
        client.disconnect(Disconnect::shutdown());
    }
    while node.hub.num_clients() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reloads the config file on SIGHUP; an invalid file is logged and the running config kept.
fn spawn_reload_on_sighup(node: Arc<Node>, path: Option<std::path::PathBuf>) {
    #[cfg(unix)]
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
            tracing::warn!("cannot listen for SIGHUP; config reload disabled");
            return;
        };
        while hup.recv().await.is_some() {
            let Some(path) = &path else {
                tracing::warn!("SIGHUP: no config file to reload");
                continue;
            };
            reload_from(&node, path, "SIGHUP").await;
        }
    });
    #[cfg(not(unix))]
    let _ = (node, path);
}

/// Reloads the config file; an invalid file is logged and the running config kept.
async fn reload_from(node: &Node, path: &std::path::Path, why: &str) {
    match crate::config::load(Some(path)) {
        Ok(config) => match node.reload(config).await {
            Ok(()) => tracing::info!(file = %path.display(), why, "config reloaded"),
            Err(code) => tracing::error!(%code, why, "config reload failed; keeping the running config"),
        },
        Err(err) => tracing::error!(%err, why, "config reload refused; keeping the running config"),
    }
}

/// Polls the config file and reloads it when its content changes (`config_watch_interval`):
/// a mounted ConfigMap is replaced behind a symlink, which content polling sees reliably.
fn spawn_config_watch(node: Arc<Node>, path: std::path::PathBuf, every: Duration) {
    tokio::spawn(async move {
        let mut last = tokio::fs::read(&path).await.ok();
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let current = match tokio::fs::read(&path).await {
                Ok(bytes) => Some(bytes),
                Err(err) => {
                    tracing::warn!(%err, file = %path.display(), "config file unreadable; keeping the running config");
                    continue;
                }
            };
            if current != last {
                last = current;
                reload_from(&node, &path, "file changed").await;
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(%err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
