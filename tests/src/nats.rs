//! Real `nats-server` processes for the NATS engine tests: JetStream on, own ports and store
//! directories, clusters of three, kill and restart.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HINT: &str = "nats-server is not installed: install Debian's package (apt-get install nats-server); \
                    the README's test command does";

/// A port that was free a moment ago (nats-server needs it before it starts, for restarts
/// and cluster routes).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// The engine part of a Gyre node's config on a three-server cluster: NATS engine, R3,
/// memory storage, the node's name. Callers merge their own listener and namespace settings.
pub fn cluster_node_config(name: &str, nats_url: &str) -> serde_json::Value {
    serde_json::json!({
        "engine": "nats",
        "nats_url": nats_url,
        "nats_replicas": 3,
        "nats_storage": "memory",
        "name": name,
    })
}

/// One nats-server process; killed on drop.
pub struct NatsServer {
    child: Option<Child>,
    pub port: u16,
    /// The address clients reach it on.
    pub host: String,
    /// The HTTP monitoring port (`/connz`, `/jsz`).
    pub monitor_port: u16,
    args: Vec<String>,
    _dir: Arc<tempfile::TempDir>,
    logs: Arc<Mutex<Vec<String>>>,
}

impl NatsServer {
    /// A single JetStream server.
    pub fn start() -> NatsServer {
        Self::start_on(free_port())
    }

    /// A single JetStream server on a given port.
    pub fn start_on(port: u16) -> NatsServer {
        Self::start_with(port, &[])
    }

    /// A single JetStream server on a given port with extra arguments (e.g. `--auth`).
    pub fn start_with(port: u16, extra: &[&str]) -> NatsServer {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let monitor_port = free_port();
        let args = vec![
            "-js".to_string(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string(),
            "-m".into(),
            monitor_port.to_string(),
            "-sd".into(),
            dir.path().join("js").display().to_string(),
        ];
        let args = args.into_iter().chain(extra.iter().map(|a| a.to_string())).collect();
        let mut s = NatsServer {
            child: None,
            port,
            host: "127.0.0.1".into(),
            monitor_port,
            args,
            _dir: dir,
            logs: Arc::default(),
        };
        s.spawn();
        s
    }

    /// A three-node JetStream cluster.
    pub fn cluster() -> Vec<NatsServer> {
        Self::cluster_on("127.0.0.1")
    }

    /// A three-node JetStream cluster whose clients connect on `host` (routes stay on
    /// loopback), e.g. a veth address a network namespace can reach.
    pub fn cluster_on(host: &str) -> Vec<NatsServer> {
        let dir = Arc::new(tempfile::tempdir().expect("temp dir"));
        let ports: Vec<(u16, u16, u16)> = (0..3).map(|_| (free_port(), free_port(), free_port())).collect();
        let routes = ports.iter().map(|(_, c, _)| format!("nats://127.0.0.1:{c}")).collect::<Vec<_>>().join(",");
        let mut servers: Vec<NatsServer> = ports
            .iter()
            .enumerate()
            .map(|(i, (port, cluster, monitor))| NatsServer {
                child: None,
                port: *port,
                host: host.to_string(),
                monitor_port: *monitor,
                args: vec![
                    "-js".into(),
                    "-a".into(),
                    host.to_string(),
                    "-p".into(),
                    port.to_string(),
                    "-m".into(),
                    monitor.to_string(),
                    "-n".into(),
                    format!("n{i}"),
                    "-sd".into(),
                    dir.path().join(format!("js{i}")).display().to_string(),
                    "--cluster_name".into(),
                    "gyre-test".into(),
                    "--cluster".into(),
                    format!("nats://127.0.0.1:{cluster}"),
                    "--routes".into(),
                    routes.clone(),
                    // Clients reach only the servers they were given (no failover to
                    // discovered ones), so a test decides who can reach what.
                    "--no_advertise".into(),
                ],
                _dir: dir.clone(),
                logs: Arc::default(),
            })
            .collect();
        for s in &mut servers {
            s.spawn_no_wait();
        }
        for s in &mut servers {
            s.wait_ready();
        }
        servers
    }

    fn spawn_no_wait(&mut self) {
        let mut child = Command::new("nats-server")
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nats-server ({e}): {HINT}"));
        let stderr = child.stderr.take().expect("stderr");
        let logs = self.logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                logs.lock().map(|mut l| l.push(line)).ok();
            }
        });
        self.child = Some(child);
    }

    fn spawn(&mut self) {
        self.spawn_no_wait();
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.logs.lock().map(|l| l.iter().any(|x| x.contains("Server is ready"))).unwrap_or(false) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("nats-server on port {} not ready within 20s:\n{}", self.port, self.logs());
    }

    pub fn url(&self) -> String {
        format!("nats://{}:{}", self.host, self.port)
    }

    /// Process id while it runs (for /proc figures).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// SIGKILL: the server vanishes without a goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the server keeps its sockets open and answers nothing (a hung host).
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("nats-server is running").id().to_string();
        let ok = Command::new("kill").args([sig, &pid]).status().map(|s| s.success()).unwrap_or(false);
        assert!(ok, "kill {sig} {pid} failed");
    }

    /// A monitoring endpoint's JSON (`connz`, `jsz?consumers=true`, …).
    pub async fn monitor(&self, path: &str) -> serde_json::Value {
        let url = format!("http://127.0.0.1:{}/{path}", self.monitor_port);
        let resp = reqwest::Client::new().get(&url).timeout(Duration::from_secs(5)).send().await;
        let resp = resp.unwrap_or_else(|e| panic!("GET {url}: {e}"));
        resp.json().await.unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
    }

    /// Messages the server received from connections named `name` (each JetStream API
    /// request, direct get and publish is one), summed.
    pub async fn messages_from(&self, name: &str) -> u64 {
        let connz = self.monitor("connz").await;
        connz["connections"]
            .as_array()
            .map(|cs| cs.iter().filter(|c| c["name"] == name).filter_map(|c| c["in_msgs"].as_u64()).sum())
            .unwrap_or(0)
    }

    /// What the server says of its JetStream cluster (meta leader, each stream's leader and
    /// replicas) and the end of its log, for a failure message; never panics.
    pub async fn explain(&self) -> String {
        let url = format!("http://127.0.0.1:{}/jsz?streams=true", self.monitor_port);
        let jsz = match reqwest::Client::new().get(&url).timeout(Duration::from_secs(2)).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.map(|j| {
                let streams: Vec<String> = j["account_details"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
                    .map(|st| {
                        format!("{} leader={} {}", st["name"], st["cluster"]["leader"], st["cluster"]["replicas"])
                    })
                    .collect();
                format!("meta={} streams: {}", j["meta_cluster"], streams.join("; "))
            }),
            Err(e) => Ok(format!("no answer: {e}")),
        }
        .unwrap_or_else(|e| format!("not JSON: {e}"));
        let logs = self.logs();
        let tail: Vec<&str> = logs.lines().rev().take(15).collect::<Vec<_>>().into_iter().rev().collect();
        format!("nats-server :{} {jsz}\n{}", self.port, tail.join("\n"))
    }

    /// JetStream consumers on the server, across all streams.
    pub async fn consumer_count(&self) -> u64 {
        self.monitor("jsz").await["consumers"].as_u64().unwrap_or(0)
    }

    /// Starts again on the same port with the same store.
    pub fn restart(&mut self) {
        self.kill();
        self.logs.lock().map(|mut l| l.clear()).ok();
        self.spawn();
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}
