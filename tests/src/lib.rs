//! Harness for end-to-end tests: spawns real `gyre` processes on OS-assigned ports and talks
//! to them with real clients (raw WebSocket, HTTP, the npm and PyPI SDKs).
//!
//! Every spawned process is killed on drop and every wait has a timeout.

pub mod bench;
pub mod chaos;
pub mod interop;
pub mod nats;
pub mod netns;
pub mod pb;
pub mod storm;
pub mod ws;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub use ws::WsClient;

/// HMAC secret of test configs.
pub const SECRET: &str = "test-secret";
/// API key of test configs.
pub const API_KEY: &str = "test-api-key";

/// Path of the gyre binary built for these tests: cargo builds this package's binary next to
/// the `deps/` folder of the running test executable before it runs integration tests.
pub fn gyre_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target directory");
    let bin = dir.join(format!("gyre-under-test{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} is missing: run the tests through cargo (cargo test -p gyre-tests)", bin.display());
    bin
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// A config with the test secrets, loopback listeners on port 0, short timers, and the
/// namespaces the tests use.
pub fn base_config() -> Value {
    json!({
        "address": "127.0.0.1",
        "port": 0,
        "token_hmac_secret_key": SECRET,
        "api_key": API_KEY,
        "log_level": "debug",
        "ping_interval": "25s",
        "pong_timeout": "8s",
        "namespaces": [
            {"name": "chat", "allow_subscribe_for_client": true, "allow_publish_for_subscriber": true,
             "presence": true, "join_leave": true, "allow_presence_for_subscriber": true,
             "history_size": 100, "history_ttl": "300s", "allow_history_for_subscriber": true,
             "force_recovery": true},
            {"name": "small", "allow_subscribe_for_client": true, "allow_publish_for_subscriber": true,
             "presence": true, "join_leave": true, "allow_presence_for_subscriber": true,
             "history_size": 2, "history_ttl": "300s", "allow_history_for_subscriber": true,
             "force_recovery": true},
            {"name": "opt", "allow_subscribe_for_client": true, "history_size": 10, "history_ttl": "300s",
             "allow_positioning": true, "allow_recovery": true, "join_leave": true, "presence": true},
            {"name": "private", "presence": true, "history_size": 10, "history_ttl": "300s"},
            {"name": "pub", "allow_subscribe_for_client": true, "allow_publish_for_client": true},
            {"name": "locked"},
            {"name": "personal", "allow_user_limited_channels": true},
            {"name": "delta", "allow_subscribe_for_client": true, "allow_publish_for_subscriber": true,
             "allowed_delta_types": ["fossil"], "delta_publish": true,
             "history_size": 10, "history_ttl": "300s", "force_recovery": true}
        ]
    })
}

/// Merges `patch` into `base` (objects key by key, everything else replaced).
pub fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// A running gyre process.
pub struct Gyre {
    child: Child,
    pub addr: String,
    pub internal_addr: Option<String>,
    /// The gRPC API listener, when the config turns it on (logged before "gyre listening").
    pub grpc_addr: Option<String>,
    /// The unidirectional gRPC transport's listener, likewise.
    pub uni_grpc_addr: Option<String>,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Gyre {
    /// Starts gyre with [`base_config`] patched by `patch`.
    pub fn start(patch: Value) -> Gyre {
        let mut config = base_config();
        merge(&mut config, patch);
        Self::start_with(&config, &[])
    }

    /// Starts gyre with exactly this config and extra environment variables.
    pub fn start_with(config: &Value, env: &[(&str, &str)]) -> Gyre {
        Self::start_program(&gyre_bin(), config, env)
    }

    /// Starts the gyre binary at `program` (a release build, for benchmarks) with this config.
    pub fn start_program(program: &Path, config: &Value, env: &[(&str, &str)]) -> Gyre {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).expect("config json")).expect("write config");
        let wants_internal = config.get("internal_port").is_some_and(|p| !p.is_null());
        let args = ["serve".to_string(), "--config".to_string(), path.display().to_string()];
        Self::spawn_program(program, dir, &args, env, wants_internal)
    }

    /// Starts gyre with [`base_config`] patched by `patch`, inside network namespace `netns`
    /// (so a test can cut it off the network), with extra environment variables.
    pub fn start_in_netns(netns: &str, patch: Value, env: &[(&str, &str)]) -> Gyre {
        let mut config = base_config();
        merge(&mut config, patch);
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("config json")).expect("write config");
        let wants_internal = config.get("internal_port").is_some_and(|p| !p.is_null());
        let args = [
            "netns",
            "exec",
            netns,
            &gyre_bin().display().to_string(),
            "serve",
            "--config",
            &path.display().to_string(),
        ]
        .map(String::from);
        Self::spawn_program("ip", dir, &args, env, wants_internal)
    }

    /// Starts gyre on a config file that sets `internal_port` (the API, health and metrics
    /// then listen there), with extra environment variables.
    pub fn start_file_with_internal(path: &Path, env: &[(&str, &str)]) -> Gyre {
        let dir = tempfile::tempdir().expect("temp dir");
        let args = ["serve".to_string(), "--config".to_string(), path.display().to_string()];
        Self::spawn(dir, &args, env, true)
    }

    /// Starts gyre with command-line arguments (no config file unless the args name one).
    pub fn start_args(args: &[&str], env: &[(&str, &str)]) -> Gyre {
        let dir = tempfile::tempdir().expect("temp dir");
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Self::spawn(dir, &args, env, false)
    }

    fn spawn(dir: tempfile::TempDir, args: &[String], env: &[(&str, &str)], wants_internal: bool) -> Gyre {
        Self::spawn_program(gyre_bin(), dir, args, env, wants_internal)
    }

    fn spawn_program(
        program: impl AsRef<std::ffi::OsStr>,
        dir: tempfile::TempDir,
        args: &[String],
        env: &[(&str, &str)],
        wants_internal: bool,
    ) -> Gyre {
        let mut cmd = Command::new(program);
        cmd.args(args).current_dir(dir.path()).stdout(Stdio::null()).stderr(Stdio::piped());
        cmd.env_remove("RUST_LOG");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn gyre");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                sink.lock().map(|mut l| l.push(line)).ok();
            }
        });
        let deadline = Instant::now() + Duration::from_secs(20);
        let (mut addr, mut internal_addr, mut grpc_addr, mut uni_grpc_addr) = (None, None, None, None);
        while addr.is_none() || (wants_internal && internal_addr.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if line.contains("gyre listening") {
                        addr = field(&line, "addr");
                    } else if line.contains("internal listener") {
                        internal_addr = field(&line, "addr");
                    } else if line.contains("uni grpc listening") {
                        uni_grpc_addr = field(&line, "addr");
                    } else if line.contains("grpc api listening") {
                        grpc_addr = field(&line, "addr");
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let logs = logs.lock().map(|l| l.join("\n")).unwrap_or_default();
                    panic!("gyre did not start within 20s; its log:\n{logs}");
                }
            }
        }
        Gyre {
            child,
            addr: addr.unwrap_or_default(),
            internal_addr,
            grpc_addr,
            uni_grpc_addr,
            logs,
            _dir: dir,
            http: reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().expect("http client"),
        }
    }

    /// `ws://…/connection/websocket` of this node.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/connection/websocket", self.addr)
    }

    /// Base URL of the server API (`http://…/api`).
    pub fn api_url(&self) -> String {
        format!("http://{}/api", self.internal_addr.as_ref().unwrap_or(&self.addr))
    }

    /// `http://host:port` of the listener serving API, metrics and health.
    pub fn internal_base(&self) -> String {
        format!("http://{}", self.internal_addr.as_ref().unwrap_or(&self.addr))
    }

    /// Calls `POST /api/<method>` with the test key; returns status and JSON body.
    pub async fn api(&self, method: &str, body: Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/{method}", self.api_url()))
            .header("X-API-Key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("api request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A plain HTTP client for requests the helpers do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Process id of the node (for /proc figures).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Connects a raw WebSocket client.
    pub async fn ws(&self) -> WsClient {
        WsClient::connect(&self.ws_url()).await
    }

    /// Connects a raw client and completes `connect` as `user`; returns it and the reply.
    pub async fn connected(&self, user: &str) -> (WsClient, Value) {
        let mut c = self.ws().await;
        let reply = c.command(json!({"connect": {"token": token(user, json!({}))}})).await;
        assert!(reply.get("connect").is_some(), "connect failed: {reply}");
        (c, reply)
    }

    /// Waits until `/health` answers 200 (the engine is connected and set up).
    pub async fn wait_ready(&self) {
        if !self.ready_within(Duration::from_secs(20)).await {
            panic!("gyre not ready within 20s; its log:\n{}", self.logs());
        }
    }

    /// Whether `/health` answers 200 within `wait`.
    pub async fn ready_within(&self, wait: Duration) -> bool {
        let url = format!("{}/health", self.internal_base());
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(&url).send().await {
                if r.status().as_u16() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// The value of one sample of `/metrics`, e.g. `gyre_x_total{a="b"}` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let url = format!("{}/metrics", self.internal_base());
        let text = match self.http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("GET /metrics: {e}"),
        };
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse::<f64>().ok()))
            .unwrap_or(0.0)
    }

    /// Every series of a metric family (`name{labels}` → value) from `/metrics`.
    pub async fn metric_family(&self, name: &str) -> Vec<(String, f64)> {
        let url = format!("{}/metrics", self.internal_base());
        let text = match self.http.get(&url).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(e) => panic!("GET /metrics: {e}"),
        };
        text.lines()
            .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?))))
            .collect()
    }

    /// `/health` status code.
    pub async fn health(&self) -> u16 {
        let url = format!("{}/health", self.internal_base());
        self.http.get(&url).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
    }

    /// Rewrites the config file and sends SIGHUP (config reload).
    pub fn reload(&self, config: &Value) {
        let path = self._dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec_pretty(config).expect("config json")).expect("write config");
        let _ = Command::new("kill").arg("-HUP").arg(self.child.id().to_string()).status();
    }

    /// SIGKILL: the node dies without telling anyone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Everything gyre logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().map(|l| l.join("\n")).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (bounded) for the process to exit; returns its exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Gyre {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of a log line, text (`key=value`) or JSON (`{"fields": {"key": "value"}}`).
fn field(line: &str, key: &str) -> Option<String> {
    if line.starts_with('{') {
        let v: Value = serde_json::from_str(line).ok()?;
        return v["fields"][key].as_str().map(str::to_string);
    }
    let needle = format!("{key}=");
    let start = line.find(&needle)? + needle.len();
    Some(line[start..].split_whitespace().next()?.to_string())
}

/// An HS256 connection token for `user` (valid 1 h) with extra claims.
pub fn token(user: &str, extra: Value) -> String {
    gyre_edge::auth::mint_connection_token(SECRET, user, Some(3600), extra).expect("mint token")
}

/// Runs the gyre binary with arguments; returns (exit ok, stdout, stderr).
pub fn run_cli(args: &[&str], cwd: &Path) -> (bool, String, String) {
    let out = Command::new(gyre_bin()).args(args).current_dir(cwd).env_remove("RUST_LOG").output().expect("run gyre");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` every 20 ms until it is true or `timeout` passes.
pub async fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// Subscribes `c` to fresh channels of `namespace` (`namespace:0`, `:1`, …) every 50 ms until a
/// reply satisfies `done` (config reloads apply asynchronously); panics after 10 s.
pub async fn subscribe_until(c: &mut WsClient, namespace: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for i in 0..200 {
        last = c.command(json!({"subscribe": {"channel": format!("{namespace}:{i}")}})).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no matching subscribe reply within 10 s; last: {last}");
}

/// A config file laid out as the kubelet mounts a ConfigMap: `config.json` → `..data/config.json`,
/// `..data` → a versioned directory, swapped atomically on every update.
pub struct ConfigMapMount {
    dir: tempfile::TempDir,
    version: u32,
}

impl ConfigMapMount {
    pub fn new(config: &Value) -> ConfigMapMount {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut mount = ConfigMapMount { dir, version: 0 };
        mount.update(config);
        std::os::unix::fs::symlink("..data/config.json", mount.path()).expect("config.json symlink");
        mount
    }

    /// The path a process is given (`--config`).
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// Writes a new version and swaps `..data` to it in one rename, as the kubelet does.
    pub fn update(&mut self, config: &Value) {
        self.version += 1;
        let versioned = format!("..v{}", self.version);
        let target = self.dir.path().join(&versioned);
        std::fs::create_dir(&target).expect("version dir");
        std::fs::write(target.join("config.json"), serde_json::to_vec_pretty(config).expect("json")).expect("write");
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&versioned, &tmp).expect("..data_tmp symlink");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("swap ..data");
    }
}

/// A ready gRPC client of a listener gyre logged (`addr`, e.g. [`Gyre::grpc_addr`]).
pub async fn grpc_client(addr: Option<&String>) -> tonic::client::Grpc<tonic::transport::Channel> {
    let addr = addr.expect("gyre logged the gRPC listener's address");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("cannot connect to gRPC at {addr}: {e}"));
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.expect("gRPC client ready");
    grpc
}
