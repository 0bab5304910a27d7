//! Running the real SDKs (npm `centrifuge` under Node, PyPI `cent` and `centrifuge-python`)
//! against a gyre node. A missing runtime or package fails the test with an install hint.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::{repo_root, Gyre, API_KEY, SECRET};

const HINT: &str = "run the README's test command (./scripts/test), which installs the interop clients";

/// Directory of the JavaScript interop scripts and their pinned packages.
pub fn js_dir() -> PathBuf {
    repo_root().join("tests/interop/js")
}

/// Directory of the Python interop scripts and their pinned requirements.
pub fn py_dir() -> PathBuf {
    repo_root().join("tests/interop/py")
}

/// The environment every interop script reads.
fn env_for(gyre: &Gyre) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("GYRE_WS_URL", gyre.ws_url()),
        ("GYRE_API_URL", gyre.api_url()),
        ("GYRE_API_KEY", API_KEY.to_string()),
        ("GYRE_SECRET", SECRET.to_string()),
    ];
    if let Some(addr) = &gyre.grpc_addr {
        // The tests give the gRPC API the HTTP API's key.
        env.extend([("GYRE_GRPC_ADDR", addr.clone()), ("GYRE_GRPC_KEY", API_KEY.to_string())]);
    }
    if let Some(addr) = &gyre.uni_grpc_addr {
        env.push(("GYRE_UNI_GRPC_ADDR", addr.clone()));
    }
    env
}

/// Runs a script with a timeout; panics with its output unless it exits 0.
async fn run(mut cmd: Command, what: &str, timeout: Duration) -> String {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}; {HINT}"));
    let out = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => panic!("{what} failed to run: {e}"),
        Err(_) => panic!("{what} did not finish within {timeout:?}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{what} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}", out.status);
    stdout
}

/// Runs `tests/interop/js/<script>` under Node against `gyre`; returns its stdout.
pub async fn run_js(gyre: &Gyre, script: &str) -> String {
    run_js_env(gyre, script, &[]).await
}

/// Like [`run_js`] with extra environment variables (e.g. a second node's URL).
pub async fn run_js_env(gyre: &Gyre, script: &str, extra: &[(&str, String)]) -> String {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/centrifuge/package.json").exists(),
        "npm package `centrifuge` is not installed in {}; {HINT}",
        dir.display()
    );
    let mut cmd = Command::new("node");
    cmd.arg(dir.join(script)).current_dir(&dir);
    for (k, v) in env_for(gyre) {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    run(cmd, &format!("node {script}"), Duration::from_secs(90)).await
}

/// Runs `tests/interop/py/<script>` with the interop virtualenv's Python; returns its stdout.
pub async fn run_py(gyre: &Gyre, script: &str) -> String {
    run_py_args(gyre, script, &[]).await
}

/// [`run_py`] with command-line arguments for the script.
pub async fn run_py_args(gyre: &Gyre, script: &str, args: &[&str]) -> String {
    let dir = py_dir();
    let python = dir.join(".venv/bin/python");
    assert!(python.exists(), "the Python interop virtualenv is missing at {}; {HINT}", python.display());
    let mut cmd = Command::new(python);
    cmd.arg(dir.join(script)).args(args).current_dir(&dir).env("NO_PROXY", "*");
    for (k, v) in env_for(gyre) {
        cmd.env(k, v);
    }
    run(cmd, &format!("python {script}"), Duration::from_secs(90)).await
}
