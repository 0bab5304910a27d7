//! Shared by the operator's tests: repository paths, example objects, golden files.

#![allow(dead_code)]

use std::path::PathBuf;

use gyre_operator::crd::{Namespace, RealtimeCluster};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The objects of `deploy/examples/<file>`, as the API server would hold them (namespace,
/// uid and creation time set).
pub fn example(file: &str) -> (RealtimeCluster, Vec<Namespace>) {
    let path = repo_root().join("deploy/examples").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut cluster = None;
    let mut namespaces = Vec::new();
    for (i, doc) in serde_yaml::Deserializer::from_str(&text).enumerate() {
        let value: serde_yaml::Value = serde::Deserialize::deserialize(doc).expect("yaml document");
        match value.get("kind").and_then(|k| k.as_str()) {
            Some("RealtimeCluster") => {
                let mut c: RealtimeCluster = serde_yaml::from_value(value).expect("RealtimeCluster");
                c.metadata.namespace = Some("apps".into());
                c.metadata.uid = Some("0b7c0b7c-0000-4000-8000-000000000001".into());
                c.metadata.generation = Some(1);
                cluster = Some(c);
            }
            Some("Namespace") => {
                let mut n: Namespace = serde_yaml::from_value(value).expect("Namespace");
                n.metadata.namespace = Some("apps".into());
                n.metadata.creation_timestamp = Some(at(1_700_000_000 + i as i64));
                n.metadata.generation = Some(1);
                namespaces.push(n);
            }
            other => panic!("{file}: unexpected kind {other:?}"),
        }
    }
    (cluster.expect("a RealtimeCluster in the example"), namespaces)
}

pub fn at(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("timestamp"))
}

/// Compares `actual` with the golden file `tests/golden/<name>`; `GYRE_UPDATE_GOLDEN=1`
/// rewrites it instead.
pub fn golden(name: &str, actual: &str) {
    in_sync(&format!("operator/tests/golden/{name}"), actual);
}

/// Checks that the committed file at `path` (from the repository root) is exactly `actual`,
/// what the code generates; `GYRE_UPDATE_GOLDEN=1` rewrites it instead (review the diff), except
/// under CI (`CI` set), where that is refused.
pub fn in_sync(path: &str, actual: &str) {
    let path = repo_root().join(path);
    if std::env::var_os("GYRE_UPDATE_GOLDEN").is_some() {
        // Under CI a rewrite would make the comparison pass whatever the code generates.
        assert!(
            std::env::var_os("CI").is_none(),
            "GYRE_UPDATE_GOLDEN is refused under CI: {} must be compared, not rewritten",
            path.display()
        );
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with GYRE_UPDATE_GOLDEN=1 to create it)", path.display()));
    assert!(
        expected == actual,
        "{} differs from what the code generates (GYRE_UPDATE_GOLDEN=1 cargo test -p gyre-operator rewrites it):\n{}",
        path.display(),
        first_difference(&expected, actual)
    );
}

fn first_difference(a: &str, b: &str) -> String {
    for (i, (x, y)) in a.lines().zip(b.lines()).enumerate() {
        if x != y {
            return format!("line {}:\n  golden:   {x}\n  rendered: {y}", i + 1);
        }
    }
    format!("lengths differ: golden {} lines, rendered {} lines", a.lines().count(), b.lines().count())
}
