//! The controllers: `RealtimeCluster` (renders and applies children, reports status, programs
//! its `Namespace` objects) and `Namespace` (reports objects whose cluster does not exist).

pub mod apply;
pub mod cluster;
pub mod conditions;
pub mod namespace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use parking_lot::Mutex;

use crate::crd::{Namespace, RealtimeCluster};
use crate::metrics::Metrics;

/// Why a reconcile failed (it is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0} has no Kubernetes namespace")]
    NotNamespaced(String),
    #[error("encoding: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl Error {
    /// Short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Kube(kube::Error::Api(_)) => "api",
            Self::Kube(_) => "client",
            Self::NotNamespaced(_) => "not_namespaced",
            Self::Encoding(_) => "encoding",
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per object, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    pub fn new(client: Client, metrics: Arc<Metrics>) -> Self {
        Self { client, metrics, failures: Mutex::new(HashMap::new()) }
    }

    fn succeeded(&self, key: &str) {
        self.failures.lock().remove(key);
    }

    /// The next retry delay for `key`: 5 s doubling per consecutive failure, at most 5 min.
    pub fn backoff(&self, key: &str) -> Duration {
        let mut failures = self.failures.lock();
        let n = failures.entry(key.to_string()).or_insert(0);
        *n = n.saturating_add(1);
        Duration::from_secs((5u64 << (*n - 1).min(6)).min(300))
    }
}

fn key_of<K: kube::Resource>(kind: &str, obj: &K) -> String {
    format!("{kind}/{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}

fn error_policy<K: kube::Resource>(kind: &'static str) -> impl Fn(Arc<K>, &Error, Arc<Context>) -> Action {
    move |obj, err, ctx| {
        let key = key_of(kind, obj.as_ref());
        let delay = ctx.backoff(&key);
        ctx.metrics.failures.with_label_values(&[kind, err.label()]).inc();
        tracing::warn!(object = %key, error = %err, retry_in = ?delay, "reconcile failed");
        Action::requeue(delay)
    }
}

/// An API over one Kubernetes namespace, or all of them.
fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs both controllers until SIGTERM; `namespace` limits them to one Kubernetes namespace.
pub async fn run(client: Client, metrics: Arc<Metrics>, namespace: Option<String>) {
    let ctx = Arc::new(Context::new(client.clone(), metrics));
    let ns = namespace.as_deref();
    let managed = watcher::Config::default().labels("app.kubernetes.io/managed-by=gyre-operator");
    let cluster_controller = Controller::new(scoped::<RealtimeCluster>(&client, ns), watcher::Config::default())
        .owns(scoped::<Deployment>(&client, ns), managed.clone())
        .owns(scoped::<Service>(&client, ns), managed.clone())
        .owns(scoped::<ConfigMap>(&client, ns), managed.clone())
        .owns(scoped::<HorizontalPodAutoscaler>(&client, ns), managed.clone())
        .owns(scoped::<PodDisruptionBudget>(&client, ns), managed)
        // A Namespace object changes its cluster's config.
        .watches(scoped::<Namespace>(&client, ns), watcher::Config::default(), |n: Namespace| {
            let cluster = n.spec.cluster_ref.name.clone();
            n.namespace().map(|k8s_ns| ObjectRef::new(&cluster).within(&k8s_ns))
        })
        .shutdown_on_signal()
        .run(cluster::reconcile, error_policy::<RealtimeCluster>("RealtimeCluster"), ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "cluster controller");
            }
        });
    let namespace_controller = Controller::new(scoped::<Namespace>(&client, ns), watcher::Config::default())
        .shutdown_on_signal()
        .run(namespace::reconcile, error_policy::<Namespace>("Namespace"), ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "namespace controller");
            }
        });
    tokio::join!(cluster_controller, namespace_controller);
}
