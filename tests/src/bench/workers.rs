//! Several load processes behind one report: each opens every K-th client (one process can
//! hold only as many sockets as its open-file limit, and uses one core), the parent publishes
//! and merges what they saw. They talk over stdin/stdout, one line per message.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::clients::{self, Stats};
use super::Options;

/// What a worker sends when asked for its report.
#[derive(serde::Serialize, serde::Deserialize)]
struct WorkerReport {
    delivered: u64,
    latency_us: Vec<(u64, u64)>,
}

/// Longest wait for a worker's answer (opening its clients included).
const ANSWER_WAIT: Duration = Duration::from_secs(300);

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Worker {
    async fn ask(&mut self, what: &str) -> anyhow::Result<String> {
        if !what.is_empty() {
            self.stdin.write_all(format!("{what}\n").as_bytes()).await.context("writing to a load worker")?;
        }
        let line = tokio::time::timeout(ANSWER_WAIT, self.stdout.next_line())
            .await
            .context("load worker did not answer in time")?
            .context("reading from a load worker")?;
        line.context("load worker exited early (see its stderr)")
    }
}

/// Running load workers; dropping them kills them.
pub struct Workers {
    workers: Vec<Worker>,
    /// Seconds the slowest worker took to open its clients (process start-up excluded).
    pub connect_secs: f64,
}

impl Workers {
    /// Starts `o.processes` copies of this binary, each with its share of the clients, and
    /// waits until every client is subscribed.
    pub async fn spawn(o: &Options) -> anyhow::Result<Workers> {
        let exe = std::env::current_exe().context("locating gyre-bench")?;
        let args: Vec<String> = std::env::args().skip(1).collect();
        let mut workers = Vec::with_capacity(o.processes);
        for i in 0..o.processes {
            let mut child = tokio::process::Command::new(&exe)
                .args(&args)
                .args(["--processes", "1", "--worker", &format!("{i}/{}", o.processes)])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("starting a load worker")?;
            let stdin = child.stdin.take().context("worker stdin")?;
            let stdout = BufReader::new(child.stdout.take().context("worker stdout")?).lines();
            workers.push(Worker { child, stdin, stdout });
        }
        let mut connect_secs: f64 = 0.0;
        for w in &mut workers {
            let line = w.ask("").await?;
            let secs = line.strip_prefix("ready ").and_then(|s| s.parse::<f64>().ok());
            let Some(secs) = secs else { anyhow::bail!("load worker failed: {line}") };
            connect_secs = connect_secs.max(secs);
        }
        Ok(Workers { workers, connect_secs })
    }

    /// Deliveries so far, over all workers.
    pub async fn delivered(&mut self) -> anyhow::Result<u64> {
        let mut sum = 0;
        for w in &mut self.workers {
            sum += w.ask("status").await?.parse::<u64>().context("worker status")?;
        }
        Ok(sum)
    }

    /// Collects every worker's deliveries and latencies into `stats` and ends them.
    pub async fn finish(mut self, stats: &Stats) -> anyhow::Result<()> {
        for w in &mut self.workers {
            let report: WorkerReport = serde_json::from_str(&w.ask("report").await?).context("worker report")?;
            stats.merge(report.delivered, &report.latency_us);
            let _ = tokio::time::timeout(Duration::from_secs(10), w.child.wait()).await;
        }
        Ok(())
    }
}

/// The worker side: open this share of the clients, say `ready <seconds it took>`, then answer `status` with
/// the deliveries so far and `report` with everything seen (and exit).
pub async fn serve(o: &Options) -> anyhow::Result<()> {
    let stats = Arc::new(Stats::default());
    let started = std::time::Instant::now();
    let clients = match clients::open_all(o, &o.sources(), stats.clone()).await {
        Ok(c) => c,
        Err(e) => {
            println!("error: {e:#}");
            return Err(e);
        }
    };
    println!("ready {}", started.elapsed().as_secs_f64());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "status" => println!("{}", stats.delivered()),
            "report" => {
                let report = WorkerReport { delivered: stats.delivered(), latency_us: stats.latency_counts() };
                println!("{}", serde_json::to_string(&report)?);
                break;
            }
            other => anyhow::bail!("unknown worker command {other:?}"),
        }
    }
    drop(clients);
    Ok(())
}
