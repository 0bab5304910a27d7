//! Prometheus metrics of one node (`gyre_*`), served on `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric the node exports; cheap to update from hot paths (atomics).
pub struct Metrics {
    registry: Registry,
    pub num_clients: IntGauge,
    pub num_users: IntGauge,
    pub num_channels: IntGauge,
    pub num_subscriptions: IntGauge,
    pub engine_ready: IntGauge,
    pub connections_accepted: IntCounterVec,
    pub disconnects: IntCounterVec,
    pub commands: IntCounterVec,
    pub reply_errors: IntCounterVec,
    pub messages_sent: IntCounterVec,
    pub messages_published: IntCounterVec,
    pub api_commands: HistogramVec,
    pub api_errors: IntCounterVec,
    pub recover: IntCounterVec,
    pub recovery_reads: IntCounterVec,
    pub proxy_duration: HistogramVec,
    pub proxy_errors: IntCounterVec,
    pub listener_refused: IntCounterVec,
    pub admin_logins: IntCounterVec,
    pub listener_open: IntGaugeVec,
    pub body_refused: IntCounterVec,
    pub jwks_events: IntCounterVec,
    pub engine_duration: HistogramVec,
    pub engine_errors: IntCounterVec,
    pub engine_events: IntCounterVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help).namespace("gyre"), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::with_opts(Opts::new(name, help).namespace("gyre"))?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    pub fn new(version: &str) -> prometheus::Result<Self> {
        let registry = Registry::new();
        let build = IntGauge::with_opts(
            Opts::new("node_build", "Build information").namespace("gyre").const_label("version", version),
        )?;
        build.set(1);
        registry.register(Box::new(build))?;
        let api_commands = HistogramVec::new(
            HistogramOpts::new("api_command_duration_seconds", "Server API command duration")
                .namespace("gyre")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["protocol", "method"],
        )?;
        registry.register(Box::new(api_commands.clone()))?;
        let proxy_duration = HistogramVec::new(
            HistogramOpts::new("proxy_duration_seconds", "Backend proxy request duration by hook")
                .namespace("gyre")
                .buckets(vec![0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["type"],
        )?;
        registry.register(Box::new(proxy_duration.clone()))?;
        let engine_duration = HistogramVec::new(
            HistogramOpts::new("engine_call_duration_seconds", "Engine call duration by operation")
                .namespace("gyre")
                .buckets(vec![0.0002, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            &["op"],
        )?;
        registry.register(Box::new(engine_duration.clone()))?;
        Ok(Self {
            num_clients: gauge(&registry, "node_num_clients", "Connected clients")?,
            num_users: gauge(&registry, "node_num_users", "Distinct connected users")?,
            num_channels: gauge(&registry, "node_num_channels", "Channels with local subscribers")?,
            num_subscriptions: gauge(&registry, "node_num_subscriptions", "Client subscriptions")?,
            engine_ready: gauge(
                &registry,
                "node_engine_ready",
                "1 while the engine (NATS JetStream) is reachable and set up; 0 during an outage",
            )?,
            connections_accepted: counter(
                &registry,
                "client_connections_accepted_total",
                "Accepted connections",
                &["transport"],
            )?,
            disconnects: counter(
                &registry,
                "client_num_server_disconnects_total",
                "Server disconnects by code",
                &["code"],
            )?,
            commands: counter(&registry, "client_commands_total", "Client commands received by method", &["method"])?,
            reply_errors: counter(
                &registry,
                "client_num_reply_errors_total",
                "Error replies by method and code",
                &["method", "code"],
            )?,
            messages_sent: counter(
                &registry,
                "node_messages_sent_total",
                "Pushes queued to clients by type",
                &["type"],
            )?,
            messages_published: counter(
                &registry,
                "node_messages_published_total",
                "Messages published by type",
                &["type"],
            )?,
            api_errors: counter(
                &registry,
                "api_command_errors_total",
                "Server API errors by method and code",
                &["protocol", "method", "code"],
            )?,
            recover: counter(&registry, "client_recover_total", "Subscribe recoveries by outcome", &["recovered"])?,
            recovery_reads: counter(
                &registry,
                "client_recovery_reads_total",
                "Stream recoveries by how their history read was served (engine = own read, shared = a share of another subscriber's)",
                &["served"],
            )?,
            proxy_errors: counter(
                &registry,
                "proxy_errors_total",
                "Backend proxy requests that failed (transport, HTTP status, bad answer) by hook",
                &["type"],
            )?,
            listener_refused: counter(
                &registry,
                "listener_refused_total",
                "Connections and requests refused or closed by a listener's limits and checks (connection_limit, ip_rate_limit, header_timeout, origin, …)",
                &["listener", "reason"],
            )?,
            admin_logins: counter(
                &registry,
                "admin_logins_total",
                "Admin UI sign-ins by outcome (ok, refused, throttled)",
                &["outcome"],
            )?,
            listener_open: {
                let g = IntGaugeVec::new(Opts::new("listener_open_connections", "Open sockets by listener").namespace("gyre"), &["listener"])?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            body_refused: counter(
                &registry,
                "http_body_refused_total",
                "Request bodies refused while reading (body_too_large, body_timeout, body_broken) by endpoint",
                &["endpoint", "reason"],
            )?,
            jwks_events: counter(
                &registry,
                "token_jwks_events_total",
                "JWKS endpoint events: fetched, fetch_failed, stale_served (known keys used past their refresh time), unavailable (a token refused as temporary)",
                &["event"],
            )?,
            engine_errors: counter(
                &registry,
                "engine_errors_total",
                "Engine calls that failed by operation and error (unavailable, timeout, unrecoverable)",
                &["op", "error"],
            )?,
            engine_events: counter(
                &registry,
                "engine_events_total",
                "Engine connection events: connected, disconnected, slow_consumer (messages dropped by the NATS client), server_error, client_error, lame_duck",
                &["event"],
            )?,
            engine_duration,
            proxy_duration,
            api_commands,
            registry,
        })
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        if let Err(err) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::warn!(%err, "metrics encoding failed");
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
