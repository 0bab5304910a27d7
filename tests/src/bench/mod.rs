//! `gyre-bench`: a bounded load run against a Centrifugo-protocol server (Gyre or the
//! reference server): N WebSocket clients on C channels, publications at a fixed rate through
//! the HTTP API with the send time embedded, and a report of what the clients saw and what the
//! server process spent.

mod clients;
pub mod procfs;
mod publisher;
mod workers;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

/// The wire protocol of the server under test.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Centrifugo JSON over WebSocket (Gyre, the reference server); publish via HTTP API.
    Centrifugo,
    /// Centrifugo Protobuf over WebSocket (binary frames); publish via HTTP API.
    CentrifugoProtobuf,
    /// NATS client protocol over WebSocket (nats-server's websocket listener); publish via NATS.
    NatsWs,
    /// Socket.IO 4 (engine.io over WebSocket); publish via the peer's HTTP endpoint.
    Socketio,
    /// Pusher protocol 7 (sockudo, soketi); publish via the signed Pusher HTTP API.
    Pusher,
}

/// Load options; every run is bounded by `--connections` and `--duration`.
#[derive(Parser, Debug, Clone)]
#[command(name = "gyre-bench", about = "Load test a Centrifugo-protocol server (Gyre or the reference)")]
#[command(args_override_self = true)]
pub struct Options {
    /// WebSocket URL of the server (comma-separated for several nodes; clients alternate).
    #[arg(long, default_value = "ws://127.0.0.1:8000/connection/websocket")]
    pub ws: String,
    /// Server API base (publish goes to <api>/publish).
    #[arg(long, default_value = "http://127.0.0.1:8000/api")]
    pub api: String,
    #[arg(long, default_value = "")]
    pub api_key: String,
    /// HMAC secret to mint connection tokens.
    #[arg(long, default_value = "")]
    pub secret: String,
    /// Client connections (at most 200000).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Channels the clients spread over (client i subscribes channel i % C).
    #[arg(long, default_value_t = 1)]
    pub channels: usize,
    /// Channel name prefix (`bench` gives bench0, bench1, …; use a namespace such as `b:` if needed).
    #[arg(long, default_value = "bench")]
    pub channel_prefix: String,
    /// Publications per second (over all channels, round robin).
    #[arg(long, default_value_t = 10)]
    pub rate: u64,
    /// Payload size in bytes (padding added to the timestamp).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Seconds of publishing (at most 600).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Server process id(s) for RSS and CPU figures (from /proc; comma-separated: summed).
    #[arg(long, value_delimiter = ',')]
    pub server_pid: Vec<u32>,
    /// Local source addresses 127.0.0.1..=127.0.0.N to open more than ~28k connections.
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// Pin the load tool to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// Protocol of the server under test.
    #[arg(long, value_enum, default_value = "centrifugo")]
    pub protocol: Protocol,
    /// Pusher app id / key / secret with `--protocol pusher`.
    #[arg(long, default_value = "app-id")]
    pub pusher_app_id: String,
    #[arg(long, default_value = "app-key")]
    pub pusher_key: String,
    #[arg(long, default_value = "app-secret")]
    pub pusher_secret: String,
    /// NATS URL the publisher uses with `--protocol nats-ws`.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Load processes that share the clients (each is limited by its open-file limit and
    /// uses one core); this process publishes and merges their figures.
    #[arg(long, default_value_t = 1)]
    pub processes: usize,
    /// Internal: run as load worker `INDEX/COUNT` of a multi-process run.
    #[arg(long, hide = true)]
    pub worker: Option<String>,
}

impl Options {
    /// This process's share of the clients: every `count`-th client from `index`.
    pub fn share(&self) -> (usize, usize) {
        let parsed = self.worker.as_deref().and_then(|w| {
            let (i, n) = w.split_once('/')?;
            Some((i.parse().ok()?, n.parse().ok()?))
        });
        match parsed {
            Some((i, n)) if n > 0 && i < n => (i, n),
            _ => (0, 1),
        }
    }

    /// Local source addresses 127.0.0.1..=127.0.0.N.
    pub fn sources(&self) -> Vec<IpAddr> {
        (1..=self.source_ips.max(1)).map(|i| IpAddr::from([127, 0, 0, i])).collect()
    }
}

/// The figures of one run.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub connections: usize,
    pub channels: usize,
    pub connect_per_sec: f64,
    /// Server CPU per accepted and subscribed connection: the server's own ceiling on the
    /// connect rate is 1e6 / this per core, whatever limits the tool.
    pub server_cpu_per_connect_us: Option<f64>,
    pub published: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub delivered_fraction: f64,
    pub deliveries_per_sec: f64,
    pub latency_p50_ms: f64,
    pub latency_p99_ms: f64,
    pub latency_p999_ms: f64,
    pub server_rss_idle_per_conn_kb: Option<f64>,
    pub server_cpu_per_100k_deliveries_ms: Option<f64>,
}

/// Entry point of the `gyre-bench` binary.
pub fn main() -> anyhow::Result<()> {
    let mut o = Options::parse();
    o.connections = o.connections.min(200_000);
    o.duration = o.duration.min(600);
    if let Some(cpu) = o.cpu {
        if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
            anyhow::bail!("cannot pin to CPU {cpu}");
        }
    }
    // One thread: the tool is pinned and its cost is predictable.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if o.worker.is_some() {
        return rt.block_on(workers::serve(&o));
    }
    let report = rt.block_on(run(o.clone()))?;
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&o, &report);
    }
    Ok(())
}

fn print_report(o: &Options, r: &Report) {
    println!("connections            {} on {} channel(s)", r.connections, r.channels);
    println!("connect rate           {:.0} conn/s", r.connect_per_sec);
    if let Some(us) = r.server_cpu_per_connect_us {
        println!("server CPU per connect {us:.0} µs (at most {:.0} conn/s per server core)", 1e6 / us.max(1e-9));
    }
    println!("published              {} at {}/s, {} B payload", r.published, o.rate, o.payload);
    println!("delivered              {} of {} ({:.4})", r.delivered, r.expected_deliveries, r.delivered_fraction);
    println!("deliveries             {:.0} msg/s", r.deliveries_per_sec);
    println!("latency p50/p99/p99.9  {:.2} / {:.2} / {:.2} ms", r.latency_p50_ms, r.latency_p99_ms, r.latency_p999_ms);
    if let Some(kb) = r.server_rss_idle_per_conn_kb {
        println!("server RSS per idle subscribed connection  {kb:.2} KB");
    }
    if let Some(ms) = r.server_cpu_per_100k_deliveries_ms {
        println!("server CPU per 100k deliveries             {ms:.1} ms");
    }
}

pub async fn run(o: Options) -> anyhow::Result<Report> {
    let pids = o.server_pid.clone();
    let sum = |f: fn(u32) -> Option<u64>| -> Option<u64> {
        if pids.is_empty() {
            return None;
        }
        pids.iter().map(|p| f(*p)).sum()
    };
    let rss_before = sum(procfs::rss_kb);
    let cpu_before_connect = sum(procfs::cpu_ms);
    let stats = Arc::new(clients::Stats::default());
    let started = Instant::now();
    let mut load = if o.processes > 1 {
        Load::Workers(workers::Workers::spawn(&o).await?)
    } else {
        Load::Local { _clients: clients::open_all(&o, &o.sources(), stats.clone()).await? }
    };
    let connect_secs = match &load {
        Load::Workers(w) => w.connect_secs,
        Load::Local { .. } => started.elapsed().as_secs_f64(),
    };
    // Let the server settle, then read its idle memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_after = sum(procfs::rss_kb);
    let cpu_before = sum(procfs::cpu_ms);
    let server_cpu_per_connect_us = match (cpu_before_connect, cpu_before) {
        (Some(b), Some(a)) if o.connections > 0 => Some((a - b) as f64 * 1000.0 / o.connections as f64),
        _ => None,
    };

    let publish_started = Instant::now();
    let published = publisher::run(&o).await?;
    // Wait for stragglers (bounded).
    let expected = expected_deliveries(&o, published);
    let deadline = Instant::now() + Duration::from_secs(5);
    while load.delivered(&stats).await? < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = publish_started.elapsed().as_secs_f64();
    let cpu_after = sum(procfs::cpu_ms);
    if let Load::Workers(w) = load {
        w.finish(&stats).await?;
    }
    let delivered = stats.delivered();

    let hist = stats.latencies();
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1000.0;
    Ok(Report {
        connections: o.connections,
        channels: o.channels,
        connect_per_sec: o.connections as f64 / connect_secs.max(1e-9),
        server_cpu_per_connect_us,
        published,
        expected_deliveries: expected,
        delivered,
        delivered_fraction: if expected == 0 { 0.0 } else { delivered as f64 / expected as f64 },
        deliveries_per_sec: delivered as f64 / elapsed.max(1e-9),
        latency_p50_ms: q(0.5),
        latency_p99_ms: q(0.99),
        latency_p999_ms: q(0.999),
        server_rss_idle_per_conn_kb: match (rss_before, rss_after) {
            (Some(b), Some(a)) if o.connections > 0 => Some((a as f64 - b as f64) / o.connections as f64),
            _ => None,
        },
        server_cpu_per_100k_deliveries_ms: match (cpu_before, cpu_after) {
            (Some(b), Some(a)) if delivered > 0 => Some((a - b) as f64 * 100_000.0 / delivered as f64),
            _ => None,
        },
    })
}

/// The clients of a run: in this process, or in worker processes.
enum Load {
    /// The clients stay open while this lives.
    Local {
        _clients: clients::Clients,
    },
    Workers(workers::Workers),
}

impl Load {
    async fn delivered(&mut self, stats: &clients::Stats) -> anyhow::Result<u64> {
        match self {
            Self::Local { .. } => Ok(stats.delivered()),
            Self::Workers(w) => w.delivered().await,
        }
    }
}

/// Publications go round robin over channels; each reaches that channel's subscribers.
fn expected_deliveries(o: &Options, published: u64) -> u64 {
    let c = o.channels.max(1) as u64;
    let n = o.connections as u64;
    (0..published)
        .map(|i| {
            let ch = i % c;
            n / c + u64::from(ch < n % c)
        })
        .sum()
}
