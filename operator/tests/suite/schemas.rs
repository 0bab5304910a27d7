//! Offline schema validation with real tools: every rendered manifest and the CRDs against
//! Kubernetes' OpenAPI schemas (PyPI `kubernetes-validate`, oldest and newest supported
//! versions), and the example custom resources against the generated CRD schemas.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Oldest and newest Kubernetes the manifests are checked against.
const KUBERNETES: [&str; 2] = ["1.33.0", "1.37.0"];

const HINT: &str = "run ./scripts/test (it creates operator/tests/k8s/.venv from operator/tests/k8s/requirements.txt)";

fn venv_bin(name: &str) -> PathBuf {
    let path = common::repo_root().join("operator/tests/k8s/.venv/bin").join(name);
    assert!(path.exists(), "{} is missing; {HINT}", path.display());
    path
}

fn run(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; {HINT}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn kubernetes_validate(files: &[PathBuf]) {
    for version in KUBERNETES {
        let (ok, out) =
            run(Command::new(venv_bin("kubernetes-validate")).args(["--strict", "-k", version]).args(files));
        assert!(ok, "kubernetes-validate --strict -k {version} failed:\n{out}");
        // Every document was checked against a schema (only the ServiceMonitor has none).
        let unchecked: Vec<&str> =
            out.lines().filter(|l| l.contains("WARN") && !l.contains("ServiceMonitor")).collect();
        assert!(unchecked.is_empty(), "documents without a schema:\n{out}");
    }
}

#[test]
fn rendered_manifests_are_valid_kubernetes_objects() {
    let golden = common::repo_root().join("operator/tests/golden");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&golden).expect("golden dir").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert!(files.len() >= 3, "golden manifests missing in {}", golden.display());
    kubernetes_validate(&files);
}

#[test]
fn crds_are_valid_custom_resource_definitions() {
    kubernetes_validate(&[common::repo_root().join("crds/gyre.dev.yaml")]);
}

fn validate_crs(files: &[&Path]) -> (bool, String) {
    let root = common::repo_root();
    run(Command::new(venv_bin("python"))
        .arg(root.join("operator/tests/k8s/validate_crs.py"))
        .arg(root.join("crds/gyre.dev.yaml"))
        .args(files))
}

#[test]
fn examples_are_valid_custom_resources_and_bad_ones_are_caught() {
    let examples = common::repo_root().join("deploy/examples");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&examples).expect("examples").map(|e| e.expect("entry").path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "yaml"));
    let refs: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let (ok, out) = validate_crs(&refs);
    assert!(ok, "{out}");
    assert!(out.matches("valid ").count() >= 6, "every example document checked:\n{out}");

    let bad = common::repo_root().join("operator/tests/k8s/bad-cluster.yaml");
    let (ok, out) = validate_crs(&[&bad]);
    assert!(!ok, "the bad example passed:\n{out}");
    // The admin UI's rule (enabled needs both Secrets) is CEL, checked in crds.rs and by the
    // operator (InvalidSpec); its structure is checked here.
    for needle in ["spec.replicas", "urll", "clusterRef", "spec.admin.enabled", "passwordSecret", "'key' is a required"]
    {
        assert!(out.contains(needle), "expected a complaint about {needle}:\n{out}");
    }
}
