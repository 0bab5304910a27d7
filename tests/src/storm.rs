//! The reconnect-storm benchmark (`gyre-storm`, BENCHMARKS.md): three nats-servers
//! (JetStream, R3) and three Gyre nodes. Every client sits on the first node, subscribed to a
//! recoverable channel; that node is killed, each channel then gets publications its clients
//! miss, and every client reconnects at once to the two remaining nodes asking to recover.
//! The report says how long until every client held exactly what it missed, what the storm
//! cost per channel (engine reads, NATS requests) and the CPU the servers spent on it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::bench::procfs::cpu_ms;
use crate::nats::{cluster_node_config, NatsServer};
use crate::{merge, token, Gyre, API_KEY};

const NAMESPACE: &str = "storm";
/// Bound on every single wait (a connect, a reply, a publication batch).
const WAIT: Duration = Duration::from_secs(60);
/// Publications per API batch request.
const BATCH: usize = 500;

/// What to run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// The gyre binary (a release build for figures worth recording).
    pub gyre: PathBuf,
    pub clients: usize,
    pub channels: usize,
    /// Publications each channel gets while its clients are away.
    pub missed: usize,
    /// Connection attempts in flight while the clients first subscribe (the storm itself
    /// opens every connection at once).
    pub connect_concurrency: usize,
    /// JetStream storage of the history streams: `file` (Gyre's default) or `memory`.
    pub storage: String,
    /// Where to write the remaining nodes' logs after the storm (for looking into a run).
    pub logs: Option<PathBuf>,
}

/// What the storm cost and whether every client came back whole.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub clients: usize,
    pub channels: usize,
    pub missed_per_channel: usize,
    /// Seconds to publish what the clients missed (through one node's API, batched).
    pub publish_secs: f64,
    /// From the moment every client starts reconnecting until the last one holds what it
    /// missed.
    pub storm_secs: f64,
    /// Per client, start of the storm to its recovered subscribe reply (ms).
    pub recover_p50_ms: f64,
    pub recover_p99_ms: f64,
    pub recover_max_ms: f64,
    /// Clients answered `recovered: true` with exactly the publications they missed.
    pub recovered: usize,
    /// Clients that did not (with a sample of why).
    pub failed: usize,
    pub failures: Vec<String>,
    /// Recovery reads that went to the engine, and those served by a read in flight, summed
    /// over the remaining nodes.
    pub engine_reads: u64,
    pub shared_reads: u64,
    pub engine_reads_per_channel: f64,
    /// Messages the remaining nodes sent NATS during the storm (JetStream API requests,
    /// direct gets, publishes), per channel.
    pub nats_requests_per_channel: f64,
    /// CPU time during the storm: both remaining Gyre nodes, the three nats-servers, this tool.
    pub gyre_cpu_ms: u64,
    pub nats_cpu_ms: u64,
    pub tool_cpu_ms: u64,
    /// Connection attempts the kernel dropped because a listen queue was full (host-wide
    /// `ListenOverflows` during the storm): each costs the client a SYN retry.
    pub listen_overflows: u64,
    /// Temporary subscribe errors retried, while the clients first subscribed and during the
    /// storm.
    pub setup_retries: u64,
    pub storm_retries: u64,
    /// Engine call failures on the remaining nodes during the storm, by operation and kind.
    pub engine_errors: std::collections::BTreeMap<String, u64>,
    /// Clients that then received the next publication of their channel live.
    pub live: usize,
}

fn node_config(name: &str, nats_url: &str, storage: &str) -> Value {
    let mut config = cluster_node_config(name, nats_url);
    merge(
        &mut config,
        json!({
            "address": "127.0.0.1",
            "port": 0,
            "token_hmac_secret_key": crate::SECRET,
            "api_key": API_KEY,
            "log_level": "info",
            "nats_storage": storage,
            "ping_interval": "60s",
            "ip_rate_limit_exempt": ["127.0.0.0/8"],
            "namespaces": [{
                "name": NAMESPACE, "allow_subscribe_for_client": true, "history_size": 1000,
                "history_ttl": "600s", "force_recovery": true
            }]
        }),
    );
    config
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn channel(i: usize) -> String {
    format!("{NAMESPACE}:c{i}")
}

/// Publishes `per_channel` rounds to every channel through `api` (batched, parallel within
/// a batch, one command per channel in a batch); returns the offsets stored, by channel, in
/// order. A command that failed is sent again (alone with the other failures of its batch)
/// before the next batch, so each channel's publications stay in order.
async fn publish_rounds(http: &reqwest::Client, node: &Gyre, channels: usize, per_channel: usize) -> Vec<Vec<u64>> {
    let api = node.api_url();
    let mut offsets = vec![Vec::with_capacity(per_channel); channels];
    let commands: Vec<(usize, usize)> = (0..per_channel).flat_map(|r| (0..channels).map(move |c| (r, c))).collect();
    for chunk in commands.chunks(BATCH.min(channels)) {
        let mut pending: Vec<(usize, usize)> = chunk.to_vec();
        let deadline = Instant::now() + WAIT;
        while !pending.is_empty() {
            let body = json!({"parallel": true, "commands": pending.iter().map(|(r, c)| json!({
                "publish": {"channel": channel(*c), "data": {"r": r}}
            })).collect::<Vec<_>>()});
            let sent = http.post(format!("{api}/batch")).header("X-API-Key", API_KEY).json(&body).send().await;
            let replies = match sent {
                Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["replies"].as_array().cloned()),
                Err(_) => None,
            };
            let mut failed = Vec::new();
            let mut error = None;
            match replies {
                Some(rs) if rs.len() == pending.len() => {
                    for ((r, c), reply) in pending.iter().zip(rs) {
                        match reply["publish"]["offset"].as_u64() {
                            Some(o) => offsets[*c].push(o),
                            None => {
                                failed.push((*r, *c));
                                error = Some(reply);
                            }
                        }
                    }
                }
                // No answer: nothing is known to be stored; a retry may store twice, which
                // the check would report.
                other => {
                    failed = pending.clone();
                    error = other.map(Value::Array);
                }
            }
            pending = failed;
            if !pending.is_empty() {
                if Instant::now() >= deadline {
                    let logs = node.logs();
                    let problems: Vec<&str> = logs.lines().filter(|l| !l.contains("INFO")).take(20).collect();
                    panic!("publishing keeps failing: {error:?}; the node logged:\n{}", problems.join("\n"));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    offsets
}

/// Reads frames until the reply with `id` arrives (pushes before it are skipped).
async fn reply(ws: &mut Ws, id: u64) -> Result<Value, String> {
    let until = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return Err(format!("no reply to {id}")),
            Ok(None) | Ok(Some(Err(_))) => return Err(format!("connection ended awaiting {id}")),
            Ok(Some(Ok(m))) => m,
        };
        let Message::Text(text) = msg else { continue };
        for m in text.split('\n').filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            if m["id"] == json!(id) {
                return Ok(m);
            }
        }
    }
}

/// Connects and subscribes in one frame (recovering from `position` when given); returns
/// the socket and the subscribe result. A temporary error (an engine call past its deadline
/// under load) is retried on the same connection after a pause, as the SDKs do, and counted.
async fn subscribe(
    url: &str,
    channel: &str,
    position: Option<(u64, &str)>,
    temporary: &AtomicU64,
) -> Result<(Ws, Value), String> {
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|e| format!("connect failed: {e}"))?;
    let sub = match position {
        Some((offset, epoch)) => json!({"channel": channel, "recover": true, "offset": offset, "epoch": epoch}),
        None => json!({"channel": channel}),
    };
    let frame = format!(
        "{}\n{}",
        json!({"id": 1, "connect": {"token": token("storm", json!({}))}}),
        json!({"id": 2, "subscribe": sub})
    );
    ws.send(Message::text(frame)).await.map_err(|e| format!("send failed: {e}"))?;
    let mut id = 2;
    loop {
        let r = reply(&mut ws, id).await?;
        match r.get("error") {
            None => return Ok((ws, r["subscribe"].clone())),
            Some(e) if e["temporary"] == true && id < 20 => {
                temporary.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(200 * id)).await;
                id += 1;
                let again = json!({"id": id, "subscribe": sub}).to_string();
                ws.send(Message::text(again)).await.map_err(|e| format!("send failed: {e}"))?;
            }
            Some(e) => return Err(format!("subscribe error {e}")),
        }
    }
}

/// Whether the recovered subscribe result holds exactly `missed`, in order.
fn check_recovered(s: &Value, missed: &[u64]) -> Result<(), String> {
    if s["recovered"] != true {
        return Err(format!("recovered: {}", s["recovered"]));
    }
    let got: Vec<u64> =
        s["publications"].as_array().into_iter().flatten().filter_map(|p| p["offset"].as_u64()).collect();
    if got != missed {
        return Err(format!("got {} publications, expected {}", got.len(), missed.len()));
    }
    Ok(())
}

/// Waits until `ws` receives the publication at `offset` (a live delivery).
async fn live(ws: &mut Ws, offset: u64) -> bool {
    let until = tokio::time::Instant::now() + WAIT;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(until, ws.next()).await {
        let Message::Text(text) = msg else { continue };
        let got = text
            .split('\n')
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|m| m["push"]["pub"]["offset"].as_u64() == Some(offset));
        if got {
            return true;
        }
    }
    false
}

fn listen_overflows() -> u64 {
    let text = std::fs::read_to_string("/proc/net/netstat").unwrap_or_default();
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ListenOverflows")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_of(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|p| cpu_ms(*p)).sum()
}

async fn reads(nodes: &[&Gyre], served: &str) -> u64 {
    let mut total = 0.0;
    for g in nodes {
        total += g.metric(&format!("gyre_client_recovery_reads_total{{served=\"{served}\"}}")).await;
    }
    total as u64
}

/// `gyre_engine_errors_total` of the nodes, summed per series.
async fn engine_errors(nodes: &[&Gyre]) -> std::collections::BTreeMap<String, u64> {
    let mut sum = std::collections::BTreeMap::new();
    for g in nodes {
        for (series, v) in g.metric_family("gyre_engine_errors_total").await {
            let key = series.trim_start_matches("gyre_engine_errors_total").to_string();
            *sum.entry(key).or_insert(0) += v as u64;
        }
    }
    sum
}

async fn nats_messages(nats: &[NatsServer]) -> u64 {
    let mut total = 0;
    for s in nats {
        total += s.messages_from("gyre").await;
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let Some(last) = sorted.len().checked_sub(1) else { return 0.0 };
    let i = ((last as f64) * p).round() as usize;
    sorted[i.min(last)].as_secs_f64() * 1000.0
}

/// Runs the storm end to end.
pub async fn run(plan: Plan) -> Report {
    let nats = NatsServer::cluster();
    let urls = nats.iter().map(NatsServer::url).collect::<Vec<_>>().join(",");
    // Gyre creates its streams at start: let the JetStream cluster elect its meta leader first.
    let deadline = Instant::now() + WAIT;
    let jsz = format!("http://127.0.0.1:{}/jsz", nats[0].monitor_port);
    let http = reqwest::Client::builder().no_proxy().timeout(WAIT).build().expect("http client");
    loop {
        let answer = match http.get(&jsz).send().await {
            Ok(r) => r.json::<Value>().await.ok(),
            Err(_) => None,
        };
        if answer.is_some_and(|j| j["meta_cluster"]["leader"].as_str().is_some_and(|l| !l.is_empty())) {
            break;
        }
        assert!(Instant::now() < deadline, "the JetStream cluster elected no leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut doomed = Gyre::start_program(&plan.gyre, &node_config("storm-a", &urls, &plan.storage), &[]);
    // With logs asked for, the engine's own debug lines (each history pass) are in them.
    let env: &[(&str, &str)] =
        if plan.logs.is_some() { &[("RUST_LOG", "info,gyre_edge::engine::nats=debug")] } else { &[] };
    let b = Gyre::start_program(&plan.gyre, &node_config("storm-b", &urls, &plan.storage), env);
    let c = Gyre::start_program(&plan.gyre, &node_config("storm-c", &urls, &plan.storage), env);

    // Every channel has history before its clients arrive.
    publish_rounds(&http, &b, plan.channels, 1).await;
    let url_a = doomed.ws_url();
    let setup_retries = AtomicU64::new(0);
    let storm_retries = Arc::new(AtomicU64::new(0));
    let positions: Vec<Result<(Ws, u64, String), String>> = futures_util::stream::iter(0..plan.clients)
        .map(|i| {
            let (url, retries) = (url_a.clone(), &setup_retries);
            async move {
                let (ws, s) = subscribe(&url, &channel(i % plan.channels), None, retries).await?;
                Ok((ws, s["offset"].as_u64().unwrap_or(0), s["epoch"].as_str().unwrap_or_default().to_string()))
            }
        })
        .buffered(plan.connect_concurrency.max(1))
        .collect()
        .await;
    let positions: Vec<(Ws, u64, String)> = positions.into_iter().collect::<Result<_, _>>().unwrap_or_else(|e| {
        let logs = doomed.logs();
        let problems: Vec<&str> = logs.lines().take(30).collect();
        panic!("a client could not subscribe: {e}; the node logged:\n{}", problems.join("\n"))
    });
    doomed.kill();
    let positions: Vec<(u64, String)> = positions.into_iter().map(|(_, o, e)| (o, e)).collect();

    let started = Instant::now();
    let missed = Arc::new(publish_rounds(&http, &b, plan.channels, plan.missed).await);
    let publish_secs = started.elapsed().as_secs_f64();

    let (reads_before, shared_before) = (reads(&[&b, &c], "engine").await, reads(&[&b, &c], "shared").await);
    let errors_before = engine_errors(&[&b, &c]).await;
    let nats_before = nats_messages(&nats).await;
    let servers: Vec<u32> = [b.pid(), c.pid()].into();
    let nats_pids: Vec<u32> = nats.iter().filter_map(NatsServer::pid).collect();
    let me = std::process::id();
    let (gyre_cpu, nats_cpu, tool_cpu) = (cpu_of(&servers), cpu_of(&nats_pids), cpu_of(&[me]));
    let overflows = listen_overflows();

    // The storm: every client at once; each channel's clients alternate over the remaining
    // nodes (so each node has to read every channel).
    let targets = [b.ws_url(), c.ws_url()];
    let start = Instant::now();
    let tasks: Vec<_> = positions
        .into_iter()
        .enumerate()
        .map(|(i, (offset, epoch))| {
            let url = targets[(i / plan.channels) % 2].clone();
            let (missed, retries) = (missed.clone(), storm_retries.clone());
            tokio::spawn(async move {
                let ch = i % missed.len();
                let (ws, s) = subscribe(&url, &channel(ch), Some((offset, &epoch)), &retries).await?;
                let took = start.elapsed();
                check_recovered(&s, &missed[ch]).map(|()| (ws, took))
            })
        })
        .collect();
    let mut outcomes = Vec::with_capacity(tasks.len());
    for t in tasks {
        outcomes.push(t.await.unwrap_or_else(|e| Err(format!("client task failed: {e}"))));
    }
    let storm_secs = start.elapsed().as_secs_f64();
    if let Some(dir) = &plan.logs {
        for (name, node) in [("storm-b", &b), ("storm-c", &c)] {
            if let Err(e) = std::fs::write(dir.join(format!("{name}.log")), node.logs()) {
                eprintln!("cannot write {name}'s log into {}: {e}", dir.display());
            }
        }
    }
    let listen_overflows = listen_overflows().saturating_sub(overflows);
    let gyre_cpu_ms = cpu_of(&servers).saturating_sub(gyre_cpu);
    let nats_cpu_ms = cpu_of(&nats_pids).saturating_sub(nats_cpu);
    let tool_cpu_ms = cpu_of(&[me]).saturating_sub(tool_cpu);
    let engine_reads = reads(&[&b, &c], "engine").await.saturating_sub(reads_before);
    let shared_reads = reads(&[&b, &c], "shared").await.saturating_sub(shared_before);
    let mut engine_errors = engine_errors(&[&b, &c]).await;
    for (k, v) in &mut engine_errors {
        *v = v.saturating_sub(errors_before.get(k).copied().unwrap_or(0));
    }
    engine_errors.retain(|_, v| *v > 0);
    let nats_spent = nats_messages(&nats).await.saturating_sub(nats_before);

    let mut failures: HashMap<String, usize> = HashMap::new();
    let mut took = Vec::new();
    let mut sockets = Vec::new();
    for (i, o) in outcomes.into_iter().enumerate() {
        match o {
            Ok((ws, t)) => {
                took.push(t);
                sockets.push((i, ws));
            }
            Err(e) => *failures.entry(e).or_default() += 1,
        }
    }
    took.sort();

    // Recovered clients are live: the next publication of each channel reaches them.
    let next = publish_rounds(&http, &b, plan.channels, 1).await;
    let channels = plan.channels;
    let live_checks: Vec<_> = sockets
        .into_iter()
        .map(|(i, mut ws)| {
            let offset = next[i % channels][0];
            tokio::spawn(async move { live(&mut ws, offset).await })
        })
        .collect();
    let mut live_count = 0;
    for t in live_checks {
        live_count += usize::from(t.await.unwrap_or(false));
    }

    let mut failures: Vec<(String, usize)> = failures.into_iter().collect();
    failures.sort_by_key(|f| std::cmp::Reverse(f.1));
    Report {
        clients: plan.clients,
        channels: plan.channels,
        missed_per_channel: plan.missed,
        publish_secs,
        storm_secs,
        recover_p50_ms: percentile(&took, 0.50),
        recover_p99_ms: percentile(&took, 0.99),
        recover_max_ms: percentile(&took, 1.0),
        recovered: took.len(),
        failed: plan.clients - took.len(),
        failures: failures.into_iter().take(5).map(|(e, n)| format!("{n}× {e}")).collect(),
        engine_reads,
        shared_reads,
        engine_reads_per_channel: engine_reads as f64 / plan.channels.max(1) as f64,
        nats_requests_per_channel: nats_spent as f64 / plan.channels.max(1) as f64,
        gyre_cpu_ms,
        nats_cpu_ms,
        tool_cpu_ms,
        listen_overflows,
        setup_retries: setup_retries.load(Ordering::Relaxed),
        storm_retries: storm_retries.load(Ordering::Relaxed),
        engine_errors,
        live: live_count,
    }
}

/// `gyre-storm`: runs [`run`] with options from the command line and prints the report.
pub fn main() -> anyhow::Result<()> {
    use clap::Parser;
    #[derive(Parser)]
    #[command(name = "gyre-storm", about = "Reconnect-storm benchmark: kill a node, every client recovers at once")]
    struct Options {
        /// The gyre binary (default: `gyre` next to this tool).
        #[arg(long)]
        gyre: Option<PathBuf>,
        /// Clients (at most 15000: one process holds them all).
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        #[arg(long, default_value_t = 1_000)]
        channels: usize,
        /// Publications each channel gets while its clients are away (at most 900).
        #[arg(long, default_value_t = 100)]
        missed: usize,
        #[arg(long, default_value_t = 256)]
        connect_concurrency: usize,
        /// History stream storage: file (Gyre's default) or memory.
        #[arg(long, default_value = "file", value_parser = ["file", "memory"])]
        storage: String,
        /// Write the remaining nodes' logs (storm-b.log, storm-c.log) into this directory.
        #[arg(long)]
        logs: Option<PathBuf>,
    }
    let o = Options::parse();
    let gyre = match o.gyre {
        Some(g) => g,
        None => std::env::current_exe()?.with_file_name(format!("gyre{}", std::env::consts::EXE_SUFFIX)),
    };
    anyhow::ensure!(
        gyre.exists(),
        "{} is missing: build it (cargo build --release -p gyre-edge) or pass --gyre",
        gyre.display()
    );
    let plan = Plan {
        gyre,
        clients: o.clients.clamp(1, 15_000),
        channels: o.channels.clamp(1, 15_000),
        missed: o.missed.clamp(1, 900),
        connect_concurrency: o.connect_concurrency,
        storage: o.storage,
        logs: o.logs,
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = rt.block_on(run(plan));
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
